//! GenerateMac: an RFC 2104 HMAC of a message under an HMAC key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Blob, Operation, SecretBlob, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::MacAlgorithm;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateMac {
    pub message: SecretBlob,
    pub key_id: String,
    pub mac_algorithm: MacAlgorithm,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateMacOutput {
    pub mac: Blob,
    pub mac_algorithm: MacAlgorithm,
    pub key_id: String,
}

/// CloudTrail `requestParameters` of GenerateMac and VerifyMac (never the message or MAC).
pub(crate) fn mac_audit_parameters(key_id: &str, algorithm: MacAlgorithm) -> Map<String, Value> {
    let mut m = params();
    put(&mut m, "keyId", Some(key_id.to_owned()));
    put(&mut m, "macAlgorithm", Some(algorithm.as_str()));
    m
}

#[async_trait]
impl Operation for GenerateMac {
    const NAME: &'static str = "GenerateMac";
    const READ_ONLY: bool = true;
    type Output = GenerateMacOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(mac_audit_parameters(&self.key_id, self.mac_algorithm))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GenerateMacOutput, KmsError> {
        crate::asymmetric::check_message_len(self.message.0.len())?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let access = crate::authz::Access::new("GenerateMac")
            .tokens(&tokens)
            .with_str("kms:MacAlgorithm", self.mac_algorithm.as_str());
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::GenerateMac, &r.key)?;
        crate::asymmetric::check_mac(&r.key.record, &r.key.arn, "GenerateMac", self.mac_algorithm)?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        let mac = r.key.hmac_key()?.mac(self.message.0.expose());
        Ok(GenerateMacOutput {
            mac: Blob(mac),
            mac_algorithm: self.mac_algorithm,
            key_id: r.key.arn.clone(),
        })
    }
}
