//! ReEncrypt: decrypt under the source key (`kms:ReEncryptFrom`) and encrypt under the destination
//! key (`kms:ReEncryptTo`) without the plaintext leaving the server.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    Blob, EncryptionContext, Operation, check_encryption_context, check_grant_tokens,
    check_symmetric_algorithm, context_json, open, params, put, require_symmetric_encryption, seal,
};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::{DryRunModifier, EncryptionAlgorithm};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReEncrypt {
    pub ciphertext_blob: Option<Blob>,
    pub source_encryption_context: Option<EncryptionContext>,
    pub source_key_id: Option<String>,
    pub destination_key_id: String,
    pub destination_encryption_context: Option<EncryptionContext>,
    pub source_encryption_algorithm: Option<EncryptionAlgorithm>,
    pub destination_encryption_algorithm: Option<EncryptionAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
    pub dry_run_modifiers: Option<Vec<DryRunModifier>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptOutput {
    pub ciphertext_blob: Blob,
    pub source_key_id: String,
    pub key_id: String,
    pub source_encryption_algorithm: EncryptionAlgorithm,
    pub destination_encryption_algorithm: EncryptionAlgorithm,
    /// Symmetric source keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_key_material_id: Option<String>,
    /// Symmetric destination keys only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_key_material_id: Option<String>,
}

#[async_trait]
impl Operation for ReEncrypt {
    const NAME: &'static str = "ReEncrypt";
    const READ_ONLY: bool = true;
    type Output = ReEncryptOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "sourceKeyId", self.source_key_id.clone());
        put(
            &mut m,
            "sourceEncryptionContext",
            self.source_encryption_context.as_ref().map(context_json),
        );
        put(
            &mut m,
            "sourceEncryptionAlgorithm",
            Some(
                self.source_encryption_algorithm
                    .unwrap_or(EncryptionAlgorithm::SymmetricDefault)
                    .as_str(),
            ),
        );
        put(
            &mut m,
            "destinationKeyId",
            Some(self.destination_key_id.clone()),
        );
        put(
            &mut m,
            "destinationEncryptionContext",
            self.destination_encryption_context
                .as_ref()
                .map(context_json),
        );
        put(
            &mut m,
            "destinationEncryptionAlgorithm",
            Some(
                self.destination_encryption_algorithm
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
    ) -> Result<ReEncryptOutput, KmsError> {
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        let source_ec = self.source_encryption_context.unwrap_or_default();
        check_encryption_context(&source_ec, "sourceEncryptionContext")?;
        let dest_ec = self.destination_encryption_context.unwrap_or_default();
        check_encryption_context(&dest_ec, "destinationEncryptionContext")?;
        let dry_run = self.dry_run == Some(true);
        // kms:ReEncryptOnSameKey: whether the source and destination are one key.
        let dest_loc = kms
            .locate(ctx, &self.destination_key_id, true, "ReEncryptTo")
            .await
            .ok()
            .map(|(_, id, _)| id);
        // The blob names its key; an asymmetric ciphertext does not, so SourceKeyId does.
        let blob_key = self
            .ciphertext_blob
            .as_ref()
            .and_then(|b| tresor_crypto::blob::parse_header(&b.0).ok())
            .map(|h| crate::types::KeyId(h.key_id));
        let source_loc = match (blob_key, &self.source_key_id) {
            (Some(id), _) => Some(id),
            (None, Some(id)) => kms
                .locate(ctx, id, true, "ReEncryptFrom")
                .await
                .ok()
                .map(|(_, id, _)| id),
            (None, None) => None,
        };
        let same_key = dest_loc.is_some() && dest_loc == source_loc;
        let source_alg = super::algorithm_name(self.source_encryption_algorithm);
        let source_access = |same: bool| {
            crate::authz::Access::new("ReEncryptFrom")
                .context(&source_ec)
                .tokens(&tokens)
                .with_str("kms:EncryptionAlgorithm", source_alg)
                .with_str("kms:ReEncryptOnSameKey", same.to_string())
        };
        let dest_access = crate::authz::Access::new("ReEncryptTo")
            .context(&dest_ec)
            .tokens(&tokens)
            .with_str(
                "kms:EncryptionAlgorithm",
                super::algorithm_name(self.destination_encryption_algorithm),
            )
            .with_str("kms:ReEncryptOnSameKey", same_key.to_string());
        let ignore_ciphertext = dry_run
            && self
                .dry_run_modifiers
                .as_deref()
                .unwrap_or_default()
                .contains(&DryRunModifier::IgnoreCiphertext);

        // Destination first is not observable; source first matches the order AWS documents.
        let blob = self.ciphertext_blob.as_ref().map(|b| b.0.as_slice());
        let asymmetric_source = match self.source_key_id.as_deref() {
            Some(id)
                if super::decrypt::may_be_asymmetric(
                    blob,
                    self.source_encryption_algorithm,
                    ignore_ciphertext,
                ) =>
            {
                super::decrypt::open_asymmetric(
                    kms,
                    ctx,
                    trail,
                    id,
                    "sourceKeyId",
                    if ignore_ciphertext { None } else { blob },
                    &source_ec,
                    self.source_encryption_algorithm,
                    source_access(same_key),
                    KeyOp::ReEncryptFrom,
                    "ReEncrypt",
                )
                .await?
            }
            _ => None,
        };
        // (plaintext, source key ARN, source algorithm, source material id)
        let source = if let Some(a) = asymmetric_source {
            Some((a.plaintext, a.key.arn.clone(), a.algorithm, None))
        } else if ignore_ciphertext {
            let key_id = self.source_key_id.as_deref().ok_or_else(|| {
                KmsError::validation_plain(
                    "SourceKeyId is required when DryRunModifiers contains IGNORE_CIPHERTEXT.",
                )
            })?;
            let r = kms
                .resolve_for(ctx, key_id, true, source_access(same_key), trail)
                .await?;
            kms.check_state(KeyOp::ReEncryptFrom, &r.key)?;
            require_symmetric_encryption(&r.key.record, &r.key.arn, "ReEncrypt")?;
            check_symmetric_algorithm(self.source_encryption_algorithm)?;
            None
        } else {
            let blob = self.ciphertext_blob.ok_or_else(|| {
                KmsError::validation("Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null")
            })?;
            let opened = open(
                kms,
                ctx,
                &blob.0,
                self.source_key_id.as_deref(),
                &source_ec,
                self.source_encryption_algorithm,
                KeyOp::ReEncryptFrom,
                source_access(same_key),
                trail,
                false,
            )
            .await?;
            Some((
                Some(opened.plaintext),
                opened.key.arn.clone(),
                EncryptionAlgorithm::SymmetricDefault,
                Some(opened.material_id),
            ))
        };
        let dest = kms
            .resolve_for(ctx, &self.destination_key_id, true, dest_access, trail)
            .await?;
        kms.check_state(KeyOp::ReEncryptTo, &dest.key)?;
        let dest_asymmetric = crate::asymmetric::is_asymmetric_encryption(&dest.key.record);
        let dest_alg = if dest_asymmetric {
            let alg = self
                .destination_encryption_algorithm
                .unwrap_or(EncryptionAlgorithm::SymmetricDefault);
            crate::asymmetric::oaep_hash(alg).ok_or_else(|| {
                crate::asymmetric::incompatible(alg.as_str(), dest.key.record.key_spec)
            })?;
            super::encrypt::check_no_context_for_asymmetric(&dest_ec)?;
            alg
        } else {
            require_symmetric_encryption(&dest.key.record, &dest.key.arn, "ReEncrypt")?;
            check_symmetric_algorithm(self.destination_encryption_algorithm)?
        };
        let Some((Some(plaintext), source_arn, source_alg, source_material)) = source else {
            return Err(KmsError::DryRunOperation);
        };
        let (blob, dest_material) = if dest_asymmetric {
            let (ciphertext, _) = super::encrypt::encrypt_asymmetric(
                &dest.key,
                &dest_ec,
                Some(dest_alg),
                plaintext.expose(),
                dry_run,
            )?;
            (ciphertext, None)
        } else {
            if dry_run {
                return Err(KmsError::DryRunOperation);
            }
            let (blob, material) = seal(&dest.key, &dest_ec, plaintext.expose())?;
            (blob, Some(material))
        };
        trail.set_param("sourceKeyId", source_arn.clone());
        if let Some(m) = source_material {
            trail.set_additional("sourceKeyMaterialId", m.to_hex());
        }
        if let Some(m) = dest_material {
            trail.set_additional("destinationKeyMaterialId", m.to_hex());
        }
        Ok(ReEncryptOutput {
            ciphertext_blob: Blob(blob),
            source_key_id: source_arn,
            key_id: dest.key.arn.clone(),
            source_encryption_algorithm: source_alg,
            destination_encryption_algorithm: dest_alg,
            source_key_material_id: source_material.map(|m| m.to_hex()),
            destination_key_material_id: dest_material.map(|m| m.to_hex()),
        })
    }
}
