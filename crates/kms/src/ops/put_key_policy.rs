//! PutKeyPolicy.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::get_key_policy::check_policy_name;
use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PutKeyPolicy {
    pub key_id: String,
    pub policy_name: Option<String>,
    pub policy: String,
    pub bypass_policy_lockout_safety_check: Option<bool>,
}

#[async_trait]
impl Operation for PutKeyPolicy {
    const NAME: &'static str = "PutKeyPolicy";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(
            &mut m,
            "policyName",
            Some(
                self.policy_name
                    .clone()
                    .unwrap_or_else(|| "default".to_owned()),
            ),
        );
        put(&mut m, "policy", Some(self.policy.clone()));
        put(
            &mut m,
            "bypassPolicyLockoutSafetyCheck",
            Some(self.bypass_policy_lockout_safety_check.unwrap_or(false)),
        );
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        let bypass = self.bypass_policy_lockout_safety_check.unwrap_or(false);
        let access = Access::new("PutKeyPolicy")
            .with_str("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string());
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access, trail)
            .await?;
        check_policy_name(self.policy_name.as_deref())?;
        kms.check_state(KeyOp::PutKeyPolicy, &r.key)?;
        kms.check_key_policy(ctx, &self.policy, &r.key.arn, &r.key.record.account, bypass)
            .await?;
        let (policy, arn) = (self.policy, r.key.arn.clone());
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::PutKeyPolicy, k.state, &arn)?;
            k.policy.clone_from(&policy);
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
