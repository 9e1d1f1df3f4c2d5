//! AWS managed keys: the predefined aliases `alias/aws/s3` and `alias/aws/domains` and the keys
//! behind them, created on first use (resolving the alias in any operation) in the caller's account
//! and region.
//!
//! Creation is race-free: the key id is derived from (account, region, alias), so two first uses
//! at once insert the same key — the second insert conflicts instead of creating a duplicate —
//! and the alias insert likewise. The key has `KeyManager` AWS, a fixed policy that lets the
//! account's principals use it only through its service, and yearly rotation that cannot be
//! turned off. Customers cannot change it: every mutating operation answers `AccessDeniedException`
//! ([`refuse_aws_managed`]), as AWS does (its key policy allows nothing else).

use tresor_crypto::{KeyMaterialId, SymmetricKeyMaterial};

use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, LoadedKey, access_denied};
use crate::store::{
    AliasRecord, KEY_RECORD_FORMAT, KeyRecord, MaterialRecord, RotationState, StoreError,
    material_wrap_purpose,
};
use crate::types::{
    AccountId, KeyId, KeyManager, KeySpec, KeyState, KeyUsage, Origin, PARTITION, Region,
    Timestamp, key_arn,
};

/// AWS managed keys rotate every year; customers cannot change that.
pub const AWS_MANAGED_ROTATION_DAYS: u32 = 365;

/// One predefined alias and the AWS managed key behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManagedAlias {
    /// `alias/aws/<service>`.
    pub alias: &'static str,
    /// The service name in `kms:ViaService` (`<service>.<region>.amazonaws.com`).
    pub service: &'static str,
    /// The service's name in the policy's statement id.
    pub title: &'static str,
    pub description: &'static str,
    /// The policy's `Id`.
    pub policy_id: &'static str,
}

/// The predefined aliases, in name order (as `ListAliases` shows them).
pub const MANAGED_ALIASES: &[ManagedAlias] = &[
    ManagedAlias {
        alias: "alias/aws/domains",
        service: "domains",
        title: "Domains",
        description: "Default key that protects my tenant data vault domains when no other key is defined",
        policy_id: "auto-domains-1",
    },
    ManagedAlias {
        alias: "alias/aws/s3",
        service: "s3",
        title: "S3",
        description: "Default key that protects my S3 objects when no other key is defined",
        policy_id: "auto-s3-2",
    },
];

/// The predefined alias of this name, if it is one.
pub fn managed_alias(name: &str) -> Option<&'static ManagedAlias> {
    MANAGED_ALIASES.iter().find(|m| m.alias == name)
}

/// The key id of an account's AWS managed key for `alias` in `region`: a name-based UUID
/// (version 5 layout over SHA-256), the same on every node and after every restart.
pub fn managed_key_id(account: &AccountId, region: &Region, alias: &str) -> KeyId {
    let mut input = b"tresor aws-managed key v1\0".to_vec();
    input.extend_from_slice(account.as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(region.as_str().as_bytes());
    input.push(0);
    input.extend_from_slice(alias.as_bytes());
    let digest = tresor_crypto::sha256(&input);
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest) {
        *b = d;
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    KeyId(uuid::Uuid::from_bytes(bytes))
}

/// The fixed key policy of an AWS managed key (reference §5.3): the account's principals may use
/// the key for cryptography only through the service, and read its metadata directly.
pub fn managed_key_policy(account: &AccountId, region: &Region, m: &ManagedAlias) -> String {
    // AWS-DEVIATION (unverified): the policy `Id` and statement ids follow the aws/s3 policy seen
    // in AWS accounts; the aws/domains key is Tresor's own.
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "{id}",
  "Statement" : [ {{
    "Sid" : "Allow access through {title} for all principals in the account that are authorized to use {title}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{service}.{region}.amazonaws.com"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:{PARTITION}:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  }} ]
}}"#,
        id = m.policy_id,
        title = m.title,
        service = m.service,
    )
}

/// Customers cannot change, delete, disable, tag, rotate-configure or alias an AWS managed key:
/// AWS answers from the key's fixed policy, which allows none of it.
pub(crate) fn refuse_aws_managed(
    ctx: &CallContext,
    key: &LoadedKey,
    action: &str,
) -> Result<(), KmsError> {
    // AWS-DEVIATION: AWS answers from the key policy alone; Tresor also refuses explicitly.
    if key.record.key_manager == KeyManager::Aws {
        return Err(access_denied(ctx, action, &key.arn));
    }
    Ok(())
}

