//! RevokeGrant and RetireGrant: both delete a grant; they differ in who may.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Empty, Operation, params, put};
use crate::audit::Trail;
use crate::authz::Access;
use crate::context::CallContext;
use crate::error::KmsError;
use crate::identity::CallerType;
use crate::kms::Kms;
use crate::state::KeyOp;
use crate::store::GrantRecord;
use crate::types::KeyRef;

fn grant_not_found(grant_id: &str) -> KmsError {
    // AWS-DEVIATION (unverified text).
    KmsError::NotFound(format!("Grant ID {grant_id} not found"))
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RevokeGrant {
    pub key_id: String,
    pub grant_id: String,
    pub dry_run: Option<bool>,
}

#[async_trait]
impl Operation for RevokeGrant {
    const NAME: &'static str = "RevokeGrant";
    const READ_ONLY: bool = false;
    type Output = Empty;

    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        let mut m = params();
        put(&mut m, "keyId", Some(self.key_id.clone()));
        put(&mut m, "grantId", Some(self.grant_id.clone()));
        Some(m)
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        if !crate::grant_token::is_grant_id(&self.grant_id) {
            return Err(KmsError::InvalidGrantId(format!(
                "Invalid grant ID {}",
                self.grant_id
            )));
        }
        let r = kms
            .resolve_for(ctx, &self.key_id, false, Access::new("RevokeGrant"), trail)
            .await?;
        kms.check_state(KeyOp::RevokeGrant, &r.key)?;
        let (region, key_id) = (&r.key.record.region, &r.key.record.key_id);
        if kms
            .store
            .get_grant(region, key_id, &self.grant_id)
            .await?
            .is_none()
        {
            return Err(grant_not_found(&self.grant_id));
        }
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        kms.store
            .delete_grant(region, key_id, &self.grant_id)
            .await?;
        kms.invalidate_key(key_id);
        Ok(Empty {})
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RetireGrant {
    pub grant_token: Option<String>,
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
    pub dry_run: Option<bool>,
}

/// Whether `principal` (a grantee or retiring principal string) names the caller.
fn names_caller(ctx: &CallContext, principal: &str) -> bool {
    if let Some(s) = &ctx.service_principal {
        return principal.eq_ignore_ascii_case(s);
    }
    let c = &ctx.caller;
    principal == c.arn || (c.caller_type == CallerType::AssumedRole && principal == c.principal.arn)
}

#[async_trait]
impl Operation for RetireGrant {
    const NAME: &'static str = "RetireGrant";
    const READ_ONLY: bool = false;
    type Output = Empty;

    /// AWS logs no request parameters for RetireGrant (the grant id goes in additionalEventData).
    fn audit_parameters(&self) -> Option<Map<String, Value>> {
        None
    }

    async fn execute(
        self,
        kms: &Kms,
        ctx: &CallContext,
        trail: &mut Trail,
    ) -> Result<Empty, KmsError> {
        let (region, key_id, grant_id) = match (&self.grant_token, &self.key_id, &self.grant_id) {
            (Some(token), _, _) => {
                let t = crate::grant_token::parse(token)?;
                (t.key_region, t.key_id, t.grant_id)
            }
            (None, Some(key), Some(gid)) => {
                if !crate::grant_token::is_grant_id(gid) {
                    return Err(KmsError::InvalidGrantId(format!("Invalid grant ID {gid}")));
                }
                match KeyRef::parse(key)? {
                    KeyRef::Arn { region, key_id, .. } => (region, key_id, gid.clone()),
                    // AWS-DEVIATION (unverified text): RetireGrant takes the key ARN only.
                    _ => return Err(KmsError::InvalidArn(format!("Invalid key ARN: {key}"))),
                }
            }
            _ => {
                return Err(KmsError::validation_plain(
                    "Either GrantToken or both KeyId and GrantId must be specified.",
                ));
            }
        };
        trail.set_additional("grantId", grant_id.clone());
        let grant: GrantRecord = kms
            .store
            .get_grant(&region, &key_id, &grant_id)
            .await?
            .ok_or_else(|| grant_not_found(&grant_id))?;
        let key_arn = crate::types::key_arn(&region, &grant.key_account, &key_id);
        trail.add_resource(&grant.key_account, &key_arn);
        // Who may retire (reference §6.4): the retiring principal; the grantee if the grant
        // includes RetireGrant; the issuing account (its root, or its IAM principals allowed
        // kms:RetireGrant by an identity policy); likewise an account named as retiring principal.
        let c = &ctx.caller;
        let account_root = c.account.root_arn();
        let direct = grant
            .retiring_principal
            .as_deref()
            .is_some_and(|p| names_caller(ctx, p))
            || (grant.operations.iter().any(|o| o == "RetireGrant")
                && names_caller(ctx, &grant.grantee_principal));
        let via_account = ctx.service_principal.is_none()
            && (grant.issuing_account == account_root
                || grant.retiring_principal.as_deref() == Some(account_root.as_str())
                || grant.retiring_principal.as_deref() == Some(c.account.as_str()));
        let allowed = if direct {
            true
        } else if via_account {
            c.caller_type == CallerType::Root
                || kms
                    .authorize_iam(ctx, &Access::new("RetireGrant"), &key_arn)
                    .await
                    .is_ok()
        } else {
            false
        };
        if !allowed {
            return Err(crate::kms::access_denied(ctx, "RetireGrant", &key_arn));
        }
        if let Some(key) = kms.load_key(&region, &key_id).await? {
            kms.check_state(KeyOp::RetireGrant, &key)?;
        }
        if self.dry_run == Some(true) {
            return Err(KmsError::DryRunOperation);
        }
        kms.store.delete_grant(&region, &key_id, &grant_id).await?;
        kms.invalidate_key(&key_id);
        Ok(Empty {})
    }
}
