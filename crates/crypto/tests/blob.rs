//! KMS ciphertext blob: round trips, tampering, truncation, context binding.

// Test code: panicking on unexpected values is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::ctx;
use proptest::prelude::*;
use tresor_crypto::{CryptoError, KeyMaterialId, SecretBytes, SymmetricKeyMaterial, blob};

fn material() -> SymmetricKeyMaterial {
    SymmetricKeyMaterial::generate().unwrap()
}

fn is_invalid(r: Result<SecretBytes, CryptoError>) -> bool {
    matches!(r, Err(CryptoError::InvalidCiphertext))
}

struct Sealed {
    material: SymmetricKeyMaterial,
    key_id: uuid::Uuid,
    material_id: KeyMaterialId,
    ctx: BTreeMap<String, String>,
    blob: Vec<u8>,
}

fn sealed(plaintext: &[u8]) -> Sealed {
    let material = material();
    let key_id = uuid::Uuid::new_v4();
    let material_id = KeyMaterialId::random().unwrap();
    let ctx = ctx(&[("Department", "Finance"), ("project", "tresor")]);
    let blob = blob::seal(&material, key_id, material_id, &ctx, plaintext).unwrap();
    Sealed {
        material,
        key_id,
        material_id,
        ctx,
        blob,
    }
}

#[test]
fn round_trip_and_header() {
    let s = sealed(b"attack at dawn");
    assert_eq!(s.blob.len(), 14 + blob::OVERHEAD);
    let h = blob::parse_header(&s.blob).unwrap();
    assert_eq!(h.version, blob::VERSION_1);
    assert_eq!(h.key_id, s.key_id);
    assert_eq!(h.material_id, s.material_id);
    let pt = blob::open(&s.material, &s.blob, &s.ctx).unwrap();
    assert_eq!(pt.expose(), b"attack at dawn");
}

#[test]
fn ciphertext_does_not_contain_plaintext() {
    let pt = [0x41u8; 64];
    let s = sealed(&pt);
    assert!(!s.blob.windows(16).any(|w| w == &pt[..16]));
}

#[test]
fn salt_and_nonce_are_fresh_per_seal() {
    let s = sealed(b"same");
    let again = blob::seal(&s.material, s.key_id, s.material_id, &s.ctx, b"same").unwrap();
    assert_ne!(s.blob[49..81], again[49..81], "salt reused");
    assert_ne!(s.blob[81..93], again[81..93], "nonce reused");
    assert_ne!(s.blob[93..], again[93..]);
}

