//! ScheduleKeyDeletion: the key becomes unusable at once and is deleted (with its material,
//! aliases and grants) when its waiting period of 7–30 days ends (see the scheduler).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::create_key::human_date;
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};
use crate::types::{KeyState, Timestamp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScheduleKeyDeletion {
    pub key_id: String,
    pub pending_window_in_days: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionOutput {
    pub key_id: String,
    pub deletion_date: Timestamp,
    pub key_state: KeyState,
    pub pending_window_in_days: i64,
}

#[async_trait]
impl Operation for ScheduleKeyDeletion {
    const NAME: &'static str = "ScheduleKeyDeletion";
    const READ_ONLY: bool = false;
    type Output = ScheduleKeyDeletionOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "pendingWindowInDays", self.pending_window_in_days);
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ScheduleKeyDeletionOutput, KmsError> {
        let days = self.pending_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(KmsError::validation_plain(
                "PendingWindowInDays must be between 7 and 30",
            ));
        }
        let access = Access::new("ScheduleKeyDeletion").with_str(
            "kms:ScheduleKeyDeletionPendingWindowInDays",
            days.to_string(),
        );
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access, trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "ScheduleKeyDeletion")?;
        kms.check_state(KeyOp::ScheduleKeyDeletion, &r.key)?;
        let arn = r.key.arn.clone();
        // AWS-DEVIATION (unverified): exactly now + window (AWS appears to round the date).
        let deletion_date = kms.clock.now().add_days(days);
        let window = u32::try_from(days).map_err(KmsError::internal)?;
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::ScheduleKeyDeletion, k.state, &arn)?;
            k.state = KeyState::PendingDeletion;
            k.deletion_date = Some(deletion_date);
            k.pending_window_days = Some(window);
            Ok(())
        })
        .await?;
        trail.response_elements = Some(json!({
            "keyId": arn,
            "deletionDate": human_date(deletion_date),
            "keyState": KeyState::PendingDeletion.as_str(),
            "pendingWindowInDays": days,
        }));
        Ok(ScheduleKeyDeletionOutput {
            key_id: arn,
            deletion_date,
            key_state: KeyState::PendingDeletion,
            pending_window_in_days: days,
        })
    }
}
