//! GenerateRandom.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::decrypt::reject_recipient;
use super::{Operation, SecretBlob, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateRandom {
    pub number_of_bytes: Option<i64>,
    pub custom_key_store_id: Option<String>,
    pub recipient: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomOutput {
    pub plaintext: SecretBlob,
}

#[async_trait]
impl Operation for GenerateRandom {
    const NAME: &'static str = "GenerateRandom";
    const READ_ONLY: bool = true;
    type Output = GenerateRandomOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "numberOfBytes", self.number_of_bytes);
        put(&mut m, "customKeyStoreId", self.custom_key_store_id.clone());
        (!m.is_empty()).then_some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        _trail: &mut Trail,
    ) -> Result<GenerateRandomOutput, KmsError> {
        let n = self
            .number_of_bytes
            .ok_or_else(|| KmsError::validation_plain("NumberOfBytes is required."))?;
        let len = match n {
            n if n < 1 => Err(KmsError::validation(format!(
                "Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
            ))),
            n if n > 1024 => Err(KmsError::validation(format!(
                "Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
            ))),
            n => usize::try_from(n).map_err(KmsError::internal),
        }?;
        if let Some(id) = &self.custom_key_store_id {
            return Err(KmsError::CustomKeyStoreNotFound(format!(
                "Custom key store '{id}' does not exist"
            )));
        }
        reject_recipient(&self.recipient)?;
        kms.authorize_iam(ctx, &crate::authz::Access::new("GenerateRandom"), "*")
            .await?;
        let bytes = tresor_crypto::random_bytes(len).map_err(KmsError::internal)?;
        Ok(GenerateRandomOutput {
            plaintext: SecretBlob(bytes),
        })
    }
}
