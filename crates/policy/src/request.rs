//! The inputs of [`crate::authorize`]: who calls, on what, with which
//! policies and grants.

use std::collections::BTreeMap;

use crate::context::ConditionContext;
use crate::document::Policy;

/// What kind of identity made the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user (`arn:aws:iam::<account>:root`).
    Root,
    /// An IAM user.
    IamUser,
    /// A session of an IAM role (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    AssumedRole {
        /// The role's ARN, with its path (`arn:aws:iam::<account>:role/<path><name>`).
        role_arn: String,
        /// The session name.
        session: String,
    },
    /// An AWS service principal acting on its own behalf
    /// (`voiceid.amazonaws.com`), typically under a grant.
    Service {
        /// The service principal name.
        name: String,
    },
}

/// The caller, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN as AWS reports it (for a role session the `sts`
    /// assumed-role ARN; for a service its principal name).
    pub arn: String,
    /// The caller's account (empty for a service principal).
    pub account: String,
    pub kind: PrincipalKind,
    /// `aws:userid` (`AIDA...` for a user, `AROA...:<session>` for a role
    /// session, the account id for root), when known.
    pub user_id: Option<String>,
    /// `aws:username` (IAM users only).
    pub username: Option<String>,
}

impl Principal {
    /// The root user of `account`.
    pub fn root(account: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_owned(),
            kind: PrincipalKind::Root,
            user_id: Some(account.to_owned()),
            username: None,
        }
    }

    /// The IAM user `name` (no path) of `account`.
    pub fn iam_user(account: &str, name: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            account: account.to_owned(),
            kind: PrincipalKind::IamUser,
            user_id: None,
            username: Some(name.to_owned()),
        }
    }

    /// A session `session` of role `role_name` (no path) of `account`.
    pub fn assumed_role(account: &str, role_name: &str, session: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}"),
            account: account.to_owned(),
            kind: PrincipalKind::AssumedRole {
                role_arn: format!("arn:aws:iam::{account}:role/{role_name}"),
                session: session.to_owned(),
            },
            user_id: None,
            username: None,
        }
    }

    /// The service principal `name` (`voiceid.amazonaws.com`).
    pub fn service(name: &str) -> Principal {
        Principal {
            arn: name.to_owned(),
            account: String::new(),
            kind: PrincipalKind::Service {
                name: name.to_owned(),
            },
            user_id: None,
            username: None,
        }
    }

    /// `aws:PrincipalArn`: the role ARN for a role session, else the caller
    /// ARN (for a service principal, its name; the evaluator does not offer
    /// it as `aws:PrincipalArn`).
    pub fn principal_arn(&self) -> &str {
        match &self.kind {
            PrincipalKind::AssumedRole { role_arn, .. } => role_arn,
            PrincipalKind::Root | PrincipalKind::IamUser | PrincipalKind::Service { .. } => {
                &self.arn
            }
        }
    }

    pub(crate) fn is_root(&self) -> bool {
        matches!(self.kind, PrincipalKind::Root)
    }
}

/// An identity-based policy with its name (used in the decision trace).
#[derive(Debug, Clone, Copy)]
pub struct NamedPolicy<'a> {
    pub name: &'a str,
    pub policy: &'a Policy,
}

/// Encryption-context constraints of a grant (§6.3). When both are set,
/// both must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrantConstraints {
    /// The request's context must contain every pair.
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    /// The request's context must be exactly these pairs.
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
}

/// A grant on the key, as the evaluator needs it.
#[derive(Debug, Clone, Copy)]
pub struct GrantView<'a> {
    pub grant_id: &'a str,
    pub grantee_principal: &'a str,
    /// Grant operations (`Decrypt`, `ReEncryptFrom`, ...).
    pub operations: &'a [String],
    pub constraints: Option<&'a GrantConstraints>,
}

/// One authorization question.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    /// The IAM action, `kms:Decrypt`.
    pub action: &'a str,
    /// The key ARN, alias ARN, or `*` for IAM-only actions.
    pub resource: &'a str,
    /// The key's account; `None` for IAM-only actions.
    pub resource_account: Option<&'a str>,
    pub principal: &'a Principal,
    /// The key policy; `None` for IAM-only actions.
    pub key_policy: Option<&'a Policy>,
    /// The caller's identity-based policies (for a role session, the role's).
    pub identity_policies: &'a [NamedPolicy<'a>],
    /// The grants on the key.
    pub grants: &'a [GrantView<'a>],
    /// The grant operation this action needs (`Decrypt`, `ReEncryptFrom`);
    /// `None` when the action cannot be granted.
    pub grant_operation: Option<&'a str>,
    /// The request's encryption context, for grant constraints. Pass
    /// `Some` (an empty map when the request had none) for operations that
    /// take an encryption context, `None` for those that do not
    /// (DescribeKey, GetPublicKey, RetireGrant, ...): constraints are
    /// ignored then.
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    pub context: &'a ConditionContext,
}
