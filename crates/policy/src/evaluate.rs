//! [`authorize`]: the KMS authorization decision (reference §5.2).

use std::collections::BTreeMap;
use std::fmt;

use crate::condition::{Condition, Env};
use crate::document::{Effect, PrincipalMatch, Statement};
use crate::request::{AuthzRequest, GrantView, PrincipalKind};

/// The outcome of [`authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Nothing allows the request.
    ImplicitDeny,
    /// A matching `Deny` statement; nothing overrides it.
    ExplicitDeny,
}

/// Which policy a statement belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The key policy (resource-based).
    KeyPolicy,
    /// An identity-based policy, by name.
    Identity(String),
}

/// A statement, located for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: PolicySource,
    /// 0-based position in the policy's `Statement` list.
    pub index: usize,
    pub sid: Option<String>,
}

/// Why a request was denied, in the words of AWS's `AccessDeniedException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialCause {
    /// "no identity-based policy allows": a cross-account caller without an
    /// IAM allow, a key policy that delegates to IAM without an IAM allow,
    /// or an IAM-only action without an IAM allow.
    NoIdentityPolicyAllows,
    /// "no resource-based policy allows": the key policy neither names the
    /// caller nor delegates to its account (and no grant applies).
    NoResourcePolicyAllows,
    /// "explicit deny in a resource-based policy": a key policy `Deny`.
    ExplicitDenyInResourcePolicy,
    /// "explicit deny in an identity-based policy": an IAM policy `Deny`.
    ExplicitDenyInIdentityPolicy,
}

impl DenialCause {
    fn phrase(self) -> &'static str {
        match self {
            DenialCause::NoIdentityPolicyAllows => "no identity-based policy allows",
            DenialCause::NoResourcePolicyAllows => "no resource-based policy allows",
            DenialCause::ExplicitDenyInResourcePolicy => "explicit deny in a resource-based policy",
            DenialCause::ExplicitDenyInIdentityPolicy => {
                "explicit deny in an identity-based policy"
            }
        }
    }
}

impl fmt::Display for DenialCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.phrase())
    }
}

/// One line of the decision trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The denial's cause; the first reason of every denial.
    Denied(DenialCause),
    /// A `Deny` statement that matched.
    ExplicitDeny(StatementRef),
    /// A key policy `Allow` naming the caller (its ARN, its role, `"*"`, its
    /// service, or its account when the caller is that account's root).
    KeyPolicyAllowsCaller(StatementRef),
    /// A key policy `Allow` naming the caller's account: delegation to the
    /// account's identity-based policies.
    KeyPolicyAllowsAccount(StatementRef),
    /// An identity-based `Allow` that matched.
    IdentityPolicyAllows(StatementRef),
    /// The caller is an account's root user: its identity-based permission
    /// is implicit.
    RootIdentity { account: String },
    /// A grant that allowed the operation.
    Grant { grant_id: String },
    /// An `Allow` statement that matched principal, action and resource but
    /// not this condition (trace only).
    ConditionNotMet {
        statement: StatementRef,
        operator: String,
        key: String,
    },
    /// A grant for the caller and operation whose encryption-context
    /// constraints the request does not meet (trace only).
    GrantConstraintsNotMet { grant_id: String },
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            PolicySource::KeyPolicy => write!(f, "key policy Statement[{}]", self.index)?,
            PolicySource::Identity(name) => {
                write!(f, "identity policy \"{name}\" Statement[{}]", self.index)?;
            }
        }
        if let Some(sid) = &self.sid {
            write!(f, " (Sid \"{sid}\")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Denied(cause) => write!(f, "denied: {cause}"),
            Reason::ExplicitDeny(s) => write!(f, "{s} denies"),
            Reason::KeyPolicyAllowsCaller(s) => write!(f, "{s} allows the caller"),
            Reason::KeyPolicyAllowsAccount(s) => write!(
                f,
                "{s} allows the caller's account (delegates to identity-based policies)"
            ),
            Reason::IdentityPolicyAllows(s) => write!(f, "{s} allows"),
            Reason::RootIdentity { account } => write!(
                f,
                "the caller is the root user of account {account}, which needs no identity-based policy"
            ),
            Reason::Grant { grant_id } => write!(f, "grant {grant_id} allows"),
            Reason::ConditionNotMet {
                statement,
                operator,
                key,
            } => write!(
                f,
                "{statement} does not apply: condition {operator} on {key} is not met"
            ),
            Reason::GrantConstraintsNotMet { grant_id } => write!(
                f,
                "grant {grant_id} does not apply: the encryption context does not meet its constraints"
            ),
        }
    }
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    /// For an allow, what allowed it. For a denial, first
    /// [`Reason::Denied`], then the deny statements (explicit) or what
    /// almost allowed it (implicit).
    pub reasons: Vec<Reason>,
}

