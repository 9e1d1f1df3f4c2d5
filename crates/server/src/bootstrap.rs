//! First start and every start: the data directory, the root of trust, the store, declared
//! identities and the bootstrap administrator.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use tresor_crypto::{Ed25519Signer, RootKey, SecretBytes};
use tresor_kms::audit_log::AuditBackend;
use tresor_kms::identity::{
    AccessKeyRecord, PrincipalKind, PrincipalRecord, generate_access_key_id, generate_principal_id,
    generate_secret_access_key, secret_wrap_purpose,
};
use tresor_kms::store::Store;
use tresor_kms::types::{AccountId, Timestamp};
use tresor_store::audit_journal::Access;
use tresor_store::{JournaledAuditLog, PostgresStore, SqliteStore};

use crate::config::{FileConfig, StoreSpec};

const ROOT_KEY_CHECK: &str = "root_key_check";
const BOOTSTRAP_KEY: &str = "bootstrap_access_key_id";
const AUDIT_SIGNING_KEY: &str = "audit_signing_key";
const AUDIT_PUBLIC_KEY: &str = "audit_public_key";
pub const DATABASE_FILE: &str = "tresor.db";
/// AWS's AdministratorAccess managed policy document.
pub const ADMINISTRATOR_ACCESS: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
pub const AUDIT_DATABASE_FILE: &str = "audit.db";
pub const CREDENTIALS_FILE: &str = "credentials";
pub const ROOT_KEY_FILE: &str = "root.key";
/// This node's id (its audit chain) when it shares a PostgreSQL store with others.
pub const NODE_ID_FILE: &str = "node-id";

/// What a started node holds.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub root: Arc<RootKey>,
    pub audit: Arc<dyn AuditBackend>,
    pub audit_signer: Arc<Ed25519Signer>,
    /// Set on the very first start: the bootstrap administrator's credentials were just created.
    pub new_bootstrap: Option<BootstrapCredentials>,
}

pub struct BootstrapCredentials {
    pub principal_arn: String,
    pub access_key_id: String,
    pub credentials_file: PathBuf,
}

/// Creates the data directory (mode 0700) if needed.
pub fn ensure_data_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set permissions of {}: {e}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), String> {
    Ok(())
}

/// Writes `contents` to a new file with mode 0600, durably (fsync of file and directory).
/// Fails if the file exists: secrets are never silently overwritten.
fn write_new_secret_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.sync_all()
        .map_err(|e| format!("cannot sync {}: {e}", path.display()))?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        // Make the new directory entry durable too.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Loads the root key, creating it only when the store has never seen one. A store that already
