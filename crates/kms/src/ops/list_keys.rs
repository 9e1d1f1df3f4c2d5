//! ListKeys.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::types::key_arn;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeys {
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysOutput {
    pub keys: Vec<KeyListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

/// Markers are opaque to clients; Tresor's encode the store position of the last key returned.
pub(crate) fn encode_marker(seq: i64) -> String {
    format!("tresor-1-{seq}")
}

pub(crate) fn decode_marker(marker: &str) -> Result<i64, KmsError> {
    marker
        .strip_prefix("tresor-1-")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".to_owned()))
}

/// `Limit` (model 1–1000) with the operation's default.
pub(crate) fn page_limit(limit: Option<i64>, default: usize, max: i64) -> Result<usize, KmsError> {
    match limit {
        None => Ok(default),
        Some(n) if n < 1 => Err(KmsError::validation(format!(
            "Value '{n}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) if n > max => Err(KmsError::validation(format!(
            "Value '{n}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
        Some(n) => usize::try_from(n).map_err(KmsError::internal),
    }
}

#[async_trait]
impl Operation for ListKeys {
    const NAME: &'static str = "ListKeys";
    const READ_ONLY: bool = true;
    type Output = ListKeysOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        (!m.is_empty()).then_some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        _trail: &mut Trail,
    ) -> Result<ListKeysOutput, KmsError> {
        kms.authorize_iam(ctx, &crate::authz::Access::new("ListKeys"), "*")
            .await?;
        let limit = page_limit(self.limit, 100, 1000)?;
        let after = self.marker.as_deref().map(decode_marker).transpose()?;
        let account = &ctx.caller.account;
        // One extra row tells whether the listing is truncated.
        let mut rows = kms
            .store
            .list_keys(account, &ctx.region, after, limit + 1)
            .await?;
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        let next_marker = if truncated {
            rows.last().map(|r| encode_marker(r.seq))
        } else {
            None
        };
        let keys = rows
            .iter()
            .map(|r| KeyListEntry {
                key_id: r.key_id.to_string(),
                key_arn: key_arn(&ctx.region, account, &r.key_id),
            })
            .collect();
        Ok(ListKeysOutput {
            keys,
            next_marker,
            truncated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_reject_garbage() {
        assert_eq!(decode_marker(&encode_marker(42)), Ok(42));
        for bad in [
            "",
            "42",
            "tresor-1-",
            "tresor-1--3",
            "tresor-1-x",
            "tresor-2-4",
        ] {
            assert!(
                matches!(decode_marker(bad), Err(KmsError::InvalidMarker(_))),
                "{bad}"
            );
        }
    }
}
