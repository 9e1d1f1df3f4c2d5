//! Shared AES-256-GCM helpers. Nonces are always supplied by this crate.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::error::Unspecified;
use zeroize::Zeroizing;

use crate::SecretBytes;

/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Appends `AES-256-GCM(key, nonce, aad, plaintext) || tag` to `out`.
///
/// Callers reserve `plaintext.len() + TAG_LEN` spare capacity beforehand so
/// that no reallocation leaves a stray plaintext copy on the heap.
pub(crate) fn seal_append(
    key: &[u8],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Unspecified> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key)?);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let in_out = out.get_mut(start..).ok_or(Unspecified)?;
    let tag = key.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        in_out,
    )?;
    out.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Opens `ciphertext || tag`. The plaintext only ever lives in a zeroizing
/// buffer.
pub(crate) fn open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<SecretBytes, Unspecified> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key)?);
    let nonce = Nonce::try_assume_unique_for_key(nonce)?;
    let ct_len = ciphertext_and_tag
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(Unspecified)?;
    let (ciphertext, tag) = ciphertext_and_tag
        .split_at_checked(ct_len)
        .ok_or(Unspecified)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut buf)?;
    Ok(SecretBytes::from_zeroizing(buf))
}
