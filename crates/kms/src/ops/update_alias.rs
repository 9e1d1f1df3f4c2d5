//! UpdateAlias: points an existing alias at another key of the same type and usage.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::aws_managed::refuse_aws_managed;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::kms::{Kms, access_denied};
use crate::lifecycle::{check_alias_name, key_type};
use crate::state::KeyOp;
use crate::store::{AliasRecord, KeyRecord};
use crate::types::alias_arn;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateAlias {
    pub alias_name: String,
    pub target_key_id: String,
}

/// The new target must be the same type of key (symmetric, asymmetric, HMAC) with the same usage.
pub(crate) fn check_same_kind(
    alias_name: &str,
    old: &KeyRecord,
    new: &KeyRecord,
) -> Result<(), KmsError> {
    if key_type(old.key_spec) == key_type(new.key_spec) && old.key_usage == new.key_usage {
        return Ok(());
    }
    // AWS-DEVIATION (unverified): AWS's error code and text for a type or usage mismatch.
    Err(KmsError::validation_plain(format!(
        "Alias {alias_name} cannot be changed from a {} key with key usage {} to a {} key with key usage {}.",
        key_type(old.key_spec),
        old.key_usage,
        key_type(new.key_spec),
        new.key_usage
    )))
}

#[async_trait]
impl Operation for UpdateAlias {
    const NAME: &'static str = "UpdateAlias";
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
        kms.authorize_account(ctx, &account, "UpdateAlias", &arn)
            .await?;
        let alias = kms
            .store
            .get_alias(&account, &ctx.region, &self.alias_name)
            .await?
            .ok_or_else(|| KmsError::NotFound(format!("Alias {arn} is not found.")))?;
        // Both keys are affected: the caller needs kms:UpdateAlias on each.
        let old = kms
            .resolve(
                ctx,
                &alias.target_key_id.to_string(),
                false,
                "UpdateAlias",
                trail,
            )
            .await?;
        let new = kms
            .resolve(ctx, &self.target_key_id, false, "UpdateAlias", trail)
            .await?;
        if new.key.record.account != account {
            return Err(access_denied(ctx, "UpdateAlias", &new.key.arn));
        }
        refuse_aws_managed(ctx, &old.key, "UpdateAlias")?;
        refuse_aws_managed(ctx, &new.key, "UpdateAlias")?;
        kms.check_state(KeyOp::UpdateAliasOldTarget, &old.key)?;
        kms.check_state(KeyOp::UpdateAliasNewTarget, &new.key)?;
        check_same_kind(&self.alias_name, &old.key.record, &new.key.record)?;
        let updated = AliasRecord {
            target_key_id: new.key.record.key_id,
            updated: kms.clock.now(),
            ..alias
        };
        if !kms.store.update_alias(&updated).await? {
            return Err(KmsError::NotFound(format!("Alias {arn} is not found.")));
        }
        kms.invalidate_key(&old.key.record.key_id);
        kms.invalidate_key(&new.key.record.key_id);
        Ok(Empty {})
    }
}
