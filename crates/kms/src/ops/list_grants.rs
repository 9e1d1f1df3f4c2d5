//! ListGrants and ListRetirableGrants.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::list_keys::page_limit;
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::store::GrantRecord;
use crate::types::{Timestamp, key_arn};

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraintsOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    pub name: String,
    pub creation_date: Timestamp,
    pub grantee_principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraintsOut>,
}

impl GrantListEntry {
    pub fn from_record(g: &GrantRecord) -> GrantListEntry {
        GrantListEntry {
            key_id: key_arn(&g.key_region, &g.key_account, &g.key_id),
            grant_id: g.grant_id.clone(),
            name: g.name.clone().unwrap_or_default(),
            creation_date: g.created,
            grantee_principal: g.grantee_principal.clone(),
            retiring_principal: g.retiring_principal.clone(),
            issuing_account: g.issuing_account.clone(),
            operations: g.operations.clone(),
            constraints: g.constraints.as_ref().map(|c| GrantConstraintsOut {
                encryption_context_subset: c.encryption_context_subset.clone(),
                encryption_context_equals: c.encryption_context_equals.clone(),
            }),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsOutput {
    pub grants: Vec<GrantListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

fn encode_marker(seq: i64) -> String {
    format!("tresor-g1-{seq}")
}

fn decode_marker(m: &str) -> Result<i64, KmsError> {
    m.strip_prefix("tresor-g1-")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".to_owned()))
}

/// Pages through `fetch` (position-ordered), keeping rows that pass `keep`, until `limit` are
/// found; returns them and the marker of the last one when more may follow.
async fn page<F, Fut>(
    limit: usize,
    after: Option<i64>,
    keep: impl Fn(&GrantRecord) -> bool,
    fetch: F,
) -> Result<(Vec<GrantRecord>, Option<String>), KmsError>
where
    F: Fn(Option<i64>, usize) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(i64, GrantRecord)>, crate::store::StoreError>>,
{
    let mut out = Vec::new();
    let mut cursor = after;
    let mut last_seq = None;
    loop {
        let rows = fetch(cursor, 500).await?;
        let exhausted = rows.len() < 500;
        for (seq, g) in rows {
            cursor = Some(seq);
            if keep(&g) {
                if out.len() == limit {
                    // One more match exists: the listing is truncated after the last kept row.
                    return Ok((out, last_seq.map(encode_marker)));
                }
                out.push(g);
                last_seq = Some(seq);
            }
        }
        if exhausted {
            return Ok((out, None));
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListGrants {
    pub limit: Option<i64>,
    pub marker: Option<String>,
    pub key_id: String,
    pub grant_id: Option<String>,
    pub grantee_principal: Option<String>,
}

#[async_trait]
impl Operation for ListGrants {
    const NAME: &'static str = "ListGrants";
    const READ_ONLY: bool = true;
    type Output = ListGrantsOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "grantId", self.grant_id.clone());
        put(&mut m, "granteePrincipal", self.grantee_principal.clone());
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<ListGrantsOutput, KmsError> {
        let limit = page_limit(self.limit, 50, 100)?;
        let after = self.marker.as_deref().map(decode_marker).transpose()?;
        if let Some(id) = &self.grant_id
            && !crate::grant_token::is_grant_id(id)
        {
            return Err(KmsError::InvalidGrantId(format!("Invalid grant ID {id}")));
        }
        let r = kms
            .resolve_for(ctx, &self.key_id, false, Access::new("ListGrants"), trail)
            .await?;
        kms.check_state(KeyOp::ListGrants, &r.key)?;
        let (region, key_id) = (r.key.record.region.clone(), r.key.record.key_id);
        let (gid, grantee) = (self.grant_id.clone(), self.grantee_principal.clone());
        let keep = move |g: &GrantRecord| {
            gid.as_ref().is_none_or(|id| &g.grant_id == id)
                && grantee.as_ref().is_none_or(|p| &g.grantee_principal == p)
        };
        let store = kms.store.clone();
        let (grants, next) = page(limit, after, keep, |after, n| {
            let (store, region) = (store.clone(), region.clone());
            async move { store.list_grants(&region, &key_id, after, n).await }
        })
        .await?;
        Ok(ListGrantsOutput {
            grants: grants.iter().map(GrantListEntry::from_record).collect(),
            truncated: next.is_some(),
            next_marker: next,
        })
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRetirableGrants {
    pub limit: Option<i64>,
    pub marker: Option<String>,
    pub retiring_principal: String,
}

#[async_trait]
impl Operation for ListRetirableGrants {
    const NAME: &'static str = "ListRetirableGrants";
    const READ_ONLY: bool = true;
    type Output = ListGrantsOutput;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(
            &mut m,
            "retiringPrincipal",
            Some(self.retiring_principal.clone()),
        );
        put(&mut m, "limit", self.limit);
        put(&mut m, "marker", self.marker.clone());
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        _trail: &mut Trail,
    ) -> Result<ListGrantsOutput, KmsError> {
        let limit = page_limit(self.limit, 50, 100)?;
        let after = self.marker.as_deref().map(decode_marker).transpose()?;
        kms.authorize_iam(ctx, &Access::new("ListRetirableGrants"), "*")
            .await?;
        let store = kms.store.clone();
        let principal = self.retiring_principal.clone();
        let (grants, next) = page(
            limit,
            after,
            |_| true,
            |after, n| {
                let (store, principal) = (store.clone(), principal.clone());
                async move { store.list_retirable_grants(&principal, after, n).await }
            },
        )
        .await?;
        Ok(ListGrantsOutput {
            grants: grants.iter().map(GrantListEntry::from_record).collect(),
            truncated: next.is_some(),
            next_marker: next,
        })
    }
}