impl Evaluation {
    pub fn is_allowed(&self) -> bool {
        self.decision == Decision::Allow
    }

    /// The cause of a denial; `None` for an allow.
    pub fn denial_cause(&self) -> Option<DenialCause> {
        self.reasons.iter().find_map(|r| match r {
            Reason::Denied(cause) => Some(*cause),
            _ => None,
        })
    }

    /// The tail of AWS's `AccessDeniedException` message, e.g. `because no
    /// identity-based policy allows the kms:Decrypt action` or `with an
    /// explicit deny in a resource-based policy`; `None` for an allow. The
    /// full message is `User: <caller-arn> is not authorized to perform:
    /// <action> on resource: <resource> <tail>`.
    pub fn denial_reason_text(&self, action: &str) -> Option<String> {
        self.denial_cause().map(|cause| match cause {
            DenialCause::NoIdentityPolicyAllows | DenialCause::NoResourcePolicyAllows => {
                format!("because {cause} the {action} action")
            }
            DenialCause::ExplicitDenyInResourcePolicy
            | DenialCause::ExplicitDenyInIdentityPolicy => format!("with an {cause}"),
        })
    }

    /// A human-readable trace for operators: the decision, then one line
    /// per reason.
    pub fn explain(&self) -> String {
        let mut out = String::from(match self.decision {
            Decision::Allow => "Allow",
            Decision::ImplicitDeny => "ImplicitDeny",
            Decision::ExplicitDeny => "ExplicitDeny",
        });
        for reason in &self.reasons {
            out.push_str("\n  - ");
            out.push_str(&reason.to_string());
        }
        out
    }
}

/// How one statement relates to the request.
enum Outcome<'p> {
    NotApplicable,
    ConditionFailed(&'p Condition),
    Matched(PrincipalMatch),
}

fn evaluate_statement<'p>(
    statement: &'p Statement,
    in_key_policy: bool,
    req: &AuthzRequest<'_>,
    env: &Env<'_>,
    action: &str,
) -> Outcome<'p> {
    let principal = match (&statement.principal, in_key_policy) {
        (Some(p), _) => p.applies_to(req.principal, statement.effect()),
        // A key policy statement without a principal applies to no one.
        (None, true) => PrincipalMatch::No,
        // An identity-based statement applies to the identity it is attached to.
        (None, false) => PrincipalMatch::Direct,
    };
    if principal == PrincipalMatch::No
        || !statement.matches_action(action)
        || !statement.matches_resource(req.resource, env)
    {
        return Outcome::NotApplicable;
    }
    match statement.conditions.iter().find(|c| !c.holds(env)) {
        Some(condition) => Outcome::ConditionFailed(condition),
        None => Outcome::Matched(principal),
    }
}

/// What the statements said, collected in document order.
#[derive(Default)]
struct Tally {
    key_denies: Vec<StatementRef>,
    identity_denies: Vec<StatementRef>,
    key_allows_caller: Vec<StatementRef>,
    key_allows_account: Vec<StatementRef>,
    identity_allows: Vec<StatementRef>,
    /// `ConditionNotMet` reasons of `Allow` statements.
    unmet: Vec<Reason>,
}

impl Tally {
    fn record(&mut self, statement: &Statement, outcome: Outcome<'_>, at: StatementRef) {
        let in_key_policy = at.policy == PolicySource::KeyPolicy;
        match (statement.effect(), outcome) {
            (_, Outcome::NotApplicable) => {}
            // A failed condition on a Deny is the normal case; not traced.
            (Effect::Deny, Outcome::ConditionFailed(_)) => {}
            (Effect::Allow, Outcome::ConditionFailed(c)) => {
                self.unmet.push(Reason::ConditionNotMet {
                    statement: at,
                    operator: c.operator().to_owned(),
                    key: c.key().to_owned(),
                })
            }
            (Effect::Deny, Outcome::Matched(_)) if in_key_policy => self.key_denies.push(at),
            (Effect::Deny, Outcome::Matched(_)) => self.identity_denies.push(at),
            (Effect::Allow, Outcome::Matched(_)) if !in_key_policy => self.identity_allows.push(at),
            (Effect::Allow, Outcome::Matched(PrincipalMatch::Account)) => {
                self.key_allows_account.push(at);
            }
            // `No` never reaches here: such statements are `NotApplicable`.
            (Effect::Allow, Outcome::Matched(PrincipalMatch::Direct | PrincipalMatch::No)) => {
                self.key_allows_caller.push(at);
            }
        }
    }
}

