//! Properties of the decision over random key policies, identity policies,
//! grants and requests:
//! * no combination of allows (key policy, identity policy, grant)
//!   overrides a matching explicit Deny;
//! * removing a Deny statement never turns an Allow into a denial, and
//!   adding an Allow statement never does either (monotonicity);
//! * parsing arbitrary text never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tresor_policy::{
    AuthzRequest, ConditionContext, Decision, Evaluation, GrantConstraints, GrantView, NamedPolicy,
    Principal, authorize, parse_identity_policy, parse_key_policy, parse_policy,
};

const KEY_ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ACCOUNT: &str = "111122223333";

fn callers() -> Vec<Principal> {
    vec![
        Principal::root("111122223333"),
        Principal::iam_user("111122223333", "alice"),
        Principal::assumed_role("111122223333", "R", "s"),
        Principal::iam_user("444455556666", "carol"),
        Principal::root("444455556666"),
        Principal::service("voiceid.amazonaws.com"),
    ]
}

const ACTIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "ReEncryptFrom",
    "DescribeKey",
    "ScheduleKeyDeletion",
];

fn principal_element() -> impl Strategy<Value = (bool, Value)> {
    let principals = prop_oneof![
        Just(json!("*")),
        Just(json!({"AWS": "*"})),
        Just(json!({"AWS": "111122223333"})),
        Just(json!({"AWS": "arn:aws:iam::111122223333:root"})),
        Just(json!({"AWS": "arn:aws:iam::111122223333:user/alice"})),
        Just(
            json!({"AWS": ["arn:aws:iam::111122223333:role/R", "arn:aws:iam::444455556666:user/carol"]})
        ),
        Just(json!({"AWS": "arn:aws:sts::111122223333:assumed-role/R/s"})),
        Just(json!({"AWS": "444455556666"})),
        Just(json!({"AWS": "arn:aws:iam::444455556666:root"})),
        Just(json!({"Service": "voiceid.amazonaws.com"})),
    ];
    (any::<bool>(), principals)
}

fn action_element() -> impl Strategy<Value = (bool, Value)> {
    let actions = prop_oneof![
        Just(json!("kms:*")),
        Just(json!("*")),
        Just(json!("kms:Decrypt")),
        Just(json!(["kms:Encrypt", "kms:GenerateDataKey*"])),
        Just(json!("kms:ReEncrypt*")),
        Just(json!("KMS:describekey")),
        Just(json!("kms:ScheduleKeyDeletion")),
    ];
    (prop::bool::weighted(0.2), actions)
}

fn resource_element() -> impl Strategy<Value = (bool, Value)> {
    let resources = prop_oneof![
        Just(json!("*")),
        Just(json!(KEY_ARN)),
        Just(json!("arn:aws:kms:us-west-2:111122223333:key/other")),
        Just(json!("arn:aws:kms:*:111122223333:key/*")),
    ];
    (prop::bool::weighted(0.2), resources)
}

