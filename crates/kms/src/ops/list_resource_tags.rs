//! ListResourceTags: a key's tags in key order, 1–50 per page.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::list_keys::{decode_marker, encode_marker, page_limit};
use super::{Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::store::Tag;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListResourceTags {
    pub key_id: String,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsOutput {
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[async_trait]
impl Operation for ListResourceTags {
    const NAME: &'static str = "ListResourceTags";
    const READ_ONLY: bool = true;
    type Output = ListResourceTagsOutput;

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
    ) -> Result<ListResourceTagsOutput, KmsError> {
        let limit = page_limit(self.limit, 50, 50)?;
        let skip = self.marker.as_deref().map(decode_marker).transpose()?;
        let r = kms
            .resolve(ctx, &self.key_id, false, "ListResourceTags", trail)
            .await?;
        kms.check_state(KeyOp::ListResourceTags, &r.key)?;
        let mut tags = r.key.record.tags.clone();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let start = usize::try_from(skip.unwrap_or(0)).map_err(KmsError::internal)?;
        if start > tags.len() {
            return Err(KmsError::InvalidMarker("Invalid marker".to_owned()));
        }
        let mut page: Vec<Tag> = tags.into_iter().skip(start).collect();
        let truncated = page.len() > limit;
        page.truncate(limit);
        let next_marker = truncated
            .then(|| i64::try_from(start + page.len()).map(encode_marker))
            .transpose()
            .map_err(KmsError::internal)?;
        Ok(ListResourceTagsOutput {
            tags: page,
            next_marker,
            truncated,
        })
    }
}
