//! The invariants the `policy_document` fuzz target (`fuzz/`) checks, also replayed over the
//! committed corpus by `tests/fuzz_corpus.rs`. Not part of the API.

#![allow(clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use crate::{
    AuthzRequest, ConditionContext, Decision, NamedPolicy, Policy, Principal, authorize,
    parse_identity_policy, parse_key_policy, parse_policy,
};

const ACCOUNT: &str = "111122223333";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const DENY_ALL: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}"#;
const ALLOW_ACCOUNT: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}"#;

fn principals() -> Vec<Principal> {
    vec![
        Principal::root(ACCOUNT),
        Principal::iam_user(ACCOUNT, "alice"),
        Principal::assumed_role(ACCOUNT, "AppRole", "session"),
        Principal::iam_user("444455556666", "mallory"),
        Principal::service("voiceid.amazonaws.com"),
    ]
}

fn evaluate(
    principal: &Principal,
    action: &str,
    key_policy: Option<&Policy>,
    identity: &[NamedPolicy<'_>],
    encryption_context: Option<&BTreeMap<String, String>>,
    context: &ConditionContext,
) -> Decision {
    let request = AuthzRequest {
        action,
        resource: KEY_ARN,
        resource_account: Some(ACCOUNT),
        principal,
        key_policy,
        identity_policies: identity,
        grants: &[],
        grant_operation: None,
        encryption_context,
        context,
    };
    let evaluation = authorize(&request);
    // Explanations never panic either.
    let _ = evaluation.explain();
    let _ = evaluation.denial_reason_text(action);
    let again = authorize(&request);
    assert_eq!(
        again.decision, evaluation.decision,
        "authorize is deterministic"
    );
    evaluation.decision
}

/// `data` is a policy document. Panics when an invariant breaks:
///
/// - parsing never panics; a document that parses as a key policy or as an identity policy also
///   parses as a policy; errors have a message (answered as `MalformedPolicyDocumentException`);
/// - evaluating a parsed document (as the key policy, and as an identity policy) never panics and
///   is deterministic, for several principals, actions and contexts;
/// - an explicit deny always wins: with a deny-all identity policy beside it, nothing is allowed.
pub fn check_policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let any = parse_policy(&text);
    let key = parse_key_policy(&text);
    let identity = parse_identity_policy(&text);
    for result in [&any, &key, &identity] {
        if let Err(e) = result {
            assert!(!e.to_string().is_empty(), "empty error message");
        }
    }
    if key.is_ok() || identity.is_ok() {
        assert!(
            any.is_ok(),
            "a key or identity policy must parse as a policy"
        );
    }
    let (Ok(deny_all), Ok(allow_account)) = (
        parse_identity_policy(DENY_ALL),
        parse_key_policy(ALLOW_ACCOUNT),
    ) else {
        panic!("fixed policies do not parse");
    };
    let mut context = ConditionContext::new();
    context.insert_single("kms:CallerAccount", ACCOUNT);
    context.insert_single("aws:SourceIp", "127.0.0.1");
    context.insert_single("kms:ViaService", "voiceid.us-east-1.amazonaws.com");
    let mut ec = BTreeMap::new();
    ec.insert("tenant".to_owned(), "a".to_owned());
    for principal in principals() {
        for action in ["kms:Decrypt", "kms:PutKeyPolicy", "kms:CreateGrant"] {
            for encryption_context in [None, Some(&ec)] {
                if let Ok(policy) = &key {
                    evaluate(
                        &principal,
                        action,
                        Some(policy),
                        &[],
                        encryption_context,
                        &context,
                    );
                    let denied = [NamedPolicy {
                        name: "DenyAll",
                        policy: &deny_all,
                    }];
                    let d = evaluate(
                        &principal,
                        action,
                        Some(policy),
                        &denied,
                        encryption_context,
                        &context,
                    );
                    // A deny-all identity policy binds the principals it is attached to (not
                    // service principals, which have none).
                    if !matches!(principal.kind, crate::PrincipalKind::Service { .. }) {
                        assert_eq!(d, Decision::ExplicitDeny, "explicit deny must win");
                    }
                }
                if let Ok(policy) = &identity {
                    let attached = [NamedPolicy {
                        name: "Fuzzed",
                        policy,
                    }];
                    evaluate(
                        &principal,
                        action,
                        Some(&allow_account),
                        &attached,
                        encryption_context,
                        &context,
                    );
                }
            }
        }
    }
}
