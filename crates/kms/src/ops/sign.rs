//! Sign: a signature over a message or its digest with the private key of an asymmetric
//! `SIGN_VERIFY` key.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tresor_crypto::asymmetric::Message;

use super::{Blob, Operation, SecretBlob, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, Resolved};
use crate::state::KeyOp;
use crate::types::{MessageType, SigningAlgorithm};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Sign {
    pub key_id: String,
    /// The message or digest (AWS treats it as sensitive: never logged).
    pub message: SecretBlob,
    #[serde(default)]
    pub message_type: Option<MessageType>,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    pub signing_algorithm: SigningAlgorithm,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignOutput {
    pub key_id: String,
    pub signature: Blob,
    pub signing_algorithm: SigningAlgorithm,
}

/// CloudTrail `requestParameters` of Sign and Verify (never the message or signature).
// AWS-DEVIATION (unverified): no `additionalEventData.keyMaterialId` for asymmetric keys.
pub(crate) fn signing_audit_parameters(
    key_id: &str,
    message_type: Option<MessageType>,
    algorithm: SigningAlgorithm,
) -> Map<String, Value> {
    let mut m = params();
    put(&mut m, "keyId", Some(key_id.to_owned()));
    put(
        &mut m,
        "messageType",
        Some(message_type.unwrap_or(MessageType::Raw).as_str()),
    );
    put(&mut m, "signingAlgorithm", Some(algorithm.as_str()));
    m
}

/// What Sign and Verify share in a request.
pub(crate) struct Signing<'a> {
    pub key_id: &'a str,
    pub message_len: usize,
    pub message_type: Option<MessageType>,
    pub grant_tokens: Option<&'a [String]>,
    pub signing_algorithm: SigningAlgorithm,
    pub dry_run: Option<bool>,
}

/// The checks Sign and Verify share, in order: message length, grant tokens, authorization (with
/// `kms:SigningAlgorithm` and `kms:MessageType`), key state, key usage and algorithm, DryRun.
/// Returns the key, the algorithm for the crypto layer and the message type.
pub(crate) async fn prepare_signing(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    (name, key_op): (&'static str, KeyOp),
    req: Signing<'_>,
) -> Result<
    (
        Resolved,
        tresor_crypto::asymmetric::SigningAlgorithm,
        MessageType,
    ),
    KmsError,
> {
    crate::asymmetric::check_message_len(req.message_len)?;
    let tokens = req.grant_tokens.unwrap_or_default();
    check_grant_tokens(tokens)?;
    let message_type = req.message_type.unwrap_or(MessageType::Raw);
    let access = crate::authz::Access::new(name)
        .tokens(tokens)
        .with_str("kms:SigningAlgorithm", req.signing_algorithm.as_str())
        .with_str("kms:MessageType", message_type.as_str());
    let r = kms
        .resolve_for(ctx, req.key_id, true, access, trail)
        .await?;
    kms.check_state(key_op, &r.key)?;
    let algorithm = crate::asymmetric::check_signing(
        &r.key.record,
        &r.key.arn,
        name,
        req.signing_algorithm,
        message_type,
        req.message_len,
    )?;
    if req.dry_run == Some(true) {
        return Err(KmsError::DryRunOperation);
    }
    Ok((r, algorithm, message_type))
}

/// The message in the form the crypto layer takes.
pub(crate) fn message_of(message_type: MessageType, bytes: &[u8]) -> Message<'_> {
    match message_type {
        MessageType::Digest => Message::Digest(bytes),
        MessageType::Raw | MessageType::ExternalMu => Message::Raw(bytes),
    }
}

#[async_trait]
impl Operation for Sign {
    const NAME: &'static str = "Sign";
    const READ_ONLY: bool = true;
    type Output = SignOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(signing_audit_parameters(
            &self.key_id,
            self.message_type,
            self.signing_algorithm,
        ))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<SignOutput, KmsError> {
        let (r, algorithm, message_type) = prepare_signing(
            kms,
            ctx,
            trail,
            (Self::NAME, KeyOp::Sign),
            Signing {
                key_id: &self.key_id,
                message_len: self.message.0.len(),
                message_type: self.message_type,
                grant_tokens: self.grant_tokens.as_deref(),
                signing_algorithm: self.signing_algorithm,
                dry_run: self.dry_run,
            },
        )
        .await?;
        let signature = r
            .key
            .asymmetric_key()?
            .sign(algorithm, message_of(message_type, self.message.0.expose()))
            .map_err(KmsError::internal)?;
        Ok(SignOutput {
            key_id: r.key.arn.clone(),
            signature: Blob(signature),
            signing_algorithm: self.signing_algorithm,
        })
    }
}
