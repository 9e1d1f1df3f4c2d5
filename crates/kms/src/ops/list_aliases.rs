//! ListAliases: the account's aliases in the region (optionally of one key), in name order,
//! including the predefined AWS aliases whose keys do not exist yet (then without `TargetKeyId`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::list_keys::page_limit;
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::MANAGED_ALIASES;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, access_denied};
use crate::state::KeyOp;
use crate::types::{Timestamp, alias_arn, key_arn};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListAliases {
    pub key_id: Option<String>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<Timestamp>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesOutput {
    pub aliases: Vec<AliasListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// AWS-DEVIATION: markers are Tresor's own (the last alias name listed); aliases come in name order.
const MARKER_PREFIX: &str = "tresor-alias-1-";

fn encode_marker(name: &str) -> String {
    format!("{MARKER_PREFIX}{name}")
}

fn decode_marker(marker: &str) -> Result<String, KmsError> {
    marker
        .strip_prefix(MARKER_PREFIX)
        .filter(|n| n.starts_with("alias/"))
        .map(str::to_owned)
        .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".to_owned()))
}

#[async_trait]
impl Operation for ListAliases {
    const NAME: &'static str = "ListAliases";
    const READ_ONLY: bool = true;
    type Output = ListAliasesOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", self.key_id.clone());
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        (!m.is_empty()).then_some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ListAliasesOutput, KmsError> {
        kms.authorize_iam(ctx, &crate::authz::Access::new("ListAliases"), "*")
            .await?;
        let limit = page_limit(self.limit, 50, 100)?;
        let after = self.marker.as_deref().map(decode_marker).transpose()?;
        let account = ctx.caller.account.clone();
        // The KeyId filter names a key of the caller's account (it is a filter, not a resource).
        let filter = match &self.key_id {
            None => None,
            Some(input) => {
                let (key_account, key_id, _) = kms.locate(ctx, input, false, "ListAliases").await?;
                let arn = key_arn(&ctx.region, &key_account, &key_id);
                if key_account != account {
                    return Err(access_denied(ctx, "ListAliases", &arn));
                }
                let key = kms
                    .load_key(&ctx.region, &key_id)
                    .await?
                    .filter(|k| k.record.account == account)
                    .ok_or_else(|| KmsError::NotFound(format!("Key '{arn}' does not exist")))?;
                kms.check_state(KeyOp::ListAliases, &key)?;
                trail.add_resource(&account, &key.arn);
                Some(key_id)
            }
        };
        let stored = kms
            .store
            .list_aliases(
                &account,
                &ctx.region,
                filter.as_ref(),
                after.as_deref(),
                limit + 1,
            )
            .await?;
        let mut entries: Vec<AliasListEntry> = stored
            .into_iter()
            .map(|a| AliasListEntry {
                alias_arn: alias_arn(&a.region, &a.account, &a.name),
                alias_name: a.name,
                target_key_id: Some(a.target_key_id.to_string()),
                creation_date: Some(a.created),
                last_updated_date: Some(a.updated),
            })
            .collect();
        if filter.is_none() {
            // Predefined AWS aliases are listed before their key exists.
            for m in MANAGED_ALIASES {
                if after.as_deref().is_some_and(|a| m.alias <= a)
                    || entries.iter().any(|e| e.alias_name == m.alias)
                {
                    continue;
                }
                if kms
                    .store
                    .get_alias(&account, &ctx.region, m.alias)
                    .await?
                    .is_none()
                {
                    entries.push(AliasListEntry {
                        alias_name: m.alias.to_owned(),
                        alias_arn: alias_arn(&ctx.region, &account, m.alias),
                        target_key_id: None,
                        creation_date: None,
                        last_updated_date: None,
                    });
                }
            }
            entries.sort_by(|a, b| a.alias_name.cmp(&b.alias_name));
        }
        let truncated = entries.len() > limit;
        entries.truncate(limit);
        let next_marker = if truncated {
            entries.last().map(|e| encode_marker(&e.alias_name))
        } else {
            None
        };
        Ok(ListAliasesOutput {
            aliases: entries,
            next_marker,
            truncated,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        assert_eq!(
            decode_marker(&encode_marker("alias/a/b")),
            Ok("alias/a/b".into())
        );
        for bad in ["", "alias/x", "tresor-alias-1-x", "tresor-1-3"] {
            assert!(
                matches!(decode_marker(bad), Err(KmsError::InvalidMarker(_))),
                "{bad}"
            );
        }
    }
}
