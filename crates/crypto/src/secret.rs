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

/// `N` random bytes for values that are public once used — nonces and salts written into a
/// ciphertext, identifiers that appear in responses and audit records — drawn from a per-thread
/// buffer of the same user-space CSPRNG as everything else here.
///
/// Each thread draws from a 4 KiB buffer of generator output, refilled when used up: one call
/// into the generator per 4 KiB instead of one per value (each call also mixes in fresh hardware
/// entropy, which is slow on a loaded VM; docs/benchmarks.md, fifteenth session). Every
/// byte is handed out once, so values stay as unique as the generator's output. The unused bytes
/// held in memory are values nobody has seen yet, never key material: use [`random_bytes`] for
/// secrets and [`random_array`] for values that must stay unpredictable even to someone who
/// could read this process's memory (grant tokens).
pub fn random_public<const N: usize>() -> Result<[u8; N], CryptoError> {
    const POOL: usize = 4096;
    const { assert!(N <= POOL) };
    thread_local! {
        static POOLED: std::cell::RefCell<(Box<[u8; POOL]>, usize)> =
            std::cell::RefCell::new((Box::new([0; POOL]), POOL));
    }
    let drawn = POOLED.with(|pool| -> Option<[u8; N]> {
        let mut pool = pool.try_borrow_mut().ok()?;
        let (buf, used) = &mut *pool;
        if *used + N > POOL {
            fill_random(&mut buf[..]).ok()?;
            *used = 0;
        }
        let out: [u8; N] = buf.get(*used..*used + N)?.try_into().ok()?;
        *used += N;
        Some(out)
    });
    match drawn {
        Some(out) => Ok(out),
        None => random_array(),
    }
}

/// A random (version 4) UUID for identifiers — request ids, event ids, key ids — from
/// [`random_public`] (`Uuid::new_v4` asks the kernel on every call).
pub fn random_uuid() -> uuid::Uuid {
    match random_public::<16>() {
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
        // Across several refills of the per-thread buffer, every id is new.
        let many: std::collections::HashSet<uuid::Uuid> =
            (0..2000).map(|_| super::random_uuid()).collect();
        assert_eq!(many.len(), 2000);
        assert!(many.iter().all(|u| u.get_version_num() == 4));
        assert_eq!(a.get_version_num(), 4);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
        // The hyphenated lower-case form, as AWS request and event ids are.
        assert_eq!(a.to_string().len(), 36);
    }

    #[test]
    fn public_random_values_are_never_handed_out_twice() {
        // 44-byte draws across many refills of the 4 KiB buffer (which 44 does not divide).
        let many: std::collections::HashSet<[u8; 44]> = (0..1000)
            .map(|_| super::random_public::<44>().unwrap())
            .collect();
        assert_eq!(many.len(), 1000);
        // Consecutive draws from one thread's buffer differ, and are not the buffer's zeros.
        let a = super::random_public::<32>().unwrap();
        let b = super::random_public::<32>().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
