//! EnableKey.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};
use crate::types::KeyState;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnableKey {
    pub key_id: String,
}

#[async_trait]
impl Operation for EnableKey {
    const NAME: &'static str = "EnableKey";
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
            .resolve(ctx, &self.key_id, false, "EnableKey", trail)
            .await?;
        crate::aws_managed::refuse_aws_managed(ctx, &r.key, "EnableKey")?;
        kms.check_state(KeyOp::EnableKey, &r.key)?;
        let arn = r.key.arn.clone();
        kms.modify_key(&r.key, |k| {
            // Re-check against the fresh record: the state may have changed since the cached read.
            state::check(KeyOp::EnableKey, k.state, &arn)?;
            // Unavailable keys (custom key stores) accept the call; the state changes when the
            // store is available again.
            if k.state != KeyState::Unavailable {
                k.state = KeyState::Enabled;
            }
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
