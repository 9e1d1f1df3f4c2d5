//! The root key: root of trust and at-rest wrapping.

use std::fmt;

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::material::is_lower_hex;
use crate::secret::fill_random;
use crate::{CryptoError, SecretBytes, aead, random_array};

/// First line of a root key file.
const FILE_HEADER: &str = "tresor-root-key v1";
/// Message authenticated with HMAC to produce [`RootKey::check_value`].
const CHECK_MESSAGE: &[u8] = b"tresor root key check v1";
/// Prefix of the AAD of [`RootKey::wrap`]; the caller's purpose follows.
const WRAP_AAD_PREFIX: &[u8] = b"tresor-wrap-v1\0";
/// Version byte of the wrap format.
const WRAP_VERSION_1: u8 = 0x01;
const NONCE_LEN: usize = 12;

/// The root of trust: 32 random bytes kept in a file (restricting the file
/// to mode 0600 is the caller's job).
///
/// Zeroized on drop, redacted in `Debug`, not `Clone` (share it with an
/// `Arc`). The bytes leave this type only via [`RootKey::to_file_contents`].
///
/// # Root key file format (v1, frozen)
///
/// Text: the line `tresor-root-key v1`, then a line of exactly 64 lower-case
/// hex characters; the final newline is optional. Nothing else is accepted.
///
/// # Wrap format (v1, frozen)
///
/// `0x01 || nonce (12, random) || AES-256-GCM ciphertext || tag (16)` under
/// the root key, with AAD `b"tresor-wrap-v1\0" || purpose`.
pub struct RootKey(Zeroizing<[u8; 32]>);

impl RootKey {
    /// Bytes added by [`RootKey::wrap`]: version (1) + nonce (12) + tag (16).
    pub const WRAP_OVERHEAD: usize = 1 + NONCE_LEN + aead::TAG_LEN;

    /// A fresh random root key from the system CSPRNG.
    pub fn generate() -> Result<RootKey, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut_slice())?;
        Ok(RootKey(key))
    }

    /// Parses a root key file (see the type-level docs for the format).
    /// Errors are [`CryptoError::InvalidRootKeyFile`] with a reason that never
    /// contains key bytes.
    pub fn from_file_contents(s: &str) -> Result<RootKey, CryptoError> {
        let bad = |reason: &str| CryptoError::InvalidRootKeyFile(reason.to_owned());
        let rest = s
            .strip_prefix(FILE_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| bad("first line must be exactly `tresor-root-key v1`"))?;
        let line = rest.strip_suffix('\n').unwrap_or(rest);
        if line.contains('\n') {
            return Err(bad("unexpected extra lines after the key line"));
        }
        if !is_lower_hex(line, 64) {
            return Err(bad(
                "second line must be exactly 64 lower-case hex characters",
            ));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(line, key.as_mut_slice())
            .map_err(|_| bad("second line must be exactly 64 lower-case hex characters"))?;
        Ok(RootKey(key))
    }

    /// The root key file contents, `tresor-root-key v1\n<64 hex>\n`.
    pub fn to_file_contents(&self) -> Zeroizing<String> {
        let mut hex_buf = Zeroizing::new([0u8; 64]);
        // Cannot fail: the buffer is exactly twice the key length.
        let encoded = hex::encode_to_slice(self.0.as_slice(), hex_buf.as_mut_slice());
        debug_assert!(encoded.is_ok());
        // Exact capacity: no reallocation may leave a copy behind.
        let mut out = Zeroizing::new(String::with_capacity(FILE_HEADER.len() + 1 + 64 + 1));
        out.push_str(FILE_HEADER);
        out.push('\n');
        out.extend(hex_buf.iter().map(|&b| char::from(b)));
        out.push('\n');
        out
    }

    /// Non-secret fingerprint of the root key, stored beside the data so that
    /// starting with the wrong root key fails loudly: lower-case hex of the
    /// first 16 bytes of `HMAC-SHA256(root, "tresor root key check v1")`.
    pub fn check_value(&self) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_slice());
        let tag = hmac::sign(&key, CHECK_MESSAGE);
        let prefix: Vec<u8> = tag.as_ref().iter().take(16).copied().collect();
        hex::encode(prefix)
    }

    /// Encrypts `plaintext` under the root key, bound to `purpose`
    /// (e.g. `b"key-material\0<key arn>\0<material id hex>"` or
    /// `b"secret-access-key\0<akid>"`). The nonce is random.
    pub fn wrap(&self, purpose: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = random_array()?;
        let mut out = Vec::with_capacity(Self::WRAP_OVERHEAD.saturating_add(plaintext.len()));
        out.push(WRAP_VERSION_1);
        out.extend_from_slice(&nonce);
        aead::seal_append(
            self.0.as_slice(),
            nonce,
            &wrap_aad(purpose),
            plaintext,
            &mut out,
        )
        .map_err(|_| CryptoError::Internal)?;
        Ok(out)
    }

    /// Reverses [`RootKey::wrap`]. Every failure (wrong root key, wrong
    /// purpose, tampering, truncation, unknown version) is
    /// [`CryptoError::InvalidCiphertext`].
    pub fn unwrap(&self, purpose: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
        let (&version, rest) = wrapped
            .split_first()
            .ok_or(CryptoError::InvalidCiphertext)?;
        if version != WRAP_VERSION_1 {
            return Err(CryptoError::InvalidCiphertext);
        }
        let (nonce, ciphertext_and_tag) = rest
            .split_at_checked(NONCE_LEN)
            .ok_or(CryptoError::InvalidCiphertext)?;
        aead::open(
            self.0.as_slice(),
            nonce,
            &wrap_aad(purpose),
            ciphertext_and_tag,
        )
        .map_err(|_| CryptoError::InvalidCiphertext)
    }
}

fn wrap_aad(purpose: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD_PREFIX.len().saturating_add(purpose.len()));
    aad.extend_from_slice(WRAP_AAD_PREFIX);
    aad.extend_from_slice(purpose);
    aad
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([REDACTED; 32])")
    }
}

impl zeroize::ZeroizeOnDrop for RootKey {}
