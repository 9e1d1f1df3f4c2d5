//! DeleteImportedKeyMaterial: the key's imported material is deleted and the key waits for it
//! again (`PendingImport`; a key pending deletion stays so). Ciphertexts remain decryptable once
//! the same material is imported again.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::origin_not_valid;
use crate::state::{self, KeyOp};
use crate::types::{KeyState, Origin};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteImportedKeyMaterial {
    pub key_id: String,
    pub key_material_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteImportedKeyMaterialOutput {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_id: Option<String>,
}

#[async_trait]
impl Operation for DeleteImportedKeyMaterial {
    const NAME: &'static str = "DeleteImportedKeyMaterial";
    const READ_ONLY: bool = false;
    type Output = DeleteImportedKeyMaterialOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "keyMaterialId", self.key_material_id.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<DeleteImportedKeyMaterialOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "DeleteImportedKeyMaterial", trail)
            .await?;
        kms.check_state(KeyOp::DeleteImportedKeyMaterial, &r.key)?;
        if r.key.record.origin != Origin::External {
            return Err(origin_not_valid(&r.key.arn, r.key.record.origin));
        }
        let arn = r.key.arn.clone();
        let imported = r.key.record.imported.as_ref().map(|i| i.material_id);
        if let (Some(given), Some(id)) = (&self.key_material_id, imported)
            && given != &id.to_hex()
        {
            // AWS-DEVIATION (unverified text).
            return Err(KmsError::NotFound(format!(
                "Key material {given} does not exist for {arn}."
            )));
        }
        let Some(material_id) = imported else {
            // Nothing was ever imported: no effect.
            return Ok(DeleteImportedKeyMaterialOutput {
                key_id: arn,
                key_material_id: None,
            });
        };
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::DeleteImportedKeyMaterial, k.state, &arn)?;
            k.materials.retain(|m| m.id != material_id);
            if matches!(k.state, KeyState::Enabled | KeyState::Disabled) {
                k.state = KeyState::PendingImport;
            }
            Ok(())
        })
        .await?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(DeleteImportedKeyMaterialOutput {
            key_id: arn,
            key_material_id: Some(material_id.to_hex()),
        })
    }
}
