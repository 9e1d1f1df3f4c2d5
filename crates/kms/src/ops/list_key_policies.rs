//! ListKeyPolicies.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::list_keys::page_limit;
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeyPolicies {
    pub key_id: String,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyPoliciesOutput {
    pub policy_names: Vec<String>,
    pub truncated: bool,
}

#[async_trait]
impl Operation for ListKeyPolicies {
    const NAME: &'static str = "ListKeyPolicies";
    const READ_ONLY: bool = true;
    type Output = ListKeyPoliciesOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ListKeyPoliciesOutput, KmsError> {
        page_limit(self.limit, 100, 1000)?;
        let r = kms
            .resolve(ctx, &self.key_id, false, "ListKeyPolicies", trail)
            .await?;
        kms.check_state(KeyOp::ListKeyPolicies, &r.key)?;
        if self.marker.is_some() {
            // There is only ever one page.
            return Err(KmsError::InvalidMarker("Invalid marker".to_owned()));
        }
        Ok(ListKeyPoliciesOutput {
            policy_names: vec!["default".to_owned()],
            truncated: false,
        })
    }
}
