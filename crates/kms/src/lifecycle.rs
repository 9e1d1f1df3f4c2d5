//! Helpers shared by the key lifecycle operations and the scheduler: new material generations,
//! key-type checks, alias name rules, service events.

use serde_json::{Value, json};
use tresor_crypto::{KeyMaterialId, SymmetricKeyMaterial};

use crate::audit::build_service_event;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::store::{KeyRecord, MaterialRecord, material_wrap_purpose};
use crate::types::{KeySpec, Origin, RotationType, Timestamp, valid_alias_name};

/// On-demand rotations AWS allows per key.
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
/// No on-demand rotation this close to a scheduled one (AWS: 20 minutes).
pub const ROTATION_CONFLICT_WINDOW_MILLIS: i64 = 20 * 60 * 1000;
/// Aliases per customer managed key.
pub const MAX_ALIASES_PER_KEY: usize = 50;

/// A fresh generation of symmetric key material for `key_arn`, wrapped under the root key.
pub(crate) fn new_material(
    kms: &Kms,
    key_arn: &str,
    now: Timestamp,
    rotation: Option<RotationType>,
) -> Result<MaterialRecord, KmsError> {
    let material = SymmetricKeyMaterial::generate().map_err(KmsError::internal)?;
    let id = KeyMaterialId::random().map_err(KmsError::internal)?;
    let wrapped = kms
        .root
        .wrap(&material_wrap_purpose(key_arn, &id), material.expose())
        .map_err(KmsError::internal)?;
    Ok(MaterialRecord {
        id,
        wrapped,
        created: now,
        rotation,
        public_key: None,
    })
}

/// Adds a rotated generation and makes it current.
pub(crate) fn rotate_record(record: &mut KeyRecord, material: MaterialRecord) {
    record.current_material = Some(material.id);
    record.materials.push(material);
}

/// The key type UpdateAlias compares: symmetric, asymmetric or HMAC.
pub(crate) fn key_type(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::SymmetricDefault => "SYMMETRIC",
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => "HMAC",
        KeySpec::Rsa2048
        | KeySpec::Rsa3072
        | KeySpec::Rsa4096
        | KeySpec::EccNistP256
        | KeySpec::EccNistP384
        | KeySpec::EccNistP521
        | KeySpec::EccSecgP256k1
        | KeySpec::EccNistEdwards25519
        | KeySpec::Sm2
        | KeySpec::MlDsa44
        | KeySpec::MlDsa65
        | KeySpec::MlDsa87 => "ASYMMETRIC",
    }
}

/// Rotation (automatic, on demand, listing) exists only for symmetric encryption keys.
pub(crate) fn require_symmetric(record: &KeyRecord) -> Result<(), KmsError> {
    if record.key_spec == KeySpec::SymmetricDefault {
        Ok(())
    } else {
        // AWS sends this exception without a message (observed for RotateKeyOnDemand).
        Err(KmsError::UnsupportedOperation(String::new()))
    }
}

/// `<arn> origin is <origin> which is not valid for this operation.`
pub(crate) fn origin_not_valid(arn: &str, origin: Origin) -> KmsError {
    KmsError::UnsupportedOperation(format!(
        "{arn} origin is {origin} which is not valid for this operation."
    ))
}

/// Automatic rotation settings exist only for symmetric keys with AWS_KMS material.
pub(crate) fn require_rotation_settings(record: &KeyRecord, arn: &str) -> Result<(), KmsError> {
    require_symmetric(record)?;
    if record.origin != Origin::AwsKms {
        return Err(origin_not_valid(arn, record.origin));
    }
    Ok(())
}

