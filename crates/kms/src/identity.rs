//! Accounts, principals and access keys; the credential lookup SigV4 authentication uses.
//!
//! Secret access keys are stored wrapped under the root key (purpose `secret-access-key\0<akid>`),
//! unwrapped only into [`tresor_crypto::SecretBytes`] held by the in-memory credential cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tresor_crypto::{RootKey, SecretBytes};

use crate::error::KmsError;
use crate::flight::Flights;
use crate::store::Store;
use crate::types::{AccountId, PARTITION, Timestamp};

/// What kind of IAM principal a record is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// The account itself (`arn:aws:iam::<acct>:root`).
    Root,
    /// An IAM user (`arn:aws:iam::<acct>:user/<path><name>`).
    User,
    /// An IAM role (`arn:aws:iam::<acct>:role/<path><name>`); its access keys act as a role session.
    Role,
}

/// A stored IAM principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrincipalRecord {
    pub arn: String,
    pub account: AccountId,
    pub kind: PrincipalKind,
    /// User or role name (without path); empty for the account root.
    pub name: String,
    /// `/` or `/path/`.
    pub path: String,
    /// AWS unique id (`AIDA…` for users, `AROA…` for roles, the account id for root).
    pub principal_id: String,
    pub created: Timestamp,
    /// Identity-based (IAM) policies attached to this user or role.
    #[serde(default)]
    pub policies: Vec<IdentityPolicy>,
}

/// A named identity-based policy document, stored verbatim (validated when stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityPolicy {
    pub name: String,
    pub document: String,
}

impl PrincipalRecord {
    pub fn root(account: &AccountId, created: Timestamp) -> PrincipalRecord {
        PrincipalRecord {
            arn: account.root_arn(),
            account: account.clone(),
            kind: PrincipalKind::Root,
            name: String::new(),
            path: "/".to_owned(),
            principal_id: account.as_str().to_owned(),
            created,
            policies: Vec::new(),
        }
    }

    /// Parses `arn:aws:iam::<acct>:root`, `…:user/<path/>name` or `…:role/<path/>name` into the
    /// principal's identity fields. `principal_id` is left empty for the caller to fill.
    pub fn from_arn(arn: &str, created: Timestamp) -> Result<PrincipalRecord, String> {
        let rest = arn
            .strip_prefix("arn:")
            .and_then(|r| r.strip_prefix(PARTITION))
            .and_then(|r| r.strip_prefix(":iam::"))
            .ok_or_else(|| format!("{arn}: not an IAM principal ARN (arn:aws:iam::<account>:root|user/<name>|role/<name>)"))?;
        let (account, resource) = rest
            .split_once(':')
            .ok_or_else(|| format!("{arn}: missing resource"))?;
        let account =
            AccountId::parse(account).ok_or_else(|| format!("{arn}: account must be 12 digits"))?;
        if resource == "root" {
            return Ok(PrincipalRecord::root(&account, created));
        }
        let (kind, path_and_name) = if let Some(r) = resource.strip_prefix("user/") {
            (PrincipalKind::User, r)
        } else if let Some(r) = resource.strip_prefix("role/") {
            (PrincipalKind::Role, r)
        } else {
            return Err(format!(
                "{arn}: resource must be root, user/<name> or role/<name>"
            ));
        };
        let (path, name) = match path_and_name.rsplit_once('/') {
            Some((p, n)) => (format!("/{p}/"), n),
            None => ("/".to_owned(), path_and_name),
        };
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        if !name_ok {
            return Err(format!("{arn}: invalid name {name:?}"));
        }
        Ok(PrincipalRecord {
            arn: arn.to_owned(),
            account,
            kind,
            name: name.to_owned(),
            path,
            principal_id: String::new(),
            created,
            policies: Vec::new(),
        })
    }
}

/// A stored access key pair; the secret is wrapped under the root key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub principal_arn: String,
    #[serde(with = "crate::store::b64")]
    pub wrapped_secret: Vec<u8>,
    /// For role principals: the session name the key acts under (`assumed-role/<role>/<session>`).
    pub session_name: Option<String>,
    pub enabled: bool,
    pub created: Timestamp,
}

/// The purpose string that binds a wrapped secret access key to its access key id.
pub fn secret_wrap_purpose(access_key_id: &str) -> Vec<u8> {
    let mut p = b"secret-access-key\0".to_vec();
    p.extend_from_slice(access_key_id.as_bytes());
    p
}

