//! UntagResource: removes tags by key; keys the key does not carry are ignored.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::{self, KeyOp};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UntagResource {
    pub key_id: String,
    pub tag_keys: Vec<String>,
}

#[async_trait]
impl Operation for UntagResource {
    const NAME: &'static str = "UntagResource";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "tagKeys", Some(self.tag_keys.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        let access = Access::new("UntagResource").with(
            "aws:TagKeys",
            tresor_policy::ContextValue::multi(self.tag_keys.iter().cloned()),
        );
        let r = kms
            .resolve_for(ctx, &self.key_id, false, access, trail)
            .await?;
        refuse_aws_managed(ctx, &r.key, "UntagResource")?;
        kms.check_state(KeyOp::UntagResource, &r.key)?;
        let arn = r.key.arn.clone();
        let remove = self.tag_keys;
        kms.modify_key(&r.key, |k| {
            state::check(KeyOp::UntagResource, k.state, &arn)?;
            k.tags.retain(|t| !remove.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(Empty {})
    }
}
