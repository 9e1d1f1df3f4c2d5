//! Authorization: builds the request for [`tresor_policy::authorize`] — the caller, the key
//! policy, the caller's identity policies, the key's grants and the condition keys KMS populates —
//! and turns a denial into AWS's `AccessDeniedException`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tresor_policy::{
    AuthzRequest, ConditionContext, ContextValue, Evaluation, GrantView, NamedPolicy, Policy,
    Principal, PrincipalKind,
};

use crate::context::CallContext;
use crate::error::KmsError;
use crate::flight::Flights;
use crate::identity::CallerType;
use crate::kms::{Kms, LoadedKey};
use crate::ops::EncryptionContext;
use crate::store::GrantRecord;

/// What an operation asks permission for, beyond the action itself.
#[derive(Clone, Debug)]
pub(crate) struct Access<'a> {
    /// The action without the `kms:` prefix (`Decrypt`, `ReEncryptFrom`).
    pub action: &'static str,
    /// The request's encryption context, for operations that take one (grant constraints and
    /// `kms:EncryptionContext:*` conditions).
    pub encryption_context: Option<&'a EncryptionContext>,
    pub grant_tokens: &'a [String],
    /// Operation-specific condition keys (`kms:EncryptionAlgorithm`, `kms:GrantOperations`, …).
    pub conditions: Vec<(String, ContextValue)>,
}

impl<'a> Access<'a> {
    pub fn new(action: &'static str) -> Access<'a> {
        Access {
            action,
            encryption_context: None,
            grant_tokens: &[],
            conditions: Vec::new(),
        }
    }
    pub fn context(mut self, ec: &'a EncryptionContext) -> Access<'a> {
        self.encryption_context = Some(ec);
        self
    }
    pub fn tokens(mut self, tokens: &'a [String]) -> Access<'a> {
        self.grant_tokens = tokens;
        self
    }
    pub fn with(mut self, key: impl Into<String>, value: ContextValue) -> Access<'a> {
        self.conditions.push((key.into(), value));
        self
    }
    pub fn with_str(self, key: impl Into<String>, value: impl Into<String>) -> Access<'a> {
        self.with(key, ContextValue::single(value))
    }
}

/// The operations a grant can allow (reference §6.1).
pub(crate) const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
];

fn grant_operation(action: &str) -> Option<&'static str> {
    GRANT_OPERATIONS.iter().copied().find(|op| *op == action)
}

/// A principal's identity policies, parsed: (name, policy).
type ParsedPolicies = Arc<Vec<(String, Policy)>>;

/// Parsed identity policies of principals, cached for a bounded time.
pub(crate) struct PolicyCache {
    ttl: Duration,
    /// Entry age counts from when its load began (see `crate::invalidation`).
    entries: Mutex<HashMap<String, (Instant, ParsedPolicies)>>,
    generation: crate::invalidation::Generation,
    /// Misses of one principal load its policies once.
    flights: Flights<String, Result<ParsedPolicies, KmsError>>,
}

impl PolicyCache {
    pub fn new(ttl: Duration) -> PolicyCache {
        PolicyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: Default::default(),
            flights: Flights::default(),
        }
    }
}

const MAX_CACHED_PRINCIPALS: usize = 100_000;

/// The evaluator's view of the caller.
pub(crate) fn principal_of(ctx: &CallContext) -> Principal {
    if let Some(service) = &ctx.service_principal {
        return Principal::service(service);
    }
    let c = &ctx.caller;
    let kind = match c.caller_type {
        CallerType::Root => PrincipalKind::Root,
        CallerType::IamUser => PrincipalKind::IamUser,
        CallerType::AssumedRole => PrincipalKind::AssumedRole {
            role_arn: c.principal.arn.clone(),
            session: c.session_name.clone().unwrap_or_default(),
        },
    };
    Principal {
        arn: c.arn.clone(),
        account: c.account.as_str().to_owned(),
        kind,
        user_id: Some(c.user_id.clone()),
        username: (c.caller_type == CallerType::IamUser).then(|| c.principal.name.clone()),
    }
}

/// `s3.us-east-1.amazonaws.com` → `s3.amazonaws.com` (the service principal form of `aws:CalledVia`).
fn service_principal_of(via: &str) -> String {
    let mut parts: Vec<&str> = via.split('.').collect();
    if parts.len() == 4 {
        parts.remove(1);
    }
    parts.join(".")
}