/// The rules of alias names for CreateAlias, UpdateAlias and DeleteAlias (the model's length
/// and pattern are checked at the edge for wire requests; in-process callers get the same).
pub(crate) fn check_alias_name(name: &str) -> Result<(), KmsError> {
    if !name.starts_with("alias/") {
        return Err(KmsError::validation_plain(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        ));
    }
    if name.starts_with("alias/aws/") {
        // AWS-DEVIATION (unverified): the reserved namespace answers NotAuthorizedException
        // without a message, as emulators record it.
        return Err(KmsError::NotAuthorized);
    }
    if name.contains(':') {
        // AWS-DEVIATION (unverified text).
        return Err(KmsError::validation_plain(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    if name.len() > 256 {
        return Err(KmsError::validation(format!(
            "Value '{name}' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"
        )));
    }
    if !valid_alias_name(name) {
        return Err(KmsError::validation(format!(
            "Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    Ok(())
}

/// Records a KMS-initiated event (`DeleteKey`, `RotateKey`, `DeleteExpiredKeyMaterial`) for `key`.
pub(crate) async fn record_service_event(
    kms: &Kms,
    event_name: &str,
    key: &KeyRecord,
    additional: Option<Value>,
    now: Timestamp,
) {
    let event = build_service_event(
        event_name,
        &key.account,
        &key.region,
        &key.arn(),
        json!({ "keyId": key.key_id.to_string() }),
        additional,
        now,
    );
    if let Err(e) = kms.audit.record(event).await {
        tracing::error!(error = %e, event = event_name, key = %key.arn(), "cannot record service event");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::{ImportedMaterial, RotationState};
    use crate::types::{AccountId, ExpirationModel, KeyId, KeyManager, KeyState, KeyUsage, Region};

    fn record() -> KeyRecord {
        let id = KeyMaterialId([1; 32]);
        KeyRecord {
            format: 1,
            key_id: KeyId::new_random(),
            account: AccountId::parse("111122223333").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            created: Timestamp(0),
            description: String::new(),
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            key_manager: KeyManager::Customer,
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            policy: "{}".into(),
            materials: vec![MaterialRecord {
                id,
                wrapped: vec![],
                created: Timestamp(0),
                rotation: None,
                public_key: None,
            }],
            current_material: Some(id),
            tags: vec![],
            rotation: RotationState::default(),
            imported: None,
            version: 1,
        }
    }

    #[test]
    fn next_due_covers_deletion_rotation_and_expiry() {
        let mut k = record();
        assert_eq!(k.next_due(), None);
        k.rotation = RotationState {
            period_days: Some(90),
            next_rotation: Some(Timestamp(500)),
            on_demand_count: 0,
        };
        assert_eq!(k.next_due(), Some(Timestamp(500)));
        // Rotation pauses while the key is disabled.
        k.state = KeyState::Disabled;
        assert_eq!(k.next_due(), None);
        // Deletion: the deletion date only (rotation does not run while pending deletion).
        k.state = KeyState::PendingDeletion;
        k.deletion_date = Some(Timestamp(700));
        assert_eq!(k.next_due(), Some(Timestamp(700)));
        // Expiry of imported material, whichever comes first.
        k.origin = Origin::External;
        k.imported = Some(ImportedMaterial {
            material_id: KeyMaterialId([1; 32]),
            expiration_model: ExpirationModel::KeyMaterialExpires,
            valid_to: Some(Timestamp(600)),
        });
        assert_eq!(k.next_due(), Some(Timestamp(600)));
        // Material already gone: nothing expires any more.
        k.materials.clear();
        assert_eq!(k.next_due(), Some(Timestamp(700)));
        // Records written before rotation existed read as "rotation off".
        let mut v = serde_json::to_value(record()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("rotation");
        o.remove("imported");
        for m in o["materials"].as_array_mut().unwrap() {
            m.as_object_mut().unwrap().remove("rotation");
        }
        let old: KeyRecord = serde_json::from_value(v).unwrap();
        assert_eq!(old.rotation, RotationState::default());
        assert_eq!(old.imported, None);
        assert_eq!(old.materials[0].rotation, None);
    }

    #[test]
    fn alias_name_rules() {
        assert!(check_alias_name("alias/ok/name_1-x").is_ok());
        assert_eq!(
            check_alias_name("foo"),
            Err(KmsError::Validation("Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into()))
        );
        assert_eq!(
            check_alias_name("alias/aws/s3"),
            Err(KmsError::NotAuthorized)
        );
        assert_eq!(
            check_alias_name("alias/aws/anything"),
            Err(KmsError::NotAuthorized)
        );
        assert!(check_alias_name("alias/aws").is_ok());
        assert!(
            matches!(check_alias_name("alias/a:b"), Err(KmsError::Validation(m)) if m == "alias/a:b contains invalid characters for an alias")
        );
        assert!(
            matches!(check_alias_name("alias/a b"), Err(KmsError::Validation(m)) if m.contains("regular expression pattern"))
        );
        assert!(matches!(
            check_alias_name("alias/"),
            Err(KmsError::Validation(_))
        ));
        let long = format!("alias/{}", "a".repeat(251));
        assert!(
            matches!(check_alias_name(&long), Err(KmsError::Validation(m)) if m.contains("less than or equal to 256"))
        );
    }

    #[test]
    fn key_types() {
        assert_eq!(key_type(KeySpec::SymmetricDefault), "SYMMETRIC");
        assert_eq!(key_type(KeySpec::Rsa2048), key_type(KeySpec::EccNistP256));
        assert_eq!(key_type(KeySpec::Hmac256), "HMAC");
    }
}
