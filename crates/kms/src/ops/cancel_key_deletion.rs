//! CancelKeyDeletion: a key pending deletion returns to Disabled (never straight to Enabled).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};
use crate::types::KeyState;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CancelKeyDeletion {
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelKeyDeletionOutput {
    pub key_id: String,
}

#[async_trait]
impl Operation for CancelKeyDeletion {
    const NAME: &'static str = "CancelKeyDeletion";
    const READ_ONLY: bool = false;
    type Output = CancelKeyDeletionOutput;

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
    ) -> Result<CancelKeyDeletionOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "CancelKeyDeletion", trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "CancelKeyDeletion")?;
        kms.check_state(KeyOp::CancelKeyDeletion, &r.key)?;
        let arn = r.key.arn.clone();
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::CancelKeyDeletion, k.state, &arn)?;
            // An imported-material key whose material went away while it was pending deletion
            // waits for material again.
            // AWS-DEVIATION (unverified): AWS documents Disabled as the only result.
            k.state = if k.has_material() {
                KeyState::Disabled
            } else {
                KeyState::PendingImport
            };
            k.deletion_date = None;
            k.pending_window_days = None;
            Ok(())
        })
        .await?;
        trail.response_elements = Some(json!({ "keyId": arn }));
        Ok(CancelKeyDeletionOutput { key_id: arn })
    }
}
