//! The authorization matrix: every row of `fixtures/authz-matrix.json`
//! (caller × key policy × identity policies × grants × encryption context ×
//! operation → decision, denial cause and deciding reasons), plus the
//! decision traces of the Voice ID seed scenarios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::Value;
use tresor_policy::{
    AuthzRequest, ConditionContext, ContextValue, Decision, DenialCause, Evaluation,
    GrantConstraints, GrantView, NamedPolicy, Policy, PolicySource, Principal, Reason,
    StatementRef, authorize, parse_identity_policy, parse_key_policy,
};

const MATRIX: &str = include_str!("fixtures/authz-matrix.json");

/// Operations that may appear in a grant (reference §6.1).
const GRANT_OPERATIONS: &[&str] = &[
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

struct Grant {
    grantee: String,
    operations: Vec<String>,
    constraints: Option<GrantConstraints>,
}

struct Fixture {
    key_arn: String,
    key_account: String,
    principals: BTreeMap<String, Principal>,
    key_policies: BTreeMap<String, Policy>,
    identity_policies: BTreeMap<String, Policy>,
    grants: BTreeMap<String, Grant>,
    contexts: BTreeMap<String, BTreeMap<String, String>>,
    cases: Vec<Value>,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect()
}

fn principal(spec: &Value) -> Principal {
    let (kind, args) = spec.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "root" => Principal::root(args.as_str().unwrap()),
        "user" => {
            let a = strs(args);
            Principal::iam_user(a[0], a[1])
        }
        "role" => {
            let a = strs(args);
            Principal::assumed_role(a[0], a[1], a[2])
        }
        "service" => Principal::service(args.as_str().unwrap()),
        other => panic!("unknown principal kind {other}"),
    }
}

fn load() -> Fixture {
    let root: Value = serde_json::from_str(MATRIX).unwrap();
    let map = |name: &str| root[name].as_object().unwrap().clone();
    Fixture {
        key_arn: root["key_arn"].as_str().unwrap().to_owned(),
        key_account: root["key_account"].as_str().unwrap().to_owned(),
        principals: map("principals")
            .iter()
            .map(|(k, v)| (k.clone(), principal(v)))
            .collect(),
        key_policies: map("key_policies")
            .iter()
            .map(|(k, v)| {
                let policy = parse_key_policy(&v.to_string())
                    .unwrap_or_else(|e| panic!("key policy {k}: {e}"));
                (k.clone(), policy)
            })
            .collect(),
        identity_policies: map("identity_policies")
            .iter()
            .map(|(k, v)| {
                let policy = parse_identity_policy(&v.to_string())
                    .unwrap_or_else(|e| panic!("identity policy {k}: {e}"));
                (k.clone(), policy)
            })
            .collect(),
        grants: map("grants")
            .iter()
            .map(|(k, v)| {
                let subset = v.get("subset").map(string_map);
                let equals = v.get("equals").map(string_map);
                let constraints =
                    (subset.is_some() || equals.is_some()).then_some(GrantConstraints {
                        encryption_context_subset: subset,
                        encryption_context_equals: equals,
                    });
                let grant = Grant {
                    grantee: v["grantee"].as_str().unwrap().to_owned(),
                    operations: strs(&v["operations"])
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    constraints,
                };
                (k.clone(), grant)
            })
            .collect(),
        contexts: map("encryption_contexts")
            .iter()
            .map(|(k, v)| (k.clone(), string_map(v)))
            .collect(),
        cases: root["cases"].as_array().unwrap().clone(),
    }
}

/// The trace tag of a reason, as the matrix's `by` column writes it.
fn tag(reason: &Reason) -> String {
    let at = |s: &StatementRef| match &s.policy {
        PolicySource::KeyPolicy => format!("kp:{}", s.index),
        PolicySource::Identity(name) => format!("id:{name}:{}", s.index),
    };
    match reason {
        Reason::Denied(cause) => format!("denied:{cause}"),
        Reason::ExplicitDeny(s) => format!("deny:{}", at(s)),
        Reason::KeyPolicyAllowsCaller(s) => at(s),
        Reason::KeyPolicyAllowsAccount(s) => format!("kp-account:{}", s.index),
        Reason::IdentityPolicyAllows(s) => at(s),
        Reason::RootIdentity { .. } => "root".into(),
        Reason::Grant { grant_id } => format!("grant:{grant_id}"),
        Reason::ConditionNotMet { statement, .. } => format!("unmet:{}", at(statement)),
        Reason::GrantConstraintsNotMet { grant_id } => format!("grant-unmet:{grant_id}"),
    }
}