/// How CloudTrail names the caller's identity type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CallerType {
    Root,
    IamUser,
    AssumedRole,
}

impl CallerType {
    pub fn cloudtrail_name(self) -> &'static str {
        match self {
            CallerType::Root => "Root",
            CallerType::IamUser => "IAMUser",
            CallerType::AssumedRole => "AssumedRole",
        }
    }
}

/// The authenticated identity behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    pub caller_type: CallerType,
    /// The caller ARN as AWS reports it (`…:user/alice`, `…:root`, `arn:aws:sts::…:assumed-role/R/s`).
    pub arn: String,
    /// `AIDA…`, `AROA…:<session>` or the account id for root.
    pub user_id: String,
    /// The IAM principal record the caller acts as (the role for an assumed-role session).
    pub principal: PrincipalRecord,
    pub access_key_id: Option<String>,
    pub session_name: Option<String>,
}

impl Caller {
    pub fn from_records(
        principal: PrincipalRecord,
        access_key_id: Option<String>,
        session_name: Option<String>,
    ) -> Caller {
        match principal.kind {
            PrincipalKind::Root => Caller {
                account: principal.account.clone(),
                caller_type: CallerType::Root,
                arn: principal.arn.clone(),
                user_id: principal.account.as_str().to_owned(),
                principal,
                access_key_id,
                session_name: None,
            },
            PrincipalKind::User => Caller {
                account: principal.account.clone(),
                caller_type: CallerType::IamUser,
                arn: principal.arn.clone(),
                user_id: principal.principal_id.clone(),
                principal,
                access_key_id,
                session_name: None,
            },
            PrincipalKind::Role => {
                let session = session_name.unwrap_or_else(|| "tresor".to_owned());
                Caller {
                    account: principal.account.clone(),
                    caller_type: CallerType::AssumedRole,
                    arn: format!(
                        "arn:{PARTITION}:sts::{}:assumed-role/{}/{}",
                        principal.account, principal.name, session
                    ),
                    user_id: format!("{}:{}", principal.principal_id, session),
                    principal,
                    access_key_id,
                    session_name: Some(session),
                }
            }
        }
    }
}

/// An access key with its secret unwrapped, as the authentication step needs it.
pub struct Credential {
    pub caller: std::sync::Arc<Caller>,
    pub secret_access_key: SecretBytes,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("caller", &self.caller.arn)
            .field("secret_access_key", &"[REDACTED]")
            .finish()
    }
}

/// A cached lookup (negative answers included) and when it was made.
type CachedCredential = (Instant, Option<Arc<Credential>>);

/// Looks up access keys, unwrapping their secrets once and caching them for a bounded time.
pub struct Identities {
    store: Arc<dyn Store>,
    root: Arc<RootKey>,
    ttl: Duration,
    max_entries: usize,
    /// Entry age counts from when its load began (see `crate::invalidation`).
    cache: Mutex<HashMap<String, CachedCredential>>,
    generation: crate::invalidation::Generation,
    /// Misses of one access key load it once.
    flights: Flights<String, Result<Option<Arc<Credential>>, KmsError>>,
}

impl Identities {
    pub fn new(
        store: Arc<dyn Store>,
        root: Arc<RootKey>,
        ttl: Duration,
        max_entries: usize,
    ) -> Identities {
        Identities {
            store,
            root,
            ttl,
            max_entries,
            cache: Mutex::new(HashMap::new()),
            generation: Default::default(),
            flights: Flights::default(),
        }
    }

    /// The credential for an access key id, or `None` when it is unknown or disabled.
    /// Negative answers are cached too (for the same TTL), so unknown-key floods do not reach the store.
    pub async fn lookup(&self, access_key_id: &str) -> Result<Option<Arc<Credential>>, KmsError> {
        if access_key_id.is_empty() || access_key_id.len() > 128 {
            return Ok(None);
        }
        if let Ok(cache) = self.cache.lock()
            && let Some((at, cred)) = cache.get(access_key_id)
            && at.elapsed() < self.ttl
        {
            return Ok(cred.clone());
        }
        self.flights
            .load(
                &access_key_id.to_owned(),
                &self.generation,
                self.ttl,
                |ticket| self.load_and_cache(access_key_id, ticket),
            )
            .await
    }