#[test]
fn empty_plaintext_is_refused() {
    let m = material();
    let r = blob::seal(
        &m,
        uuid::Uuid::new_v4(),
        KeyMaterialId([0; 32]),
        &BTreeMap::new(),
        b"",
    );
    assert_eq!(r, Err(CryptoError::Internal));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let s = sealed(b"xyz");
    for i in 0..s.blob.len() {
        for bit in 0..8 {
            let mut b = s.blob.clone();
            b[i] ^= 1 << bit;
            assert!(
                is_invalid(blob::open(&s.material, &b, &s.ctx)),
                "flip of byte {i} bit {bit} accepted"
            );
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let s = sealed(b"some plaintext");
    for len in 0..s.blob.len() {
        assert!(
            is_invalid(blob::open(&s.material, &s.blob[..len], &s.ctx)),
            "truncation to {len} accepted"
        );
    }
}

#[test]
fn trailing_and_leading_bytes_are_rejected() {
    let s = sealed(b"some plaintext");
    for extra in [0u8, 1, 0xff] {
        let mut b = s.blob.clone();
        b.push(extra);
        assert!(is_invalid(blob::open(&s.material, &b, &s.ctx)));
        let mut b = vec![extra];
        b.extend_from_slice(&s.blob);
        assert!(is_invalid(blob::open(&s.material, &b, &s.ctx)));
    }
}

#[test]
fn wrong_material_is_rejected() {
    let s = sealed(b"secret");
    assert!(is_invalid(blob::open(&material(), &s.blob, &s.ctx)));
}

#[test]
fn swapped_header_ids_are_rejected() {
    let s = sealed(b"secret");
    let mut b = s.blob.clone();
    b[1..17].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    assert!(is_invalid(blob::open(&s.material, &b, &s.ctx)));
    let mut b = s.blob.clone();
    b[17..49].copy_from_slice(&KeyMaterialId::random().unwrap().0);
    assert!(is_invalid(blob::open(&s.material, &b, &s.ctx)));
}

#[test]
fn context_changes_are_rejected() {
    let s = sealed(b"secret");
    let cases = [
        (
            "added pair",
            ctx(&[("Department", "Finance"), ("project", "tresor"), ("x", "y")]),
        ),
        ("removed pair", ctx(&[("Department", "Finance")])),
        ("empty", BTreeMap::new()),
        (
            "key case",
            ctx(&[("department", "Finance"), ("project", "tresor")]),
        ),
        (
            "value case",
            ctx(&[("Department", "finance"), ("project", "tresor")]),
        ),
        (
            "value changed",
            ctx(&[("Department", "Finance"), ("project", "tresor ")]),
        ),
        (
            "pair swapped",
            ctx(&[("Department", "tresor"), ("project", "Finance")]),
        ),
    ];
    for (name, c) in cases {
        assert!(
            is_invalid(blob::open(&s.material, &s.blob, &c)),
            "{name} accepted"
        );
    }
    assert!(blob::open(&s.material, &s.blob, &s.ctx).is_ok());
}

#[test]
fn absent_and_empty_context_are_the_same() {
    let m = material();
    let none: BTreeMap<String, String> = BTreeMap::default();
    let b = blob::seal(
        &m,
        uuid::Uuid::new_v4(),
        KeyMaterialId([7; 32]),
        &none,
        b"p",
    )
    .unwrap();
    assert_eq!(blob::open(&m, &b, &BTreeMap::new()).unwrap().expose(), b"p");
}

#[test]
fn insertion_order_is_irrelevant() {
    let m = material();
    let mut a = BTreeMap::new();
    a.insert("b".to_owned(), "2".to_owned());
    a.insert("a".to_owned(), "1".to_owned());
    let mut b = BTreeMap::new();
    b.insert("a".to_owned(), "1".to_owned());
    b.insert("b".to_owned(), "2".to_owned());
    let blob = blob::seal(&m, uuid::Uuid::new_v4(), KeyMaterialId([1; 32]), &a, b"p").unwrap();
    assert!(blob::open(&m, &blob, &b).is_ok());
}

#[test]
fn parse_header_bounds_and_version() {
    let s = sealed(b"x");
    assert_eq!(s.blob.len(), blob::OVERHEAD + 1);
    assert!(blob::parse_header(&s.blob).is_ok());
    assert_eq!(
        blob::parse_header(&s.blob[..blob::OVERHEAD]),
        Err(CryptoError::InvalidCiphertext)
    );
    assert_eq!(blob::parse_header(&[]), Err(CryptoError::InvalidCiphertext));
    for v in [0x00u8, 0x02, 0xff] {
        let mut b = s.blob.clone();
        b[0] = v;
        assert_eq!(blob::parse_header(&b), Err(CryptoError::InvalidCiphertext));
    }
    assert_eq!(
        blob::parse_header(&[0x01; blob::OVERHEAD]),
        Err(CryptoError::InvalidCiphertext)
    );
}

#[test]
fn garbage_is_rejected_without_panicking() {
    let m = material();
    for len in [0usize, 1, 16, 92, 93, 108, 109, 110, 200] {
        for fill in [0x00u8, 0x01, 0xff] {
            assert!(is_invalid(blob::open(
                &m,
                &vec![fill; len],
                &BTreeMap::new()
            )));
        }
    }
}

fn context_strategy() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("\\PC{0,12}", "\\PC{0,24}", 0..6)
}

proptest! {
    #[test]
    fn prop_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 1..=4096),
        c in context_strategy(),
        id in any::<[u8; 16]>(),
    ) {
        let m = material();
        let key_id = uuid::Uuid::from_bytes(id);
        let mid = KeyMaterialId::random().unwrap();
        let b = blob::seal(&m, key_id, mid, &c, &plaintext).unwrap();
        prop_assert_eq!(b.len(), plaintext.len() + blob::OVERHEAD);
        let h = blob::parse_header(&b).unwrap();
        prop_assert_eq!(h.key_id, key_id);
        prop_assert_eq!(h.material_id, mid);
        let pt = blob::open(&m, &b, &c).unwrap();
        prop_assert_eq!(pt.expose(), plaintext.as_slice());

        // Any extra pair breaks it.
        let mut other = c.clone();
        other.insert("\u{0}extra".to_owned(), String::new());
        prop_assert!(is_invalid(blob::open(&m, &b, &other)));
    }

    #[test]
    fn prop_random_flip_rejected(
        plaintext in prop::collection::vec(any::<u8>(), 1..=256),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let m = material();
        let mut b = blob::seal(&m, uuid::Uuid::nil(), KeyMaterialId([3; 32]), &BTreeMap::new(), &plaintext).unwrap();
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        prop_assert!(is_invalid(blob::open(&m, &b, &BTreeMap::new())));
    }
}
