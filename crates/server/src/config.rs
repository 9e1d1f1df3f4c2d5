//! Server configuration: command-line flags (with environment variables) and an optional TOML
//! file that declares identities so an environment is reproducible.
//!
//! ```toml
//! # tresor.toml
//! default_account = "123456789012"     # the bootstrap administrator's account
//! regions = ["us-east-1", "eu-west-1"] # optional: restrict the regions served
//!
//! [[principals]]                        # users and roles (account roots exist implicitly)
//! arn = "arn:aws:iam::123456789012:role/VoiceIdRole"
//! [[principals.policies]]               # identity-based (IAM) policies
//! name = "UseKeys"
//! document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}'
//!
//! [[access_keys]]                       # key pairs; the secret is stored wrapped
//! id = "FOOBARKEY"
//! secret = "FOOBARSECRET"
//! principal = "arn:aws:iam::123456789012:root"
//! ```
//!
//! `store = "postgres://tresor@db.internal/tresor"` in the file (or `--store`) puts keys and the
//! audit log in PostgreSQL, shared by several nodes; the default is SQLite in the data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tresor_kms::types::{AccountId, Region};

/// Everything `tresor serve` needs, resolved from flags, environment and file.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub root_key_file: PathBuf,
    pub file: FileConfig,
    pub limits: Limits,
    /// Shift the server clock (tests of clock-skew handling and time-driven behaviour).
    pub clock_offset_seconds: i64,
    /// Test mode: `PUT /_tresor/test/clock-offset` moves the core's clock (never in production).
    pub test_clock: bool,
    /// Test mode: the core clock starts this far ahead of the wall clock.
    pub test_clock_offset_seconds: i64,
    pub audit: AuditConfig,
    /// Where keys and the audit log live (`--store`, else the file's `store`, else SQLite).
    pub store: StoreSpec,
    /// This node's audit chain (`--node-id`); by default `main` on SQLite and, on PostgreSQL, a
    /// node id generated at first start and kept in the data directory.
    pub node_id: Option<String>,
    /// Testing only: ignore the store's invalidation feed (caches expire by TTL alone).
    pub test_ignore_invalidations: bool,
    /// Request rate limits per principal and per key (`--throttle-*`; off by default).
    pub throttle: crate::throttle::ThrottleConfig,
}

/// Where the store lives. The PostgreSQL URL may hold a password: it is never printed (`Debug`
/// shows only the scheme).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum StoreSpec {
    /// `tresor.db` and `audit.db` in the data directory (one node).
    #[default]
    Sqlite,
    /// `postgres://user[:password]@host[:port]/database[?options]` (any number of nodes).
    Postgres(String),
}

impl StoreSpec {
    /// `sqlite` (or empty) or a `postgres://` / `postgresql://` URL.
    pub fn parse(s: &str) -> Result<StoreSpec, String> {
        let s = s.trim();
        if s.is_empty() || s == "sqlite" {
            Ok(StoreSpec::Sqlite)
        } else if tresor_store::postgres::is_postgres_url(s) {
            tresor_store::postgres::parse_url(s).map_err(|e| e.to_string())?;
            Ok(StoreSpec::Postgres(s.to_owned()))
        } else {
            Err(
                "store must be \"sqlite\" or a postgres://user[:password]@host[:port]/database URL"
                    .to_owned(),
            )
        }
    }
}

impl TryFrom<String> for StoreSpec {
    type Error = String;
    fn try_from(s: String) -> Result<StoreSpec, String> {
        StoreSpec::parse(&s)
    }
}

impl std::fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Sqlite => f.write_str("Sqlite"),
            StoreSpec::Postgres(_) => f.write_str("Postgres(postgres://[redacted])"),
        }
    }
}

/// Audit log retention and export.
#[derive(Clone, Debug, Default)]
pub struct AuditConfig {
    /// Prune records older than this many days (signed anchors keep the rest verifiable); None keeps all.
    pub retention_days: Option<u32>,
    /// Export new records in CloudTrail's log file layout to this directory, periodically.
    pub export_dir: Option<std::path::PathBuf>,
    pub export_interval: Duration,
}