impl Kms {
    /// An alias by name; a predefined AWS alias of the caller's own account that does not exist
    /// yet is created, with its key, on this first use.
    pub(crate) async fn find_alias(
        &self,
        ctx: &CallContext,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<Option<AliasRecord>, KmsError> {
        if let Some(a) = self.store.get_alias(account, region, name).await? {
            return Ok(Some(a));
        }
        // AWS-DEVIATION: AWS creates the key when its service first uses it; Tresor on the first
        // resolution of the alias by any caller of the account.
        match managed_alias(name) {
            Some(m) if account == &ctx.caller.account && region == &ctx.region => {
                self.create_managed_key(account, region, m).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn create_managed_key(
        &self,
        account: &AccountId,
        region: &Region,
        m: &ManagedAlias,
    ) -> Result<AliasRecord, KmsError> {
        let key_id = managed_key_id(account, region, m.alias);
        let now = self.clock.now();
        let record = managed_key_record(self, account, region, key_id, m, now)?;
        match self.store.insert_key(&record).await {
            // A concurrent first use (on this or another node) inserted the same key.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let alias = AliasRecord {
            account: account.clone(),
            region: region.clone(),
            name: m.alias.to_owned(),
            target_key_id: key_id,
            created: now,
            updated: now,
        };
        match self.store.create_alias(&alias).await {
            Ok(()) => {
                tracing::info!(%account, %region, alias = m.alias, %key_id, "created AWS managed key");
                self.invalidate_key(&key_id);
                Ok(alias)
            }
            Err(StoreError::Conflict(_)) => self
                .store
                .get_alias(account, region, m.alias)
                .await?
                .ok_or_else(|| KmsError::internal(format!("{} vanished while created", m.alias))),
            Err(e) => Err(e.into()),
        }
    }
}

fn managed_key_record(
    kms: &Kms,
    account: &AccountId,
    region: &Region,
    key_id: KeyId,
    m: &ManagedAlias,
    now: Timestamp,
) -> Result<KeyRecord, KmsError> {
    let arn = key_arn(region, account, &key_id);
    let material = SymmetricKeyMaterial::generate().map_err(KmsError::internal)?;
    let material_id = KeyMaterialId::random().map_err(KmsError::internal)?;
    let wrapped = kms
        .root
        .wrap(
            &material_wrap_purpose(&arn, &material_id),
            material.expose(),
        )
        .map_err(KmsError::internal)?;
    Ok(KeyRecord {
        format: KEY_RECORD_FORMAT,
        key_id,
        account: account.clone(),
        region: region.clone(),
        created: now,
        description: m.description.to_owned(),
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Aws,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        policy: managed_key_policy(account, region, m),
        materials: vec![MaterialRecord {
            id: material_id,
            wrapped,
            created: now,
            rotation: None,
            public_key: None,
        }],
        current_material: Some(material_id),
        tags: Vec::new(),
        rotation: RotationState {
            period_days: Some(AWS_MANAGED_ROTATION_DAYS),
            next_rotation: Some(now.add_days(i64::from(AWS_MANAGED_ROTATION_DAYS))),
            on_demand_count: 0,
        },
        imported: None,
        version: 0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_deterministic_and_distinct() {
        let a = AccountId::parse("111122223333").unwrap();
        let b = AccountId::parse("444455556666").unwrap();
        let r = Region::parse("us-east-1").unwrap();
        let r2 = Region::parse("eu-west-1").unwrap();
        let id = managed_key_id(&a, &r, "alias/aws/s3");
        assert_eq!(id, managed_key_id(&a, &r, "alias/aws/s3"));
        assert_ne!(id, managed_key_id(&b, &r, "alias/aws/s3"));
        assert_ne!(id, managed_key_id(&a, &r2, "alias/aws/s3"));
        assert_ne!(id, managed_key_id(&a, &r, "alias/aws/domains"));
        // A well-formed lower-case key id (version 5 layout).
        let s = id.to_string();
        assert_eq!(KeyId::parse(&s), Some(id));
        assert_eq!(s.as_bytes()[14], b'5');
    }

    #[test]
    fn policies_parse_and_name_the_service() {
        let a = AccountId::parse("111122223333").unwrap();
        let r = Region::parse("us-east-1").unwrap();
        for m in MANAGED_ALIASES {
            let p = managed_key_policy(&a, &r, m);
            let v: serde_json::Value = serde_json::from_str(&p).unwrap();
            let cond = &v["Statement"][0]["Condition"]["StringEquals"];
            assert_eq!(cond["kms:CallerAccount"], "111122223333");
            assert_eq!(
                cond["kms:ViaService"],
                format!("{}.us-east-1.amazonaws.com", m.service)
            );
            assert_eq!(v["Statement"][0]["Principal"]["AWS"], "*");
            assert_eq!(
                v["Statement"][1]["Principal"]["AWS"],
                "arn:aws:iam::111122223333:root"
            );
            assert!(tresor_policy::parse_key_policy(&p).is_ok(), "{}", m.alias);
        }
        assert_eq!(
            managed_alias("alias/aws/s3").map(|m| m.description),
            Some("Default key that protects my S3 objects when no other key is defined")
        );
        assert!(managed_alias("alias/aws/ebs").is_none());
    }
}
