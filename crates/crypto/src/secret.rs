//! Secret byte buffers, randomness and constant-time comparison.

use std::fmt;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::CryptoError;

/// A heap buffer of secret bytes.
///
/// Zeroized on drop (including spare capacity), redacted in `Debug`
/// (`SecretBytes([REDACTED; 32])`), readable only via [`SecretBytes::expose`].
/// `PartialEq` is intentionally not implemented; compare with [`ct_eq`].
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `v`; it will be zeroized when this value is dropped.
    pub fn new(v: Vec<u8>) -> Self {
        Self(Zeroizing::new(v))
    }

    pub(crate) fn from_zeroizing(v: Zeroizing<Vec<u8>>) -> Self {
        Self(v)
    }

    /// The secret bytes. Every call site is a place where the secret leaves
    /// this wrapper; keep them few.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of secret bytes (not itself secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.len())
    }
}

impl zeroize::ZeroizeOnDrop for SecretBytes {}

/// Fills `dest` from the system CSPRNG.
pub(crate) fn fill_random(dest: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(dest).map_err(|_| CryptoError::Rng)
}

/// `n` secret random bytes from the system CSPRNG.
pub fn random_bytes(n: usize) -> Result<SecretBytes, CryptoError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    fill_random(&mut buf)?;
    Ok(SecretBytes(buf))
}

/// `N` random bytes for non-secret uses (identifiers, nonces, salts).
/// The array is not zeroized; use [`random_bytes`] for secrets.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}

/// A random (version 4) UUID for identifiers — request ids, event ids — from the same
/// user-space CSPRNG as everything else here (`Uuid::new_v4` asks the kernel on every call).
pub fn random_uuid() -> uuid::Uuid {
    match random_array::<16>() {
        Ok(b) => uuid::Builder::from_random_bytes(b).into_uuid(),
        Err(_) => uuid::Uuid::new_v4(),
    }
}

/// Constant-time equality of two byte strings (time depends only on the
/// lengths). Different lengths compare unequal.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn random_uuids_are_version_4_and_distinct() {
        let a = super::random_uuid();
        let b = super::random_uuid();
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
        // The hyphenated lower-case form, as AWS request and event ids are.
        assert_eq!(a.to_string().len(), 36);
    }
}
