//! `tresor explain`: why a request was (or would be) allowed or denied — from an audit record or
//! from a described request — evaluated against the current key policies, identity policies and
//! grants, without performing or auditing anything.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tresor_kms::audit::MemoryAuditSink;
use tresor_kms::audit_log::AuditQuery;
use tresor_kms::clock::SystemClock;
use tresor_kms::identity::{Caller, PrincipalRecord};
use tresor_kms::ops::EncryptionContext;
use tresor_kms::types::{Region, Timestamp};
use tresor_kms::{CallContext, Kms, KmsConfig};

use crate::bootstrap;
use crate::config::StoreSpec;

/// A request to explain.
#[derive(Debug, Clone, Default)]
pub struct Question {
    /// The caller: `arn:aws:iam::<acct>:user/<n>`, `…:role/<n>` (session `tresor`),
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, or `…:root`.
    pub principal: Option<String>,
    /// A service principal acting as itself (`voiceid.amazonaws.com`).
    pub service_principal: Option<String>,
    pub action: String,
    pub key_arn: String,
    pub encryption_context: Option<EncryptionContext>,
    pub via_service: Option<String>,
}

fn region_of_arn(arn: &str) -> Option<Region> {
    arn.split(':').nth(3).and_then(Region::parse)
}

/// Questions reconstructed from an audit record (ReEncrypt yields two: source and destination).
pub fn questions_from_record(record: &Value) -> Result<Vec<Question>, String> {
    let ui = &record["userIdentity"];
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let (principal, service_principal, via_service) = match ui["type"].as_str() {
        Some("AWSService") => (None, s(&ui["invokedBy"]), None),
        Some("IAMUser" | "Root" | "AssumedRole") => (s(&ui["arn"]), None, s(&ui["invokedBy"])),
        other => {
            return Err(format!(
                "records of identity type {other:?} cannot be explained"
            ));
        }
    };
    let name = record["eventName"]
        .as_str()
        .ok_or("the record has no eventName")?;
    let resources: Vec<String> = record["resources"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| s(&r["ARN"])).collect())
        .unwrap_or_default();
    let params = &record["requestParameters"];
    let ec = |v: &Value| -> Option<EncryptionContext> {
        v.as_object().map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
    };
    let base = Question {
        principal,
        service_principal,
        via_service,
        ..Question::default()
    };
    let first = resources
        .first()
        .cloned()
        .ok_or("the record names no key (nothing to explain)")?;
    if name == "ReEncrypt" {
        let mut out = vec![Question {
            action: "ReEncryptFrom".into(),
            key_arn: first.clone(),
            encryption_context: ec(&params["sourceEncryptionContext"])
                .or_else(|| Some(EncryptionContext::new())),
            ..base.clone()
        }];
        out.push(Question {
            action: "ReEncryptTo".into(),
            key_arn: resources.get(1).cloned().unwrap_or(first),
            encryption_context: ec(&params["destinationEncryptionContext"])
                .or_else(|| Some(EncryptionContext::new())),
            ..base
        });
        return Ok(out);
    }
    Ok(vec![Question {
        action: name.to_owned(),
        key_arn: first,
        encryption_context: ec(&params["encryptionContext"]),
        ..base
    }])
}

async fn caller_for(store: &dyn tresor_kms::store::Store, q: &Question) -> Result<Caller, String> {
    let Some(arn) = &q.principal else {
        // A service principal acts under grants; the caller record is only a placeholder.
        let account = q.key_arn.split(':').nth(4).unwrap_or("000000000000");
        let root =
            PrincipalRecord::from_arn(&format!("arn:aws:iam::{account}:root"), Timestamp(0))?;
        return Ok(Caller::from_records(root, None, None));
    };
    // arn:aws:sts::<acct>:assumed-role/<role>/<session> → the role, with that session.
    if let Some(rest) = arn.strip_prefix("arn:aws:sts::") {
        let (account, resource) = rest.split_once(':').ok_or("malformed assumed-role ARN")?;
        let mut parts = resource
            .strip_prefix("assumed-role/")
            .ok_or("not an assumed-role ARN")?
            .split('/');
        let (role, session) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("session"),
        );
        let role_arn = format!("arn:aws:iam::{account}:role/{role}");
        let p = store
            .get_principal(&role_arn)
            .await
            .map_err(|e| e.to_string())?
            .ok_or(format!("{role_arn} does not exist"))?;
        return Ok(Caller::from_records(p, None, Some(session.to_owned())));
    }
    let p = match store.get_principal(arn).await.map_err(|e| e.to_string())? {
        Some(p) => p,
        None if arn.ends_with(":root") => PrincipalRecord::from_arn(arn, Timestamp(0))?,
        None => return Err(format!("{arn} does not exist")),
    };
    Ok(Caller::from_records(p, None, None))
}

/// Evaluates each question against the data directory's current state.
pub async fn explain(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
    questions: Vec<Question>,
) -> Result<Value, String> {
    let (store, root) = bootstrap::open_existing(data_dir, root_key_file, spec).await?;
    let kms = Kms::new(
        store.clone(),
        root,
        Arc::new(SystemClock::default()),
        Arc::new(MemoryAuditSink::new(1)),
        KmsConfig::default(),
    );
    let mut out = Vec::new();
    for q in questions {
        let region =
            region_of_arn(&q.key_arn).ok_or_else(|| format!("{} is not a key ARN", q.key_arn))?;
        let mut ctx =
            CallContext::direct(caller_for(&*store, &q).await?, region, "explain".to_owned());
        ctx.via_service.clone_from(&q.via_service);
        ctx.service_principal.clone_from(&q.service_principal);
        let e = kms
            .explain(&ctx, &q.key_arn, &q.action, q.encryption_context.as_ref())
            .await
            .map_err(|e| format!("{}: {e}", e.aws_code()))?;
        out.push(json!({
            "request": {
                "principal": q.principal.or(q.service_principal),
                "action": format!("kms:{}", q.action.trim_start_matches("kms:")),
                "resource": q.key_arn,
                "encryptionContext": q.encryption_context,
                "viaService": q.via_service,
            },
            "decision": e.decision,
            "message": e.message,
            "trace": e.trace,
        }));
    }
    Ok(
        json!({ "evaluatedAgainst": "the current key policies, identity policies and grants", "results": out }),
    )
}

/// Finds an audit record by its eventID.
pub async fn record_by_event_id(
    data_dir: &Path,
    spec: &StoreSpec,
    event_id: &str,
) -> Result<Value, String> {
    let backend = bootstrap::open_audit_log(data_dir, spec).await?;
    let rows = backend
        .lookup(&AuditQuery {
            event_id: Some(event_id.to_owned()),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let r = rows
        .first()
        .ok_or_else(|| format!("no audit record has eventID {event_id}"))?;
    serde_json::from_str(&r.json).map_err(|e| e.to_string())
}
