//! SigV4 authentication of an incoming request: who is calling, in which region, for which service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tresor_kms::identity::{Caller, Credential};
use tresor_kms::types::Region;
use tresor_kms::{Kms, KmsError};
use tresor_sigv4::{Authorization, Request, RequestTime, SigningKey, UriEncoding};

/// Why authentication failed; mapped to each protocol's error shape by the edge.
#[derive(Debug)]
pub enum AuthError {
    /// SigV4-level failure (missing, malformed, expired, mismatched).
    SigV4(tresor_sigv4::Error),
    /// Unknown or disabled access key id, or an unknown session token.
    UnrecognizedClient,
    /// The scope names a region this server does not serve.
    InvalidRegion(String),
    /// The core failed while looking the key up.
    Internal(KmsError),
}

/// An authenticated request.
pub struct Authenticated {
    pub caller: Arc<Caller>,
    pub region: Region,
    pub service: String,
}

/// Cache of derived signing keys: (access key id, scope) → key, valid while the credential it was
/// derived from is the one the identity cache holds. A key enters the cache only after a request
/// signed with it verified, so requests that cannot sign (an access key id without its secret)
/// never fill it.
#[derive(Default)]
pub struct SigningKeyCache {
    entries: Mutex<HashMap<String, CachedKey>>,
}

/// A derived key and the credential it was derived from.
type CachedKey = (Arc<Credential>, Arc<SigningKey>);

/// At most this many keys are kept; past it the cache starts over. Each key holds its prepared
/// HMAC state (~1.3 KB), so this bounds the cache at ~13 MB, and only callers that can sign add to
/// it. Real deployments need one key per access key, region and service per day.
const MAX_SIGNING_KEYS: usize = 10_000;

/// Writes the cache key of `auth`'s access key and scope into `out` (cleared first).
fn signing_cache_key(out: &mut String, auth: &Authorization) {
    out.clear();
    out.push_str(&auth.access_key_id);
    out.push('\n');
    auth.write_scope(out);
}