impl Kms {
    /// The caller's identity policies (a role session's are its role's); none for the account
    /// root and for service principals.
    async fn identity_policies(
        &self,
        ctx: &CallContext,
    ) -> Result<Arc<Vec<(String, Policy)>>, KmsError> {
        if ctx.service_principal.is_some() || ctx.caller.caller_type == CallerType::Root {
            return Ok(Arc::new(Vec::new()));
        }
        let arn = &ctx.caller.principal.arn;
        if let Ok(entries) = self.policy_cache.entries.lock()
            && let Some((at, p)) = entries.get(arn)
            && at.elapsed() < self.policy_cache.ttl
        {
            return Ok(p.clone());
        }
        self.policy_cache
            .flights
            .load(
                arn,
                &self.policy_cache.generation,
                self.policy_cache.ttl,
                |ticket| self.load_identity_policies(arn, ticket),
            )
            .await
    }

    /// Reads and parses a principal's identity policies and caches them.
    async fn load_identity_policies(
        &self,
        arn: &str,
        ticket: crate::invalidation::LoadTicket,
    ) -> Result<ParsedPolicies, KmsError> {
        let record = self.store.get_principal(arn).await?;
        let mut parsed = Vec::new();
        for p in record.map(|r| r.policies).unwrap_or_default() {
            match tresor_policy::parse_identity_policy(&p.document) {
                Ok(policy) => parsed.push((p.name, policy)),
                // Validated when stored; a document that no longer parses grants nothing.
                Err(e) => {
                    tracing::error!(principal = %arn, policy = %p.name, error = %e, "stored identity policy does not parse")
                }
            }
        }
        let parsed = Arc::new(parsed);
        if let Ok(mut entries) = self.policy_cache.entries.lock()
            && self.policy_cache.generation.is_current(&ticket)
        {
            if entries.len() >= MAX_CACHED_PRINCIPALS {
                entries.clear();
            }
            entries.insert(arn.to_owned(), (ticket.started, parsed.clone()));
        }
        Ok(parsed)
    }

    /// Forgets cached identity policies (after they change).
    pub fn invalidate_identity_policies(&self) {
        self.forget_identity_policies(None);
        self.identities().invalidate();
    }

    /// Forgets the cached identity policies of one principal, or of all.
    pub(crate) fn forget_identity_policies(&self, arn: Option<&str>) {
        if let Ok(mut entries) = self.policy_cache.entries.lock() {
            match arn {
                Some(arn) => {
                    entries.remove(arn);
                }
                None => entries.clear(),
            }
            self.policy_cache.generation.bump();
        }
    }

    /// Condition keys every request carries.
    fn base_context(&self, ctx: &CallContext) -> ConditionContext {
        let mut c = ConditionContext::new();
        let now = self.clock.now();
        c.insert_single("aws:CurrentTime", now.to_iso8601_seconds());
        c.insert_single("aws:EpochTime", now.unix_seconds().to_string());
        c.insert_single("aws:SecureTransport", ctx.secure_transport.to_string());
        c.insert_single("aws:RequestedRegion", ctx.region.as_str());
        c.insert_single("kms:CallerAccount", ctx.caller.account.as_str());
        match &ctx.via_service {
            Some(via) => {
                c.insert_single("kms:ViaService", via.clone());
                c.insert_single("aws:ViaAWSService", "true");
                c.insert(
                    "aws:CalledVia",
                    ContextValue::multi([service_principal_of(via)]),
                );
                c.insert_single("aws:CalledViaFirst", service_principal_of(via));
                c.insert_single("aws:CalledViaLast", service_principal_of(via));
            }
            None => {
                c.insert_single("aws:ViaAWSService", "false");
                if let Some(ip) = ctx.source_ip {
                    c.insert_single("aws:SourceIp", ip.to_string());
                }
            }
        }
        if ctx.service_principal.is_none() {
            let caller = &ctx.caller;
            c.insert_single(
                "aws:PrincipalArn",
                principal_of(ctx).principal_arn().to_owned(),
            );
            c.insert_single("aws:PrincipalAccount", caller.account.as_str());
            c.insert_single("aws:userid", caller.user_id.clone());
            c.insert_single(
                "aws:PrincipalType",
                match caller.caller_type {
                    CallerType::Root => "Account",
                    CallerType::IamUser => "User",
                    CallerType::AssumedRole => "AssumedRole",
                },
            );
            if caller.caller_type == CallerType::IamUser {
                c.insert_single("aws:username", caller.principal.name.clone());
            }
        } else if let Some(s) = &ctx.service_principal {
            c.insert_single("aws:PrincipalServiceName", s.clone());
            c.insert_single("aws:PrincipalIsAWSService", "true");
        }
        c
    }

