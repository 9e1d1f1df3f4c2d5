//! CreateKey.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tresor_crypto::{KeyMaterialId, SymmetricKeyMaterial};

use super::{KeyMetadata, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::store::{KEY_RECORD_FORMAT, KeyRecord, MaterialRecord, Tag, material_wrap_purpose};
use crate::types::{
    AccountId, KeyId, KeyManager, KeySpec, KeyState, KeyUsage, Origin, PARTITION, Timestamp,
    key_arn,
};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKey {
    pub policy: Option<String>,
    pub description: Option<String>,
    pub key_usage: Option<KeyUsage>,
    pub customer_master_key_spec: Option<KeySpec>,
    pub key_spec: Option<KeySpec>,
    pub origin: Option<Origin>,
    pub custom_key_store_id: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub tags: Option<Vec<Tag>>,
    pub multi_region: Option<bool>,
    pub xks_key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateKeyOutput {
    pub key_metadata: KeyMetadata,
}

/// AWS's key policy size quota (bytes).
pub const MAX_POLICY_BYTES: usize = 32_768;
/// Tags per key.
pub const MAX_TAGS: usize = 50;

/// The key usages a key spec admits (reference §3.1).
pub fn usage_allowed(spec: KeySpec, usage: KeyUsage) -> bool {
    use KeySpec as S;
    use KeyUsage as U;
    match spec {
        S::SymmetricDefault => usage == U::EncryptDecrypt,
        S::Rsa2048 | S::Rsa3072 | S::Rsa4096 => matches!(usage, U::EncryptDecrypt | U::SignVerify),
        S::EccNistP256 | S::EccNistP384 | S::EccNistP521 => {
            matches!(usage, U::SignVerify | U::KeyAgreement)
        }
        S::EccSecgP256k1 | S::EccNistEdwards25519 | S::MlDsa44 | S::MlDsa65 | S::MlDsa87 => {
            usage == U::SignVerify
        }
        S::Hmac224 | S::Hmac256 | S::Hmac384 | S::Hmac512 => usage == U::GenerateVerifyMac,
        S::Sm2 => matches!(usage, U::EncryptDecrypt | U::SignVerify | U::KeyAgreement),
    }
}

/// The policy CreateKey attaches when none is given, in AWS's pretty-printed form.
pub fn default_key_policy(account: &AccountId) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:{PARTITION}:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}

/// AWS's tag rules (TagException) plus the model's length limits (ValidationException).
pub(crate) fn check_tags(tags: &[Tag]) -> Result<(), KmsError> {
    for (i, t) in tags.iter().enumerate() {
        let n = i + 1;
        let key_len = t.key.encode_utf16().count();
        if key_len == 0 || key_len > 128 {
            let bound = if key_len == 0 {
                "greater than or equal to 1"
            } else {
                "less than or equal to 128"
            };
            return Err(KmsError::validation(format!(
                "Value '{}' at 'tags.{n}.member.tagKey' failed to satisfy constraint: Member must have length {bound}",
                t.key
            )));
        }
        if t.value.encode_utf16().count() > 256 {
            return Err(KmsError::validation(format!(
                "Value '{}' at 'tags.{n}.member.tagValue' failed to satisfy constraint: Member must have length less than or equal to 256",
                t.value
            )));
        }
    }
    if tags.iter().any(|t| {
        t.key
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
    }) {
        return Err(KmsError::Tag(
            "Tags beginning with aws: are reserved".to_owned(),
        ));
    }
    let mut keys: Vec<&str> = tags.iter().map(|t| t.key.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w.first() == w.get(1)) {
        return Err(KmsError::Tag("Duplicate tag keys".to_owned()));
    }
    if tags.len() > MAX_TAGS {
        return Err(KmsError::Tag("Too many tags".to_owned()));
    }
    Ok(())
}

/// `creationDate` as CloudTrail renders it inside `responseElements.keyMetadata`: `Aug 10, 2022, 10:38:27 PM`.
pub(crate) fn human_date(t: Timestamp) -> String {
    let dt = time::OffsetDateTime::from_unix_timestamp(t.unix_seconds())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS
        .get(usize::from(u8::from(dt.month())).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    let (h12, ampm) = match dt.hour() {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{month} {}, {}, {h12}:{:02}:{:02} {ampm}",
        dt.day(),
        dt.year(),
        dt.minute(),
        dt.second()
    )
}

#[async_trait]
impl Operation for CreateKey {
    const NAME: &'static str = "CreateKey";
    const READ_ONLY: bool = false;
    type Output = CreateKeyOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(
            &mut m,
            "description",
            Some(self.description.clone().unwrap_or_default()),
        );
        put(&mut m, "keyUsage", self.key_usage.map(|u| u.as_str()));
        put(
            &mut m,
            "keySpec",
            self.key_spec
                .or(self.customer_master_key_spec)
                .map(|s| s.as_str()),
        );
        put(
            &mut m,
            "customerMasterKeySpec",
            self.customer_master_key_spec.map(|s| s.as_str()),
        );
        put(
            &mut m,
            "origin",
            Some(self.origin.unwrap_or(Origin::AwsKms).as_str()),
        );
        put(
            &mut m,
            "bypassPolicyLockoutSafetyCheck",
            Some(self.bypass_policy_lockout_safety_check.unwrap_or(false)),
        );
        put(
            &mut m,
            "multiRegion",
            Some(self.multi_region.unwrap_or(false)),
        );
        put(&mut m, "customKeyStoreId", self.custom_key_store_id.clone());
        put(&mut m, "policy", self.policy.clone());
        if let Some(tags) = &self.tags {
            m.insert(
                "tags".into(),
                Value::Array(
                    tags.iter()
                        .map(|t| json!({"tagKey": t.key, "tagValue": t.value}))
                        .collect(),
                ),
            );
        }
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<CreateKeyOutput, KmsError> {
        let key_spec = match (self.key_spec, self.customer_master_key_spec) {
            (Some(a), Some(b)) if a != b => {
                // AWS-DEVIATION (unverified text).
                return Err(KmsError::validation_plain(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.",
                ));
            }
            (a, b) => a.or(b).unwrap_or(KeySpec::SymmetricDefault),
        };
        let key_usage = match self.key_usage {
            Some(u) => u,
            None if key_spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
            None => {
                return Err(KmsError::validation_plain(
                    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
                ));
            }
        };
        if !usage_allowed(key_spec, key_usage) {
            return Err(KmsError::validation_plain(format!(
                "KeyUsage {key_usage} is not compatible with KeySpec {key_spec}"
            )));
        }
        let origin = self.origin.unwrap_or(Origin::AwsKms);
        if let Some(id) = &self.custom_key_store_id {
            return Err(KmsError::CustomKeyStoreNotFound(format!(
                "Custom key store '{id}' does not exist"
            )));
        }
        if !matches!(origin, Origin::AwsKms | Origin::External) {
            // AWS-DEVIATION: custom key stores are not supported.
            return Err(KmsError::UnsupportedOperation(format!(
                "Origin {origin} is not supported by this server."
            )));
        }
        if key_spec == KeySpec::Sm2 {
            // AWS-DEVIATION (unverified text): SM2 keys exist in AWS China Regions only.
            return Err(KmsError::UnsupportedOperation(
                "KeySpec SM2 is not supported by this server (AWS offers it in China Regions only)."
                    .to_owned(),
            ));
        }
        if key_spec != KeySpec::SymmetricDefault && origin == Origin::External {
            // AWS-DEVIATION: imported key material exists for symmetric keys only.
            return Err(KmsError::UnsupportedOperation(format!(
                "Origin EXTERNAL with KeySpec {key_spec} is not supported by this server."
            )));
        }
        if self.multi_region == Some(true) {
            // AWS-DEVIATION: multi-Region keys are not supported.
            return Err(KmsError::UnsupportedOperation(
                "Multi-Region keys are not supported by this server.".to_owned(),
            ));
        }
        let tags = self.tags.unwrap_or_default();
        check_tags(&tags)?;
        let description = self.description.unwrap_or_default();
        if description.encode_utf16().count() > 8192 {
            return Err(KmsError::validation(format!(
                "Value '{description}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
            )));
        }
        let account = ctx.caller.account.clone();
        let bypass = self.bypass_policy_lockout_safety_check.unwrap_or(false);
        let tag_keys: Vec<String> = tags.iter().map(|t| t.key.clone()).collect();
        let with_request_tags = |mut access: crate::authz::Access<'static>| {
            for t in &tags {
                access = access.with_str(format!("aws:RequestTag/{}", t.key), t.value.clone());
            }
            access.with(
                "aws:TagKeys",
                tresor_policy::ContextValue::multi(tag_keys.clone()),
            )
        };
        let access = with_request_tags(
            crate::authz::Access::new("CreateKey")
                .with_str("kms:KeySpec", key_spec.as_str())
                .with_str("kms:CustomerMasterKeySpec", key_spec.as_str())
                .with_str("kms:KeyUsage", key_usage.as_str())
                .with_str("kms:CustomerMasterKeyUsage", key_usage.as_str())
                .with_str("kms:KeyOrigin", origin.as_str())
                .with_str("kms:MultiRegion", "false")
                .with_str("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string()),
        );
        kms.authorize_iam(ctx, &access, "*").await?;
        if !tags.is_empty() {
            // Tagging at creation also needs kms:TagResource.
            kms.authorize_iam(
                ctx,
                &with_request_tags(crate::authz::Access::new("TagResource")),
                "*",
            )
            .await?;
        }
        let key_id = KeyId::new_random();
        let arn = key_arn(&ctx.region, &account, &key_id);
        let policy = match self.policy {
            Some(p) => {
                kms.check_key_policy(ctx, &p, &arn, &account, bypass)
                    .await?;
                p
            }
            None => default_key_policy(&account),
        };
        if kms.store.count_keys(&account, &ctx.region).await? >= kms.config.max_keys_per_region {
            return Err(KmsError::LimitExceeded(format!(
                "You have reached the limit of {} KMS keys in this account and Region.",
                kms.config.max_keys_per_region
            )));
        }

        // Asymmetric and HMAC key pairs are generated on a blocking thread: RSA key generation
        // takes up to seconds and must not stall other requests.
        let generated = if key_spec == KeySpec::SymmetricDefault {
            None
        } else {
            let material = tokio::task::spawn_blocking(move || {
                crate::asymmetric::generate(key_spec, key_usage)
            })
            .await
            .map_err(KmsError::internal)??;
            Some(material)
        };
        let now = kms.clock.now();
        // EXTERNAL keys start without material, waiting for ImportKeyMaterial.
        let (state, materials, current_material) = if origin == Origin::External {
            (KeyState::PendingImport, Vec::new(), None)
        } else if let Some(generated) = generated {
            let material_id = KeyMaterialId::random().map_err(KmsError::internal)?;
            let wrapped = kms
                .root
                .wrap(
                    &material_wrap_purpose(&arn, &material_id),
                    generated.secret.expose(),
                )
                .map_err(KmsError::internal)?;
            let only = MaterialRecord {
                id: material_id,
                wrapped,
                created: now,
                rotation: None,
                public_key: generated.public_key,
            };
            (KeyState::Enabled, vec![only], Some(material_id))
        } else {
            let material = SymmetricKeyMaterial::generate().map_err(KmsError::internal)?;
            let material_id = KeyMaterialId::random().map_err(KmsError::internal)?;
            let wrapped = kms
                .root
                .wrap(
                    &material_wrap_purpose(&arn, &material_id),
                    material.expose(),
                )
                .map_err(KmsError::internal)?;
            let first = MaterialRecord {
                id: material_id,
                wrapped,
                created: now,
                rotation: None,
                public_key: None,
            };
            (KeyState::Enabled, vec![first], Some(material_id))
        };
        let record = KeyRecord {
            format: KEY_RECORD_FORMAT,
            key_id,
            account: account.clone(),
            region: ctx.region.clone(),
            created: now,
            description,
            key_spec,
            key_usage,
            origin,
            key_manager: KeyManager::Customer,
            state,
            deletion_date: None,
            pending_window_days: None,
            policy,
            materials,
            current_material,
            tags,
            rotation: Default::default(),
            imported: None,
            version: 0,
        };
        kms.store.insert_key(&record).await?;
        trail.add_resource(&account, &arn);
        let metadata = KeyMetadata::from_record(&record);
        trail.response_elements = Some(json!({ "keyMetadata": audit_key_metadata(&metadata) }));
        Ok(CreateKeyOutput {
            key_metadata: metadata,
        })
    }
}

/// `keyMetadata` as CloudTrail logs it: camelCase members, `creationDate` as a human date.
pub(crate) fn audit_key_metadata(m: &KeyMetadata) -> Value {
    let mut v = json!({
        "aWSAccountId": m.aws_account_id,
        "keyId": m.key_id,
        "arn": m.arn,
        "creationDate": human_date(m.creation_date),
        "enabled": m.enabled,
        "description": m.description,
        "keyUsage": m.key_usage.as_str(),
        "keyState": m.key_state.as_str(),
        "origin": m.origin.as_str(),
        "keyManager": m.key_manager.as_str(),
        "customerMasterKeySpec": m.customer_master_key_spec.as_str(),
        "keySpec": m.key_spec.as_str(),
        "multiRegion": m.multi_region,
    });
    if let (Some(algs), Some(obj)) = (&m.encryption_algorithms, v.as_object_mut()) {
        obj.insert(
            "encryptionAlgorithms".into(),
            json!(algs.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        );
    }
    if let (Some(algs), Some(obj)) = (&m.signing_algorithms, v.as_object_mut()) {
        obj.insert(
            "signingAlgorithms".into(),
            json!(algs.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        );
    }
    if let (Some(algs), Some(obj)) = (&m.mac_algorithms, v.as_object_mut()) {
        obj.insert(
            "macAlgorithms".into(),
            json!(algs.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        );
    }
    if let (Some(algs), Some(obj)) = (&m.key_agreement_algorithms, v.as_object_mut()) {
        obj.insert(
            "keyAgreementAlgorithms".into(),
            json!(algs.iter().map(|a| a.as_str()).collect::<Vec<_>>()),
        );
    }
    if let (Some(id), Some(obj)) = (&m.current_key_material_id, v.as_object_mut()) {
        obj.insert("currentKeyMaterialId".into(), json!(id));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn tag_rules() {
        assert!(check_tags(&[tag("a", "1"), tag("b", "")]).is_ok());
        assert_eq!(
            check_tags(&[tag("AWS:x", "1")]),
            Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into()
            ))
        );
        assert_eq!(
            check_tags(&[tag("a", "1"), tag("a", "2")]),
            Err(KmsError::Tag("Duplicate tag keys".into()))
        );
        let many: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            check_tags(&many),
            Err(KmsError::Tag("Too many tags".into()))
        );
        assert!(
            matches!(check_tags(&[tag(&"k".repeat(129), "v")]), Err(KmsError::Validation(m)) if m.contains("tags.1.member.tagKey"))
        );
    }

    #[test]
    fn default_policy_is_json_with_root_delegation() {
        let acct = AccountId::parse("111122223333").unwrap();
        let p = default_key_policy(&acct);
        let v: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(
            v["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(v["Statement"][0]["Action"], "kms:*");
        assert!(p.contains("\"Version\" : \"2012-10-17\""));
    }

    #[test]
    fn human_dates() {
        assert_eq!(
            human_date(Timestamp::from_unix_seconds(1_660_171_107)),
            "Aug 10, 2022, 10:38:27 PM"
        );
        assert_eq!(
            human_date(Timestamp::from_unix_seconds(0)),
            "Jan 1, 1970, 12:00:00 AM"
        );
    }

    #[test]
    fn usage_matrix() {
        assert!(usage_allowed(
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt
        ));
        assert!(!usage_allowed(
            KeySpec::SymmetricDefault,
            KeyUsage::SignVerify
        ));
        assert!(!usage_allowed(KeySpec::Rsa2048, KeyUsage::KeyAgreement));
        assert!(usage_allowed(KeySpec::Hmac256, KeyUsage::GenerateVerifyMac));
    }
}