impl SigningKeyCache {
    /// The signing key for `cred` and `auth`'s scope, and whether it came from the cache (a key
    /// that did not is derived now and should be [`SigningKeyCache::remember`]ed once a request
    /// signed with it verifies).
    fn get(&self, cred: &Arc<Credential>, auth: &Authorization) -> (Arc<SigningKey>, bool) {
        // The lookup key is built in a per-thread buffer: a hit allocates nothing.
        thread_local! {
            static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let hit = BUF.with(|buf| {
            let mut buf = buf.try_borrow_mut().ok()?;
            signing_cache_key(&mut buf, auth);
            let entries = self.entries.lock().ok()?;
            entries
                .get(buf.as_str())
                .filter(|(c, _)| Arc::ptr_eq(c, cred))
                .map(|(_, k)| k.clone())
        });
        match hit {
            Some(key) => (key, true),
            None => (
                Arc::new(SigningKey::derive(
                    cred.secret_access_key.expose(),
                    &auth.date,
                    &auth.region,
                    &auth.service,
                )),
                false,
            ),
        }
    }

    /// Keeps `key` for `cred` and `auth`'s scope.
    fn remember(&self, cred: &Arc<Credential>, auth: &Authorization, key: Arc<SigningKey>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_SIGNING_KEYS {
                entries.clear();
            }
            let mut cache_key = String::new();
            signing_cache_key(&mut cache_key, auth);
            entries.insert(cache_key, (cred.clone(), key));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

/// The services this listener speaks and their clock-skew allowance.
pub fn max_skew_seconds(service: &str) -> i64 {
    if service == "s3" { 900 } else { 300 }
}

/// Verifies the request's SigV4 signature and resolves the caller. `authorization` is the parsed
/// `Authorization` header (`None` when absent).
#[allow(clippy::too_many_arguments)]
pub async fn authenticate(
    kms: &Kms,
    signing_keys: &SigningKeyCache,
    region_allowed: impl Fn(&str) -> bool,
    authorization: Option<Result<Authorization, tresor_sigv4::Error>>,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_sha256_hex: &str,
    now_unix_seconds: i64,
) -> Result<Authenticated, AuthError> {
    let auth = authorization
        .ok_or(AuthError::SigV4(tresor_sigv4::Error::MissingAuthorization))?
        .map_err(AuthError::SigV4)?;
    let time: RequestTime = tresor_sigv4::request_time(headers).map_err(AuthError::SigV4)?;
    // AWS checks the access key before the signature: an unknown key is UnrecognizedClient even
    // when the signature is also wrong.
    let cred = kms
        .identities()
        .lookup(&auth.access_key_id)
        .await
        .map_err(AuthError::Internal)?
        .ok_or(AuthError::UnrecognizedClient)?;
    // Tresor issues no temporary credentials, so any session token is unknown.
    if headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))
    {
        return Err(AuthError::UnrecognizedClient);
    }
    let region = Region::parse(&auth.region)
        .filter(|r| region_allowed(r.as_str()))
        .ok_or_else(|| AuthError::InvalidRegion(auth.region.clone()))?;
    tresor_sigv4::check_clock_skew(&time, now_unix_seconds, max_skew_seconds(&auth.service))
        .map_err(AuthError::SigV4)?;
    let uri_encoding = if auth.service == "s3" {
        UriEncoding::Single
    } else {
        UriEncoding::Double
    };
    let req = Request {
        method,
        path,
        query,
        headers,
        payload_sha256_hex,
        uri_encoding,
    };
    let (key, cached) = signing_keys.get(&cred, &auth);
    tresor_sigv4::verify(&req, &auth, &time, &key).map_err(AuthError::SigV4)?;
    if !cached {
        signing_keys.remember(&cred, &auth, key);
    }
    Ok(Authenticated {
        caller: cred.caller.clone(),
        region,
        service: auth.service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tresor_kms::identity::PrincipalRecord;
    use tresor_kms::types::{AccountId, Timestamp};

    fn credential(secret: &[u8]) -> Arc<Credential> {
        let account = AccountId::parse("111122223333").expect("account id");
        Arc::new(Credential {
            caller: Arc::new(Caller::from_records(
                PrincipalRecord::root(&account, Timestamp(0)),
                None,
                None,
            )),
            secret_access_key: tresor_crypto::SecretBytes::new(secret.to_vec()),
        })
    }

    fn authorization(access_key_id: &str, date: &str, region: &str) -> Authorization {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={access_key_id}/{date}/{region}/kms/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={}",
            "0".repeat(64)
        );
        tresor_sigv4::parse_authorization(&header).expect("authorization header")
    }

    #[test]
    fn signing_keys_are_cached_per_access_key_scope_and_credential() {
        let cache = SigningKeyCache::default();
        let cred = credential(b"secret-one");
        let a = authorization("AKIDONE", "20240101", "us-east-1");
        let (first, cached) = cache.get(&cred, &a);
        assert!(!cached);
        assert_eq!(
            first.as_bytes(),
            SigningKey::derive(b"secret-one", "20240101", "us-east-1", "kms").as_bytes()
        );
        // Not remembered (its request did not verify): derived again, not served from the cache.
        let (again, cached) = cache.get(&cred, &a);
        assert!(!cached && !Arc::ptr_eq(&first, &again));
        assert_eq!(cache.len(), 0);
        cache.remember(&cred, &a, first.clone());
        // The same access key, scope and credential: the cached key itself.
        let (hit, cached) = cache.get(&cred, &a);
        assert!(cached && Arc::ptr_eq(&first, &hit));
        // Another day or region: another key.
        let (next_day, cached) =
            cache.get(&cred, &authorization("AKIDONE", "20240102", "us-east-1"));
        assert!(!cached);
        assert_ne!(next_day.as_bytes(), first.as_bytes());
        let (other_region, _) =
            cache.get(&cred, &authorization("AKIDONE", "20240101", "eu-west-1"));
        assert_ne!(other_region.as_bytes(), first.as_bytes());
        // A replaced credential (a new secret for the same access key id) is never served the
        // old secret's key.
        let rotated = credential(b"secret-two");
        let (after, cached) = cache.get(&rotated, &a);
        assert!(!cached);
        assert_eq!(
            after.as_bytes(),
            SigningKey::derive(b"secret-two", "20240101", "us-east-1", "kms").as_bytes()
        );
        cache.remember(&rotated, &a, after.clone());
        let (hit, cached) = cache.get(&rotated, &a);
        assert!(cached && Arc::ptr_eq(&after, &hit));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_signing_key_cache_is_bounded() {
        let cache = SigningKeyCache::default();
        let cred = credential(b"secret");
        for i in 0..=MAX_SIGNING_KEYS {
            let auth = authorization(&format!("AKID{i}"), "20240101", "us-east-1");
            let (key, _) = cache.get(&cred, &auth);
            cache.remember(&cred, &auth, key);
            assert!(cache.len() <= MAX_SIGNING_KEYS);
        }
        assert_eq!(cache.len(), 1);
    }
}
