//! DeleteAlias. Never affects the key; works in every key state.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::Kms;
use crate::lifecycle::check_alias_name;
use crate::state::KeyOp;
use crate::types::alias_arn;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteAlias {
    pub alias_name: String,
}

#[async_trait]
impl Operation for DeleteAlias {
    const NAME: &'static str = "DeleteAlias";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "aliasName", Some(self.alias_name.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        check_alias_name(&self.alias_name)?;
        let account = ctx.caller.account.clone();
        let arn = alias_arn(&ctx.region, &account, &self.alias_name);
        kms.authorize_account(ctx, &account, "DeleteAlias", &arn)
            .await?;
        let not_found = || KmsError::NotFound(format!("Alias {arn} is not found."));
        let alias = kms
            .store
            .get_alias(&account, &ctx.region, &self.alias_name)
            .await?
            .ok_or_else(not_found)?;
        let key = kms
            .resolve(
                ctx,
                &alias.target_key_id.to_string(),
                false,
                "DeleteAlias",
                trail,
            )
            .await?;
        kms.check_state(KeyOp::DeleteAlias, &key.key)?;
        if !kms
            .store
            .delete_alias(&account, &ctx.region, &self.alias_name)
            .await?
        {
            return Err(not_found());
        }
        kms.invalidate_key(&alias.target_key_id);
        Ok(Empty {})
    }
}
