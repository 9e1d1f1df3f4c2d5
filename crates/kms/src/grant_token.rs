//! Grant tokens: opaque, non-secret strings CreateGrant returns so a grantee can use a grant at
//! once. Tresor's name the grant (region, key id, grant id) plus random bytes, so each CreateGrant
//! returns a distinct token and all tokens of a grant are interchangeable.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::KmsError;
use crate::types::{KeyId, Region};

const PREFIX: &str = "tresor-grant-token-v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantTokenRef {
    pub key_region: Region,
    pub key_id: KeyId,
    pub grant_id: String,
}

pub(crate) fn issue(region: &Region, key_id: &KeyId, grant_id: &str) -> Result<String, KmsError> {
    let nonce: [u8; 16] = tresor_crypto::random_array().map_err(KmsError::internal)?;
    let raw = format!(
        "{PREFIX}\0{region}\0{key_id}\0{grant_id}\0{}",
        hex::encode(nonce)
    );
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Parses a token; anything else is AWS's `InvalidGrantTokenException`.
pub(crate) fn parse(token: &str) -> Result<GrantTokenRef, KmsError> {
    let invalid = || KmsError::InvalidGrantToken("Invalid grant token.".to_owned());
    if token.is_empty() || token.len() > 8192 {
        return Err(invalid());
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [prefix, region, key_id, grant_id, nonce] = parts.as_slice() else {
        return Err(invalid());
    };
    if *prefix != PREFIX || nonce.len() != 32 || !is_grant_id(grant_id) {
        return Err(invalid());
    }
    Ok(GrantTokenRef {
        key_region: Region::parse(region).ok_or_else(invalid)?,
        key_id: KeyId::parse(key_id).ok_or_else(invalid)?,
        grant_id: (*grant_id).to_owned(),
    })
}

/// AWS grant ids: 64 lower-case hex characters.
pub(crate) fn is_grant_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks the `GrantTokens` member: at most 10, each well-formed.
pub(crate) fn check_tokens(tokens: &[String]) -> Result<(), KmsError> {
    if tokens.len() > 10 {
        return Err(KmsError::validation(
            "Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
        ));
    }
    for t in tokens {
        parse(t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let r = Region::parse("us-east-1").unwrap();
        let k = KeyId::new_random();
        let g = "a".repeat(64);
        let t1 = issue(&r, &k, &g).unwrap();
        let t2 = issue(&r, &k, &g).unwrap();
        assert_ne!(t1, t2, "each CreateGrant returns a distinct token");
        assert_eq!(
            parse(&t1).unwrap(),
            GrantTokenRef {
                key_region: r,
                key_id: k,
                grant_id: g
            }
        );
        for bad in ["", "x", "AQpAM2Rh", &t1[..t1.len() - 2]] {
            assert!(
                matches!(parse(bad), Err(KmsError::InvalidGrantToken(_))),
                "{bad}"
            );
        }
    }
}
