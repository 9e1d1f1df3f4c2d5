//! Golden fixtures guarding the frozen formats. If any of these fail, the
//! blob layout, KDF info, AAD construction, wrap format, root key file format
//! or check value changed — that breaks every existing deployment. Fix the
//! code, never the fixture.

// Test code: panicking on unexpected values is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use common::{Json, load_fixture, parse_json};
use tresor_crypto::{
    CryptoError, KeyMaterialId, RootKey, SecretBytes, SymmetricKeyMaterial, blob,
    canonical_encryption_context,
};

struct BlobFixture {
    material: SymmetricKeyMaterial,
    key_id: uuid::Uuid,
    material_id: KeyMaterialId,
    ctx: BTreeMap<String, String>,
    plaintext: Vec<u8>,
    blob: Vec<u8>,
    json: Json,
}

fn blob_fixture() -> BlobFixture {
    let json = load_fixture("blob-v1.json");
    BlobFixture {
        material: SymmetricKeyMaterial::from_secret(SecretBytes::new(json.hex("material_hex")))
            .unwrap(),
        key_id: uuid::Uuid::parse_str(json.str("key_id")).unwrap(),
        material_id: KeyMaterialId::from_hex(json.str("material_id_hex")).unwrap(),
        ctx: json.string_map("context"),
        plaintext: json.hex("plaintext_hex"),
        blob: json.hex("blob_hex"),
        json,
    }
}

#[test]
fn golden_blob_v1_opens() {
    let f = blob_fixture();
    let pt = blob::open(&f.material, &f.blob, &f.ctx).unwrap();
    assert_eq!(pt.expose(), f.plaintext.as_slice());
}

#[test]
fn golden_blob_v1_header_and_length() {
    let f = blob_fixture();
    let h = blob::parse_header(&f.blob).unwrap();
    assert_eq!(h.version, blob::VERSION_1);
    assert_eq!(h.key_id, f.key_id);
    assert_eq!(h.material_id, f.material_id);
    assert_eq!(f.blob.len(), f.plaintext.len() + 109);
    assert_eq!(blob::OVERHEAD, 109);
    assert_eq!(blob::HEADER_LEN, 93);
    assert_eq!(blob::VERSION_1, 0x01);
}

#[test]
fn golden_blob_v1_context_encoding() {
    let f = blob_fixture();
    assert_eq!(
        hex::encode(canonical_encryption_context(&f.ctx)),
        f.json.str("context_canonical_hex")
    );
}

#[test]
fn golden_blob_v1_rejects_other_context() {
    let f = blob_fixture();
    let mut ctx = f.ctx.clone();
    ctx.insert("purpose".into(), "Golden test".into());
    assert!(matches!(
        blob::open(&f.material, &f.blob, &ctx),
        Err(CryptoError::InvalidCiphertext)
    ));
    assert!(matches!(
        blob::open(&f.material, &f.blob, &BTreeMap::new()),
        Err(CryptoError::InvalidCiphertext)
    ));
}

/// Decrypts the fixture with raw aws-lc-rs primitives following only the
/// documented layout, so the docs, the fixture and the code agree.
#[test]
fn golden_blob_v1_matches_documented_layout() {
    let f = blob_fixture();
    let b = &f.blob;
    assert_eq!(b[0], 0x01);
    assert_eq!(&b[1..17], f.key_id.as_bytes());
    assert_eq!(&b[17..49], &f.material_id.0);
    let salt = &b[49..81];
    let nonce = &b[81..93];

    let mut data_key = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt)
        .extract(f.material.expose())
        .expand(&[b"tresor kms ciphertext v1"], hkdf::HKDF_SHA256)
        .unwrap()
        .fill(&mut data_key)
        .unwrap();

    let mut aad = b[..93].to_vec();
    aad.extend_from_slice(&canonical_encryption_context(&f.ctx));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).unwrap());
    let mut in_out = b[93..].to_vec();
    let pt = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).unwrap(),
            Aad::from(&aad),
            &mut in_out,
        )
        .unwrap();
    assert_eq!(pt, f.plaintext.as_slice());
}

struct WrapFixture {
    root: RootKey,
    json: Json,
}

fn wrap_fixture() -> WrapFixture {
    let json = load_fixture("root-key-wrap-v1.json");
    WrapFixture {
        root: RootKey::from_file_contents(json.str("root_key_file")).unwrap(),
        json,
    }
}

#[test]
fn golden_root_key_file_and_check_value() {
    let f = wrap_fixture();
    assert_eq!(f.root.check_value(), f.json.str("check_value"));
    assert_eq!(f.root.check_value().len(), 32);
    assert_eq!(
        f.root.to_file_contents().as_str(),
        f.json.str("root_key_file")
    );
    let without_newline = f.json.str("root_key_file").trim_end_matches('\n');
    assert_eq!(
        RootKey::from_file_contents(without_newline)
            .unwrap()
            .check_value(),
        f.json.str("check_value")
    );
}

#[test]
fn golden_root_key_unwraps() {
    let f = wrap_fixture();
    let pt = f
        .root
        .unwrap(&f.json.hex("purpose_hex"), &f.json.hex("wrapped_hex"))
        .unwrap();
    assert_eq!(pt.expose(), f.json.hex("plaintext_hex").as_slice());
    // The purpose is bound.
    let mut purpose = f.json.hex("purpose_hex");
    purpose.pop();
    assert!(matches!(
        f.root.unwrap(&purpose, &f.json.hex("wrapped_hex")),
        Err(CryptoError::InvalidCiphertext)
    ));
}

/// Independent check of the documented wrap format and check value.
#[test]
fn golden_root_key_matches_documented_format() {
    let f = wrap_fixture();
    let root = f.json.hex("root_key_hex");
    let w = f.json.hex("wrapped_hex");
    assert_eq!(w[0], 0x01);
    assert_eq!(w.len(), 1 + 12 + f.json.hex("plaintext_hex").len() + 16);
    let mut aad = b"tresor-wrap-v1\0".to_vec();
    aad.extend_from_slice(&f.json.hex("purpose_hex"));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &root).unwrap());
    let mut in_out = w[13..].to_vec();
    let pt = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(&w[1..13]).unwrap(),
            Aad::from(&aad),
            &mut in_out,
        )
        .unwrap();
    assert_eq!(pt, f.json.hex("plaintext_hex").as_slice());

    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &root),
        b"tresor root key check v1",
    );
    assert_eq!(hex::encode(&mac.as_ref()[..16]), f.json.str("check_value"));
    assert_eq!(
        f.json.str("root_key_file"),
        format!("tresor-root-key v1\n{}\n", f.json.str("root_key_hex"))
    );
}

#[test]
fn fixture_json_reader_works() {
    let v = parse_json(r#" { "a": "x\ny\u0000", "b": { "c": "" } } "#);
    assert_eq!(v.str("a"), "x\ny\0");
    assert_eq!(
        v.string_map("b"),
        BTreeMap::from([("c".to_owned(), String::new())])
    );
}
