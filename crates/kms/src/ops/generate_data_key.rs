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
        let len = data_key_length(self.number_of_bytes, self.key_spec)?;
        let ec = self.encryption_context.unwrap_or_default();
        check_encryption_context(&ec, "encryptionContext")?;
        let tokens = self.grant_tokens.clone().unwrap_or_default();
        check_grant_tokens(&tokens)?;
        reject_recipient(&self.recipient)?;
        let access = crate::authz::Access::new("GenerateDataKey")
            .context(&ec)
            .tokens(&tokens)
            .with_str("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::GenerateDataKey, &r.key)?;
        require_symmetric_encryption(&r.key.record, &r.key.arn, "GenerateDataKey")?;
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = tresor_crypto::random_bytes(len).map_err(KmsError::internal)?;
        let (blob, material_id) = seal(&r.key, &ec, plaintext.expose())?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(GenerateDataKeyOutput {
            ciphertext_blob: Blob(blob),
            plaintext: SecretBlob(plaintext),
            key_id: r.key.arn.clone(),
            key_material_id: material_id.to_hex(),
        })
    }
}
