//! Ed25519ph (RFC 8032 §5.1, `phflag = 1`, empty context): the pre-hashed Ed25519 variant that
//! AWS KMS calls `ED25519_PH_SHA_512`. The caller supplies `PH(M) = SHA-512(M)` (64 bytes).
//!
//! AWS-DEVIATION (unverified): AWS documents `ED25519_PH_SHA_512` as RFC 8032 Ed25519ph; that
//! it uses the empty context is assumed.
//!
//! aws-lc-rs exposes only pure Ed25519, so this module implements the prehash variant on
//! `curve25519-dalek` group arithmetic, with SHA-512 from aws-lc-rs. Verification is strict:
//! `S` must be canonical (`S < L`) and neither `A` nor `R` may be a small-order point.

use aws_lc_rs::digest::{Context, SHA512};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

/// Length of `PH(M)`, a SHA-512 digest.
pub(crate) const PREHASH_LEN: usize = 64;
/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// `dom2(1, "")`: the domain separation prefix of Ed25519ph with an empty context.
const DOM2_PH_EMPTY_CONTEXT: &[u8] = b"SigEd25519 no Ed25519 collisions\x01\x00";

fn sha512_mod_l(parts: &[&[u8]]) -> Scalar {
    let mut ctx = Context::new(&SHA512);
    for p in parts {
        ctx.update(p);
    }
    let digest = ctx.finish();
    let mut wide = Zeroizing::new([0u8; 64]);
    wide.copy_from_slice(digest.as_ref());
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Signs the 64-byte prehash `ph` with the Ed25519 private key given by its 32-byte `seed`.
/// `None` if `ph` is not 64 bytes.
pub(crate) fn sign(seed: &[u8; 32], ph: &[u8]) -> Option<[u8; SIGNATURE_LEN]> {
    if ph.len() != PREHASH_LEN {
        return None;
    }
    // h = SHA-512(seed); s = clamp(h[..32]); prefix = h[32..].
    let mut h = Zeroizing::new([0u8; 64]);
    h.copy_from_slice(aws_lc_rs::digest::digest(&SHA512, seed).as_ref());
    let (lower, prefix) = h.split_first_chunk::<32>()?;
    let mut clamped = Zeroizing::new(*lower);
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    let s = Zeroizing::new(Scalar::from_bytes_mod_order(*clamped));
    let public = EdwardsPoint::mul_base(&s).compress();

    let r = Zeroizing::new(sha512_mod_l(&[DOM2_PH_EMPTY_CONTEXT, prefix, ph]));
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = sha512_mod_l(&[
        DOM2_PH_EMPTY_CONTEXT,
        big_r.as_bytes(),
        public.as_bytes(),
        ph,
    ]);
    let big_s = k * *s + *r;

    let mut out = [0u8; SIGNATURE_LEN];
    out[..32].copy_from_slice(big_r.as_bytes());
    out[32..].copy_from_slice(big_s.as_bytes());
    Some(out)
}

/// The 32-byte public key of a `seed` (for tests and consistency checks).
#[cfg(test)]
pub(crate) fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    let h = aws_lc_rs::digest::digest(&SHA512, seed);
    let mut clamped = [0u8; 32];
    clamped.copy_from_slice(&h.as_ref()[..32]);
    clamped[0] &= 248;
    clamped[31] &= 127;
    clamped[31] |= 64;
    EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(clamped))
        .compress()
        .to_bytes()
}

/// Verifies an Ed25519ph signature of the 64-byte prehash `ph` under the 32-byte public key.
pub(crate) fn verify(public_key: &[u8], ph: &[u8], signature: &[u8]) -> bool {
    verify_inner(public_key, ph, signature).unwrap_or(false)
}

fn verify_inner(public_key: &[u8], ph: &[u8], signature: &[u8]) -> Option<bool> {
    if ph.len() != PREHASH_LEN || signature.len() != SIGNATURE_LEN {
        return Some(false);
    }
    let a_bytes: [u8; 32] = public_key.try_into().ok()?;
    let (r_bytes, s_bytes) = signature.split_first_chunk::<32>()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    let big_s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let a = CompressedEdwardsY(a_bytes).decompress()?;
    let big_r = CompressedEdwardsY(*r_bytes).decompress()?;
    if a.is_small_order() || big_r.is_small_order() {
        return Some(false);
    }
    let k = sha512_mod_l(&[DOM2_PH_EMPTY_CONTEXT, r_bytes, &a_bytes, ph]);
    // R' = [S]B - [k]A must encode exactly as R.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &big_s).compress();
    Some(crate::ct_eq(check.as_bytes(), r_bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    /// RFC 8032 §7.3, "TEST abc" (Ed25519ph).
    #[test]
    fn rfc8032_test_vector() {
        let seed: [u8; 32] =
            unhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
        let public: [u8; 32] =
            unhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf");
        let expected: [u8; 64] = unhex(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        );
        assert_eq!(public_key(&seed), public);
        let ph = aws_lc_rs::digest::digest(&SHA512, b"abc");
        let sig = sign(&seed, ph.as_ref()).unwrap();
        assert_eq!(hex::encode(sig), hex::encode(expected));
        assert!(verify(&public, ph.as_ref(), &sig));
    }

    #[test]
    fn tampering_fails() {
        let seed = [7u8; 32];
        let public = public_key(&seed);
        let ph = aws_lc_rs::digest::digest(&SHA512, b"message");
        let sig = sign(&seed, ph.as_ref()).unwrap();
        assert!(verify(&public, ph.as_ref(), &sig));
        for i in [0usize, 31, 32, 63] {
            let mut bad = sig;
            bad[i] ^= 1;
            assert!(!verify(&public, ph.as_ref(), &bad), "bit flip at {i}");
        }
        let mut other_ph = [0u8; 64];
        other_ph.copy_from_slice(ph.as_ref());
        other_ph[5] ^= 0x80;
        assert!(!verify(&public, &other_ph, &sig));
        assert!(!verify(&public_key(&[8u8; 32]), ph.as_ref(), &sig));
        assert!(!verify(&public, ph.as_ref(), &sig[..63]));
        assert!(!verify(&public, &ph.as_ref()[..32], &sig));
        assert!(sign(&seed, &[0u8; 63]).is_none());
        // A pure Ed25519 signature of the same bytes is not an Ed25519ph signature.
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let pure = pair.sign(ph.as_ref());
        assert!(!verify(&public, ph.as_ref(), pure.as_ref()));
        // S >= L is rejected (malleability).
        let mut high_s = sig;
        high_s[63] |= 0xf0;
        assert!(!verify(&public, ph.as_ref(), &high_s));
    }
}
