//! The derived SigV4 signing key and the hashing primitives.

use std::fmt;

use aws_lc_rs::{digest, hmac};
use zeroize::{Zeroize, Zeroizing};

use crate::authorization::TERMINATOR;

/// The SigV4 signing key `kSigning` for one access key, date, region and
/// service:
///
/// ```text
/// kDate    = HMAC-SHA256("AWS4" + secret, date)
/// kRegion  = HMAC-SHA256(kDate, region)
/// kService = HMAC-SHA256(kRegion, service)
/// kSigning = HMAC-SHA256(kService, "aws4_request")
/// ```
///
/// It is as good as the secret for that day, region and service, so it is
/// zeroized on drop and its `Debug` output is redacted. Because it only
/// depends on the scope, a server may cache it per scope.
///
/// It also holds the key as a ready HMAC key (its inner and outer hash states
/// computed once, which aws-lc cleanses on drop), so [`SigningKey::sign`]
/// hashes only the string to sign.
#[derive(Clone)]
pub struct SigningKey {
    bytes: [u8; 32],
    mac: hmac::Key,
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl SigningKey {
    /// Derives the signing key for a scope. `date` is the scope date
    /// (`YYYYMMDD`), normally [`crate::Authorization::date`].
    pub fn derive(secret_access_key: &[u8], date: &str, region: &str, service: &str) -> SigningKey {
        // Exact capacity so the buffer is never reallocated, which would leave
        // an unzeroized copy of the secret behind.
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret_access_key);
        let k_date = Zeroizing::new(hmac_sha256(&k_secret, date.as_bytes()));
        let k_region = Zeroizing::new(hmac_sha256(k_date.as_slice(), region.as_bytes()));
        let k_service = Zeroizing::new(hmac_sha256(k_region.as_slice(), service.as_bytes()));
        SigningKey::from_bytes(hmac_sha256(k_service.as_slice(), TERMINATOR.as_bytes()))
    }

    /// Wraps an already derived key, e.g. one taken from a cache.
    pub fn from_bytes(bytes: [u8; 32]) -> SigningKey {
        let mac = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        SigningKey { bytes, mac }
    }

    /// The raw key bytes. Secret: only for caching and known-answer tests.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The signature of `string_to_sign`: HMAC-SHA256 under this key.
    pub fn sign(&self, string_to_sign: &str) -> [u8; 32] {
        tag_bytes(hmac::sign(&self.mac, string_to_sign.as_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Lower-case hex SHA-256 of `data`, the form SigV4 uses for payload hashes
/// and for the canonical request hash.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut out = String::with_capacity(64);
    push_sha256_hex(&mut out, data);
    out
}

/// Appends the lower-case hex SHA-256 of `data` to `out` (no intermediate string).
pub fn push_sha256_hex(out: &mut String, data: &[u8]) {
    let mut hex = [0u8; 64];
    // Cannot fail: a SHA-256 digest is 32 bytes, its hex 64, and hex digits are ASCII.
    if hex::encode_to_slice(digest::digest(&digest::SHA256, data), &mut hex).is_ok()
        && let Ok(text) = std::str::from_utf8(&hex)
    {
        out.push_str(text);
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    tag_bytes(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data))
}

fn tag_bytes(tag: hmac::Tag) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A SHA-256 tag is always 32 bytes; zipping avoids a length assertion.
    for (dst, src) in out.iter_mut().zip(tag.as_ref()) {
        *dst = *src;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let key = SigningKey::from_bytes([0xab; 32]);
        let printed = format!("{key:?}");
        assert_eq!(printed, "SigningKey(<redacted>)");
        assert!(!printed.contains("ab"));
    }

    #[test]
    fn sign_uses_the_key_bytes_also_after_clone() {
        let key = SigningKey::derive(b"secret", "20240101", "us-east-1", "kms");
        let copy = key.clone();
        let expected = hmac_sha256(key.as_bytes(), b"string to sign");
        assert_eq!(key.sign("string to sign"), expected);
        drop(key);
        assert_eq!(copy.sign("string to sign"), expected);
        assert_eq!(
            SigningKey::from_bytes(*copy.as_bytes()).sign("other"),
            hmac_sha256(copy.as_bytes(), b"other")
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hex_is_lower_case_and_matches_the_hex_crate() {
        for n in [0usize, 1, 55, 56, 64, 256] {
            let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let digest = digest::digest(&digest::SHA256, &data);
            assert_eq!(sha256_hex(&data), hex::encode(digest), "{n} bytes");
            let mut out = String::from("prefix:");
            push_sha256_hex(&mut out, &data);
            assert_eq!(out, format!("prefix:{}", hex::encode(digest)));
        }
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
