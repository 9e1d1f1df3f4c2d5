//! GenerateMac: an RFC 2104 HMAC of a message under an HMAC key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Blob, Operation, SecretBlob, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, Resolved};
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

/// What GenerateMac and VerifyMac share in a request.
pub(crate) struct MacRequest<'a> {
    pub key_id: &'a str,
    pub message_len: usize,
    pub grant_tokens: Option<&'a [String]>,
    pub mac_algorithm: MacAlgorithm,
    pub dry_run: Option<bool>,
}

/// The checks GenerateMac and VerifyMac share, in order: message length, grant tokens,
/// authorization (with `kms:MacAlgorithm`), key state, key usage and algorithm, DryRun.
pub(crate) async fn prepare_mac(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    (name, key_op): (&'static str, KeyOp),
    req: MacRequest<'_>,
) -> Result<Resolved, KmsError> {
    crate::asymmetric::check_message_len(req.message_len)?;
    let tokens = req.grant_tokens.unwrap_or_default();
    check_grant_tokens(tokens)?;
    let access = crate::authz::Access::new(name)
        .tokens(tokens)
        .with_str("kms:MacAlgorithm", req.mac_algorithm.as_str());
    let r = kms
        .resolve_for(ctx, req.key_id, true, access, trail)
        .await?;
    kms.check_state(key_op, &r.key)?;
    crate::asymmetric::check_mac(&r.key.record, &r.key.arn, name, req.mac_algorithm)?;
    if req.dry_run == Some(true) {
        return Err(KmsError::DryRunOperation);
    }
    Ok(r)
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
        let r = prepare_mac(
            kms,
            ctx,
            trail,
            (Self::NAME, KeyOp::GenerateMac),
            MacRequest {
                key_id: &self.key_id,
                message_len: self.message.0.len(),
                grant_tokens: self.grant_tokens.as_deref(),
                mac_algorithm: self.mac_algorithm,
                dry_run: self.dry_run,
            },
        )
        .await?;
        let mac = r.key.hmac_key()?.mac(self.message.0.expose());
        Ok(GenerateMacOutput {
            mac: Blob(mac),
            mac_algorithm: self.mac_algorithm,
            key_id: r.key.arn.clone(),
        })
    }
}
