//! TagResource: adds tags to a customer managed key or overwrites their values.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::create_key::{MAX_TAGS, check_tags};
use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};
use crate::store::Tag;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagResource {
    pub key_id: String,
    pub tags: Vec<Tag>,
}

#[async_trait]
impl Operation for TagResource {
    const NAME: &'static str = "TagResource";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        m.insert(
            "tags".into(),
            Value::Array(
                self.tags
                    .iter()
                    .map(|t| json!({"tagKey": t.key, "tagValue": t.value}))
                    .collect(),
            ),
        );
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        check_tags(&self.tags)?;
        let mut access = Access::new("TagResource");
        for t in &self.tags {
            access = access.with_str(format!("aws:RequestTag/{}", t.key), t.value.clone());
        }
        let access = access.with(
            "aws:TagKeys",
            tresor_policy::ContextValue::multi(self.tags.iter().map(|t| t.key.clone())),
        );
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access, trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "TagResource")?;
        kms.check_state(KeyOp::TagResource, &r.key)?;
        let arn = r.key.arn.clone();
        let tags = self.tags;
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::TagResource, k.state, &arn)?;
            let mut merged = k.tags.clone();
            for t in &tags {
                match merged.iter_mut().find(|m| m.key == t.key) {
                    Some(existing) => existing.value.clone_from(&t.value),
                    None => merged.push(t.clone()),
                }
            }
            if merged.len() > MAX_TAGS {
                return Err(KmsError::Tag("Too many tags".to_owned()));
            }
            k.tags = merged;
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