/// holds data under a root key refuses to start without that exact key (a new key would make
/// every stored key unreadable).
async fn open_root_key(store: &dyn Store, path: &Path) -> Result<RootKey, String> {
    let recorded = store
        .get_meta(ROOT_KEY_CHECK)
        .await
        .map_err(|e| e.to_string())?;
    let root = match std::fs::read_to_string(path) {
        Ok(text) => {
            RootKey::from_file_contents(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if recorded.is_some() {
                return Err(format!(
                    "the root key file {} is missing, but the store holds keys wrapped under a root key. \
                     Restore the root key file (from your backup) and start again.",
                    path.display()
                ));
            }
            let root = RootKey::generate().map_err(|e| e.to_string())?;
            write_new_secret_file(path, root.to_file_contents().as_bytes())?;
            tracing::info!(path = %path.display(), "created a new root key (mode 0600); back it up: without it the data cannot be decrypted");
            root
        }
        Err(e) => return Err(format!("cannot read root key file {}: {e}", path.display())),
    };
    let stored = store
        .put_meta_if_absent(ROOT_KEY_CHECK, &root.check_value())
        .await
        .map_err(|e| e.to_string())?;
    if stored != root.check_value() {
        return Err(format!(
            "the root key in {} is not the one this store was created with; refusing to start",
            path.display()
        ));
    }
    Ok(root)
}

/// Connects to a PostgreSQL store (migrating it) and its audit log on the same pool.
async fn open_postgres(url: &str) -> Result<(Arc<dyn Store>, Arc<dyn AuditBackend>), String> {
    let store = PostgresStore::connect(url)
        .await
        .map_err(|e| format!("PostgreSQL store: {e}"))?;
    tracing::info!(target = store.target(), "using the PostgreSQL store");
    let audit: Arc<dyn AuditBackend> = Arc::new(store.audit_log());
    Ok((Arc::new(store), audit))
}

/// Opens the store (embedded SQLite, or PostgreSQL) and the root key, applies the declared
/// identities, and creates the bootstrap administrator on first start. With PostgreSQL the data
/// directory holds only the root key file (and, written by this node, its node id and the
/// bootstrap credentials if it was the first node).
pub async fn open(
    data_dir: &Path,
    root_key_file: &Path,
    file: &FileConfig,
    spec: &StoreSpec,
) -> Result<Opened, String> {
    ensure_data_dir(data_dir)?;
    let (store, audit) = match spec {
        StoreSpec::Sqlite => {
            let db = data_dir.join(DATABASE_FILE);
            let store: Arc<dyn Store> =
                Arc::new(SqliteStore::open(&db).map_err(|e| format!("{}: {e}", db.display()))?);
            (store, open_sqlite_audit_log(data_dir, Access::Exclusive)?)
        }
        StoreSpec::Postgres(url) => open_postgres(url).await?,
    };
    let root = Arc::new(open_root_key(&*store, root_key_file).await?);
    let audit_signer = Arc::new(audit_signer(&*store, &root).await?);
    apply_identities(&*store, &root, file).await?;
    let new_bootstrap =
        ensure_bootstrap_admin(&*store, &root, data_dir, &file.default_account()).await?;
    Ok(Opened {
        store,
        root,
        audit,
        audit_signer,
        new_bootstrap,
    })
}

/// Opens the store and root key without starting anything (for the admin and audit commands).
pub async fn open_existing(
    data_dir: &Path,
    root_key_file: &Path,
    spec: &StoreSpec,
) -> Result<(Arc<dyn Store>, Arc<RootKey>), String> {
    let (store, what): (Arc<dyn Store>, String) = match spec {
        StoreSpec::Sqlite => {
            let db = data_dir.join(DATABASE_FILE);
            if !db.exists() {
                return Err(format!(
                    "{} does not exist: is this a tresor data directory?",
                    db.display()
                ));
            }
            let store = SqliteStore::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            (Arc::new(store), db.display().to_string())
        }
        StoreSpec::Postgres(url) => {
            let store = PostgresStore::connect(url)
                .await
                .map_err(|e| format!("PostgreSQL store: {e}"))?;
            let what = store.target().to_owned();
            (Arc::new(store), what)
        }
    };
    if store
        .get_meta(ROOT_KEY_CHECK)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err(format!("{what} holds no root key check value"));
    }
    let root = Arc::new(open_root_key(&*store, root_key_file).await?);
    Ok((store, root))
}

/// The audit log of a data directory (SQLite) or of a PostgreSQL store.
pub async fn open_audit_log(
    data_dir: &Path,
    spec: &StoreSpec,
) -> Result<Arc<dyn AuditBackend>, String> {
    match spec {
        StoreSpec::Sqlite => open_sqlite_audit_log(data_dir, Access::Shared),
        StoreSpec::Postgres(url) => Ok(Arc::new(
            tresor_store::PostgresAuditLog::connect(url)
                .await
                .map_err(|e| format!("PostgreSQL audit log: {e}"))?,
        )),
    }
}

fn open_sqlite_audit_log(data_dir: &Path, access: Access) -> Result<Arc<dyn AuditBackend>, String> {
    let path = data_dir.join(AUDIT_DATABASE_FILE);
    Ok(Arc::new(
        JournaledAuditLog::open(&path, access).map_err(|e| format!("{}: {e}", path.display()))?,
    ))
}

/// Node ids: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "node id {id:?} must be 1-64 characters of [A-Za-z0-9._-]"
        ))
    }
}

