//! GenerateDataKeyWithoutPlaintext.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generate_data_key::{DataKeyRequest, data_key_audit_parameters, generate};
use super::{Blob, EncryptionContext, Operation};
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
        let g = generate(
            kms,
            ctx,
            trail,
            DataKeyRequest {
                operation: "GenerateDataKeyWithoutPlaintext",
                key_op: KeyOp::GenerateDataKeyWithoutPlaintext,
                key_id: &self.key_id,
                encryption_context: self.encryption_context,
                number_of_bytes: self.number_of_bytes,
                key_spec: self.key_spec,
                grant_tokens: self.grant_tokens.unwrap_or_default(),
                recipient: None,
                dry_run: self.dry_run == Some(true),
            },
        )
        .await?;
        // The plaintext data key is dropped (and zeroized) here, never returned.
        Ok(GenerateDataKeyWithoutPlaintextOutput {
            ciphertext_blob: Blob(g.ciphertext),
            key_id: g.key_arn,
            key_material_id: g.material_id.to_hex(),
        })
    }
}
