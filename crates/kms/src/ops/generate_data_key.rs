//! GenerateDataKey.

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
use crate::types::DataKeySpec;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateDataKey {
    pub key_id: String,
    pub encryption_context: Option<EncryptionContext>,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<DataKeySpec>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyOutput {
    pub ciphertext_blob: Blob,
    pub plaintext: SecretBlob,
    pub key_id: String,
    pub key_material_id: String,
}

/// Exactly one of `NumberOfBytes` (1–1024) and `KeySpec`.
pub(crate) fn data_key_length(
    number_of_bytes: Option<i64>,
    key_spec: Option<DataKeySpec>,
) -> Result<usize, KmsError> {
    match (number_of_bytes, key_spec) {
        (Some(n), None) => {
            if n < 1 {
                return Err(KmsError::validation(format!(
                    "Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
            if n > 1024 {
                return Err(KmsError::validation(format!(
                    "Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
                )));
            }
            usize::try_from(n).map_err(KmsError::internal)
        }
        (None, Some(spec)) => Ok(spec.number_of_bytes()),
        // AWS-DEVIATION (unverified text): the message emulators and SDK users see; AWS's exact text is unconfirmed.
        _ => Err(KmsError::validation_plain(
            "Please specify either number of bytes or key spec.",
        )),
    }
}

pub(crate) fn data_key_audit_parameters(
    key_id: &str,
    ec: Option<&EncryptionContext>,
    number_of_bytes: Option<i64>,
    key_spec: Option<DataKeySpec>,
) -> Map<String, Value> {
    let mut m = params();
    put(&mut m, "keyId", Some(key_id.to_owned()));
    put(&mut m, "encryptionContext", ec.map(context_json));
    put(&mut m, "numberOfBytes", number_of_bytes);
    put(&mut m, "keySpec", key_spec.map(|s| s.as_str()));
    m
}

#[async_trait]
impl Operation for GenerateDataKey {
    const NAME: &'static str = "GenerateDataKey";
    const READ_ONLY: bool = true;
    type Output = GenerateDataKeyOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        Some(data_key_audit_parameters(
            &self.key_id,
            self.encryption_context.as_ref(),
            self.number_of_bytes,
            self.key_spec,
        ))
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GenerateDataKeyOutput, KmsError> {
        let g = generate(
            kms,
            ctx,
            trail,
            DataKeyRequest {
                operation: "GenerateDataKey",
                key_op: KeyOp::GenerateDataKey,
                key_id: &self.key_id,
                encryption_context: self.encryption_context,
                number_of_bytes: self.number_of_bytes,
                key_spec: self.key_spec,
                grant_tokens: self.grant_tokens.unwrap_or_default(),
                recipient: self.recipient.as_ref(),
                dry_run: self.dry_run == Some(true),
            },
        )
        .await?;
        Ok(GenerateDataKeyOutput {
            ciphertext_blob: Blob(g.ciphertext),
            plaintext: SecretBlob(g.plaintext),
            key_id: g.key_arn,
            key_material_id: g.material_id.to_hex(),
        })
    }
}

/// What GenerateDataKey and GenerateDataKeyWithoutPlaintext share.
pub(crate) struct DataKeyRequest<'a> {
    pub operation: &'static str,
    pub key_op: KeyOp,
    pub key_id: &'a str,
    pub encryption_context: Option<EncryptionContext>,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<DataKeySpec>,
    pub grant_tokens: Vec<String>,
    /// `Recipient` (GenerateDataKey only), refused after the other input checks.
    pub recipient: Option<&'a Value>,
    pub dry_run: bool,
}

pub(crate) struct DataKey {
    pub ciphertext: Vec<u8>,
    pub plaintext: tresor_crypto::SecretBytes,
    pub key_arn: String,
    pub material_id: tresor_crypto::KeyMaterialId,
}

/// Validates, authorizes, checks the key, and makes a fresh data key sealed under it.
pub(crate) async fn generate(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    req: DataKeyRequest<'_>,
) -> Result<DataKey, KmsError> {
    let len = data_key_length(req.number_of_bytes, req.key_spec)?;
    let ec = req.encryption_context.unwrap_or_default();
    check_encryption_context(&ec, "encryptionContext")?;
    check_grant_tokens(&req.grant_tokens)?;
    reject_recipient(&req.recipient.cloned())?;
    let access = crate::authz::Access::new(req.operation)
        .context(&ec)
        .tokens(&req.grant_tokens)
        .with_str("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
    let r = kms
        .resolve_for(ctx, req.key_id, true, access, trail)
        .await?;
    kms.check_state(req.key_op, &r.key)?;
    require_symmetric_encryption(&r.key.record, &r.key.arn, req.operation)?;
    if req.dry_run {
        return Err(KmsError::DryRunOperation);
    }
    let plaintext = tresor_crypto::random_bytes(len).map_err(KmsError::internal)?;
    let (ciphertext, material_id) = seal(&r.key, &ec, plaintext.expose())?;
    trail.set_additional("keyMaterialId", material_id.to_hex());
    Ok(DataKey {
        ciphertext,
        plaintext,
        key_arn: r.key.arn.clone(),
        material_id,
    })
}
