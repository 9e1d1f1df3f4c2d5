//! Canonical encryption context encoding.

// Test code: panicking on unexpected values is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::ctx;
use proptest::prelude::*;
use tresor_crypto::canonical_encryption_context as enc;

/// Test-side decoder: a left inverse of the encoding proves injectivity.
fn decode(mut b: &[u8]) -> Option<BTreeMap<String, String>> {
    fn u32_be(b: &mut &[u8]) -> Option<usize> {
        let (n, rest) = b.split_first_chunk::<4>()?;
        *b = rest;
        Some(u32::from_be_bytes(*n) as usize)
    }
    fn string(b: &mut &[u8]) -> Option<String> {
        let n = u32_be(b)?;
        let (s, rest) = b.split_at_checked(n)?;
        *b = rest;
        String::from_utf8(s.to_vec()).ok()
    }
    let count = u32_be(&mut b)?;
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..count {
        let k = string(&mut b)?;
        let v = string(&mut b)?;
        if last.as_ref().is_some_and(|l| l.as_bytes() >= k.as_bytes()) {
            return None; // not canonical order
        }
        last = Some(k.clone());
        out.insert(k, v);
    }
    b.is_empty().then_some(out)
}

#[test]
fn empty_map_is_four_zero_bytes() {
    assert_eq!(enc(&BTreeMap::new()), vec![0, 0, 0, 0]);
}

#[test]
fn exact_encoding() {
    assert_eq!(
        enc(&ctx(&[("b", "2"), ("a", "xy")])),
        vec![
            0, 0, 0, 2, //
            0, 0, 0, 1, b'a', 0, 0, 0, 2, b'x', b'y', //
            0, 0, 0, 1, b'b', 0, 0, 0, 1, b'2',
        ]
    );
}

#[test]
fn sorted_bytewise_not_by_case_or_locale() {
    let e = enc(&ctx(&[("b", ""), ("B", ""), ("a", ""), ("é", "")]));
    let keys: Vec<u8> = [b'B', b'a', b'b'].to_vec();
    assert_eq!(e[8], keys[0]);
    assert_eq!(e[17], keys[1]);
    assert_eq!(e[26], keys[2]);
    assert_eq!(&e[35..37], "é".as_bytes());
}

#[test]
fn injectivity_cases() {
    assert_ne!(enc(&ctx(&[("a", "bc")])), enc(&ctx(&[("ab", "c")])));
    assert_ne!(enc(&ctx(&[("a", "")])), enc(&BTreeMap::new()));
    assert_ne!(enc(&ctx(&[("", "")])), enc(&BTreeMap::new()));
    assert_ne!(enc(&ctx(&[("a", "b")])), enc(&ctx(&[("b", "a")])));
    assert_ne!(enc(&ctx(&[("k", "V")])), enc(&ctx(&[("k", "v")])));
    assert_ne!(enc(&ctx(&[("K", "v")])), enc(&ctx(&[("k", "v")])));
    assert_ne!(
        enc(&ctx(&[("a", "b"), ("c", "d")])),
        enc(&ctx(&[("a", "b\0\0\0\u{1}c\0\0\0\u{1}d")]))
    );
}

#[test]
fn decoder_sanity() {
    let m = ctx(&[("x", "1"), ("y", "")]);
    assert_eq!(decode(&enc(&m)), Some(m));
    assert_eq!(decode(&[0, 0, 0]), None);
    assert_eq!(decode(&[0, 0, 0, 0, 0]), None);
}

/// Small alphabets make boundary-shifting collisions likely if the encoding
/// were not length-prefixed.
fn small_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[ab\u{0}]{0,3}", "[ab\u{0}]{0,3}", 0..4)
}

fn any_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("\\PC{0,10}", "\\PC{0,20}", 0..8)
}

proptest! {
    #[test]
    fn prop_distinct_small_maps_encode_distinctly(a in small_map(), b in small_map()) {
        prop_assert_eq!(a == b, enc(&a) == enc(&b));
    }

    #[test]
    fn prop_distinct_maps_encode_distinctly(a in any_map(), b in any_map()) {
        prop_assert_eq!(a == b, enc(&a) == enc(&b));
    }

    #[test]
    fn prop_encoding_is_decodable(m in any_map()) {
        prop_assert_eq!(decode(&enc(&m)), Some(m));
    }
}
