//! RotateKeyOnDemand: a new material generation now, independent of the automatic schedule
//! (which it does not move). At most 25 per key; not within 20 minutes of a scheduled rotation.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::{
    MAX_ON_DEMAND_ROTATIONS, ROTATION_CONFLICT_WINDOW_MILLIS, new_material, require_symmetric,
    rotate_record,
};
use crate::state::{self, KeyOp};
use crate::store::KeyRecord;
use crate::types::{Origin, RotationType, Timestamp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RotateKeyOnDemand {
    pub key_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateKeyOnDemandOutput {
    pub key_id: String,
}

/// Everything that may refuse an on-demand rotation, checked on the freshest record.
fn check_rotatable(k: &KeyRecord, arn: &str, now: Timestamp) -> Result<(), KmsError> {
    state::check(KeyOp::RotateKeyOnDemand, k.state, arn)?;
    require_symmetric(k)?;
    if k.origin != Origin::AwsKms {
        // AWS-DEVIATION: Tresor keeps one imported material per key, so an EXTERNAL key never has
        // new material pending rotation.
        return Err(KmsError::InvalidState(format!(
            "No available key material pending rotation for the key: {arn}."
        )));
    }
    if k.rotation.on_demand_count >= MAX_ON_DEMAND_ROTATIONS {
        return Err(KmsError::LimitExceeded(format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}"
        )));
    }
    if k.rotation.period_days.is_some()
        && k.rotation
            .next_rotation
            .is_some_and(|t| t.millis() - now.millis() <= ROTATION_CONFLICT_WINDOW_MILLIS)
    {
        // AWS-DEVIATION (unverified text).
        return Err(KmsError::Conflict(format!(
            "{arn} is scheduled for automatic rotation within 20 minutes. Try the on-demand rotation again later."
        )));
    }
    Ok(())
}

#[async_trait]
impl Operation for RotateKeyOnDemand {
    const NAME: &'static str = "RotateKeyOnDemand";
    const READ_ONLY: bool = false;
    type Output = RotateKeyOnDemandOutput;

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
    ) -> Result<RotateKeyOnDemandOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "RotateKeyOnDemand", trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "RotateKeyOnDemand")?;
        let arn = r.key.arn.clone();
        let now = kms.clock.now();
        check_rotatable(&r.key.record, &arn, now)?;
        let material = new_material(kms, &arn, now, Some(RotationType::OnDemand))?;
        let material_id = material.id;
        kms.modify_key(&r.key, |k| {
            check_rotatable(k, &arn, now)?;
            rotate_record(k, material.clone());
            k.rotation.on_demand_count += 1;
            Ok(())
        })
        .await?;
        trail.set_additional("keyMaterialId", material_id.to_hex());
        Ok(RotateKeyOnDemandOutput { key_id: arn })
    }
}
