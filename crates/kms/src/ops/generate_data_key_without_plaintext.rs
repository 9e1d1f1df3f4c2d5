//! GenerateDataKeyWithoutPlaintext.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generate_data_key::{data_key_audit_parameters, data_key_length};
use super::{
    Blob, EncryptionContext, Operation, check_encryption_context, check_grant_tokens,
    require_symmetric_encryption, seal,
};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::DataKeySpec;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateDataKeyWithoutPlaintext {
    pub key_id: String,
    pub encryption_context: Option<EncryptionContext>,
    pub key_spec: Option<DataKeySpec>,
    pub number_of_bytes: Option<i64>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyWithoutPlaintextOutput {
    pub ciphertext_blob: Blob,
    pub key_id: String,
    pub key_material_id: String,
}

#[async_trait]
impl Operation for GenerateDataKeyWithoutPlaintext {
    const NAME: &'static str = "GenerateDataKeyWithoutPlaintext";
    const READ_ONLY: bool = true;
    type Output = GenerateDataKeyWithoutPlaintextOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(data_key_audit_parameters(
            &self.key_id,
            self.encryption_context.as_ref(),
            self.number_of_bytes,
            self.key_spec,
        ))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GenerateDataKeyWithoutPlaintextOutput, KmsError> {
        let len = data_key_length(self.number_of_bytes, self.key_spec)?;
        let ec = self.encryption_context.unwrap_or_default();
        check_encryption_context(&ec, "encryptionContext")?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let access = crate::authz::Access::new("GenerateDataKeyWithoutPlaintext")
            .context(&ec)
            .tokens(&tokens)
            .with_str("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::GenerateDataKeyWithoutPlaintext, &r.key)?;
        require_symmetric_encryption(&r.key.record, &r.key.arn, "GenerateDataKeyWithoutPlaintext")?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = tresor_crypto::random_bytes(len).map_err(KmsError::internal)?;
        let (blob, material_id) = seal(&r.key, &ec, plaintext.expose())?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(GenerateDataKeyWithoutPlaintextOutput {
            ciphertext_blob: Blob(blob),
            key_id: r.key.arn.clone(),
            key_material_id: material_id.to_hex(),
        })
    }
}