    /// Authorizes `access` on `key`: key policy, identity policies and grants. `alias` is the
    /// alias name the caller used, if any (`kms:RequestAlias`).
    pub(crate) async fn authorize(
        &self,
        ctx: &CallContext,
        key: &LoadedKey,
        access: &Access<'_>,
        alias: Option<&str>,
    ) -> Result<(), KmsError> {
        let evaluation = self.evaluate(ctx, key, access, alias).await?;
        if evaluation.is_allowed() {
            Ok(())
        } else {
            Err(self.denied(ctx, access.action, &key.arn, &evaluation))
        }
    }

    /// The full evaluation (for `authorize` and for `tresor explain`).
    pub(crate) async fn evaluate(
        &self,
        ctx: &CallContext,
        key: &LoadedKey,
        access: &Access<'_>,
        alias: Option<&str>,
    ) -> Result<Evaluation, KmsError> {
        let principal = principal_of(ctx);
        let identity = self.identity_policies(ctx).await?;
        let named: Vec<NamedPolicy<'_>> = identity
            .iter()
            .map(|(name, policy)| NamedPolicy { name, policy })
            .collect();
        // The key's grants (borrowed from the cache) plus any a grant token names that the
        // cache does not hold yet.
        let extra = self.token_grants(key, access.grant_tokens).await?;
        let extra_constraints = crate::kms::grant_constraints_of(&extra);
        let views: Vec<GrantView<'_>> = key
            .grants
            .iter()
            .zip(&key.grant_constraints)
            .chain(extra.iter().zip(&extra_constraints))
            .map(|(g, c)| GrantView {
                grant_id: &g.grant_id,
                grantee_principal: &g.grantee_principal,
                operations: &g.operations,
                constraints: c.as_ref(),
            })
            .collect();
        let r = &key.record;
        // The condition context is only built when a policy can read it (a condition or a policy
        // variable): the decision is the same, and most calls are decided without it.
        let reads_context = key.policy.as_deref().is_some_and(Policy::reads_context)
            || identity.iter().any(|(_, p)| p.reads_context());
        let context = if reads_context {
            self.key_context(ctx, key, access, alias)
        } else {
            ConditionContext::new()
        };
        let action = format!("kms:{}", access.action);
        let req = AuthzRequest {
            action: &action,
            resource: &key.arn,
            resource_account: Some(r.account.as_str()),
            principal: &principal,
            key_policy: key.policy.as_deref(),
            identity_policies: &named,
            grants: &views,
            grant_operation: grant_operation(access.action),
            encryption_context: access.encryption_context,
            context: &context,
        };
        Ok(tresor_policy::authorize(&req))
    }

    /// The condition context of a call on `key`: the global keys, the key's own, the request's.
    fn key_context(
        &self,
        ctx: &CallContext,
        key: &LoadedKey,
        access: &Access<'_>,
        alias: Option<&str>,
    ) -> ConditionContext {
        let mut context = self.base_context(ctx);
        let r = &key.record;
        context.insert_single("kms:KeySpec", r.key_spec.as_str());
        context.insert_single("kms:CustomerMasterKeySpec", r.key_spec.as_str());
        context.insert_single("kms:KeyUsage", r.key_usage.as_str());
        context.insert_single("kms:CustomerMasterKeyUsage", r.key_usage.as_str());
        context.insert_single("kms:KeyOrigin", r.origin.as_str());
        context.insert_single("kms:KeyManager", r.key_manager.as_str());
        context.insert_single("kms:MultiRegion", "false");
        context.insert(
            "kms:ResourceAliases",
            ContextValue::multi(key.aliases.iter().cloned()),
        );
        for t in &r.tags {
            context.insert_single(&format!("aws:ResourceTag/{}", t.key), t.value.clone());
        }
        if let Some(a) = alias {
            context.insert_single("kms:RequestAlias", a);
        }
        if let Some(ec) = access.encryption_context {
            context.insert_encryption_context(ec);
        }
        context.insert_single(
            "kms:GrantIsForAWSResource",
            ctx.via_service.is_some().to_string(),
        );
        for (k, v) in &access.conditions {
            context.insert(k, v.clone());
        }
        context
    }

