//! GetKeyPolicy.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetKeyPolicy {
    pub key_id: String,
    pub policy_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyOutput {
    pub policy: String,
    pub policy_name: String,
}

/// The only key policy name AWS knows.
pub(crate) fn check_policy_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some("default") => Ok(()),
        // AWS-DEVIATION (unverified text): AWS answers NotFoundException for other policy names.
        Some(other) => Err(KmsError::NotFound(format!(
            "Policy '{other}' does not exist"
        ))),
    }
}

#[async_trait]
impl Operation for GetKeyPolicy {
    const NAME: &'static str = "GetKeyPolicy";
    const READ_ONLY: bool = true;
    type Output = GetKeyPolicyOutput;

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
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<GetKeyPolicyOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "GetKeyPolicy", trail)
            .await?;
        check_policy_name(self.policy_name.as_deref())?;
        kms.check_state(KeyOp::GetKeyPolicy, &r.key)?;
        Ok(GetKeyPolicyOutput {
            policy: r.key.record.policy.clone(),
            policy_name: "default".to_owned(),
        })
    }
}
