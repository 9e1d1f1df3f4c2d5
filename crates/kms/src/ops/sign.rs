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
use crate::kms::Kms;
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
        crate::asymmetric::check_message_len(self.message.0.len())?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let message_type = self.message_type.unwrap_or(MessageType::Raw);
        let access = crate::authz::Access::new("Sign")
            .tokens(&tokens)
            .with_str("kms:SigningAlgorithm", self.signing_algorithm.as_str())
            .with_str("kms:MessageType", message_type.as_str());
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::Sign, &r.key)?;
        let algorithm = crate::asymmetric::check_signing(
            &r.key.record,
            &r.key.arn,
            "Sign",
            self.signing_algorithm,
            message_type,
            self.message.0.len(),
        )?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
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
