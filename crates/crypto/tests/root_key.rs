//! Root key: wrap/unwrap, file format, check value.

// Test code: panicking on unexpected values is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tresor_crypto::{CryptoError, RootKey, SecretBytes};

const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn is_invalid(r: Result<SecretBytes, CryptoError>) -> bool {
    matches!(r, Err(CryptoError::InvalidCiphertext))
}

#[test]
fn wrap_round_trip() {
    let root = RootKey::generate().unwrap();
    let purpose = b"secret-access-key\0AKIAEXAMPLE";
    let w = root.wrap(purpose, b"hunter2").unwrap();
    assert_eq!(w.len(), 7 + RootKey::WRAP_OVERHEAD);
    assert_eq!(RootKey::WRAP_OVERHEAD, 29);
    assert_eq!(w[0], 0x01);
    assert_eq!(root.unwrap(purpose, &w).unwrap().expose(), b"hunter2");
}

#[test]
fn wrap_of_empty_plaintext_round_trips() {
    let root = RootKey::generate().unwrap();
    let w = root.wrap(b"p", b"").unwrap();
    assert_eq!(w.len(), RootKey::WRAP_OVERHEAD);
    assert!(root.unwrap(b"p", &w).unwrap().is_empty());
}

#[test]
fn wrap_nonces_are_fresh() {
    let root = RootKey::generate().unwrap();
    let a = root.wrap(b"p", b"same").unwrap();
    let b = root.wrap(b"p", b"same").unwrap();
    assert_ne!(a[1..13], b[1..13]);
    assert_ne!(a, b);
}

#[test]
fn wrong_purpose_or_root_key_is_rejected() {
    let root = RootKey::generate().unwrap();
    let w = root.wrap(b"key-material\0arn\0aa", b"material").unwrap();
    for p in [
        &b"key-material\0arn\0ab"[..],
        b"key-material\0arn\0a",
        b"key-material\0arn\0aa\0",
        b"Key-material\0arn\0aa",
        b"",
    ] {
        assert!(is_invalid(root.unwrap(p, &w)), "{p:?} accepted");
    }
    let other = RootKey::generate().unwrap();
    assert!(is_invalid(other.unwrap(b"key-material\0arn\0aa", &w)));
}

#[test]
fn every_bit_flip_truncation_and_extension_is_rejected() {
    let root = RootKey::generate().unwrap();
    let w = root.wrap(b"p", &[9u8; 32]).unwrap();
    for i in 0..w.len() {
        for bit in 0..8 {
            let mut b = w.clone();
            b[i] ^= 1 << bit;
            assert!(is_invalid(root.unwrap(b"p", &b)), "byte {i} bit {bit}");
        }
    }
    for len in 0..w.len() {
        assert!(
            is_invalid(root.unwrap(b"p", &w[..len])),
            "truncated to {len}"
        );
    }
    let mut b = w.clone();
    b.push(0);
    assert!(is_invalid(root.unwrap(b"p", &b)));
}

#[test]
fn file_contents_round_trip() {
    let root = RootKey::generate().unwrap();
    let s = root.to_file_contents();
    assert!(s.starts_with("tresor-root-key v1\n"));
    assert!(s.ends_with('\n'));
    assert_eq!(s.lines().count(), 2);
    let again = RootKey::from_file_contents(&s).unwrap();
    assert_eq!(again.check_value(), root.check_value());
    // Same key: it can unwrap what the original wrapped.
    let w = root.wrap(b"p", b"x").unwrap();
    assert_eq!(again.unwrap(b"p", &w).unwrap().expose(), b"x");
}

#[test]
fn trailing_newline_is_optional() {
    let a = RootKey::from_file_contents(&format!("tresor-root-key v1\n{HEX}\n")).unwrap();
    let b = RootKey::from_file_contents(&format!("tresor-root-key v1\n{HEX}")).unwrap();
    assert_eq!(a.check_value(), b.check_value());
    assert_eq!(
        a.to_file_contents().as_str(),
        format!("tresor-root-key v1\n{HEX}\n")
    );
}

#[test]
fn malformed_files_are_rejected_without_leaking_the_key() {
    let upper = HEX.to_uppercase();
    let cases = [
        String::new(),
        "tresor-root-key v1".to_owned(),
        "tresor-root-key v1\n".to_owned(),
        format!("tresor-root-key v2\n{HEX}\n"),
        format!("Tresor-root-key v1\n{HEX}\n"),
        format!("tresor-root-key v1 \n{HEX}\n"),
        format!(" tresor-root-key v1\n{HEX}\n"),
        format!("\ntresor-root-key v1\n{HEX}\n"),
        format!("tresor-root-key v1\r\n{HEX}\r\n"),
        format!("tresor-root-key v1\n{HEX}\r\n"),
        format!("{HEX}\n"),
        format!("tresor-root-key v1\n{}\n", &HEX[..62]),
        format!("tresor-root-key v1\n{}\n", &HEX[..63]),
        format!("tresor-root-key v1\n{HEX}00\n"),
        format!("tresor-root-key v1\n{upper}\n"),
        format!("tresor-root-key v1\n{}g\n", &HEX[..63]),
        format!("tresor-root-key v1\n {}\n", &HEX[..63]),
        format!("tresor-root-key v1\n{HEX} \n"),
        format!("tresor-root-key v1\n{HEX}\n\n"),
        format!("tresor-root-key v1\n{HEX}\nextra\n"),
        format!("tresor-root-key v1\n{HEX}\n{HEX}\n"),
        format!("tresor-root-key v1\n\n{HEX}\n"),
        format!("tresor-root-key v1\n{}é\n", &HEX[..62]),
    ];
    for c in &cases {
        match RootKey::from_file_contents(c) {
            Err(e @ CryptoError::InvalidRootKeyFile(_)) => {
                let msg = e.to_string();
                let dbg = format!("{e:?}");
                for probe in [&HEX[..16], &HEX[16..32], &HEX[32..48], &upper[..16]] {
                    assert!(!msg.contains(probe) && !dbg.contains(probe), "{msg}");
                }
            }
            other => panic!("{c:?} gave {other:?}"),
        }
    }
}

#[test]
fn check_value_shape_and_distinctness() {
    let a = RootKey::generate().unwrap();
    let b = RootKey::generate().unwrap();
    let cv = a.check_value();
    assert_eq!(cv.len(), 32);
    assert!(cv.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    assert_eq!(cv, a.check_value());
    assert_ne!(cv, b.check_value());
    // The check value is not the key itself.
    assert!(!a.to_file_contents().contains(&cv));
}

proptest! {
    #[test]
    fn prop_wrap_round_trip(
        purpose in prop::collection::vec(any::<u8>(), 0..64),
        plaintext in prop::collection::vec(any::<u8>(), 0..=4096),
    ) {
        let root = RootKey::generate().unwrap();
        let w = root.wrap(&purpose, &plaintext).unwrap();
        prop_assert_eq!(w.len(), plaintext.len() + RootKey::WRAP_OVERHEAD);
        let pt = root.unwrap(&purpose, &w).unwrap();
        prop_assert_eq!(pt.expose(), plaintext.as_slice());
        let mut other = purpose.clone();
        other.push(0);
        prop_assert!(is_invalid(root.unwrap(&other, &w)));
    }

    #[test]
    fn prop_arbitrary_file_contents_never_panic(s in "\\PC{0,100}") {
        let _ = RootKey::from_file_contents(&s);
    }
}
