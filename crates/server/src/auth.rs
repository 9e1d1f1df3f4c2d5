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
/// derived from is the one the identity cache holds.
#[derive(Default)]
pub struct SigningKeyCache {
    entries: Mutex<HashMap<String, (Arc<Credential>, SigningKey)>>,
}

const MAX_SIGNING_KEYS: usize = 100_000;

impl SigningKeyCache {
    fn get(&self, cred: &Arc<Credential>, auth: &Authorization) -> SigningKey {
        let cache_key = format!("{}\n{}", auth.access_key_id, auth.scope());
        if let Ok(entries) = self.entries.lock()
            && let Some((c, k)) = entries.get(&cache_key)
            && Arc::ptr_eq(c, cred)
        {
            return k.clone();
        }
        let key = SigningKey::derive(
            cred.secret_access_key.expose(),
            &auth.date,
            &auth.region,
            &auth.service,
        );
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_SIGNING_KEYS {
                entries.clear();
            }
            entries.insert(cache_key, (cred.clone(), key.clone()));
        }
        key
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
    let key = signing_keys.get(&cred, &auth);
    tresor_sigv4::verify(&req, &auth, &time, &key).map_err(AuthError::SigV4)?;
    Ok(Authenticated {
        caller: cred.caller.clone(),
        region,
        service: auth.service,
    })
}