    /// The key's grants, plus any grant named by a grant token that the cache does not hold yet
    /// (a token is honoured at once, before the grant reaches this node's cache).
    async fn token_grants(
        &self,
        key: &LoadedKey,
        tokens: &[String],
    ) -> Result<Vec<GrantRecord>, KmsError> {
        let mut extra: Vec<GrantRecord> = Vec::new();
        for token in tokens {
            let parsed = crate::grant_token::parse(token)?;
            if parsed.key_region != key.record.region || parsed.key_id != key.record.key_id {
                continue;
            }
            let known = key
                .grants
                .iter()
                .chain(&extra)
                .any(|g| g.grant_id == parsed.grant_id);
            if known {
                continue;
            }
            if let Some(g) = self
                .store
                .get_grant(&key.record.region, &key.record.key_id, &parsed.grant_id)
                .await?
            {
                extra.push(g);
            }
        }
        Ok(extra)
    }

    /// Authorizes an IAM-only action (no key policy): `kms:CreateKey`, `kms:ListKeys`,
    /// `kms:GenerateRandom`, … on `resource` (`*`, or an alias ARN for alias operations).
    pub(crate) async fn authorize_iam(
        &self,
        ctx: &CallContext,
        access: &Access<'_>,
        resource: &str,
    ) -> Result<(), KmsError> {
        let principal = principal_of(ctx);
        let identity = self.identity_policies(ctx).await?;
        let named: Vec<NamedPolicy<'_>> = identity
            .iter()
            .map(|(name, policy)| NamedPolicy { name, policy })
            .collect();
        let mut context = ConditionContext::new();
        if identity.iter().any(|(_, p)| p.reads_context()) {
            context = self.base_context(ctx);
            for (k, v) in &access.conditions {
                context.insert(k, v.clone());
            }
        }
        let action = format!("kms:{}", access.action);
        let req = AuthzRequest {
            action: &action,
            resource,
            resource_account: None,
            principal: &principal,
            key_policy: None,
            identity_policies: &named,
            grants: &[],
            grant_operation: None,
            encryption_context: None,
            context: &context,
        };
        let evaluation = tresor_policy::authorize(&req);
        if evaluation.is_allowed() {
            Ok(())
        } else {
            Err(self.denied(ctx, access.action, resource, &evaluation))
        }
    }

    /// AWS's modern AccessDenied message for a denial.
    pub(crate) fn denied(
        &self,
        ctx: &CallContext,
        action: &str,
        resource: &str,
        e: &Evaluation,
    ) -> KmsError {
        let action = format!("kms:{action}");
        let because = e.denial_reason_text(&action).unwrap_or_else(|| {
            format!("because no resource-based policy allows the {action} action")
        });
        tracing::debug!(caller = %ctx.caller.arn, %action, %resource, trace = %e.explain(), "access denied");
        KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} {because}",
            caller_arn(ctx)
        ))
    }
}

/// The caller ARN an AccessDenied message names.
pub(crate) fn caller_arn(ctx: &CallContext) -> &str {
    ctx.service_principal.as_deref().unwrap_or(&ctx.caller.arn)
}

impl Kms {
    /// Validates a key policy document for CreateKey/PutKeyPolicy: size, grammar, principals
    /// that exist, and — unless bypassed — the lockout safety check (the caller must still be
    /// able to call PutKeyPolicy under the new policy).
    pub(crate) async fn check_key_policy(
        &self,
        ctx: &CallContext,
        text: &str,
        key_arn: &str,
        key_account: &crate::types::AccountId,
        bypass_lockout_check: bool,
    ) -> Result<Policy, KmsError> {
        if text.len() > crate::ops::create_key::MAX_POLICY_BYTES {
            // AWS-DEVIATION (unverified text): the quota error's exact message.
            return Err(KmsError::LimitExceeded(format!(
                "The key policy exceeds the maximum size of {} bytes.",
                crate::ops::create_key::MAX_POLICY_BYTES
            )));
        }
        let policy = tresor_policy::parse_key_policy(text).map_err(
            |tresor_policy::PolicyError::Malformed(m)| KmsError::MalformedPolicyDocument(m),
        )?;
        for p in policy.principals_referenced() {
            let exists = match &p {
                tresor_policy::ReferencedPrincipal::Account(_)
                | tresor_policy::ReferencedPrincipal::Service(_) => true,
                tresor_policy::ReferencedPrincipal::Arn(arn) => self.principal_exists(arn).await?,
            };
            if !exists {
                return Err(KmsError::MalformedPolicyDocument(
                    "Policy contains a statement with one or more invalid principals.".to_owned(),
                ));
            }
        }
        if !bypass_lockout_check {
            let principal = principal_of(ctx);
            let identity = self.identity_policies(ctx).await?;
            let named: Vec<NamedPolicy<'_>> = identity
                .iter()
                .map(|(name, policy)| NamedPolicy { name, policy })
                .collect();
            let mut context = self.base_context(ctx);
            context.insert_single("kms:BypassPolicyLockoutSafetyCheck", "false");
            let req = AuthzRequest {
                action: "kms:PutKeyPolicy",
                resource: key_arn,
                resource_account: Some(key_account.as_str()),
                principal: &principal,
                key_policy: Some(&policy),
                identity_policies: &named,
                grants: &[],
                grant_operation: None,
                encryption_context: None,
                context: &context,
            };
            if !tresor_policy::authorize(&req).is_allowed() {
                return Err(KmsError::MalformedPolicyDocument(
                    "The new key policy will not allow you to update the key policy in the future."
                        .to_owned(),
                ));
            }
        }
        Ok(policy)
    }

