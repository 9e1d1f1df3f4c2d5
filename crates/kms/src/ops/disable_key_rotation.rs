//! DisableKeyRotation.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::require_rotation_settings;
use crate::state::{self, KeyOp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisableKeyRotation {
    pub key_id: String,
}

#[async_trait]
impl Operation for DisableKeyRotation {
    const NAME: &'static str = "DisableKeyRotation";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "DisableKeyRotation", trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "DisableKeyRotation")?;
        kms.check_state(KeyOp::DisableKeyRotation, &r.key)?;
        require_rotation_settings(&r.key.record, &r.key.arn)?;
        let arn = r.key.arn.clone();
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::DisableKeyRotation, k.state, &arn)?;
            k.rotation.period_days = None;
            k.rotation.next_rotation = None;
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
