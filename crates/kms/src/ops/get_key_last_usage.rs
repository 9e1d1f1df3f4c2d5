//! GetKeyLastUsage: the key's last successful cryptographic use since tracking began.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::types::Timestamp;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetKeyLastUsage {
    pub key_id: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyLastUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_trail_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_request_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyLastUsageOutput {
    pub key_id: String,
    /// Empty (`{}`) when the key has not been used since tracking began.
    pub key_last_usage: KeyLastUsage,
    pub tracking_start_date: Timestamp,
    pub key_creation_date: Timestamp,
}

#[async_trait]
impl Operation for GetKeyLastUsage {
    const NAME: &'static str = "GetKeyLastUsage";
    const READ_ONLY: bool = true;
    type Output = GetKeyLastUsageOutput;

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
    ) -> Result<GetKeyLastUsageOutput, KmsError> {
        let r = kms
            .resolve(ctx, &self.key_id, false, "GetKeyLastUsage", trail)
            .await?;
        kms.check_state(KeyOp::GetKeyLastUsage, &r.key)?;
        // Uses noted in memory reach the store first.
        kms.flush_key_usage().await?;
        let tracking_start = kms.tracking_start().await?;
        let usage = kms
            .store
            .get_key_usage(&r.key.record.region, &r.key.record.key_id)
            .await?;
        let key_last_usage = usage
            .map(|u| KeyLastUsage {
                operation: Some(u.operation),
                timestamp: Some(u.timestamp),
                cloud_trail_event_id: Some(u.event_id),
                kms_request_id: Some(u.request_id),
            })
            .unwrap_or_default();
        Ok(GetKeyLastUsageOutput {
            key_id: r.key.arn.clone(),
            key_last_usage,
            tracking_start_date: tracking_start,
            key_creation_date: r.key.record.created,
        })
    }
}
