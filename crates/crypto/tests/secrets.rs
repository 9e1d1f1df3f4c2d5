//! Secret types: redaction, zeroizing wrappers, helpers.

// Test code: panicking on unexpected values is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_crypto::{
    CryptoError, KeyMaterialId, RootKey, SecretBytes, SymmetricKeyMaterial, ct_eq, random_array,
    random_bytes,
};

const KEY_HEX: &str = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210";

fn assert_redacted(debug: &str, secret: &[u8]) {
    let hex_lower = hex::encode(secret);
    let hex_upper = hex_lower.to_uppercase();
    let decimal = format!("{:?}", secret);
    for probe in [&hex_lower[..8], &hex_upper[..8]] {
        assert!(!debug.contains(probe), "{debug} leaks {probe}");
    }
    assert!(!debug.contains(&decimal[1..decimal.len() - 1]), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
}

#[test]
fn secret_bytes_debug_is_redacted() {
    let raw = hex::decode(KEY_HEX).unwrap();
    let s = SecretBytes::new(raw.clone());
    assert_eq!(format!("{s:?}"), "SecretBytes([REDACTED; 32])");
    assert_redacted(&format!("{s:?}"), &raw);
    assert_redacted(&format!("{s:#?}"), &raw);
    assert_redacted(&format!("{:?}", Some(s.clone())), &raw);
    let r: Result<SecretBytes, CryptoError> = Ok(s);
    assert_redacted(&format!("{r:?}"), &raw);
}

#[test]
fn root_key_debug_is_redacted() {
    let root = RootKey::from_file_contents(&format!("tresor-root-key v1\n{KEY_HEX}\n")).unwrap();
    let raw = hex::decode(KEY_HEX).unwrap();
    assert_redacted(&format!("{root:?}"), &raw);
    assert_redacted(&format!("{root:#?}"), &raw);
    assert_eq!(format!("{root:?}"), "RootKey([REDACTED; 32])");
}

#[test]
fn symmetric_key_material_debug_is_redacted() {
    let raw = hex::decode(KEY_HEX).unwrap();
    let m = SymmetricKeyMaterial::from_secret(SecretBytes::new(raw.clone())).unwrap();
    assert_eq!(format!("{m:?}"), "SymmetricKeyMaterial([REDACTED; 32])");
    assert_redacted(&format!("{m:#?}"), &raw);
    let g = SymmetricKeyMaterial::generate().unwrap();
    assert_redacted(&format!("{g:?}"), g.expose());
}

#[test]
fn secret_bytes_accessors() {
    let s = SecretBytes::new(vec![1, 2, 3]);
    assert_eq!(s.expose(), &[1, 2, 3]);
    assert_eq!(s.len(), 3);
    assert!(!s.is_empty());
    assert!(SecretBytes::new(Vec::new()).is_empty());
    let c = s.clone();
    assert_eq!(c.expose(), s.expose());
}

#[test]
fn key_material_length_is_enforced() {
    for n in [0usize, 1, 16, 31, 33, 64] {
        assert!(matches!(
            SymmetricKeyMaterial::from_secret(SecretBytes::new(vec![0; n])),
            Err(CryptoError::InvalidKeyMaterial)
        ));
    }
    let m = SymmetricKeyMaterial::from_secret(SecretBytes::new(vec![5; 32])).unwrap();
    assert_eq!(m.expose(), &[5; 32]);
    let a = SymmetricKeyMaterial::generate().unwrap();
    let b = SymmetricKeyMaterial::generate().unwrap();
    assert_eq!(a.expose().len(), 32);
    assert_ne!(a.expose(), b.expose());
}

#[test]
fn randomness() {
    let a = random_bytes(32).unwrap();
    let b = random_bytes(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a.expose(), b.expose());
    assert!(random_bytes(0).unwrap().is_empty());
    let x: [u8; 16] = random_array().unwrap();
    let y: [u8; 16] = random_array().unwrap();
    assert_ne!(x, y);
    let _: [u8; 0] = random_array().unwrap();
}

#[test]
fn constant_time_eq() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(ct_eq(b"", b""));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(!ct_eq(b"", b"a"));
}

#[test]
fn key_material_id_hex() {
    let id = KeyMaterialId::from_hex(KEY_HEX).unwrap();
    assert_eq!(id.to_hex(), KEY_HEX);
    assert_eq!(id.to_string(), KEY_HEX);
    assert_eq!(id.0[..4], [0x00, 0x11, 0x22, 0x33]);
    let r = KeyMaterialId::random().unwrap();
    assert_eq!(KeyMaterialId::from_hex(&r.to_hex()), Some(r));
    assert_ne!(r, KeyMaterialId::random().unwrap());
    for bad in [
        "",
        &KEY_HEX[..62],
        &KEY_HEX[..63],
        &format!("{KEY_HEX}00"),
        &KEY_HEX.to_uppercase(),
        &format!("{}g", &KEY_HEX[..63]),
        &format!(" {}", &KEY_HEX[..63]),
        &format!("{}é", &KEY_HEX[..62]),
    ] {
        assert_eq!(KeyMaterialId::from_hex(bad), None, "{bad:?}");
    }
}

#[test]
fn error_display_is_generic() {
    assert_eq!(
        CryptoError::InvalidCiphertext.to_string(),
        "invalid ciphertext"
    );
    assert_eq!(
        CryptoError::InvalidKeyMaterial.to_string(),
        "invalid key material"
    );
}
