//! CreateAlias.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, access_denied};
use crate::lifecycle::{MAX_ALIASES_PER_KEY, check_alias_name};
use crate::state::KeyOp;
use crate::store::{AliasRecord, StoreError};
use crate::types::alias_arn;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateAlias {
    pub alias_name: String,
    pub target_key_id: String,
}

#[async_trait]
impl Operation for CreateAlias {
    const NAME: &'static str = "CreateAlias";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "aliasName", Some(self.alias_name.clone()));
        put(&mut m, "targetKeyId", Some(self.target_key_id.clone()));
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
        // The alias is a resource of its own (identity policies), the key another (key policy).
        kms.authorize_account(ctx, &account, "CreateAlias", &arn)
            .await?;
        let already_exists =
            || KmsError::AlreadyExists(format!("An alias with the name {arn} already exists"));
        if kms
            .store
            .get_alias(&account, &ctx.region, &self.alias_name)
            .await?
            .is_some()
        {
            return Err(already_exists());
        }
        let r = kms
            .resolve(ctx, &self.target_key_id, false, "CreateAlias", trail)
            .await?;
        if r.key.record.account != account {
            // Aliases name keys of their own account only.
            return Err(access_denied(ctx, "CreateAlias", &r.key.arn));
        }
        refuse_aws_managed(ctx, &r.key, "CreateAlias")?;
        kms.check_state(KeyOp::CreateAlias, &r.key)?;
        let key_id = r.key.record.key_id;
        let existing = kms
            .store
            .list_aliases(
                &account,
                &ctx.region,
                Some(&key_id),
                None,
                MAX_ALIASES_PER_KEY + 1,
            )
            .await?;
        if existing.len() >= MAX_ALIASES_PER_KEY {
            // AWS-DEVIATION (unverified text): AWS's message for the per-key alias quota.
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because {} already has {MAX_ALIASES_PER_KEY} aliases, the maximum for a KMS key.",
                r.key.arn
            )));
        }
        let now = kms.clock.now();
        let alias = AliasRecord {
            account,
            region: ctx.region.clone(),
            name: self.alias_name,
            target_key_id: key_id,
            created: now,
            updated: now,
        };
        match kms.store.create_alias(&alias).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(already_exists()),
            Err(e) => return Err(e.into()),
        }
        // The key's aliases are part of its cached authorization context (kms:ResourceAliases).
        kms.invalidate_key(&key_id);
        Ok(Empty {})
    }
}
