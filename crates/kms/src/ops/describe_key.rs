//! DescribeKey.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{KeyMetadata, Operation, check_grant_tokens, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::state::KeyOp;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeKey {
    pub key_id: String,
    pub grant_tokens: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyOutput {
    pub key_metadata: KeyMetadata,
}

#[async_trait]
impl Operation for DescribeKey {
    const NAME: &'static str = "DescribeKey";
    const READ_ONLY: bool = true;
    type Output = DescribeKeyOutput;

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
    ) -> Result<DescribeKeyOutput, KmsError> {
        check_grant_tokens(&self.grant_tokens)?;
        let access = crate::authz::Access::new("DescribeKey").tokens(&self.grant_tokens);
        let r = kms
            .resolve_for(ctx, &self.key_id, true, access, trail)
            .await?;
        kms.check_state(KeyOp::DescribeKey, &r.key)?;
        Ok(DescribeKeyOutput {
            key_metadata: KeyMetadata::from_record(&r.key.record),
        })
    }
}