fn cause(name: &str) -> DenialCause {
    match name {
        "identity" => DenialCause::NoIdentityPolicyAllows,
        "resource" => DenialCause::NoResourcePolicyAllows,
        "explicit-resource" => DenialCause::ExplicitDenyInResourcePolicy,
        "explicit-identity" => DenialCause::ExplicitDenyInIdentityPolicy,
        other => panic!("unknown cause {other}"),
    }
}

/// Evaluates one row, building the request the way the core would.
fn evaluate(fx: &Fixture, case: &Value) -> Evaluation {
    let who = case["who"].as_str().unwrap();
    let principal = fx
        .principals
        .get(who)
        .unwrap_or_else(|| panic!("principal {who}"));
    let key_policy = case["kp"].as_str().map(|name| {
        fx.key_policies
            .get(name)
            .unwrap_or_else(|| panic!("key policy {name}"))
    });
    let identity: Vec<NamedPolicy<'_>> = case
        .get("iam")
        .map(strs)
        .unwrap_or_default()
        .into_iter()
        .map(|name| NamedPolicy {
            name,
            policy: fx
                .identity_policies
                .get(name)
                .unwrap_or_else(|| panic!("identity policy {name}")),
        })
        .collect();
    let grants: Vec<GrantView<'_>> = case
        .get("grants")
        .map(strs)
        .unwrap_or_default()
        .into_iter()
        .map(|id| {
            let g = fx.grants.get(id).unwrap_or_else(|| panic!("grant {id}"));
            GrantView {
                grant_id: id,
                grantee_principal: &g.grantee,
                operations: &g.operations,
                constraints: g.constraints.as_ref(),
            }
        })
        .collect();
    let action = case["act"].as_str().unwrap();
    let grant_operation = action
        .strip_prefix("kms:")
        .filter(|op| GRANT_OPERATIONS.contains(op));
    let encryption_context = case["ec"].as_str().map(|name| {
        fx.contexts
            .get(name)
            .unwrap_or_else(|| panic!("context {name}"))
    });
    let resource = case["res"].as_str().unwrap_or(if key_policy.is_some() {
        &fx.key_arn
    } else {
        "*"
    });

    let mut context = ConditionContext::new();
    if key_policy.is_some() && !principal.account.is_empty() {
        context.insert_single("kms:CallerAccount", principal.account.clone());
    }
    if let Some(ec) = encryption_context {
        context.insert_encryption_context(ec);
    }
    if let Some(via) = case["via"].as_str() {
        context.insert_single("kms:ViaService", via);
    }
    if let Some(extra) = case.get("ctx") {
        for (k, v) in extra.as_object().unwrap() {
            let value = match v {
                Value::Array(_) => ContextValue::multi(strs(v)),
                other => ContextValue::single(other.as_str().unwrap()),
            };
            context.insert(k, value);
        }
    }

    authorize(&AuthzRequest {
        action,
        resource,
        resource_account: key_policy.map(|_| fx.key_account.as_str()),
        principal,
        key_policy,
        identity_policies: &identity,
        grants: &grants,
        grant_operation,
        encryption_context,
        context: &context,
    })
}