/// The audit chain this node writes: `--node-id` if given; `main` for the embedded store (one
/// node); with PostgreSQL the node id kept in `<data>/node-id`, generated on first start. Every
/// node sharing a database needs its own (copying a data directory copies it: give the copy
/// `--node-id` or delete its `node-id` file).
pub fn audit_chain(
    data_dir: &Path,
    spec: &StoreSpec,
    explicit: Option<&str>,
) -> Result<String, String> {
    if let Some(id) = explicit {
        check_node_id(id)?;
        return Ok(id.to_owned());
    }
    if *spec == StoreSpec::Sqlite {
        return Ok("main".to_owned());
    }
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            check_node_id(id).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(id.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let random = tresor_crypto::random_array::<6>().map_err(|e| e.to_string())?;
            let id = format!("node-{}", hex::encode(random));
            write_new_secret_file(&path, format!("{id}\n").as_bytes())?;
            tracing::info!(node_id = %id, "generated this node's id (its audit chain)");
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn signing_key_purpose() -> &'static [u8] {
    b"audit-signing-key"
}

/// The audit signing key: created on first start, stored wrapped under the root key; its public
/// half is stored beside it in clear for export.
pub async fn audit_signer(store: &dyn Store, root: &RootKey) -> Result<Ed25519Signer, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(wrapped) = store
        .get_meta(AUDIT_SIGNING_KEY)
        .await
        .map_err(|e| e.to_string())?
    {
        let wrapped = b64
            .decode(wrapped.as_bytes())
            .map_err(|e| format!("stored audit signing key: {e}"))?;
        let pkcs8 = root.unwrap(signing_key_purpose(), &wrapped).map_err(|_| {
            "the stored audit signing key does not unwrap under this root key".to_owned()
        })?;
        return Ed25519Signer::from_pkcs8(pkcs8).map_err(|e| e.to_string());
    }
    let signer = Ed25519Signer::generate().map_err(|e| e.to_string())?;
    let wrapped = root
        .wrap(signing_key_purpose(), signer.pkcs8().expose())
        .map_err(|e| e.to_string())?;
    let stored = store
        .put_meta_if_absent(AUDIT_SIGNING_KEY, &b64.encode(wrapped))
        .await
        .map_err(|e| e.to_string())?;
    // Another node may have raced us: use whichever key was stored first.
    let wrapped = b64.decode(stored.as_bytes()).map_err(|e| e.to_string())?;
    let pkcs8: SecretBytes = root
        .unwrap(signing_key_purpose(), &wrapped)
        .map_err(|_| "audit signing key".to_owned())?;
    let signer = Ed25519Signer::from_pkcs8(pkcs8).map_err(|e| e.to_string())?;
    store
        .put_meta_if_absent(AUDIT_PUBLIC_KEY, &hex::encode(signer.public_key()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(signer)
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(ms)
}

/// Makes sure a principal exists; keeps the unique id of an existing one.
pub(crate) async fn ensure_principal(
    store: &dyn Store,
    arn: &str,
) -> Result<PrincipalRecord, String> {
    if let Some(p) = store.get_principal(arn).await.map_err(|e| e.to_string())? {
        return Ok(p);
    }
    let mut p = PrincipalRecord::from_arn(arn, now())?;
    if p.principal_id.is_empty() {
        let prefix = match p.kind {
            PrincipalKind::User => "AIDA",
            PrincipalKind::Role => "AROA",
            PrincipalKind::Root => "",
        };
        p.principal_id = generate_principal_id(prefix).map_err(|e| e.to_string())?;
    }
    // The account root always exists beside any principal of the account.
    if p.kind != PrincipalKind::Root {
        Box::pin(ensure_principal(store, &p.account.root_arn())).await?;
    }
    store
        .upsert_principal(&p)
        .await
        .map_err(|e| e.to_string())?;
    Ok(p)
}

/// Applies the config file's principals and access keys (idempotent; the file is the source of
/// truth for what it declares).
pub async fn apply_identities(
    store: &dyn Store,
    root: &RootKey,
    file: &FileConfig,
) -> Result<(), String> {
    for p in &file.principals {
        let mut principal = ensure_principal(store, &p.arn).await?;
        if let Some(policies) = &p.policies {
            let wanted: Vec<tresor_kms::identity::IdentityPolicy> = policies
                .iter()
                .map(|x| tresor_kms::identity::IdentityPolicy {
                    name: x.name.clone(),
                    document: x.document.clone(),
                })
                .collect();
            if principal.policies != wanted {
                principal.policies = wanted;
                store
                    .upsert_principal(&principal)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for k in &file.access_keys {
        let principal = ensure_principal(store, &k.principal).await?;
        let existing = store
            .get_access_key(&k.id)
            .await
            .map_err(|e| e.to_string())?;
        let same = match &existing {
            Some(e)
                if e.principal_arn == principal.arn
                    && e.session_name == k.session_name
                    && e.enabled =>
            {
                root.unwrap(&secret_wrap_purpose(&k.id), &e.wrapped_secret)
                    .map(|s| tresor_crypto::ct_eq(s.expose(), k.secret.as_bytes()))
                    .unwrap_or(false)
            }
            _ => false,
        };
        if same {
            continue;
        }
        let wrapped = root
            .wrap(&secret_wrap_purpose(&k.id), k.secret.as_bytes())
            .map_err(|e| e.to_string())?;
        let record = AccessKeyRecord {
            access_key_id: k.id.clone(),
            principal_arn: principal.arn.clone(),
            wrapped_secret: wrapped,
            session_name: k.session_name.clone(),
            enabled: true,
            created: existing.map(|e| e.created).unwrap_or_else(now),
        };
        store
            .upsert_access_key(&record)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn ensure_bootstrap_admin(
    store: &dyn Store,
    root: &RootKey,
    data_dir: &Path,
    account: &AccountId,
) -> Result<Option<BootstrapCredentials>, String> {
    if store
        .get_meta(BOOTSTRAP_KEY)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(None);
    }
    let mut principal =
        ensure_principal(store, &format!("arn:aws:iam::{account}:user/admin")).await?;
    // The bootstrap administrator may do everything in its account (AWS's AdministratorAccess).
    if principal.policies.is_empty() {
        principal
            .policies
            .push(tresor_kms::identity::IdentityPolicy {
                name: "AdministratorAccess".to_owned(),
                document: ADMINISTRATOR_ACCESS.to_owned(),
            });
        store
            .upsert_principal(&principal)
            .await
            .map_err(|e| e.to_string())?;
    }
    let access_key_id = generate_access_key_id().map_err(|e| e.to_string())?;
    let secret = generate_secret_access_key().map_err(|e| e.to_string())?;
    let credentials_file = data_dir.join(CREDENTIALS_FILE);
    let contents = zeroize::Zeroizing::new(format!(
        "# Written by tresor on first start: the bootstrap administrator {arn}.\n\
         # Keep this file secret. The secret is stored only wrapped in the database.\n\
         [tresor]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n",
        arn = principal.arn,
        secret = secret.as_str(),
    ));
    let wrapped = root
        .wrap(&secret_wrap_purpose(&access_key_id), secret.as_bytes())
        .map_err(|e| e.to_string())?;
    // Order matters for a crash in between: the file first (so the secret is never lost), then the
    // access key, then the marker. A crash leaves at worst an unused file that the next start
    // replaces: remove a stale one from an interrupted first start.
    if credentials_file.exists() {
        std::fs::remove_file(&credentials_file)
            .map_err(|e| format!("cannot replace stale {}: {e}", credentials_file.display()))?;
    }
    write_new_secret_file(&credentials_file, contents.as_bytes())?;
    store
        .upsert_access_key(&AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            principal_arn: principal.arn.clone(),
            wrapped_secret: wrapped,
            session_name: None,
            enabled: true,
            created: now(),
        })
        .await
        .map_err(|e| e.to_string())?;
    store
        .put_meta_if_absent(BOOTSTRAP_KEY, &access_key_id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(BootstrapCredentials {
        principal_arn: principal.arn,
        access_key_id,
        credentials_file,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_chains_are_main_the_kept_node_id_or_the_given_one() {
        let dir = tempfile::tempdir().unwrap();
        let pg = StoreSpec::Postgres("postgres://u@h/db".into());
        assert_eq!(
            audit_chain(dir.path(), &StoreSpec::Sqlite, None).unwrap(),
            "main"
        );
        assert!(!dir.path().join(NODE_ID_FILE).exists());
        let generated = audit_chain(dir.path(), &pg, None).unwrap();
        assert!(generated.starts_with("node-") && generated.len() == 17);
        assert_eq!(
            audit_chain(dir.path(), &pg, None).unwrap(),
            generated,
            "kept across starts"
        );
        assert_eq!(
            audit_chain(dir.path(), &pg, Some("eu-1.a")).unwrap(),
            "eu-1.a"
        );
        for bad in ["", "a b", "x/y", &"n".repeat(65)] {
            assert!(audit_chain(dir.path(), &pg, Some(bad)).is_err(), "{bad:?}");
        }
    }
}
