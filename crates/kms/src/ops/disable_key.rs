//! DisableKey.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::KeyState;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DisableKey {
    pub key_id: String,
}

#[async_trait]
impl Operation for DisableKey {
    const NAME: &'static str = "DisableKey";
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
        super::enable_key::switch_state(
            kms,
            ctx,
            trail,
            &self.key_id,
            KeyOp::DisableKey,
            KeyState::Disabled,
        )
        .await
    }
}
