//! Canonical encoding of KMS encryption contexts.

use std::collections::BTreeMap;

/// Canonical, injective byte encoding of an encryption context, used as
/// (part of) the AES-GCM additional authenticated data. Frozen.
///
/// Layout: `u32`-BE pair count, then for each pair in byte-wise sorted key
/// order (the `BTreeMap` order of `String`): `u32`-BE key length, key UTF-8,
/// `u32`-BE value length, value UTF-8. Keys and values are case-sensitive.
/// The empty map encodes as four zero bytes, so "no context" and `{}` are the
/// same context.
///
/// Lengths and the pair count are length-prefixed, so distinct maps give
/// distinct encodings. (A key, value or count above `u32::MAX` — impossible
/// under KMS limits — is saturated here; [`crate::blob`] refuses such
/// contexts instead of encoding them ambiguously.)
pub fn canonical_encryption_context(ctx: &BTreeMap<String, String>) -> Vec<u8> {
    encode(ctx, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Like [`canonical_encryption_context`] but `None` if any length does not
/// fit in a `u32` (so the result is always injective).
pub(crate) fn canonical_encryption_context_checked(
    ctx: &BTreeMap<String, String>,
) -> Option<Vec<u8>> {
    let fits = |n: usize| u32::try_from(n).is_ok();
    if !fits(ctx.len()) || !ctx.iter().all(|(k, v)| fits(k.len()) && fits(v.len())) {
        return None;
    }
    Some(canonical_encryption_context(ctx))
}

fn encode(ctx: &BTreeMap<String, String>, len32: impl Fn(usize) -> u32) -> Vec<u8> {
    let capacity = ctx.iter().fold(4usize, |acc, (k, v)| {
        acc.saturating_add(8)
            .saturating_add(k.len())
            .saturating_add(v.len())
    });
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(&len32(ctx.len()).to_be_bytes());
    for (k, v) in ctx {
        out.extend_from_slice(&len32(k.len()).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&len32(v.len()).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}
