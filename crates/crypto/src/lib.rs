//! Tresor's cryptographic core.
//!
//! This crate holds every cryptographic decision Tresor makes and nothing
//! else: no I/O, no async, no configuration. It provides
//!
//! * [`RootKey`] — the root of trust (32 random bytes kept in a file) and the
//!   AES-256-GCM *wrapping* of everything stored at rest (key material, secret
//!   access keys), bound to a caller-supplied `purpose` string;
//! * [`SymmetricKeyMaterial`] and [`blob`] — the KMS `SYMMETRIC_DEFAULT`
//!   ciphertext format (per-message HKDF-derived key, AES-256-GCM, header and
//!   encryption context authenticated as AAD);
//! * [`import`] — the RSA wrapping keys of imported key material (BYOK) and
//!   the unwrapping of AWS's `RSAES_OAEP_*` / `RSA_AES_KEY_WRAP_*` formats;
//! * [`asymmetric`] — asymmetric KMS keys (RSA, ECC, Ed25519, ML-DSA): generation, PKCS#8,
//!   public keys, signing and verification, RSAES-OAEP and ECDH;
//! * [`hmac_key`] — HMAC KMS keys;
//! * [`canonical_encryption_context`] — the injective byte encoding of an
//!   encryption context;
//! * [`SecretBytes`], [`random_bytes`], [`random_array`], [`random_public`], [`ct_eq`] — helpers.
//!
//! # Invariants
//!
//! * Callers never choose nonces or salts; they come from the system CSPRNG.
//! * Every secret type ([`SecretBytes`], [`RootKey`], [`SymmetricKeyMaterial`],
//!   [`hmac_key::HmacKeyMaterial`], [`asymmetric::AsymmetricPrivateKey`])
//!   zeroizes its memory on drop, prints as `[REDACTED]` in `Debug`, does not
//!   implement `PartialEq`, and is only readable through an explicit
//!   `expose()` (or, for the root key, not at all except via
//!   [`RootKey::to_file_contents`]; asymmetric private keys leave aws-lc only as
//!   the PKCS#8 [`SecretBytes`] of [`asymmetric::generate`]).
//! * Every decryption failure — truncation, wrong version, wrong key, wrong
//!   purpose, wrong encryption context, tampering — is the single opaque
//!   error [`CryptoError::InvalidCiphertext`].
//! * The on-disk/on-wire layouts ([`blob`] v1, root-key wrap v1, root key
//!   file v1) are frozen; golden fixtures under `tests/fixtures/` guard them.
//! * No `unsafe`, no panics on input-derived data.
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use tresor_crypto::{blob, KeyMaterialId, RootKey, SymmetricKeyMaterial};
//!
//! # fn main() -> Result<(), tresor_crypto::CryptoError> {
//! let root = RootKey::generate()?;
//! let material = SymmetricKeyMaterial::generate()?;
//! let material_id = KeyMaterialId::random()?;
//!
//! // Store the key material wrapped under the root key, bound to its identity.
//! let purpose = format!("key-material\0arn:example\0{}", material_id.to_hex());
//! let wrapped = root.wrap(purpose.as_bytes(), material.expose())?;
//! let material =
//!     SymmetricKeyMaterial::from_secret(root.unwrap(purpose.as_bytes(), &wrapped)?)?;
//!
//! // Encrypt under the KMS key with an encryption context.
//! let key_id = uuid::Uuid::new_v4();
//! let ctx = BTreeMap::from([("purpose".to_owned(), "example".to_owned())]);
//! let ciphertext = blob::seal(&material, key_id, material_id, &ctx, b"hello")?;
//!
//! let header = blob::parse_header(&ciphertext)?;
//! assert_eq!(header.key_id, key_id);
//! let plaintext = blob::open(&material, &ciphertext, &ctx)?;
//! assert_eq!(plaintext.expose(), b"hello");
//!
//! // Any change to the context makes decryption fail.
//! assert!(blob::open(&material, &ciphertext, &BTreeMap::new()).is_err());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod aead;
pub mod asymmetric;
pub mod blob;
mod context;
mod ed25519ph;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hmac_key;
pub mod import;
mod material;
mod root_key;
mod secret;
mod signing;

pub use context::canonical_encryption_context;
pub use error::CryptoError;
pub use material::{KeyMaterialId, SymmetricKeyMaterial};
pub use root_key::RootKey;
pub use secret::{SecretBytes, ct_eq, random_array, random_bytes, random_public, random_uuid};
pub use signing::{Ed25519Signer, verify_ed25519};

/// SHA-256 of `data` (request payload hashes for SigV4; not for secrets).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