    /// Whether an AWS principal ARN in a policy names something that exists here: account roots
    /// always do; IAM users and roles (and sessions of roles) must be known.
    async fn principal_exists(&self, arn: &str) -> Result<bool, KmsError> {
        if arn.ends_with(":root") {
            return Ok(
                crate::identity::PrincipalRecord::from_arn(arn, crate::types::Timestamp(0)).is_ok(),
            );
        }
        if let Some(rest) = arn.strip_prefix("arn:aws:sts::") {
            // arn:aws:sts::<acct>:assumed-role/<role>/<session> → the role must exist.
            let Some((account, resource)) = rest.split_once(':') else {
                return Ok(false);
            };
            let Some(role) = resource
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split('/').next())
            else {
                return Ok(false);
            };
            return Ok(self
                .store
                .get_principal(&format!("arn:aws:iam::{account}:role/{role}"))
                .await?
                .is_some());
        }
        Ok(self.store.get_principal(arn).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn called_via_form() {
        assert_eq!(
            service_principal_of("s3.us-east-1.amazonaws.com"),
            "s3.amazonaws.com"
        );
        assert_eq!(
            service_principal_of("voiceid.amazonaws.com"),
            "voiceid.amazonaws.com"
        );
    }

    #[test]
    fn grantable_actions() {
        assert_eq!(grant_operation("ReEncryptFrom"), Some("ReEncryptFrom"));
        assert_eq!(grant_operation("PutKeyPolicy"), None);
    }
}

/// Every KMS IAM action (without the `kms:` prefix) that `explain` accepts.
const ACTIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncryptFrom",
    "ReEncryptTo",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

/// The answer to "why was this allowed or denied".
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub decision: String,
    /// The AccessDenied message the caller would get (denials only).
    pub message: Option<String>,
    /// One line per deciding statement or grant, and near-misses for denials.
    pub trace: Vec<String>,
}

impl Kms {
    /// Evaluates, without performing or auditing anything, whether `ctx`'s caller may perform
    /// `action` (`Decrypt`, `kms:Decrypt`, `ReEncryptFrom`, …) on the key `key_arn` with the given
    /// encryption context, and why.
    pub async fn explain(
        &self,
        ctx: &CallContext,
        key_arn: &str,
        action: &str,
        encryption_context: Option<&EncryptionContext>,
    ) -> Result<Explanation, KmsError> {
        let name = action.strip_prefix("kms:").unwrap_or(action);
        let action: &'static str = ACTIONS
            .iter()
            .copied()
            .find(|a| *a == name)
            .ok_or_else(|| KmsError::validation_plain(format!("{action} is not a KMS action")))?;
        let (account, key_id, _) = self.locate(ctx, key_arn, true, action).await?;
        let key = self
            .load_key(&ctx.region, &key_id)
            .await?
            .filter(|k| k.record.account == account)
            .ok_or_else(|| KmsError::NotFound(format!("Key '{key_arn}' does not exist")))?;
        let empty = EncryptionContext::new();
        let mut access = Access::new(action);
        if let Some(ec) = encryption_context {
            access = access.context(ec);
        } else if matches!(
            action,
            "Encrypt" | "Decrypt" | "ReEncryptFrom" | "ReEncryptTo"
        ) || action.starts_with("GenerateDataKey")
        {
            access = access.context(&empty);
        }
        let e = self.evaluate(ctx, &key, &access, None).await?;
        let trace = e
            .explain()
            .lines()
            .skip(1)
            .map(|l| l.trim_start_matches("  - ").to_owned())
            .collect();
        let message = (!e.is_allowed()).then(|| self.denied(ctx, action, &key.arn, &e).to_string());
        Ok(Explanation {
            decision: format!("{:?}", e.decision),
            message,
            trace,
        })
    }
}
