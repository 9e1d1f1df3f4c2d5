//! Encrypt.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Blob, EncryptionContext, Operation, SecretBlob, check_encryption_context, check_grant_tokens,
    check_plaintext_len, check_symmetric_algorithm, context_json, params, put,
    require_symmetric_encryption, seal,
};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::EncryptionAlgorithm;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Encrypt {
    pub key_id: String,
    pub plaintext: SecretBlob,
    #[serde(default)]
    pub encryption_context: Option<EncryptionContext>,
    #[serde(default)]
    pub grant_tokens: Option<Vec<String>>,
    #[serde(default)]
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptOutput {
    pub ciphertext_blob: Blob,
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
}

#[async_trait]
impl Operation for Encrypt {
    const NAME: &'static str = "Encrypt";
    const READ_ONLY: bool = true;
    type Output = EncryptOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "encryptionContext",
            self.encryption_context.as_ref().map(context_json),
        );
        put(
            &mut m,
            "encryptionAlgorithm",
            Some(
                self.encryption_algorithm
                    .unwrap_or(EncryptionAlgorithm::SymmetricDefault)
                    .as_str(),
            ),
        );
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<EncryptOutput, KmsError> {
        check_plaintext_len(self.plaintext.0.len())?;
        let ec = self.encryption_context.unwrap_or_default();
        check_encryption_context(&ec, "encryptionContext")?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let access = crate::authz::Access::new("Encrypt")
            .context(&ec)
            .tokens(&tokens)
            .with_str(
                "kms:EncryptionAlgorithm",
                super::algorithm_name(self.encryption_algorithm),
            );
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::Encrypt, &r.key)?;
        if crate::asymmetric::is_asymmetric_encryption(&r.key.record) {
            let (ciphertext, algorithm) = encrypt_asymmetric(
                &r.key,
                &ec,
                self.encryption_algorithm,
                self.plaintext.0.expose(),
                self.dry_run == Some(true),
            )?;
            return Ok(EncryptOutput {
                ciphertext_blob: Blob(ciphertext),
                key_id: r.key.arn.clone(),
                encryption_algorithm: algorithm,
            });
        }
        require_symmetric_encryption(&r.key.record, &r.key.arn, "Encrypt")?;
        let algorithm = check_symmetric_algorithm(self.encryption_algorithm)?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        let (blob, material_id) = seal(&r.key, &ec, self.plaintext.0.expose())?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(EncryptOutput {
            ciphertext_blob: Blob(blob),
            key_id: r.key.arn.clone(),
            encryption_algorithm: algorithm,
        })
    }
}

/// Encrypt under an asymmetric (RSA) `ENCRYPT_DECRYPT` key: the raw RSAES-OAEP output, with no
/// header (Decrypt needs the KeyId and the algorithm again). `EncryptionAlgorithm` is required
/// (the `SYMMETRIC_DEFAULT` default is incompatible), the encryption context is not supported,
/// and the plaintext limit depends on the key spec and algorithm.
pub(crate) fn encrypt_asymmetric(
    key: &crate::kms::LoadedKey,
    ec: &EncryptionContext,
    algorithm: Option<EncryptionAlgorithm>,
    plaintext: &[u8],
    dry_run: bool,
) -> Result<(Vec<u8>, EncryptionAlgorithm), KmsError> {
    let spec = key.record.key_spec;
    let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    let hash = crate::asymmetric::oaep_hash(algorithm)
        .ok_or_else(|| crate::asymmetric::incompatible(algorithm.as_str(), spec))?;
    check_no_context_for_asymmetric(ec)?;
    let max = crate::asymmetric::asymmetric_spec(spec)
        .and_then(|s| s.oaep_max_plaintext(hash))
        .ok_or_else(|| KmsError::internal(format!("{spec} has no OAEP limit")))?;
    if plaintext.len() > max {
        return Err(KmsError::validation_plain(format!(
            "Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {max} bytes."
        )));
    }
    if dry_run {
        return Err(KmsError::DryRunOperation);
    }
    let ciphertext = key
        .asymmetric_key()?
        .oaep_encrypt(hash, plaintext)
        .map_err(KmsError::internal)?;
    Ok((ciphertext, algorithm))
}

/// Asymmetric encryption takes no encryption context.
pub(crate) fn check_no_context_for_asymmetric(ec: &EncryptionContext) -> Result<(), KmsError> {
    if ec.is_empty() {
        Ok(())
    } else {
        // AWS-DEVIATION (unverified text): AWS rejects an encryption context with asymmetric
        // keys; the exception and text are Tresor's choice.
        Err(KmsError::validation_plain(
            "EncryptionContext is not supported with asymmetric KMS keys.",
        ))
    }
}
