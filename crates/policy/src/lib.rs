//! AWS IAM / KMS policy documents and KMS authorization, as one pure
//! function.
//!
//! Tresor authorizes every KMS call the way AWS KMS does: the key policy,
//! the caller's identity-based (IAM) policies and the key's grants are
//! evaluated together (reference §5–§6). This crate holds that logic and
//! nothing else: no I/O, no clock, no async. The core looks up the key,
//! its policy and grants, the caller's policies, fills in the request's
//! condition keys, and asks [`authorize`].
//!
//! # Flow
//!
//! 1. Parse each document once — [`parse_key_policy`] (every statement has a
//!    `Principal`), [`parse_identity_policy`] (none has), or
//!    [`parse_policy`] — into a [`Policy`]. Wildcards, typed condition
//!    values and policy variables are compiled here; evaluation never
//!    re-parses. The original text is not kept: the core stores it verbatim.
//! 2. Per request, build a [`ConditionContext`] (`kms:ViaService`,
//!    `kms:CallerAccount`, [`ConditionContext::insert_encryption_context`],
//!    `aws:SourceIp`, `aws:CurrentTime`, ...) and an [`AuthzRequest`].
//! 3. [`authorize`] returns an [`Evaluation`]: a [`Decision`] and the
//!    [`Reason`]s — the statements (policy, index, Sid) and grants that
//!    decided, and for a denial its [`DenialCause`], from which
//!    [`Evaluation::denial_reason_text`] builds AWS's message tail and
//!    [`Evaluation::explain`] an operator's trace.
//!
//! # Invariants
//!
//! - A matching `Deny` anywhere (key policy or identity policy) yields
//!   [`Decision::ExplicitDeny`]; no allow and no grant overrides it
//!   (property-tested, as is monotonicity: removing a `Deny` never turns
//!   an allow into a denial).
//! - Fail closed: a statement lacking `Action`/`Resource` matches nothing; a
//!   key policy statement without a principal applies to no one; an
//!   unresolvable policy variable makes its value match nothing;
//!   `NotPrincipal` with `Deny` exempts a caller only when its whole chain
//!   (account, role, session) is listed, and with `Allow` applies only when
//!   none of it is.
//! - Documents that would be ambiguous are rejected rather than guessed
//!   at: duplicate JSON member names, unknown elements, unknown condition
//!   operators, values that do not parse for their operator, empty lists.
//! - Nothing here panics on input; no indexing into input-derived data.
//!
//! # Choices where AWS is ambiguous or unobservable
//!
//! Each is also marked `AWS-DEVIATION` where it is implemented.
//!
//! - When both a key policy and an identity policy deny, the cause named is
//!   the key policy's ("explicit deny in a resource-based policy").
//! - An implicit denial names "no identity-based policy allows" when the
//!   caller is from another account and has no identity-based allow, or
//!   when the key policy delegates to the caller's account but no identity
//!   policy allows; otherwise "no resource-based policy allows" (as real
//!   KMS reports for same-account callers the key policy does not cover).
//! - A service principal is never "cross-account" (it has no identity
//!   policies); a key policy statement naming it, `"*"` included, suffices.
//! - Without a `ForAnyValue:`/`ForAllValues:` prefix, a key with several
//!   request values matches when any value matches (negated operators:
//!   when none does).
//! - Policy variables are substituted in `Resource`/`NotResource` and in the
//!   values of `String*` and `Arn*` operators (not in numeric, date, IP,
//!   boolean or binary values, which must parse as written).
//!
//! # Example
//!
//! ```
//! use tresor_policy::{
//!     AuthzRequest, ConditionContext, Decision, DenialCause, NamedPolicy, Principal,
//!     authorize, parse_identity_policy, parse_key_policy,
//! };
//!
//! // The default key policy: the account delegates to its IAM policies.
//! let key_policy = parse_key_policy(
//!     r#"{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{
//!         "Sid": "Enable IAM User Permissions", "Effect": "Allow",
//!         "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
//!         "Action": "kms:*", "Resource": "*"}]}"#,
//! )?;
//! let use_keys = parse_identity_policy(
//!     r#"{"Version": "2012-10-17", "Statement": {
//!         "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
//!         "Resource": "arn:aws:kms:*:111122223333:key/*"}}"#,
//! )?;
//! let alice = Principal::iam_user("111122223333", "alice");
//! let mut context = ConditionContext::new();
//! context.insert_single("kms:CallerAccount", "111122223333");
//! let identity = [NamedPolicy { name: "UseKeys", policy: &use_keys }];
//! let key_arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
//! let request = |action| AuthzRequest {
//!     action,
//!     resource: key_arn,
//!     resource_account: Some("111122223333"),
//!     principal: &alice,
//!     key_policy: Some(&key_policy),
//!     identity_policies: &identity,
//!     grants: &[],
//!     grant_operation: None,
//!     encryption_context: None,
//!     context: &context,
//! };
//!
//! assert_eq!(authorize(&request("kms:Decrypt")).decision, Decision::Allow);
//!
//! let denied = authorize(&request("kms:ScheduleKeyDeletion"));
//! assert_eq!(denied.decision, Decision::ImplicitDeny);
//! assert_eq!(denied.denial_cause(), Some(DenialCause::NoIdentityPolicyAllows));
//! assert_eq!(
//!     denied.denial_reason_text("kms:ScheduleKeyDeletion").as_deref(),
//!     Some("because no identity-based policy allows the kms:ScheduleKeyDeletion action"),
//! );
//! println!("{}", denied.explain());
//! # Ok::<(), tresor_policy::PolicyError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod condition;
mod context;
mod document;
mod error;
mod evaluate;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod pattern;
mod request;
mod scalar;

pub use context::{ConditionContext, ContextValue};
pub use document::{
    Effect, Policy, PolicyVersion, ReferencedPrincipal, Statement, parse_identity_policy,
    parse_key_policy, parse_policy,
};
pub use error::PolicyError;
pub use evaluate::{
    Decision, DenialCause, Evaluation, PolicySource, Reason, StatementRef, authorize,
};
pub use request::{
    AuthzRequest, GrantConstraints, GrantView, NamedPolicy, Principal, PrincipalKind,
};
