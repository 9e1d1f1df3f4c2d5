//! The crate's error type.

/// Errors returned by this crate.
///
/// `Display` never includes secret bytes. Decryption failures of any kind are
/// reported as the single variant [`CryptoError::InvalidCiphertext`] so that
/// callers cannot (accidentally) build a padding/tag/context oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The ciphertext (KMS blob or wrapped value) could not be decrypted:
    /// malformed, truncated, tampered with, wrong key, wrong purpose or wrong
    /// encryption context. Deliberately indistinguishable.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// The root key file is malformed. The reason never contains key bytes.
    #[error("invalid root key file: {0}")]
    InvalidRootKeyFile(String),
    /// Key material has the wrong length or shape.
    #[error("invalid key material")]
    InvalidKeyMaterial,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// An internal cryptographic operation failed, or the crate was called
    /// with arguments a correct caller never passes (e.g. an empty plaintext
    /// to [`crate::blob::seal`]).
    #[error("internal cryptographic error")]
    Internal,
}