    async fn load_and_cache(
        &self,
        access_key_id: &str,
        ticket: crate::invalidation::LoadTicket,
    ) -> Result<Option<Arc<Credential>>, KmsError> {
        let cred = self.load(access_key_id).await?;
        if let Ok(mut cache) = self.cache.lock()
            && self.generation.is_current(&ticket)
        {
            if cache.len() >= self.max_entries {
                // Bounded: drop everything rather than grow; entries are cheap to reload.
                cache.clear();
            }
            cache.insert(access_key_id.to_owned(), (ticket.started, cred.clone()));
        }
        Ok(cred)
    }

    /// Forget cached entries (after identities change).
    pub fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
            self.generation.bump();
        }
    }

    /// Forget one access key's cached entry (after it changed on another node).
    pub fn invalidate_access_key(&self, access_key_id: &str) {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(access_key_id);
            self.generation.bump();
        }
    }

    async fn load(&self, access_key_id: &str) -> Result<Option<Arc<Credential>>, KmsError> {
        let Some(key) = self.store.get_access_key(access_key_id).await? else {
            return Ok(None);
        };
        if !key.enabled {
            return Ok(None);
        }
        let Some(principal) = self.store.get_principal(&key.principal_arn).await? else {
            return Ok(None);
        };
        let secret = self
            .root
            .unwrap(&secret_wrap_purpose(access_key_id), &key.wrapped_secret)
            .map_err(|_| KmsError::internal(format!("stored secret of access key {access_key_id} does not unwrap under this root key")))?;
        let caller =
            Caller::from_records(principal, Some(access_key_id.to_owned()), key.session_name);
        Ok(Some(Arc::new(Credential {
            caller: Arc::new(caller),
            secret_access_key: secret,
        })))
    }
}

/// A fresh AWS-looking access key id: `AKIA` + 16 characters of `[A-Z2-7]`.
pub fn generate_access_key_id() -> Result<String, KmsError> {
    random_base32("AKIA", 16)
}

/// A fresh 40-character secret access key.
pub fn generate_secret_access_key() -> Result<zeroize::Zeroizing<String>, KmsError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = tresor_crypto::random_bytes(40).map_err(KmsError::internal)?;
    let s: String = bytes
        .expose()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect();
    Ok(zeroize::Zeroizing::new(s))
}

/// A principal unique id such as `AIDA` + 17 characters of `[A-Z2-7]`.
pub fn generate_principal_id(prefix: &str) -> Result<String, KmsError> {
    random_base32(prefix, 17)
}

fn random_base32(prefix: &str, n: usize) -> Result<String, KmsError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes = tresor_crypto::random_bytes(n).map_err(KmsError::internal)?;
    let mut s = String::with_capacity(prefix.len() + n);
    s.push_str(prefix);
    s.extend(
        bytes
            .expose()
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)])),
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns() {
        let t = Timestamp(0);
        let r = PrincipalRecord::from_arn("arn:aws:iam::123456789012:root", t).unwrap();
        assert_eq!(r.kind, PrincipalKind::Root);
        assert_eq!(r.principal_id, "123456789012");
        let u = PrincipalRecord::from_arn("arn:aws:iam::123456789012:user/dev/alice", t).unwrap();
        assert_eq!(
            (u.kind, u.name.as_str(), u.path.as_str()),
            (PrincipalKind::User, "alice", "/dev/")
        );
        let role =
            PrincipalRecord::from_arn("arn:aws:iam::123456789012:role/VoiceIdRole", t).unwrap();
        let caller = Caller::from_records(
            PrincipalRecord {
                principal_id: "AROAEXAMPLE".into(),
                ..role
            },
            Some("AKIAX".into()),
            Some("s1".into()),
        );
        assert_eq!(
            caller.arn,
            "arn:aws:sts::123456789012:assumed-role/VoiceIdRole/s1"
        );
        assert_eq!(caller.user_id, "AROAEXAMPLE:s1");
        for bad in [
            "arn:aws:iam::12345678901:root",
            "arn:aws:iam::123456789012:group/x",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:sts::123456789012:root",
            "arn:aws:iam::123456789012:user/a b",
        ] {
            assert!(PrincipalRecord::from_arn(bad, t).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_have_aws_shape() {
        let id = generate_access_key_id().unwrap();
        assert!(id.starts_with("AKIA") && id.len() == 20);
        assert!(
            id[4..]
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(generate_secret_access_key().unwrap().len(), 40);
    }
}