/// Decides whether `req.principal` may perform `req.action` on
/// `req.resource` (reference §5.2):
///
/// 1. a matching `Deny` in the key policy or an identity-based policy →
///    [`Decision::ExplicitDeny`]; grants cannot override it;
/// 2. a key policy `Allow` naming the caller → allow; for a caller from
///    another account an identity-based allow is also needed (another
///    account's root has it implicitly);
/// 3. a key policy `Allow` naming the caller's account (not the root) →
///    allow iff an identity-based policy of the caller allows the action on
///    the resource;
/// 4. a grant to the caller for `req.grant_operation` whose constraints hold
///    → allow, also across accounts;
/// 5. IAM-only actions (`req.key_policy` is `None`): identity-based
///    policies decide; an account's root is always allowed;
/// 6. otherwise [`Decision::ImplicitDeny`] with the [`DenialCause`] AWS
///    would name.
pub fn authorize(req: &AuthzRequest<'_>) -> Evaluation {
    let env = Env {
        context: req.context,
        principal: Some(req.principal),
    };
    let action = req.action.to_lowercase();
    let mut tally = Tally::default();

    if let Some(policy) = req.key_policy {
        for (index, statement) in policy.statements().iter().enumerate() {
            let outcome = evaluate_statement(statement, true, req, &env, &action);
            let at = StatementRef {
                policy: PolicySource::KeyPolicy,
                index,
                sid: statement.sid().map(str::to_owned),
            };
            tally.record(statement, outcome, at);
        }
    }
    for named in req.identity_policies {
        for (index, statement) in named.policy.statements().iter().enumerate() {
            let outcome = evaluate_statement(statement, false, req, &env, &action);
            let at = StatementRef {
                policy: PolicySource::Identity(named.name.to_owned()),
                index,
                sid: statement.sid().map(str::to_owned),
            };
            tally.record(statement, outcome, at);
        }
    }

    // 1. Explicit deny wins over everything.
    if !tally.key_denies.is_empty() || !tally.identity_denies.is_empty() {
        // AWS names one policy type; when both deny, we name the key policy
        // (AWS-DEVIATION, unverified which one AWS names).
        let cause = if tally.key_denies.is_empty() {
            DenialCause::ExplicitDenyInIdentityPolicy
        } else {
            DenialCause::ExplicitDenyInResourcePolicy
        };
        let mut reasons = vec![Reason::Denied(cause)];
        reasons.extend(
            tally
                .key_denies
                .into_iter()
                .chain(tally.identity_denies)
                .map(Reason::ExplicitDeny),
        );
        return Evaluation {
            decision: Decision::ExplicitDeny,
            reasons,
        };
    }

    let root = req.principal.is_root();
    let root_identity = || Reason::RootIdentity {
        account: req.principal.account.clone(),
    };
    let identity_allows = || {
        tally
            .identity_allows
            .iter()
            .cloned()
            .map(Reason::IdentityPolicyAllows)
    };

    // 5. IAM-only actions.
    if req.key_policy.is_none() {
        if root {
            return allow(vec![root_identity()]);
        }
        if !tally.identity_allows.is_empty() {
            return allow(identity_allows().collect());
        }
        let mut reasons = vec![Reason::Denied(DenialCause::NoIdentityPolicyAllows)];
        reasons.extend(tally.unmet);
        return implicit_deny(reasons);
    }

    let cross_account = match &req.principal.kind {
        // A service principal has no account and no identity-based policies.
        PrincipalKind::Service { .. } => false,
        PrincipalKind::Root | PrincipalKind::IamUser | PrincipalKind::AssumedRole { .. } => req
            .resource_account
            .is_some_and(|account| account != req.principal.account),
    };
    let identity_allowed = root || !tally.identity_allows.is_empty();

    // 2. The key policy names the caller.
    if !tally.key_allows_caller.is_empty() && (!cross_account || identity_allowed) {
        let mut reasons: Vec<Reason> = tally
            .key_allows_caller
            .iter()
            .cloned()
            .map(Reason::KeyPolicyAllowsCaller)
            .collect();
        if cross_account {
            if root {
                reasons.push(root_identity());
            } else {
                reasons.extend(identity_allows());
            }
        }
        return allow(reasons);
    }

    // 3. The key policy delegates to the caller's account.
    if !tally.key_allows_account.is_empty() && !tally.identity_allows.is_empty() {
        let mut reasons: Vec<Reason> = tally
            .key_allows_account
            .iter()
            .cloned()
            .map(Reason::KeyPolicyAllowsAccount)
            .collect();
        reasons.extend(identity_allows());
        return allow(reasons);
    }

    // 4. Grants.
    let mut grant_misses = Vec::new();
    for grant in req.grants {
        match grant_outcome(grant, req) {
            GrantOutcome::Allows => {
                return allow(vec![Reason::Grant {
                    grant_id: grant.grant_id.to_owned(),
                }]);
            }
            GrantOutcome::ConstraintsNotMet => {
                grant_misses.push(Reason::GrantConstraintsNotMet {
                    grant_id: grant.grant_id.to_owned(),
                });
            }
            GrantOutcome::NotApplicable => {}
        }
    }

    // 6. Implicit deny. AWS's message names the missing half: the
    // identity-based allow when the caller is from another account or the
    // key policy delegates to IAM, otherwise the key policy.
    let cause = if (cross_account && !identity_allowed) || !tally.key_allows_account.is_empty() {
        DenialCause::NoIdentityPolicyAllows
    } else {
        DenialCause::NoResourcePolicyAllows
    };
    let mut reasons = vec![Reason::Denied(cause)];
    reasons.extend(
        tally
            .key_allows_caller
            .iter()
            .cloned()
            .map(Reason::KeyPolicyAllowsCaller),
    );
    reasons.extend(
        tally
            .key_allows_account
            .iter()
            .cloned()
            .map(Reason::KeyPolicyAllowsAccount),
    );
    reasons.extend(identity_allows());
    reasons.extend(tally.unmet);
    reasons.extend(grant_misses);
    implicit_deny(reasons)
}

