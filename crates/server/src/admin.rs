//! `tresor admin …`: manage identities in a data directory or a PostgreSQL store (the servers may
//! be running; they pick changes up within their cache bound of one second, and at once when the
//! store announces changes).

use std::path::Path;

use serde_json::json;
use tresor_kms::identity::{
    AccessKeyRecord, IdentityPolicy, PrincipalKind, generate_access_key_id,
    generate_secret_access_key, secret_wrap_purpose,
};
use tresor_kms::types::Timestamp;

use crate::bootstrap;
use crate::config::StoreSpec;

/// IAM policy names: 1–128 of `[\w+=,.@-]`.
pub fn check_policy_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "policy name {name:?} must be 1-128 characters of [A-Za-z0-9_+=,.@-]"
        ))
    }
}

fn now() -> Timestamp {
    Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    )
}

/// Attaches (or replaces) a named identity policy on a user or role.
pub async fn put_principal_policy(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
    arn: &str,
    name: &str,
    document: &str,
) -> Result<(), String> {
    check_policy_name(name)?;
    tresor_policy::parse_identity_policy(document)
        .map_err(|e| format!("the policy document is not valid: {e}"))?;
    let (store, _root) = bootstrap::open_existing(data_dir, root_key_file, spec).await?;
    let mut p = bootstrap::ensure_principal(&*store, arn).await?;
    if p.kind == PrincipalKind::Root {
        return Err(
            "the account root has every permission implicitly; attach policies to users or roles"
                .to_owned(),
        );
    }
    p.policies.retain(|x| x.name != name);
    p.policies.push(IdentityPolicy {
        name: name.to_owned(),
        document: document.to_owned(),
    });
    store.upsert_principal(&p).await.map_err(|e| e.to_string())
}

pub async fn delete_principal_policy(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
    arn: &str,
    name: &str,
) -> Result<(), String> {
    let (store, _root) = bootstrap::open_existing(data_dir, root_key_file, spec).await?;
    let mut p = store
        .get_principal(arn)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{arn} does not exist"))?;
    let before = p.policies.len();
    p.policies.retain(|x| x.name != name);
    if p.policies.len() == before {
        return Err(format!("{arn} has no policy named {name:?}"));
    }
    store.upsert_principal(&p).await.map_err(|e| e.to_string())
}

/// Principals with their policy names and access key ids (never secrets), as JSON.
pub async fn list_principals(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
) -> Result<serde_json::Value, String> {
    let (store, _root) = bootstrap::open_existing(data_dir, root_key_file, spec).await?;
    let keys = store.list_access_keys().await.map_err(|e| e.to_string())?;
    let principals = store.list_principals().await.map_err(|e| e.to_string())?;
    Ok(json!(principals
        .iter()
        .map(|p| json!({
            "arn": p.arn,
            "principalId": p.principal_id,
            "policies": p.policies.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
            "accessKeys": keys.iter().filter(|k| k.principal_arn == p.arn).map(|k| json!({"accessKeyId": k.access_key_id, "enabled": k.enabled})).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>()))
}

/// Creates a new access key pair for a principal (created if needed); the secret is returned once.
pub async fn create_access_key(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
    arn: &str,
    session_name: Option<String>,
) -> Result<(String, zeroize::Zeroizing<String>), String> {
    let (store, root) = bootstrap::open_existing(data_dir, root_key_file, spec).await?;
    let p = bootstrap::ensure_principal(&*store, arn).await?;
    let id = generate_access_key_id().map_err(|e| e.to_string())?;
    let secret = generate_secret_access_key().map_err(|e| e.to_string())?;
    let wrapped = root
        .wrap(&secret_wrap_purpose(&id), secret.as_bytes())
        .map_err(|e| e.to_string())?;
    store
        .upsert_access_key(&AccessKeyRecord {
            access_key_id: id.clone(),
            principal_arn: p.arn,
            wrapped_secret: wrapped,
            session_name,
            enabled: true,
            created: now(),
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, secret))
}
