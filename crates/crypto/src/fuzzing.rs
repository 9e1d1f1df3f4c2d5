//! The invariants the `ciphertext_blob` fuzz target (`fuzz/`) checks, also replayed over the
//! committed corpus by `tests/fuzz_corpus.rs`. Not part of the API.

#![allow(clippy::panic)]

use std::collections::BTreeMap;

use crate::blob::{self, HEADER_LEN, OVERHEAD, VERSION_1};
use crate::{CryptoError, KeyMaterialId, SecretBytes, SymmetricKeyMaterial};

/// The fixed key material fuzzing opens blobs with (seeds are sealed under it).
pub const FUZZ_MATERIAL: [u8; 32] = *b"tresor fuzzing key material 0001";

/// The material built from [`FUZZ_MATERIAL`].
pub fn fuzz_material() -> Option<SymmetricKeyMaterial> {
    SymmetricKeyMaterial::from_secret(SecretBytes::new(FUZZ_MATERIAL.to_vec())).ok()
}

/// An encryption context derived from the input's first byte (so seeds can carry one).
fn context_for(selector: u8) -> BTreeMap<String, String> {
    let mut ctx = BTreeMap::new();
    if selector & 1 == 1 {
        ctx.insert("tenant".to_owned(), "a".to_owned());
    }
    if selector & 2 == 2 {
        ctx.insert(
            "aws:kms:arn".to_owned(),
            "x".repeat(usize::from(selector >> 2)),
        );
    }
    ctx
}

/// The blob encoding of `plaintext` under the fuzz material with the context `selector` picks:
/// `selector ‖ blob` is a corpus entry that opens.
pub fn seal_seed(selector: u8, plaintext: &[u8]) -> Option<Vec<u8>> {
    let material = fuzz_material()?;
    let key_id = uuid::Uuid::from_bytes(*b"fuzz-key-id-0001");
    let material_id = KeyMaterialId([7u8; 32]);
    let mut out = vec![selector];
    out.extend(
        blob::seal(
            &material,
            key_id,
            material_id,
            &context_for(selector),
            plaintext,
        )
        .ok()?,
    );
    Some(out)
}

/// `data` is a context selector byte followed by a ciphertext blob. Panics when an invariant
/// breaks:
///
/// - parsing and opening never panic, and every failure is `InvalidCiphertext` (no oracle);
/// - the header parses exactly when the blob is long enough and has the version byte, and then
///   names the bytes at their frozen offsets;
/// - a blob that opens round-trips (its plaintext sealed again opens to the same plaintext under
///   the same header key id), and any one flipped bit, or another context, makes it fail.
pub fn check_blob(data: &[u8]) {
    let Some((&selector, blob_bytes)) = data.split_first() else {
        return;
    };
    let Some(material) = fuzz_material() else {
        return;
    };
    let header = blob::parse_header(blob_bytes);
    let well_formed = blob_bytes.len() > OVERHEAD && blob_bytes.first().copied() == Some(VERSION_1);
    assert_eq!(header.is_ok(), well_formed);
    if let Ok(h) = &header {
        assert_eq!(h.version, VERSION_1);
        assert_eq!(Some(h.key_id.as_bytes().as_slice()), blob_bytes.get(1..17));
        assert_eq!(Some(h.material_id.0.as_slice()), blob_bytes.get(17..49));
    } else {
        assert_eq!(header, Err(CryptoError::InvalidCiphertext));
    }
    let ctx = context_for(selector);
    match blob::open(&material, blob_bytes, &ctx) {
        Ok(plaintext) => {
            let h = header.unwrap_or_else(|_| panic!("opened a blob whose header does not parse"));
            assert_eq!(plaintext.len(), blob_bytes.len() - OVERHEAD);
            let resealed = blob::seal(&material, h.key_id, h.material_id, &ctx, plaintext.expose())
                .unwrap_or_else(|e| panic!("sealing failed: {e:?}"));
            assert_eq!(resealed.get(..49), blob_bytes.get(..49));
            let reopened = blob::open(&material, &resealed, &ctx)
                .unwrap_or_else(|e| panic!("a fresh blob does not open: {e:?}"));
            assert_eq!(reopened.expose(), plaintext.expose());
            // Every bit matters: flip one chosen by the plaintext length.
            let mut tampered = blob_bytes.to_vec();
            let i = plaintext.len().wrapping_mul(31) % tampered.len();
            if let Some(b) = tampered.get_mut(i) {
                *b ^= 1 << (i % 8);
            }
            assert_eq!(
                blob::open(&material, &tampered, &ctx).map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
            assert_eq!(
                blob::open(&material, blob_bytes, &context_for(selector ^ 1)).map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
            assert!(HEADER_LEN < blob_bytes.len());
        }
        Err(e) => assert_eq!(e, CryptoError::InvalidCiphertext),
    }
}