fn allow(reasons: Vec<Reason>) -> Evaluation {
    Evaluation {
        decision: Decision::Allow,
        reasons,
    }
}

fn implicit_deny(reasons: Vec<Reason>) -> Evaluation {
    Evaluation {
        decision: Decision::ImplicitDeny,
        reasons,
    }
}

enum GrantOutcome {
    NotApplicable,
    ConstraintsNotMet,
    Allows,
}

fn grant_outcome(grant: &GrantView<'_>, req: &AuthzRequest<'_>) -> GrantOutcome {
    let Some(operation) = req.grant_operation else {
        return GrantOutcome::NotApplicable;
    };
    if !grant.operations.iter().any(|op| op == operation) || !grantee_is_caller(grant, req) {
        return GrantOutcome::NotApplicable;
    }
    // Constraints only apply to operations that take an encryption context.
    if let (Some(constraints), Some(context)) = (grant.constraints, req.encryption_context) {
        let subset_ok = constraints
            .encryption_context_subset
            .as_ref()
            .is_none_or(|required| is_subset(required, context));
        let equals_ok = constraints
            .encryption_context_equals
            .as_ref()
            .is_none_or(|required| is_subset(required, context) && is_subset(context, required));
        if !(subset_ok && equals_ok) {
            return GrantOutcome::ConstraintsNotMet;
        }
    }
    GrantOutcome::Allows
}

fn grantee_is_caller(grant: &GrantView<'_>, req: &AuthzRequest<'_>) -> bool {
    let grantee = grant.grantee_principal;
    let caller = req.principal;
    match &caller.kind {
        PrincipalKind::IamUser => grantee == caller.arn,
        PrincipalKind::AssumedRole { role_arn, .. } => grantee == caller.arn || grantee == role_arn,
        PrincipalKind::Service { name } => grantee.eq_ignore_ascii_case(name),
        PrincipalKind::Root => {
            grantee == caller.arn
                || grantee
                    .strip_prefix("arn:")
                    .and_then(|rest| rest.split_once(':'))
                    .and_then(|(_partition, rest)| rest.strip_prefix("iam::"))
                    .and_then(|rest| rest.strip_suffix(":root"))
                    .is_some_and(|account| account == caller.account)
        }
    }
}

/// Whether every pair of `required` is in `context`: keys compared
/// case-insensitively, values case-sensitively (reference §6.3).
fn is_subset(required: &BTreeMap<String, String>, context: &BTreeMap<String, String>) -> bool {
    required.iter().all(|(key, value)| {
        context
            .iter()
            .any(|(k, v)| v == value && (k == key || k.to_lowercase() == key.to_lowercase()))
    })
}
