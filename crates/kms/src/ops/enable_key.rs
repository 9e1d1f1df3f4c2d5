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
        switch_state(
            kms,
            ctx,
            trail,
            &self.key_id,
            KeyOp::EnableKey,
            KeyState::Enabled,
        )
        .await
    }
}

/// EnableKey and DisableKey: resolve, refuse AWS managed keys, check the state table (against
/// the cached and then the fresh record), and set the new state.
pub(crate) async fn switch_state(
    kms: &Kms,
    ctx: &CallContext,
    trail: &mut Trail,
    key_id: &str,
    op: KeyOp,
    to: KeyState,
) -> Result<Empty, KmsError> {
    let action = if op == KeyOp::EnableKey {
        "EnableKey"
    } else {
        "DisableKey"
    };
    let r = kms.resolve(ctx, key_id, false, action, trail).await?;
    crate::aws_managed::refuse_aws_managed(ctx, &r.key, action)?;
    kms.check_state(op, &r.key)?;
    let arn = r.key.arn.clone();
    kms.modify_key(&r.key, |k| {
        // Re-check against the fresh record: the state may have changed since the cached read.
        state::check(op, k.state, &arn)?;
        // Unavailable keys (custom key stores) accept the call; the state changes when the
        // store is available again.
        if k.state != KeyState::Unavailable {
            k.state = to;
        }
        Ok(())
    })
    .await?;
    Ok(Empty {})
}
