//! ImportKeyMaterial: unwraps key material with the private key inside the import token and
//! installs it. Only the material first imported into a key can be imported again (after deletion
//! or expiry, or to change its expiration); anything else is `IncorrectKeyMaterialException`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tresor_crypto::SecretBytes;
use tresor_crypto::import::imported_material_id;

use super::create_key::human_date;
use super::{Blob, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::import_token;
use crate::kms::Kms;
use crate::lifecycle::origin_not_valid;
use crate::state::{self, KeyOp};
use crate::store::{ImportedMaterial, MaterialRecord, material_wrap_purpose};
use crate::types::{ExpirationModel, ImportType, KeyState, Origin, Timestamp};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyMaterial {
    pub key_id: String,
    pub import_token: Blob,
    pub encrypted_key_material: Blob,
    #[serde(default)]
    pub valid_to: Option<Timestamp>,
    #[serde(default)]
    pub expiration_model: Option<ExpirationModel>,
    #[serde(default)]
    pub import_type: Option<ImportType>,
    #[serde(default)]
    pub key_material_description: Option<String>,
    #[serde(default)]
    pub key_material_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyMaterialOutput {
    pub key_id: String,
    pub key_material_id: String,
}

/// Imported material may be valid for at most a year.
const MAX_VALID_TO_DAYS: i64 = 365;

fn incorrect_material() -> KmsError {
    // AWS-DEVIATION (unverified text): the model's description of the exception.
    KmsError::IncorrectKeyMaterial(
        "The key material in the request is, expired, invalid, or is not the same key material that was previously imported into this KMS key.".to_owned(),
    )
}

/// `ExpirationModel` and `ValidTo` together.
fn expiry(
    model: Option<ExpirationModel>,
    valid_to: Option<Timestamp>,
    now: Timestamp,
) -> Result<(ExpirationModel, Option<Timestamp>), KmsError> {
    match model.unwrap_or(ExpirationModel::KeyMaterialExpires) {
        ExpirationModel::KeyMaterialExpires => {
            let t = valid_to.ok_or_else(|| {
                KmsError::validation_plain(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
                )
            })?;
            if t <= now || t > now.add_days(MAX_VALID_TO_DAYS) {
                // AWS-DEVIATION (unverified text).
                return Err(KmsError::validation_plain(
                    "The validTo date must be in the future and no more than 365 days from now.",
                ));
            }
            Ok((ExpirationModel::KeyMaterialExpires, Some(t)))
        }
        ExpirationModel::KeyMaterialDoesNotExpire => {
            if valid_to.is_some() {
                // AWS-DEVIATION (unverified text).
                return Err(KmsError::validation_plain(
                    "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE",
                ));
            }
            Ok((ExpirationModel::KeyMaterialDoesNotExpire, None))
        }
    }
}

#[async_trait]
impl Operation for ImportKeyMaterial {
    const NAME: &'static str = "ImportKeyMaterial";
    const READ_ONLY: bool = false;
    type Output = ImportKeyMaterialOutput;

    /// Never the import token or the encrypted key material.
    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "validTo", self.valid_to.map(human_date));
        put(
            &mut m,
            "expirationModel",
            Some(
                self.expiration_model
                    .unwrap_or(ExpirationModel::KeyMaterialExpires)
                    .as_str(),
            ),
        );
        put(&mut m, "importType", self.import_type.map(|t| t.as_str()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ImportKeyMaterialOutput, KmsError> {
        let now = kms.clock.now();
        let (model, valid_to) = expiry(self.expiration_model, self.valid_to, now)?;
        let r = kms
            .resolve(ctx, &self.key_id, false, "ImportKeyMaterial", trail)
            .await?;
        kms.check_state(KeyOp::ImportKeyMaterial, &r.key)?;
        let record = &r.key.record;
        if record.origin != Origin::External {
            return Err(origin_not_valid(&r.key.arn, record.origin));
        }
        let arn = r.key.arn.clone();
        let opened =
            import_token::open(&kms.root, &record.key_id, &arn, &self.import_token.0, now)?;
        let material: SecretBytes = opened
            .wrapping_key
            .unwrap_material(opened.wrapping, &self.encrypted_key_material.0)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        // Symmetric keys take exactly 256 bits.
        if material.len() != 32 {
            return Err(incorrect_material());
        }
        let material_id = imported_material_id(&arn, material.expose());
        let given_id_differs = self
            .key_material_id
            .as_deref()
            .is_some_and(|id| id != material_id.to_hex());
        if given_id_differs {
            return Err(incorrect_material());
        }
        let wrapped = kms
            .root
            .wrap(
                &material_wrap_purpose(&arn, &material_id),
                material.expose(),
            )
            .map_err(KmsError::internal)?;
        drop(material);
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::ImportKeyMaterial, k.state, &arn)?;
            // AWS-DEVIATION: one imported material per key (no NEW_KEY_MATERIAL for rotation):
            // different material is refused like AWS refuses it for EXISTING_KEY_MATERIAL.
            if k.imported
                .as_ref()
                .is_some_and(|i| i.material_id != material_id)
            {
                return Err(incorrect_material());
            }
            k.imported = Some(ImportedMaterial {
                material_id,
                expiration_model: model,
                valid_to,
            });
            if k.material(&material_id).is_none() {
                k.materials.push(MaterialRecord {
                    id: material_id,
                    wrapped: wrapped.clone(),
                    created: now,
                    rotation: None,
                    public_key: None,
                });
            }
            k.current_material = Some(material_id);
            if k.state == KeyState::PendingImport {
                k.state = KeyState::Enabled;
            }
            Ok(())
        })
        .await?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(ImportKeyMaterialOutput {
            key_id: arn,
            key_material_id: material_id.to_hex(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn expiration_rules() {
        let now = Timestamp::from_unix_seconds(1_000_000);
        assert_eq!(
            expiry(None, None, now),
            Err(KmsError::Validation(
                "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES".into()
            ))
        );
        let ok = now.add_days(30);
        assert_eq!(
            expiry(None, Some(ok), now),
            Ok((ExpirationModel::KeyMaterialExpires, Some(ok)))
        );
        for bad in [now, now.add_days(-1), now.add_days(366)] {
            assert!(matches!(
                expiry(Some(ExpirationModel::KeyMaterialExpires), Some(bad), now),
                Err(KmsError::Validation(_))
            ));
        }
        assert_eq!(
            expiry(Some(ExpirationModel::KeyMaterialDoesNotExpire), None, now),
            Ok((ExpirationModel::KeyMaterialDoesNotExpire, None))
        );
        assert!(
            expiry(
                Some(ExpirationModel::KeyMaterialDoesNotExpire),
                Some(ok),
                now
            )
            .is_err()
        );
    }
}
