//! VerifyMac: recomputes the HMAC of a message and compares it with the given MAC in constant
//! time. A mismatch is an error (`KMSInvalidMacException`, no message), never `MacValid: false`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generate_mac::{MacRequest, mac_audit_parameters, prepare_mac};
use super::{Blob, Operation, SecretBlob};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::MacAlgorithm;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMac {
    pub message: SecretBlob,
    pub key_id: String,
    pub mac_algorithm: MacAlgorithm,
    pub mac: Blob,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacOutput {
    pub key_id: String,
    pub mac_valid: bool,
    pub mac_algorithm: MacAlgorithm,
}

#[async_trait]
impl Operation for VerifyMac {
    const NAME: &'static str = "VerifyMac";
    const READ_ONLY: bool = true;
    type Output = VerifyMacOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(mac_audit_parameters(&self.key_id, self.mac_algorithm))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<VerifyMacOutput, KmsError> {
        let r = prepare_mac(
            kms,
            ctx,
            trail,
            (Self::NAME, KeyOp::VerifyMac),
            MacRequest {
                key_id: &self.key_id,
                message_len: self.message.0.len(),
                grant_tokens: self.grant_tokens.as_deref(),
                mac_algorithm: self.mac_algorithm,
                dry_run: self.dry_run,
            },
        )
        .await?;
        // Constant-time comparison (tresor_crypto::ct_eq).
        if !r
            .key
            .hmac_key()?
            .verify(self.message.0.expose(), &self.mac.0)
        {
            return Err(KmsError::InvalidMac);
        }
        Ok(VerifyMacOutput {
            key_id: r.key.arn.clone(),
            mac_valid: true,
            mac_algorithm: self.mac_algorithm,
        })
    }
}
