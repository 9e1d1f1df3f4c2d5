//! GenerateDataKeyPairWithoutPlaintext: as GenerateDataKeyPair, without the plaintext private key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generate_data_key_pair::{generate_sealed_pair, pair_audit_parameters};
use super::{Blob, EncryptionContext, Operation};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::DataKeyPairSpec;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairWithoutPlaintext {
    #[serde(default)]
    pub encryption_context: Option<EncryptionContext>,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairWithoutPlaintextOutput {
    pub private_key_ciphertext_blob: Blob,
    pub public_key: Blob,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: String,
}

#[async_trait]
impl Operation for GenerateDataKeyPairWithoutPlaintext {
    const NAME: &'static str = "GenerateDataKeyPairWithoutPlaintext";
    const READ_ONLY: bool = true;
    type Output = GenerateDataKeyPairWithoutPlaintextOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(pair_audit_parameters(
            &self.key_id,
            self.key_pair_spec,
            self.encryption_context.as_ref(),
        ))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GenerateDataKeyPairWithoutPlaintextOutput, KmsError> {
        let ec = self.encryption_context.clone().unwrap_or_default();
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        let sealed = generate_sealed_pair(
            kms,
            ctx,
            trail,
            "GenerateDataKeyPairWithoutPlaintext",
            KeyOp::GenerateDataKeyPairWithoutPlaintext,
            &self.key_id,
            self.key_pair_spec,
            &ec,
            &tokens,
            self.dry_run == Some(true),
        )
        .await?;
        // The plaintext private key is dropped (and zeroized) here.
        Ok(GenerateDataKeyPairWithoutPlaintextOutput {
            private_key_ciphertext_blob: Blob(sealed.private_key_ciphertext),
            public_key: Blob(sealed.public_key),
            key_id: sealed.key_arn,
            key_pair_spec: self.key_pair_spec,
            key_material_id: sealed.material_id.to_hex(),
        })
    }
}
