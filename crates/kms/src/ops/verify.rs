//! Verify: checks a signature with the public key of an asymmetric `SIGN_VERIFY` key. A bad
//! signature is an error (`KMSInvalidSignatureException`, no message), never
//! `SignatureValid: false`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::sign::{Signing, message_of, prepare_signing, signing_audit_parameters};
use super::{Blob, Operation, SecretBlob};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::{MessageType, SigningAlgorithm};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Verify {
    pub key_id: String,
    pub message: SecretBlob,
    #[serde(default)]
    pub message_type: Option<MessageType>,
    pub signature: Blob,
    pub signing_algorithm: SigningAlgorithm,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyOutput {
    pub key_id: String,
    pub signature_valid: bool,
    pub signing_algorithm: SigningAlgorithm,
}

#[async_trait]
impl Operation for Verify {
    const NAME: &'static str = "Verify";
    const READ_ONLY: bool = true;
    type Output = VerifyOutput;

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
    ) -> Result<VerifyOutput, KmsError> {
        let (r, algorithm, message_type) = prepare_signing(
            kms,
            ctx,
            trail,
            (Self::NAME, KeyOp::Verify),
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
        let valid = r.key.asymmetric_key()?.verify(
            algorithm,
            message_of(message_type, self.message.0.expose()),
            &self.signature.0,
        );
        if !valid {
            return Err(KmsError::InvalidSignature);
        }
        Ok(VerifyOutput {
            key_id: r.key.arn.clone(),
            signature_valid: true,
            signing_algorithm: self.signing_algorithm,
        })
    }
}
