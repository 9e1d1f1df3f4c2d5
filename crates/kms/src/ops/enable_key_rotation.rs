//! EnableKeyRotation: automatic rotation every `RotationPeriodInDays` (90–2560, default 365). On a
//! key that already rotates it changes the period; the next rotation moves with it.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::require_rotation_settings;
use crate::state::{self, KeyOp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnableKeyRotation {
    pub key_id: String,
    pub rotation_period_in_days: Option<i64>,
}

/// `RotationPeriodInDays`: 90–2560 (also enforced for in-process callers).
pub(crate) fn rotation_period(days: Option<i64>) -> Result<u32, KmsError> {
    let days = days.unwrap_or(365);
    if days < 90 {
        return Err(KmsError::validation(format!(
            "Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"
        )));
    }
    if days > 2560 {
        return Err(KmsError::validation(format!(
            "Value '{days}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value less than or equal to 2560"
        )));
    }
    u32::try_from(days).map_err(KmsError::internal)
}

#[async_trait]
impl Operation for EnableKeyRotation {
    const NAME: &'static str = "EnableKeyRotation";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "rotationPeriodInDays", self.rotation_period_in_days);
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        let period = rotation_period(self.rotation_period_in_days)?;
        let access = Access::new("EnableKeyRotation")
            .with_str("kms:RotationPeriodInDays", period.to_string());
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access, trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "EnableKeyRotation")?;
        kms.check_state(KeyOp::EnableKeyRotation, &r.key)?;
        require_rotation_settings(&r.key.record, &r.key.arn)?;
        let arn = r.key.arn.clone();
        let now = kms.clock.now();
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::EnableKeyRotation, k.state, &arn)?;
            let next = match (k.rotation.period_days, k.rotation.next_rotation) {
                // Already rotating: keep the schedule's anchor, change the period.
                // AWS-DEVIATION (unverified): how AWS moves the next rotation date.
                (Some(old), Some(next)) => next.add_days(i64::from(period) - i64::from(old)),
                _ => now.add_days(i64::from(period)),
            };
            k.rotation.period_days = Some(period);
            k.rotation.next_rotation = Some(next);
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