fn condition() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(json!({"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}))),
        1 => Just(Some(json!({"Null": {"kms:ViaService": "true"}}))),
        1 => Just(Some(json!({"StringNotEquals": {"kms:CallerAccount": "111122223333"}}))),
        1 => Just(Some(json!({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant"]}}))),
        1 => Just(Some(json!({"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "t1"}}))),
        1 => Just(Some(json!({"Bool": {"aws:SecureTransport": "true"}}))),
    ]
}

/// A statement; `with_principal` for key policies.
fn statement(effect: &'static str, with_principal: bool) -> impl Strategy<Value = Value> {
    (
        principal_element(),
        action_element(),
        resource_element(),
        condition(),
    )
        .prop_map(move |((not_p, p), (not_a, a), (not_r, r), c)| {
            let mut s = serde_json::Map::new();
            s.insert("Effect".into(), json!(effect));
            if with_principal {
                s.insert(if not_p { "NotPrincipal" } else { "Principal" }.into(), p);
            }
            s.insert(if not_a { "NotAction" } else { "Action" }.into(), a);
            s.insert(if not_r { "NotResource" } else { "Resource" }.into(), r);
            if let Some(c) = c {
                s.insert("Condition".into(), c);
            }
            Value::Object(s)
        })
}

/// A Deny statement biased towards matching the generated requests.
fn likely_deny() -> impl Strategy<Value = Value> {
    let principal = prop_oneof![
        3 => Just(("Principal", json!("*"))),
        1 => Just(("Principal", json!({"AWS": "*"}))),
        1 => Just(("Principal", json!({"AWS": "111122223333"}))),
        1 => Just(("NotPrincipal", json!({"AWS": "arn:aws:iam::111122223333:user/nobody"}))),
        1 => Just(("Principal", json!({"Service": "voiceid.amazonaws.com"}))),
    ];
    let action = prop_oneof![
        3 => Just(("Action", json!("kms:*"))),
        1 => Just(("Action", json!("*"))),
        1 => Just(("Action", json!(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]))),
        1 => Just(("NotAction", json!("kms:ScheduleKeyDeletion"))),
    ];
    let resource = prop_oneof![
        3 => Just(("Resource", json!("*"))),
        1 => Just(("Resource", json!(KEY_ARN))),
        1 => Just(("NotResource", json!("arn:aws:kms:*:444455556666:key/*"))),
    ];
    (principal, action, resource, condition()).prop_map(|((pk, p), (ak, a), (rk, r), c)| {
        let mut s = serde_json::Map::new();
        s.insert("Effect".into(), json!("Deny"));
        s.insert(pk.into(), p);
        s.insert(ak.into(), a);
        s.insert(rk.into(), r);
        if let Some(c) = c {
            s.insert("Condition".into(), c);
        }
        Value::Object(s)
    })
}

fn any_statement(with_principal: bool) -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => statement("Allow", with_principal),
        1 => statement("Deny", with_principal),
    ]
}

#[derive(Debug, Clone)]
struct TestGrant {
    grantee: String,
    operations: Vec<String>,
    constraints: Option<GrantConstraints>,
}

fn grant() -> impl Strategy<Value = TestGrant> {
    let grantees = prop_oneof![
        Just("arn:aws:iam::111122223333:user/alice".to_string()),
        Just("arn:aws:iam::111122223333:role/R".to_string()),
        Just("arn:aws:iam::444455556666:user/carol".to_string()),
        Just("arn:aws:iam::111122223333:root".to_string()),
        Just("voiceid.amazonaws.com".to_string()),
    ];
    let constraints = prop_oneof![
        Just(None),
        Just(Some(GrantConstraints {
            encryption_context_subset: Some(BTreeMap::from([("tenant".into(), "t1".into())])),
            encryption_context_equals: None,
        })),
    ];
    (
        grantees,
        prop::sample::subsequence(ACTIONS.to_vec(), 1..=ACTIONS.len()),
        constraints,
    )
        .prop_map(|(grantee, ops, constraints)| TestGrant {
            grantee,
            operations: ops.into_iter().map(str::to_owned).collect(),
            constraints,
        })
}

#[derive(Debug, Clone)]
struct Scenario {
    key_statements: Vec<Value>,
    identity_statements: Vec<Value>,
    grants: Vec<TestGrant>,
    caller: usize,
    action: usize,
    via_s3: bool,
    /// None: no context parameter; Some(false): empty; Some(true): tenant t1.
    tenant_context: Option<bool>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(any_statement(true), 1..5),
        prop::collection::vec(any_statement(false), 0..4),
        prop::collection::vec(grant(), 0..3),
        0..callers().len(),
        0..ACTIONS.len(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
    )
        .prop_map(
            |(
                key_statements,
                identity_statements,
                grants,
                caller,
                action,
                via_s3,
                tenant_context,
            )| {
                Scenario {
                    key_statements,
                    identity_statements,
                    grants,
                    caller,
                    action,
                    via_s3,
                    tenant_context,
                }
            },
        )
}

fn document(statements: &[Value]) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// Evaluates a scenario the way the core would build the request.
fn run(s: &Scenario) -> Evaluation {
    let key_policy = parse_key_policy(&document(&s.key_statements)).unwrap();
    let identity_policy = (!s.identity_statements.is_empty())
        .then(|| parse_identity_policy(&document(&s.identity_statements)).unwrap());
    let identity: Vec<NamedPolicy<'_>> = identity_policy
        .iter()
        .map(|policy| NamedPolicy { name: "p", policy })
        .collect();
    let ids: Vec<String> = (0..s.grants.len()).map(|i| format!("g{i}")).collect();
    let grants: Vec<GrantView<'_>> = s
        .grants
        .iter()
        .zip(&ids)
        .map(|(g, id)| GrantView {
            grant_id: id,
            grantee_principal: &g.grantee,
            operations: &g.operations,
            constraints: g.constraints.as_ref(),
        })
        .collect();
    let callers = callers();
    let principal = &callers[s.caller];
    let operation = ACTIONS[s.action];
    let action = format!("kms:{operation}");
    let encryption_context = s.tenant_context.map(|tenant| {
        if tenant {
            BTreeMap::from([("tenant".to_string(), "t1".to_string())])
        } else {
            BTreeMap::new()
        }
    });
    let mut context = ConditionContext::new();
    if !principal.account.is_empty() {
        context.insert_single("kms:CallerAccount", principal.account.clone());
    }
    if s.via_s3 {
        context.insert_single("kms:ViaService", "s3.us-west-2.amazonaws.com");
    }
    if let Some(ec) = &encryption_context {
        context.insert_encryption_context(ec);
    }
    authorize(&AuthzRequest {
        action: &action,
        resource: KEY_ARN,
        resource_account: Some(KEY_ACCOUNT),
        principal,
        key_policy: Some(&key_policy),
        identity_policies: &identity,
        grants: &grants,
        grant_operation: (operation != "ScheduleKeyDeletion").then_some(operation),
        encryption_context: encryption_context.as_ref(),
        context: &context,
    })
}

fn allow_everything() -> Value {
    json!({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        max_global_rejects: 20_000,
        ..ProptestConfig::default()
    })]

    /// A Deny statement that matches the request on its own still decides
    /// when any allows and grants are added around it.
    #[test]
    fn explicit_deny_always_wins(
        s in scenario(),
        deny in likely_deny(),
        in_identity_policy in any::<bool>(),
        position in any::<prop::sample::Index>(),
    ) {
        // Does the deny match this request by itself?
        let probe = Scenario {
            key_statements: vec![allow_everything(), deny.clone()],
            identity_statements: Vec::new(),
            grants: Vec::new(),
            ..s.clone()
        };
        prop_assume!(run(&probe).decision == Decision::ExplicitDeny);

        let mut with_deny = s.clone();
        if in_identity_policy {
            // The same statement without its principal (which matched).
            let mut identity_deny = deny.clone();
            if let Some(o) = identity_deny.as_object_mut() {
                o.remove("Principal");
                o.remove("NotPrincipal");
            }
            let at = position.index(with_deny.identity_statements.len() + 1);
            with_deny.identity_statements.insert(at, identity_deny);
        } else {
            let at = position.index(with_deny.key_statements.len() + 1);
            with_deny.key_statements.insert(at, deny);
        }
        // Every allow we can think of, too.
        with_deny.key_statements.push(allow_everything());
        let evaluation = run(&with_deny);
        prop_assert_eq!(evaluation.decision, Decision::ExplicitDeny, "{}", evaluation.explain());
    }

    /// Removing any Deny statement never turns an Allow into a denial.
    #[test]
    fn removing_a_deny_is_monotone(s in scenario()) {
        let before = run(&s);
        if before.decision == Decision::Allow {
            for (i, st) in s.key_statements.iter().enumerate() {
                if st["Effect"] == "Deny" && s.key_statements.len() > 1 {
                    let mut fewer = s.clone();
                    fewer.key_statements.remove(i);
                    let after = run(&fewer);
                    prop_assert_eq!(after.decision, Decision::Allow, "{}", after.explain());
                }
            }
            for (i, st) in s.identity_statements.iter().enumerate() {
                if st["Effect"] == "Deny" {
                    let mut fewer = s.clone();
                    fewer.identity_statements.remove(i);
                    let after = run(&fewer);
                    prop_assert_eq!(after.decision, Decision::Allow, "{}", after.explain());
                }
            }
        }
    }

    /// Adding an Allow statement (or a grant) never turns an Allow into a
    /// denial, and never turns an explicit deny into anything else.
    #[test]
    fn adding_an_allow_is_monotone(
        s in scenario(),
        key_allow in statement("Allow", true),
        identity_allow in statement("Allow", false),
        extra_grant in grant(),
    ) {
        let before = run(&s);
        let mut more = s.clone();
        more.key_statements.push(key_allow);
        more.identity_statements.push(identity_allow);
        more.grants.push(extra_grant);
        let after = run(&more);
        match before.decision {
            Decision::Allow => prop_assert_eq!(after.decision, Decision::Allow, "{}", after.explain()),
            Decision::ExplicitDeny => prop_assert_eq!(after.decision, Decision::ExplicitDeny, "{}", after.explain()),
            Decision::ImplicitDeny => prop_assert_ne!(after.decision, Decision::ExplicitDeny, "{}", after.explain()),
        }
    }

    /// A denial always names its cause first; an allow never has one.
    #[test]
    fn every_denial_has_a_cause(s in scenario()) {
        let evaluation = run(&s);
        let first_is_cause = matches!(evaluation.reasons.first(), Some(tresor_policy::Reason::Denied(_)));
        prop_assert_eq!(first_is_cause, evaluation.decision != Decision::Allow);
        prop_assert!(!evaluation.reasons.is_empty());
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = parse_policy(&text);
    }

    #[test]
    fn parsing_policy_shaped_text_never_panics(
        text in r#"\{"Version": "2012-10-17", "Statement": \[\{"Effect": "(Allow|Deny)", "Principal": [\[\]\{\}"*:A-Za-z0-9/,. ]{0,40}, "Action": [\[\]"*?:a-zA-Z, ]{0,30}, "Resource": "[*a-z:/${}, ']{0,30}", "Condition": \{"[A-Za-z:]{0,30}": \{"[a-zA-Z:]{1,20}": [\[\]"0-9a-z.:/${}, ']{0,30}\}\}\}\]\}"#,
    ) {
        let _ = parse_policy(&text);
    }
}
