//! VerifyMac: recomputes the HMAC of a message and compares it with the given MAC in constant
//! time. A mismatch is an error (`KMSInvalidMacException`, no message), never `MacValid: false`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::generate_mac::mac_audit_parameters;
use super::{Blob, Operation, SecretBlob, check_grant_tokens};
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
        crate::asymmetric::check_message_len(self.message.0.len())?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let access = crate::authz::Access::new("VerifyMac")
            .tokens(&tokens)
            .with_str("kms:MacAlgorithm", self.mac_algorithm.as_str());
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::VerifyMac, &r.key)?;
        crate::asymmetric::check_mac(&r.key.record, &r.key.arn, "VerifyMac", self.mac_algorithm)?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
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