#[test]
fn authorization_matrix() {
    let fx = load();
    assert!(fx.cases.len() >= 150, "{} cases", fx.cases.len());
    let mut failures = Vec::new();
    let mut ids = std::collections::BTreeSet::new();
    for case in &fx.cases {
        let id = case["id"].as_str().unwrap();
        assert!(ids.insert(id), "duplicate case id {id}");
        let evaluation = evaluate(&fx, case);
        let expected = match case["expect"].as_str().unwrap() {
            "Allow" => Decision::Allow,
            "ImplicitDeny" => Decision::ImplicitDeny,
            "ExplicitDeny" => Decision::ExplicitDeny,
            other => panic!("{id}: unknown decision {other}"),
        };
        let mut problems = Vec::new();
        if evaluation.decision != expected {
            problems.push(format!(
                "decision {:?}, want {expected:?}",
                evaluation.decision
            ));
        }
        let want_cause = case["cause"].as_str().map(cause);
        if expected != Decision::Allow && want_cause.is_none() {
            problems.push("a denial row must name its cause".into());
        }
        if evaluation.denial_cause() != want_cause {
            problems.push(format!(
                "cause {:?}, want {want_cause:?}",
                evaluation.denial_cause()
            ));
        }
        let tags: Vec<String> = evaluation.reasons.iter().map(tag).collect();
        for want in case.get("by").map(strs).unwrap_or_default() {
            if !tags.iter().any(|t| t == want) {
                problems.push(format!("missing reason {want}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{id}: {}\n    {}",
                problems.join("; "),
                evaluation.explain().replace('\n', "\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        fx.cases.len(),
        failures.join("\n")
    );
}

fn case<'f>(fx: &'f Fixture, id: &str) -> &'f Value {
    fx.cases
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

#[test]
fn voice_id_direct_call_trace() {
    let fx = load();
    let evaluation = evaluate(&fx, case(&fx, "seed a: direct call denied"));
    assert_eq!(
        evaluation.explain(),
        "ImplicitDeny\n  \
         - denied: no resource-based policy allows\n  \
         - key policy Statement[0] (Sid \"Allow key access to Amazon Connect VoiceID.\") does not apply: condition StringEquals on kms:ViaService is not met"
    );
    assert_eq!(
        evaluation.denial_reason_text("kms:Decrypt").as_deref(),
        Some("because no resource-based policy allows the kms:Decrypt action")
    );
}

#[test]
fn voice_id_grant_traces() {
    let fx = load();
    let allowed = evaluate(&fx, case(&fx, "seed b: grant with its context"));
    assert_eq!(allowed.explain(), "Allow\n  - grant g-voiceid allows");
    assert_eq!(allowed.denial_reason_text("kms:Decrypt"), None);

    let denied = evaluate(&fx, case(&fx, "seed b: grant, other domain"));
    assert_eq!(
        denied.reasons,
        [
            Reason::Denied(DenialCause::NoResourcePolicyAllows),
            Reason::GrantConstraintsNotMet {
                grant_id: "g-voiceid".into()
            },
        ]
    );
}

#[test]
fn explicit_deny_traces_and_messages() {
    let fx = load();
    let both = evaluate(&fx, case(&fx, "deny: both deny, key policy named"));
    assert_eq!(
        both.explain(),
        "ExplicitDeny\n  \
         - denied: explicit deny in a resource-based policy\n  \
         - key policy Statement[1] (Sid \"Never delete\") denies\n  \
         - identity policy \"id-deny-schedule\" Statement[0] denies"
    );
    assert_eq!(
        both.denial_reason_text("kms:ScheduleKeyDeletion")
            .as_deref(),
        Some("with an explicit deny in a resource-based policy")
    );
    let identity = evaluate(&fx, case(&fx, "default: IAM deny beats IAM allow"));
    assert_eq!(
        identity.denial_reason_text("kms:Decrypt").as_deref(),
        Some("with an explicit deny in an identity-based policy")
    );
    assert!(
        identity.explain().contains(
            "identity policy \"id-deny-decrypt\" Statement[0] (Sid \"NoDecrypt\") denies"
        )
    );
}

#[test]
fn delegation_and_cross_account_traces() {
    let fx = load();
    let delegated = evaluate(&fx, case(&fx, "default: user with kms:*"));
    assert_eq!(
        delegated.explain(),
        "Allow\n  \
         - key policy Statement[0] (Sid \"Enable IAM User Permissions\") allows the caller's account (delegates to identity-based policies)\n  \
         - identity policy \"id-kms-all\" Statement[0] allows"
    );
    let missing = evaluate(&fx, case(&fx, "cross: named directly, no IAM"));
    assert_eq!(
        missing.denial_reason_text("kms:ReEncryptFrom").as_deref(),
        Some("because no identity-based policy allows the kms:ReEncryptFrom action")
    );
    assert!(
        missing
            .explain()
            .contains("Statement[2] (Sid \"Allow carol to re-encrypt\") allows the caller")
    );
    let root = evaluate(&fx, case(&fx, "cross: B root"));
    assert_eq!(
        root.reasons.last(),
        Some(&Reason::RootIdentity {
            account: "444455556666".into()
        })
    );
}
