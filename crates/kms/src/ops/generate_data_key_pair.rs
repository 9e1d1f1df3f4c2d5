//! GenerateDataKeyPair: a fresh asymmetric key pair for use outside KMS. The private key (PKCS#8
//! DER) is returned in plaintext and as a normal symmetric KMS ciphertext under the wrapping key
//! and encryption context, so `Decrypt` with the same context returns it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::decrypt::reject_recipient;
use super::{
    Blob, EncryptionContext, Operation, SecretBlob, check_encryption_context, check_grant_tokens,
    context_json, params, put, require_symmetric_encryption, seal,
};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::DataKeyPairSpec;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPair {
    #[serde(default)]
    pub encryption_context: Option<EncryptionContext>,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub recipient: Option<Value>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairOutput {
    pub private_key_ciphertext_blob: Blob,
    pub private_key_plaintext: SecretBlob,
    pub public_key: Blob,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: String,
}

/// CloudTrail `requestParameters` of both pair operations.
pub(crate) fn pair_audit_parameters(
    key_id: &str,
    spec: DataKeyPairSpec,
    ec: Option<&EncryptionContext>,
) -> Map<String, Value> {
    let mut m = params();
    put(&mut m, "keyId", Some(key_id.to_owned()));
    put(&mut m, "keyPairSpec", Some(spec.as_str()));
    put(&mut m, "encryptionContext", ec.map(context_json));
    m
}

/// A generated data key pair, its private key sealed under the wrapping key.
pub(crate) struct SealedPair {
    pub key_arn: String,
    pub private_key_pkcs8: tresor_crypto::SecretBytes,
    pub private_key_ciphertext: Vec<u8>,
    pub public_key: Vec<u8>,
    pub material_id: tresor_crypto::KeyMaterialId,
}

/// The work both pair operations share: checks, authorization (`action`), generation (on a
/// blocking thread: RSA key generation is slow) and sealing of the PKCS#8 private key.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn generate_sealed_pair(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    action: &'static str,
    op: KeyOp,
    key_id: &str,
    spec: DataKeyPairSpec,
    ec: &EncryptionContext,
    tokens: &[String],
    dry_run: bool,
) -> Result<SealedPair, KmsError> {
    check_encryption_context(ec, "encryptionContext")?;
    check_grant_tokens(tokens)?;
    let access = crate::authz::Access::new(action)
        .context(ec)
        .tokens(tokens)
        .with_str("kms:DataKeyPairSpec", spec.as_str())
        .with_str("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    let r = kms.resolve_for(ctx, key_id, true, access, trail).await?;
    kms.check_state(op, &r.key)?;
    require_symmetric_encryption(&r.key.record, &r.key.arn, action)?;
    let Some(pair_spec) = crate::asymmetric::data_key_pair_spec(spec) else {
        // AWS-DEVIATION (unverified text): SM2 exists in AWS China Regions only.
        return Err(KmsError::UnsupportedOperation(
            "KeyPairSpec SM2 is not supported by this server (AWS offers it in China Regions only)."
                .to_owned(),
        ));
    };
    if dry_run {
        return Err(KmsError::DryRunOperation);
    }
    let pair = tokio::task::spawn_blocking(move || {
        tresor_crypto::asymmetric::generate(
            pair_spec,
            tresor_crypto::asymmetric::KeyPurpose::Signing,
        )
    })
    .await
    .map_err(KmsError::internal)?
    .map_err(KmsError::internal)?;
    let (blob, material_id) = seal(&r.key, ec, pair.private_key_pkcs8.expose())?;
    trail.set_additional("keyMaterialId", material_id.to_hex());
    Ok(SealedPair {
        key_arn: r.key.arn.clone(),
        private_key_pkcs8: pair.private_key_pkcs8,
        private_key_ciphertext: blob,
        public_key: pair.public_key_der,
        material_id,
    })
}

#[async_trait]
impl Operation for GenerateDataKeyPair {
    const NAME: &'static str = "GenerateDataKeyPair";
    const READ_ONLY: bool = true;
    type Output = GenerateDataKeyPairOutput;

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
    ) -> Result<GenerateDataKeyPairOutput, KmsError> {
        reject_recipient(&self.recipient)?;
        let ec = self.encryption_context.clone().unwrap_or_default();
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        let sealed = generate_sealed_pair(
            kms,
            ctx,
            trail,
            "GenerateDataKeyPair",
            KeyOp::GenerateDataKeyPair,
            &self.key_id,
            self.key_pair_spec,
            &ec,
            &tokens,
            self.dry_run == Some(true),
        )
        .await?;
        Ok(GenerateDataKeyPairOutput {
            private_key_ciphertext_blob: Blob(sealed.private_key_ciphertext),
            private_key_plaintext: SecretBlob(sealed.private_key_pkcs8),
            public_key: Blob(sealed.public_key),
            key_id: sealed.key_arn,
            key_pair_spec: self.key_pair_spec,
            key_material_id: sealed.material_id.to_hex(),
        })
    }
}