/// Request and connection bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // The largest legitimate KMS request is a 32 KB key policy (model allows 131072 chars);
            // 300 KiB leaves room for its JSON escaping.
            max_body_bytes: 300 * 1024,
            max_header_bytes: 64 * 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// The optional TOML file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub default_account: Option<String>,
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    #[serde(default)]
    pub principals: Vec<PrincipalConfig>,
    #[serde(default)]
    pub access_keys: Vec<AccessKeyConfig>,
    /// `store = "postgres://…"`: see [`StoreSpec`]; `--store` overrides it.
    #[serde(default)]
    pub store: Option<StoreSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub arn: String,
    /// Identity-based policies. When given (even empty), they replace the principal's stored
    /// policies at every start; when absent, policies managed with `tresor admin` are kept.
    #[serde(default)]
    pub policies: Option<Vec<PolicyConfig>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    /// The IAM policy document (JSON).
    pub document: String,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyConfig {
    pub id: String,
    pub secret: String,
    pub principal: String,
    /// For role principals: the session name (`assumed-role/<role>/<session>`); default `tresor`.
    #[serde(default)]
    pub session_name: Option<String>,
}

impl std::fmt::Debug for AccessKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyConfig")
            .field("id", &self.id)
            .field("secret", &"[REDACTED]")
            .field("principal", &self.principal)
            .finish()
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let cfg: FileConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(a) = &self.default_account {
            AccountId::parse(a)
                .ok_or_else(|| format!("default_account {a:?} must be 12 digits"))?;
        }
        for r in self.regions.iter().flatten() {
            Region::parse(r).ok_or_else(|| format!("region {r:?} is not a valid region name"))?;
        }
        for p in &self.principals {
            for policy in p.policies.iter().flatten() {
                crate::admin::check_policy_name(&policy.name)?;
                tresor_policy::parse_identity_policy(&policy.document)
                    .map_err(|e| format!("policy {:?} of {}: {e}", policy.name, p.arn))?;
            }
        }
        for k in &self.access_keys {
            if k.id.is_empty()
                || k.id.len() > 128
                || !k.id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(format!(
                    "access key id {:?} must be 1-128 ASCII letters and digits",
                    k.id
                ));
            }
            if k.secret.is_empty() || k.secret.len() > 128 {
                return Err(format!(
                    "secret of access key {} must be 1-128 characters",
                    k.id
                ));
            }
        }
        Ok(())
    }

    pub fn default_account(&self) -> AccountId {
        self.default_account
            .as_deref()
            .and_then(AccountId::parse)
            .unwrap_or_else(AccountId::zero)
    }

    /// Whether the server serves `region`.
    pub fn region_allowed(&self, region: &str) -> bool {
        match &self.regions {
            None => true,
            Some(list) => list.iter().any(|r| r == region),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_example_and_rejects_unknown_fields() {
        let cfg: FileConfig = toml::from_str(
            r#"
            default_account = "123456789012"
            regions = ["us-east-1"]
            [[principals]]
            arn = "arn:aws:iam::123456789012:role/R"
            [[access_keys]]
            id = "FOOBARKEY"
            secret = "FOOBARSECRET"
            principal = "arn:aws:iam::123456789012:root"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.default_account().as_str(), "123456789012");
        assert!(cfg.region_allowed("us-east-1") && !cfg.region_allowed("eu-west-1"));
        assert!(
            !format!("{cfg:?}").contains("FOOBARSECRET"),
            "secrets redact in Debug"
        );
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        let bad: FileConfig = toml::from_str("default_account = \"12\"").unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn store_urls_parse_and_never_print_their_password() {
        let cfg: FileConfig =
            toml::from_str(r#"store = "postgres://tresor:s3cret@db.internal:5432/tresor""#)
                .unwrap();
        let spec = cfg.store.clone().unwrap();
        assert!(matches!(spec, StoreSpec::Postgres(_)));
        assert!(!format!("{cfg:?}").contains("s3cret"), "{cfg:?}");
        assert_eq!(StoreSpec::parse("sqlite").unwrap(), StoreSpec::Sqlite);
        assert!(StoreSpec::parse("mysql://x").is_err());
        assert!(toml::from_str::<FileConfig>(r#"store = "redis://x""#).is_err());
    }
}
