//! The KMS ciphertext blob (`SYMMETRIC_DEFAULT`).
//!
//! # Layout v1 — FROZEN
//!
//! **Do not change this layout, the KDF info or the AAD construction: blobs
//! written by any past version must decrypt forever.** A new format needs a
//! new version byte. `tests/fixtures/blob-v1.json` pins it.
//!
//! | offset  | length | field                                     |
//! |---------|--------|-------------------------------------------|
//! | 0       | 1      | version, `0x01`                           |
//! | 1..17   | 16     | KMS key id (UUID bytes)                   |
//! | 17..49  | 32     | key material id                           |
//! | 49..81  | 32     | salt (random per blob)                    |
//! | 81..93  | 12     | nonce (random per blob)                   |
//! | 93..    | n + 16 | AES-256-GCM ciphertext `||` 16-byte tag    |
//!
//! * data key = HKDF-SHA256(salt = salt, ikm = key material,
//!   info = `b"tresor kms ciphertext v1"`), 32 bytes;
//! * AAD = the 93 header bytes `||` [`canonical_encryption_context`](crate::canonical_encryption_context)`(ctx)`.
//!
//! Plaintexts are 1 or more bytes, so a valid blob is at least
//! [`OVERHEAD`]` + 1` bytes long.

use std::collections::BTreeMap;

use aws_lc_rs::error::Unspecified;
use aws_lc_rs::hkdf;
use zeroize::Zeroizing;

use crate::context::canonical_encryption_context_checked;
use crate::{CryptoError, KeyMaterialId, SecretBytes, SymmetricKeyMaterial, aead, random_public};

/// Version byte of the v1 layout. The v1 layout (see the module docs) is
/// frozen: blobs written with it must decrypt forever.
pub const VERSION_1: u8 = 0x01;
/// Length of the header (version, key id, material id, salt, nonce).
pub const HEADER_LEN: usize = 93;
/// Bytes a blob adds to its plaintext: header plus GCM tag.
pub const OVERHEAD: usize = HEADER_LEN + aead::TAG_LEN;

/// HKDF `info` for the per-blob data key.
const KDF_INFO: &[u8] = b"tresor kms ciphertext v1";
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The non-secret, authenticated-on-open header fields a caller needs to
/// find the key and material for [`open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    /// Always [`VERSION_1`] today.
    pub version: u8,
    /// The KMS key the blob was encrypted under.
    pub key_id: uuid::Uuid,
    /// Which material of that key (rotation) was used.
    pub material_id: KeyMaterialId,
}

/// Borrowed view of a structurally valid blob.
struct Parts<'a> {
    header: BlobHeader,
    header_bytes: &'a [u8],
    salt: &'a [u8; SALT_LEN],
    nonce: &'a [u8; NONCE_LEN],
    ciphertext_and_tag: &'a [u8],
}

fn split(blob: &[u8]) -> Option<Parts<'_>> {
    if blob.len() < OVERHEAD + 1 {
        return None;
    }
    let (header_bytes, ciphertext_and_tag) = blob.split_at_checked(HEADER_LEN)?;
    let (&version, rest) = header_bytes.split_first()?;
    if version != VERSION_1 {
        return None;
    }
    let (key_id, rest) = rest.split_first_chunk::<16>()?;
    let (material_id, rest) = rest.split_first_chunk::<32>()?;
    let (salt, rest) = rest.split_first_chunk::<SALT_LEN>()?;
    let (nonce, _) = rest.split_first_chunk::<NONCE_LEN>()?;
    Some(Parts {
        header: BlobHeader {
            version,
            key_id: uuid::Uuid::from_bytes(*key_id),
            material_id: KeyMaterialId(*material_id),
        },
        header_bytes,
        salt,
        nonce,
        ciphertext_and_tag,
    })
}

/// Reads the header so the caller can look up the key and material.
///
/// The header is **not yet authenticated**: it is only trustworthy once
/// [`open`] succeeds. Wrong version or a blob shorter than
/// [`OVERHEAD`]` + 1` is [`CryptoError::InvalidCiphertext`].
pub fn parse_header(blob: &[u8]) -> Result<BlobHeader, CryptoError> {
    split(blob)
        .map(|p| p.header)
        .ok_or(CryptoError::InvalidCiphertext)
}

/// Encrypts `plaintext` (1 or more bytes) under `material` with a fresh random
/// salt and nonce, binding `key_id`, `material_id` and `ctx`.
///
/// An empty plaintext, or a context with a component longer than
/// `u32::MAX` bytes, is [`CryptoError::Internal`] (KMS callers validate
/// both beforehand).
pub fn seal(
    material: &SymmetricKeyMaterial,
    key_id: uuid::Uuid,
    material_id: KeyMaterialId,
    ctx: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if plaintext.is_empty() {
        return Err(CryptoError::Internal);
    }
    let ctx_bytes = canonical_encryption_context_checked(ctx).ok_or(CryptoError::Internal)?;
    // Salt and nonce are written into the blob: public values, drawn from the per-thread buffer
    // (a generator call mixes in fresh hardware entropy, which costs more than the bytes).
    let salt_and_nonce: [u8; SALT_LEN + NONCE_LEN] = random_public()?;
    let (salt, nonce) = salt_and_nonce.split_at(SALT_LEN);
    let salt: &[u8; SALT_LEN] = salt.try_into().map_err(|_| CryptoError::Internal)?;
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Internal)?;

    let mut out = Vec::with_capacity(OVERHEAD.saturating_add(plaintext.len()));
    out.push(VERSION_1);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&material_id.0);
    out.extend_from_slice(salt_and_nonce.as_slice());
    debug_assert_eq!(out.len(), HEADER_LEN);

    let aad = aad(&out, &ctx_bytes);
    let data_key = derive_data_key(material, salt).map_err(|_| CryptoError::Internal)?;
    aead::seal_append(data_key.as_slice(), nonce, &aad, plaintext, &mut out)
        .map_err(|_| CryptoError::Internal)?;
    Ok(out)
}

/// Decrypts a blob produced by [`seal`]. Every failure — malformed,
/// truncated, extra bytes, wrong version, wrong material, tampered header or
/// body, different encryption context — is [`CryptoError::InvalidCiphertext`].
///
/// `material` is the one the caller found via [`parse_header`]; a mismatch
/// simply fails authentication.
pub fn open(
    material: &SymmetricKeyMaterial,
    blob: &[u8],
    ctx: &BTreeMap<String, String>,
) -> Result<SecretBytes, CryptoError> {
    let parts = split(blob).ok_or(CryptoError::InvalidCiphertext)?;
    let ctx_bytes =
        canonical_encryption_context_checked(ctx).ok_or(CryptoError::InvalidCiphertext)?;
    let aad = aad(parts.header_bytes, &ctx_bytes);
    let data_key =
        derive_data_key(material, parts.salt).map_err(|_| CryptoError::InvalidCiphertext)?;
    aead::open(
        data_key.as_slice(),
        parts.nonce,
        &aad,
        parts.ciphertext_and_tag,
    )
    .map_err(|_| CryptoError::InvalidCiphertext)
}

fn aad(header_bytes: &[u8], ctx_bytes: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header_bytes.len().saturating_add(ctx_bytes.len()));
    aad.extend_from_slice(header_bytes);
    aad.extend_from_slice(ctx_bytes);
    aad
}

fn derive_data_key(
    material: &SymmetricKeyMaterial,
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; 32]>, Unspecified> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(material.expose())
        .expand(&[KDF_INFO], hkdf::HKDF_SHA256)?
        .fill(key.as_mut_slice())?;
    Ok(key)
}
