//! UpdateKeyDescription.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateKeyDescription {
    pub key_id: String,
    pub description: String,
}

#[async_trait]
impl Operation for UpdateKeyDescription {
    const NAME: &'static str = "UpdateKeyDescription";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "description", Some(self.description.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        if self.description.encode_utf16().count() > 8192 {
            return Err(KmsError::validation(format!(
                "Value '{}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192",
                self.description
            )));
        }
        let r = kms
            .resolve(ctx, &self.key_id, false, "UpdateKeyDescription", trail)
            .await?;
        crate::aws_managed::refuse_aws_managed(ctx, &r.key, "UpdateKeyDescription")?;
        kms.check_state(KeyOp::UpdateKeyDescription, &r.key)?;
        let arn = r.key.arn.clone();
        let description = self.description;
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::UpdateKeyDescription, k.state, &arn)?;
            k.description.clone_from(&description);
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
