//! DeriveSharedSecret: ECDH between the private key of a `KEY_AGREEMENT` key and a peer's public
//! key (DER `SubjectPublicKeyInfo` on the same curve). The shared secret is the raw ECDH output.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::decrypt::reject_recipient;
use super::{Blob, Operation, SecretBlob, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::{KeyAgreementAlgorithm, KeyUsage, Origin};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeriveSharedSecret {
    pub key_id: String,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    pub public_key: Blob,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
    #[serde(default)]
    pub recipient: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeriveSharedSecretOutput {
    pub key_id: String,
    pub shared_secret: SecretBlob,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    pub key_origin: Origin,
}

#[async_trait]
impl Operation for DeriveSharedSecret {
    const NAME: &'static str = "DeriveSharedSecret";
    const READ_ONLY: bool = true;
    type Output = DeriveSharedSecretOutput;

    // AWS-DEVIATION (unverified): the logged members (the peer's public key is not logged).
    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "keyAgreementAlgorithm",
            Some(self.key_agreement_algorithm.as_str()),
        );
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<DeriveSharedSecretOutput, KmsError> {
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        reject_recipient(&self.recipient)?;
        let access = crate::authz::Access::new("DeriveSharedSecret")
            .tokens(&tokens)
            .with_str(
                "kms:KeyAgreementAlgorithm",
                self.key_agreement_algorithm.as_str(),
            );
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::DeriveSharedSecret, &r.key)?;
        crate::asymmetric::require_usage(
            &r.key.record,
            &r.key.arn,
            KeyUsage::KeyAgreement,
            "DeriveSharedSecret",
        )?;
        // ECDH is the only key agreement algorithm (and the model's only value).
        let secret = r
            .key
            .asymmetric_key()?
            .derive_shared_secret(&self.public_key.0)
            // AWS answers a public key that is not a DER SubjectPublicKeyInfo on the key's
            // curve with a ValidationException without a message.
            .map_err(|_| KmsError::validation_plain(""))?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        Ok(DeriveSharedSecretOutput {
            key_id: r.key.arn.clone(),
            shared_secret: SecretBlob(secret),
            key_agreement_algorithm: self.key_agreement_algorithm,
            key_origin: r.key.record.origin,
        })
    }
}
