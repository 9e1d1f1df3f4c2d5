//! GetKeyRotationStatus.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::require_rotation_settings;
use crate::state::KeyOp;
use crate::types::{KeyState, Timestamp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetKeyRotationStatus {
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyRotationStatusOutput {
    pub key_rotation_enabled: bool,
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<Timestamp>,
    /// Only while an on-demand rotation is in progress.
    // AWS-DEVIATION: Tresor's on-demand rotations complete before the call answers, so this is
    // never reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_rotation_start_date: Option<Timestamp>,
}

#[async_trait]
impl Operation for GetKeyRotationStatus {
    const NAME: &'static str = "GetKeyRotationStatus";
    const READ_ONLY: bool = true;
    type Output = GetKeyRotationStatusOutput;

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
    ) -> Result<GetKeyRotationStatusOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "GetKeyRotationStatus", trail)
            .await?;
        kms.check_state(KeyOp::GetKeyRotationStatus, &r.key)?;
        let k = &r.key.record;
        require_rotation_settings(k, &r.key.arn)?;
        // A key pending deletion reports rotation off (the setting returns if deletion is
        // cancelled).
        let enabled = k.rotation.period_days.is_some() && k.state != KeyState::PendingDeletion;
        Ok(GetKeyRotationStatusOutput {
            key_rotation_enabled: enabled,
            key_id: r.key.arn.clone(),
            rotation_period_in_days: enabled.then_some(k.rotation.period_days).flatten(),
            next_rotation_date: enabled.then_some(k.rotation.next_rotation).flatten(),
            on_demand_rotation_start_date: None,
        })
    }
}
