//! Decrypt.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Blob, EncryptionContext, Operation, SecretBlob, algorithm_name, check_encryption_context,
    check_grant_tokens, context_json, open, params, put, require_symmetric_encryption,
};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::{DryRunModifier, EncryptionAlgorithm};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Decrypt {
    pub ciphertext_blob: Option<Blob>,
    pub encryption_context: Option<EncryptionContext>,
    pub grant_tokens: Option<Vec<String>>,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    pub recipient: Option<Value>,
    pub dry_run: Option<bool>,
    pub dry_run_modifiers: Option<Vec<DryRunModifier>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptOutput {
    pub key_id: String,
    pub plaintext: SecretBlob,
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Symmetric keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_id: Option<String>,
}

/// The `Recipient` parameter needs a Nitro attestation document, which Tresor cannot verify.
pub(crate) fn reject_recipient(recipient: &Option<Value>) -> Result<(), KmsError> {
    match recipient {
        // AWS-DEVIATION: attested Recipient requests (Nitro Enclaves) are not supported.
        Some(v) if !v.is_null() => Err(KmsError::UnsupportedOperation(
            "The Recipient parameter (attested enclave requests) is not supported by this server."
                .to_owned(),
        )),
        _ => Ok(()),
    }
}

#[async_trait]
impl Operation for Decrypt {
    const NAME: &'static str = "Decrypt";
    const READ_ONLY: bool = true;
    type Output = DecryptOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", self.key_id.clone());
        put(
            &mut m,
            "encryptionContext",
            self.encryption_context.as_ref().map(context_json),
        );
        // Always logged, even when the caller did not send it.
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
    ) -> Result<DecryptOutput, KmsError> {
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        reject_recipient(&self.recipient)?;
        let ec = self.encryption_context.unwrap_or_default();
        check_encryption_context(&ec, "encryptionContext")?;
        let dry_run = self.dry_run == Some(true);
        let ignore_ciphertext = dry_run
            && self
                .dry_run_modifiers
                .as_deref()
                .unwrap_or_default()
                .contains(&DryRunModifier::IgnoreCiphertext);
        // Asymmetric ciphertexts are raw RSAES-OAEP output: the caller names the key. Requests
        // that name a key and look asymmetric are resolved first; symmetric keys continue below.
        // AWS-DEVIATION (unverified): for such requests the key is authorized before the
        // ciphertext is examined.
        if let Some(key_id) = self.key_id.as_deref() {
            let blob = self.ciphertext_blob.as_ref().map(|b| b.0.as_slice());
            if may_be_asymmetric(blob, self.encryption_algorithm, ignore_ciphertext) {
                let access = crate::authz::Access::new("Decrypt")
                    .context(&ec)
                    .tokens(&tokens)
                    .with_str(
                        "kms:EncryptionAlgorithm",
                        algorithm_name(self.encryption_algorithm),
                    );
                let opened = open_asymmetric(
                    kms,
                    ctx,
                    trail,
                    key_id,
                    "keyId",
                    if ignore_ciphertext { None } else { blob },
                    &ec,
                    self.encryption_algorithm,
                    access,
                    KeyOp::Decrypt,
                    "Decrypt",
                )
                .await?;
                if let Some(opened) = opened {
                    let Some(plaintext) = opened.plaintext else {
                        return Err(KmsError::DryRunOperation);
                    };
                    if dry_run {
                        return Err(KmsError::DryRunOperation);
                    }
                    return Ok(DecryptOutput {
                        key_id: opened.key.arn.clone(),
                        plaintext: SecretBlob(plaintext),
                        encryption_algorithm: opened.algorithm,
                        key_material_id: None,
                    });
                }
            }
        }
        if ignore_ciphertext {
            // Only authorization and key checks are tested.
            let key_id = self.key_id.as_deref().ok_or_else(|| {
                KmsError::validation_plain(
                    "KeyId is required when DryRunModifiers contains IGNORE_CIPHERTEXT.",
                )
            })?;
            let access = crate::authz::Access::new("Decrypt")
                .context(&ec)
                .tokens(&tokens)
                .with_str(
                    "kms:EncryptionAlgorithm",
                    algorithm_name(self.encryption_algorithm),
                );
            let r = kms.resolve_for(ctx, key_id, true, access, trail).await?;
            trail.set_param("keyId", r.key.arn.clone());
            kms.check_state(KeyOp::Decrypt, &r.key)?;
            require_symmetric_encryption(&r.key.record, &r.key.arn, "Decrypt")?;
            super::check_symmetric_algorithm(self.encryption_algorithm)?;
            return Err(KmsError::DryRunOperation);
        }
        let blob = self.ciphertext_blob.ok_or_else(|| {
            KmsError::validation("Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
        })?;
        let opened = open(
            kms,
            ctx,
            &blob.0,
            self.key_id.as_deref(),
            &ec,
            self.encryption_algorithm,
            KeyOp::Decrypt,
            crate::authz::Access::new("Decrypt")
                .context(&ec)
                .tokens(&tokens)
                .with_str(
                    "kms:EncryptionAlgorithm",
                    algorithm_name(self.encryption_algorithm),
                ),
            trail,
            dry_run,
        )
        .await?;
        trail.set_param("keyId", opened.key.arn.clone());
        Ok(DecryptOutput {
            key_id: opened.key.arn.clone(),
            plaintext: SecretBlob(opened.plaintext),
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            key_material_id: Some(opened.material_id.to_hex()),
        })
    }
}

/// Whether a request that names a key may be an asymmetric decryption: an asymmetric
/// algorithm, a ciphertext that is not a Tresor blob, or a dry run without ciphertext.
pub(crate) fn may_be_asymmetric(
    blob: Option<&[u8]>,
    algorithm: Option<EncryptionAlgorithm>,
    ignore_ciphertext: bool,
) -> bool {
    ignore_ciphertext
        || matches!(
            algorithm,
            Some(
                EncryptionAlgorithm::RsaesOaepSha1
                    | EncryptionAlgorithm::RsaesOaepSha256
                    | EncryptionAlgorithm::Sm2Pke
            )
        )
        || blob.is_some_and(|b| tresor_crypto::blob::parse_header(b).is_err())
}

/// A ciphertext opened by [`open_asymmetric`].
pub(crate) struct AsymmetricOpened {
    pub key: std::sync::Arc<crate::kms::LoadedKey>,
    /// `None` when no ciphertext was given (a dry run with `IGNORE_CIPHERTEXT`).
    pub plaintext: Option<tresor_crypto::SecretBytes>,
    pub algorithm: EncryptionAlgorithm,
}

/// The decrypt half of Decrypt and ReEncrypt for asymmetric (RSA) `ENCRYPT_DECRYPT` keys named
/// by `key_id`: authorize `access`, check state, usage, algorithm (required: the
/// `SYMMETRIC_DEFAULT` default is incompatible) and the absence of an encryption context, then
/// RSAES-OAEP-decrypt `blob` (every failure is `InvalidCiphertextException`). `Ok(None)` when
/// the key turns out to be a symmetric encryption key (the caller continues symmetrically).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn open_asymmetric(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    key_id: &str,
    key_param: &str,
    blob: Option<&[u8]>,
    ec: &EncryptionContext,
    algorithm: Option<EncryptionAlgorithm>,
    access: crate::authz::Access<'_>,
    op: KeyOp,
    operation: &str,
) -> Result<Option<AsymmetricOpened>, KmsError> {
    let r = kms.resolve_for(ctx, key_id, true, access, trail).await?;
    let record = &r.key.record;
    if record.key_spec == crate::types::KeySpec::SymmetricDefault {
        return Ok(None);
    }
    trail.set_param(key_param, r.key.arn.clone());
    kms.check_state(op, &r.key)?;
    crate::asymmetric::require_usage(
        record,
        &r.key.arn,
        crate::types::KeyUsage::EncryptDecrypt,
        operation,
    )?;
    let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    let hash = crate::asymmetric::oaep_hash(algorithm)
        .ok_or_else(|| crate::asymmetric::incompatible(algorithm.as_str(), record.key_spec))?;
    super::encrypt::check_no_context_for_asymmetric(ec)?;
    let plaintext = match blob {
        None => None,
        Some(blob) => Some(
            r.key
                .asymmetric_key()?
                .oaep_decrypt(hash, blob)
                .map_err(|_| KmsError::InvalidCiphertext)?,
        ),
    };
    Ok(Some(AsymmetricOpened {
        key: r.key,
        plaintext,
        algorithm,
    }))
}
