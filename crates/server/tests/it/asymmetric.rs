//! Asymmetric, HMAC and key agreement keys, end to end with aws-sdk-kms: CreateKey for every
//! KeySpec × KeyUsage, DescribeKey and GetPublicKey metadata, Sign/Verify with every signing
//! algorithm and message type, asymmetric Encrypt/Decrypt, GenerateMac/VerifyMac,
//! DeriveSharedSecret, GenerateDataKeyPair(+WithoutPlaintext), their errors, Wycheproof-style
//! negative cases, condition keys, audit records, restarts, interoperability with the `openssl`
//! command line tool (an implementation independent of Tresor's), and key generation off the
//! request path.

// CustomerMasterKeySpec is deprecated but still part of the responses checked here.
#![allow(deprecated)]

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, GrantOperation, KeyAgreementAlgorithmSpec,
    KeyMetadata, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};

use crate::common::{
    ACCOUNT, Server, audit_records, create_key, create_key_of, default_config, openssl, openssl_ok,
};
use crate::expect_err;

const DRY_RUN: &str = "The request would have succeeded, but the DryRun option is set.";

type Kms = aws_sdk_kms::Client;

fn arn(m: &KeyMetadata) -> String {
    m.arn().unwrap().to_owned()
}

/// Every KeySpec × KeyUsage pair Tresor creates.
fn all_combinations() -> Vec<(KeySpec, KeyUsageType)> {
    use KeySpec as S;
    use KeyUsageType as U;
    vec![
        (S::Rsa2048, U::EncryptDecrypt),
        (S::Rsa2048, U::SignVerify),
        (S::Rsa3072, U::EncryptDecrypt),
        (S::Rsa3072, U::SignVerify),
        (S::Rsa4096, U::EncryptDecrypt),
        (S::Rsa4096, U::SignVerify),
        (S::EccNistP256, U::SignVerify),
        (S::EccNistP256, U::KeyAgreement),
        (S::EccNistP384, U::SignVerify),
        (S::EccNistP384, U::KeyAgreement),
        (S::EccNistP521, U::SignVerify),
        (S::EccNistP521, U::KeyAgreement),
        (S::EccSecgP256K1, U::SignVerify),
        (S::EccNistEdwards25519, U::SignVerify),
        (S::MlDsa44, U::SignVerify),
        (S::MlDsa65, U::SignVerify),
        (S::MlDsa87, U::SignVerify),
        (S::Hmac224, U::GenerateVerifyMac),
        (S::Hmac256, U::GenerateVerifyMac),
        (S::Hmac384, U::GenerateVerifyMac),
        (S::Hmac512, U::GenerateVerifyMac),
    ]
}

fn rsa_signing_algorithms() -> Vec<SigningAlgorithmSpec> {
    use SigningAlgorithmSpec as A;
    vec![
        A::RsassaPkcs1V15Sha256,
        A::RsassaPkcs1V15Sha384,
        A::RsassaPkcs1V15Sha512,
        A::RsassaPssSha256,
        A::RsassaPssSha384,
        A::RsassaPssSha512,
    ]
}

/// The signing algorithms of a SIGN_VERIFY key spec, in AWS's order.
fn signing_algorithms(spec: &KeySpec) -> Vec<SigningAlgorithmSpec> {
    use SigningAlgorithmSpec as A;
    match spec {
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => rsa_signing_algorithms(),
        KeySpec::EccNistP256 | KeySpec::EccSecgP256K1 => vec![A::EcdsaSha256],
        KeySpec::EccNistP384 => vec![A::EcdsaSha384],
        KeySpec::EccNistP521 => vec![A::EcdsaSha512],
        KeySpec::EccNistEdwards25519 => vec![A::Ed25519Sha512, A::Ed25519PhSha512],
        KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => vec![A::MlDsaShake256],
        other => panic!("{other:?} does not sign"),
    }
}

/// The OpenSSL digest name of an algorithm's hash (`None`: no DIGEST message type).
fn digest_name(alg: &SigningAlgorithmSpec) -> Option<&'static str> {
    let s = alg.as_str();
    if s == "ED25519_SHA_512" || s == "ML_DSA_SHAKE_256" {
        None
    } else if s.ends_with("SHA_256") {
        Some("sha256")
    } else if s.ends_with("SHA_384") {
        Some("sha384")
    } else {
        Some("sha512")
    }
}

/// The message types an algorithm accepts.
fn message_types(alg: &SigningAlgorithmSpec) -> Vec<MessageType> {
    match alg {
        SigningAlgorithmSpec::Ed25519PhSha512 => vec![MessageType::Digest],
        a if digest_name(a).is_none() => vec![MessageType::Raw],
        _ => vec![MessageType::Raw, MessageType::Digest],
    }
}

/// A digest computed by OpenSSL (independent of Tresor).
fn openssl_digest(dir: &Path, name: &str, message: &[u8]) -> Vec<u8> {
    let path = dir.join("to-digest.bin");
    std::fs::write(&path, message).unwrap();
    openssl(
        dir,
        &["dgst", &format!("-{name}"), "-binary", "to-digest.bin"],
    )
}

/// `pub.pem` in `dir` from a DER SubjectPublicKeyInfo.
fn write_public_pem(dir: &Path, der: &[u8], name: &str) {
    std::fs::write(dir.join(format!("{name}.der")), der).unwrap();
    openssl(
        dir,
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            &format!("{name}.der"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// Whether OpenSSL accepts `signature` over `message` for `alg` with the public key in
/// `pub.pem` (RSA and ECDSA over the message, whatever MessageType Tresor signed with).
fn openssl_verifies(
    dir: &Path,
    alg: &SigningAlgorithmSpec,
    message: &[u8],
    signature: &[u8],
) -> bool {
    std::fs::write(dir.join("msg.bin"), message).unwrap();
    std::fs::write(dir.join("sig.bin"), signature).unwrap();
    let s = alg.as_str();
    if s == "ED25519_SHA_512" {
        return openssl_ok(
            dir,
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg.bin",
                "-sigfile", "sig.bin",
            ],
        );
    }
    let md = format!("-{}", digest_name(alg).unwrap());
    let mut args = vec![
        "dgst",
        md.as_str(),
        "-verify",
        "pub.pem",
        "-signature",
        "sig.bin",
    ];
    if s.starts_with("RSASSA_PSS") {
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ]);
    }
    args.push("msg.bin");
    openssl_ok(dir, &args)
}

async fn sign(
    kms: &Kms,
    key: &str,
    alg: &SigningAlgorithmSpec,
    mt: &MessageType,
    message: &[u8],
) -> Vec<u8> {
    let out = kms
        .sign()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(mt.clone())
        .signing_algorithm(alg.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("Sign {alg:?} {mt:?}: {e:?}"));
    assert_eq!(out.signing_algorithm(), Some(alg));
    out.signature.unwrap().into_inner()
}

async fn verify(
    kms: &Kms,
    key: &str,
    alg: &SigningAlgorithmSpec,
    mt: &MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<(), (String, String)> {
    match kms
        .verify()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(mt.clone())
        .signature(Blob::new(signature.to_vec()))
        .signing_algorithm(alg.clone())
        .send()
        .await
    {
        Ok(out) => {
            assert!(
                out.signature_valid(),
                "Verify answers only SignatureValid: true"
            );
            assert_eq!(out.signing_algorithm(), Some(alg));
            Ok(())
        }
        Err(e) => Err(crate::common::err_code(&e)),
    }
}

fn invalid_signature() -> Result<(), (String, String)> {
    Err(("KMSInvalidSignatureException".to_owned(), String::new()))
}

async fn get_public_key(kms: &Kms, key: &str) -> Vec<u8> {
    kms.get_public_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn create_describe_and_get_public_key_for_every_spec_and_usage() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    for (spec, usage) in all_combinations() {
        let created = create_key_of(&kms, spec.clone(), usage.clone()).await;
        let m = kms
            .describe_key()
            .key_id(created.key_id())
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        let what = format!("{spec:?} {usage:?}");
        for m in [&created, &m] {
            assert_eq!(m.key_spec(), Some(&spec), "{what}");
            assert_eq!(
                m.customer_master_key_spec().map(|s| s.as_str()),
                Some(spec.as_str()),
                "{what}"
            );
            assert_eq!(m.key_usage(), Some(&usage), "{what}");
            assert_eq!(m.key_state().map(|s| s.as_str()), Some("Enabled"));
            assert!(m.enabled());
            assert_eq!(m.origin().map(|o| o.as_str()), Some("AWS_KMS"));
            // Only rotatable (symmetric) keys report their key material.
            assert_eq!(m.current_key_material_id(), None, "{what}");
            let lists = [
                m.encryption_algorithms.is_some(),
                m.signing_algorithms.is_some(),
                m.mac_algorithms.is_some(),
                m.key_agreement_algorithms.is_some(),
            ];
            assert_eq!(lists.iter().filter(|x| **x).count(), 1, "{what}: {m:?}");
            match usage {
                KeyUsageType::EncryptDecrypt => assert_eq!(
                    m.encryption_algorithms(),
                    &[
                        EncryptionAlgorithmSpec::RsaesOaepSha1,
                        EncryptionAlgorithmSpec::RsaesOaepSha256
                    ]
                ),
                KeyUsageType::SignVerify => {
                    assert_eq!(m.signing_algorithms(), signing_algorithms(&spec).as_slice())
                }
                KeyUsageType::KeyAgreement => assert_eq!(
                    m.key_agreement_algorithms(),
                    &[KeyAgreementAlgorithmSpec::Ecdh]
                ),
                _ => {
                    let want = format!("HMAC_SHA_{}", &spec.as_str()[5..]);
                    assert_eq!(
                        m.mac_algorithms()
                            .iter()
                            .map(|a| a.as_str())
                            .collect::<Vec<_>>(),
                        vec![want.as_str()]
                    );
                }
            }
        }

        let r = kms.get_public_key().key_id(created.key_id()).send().await;
        if usage == KeyUsageType::GenerateVerifyMac {
            let (code, _) = expect_err!(r);
            assert_eq!(code, "UnsupportedOperationException", "{what}");
            continue;
        }
        let out = r.unwrap();
        assert_eq!(out.key_id(), Some(arn(&created).as_str()));
        assert_eq!(out.key_spec(), Some(&spec));
        assert_eq!(
            out.customer_master_key_spec().map(|s| s.as_str()),
            Some(spec.as_str())
        );
        assert_eq!(out.key_usage(), Some(&usage));
        let lists = [
            out.encryption_algorithms.is_some(),
            out.signing_algorithms.is_some(),
            out.key_agreement_algorithms.is_some(),
        ];
        assert_eq!(lists.iter().filter(|x| **x).count(), 1, "{what}: {out:?}");
        let der = out.public_key.unwrap().into_inner();
        // An independent parser names the algorithm and size.
        let want = match spec.as_str() {
            "RSA_2048" => Some("Public-Key: (2048 bit)"),
            "RSA_3072" => Some("Public-Key: (3072 bit)"),
            "RSA_4096" => Some("Public-Key: (4096 bit)"),
            "ECC_NIST_P256" => Some("prime256v1"),
            "ECC_NIST_P384" => Some("secp384r1"),
            "ECC_NIST_P521" => Some("secp521r1"),
            "ECC_SECG_P256K1" => Some("secp256k1"),
            "ECC_NIST_EDWARDS25519" => Some("ED25519 Public-Key"),
            _ => None,
        };
        match want {
            Some(want) => {
                std::fs::write(dir.path().join("k.der"), &der).unwrap();
                let text = openssl(
                    dir.path(),
                    &[
                        "pkey", "-pubin", "-inform", "DER", "-in", "k.der", "-text", "-noout",
                    ],
                );
                let text = String::from_utf8_lossy(&text);
                assert!(text.contains(want), "{what}: {text}");
            }
            None => {
                // ML-DSA SubjectPublicKeyInfo: 22 bytes of DER around the raw key (FIPS 204 sizes).
                let raw = match spec.as_str() {
                    "ML_DSA_44" => 1312,
                    "ML_DSA_65" => 1952,
                    _ => 2592,
                };
                assert_eq!(der.len(), raw + 22, "{what}");
            }
        }
    }
    // Symmetric keys have no public key.
    let sym = create_key(&kms).await;
    let (code, msg) = expect_err!(kms.get_public_key().key_id(sym.key_id()).send().await);
    assert_eq!(code, "UnsupportedOperationException");
    assert!(msg.contains(sym.key_id()), "{msg}");
    // Asymmetric and HMAC keys do not rotate.
    let ed = create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let (code, _) = expect_err!(kms.enable_key_rotation().key_id(ed.key_id()).send().await);
    assert_eq!(code, "UnsupportedOperationException");
}

#[tokio::test]
async fn sign_and_verify_every_algorithm_and_message_type_with_openssl_interop() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256K1,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
    ];
    let message = b"Tresor signs what it is given, 4096 bytes at most.".to_vec();
    let mut combinations = 0;
    for spec in specs {
        let key = create_key_of(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let key_arn = arn(&key);
        let public = get_public_key(&kms, &key_arn).await;
        let openssl_knows = !spec.as_str().starts_with("ML_DSA");
        if openssl_knows {
            write_public_pem(dir.path(), &public, "pub");
        }
        for alg in signing_algorithms(&spec) {
            for mt in message_types(&alg) {
                let what = format!("{spec:?} {alg:?} {mt:?}");
                let input = match mt {
                    MessageType::Digest => {
                        openssl_digest(dir.path(), digest_name(&alg).unwrap(), &message)
                    }
                    _ => message.clone(),
                };
                let sig = sign(&kms, key.key_id(), &alg, &mt, &input).await;
                verify(&kms, &key_arn, &alg, &mt, &input, &sig)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                // A signature made over the digest verifies over the message, and vice versa.
                if digest_name(&alg).is_some() && alg.as_str() != "ED25519_PH_SHA_512" {
                    let (other_mt, other_input) = match mt {
                        MessageType::Digest => (MessageType::Raw, message.clone()),
                        _ => (
                            MessageType::Digest,
                            openssl_digest(dir.path(), digest_name(&alg).unwrap(), &message),
                        ),
                    };
                    verify(&kms, &key_arn, &alg, &other_mt, &other_input, &sig)
                        .await
                        .unwrap_or_else(|e| panic!("{what} as {other_mt:?}: {e:?}"));
                }
                // Independent verification with the public key from GetPublicKey.
                if openssl_knows && alg.as_str() != "ED25519_PH_SHA_512" {
                    assert!(
                        openssl_verifies(dir.path(), &alg, &message, &sig),
                        "openssl rejects {what}"
                    );
                    let mut tampered = message.clone();
                    tampered[0] ^= 1;
                    assert!(
                        !openssl_verifies(dir.path(), &alg, &tampered, &sig),
                        "openssl accepts a tampered message for {what}"
                    );
                }
                // ECDSA signatures are DER: SEQUENCE { r INTEGER, s INTEGER }.
                if alg.as_str().starts_with("ECDSA") {
                    assert_eq!(sig[0], 0x30, "{what}");
                }
                if alg.as_str().starts_with("RSASSA") {
                    let bits: usize = spec.as_str()[4..].parse().unwrap();
                    assert_eq!(sig.len(), bits / 8, "{what}");
                }
                if alg.as_str().starts_with("ED25519") {
                    assert_eq!(sig.len(), 64, "{what}");
                }
                combinations += 1;
            }
        }
    }
    // 3 RSA sizes × 6 algorithms × 2 message types, 4 ECDSA curves × 2, Ed25519 RAW + PH
    // DIGEST, 3 ML-DSA RAW.
    assert_eq!(combinations, 36 + 8 + 2 + 3);
}

#[tokio::test]
async fn verify_rejects_wycheproof_style_tampering() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256K1,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
    ];
    let message = b"a message of exactly thirty-two!".to_vec();
    assert_eq!(message.len(), 32);
    for spec in specs {
        let key = create_key_of(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let other = create_key_of(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let (k, o) = (arn(&key), arn(&other));
        for alg in signing_algorithms(&spec) {
            for mt in message_types(&alg) {
                let what = format!("{spec:?} {alg:?} {mt:?}");
                let input = match mt {
                    MessageType::Digest => {
                        openssl_digest(dir.path(), digest_name(&alg).unwrap(), &message)
                    }
                    _ => message.clone(),
                };
                let sig = sign(&kms, &k, &alg, &mt, &input).await;
                assert_eq!(verify(&kms, &k, &alg, &mt, &input, &sig).await, Ok(()));
                // Another key of the same spec.
                assert_eq!(
                    verify(&kms, &o, &alg, &mt, &input, &sig).await,
                    invalid_signature(),
                    "{what}: wrong key"
                );
                // One flipped bit in the message, at the start, middle and end.
                for i in [0, input.len() / 2, input.len() - 1] {
                    let mut m = input.clone();
                    m[i] ^= 0x01;
                    assert_eq!(
                        verify(&kms, &k, &alg, &mt, &m, &sig).await,
                        invalid_signature(),
                        "{what}: message bit {i}"
                    );
                }
                // One flipped bit in the signature, at the start, middle and end.
                for i in [0, sig.len() / 2, sig.len() - 1] {
                    let mut s = sig.clone();
                    s[i] ^= 0x80;
                    assert_eq!(
                        verify(&kms, &k, &alg, &mt, &input, &s).await,
                        invalid_signature(),
                        "{what}: signature bit {i}"
                    );
                }
                // Truncated signatures, and one with a byte appended.
                for s in [&sig[..sig.len() - 1], &sig[..1]] {
                    assert_eq!(
                        verify(&kms, &k, &alg, &mt, &input, s).await,
                        invalid_signature(),
                        "{what}: truncated to {}",
                        s.len()
                    );
                }
                let mut longer = sig.clone();
                longer.push(0);
                assert_eq!(
                    verify(&kms, &k, &alg, &mt, &input, &longer).await,
                    invalid_signature(),
                    "{what}: appended byte"
                );
            }
        }
        // The wrong algorithm (same key) never verifies.
        let wrong: Vec<(
            SigningAlgorithmSpec,
            MessageType,
            SigningAlgorithmSpec,
            MessageType,
        )> = match spec.as_str() {
            "RSA_2048" => vec![
                (
                    SigningAlgorithmSpec::RsassaPssSha256,
                    MessageType::Raw,
                    SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
                    MessageType::Raw,
                ),
                (
                    SigningAlgorithmSpec::RsassaPkcs1V15Sha256,
                    MessageType::Raw,
                    SigningAlgorithmSpec::RsassaPkcs1V15Sha384,
                    MessageType::Raw,
                ),
                (
                    SigningAlgorithmSpec::RsassaPssSha512,
                    MessageType::Raw,
                    SigningAlgorithmSpec::RsassaPssSha384,
                    MessageType::Raw,
                ),
            ],
            "ECC_NIST_EDWARDS25519" => vec![(
                SigningAlgorithmSpec::Ed25519Sha512,
                MessageType::Raw,
                SigningAlgorithmSpec::Ed25519PhSha512,
                MessageType::Digest,
            )],
            // The raw 32-byte message signed as a message is not a signature of that
            // value taken as a digest.
            "ECC_NIST_P256" | "ECC_SECG_P256K1" => vec![(
                SigningAlgorithmSpec::EcdsaSha256,
                MessageType::Raw,
                SigningAlgorithmSpec::EcdsaSha256,
                MessageType::Digest,
            )],
            _ => vec![],
        };
        for (sign_alg, sign_mt, verify_alg, verify_mt) in wrong {
            let sig = sign(&kms, &k, &sign_alg, &sign_mt, &message).await;
            let input = if verify_alg.as_str() == "ED25519_PH_SHA_512" {
                openssl_digest(dir.path(), "sha512", &message)
            } else {
                message.clone()
            };
            assert_eq!(
                verify(&kms, &k, &verify_alg, &verify_mt, &input, &sig).await,
                invalid_signature(),
                "{spec:?}: {sign_alg:?} verified as {verify_alg:?}"
            );
        }
    }
}

#[tokio::test]
async fn sign_and_verify_errors() {
    let server = Server::start();
    let kms = server.kms();
    let rsa = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let rsa_enc = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let p256 = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let p256_ka = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let ed = create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let ml = create_key_of(&kms, KeySpec::MlDsa44, KeyUsageType::SignVerify).await;
    let hmac = create_key_of(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let sym = create_key(&kms).await;
    let sign_req = |key: &KeyMetadata, alg: SigningAlgorithmSpec, mt: MessageType, m: &[u8]| {
        kms.sign()
            .key_id(key.key_id())
            .message(Blob::new(m.to_vec()))
            .message_type(mt)
            .signing_algorithm(alg)
    };
    let verify_req = |key: &KeyMetadata, alg: SigningAlgorithmSpec, mt: MessageType, m: &[u8]| {
        kms.verify()
            .key_id(key.key_id())
            .message(Blob::new(m.to_vec()))
            .message_type(mt)
            .signature(Blob::new(vec![0u8; 64]))
            .signing_algorithm(alg)
    };

    // Wrong key usage.
    for (key, usage) in [
        (&sym, "ENCRYPT_DECRYPT"),
        (&rsa_enc, "ENCRYPT_DECRYPT"),
        (&hmac, "GENERATE_VERIFY_MAC"),
        (&p256_ka, "KEY_AGREEMENT"),
    ] {
        let (code, msg) = expect_err!(
            sign_req(
                key,
                SigningAlgorithmSpec::EcdsaSha256,
                MessageType::Raw,
                b"m"
            )
            .send()
            .await
        );
        assert_eq!(code, "InvalidKeyUsageException");
        assert_eq!(
            msg,
            format!(
                "{} key usage is {usage} which is not valid for Sign.",
                arn(key)
            )
        );
        let (code, msg) = expect_err!(
            verify_req(
                key,
                SigningAlgorithmSpec::EcdsaSha256,
                MessageType::Raw,
                b"m"
            )
            .send()
            .await
        );
        assert_eq!(code, "InvalidKeyUsageException");
        assert_eq!(
            msg,
            format!(
                "{} key usage is {usage} which is not valid for Verify.",
                arn(key)
            )
        );
    }

    // An algorithm the key spec does not support.
    for (key, alg) in [
        (&p256, SigningAlgorithmSpec::EcdsaSha384),
        (&p256, SigningAlgorithmSpec::RsassaPssSha256),
        (&rsa, SigningAlgorithmSpec::EcdsaSha256),
        (&ed, SigningAlgorithmSpec::EcdsaSha512),
        (&ml, SigningAlgorithmSpec::Ed25519Sha512),
        (&rsa, SigningAlgorithmSpec::Sm2Dsa),
    ] {
        let (code, msg) = expect_err!(
            sign_req(key, alg.clone(), MessageType::Raw, b"m")
                .send()
                .await
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            (
                "InvalidKeyUsageException",
                format!(
                    "Algorithm {} is incompatible with key spec {}.",
                    alg.as_str(),
                    key.key_spec().unwrap().as_str()
                )
                .as_str()
            )
        );
    }

    // DIGEST messages must have the hash's length.
    for (key, alg, good) in [
        (&rsa, SigningAlgorithmSpec::RsassaPssSha256, 32),
        (&rsa, SigningAlgorithmSpec::RsassaPkcs1V15Sha384, 48),
        (&rsa, SigningAlgorithmSpec::RsassaPssSha512, 64),
        (&p256, SigningAlgorithmSpec::EcdsaSha256, 32),
        (&ed, SigningAlgorithmSpec::Ed25519PhSha512, 64),
    ] {
        for len in [1, good - 1, good + 1] {
            let want = (
                "ValidationException".to_owned(),
                format!("Digest is invalid length for algorithm {}.", alg.as_str()),
            );
            let r = expect_err!(
                sign_req(key, alg.clone(), MessageType::Digest, &vec![7u8; len])
                    .send()
                    .await
            );
            assert_eq!(r, want, "Sign {alg:?} with {len} bytes");
            let r = expect_err!(
                verify_req(key, alg.clone(), MessageType::Digest, &vec![7u8; len])
                    .send()
                    .await
            );
            assert_eq!(r, want, "Verify {alg:?} with {len} bytes");
        }
    }

    // Ed25519: pure signs RAW only, prehash DIGEST only; ML-DSA takes no DIGEST.
    for (key, alg, mt) in [
        (
            &ed,
            SigningAlgorithmSpec::Ed25519Sha512,
            MessageType::Digest,
        ),
        (&ed, SigningAlgorithmSpec::Ed25519PhSha512, MessageType::Raw),
        (
            &ml,
            SigningAlgorithmSpec::MlDsaShake256,
            MessageType::Digest,
        ),
        (
            &rsa,
            SigningAlgorithmSpec::RsassaPssSha256,
            MessageType::ExternalMu,
        ),
    ] {
        let (code, msg) = expect_err!(
            sign_req(key, alg.clone(), mt.clone(), &[1u8; 64])
                .send()
                .await
        );
        assert_eq!(code, "ValidationException", "{alg:?} {mt:?}");
        assert!(msg.contains(alg.as_str()), "{msg}");
        let (code, _) = expect_err!(
            verify_req(key, alg.clone(), mt.clone(), &[1u8; 64])
                .send()
                .await
        );
        assert_eq!(code, "ValidationException", "{alg:?} {mt:?}");
    }
    // AWS-DEVIATION: ML-DSA EXTERNAL_MU is not supported (aws-lc-rs has no external-mu API).
    let (code, _) = expect_err!(
        sign_req(
            &ml,
            SigningAlgorithmSpec::MlDsaShake256,
            MessageType::ExternalMu,
            &[1u8; 64]
        )
        .send()
        .await
    );
    assert_eq!(code, "UnsupportedOperationException");

    // Message size limits come from the model.
    let (code, _) = expect_err!(
        sign_req(
            &rsa,
            SigningAlgorithmSpec::RsassaPssSha256,
            MessageType::Raw,
            &[0u8; 4097]
        )
        .send()
        .await
    );
    assert_eq!(code, "ValidationException");
    let sig = sign(
        &kms,
        rsa.key_id(),
        &SigningAlgorithmSpec::RsassaPssSha256,
        &MessageType::Raw,
        &[0u8; 4096],
    )
    .await;
    assert_eq!(sig.len(), 256);

    // DryRun: fully checked, not performed.
    let r = expect_err!(
        sign_req(
            &p256,
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            b"m"
        )
        .dry_run(true)
        .send()
        .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
    let r = expect_err!(
        verify_req(
            &p256,
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            b"m"
        )
        .dry_run(true)
        .send()
        .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );

    // Key states: disabled, then pending deletion.
    kms.disable_key()
        .key_id(p256.key_id())
        .send()
        .await
        .unwrap();
    let disabled = (
        "DisabledException".to_owned(),
        format!("{} is disabled.", arn(&p256)),
    );
    let r = expect_err!(
        sign_req(
            &p256,
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            b"m"
        )
        .send()
        .await
    );
    assert_eq!(r, disabled);
    let r = expect_err!(
        verify_req(
            &p256,
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            b"m"
        )
        .send()
        .await
    );
    assert_eq!(r, disabled);
    let r = expect_err!(kms.get_public_key().key_id(p256.key_id()).send().await);
    assert_eq!(r, disabled);
    kms.schedule_key_deletion()
        .key_id(p256.key_id())
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let pending = (
        "KMSInvalidStateException".to_owned(),
        format!("{} is pending deletion.", arn(&p256)),
    );
    let r = expect_err!(
        sign_req(
            &p256,
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            b"m"
        )
        .send()
        .await
    );
    assert_eq!(r, pending);
    let r = expect_err!(kms.get_public_key().key_id(p256.key_id()).send().await);
    assert_eq!(r, pending);
    // DescribeKey still works in every state.
    kms.describe_key()
        .key_id(p256.key_id())
        .send()
        .await
        .unwrap();
}

/// Runs `openssl pkeyutl -encrypt` with RSA-OAEP (`md` for OAEP and MGF1).
fn openssl_oaep_encrypt(dir: &Path, md: &str, plaintext: &[u8]) -> Vec<u8> {
    std::fs::write(dir.join("pt.bin"), plaintext).unwrap();
    openssl(
        dir,
        &[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            "pub.pem",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &format!("rsa_oaep_md:{md}"),
            "-pkeyopt",
            &format!("rsa_mgf1_md:{md}"),
            "-in",
            "pt.bin",
        ],
    )
}

async fn rsa_decrypt(
    kms: &Kms,
    key: &str,
    alg: Option<EncryptionAlgorithmSpec>,
    ciphertext: &[u8],
) -> Result<Vec<u8>, (String, String)> {
    match kms
        .decrypt()
        .key_id(key)
        .set_encryption_algorithm(alg.clone())
        .ciphertext_blob(Blob::new(ciphertext.to_vec()))
        .send()
        .await
    {
        Ok(out) => {
            assert_eq!(out.key_id(), Some(key));
            assert_eq!(out.encryption_algorithm(), alg.as_ref());
            assert_eq!(
                out.key_material_id(),
                None,
                "asymmetric keys report no material"
            );
            Ok(out.plaintext.unwrap().into_inner())
        }
        Err(e) => Err(crate::common::err_code(&e)),
    }
}

#[tokio::test]
async fn asymmetric_encrypt_decrypt_limits_errors_and_openssl_interop() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    let oaep = [
        (EncryptionAlgorithmSpec::RsaesOaepSha1, "sha1", 42usize),
        (EncryptionAlgorithmSpec::RsaesOaepSha256, "sha256", 66usize),
    ];
    for (spec, bits) in [
        (KeySpec::Rsa2048, 2048usize),
        (KeySpec::Rsa3072, 3072),
        (KeySpec::Rsa4096, 4096),
    ] {
        let key = create_key_of(&kms, spec.clone(), KeyUsageType::EncryptDecrypt).await;
        let key_arn = arn(&key);
        write_public_pem(dir.path(), &get_public_key(&kms, &key_arn).await, "pub");
        for (alg, md, overhead) in &oaep {
            let max = bits / 8 - overhead;
            // The largest plaintext the spec and algorithm allow round-trips.
            let pt: Vec<u8> = (0..max).map(|i| i as u8).collect();
            let out = kms
                .encrypt()
                .key_id(key.key_id())
                .plaintext(Blob::new(pt.clone()))
                .encryption_algorithm(alg.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(out.key_id(), Some(key_arn.as_str()));
            assert_eq!(out.encryption_algorithm(), Some(alg));
            let ct = out.ciphertext_blob.unwrap().into_inner();
            assert_eq!(ct.len(), bits / 8, "raw OAEP output, no header");
            assert_eq!(
                rsa_decrypt(&kms, &key_arn, Some(alg.clone()), &ct)
                    .await
                    .unwrap(),
                pt
            );
            // One byte more is refused with AWS's message.
            let (code, msg) = expect_err!(
                kms.encrypt()
                    .key_id(key.key_id())
                    .plaintext(Blob::new(vec![1u8; max + 1]))
                    .encryption_algorithm(alg.clone())
                    .send()
                    .await
            );
            assert_eq!(
                (code.as_str(), msg),
                (
                    "ValidationException",
                    format!(
                        "Algorithm {} and key spec {} cannot encrypt data larger than {max} bytes.",
                        alg.as_str(),
                        spec.as_str()
                    )
                )
            );
            // OpenSSL encrypts with the public key; Tresor decrypts.
            let external = openssl_oaep_encrypt(dir.path(), md, b"from openssl");
            assert_eq!(
                rsa_decrypt(&kms, &key_arn, Some(alg.clone()), &external)
                    .await
                    .unwrap(),
                b"from openssl"
            );
            // The other OAEP hash, tampering and truncation fail opaquely.
            let other = if alg == &EncryptionAlgorithmSpec::RsaesOaepSha1 {
                EncryptionAlgorithmSpec::RsaesOaepSha256
            } else {
                EncryptionAlgorithmSpec::RsaesOaepSha1
            };
            let invalid = Err(("InvalidCiphertextException".to_owned(), String::new()));
            assert_eq!(
                rsa_decrypt(&kms, &key_arn, Some(other), &external).await,
                invalid
            );
            let mut bad = external.clone();
            bad[5] ^= 1;
            assert_eq!(
                rsa_decrypt(&kms, &key_arn, Some(alg.clone()), &bad).await,
                invalid
            );
            assert_eq!(
                rsa_decrypt(&kms, &key_arn, Some(alg.clone()), &external[1..]).await,
                invalid
            );
        }
    }
    // The limits above are AWS's table: 214/190, 342/318 and 470/446 bytes.
    assert!(
        [(2048, 214, 190), (3072, 342, 318), (4096, 470, 446)]
            .iter()
            .all(|(bits, sha1, sha256)| bits / 8 - 42 == *sha1 && bits / 8 - 66 == *sha256)
    );

    let key = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let other = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let key_arn = arn(&key);
    // The exact AWS message for the smallest key.
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(&key_arn)
            .plaintext(Blob::new(vec![0u8; 191]))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."
        )
    );
    // EncryptionAlgorithm is required for asymmetric keys (the default is symmetric).
    let incompatible = (
        "InvalidKeyUsageException".to_owned(),
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.".to_owned(),
    );
    let r = expect_err!(
        kms.encrypt()
            .key_id(&key_arn)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
    );
    assert_eq!(r, incompatible);
    let ct = kms
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new(b"secret".to_vec()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    assert_eq!(
        rsa_decrypt(&kms, &key_arn, None, &ct).await,
        Err(incompatible)
    );
    // Without KeyId the ciphertext names no key: not decryptable. (It is read as a symmetric
    // ciphertext: one RSA ciphertext in 256 starts with the v1 version byte and reads as one of
    // a key that does not exist, AWS's AccessDeniedException; docs/compat.md.)
    let (code, msg) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    if ct[0] == 0x01 {
        assert_eq!(code, "AccessDeniedException");
        assert!(
            msg.starts_with("The ciphertext refers to a customer master key that does not exist"),
            "{msg}"
        );
    } else {
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("InvalidCiphertextException", "")
        );
    }
    // Another key cannot decrypt it.
    assert_eq!(
        rsa_decrypt(
            &kms,
            &arn(&other),
            Some(EncryptionAlgorithmSpec::RsaesOaepSha256),
            &ct
        )
        .await,
        Err(("InvalidCiphertextException".to_owned(), String::new()))
    );
    // No encryption context with asymmetric keys.
    let (code, _) = expect_err!(
        kms.encrypt()
            .key_id(&key_arn)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .encryption_context("a", "b")
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = expect_err!(
        kms.decrypt()
            .key_id(&key_arn)
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .encryption_context("a", "b")
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    // DryRun, also with IGNORE_CIPHERTEXT.
    let r = expect_err!(
        kms.decrypt()
            .key_id(&key_arn)
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
    let r = expect_err!(
        kms.decrypt()
            .key_id(&key_arn)
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .dry_run(true)
            .dry_run_modifiers(aws_sdk_kms::types::DryRunModifierType::IgnoreCiphertext)
            .send()
            .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
    let r = expect_err!(
        kms.encrypt()
            .key_id(&key_arn)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
    // RSA signing keys, HMAC keys and symmetric algorithms on the wrong keys.
    let signing = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::SignVerify).await;
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(signing.key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg),
        (
            "InvalidKeyUsageException",
            format!(
                "{} key usage is SIGN_VERIFY which is not valid for Encrypt.",
                arn(&signing)
            )
        )
    );
    let (code, msg) = expect_err!(
        kms.decrypt()
            .key_id(signing.key_id())
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg),
        (
            "InvalidKeyUsageException",
            format!(
                "{} key usage is SIGN_VERIFY which is not valid for Decrypt.",
                arn(&signing)
            )
        )
    );
    let sym = create_key(&kms).await;
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(sym.key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "InvalidKeyUsageException",
            "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT."
        )
    );
    // Symmetric ciphertexts still decrypt with KeyId and the default algorithm.
    let sym_ct = kms
        .encrypt()
        .key_id(sym.key_id())
        .plaintext(Blob::new(b"sym".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let out = kms
        .decrypt()
        .key_id(sym.key_id())
        .ciphertext_blob(sym_ct)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext.unwrap().into_inner(), b"sym");
    assert!(out.key_material_id.is_some());
    // GenerateDataKey needs a symmetric key.
    let (code, _) = expect_err!(
        kms.generate_data_key()
            .key_id(&key_arn)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .send()
            .await
    );
    assert_eq!(code, "InvalidKeyUsageException");
}

async fn generate_mac(kms: &Kms, key: &str, alg: &MacAlgorithmSpec, m: &[u8]) -> Vec<u8> {
    let out = kms
        .generate_mac()
        .key_id(key)
        .message(Blob::new(m.to_vec()))
        .mac_algorithm(alg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.mac_algorithm(), Some(alg));
    out.mac.unwrap().into_inner()
}

async fn verify_mac(
    kms: &Kms,
    key: &str,
    alg: &MacAlgorithmSpec,
    m: &[u8],
    mac: &[u8],
) -> Result<(), (String, String)> {
    match kms
        .verify_mac()
        .key_id(key)
        .message(Blob::new(m.to_vec()))
        .mac_algorithm(alg.clone())
        .mac(Blob::new(mac.to_vec()))
        .send()
        .await
    {
        Ok(out) => {
            assert!(out.mac_valid());
            assert_eq!(out.mac_algorithm(), Some(alg));
            Ok(())
        }
        Err(e) => Err(crate::common::err_code(&e)),
    }
}

#[tokio::test]
async fn generate_and_verify_mac_with_every_hmac_spec() {
    let server = Server::start();
    let kms = server.kms();
    let invalid_mac = Err(("KMSInvalidMacException".to_owned(), String::new()));
    let specs = [
        (KeySpec::Hmac224, MacAlgorithmSpec::HmacSha224, 28),
        (KeySpec::Hmac256, MacAlgorithmSpec::HmacSha256, 32),
        (KeySpec::Hmac384, MacAlgorithmSpec::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithmSpec::HmacSha512, 64),
    ];
    for (spec, alg, len) in &specs {
        let key = create_key_of(&kms, spec.clone(), KeyUsageType::GenerateVerifyMac).await;
        let other = create_key_of(&kms, spec.clone(), KeyUsageType::GenerateVerifyMac).await;
        let (k, o) = (arn(&key), arn(&other));
        let m = b"message to authenticate".to_vec();
        let mac = generate_mac(&kms, key.key_id(), alg, &m).await;
        assert_eq!(mac.len(), *len, "{spec:?}");
        // Deterministic, key-dependent, message-dependent.
        assert_eq!(generate_mac(&kms, &k, alg, &m).await, mac);
        assert_ne!(generate_mac(&kms, &o, alg, &m).await, mac);
        assert_ne!(generate_mac(&kms, &k, alg, b"other message").await, mac);
        assert_eq!(verify_mac(&kms, &k, alg, &m, &mac).await, Ok(()));
        // Wycheproof-style negatives: wrong key, flipped bits, truncation, extension.
        assert_eq!(
            verify_mac(&kms, &o, alg, &m, &mac).await,
            invalid_mac,
            "wrong key"
        );
        for i in [0, m.len() / 2, m.len() - 1] {
            let mut bad = m.clone();
            bad[i] ^= 1;
            assert_eq!(verify_mac(&kms, &k, alg, &bad, &mac).await, invalid_mac);
        }
        for i in [0, mac.len() / 2, mac.len() - 1] {
            let mut bad = mac.clone();
            bad[i] ^= 0x80;
            assert_eq!(verify_mac(&kms, &k, alg, &m, &bad).await, invalid_mac);
        }
        assert_eq!(
            verify_mac(&kms, &k, alg, &m, &mac[..mac.len() - 1]).await,
            invalid_mac
        );
        assert_eq!(verify_mac(&kms, &k, alg, &m, &mac[..16]).await, invalid_mac);
        let mut longer = mac.clone();
        longer.push(0);
        assert_eq!(verify_mac(&kms, &k, alg, &m, &longer).await, invalid_mac);
        // Every other algorithm is incompatible with the spec.
        for (_, wrong, _) in specs.iter().filter(|(_, a, _)| a != alg) {
            let want = (
                "InvalidKeyUsageException".to_owned(),
                format!(
                    "Algorithm {} is incompatible with key spec {}.",
                    wrong.as_str(),
                    spec.as_str()
                ),
            );
            let r = expect_err!(
                kms.generate_mac()
                    .key_id(&k)
                    .message(Blob::new(m.clone()))
                    .mac_algorithm(wrong.clone())
                    .send()
                    .await
            );
            assert_eq!(r, want);
            assert_eq!(verify_mac(&kms, &k, wrong, &m, &mac).await, Err(want));
        }
        // DryRun.
        let r = expect_err!(
            kms.generate_mac()
                .key_id(&k)
                .message(Blob::new(m.clone()))
                .mac_algorithm(alg.clone())
                .dry_run(true)
                .send()
                .await
        );
        assert_eq!(
            r,
            ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
        );
    }
    // The exact AWS text for a mismatch, and usage errors.
    let h224 = create_key_of(&kms, KeySpec::Hmac224, KeyUsageType::GenerateVerifyMac).await;
    let r = expect_err!(
        kms.generate_mac()
            .key_id(h224.key_id())
            .message(Blob::new(b"m".to_vec()))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .send()
            .await
    );
    assert_eq!(
        r,
        (
            "InvalidKeyUsageException".to_owned(),
            "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.".to_owned()
        )
    );
    let sym = create_key(&kms).await;
    let ed = create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    for (key, usage) in [(&sym, "ENCRYPT_DECRYPT"), (&ed, "SIGN_VERIFY")] {
        for op in ["GenerateMac", "VerifyMac"] {
            let r = if op == "GenerateMac" {
                kms.generate_mac()
                    .key_id(key.key_id())
                    .message(Blob::new(b"m".to_vec()))
                    .mac_algorithm(MacAlgorithmSpec::HmacSha256)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::common::err_code(&e))
            } else {
                verify_mac(
                    &kms,
                    key.key_id(),
                    &MacAlgorithmSpec::HmacSha256,
                    b"m",
                    &[0; 32],
                )
                .await
            };
            assert_eq!(
                r,
                Err((
                    "InvalidKeyUsageException".to_owned(),
                    format!(
                        "{} key usage is {usage} which is not valid for {op}.",
                        arn(key)
                    )
                ))
            );
        }
    }
    // HMAC keys do not encrypt.
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(h224.key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
    );
    assert_eq!(code, "InvalidKeyUsageException");
    assert!(msg.contains("GENERATE_VERIFY_MAC"), "{msg}");
    // A disabled HMAC key.
    kms.disable_key()
        .key_id(h224.key_id())
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(
        kms.generate_mac()
            .key_id(h224.key_id())
            .message(Blob::new(b"m".to_vec()))
            .mac_algorithm(MacAlgorithmSpec::HmacSha224)
            .send()
            .await
    );
    assert_eq!(code, "DisabledException");
}

#[tokio::test]
async fn derive_shared_secret_matches_openssl_and_rejects_bad_peers() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (spec, curve, field) in [
        (KeySpec::EccNistP256, "P-256", 32usize),
        (KeySpec::EccNistP384, "P-384", 48),
        (KeySpec::EccNistP521, "P-521", 66),
    ] {
        let key = create_key_of(&kms, spec.clone(), KeyUsageType::KeyAgreement).await;
        let key_arn = arn(&key);
        // The peer's key pair, made by OpenSSL.
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                "peer.pem",
            ],
        );
        let peer_der = openssl(
            d,
            &["pkey", "-in", "peer.pem", "-pubout", "-outform", "DER"],
        );
        let out = kms
            .derive_shared_secret()
            .key_id(key.key_id())
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(peer_der.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(key_arn.as_str()));
        assert_eq!(
            out.key_agreement_algorithm(),
            Some(&KeyAgreementAlgorithmSpec::Ecdh)
        );
        assert_eq!(out.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));
        let secret = out.shared_secret.unwrap().into_inner();
        assert_eq!(secret.len(), field);
        // OpenSSL, holding the peer's private key and Tresor's public key, derives the same.
        write_public_pem(d, &get_public_key(&kms, &key_arn).await, "tresor");
        let theirs = openssl(
            d,
            &[
                "pkeyutl",
                "-derive",
                "-inkey",
                "peer.pem",
                "-peerkey",
                "tresor.pem",
            ],
        );
        assert_eq!(secret, theirs, "{spec:?}");

        // Bad public keys: ValidationException without a message.
        let point = &peer_der[peer_der.len() - (2 * field + 1)..];
        assert_eq!(point[0], 0x04);
        let other_curve = if curve == "P-256" { "P-384" } else { "P-256" };
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{other_curve}"),
                "-out",
                "other.pem",
            ],
        );
        let other_der = openssl(
            d,
            &["pkey", "-in", "other.pem", "-pubout", "-outform", "DER"],
        );
        let mut off_curve = peer_der.clone();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        for bad in [
            b"not a key".to_vec(),
            point.to_vec(),
            other_der,
            off_curve,
            peer_der[..peer_der.len() - 1].to_vec(),
        ] {
            let r = expect_err!(
                kms.derive_shared_secret()
                    .key_id(key.key_id())
                    .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                    .public_key(Blob::new(bad))
                    .send()
                    .await
            );
            assert_eq!(r, ("ValidationException".to_owned(), String::new()));
        }
        let r = expect_err!(
            kms.derive_shared_secret()
                .key_id(key.key_id())
                .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                .public_key(Blob::new(peer_der))
                .dry_run(true)
                .send()
                .await
        );
        assert_eq!(
            r,
            ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
        );
    }
    // Keys that are not KEY_AGREEMENT keys.
    let signing = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let sym = create_key(&kms).await;
    for (key, usage) in [(&signing, "SIGN_VERIFY"), (&sym, "ENCRYPT_DECRYPT")] {
        let r = expect_err!(
            kms.derive_shared_secret()
                .key_id(key.key_id())
                .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                .public_key(Blob::new(b"x".to_vec()))
                .send()
                .await
        );
        assert_eq!(
            r,
            (
                "InvalidKeyUsageException".to_owned(),
                format!(
                    "{} key usage is {usage} which is not valid for DeriveSharedSecret.",
                    arn(key)
                )
            )
        );
    }
    // KEY_AGREEMENT keys neither sign nor verify.
    let ka = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let (code, _) = expect_err!(
        kms.sign()
            .key_id(ka.key_id())
            .message(Blob::new(b"m".to_vec()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
    );
    assert_eq!(code, "InvalidKeyUsageException");
}

#[tokio::test]
async fn generate_data_key_pairs_of_every_spec() {
    let server = Server::start();
    let kms = server.kms();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wrapping = create_key(&kms).await;
    let w = arn(&wrapping);
    let ec: HashMap<String, String> = [("purpose".to_owned(), "pairs".to_owned())].into();
    let specs = [
        (DataKeyPairSpec::Rsa2048, "(2048 bit"),
        (DataKeyPairSpec::Rsa3072, "(3072 bit"),
        (DataKeyPairSpec::Rsa4096, "(4096 bit"),
        (DataKeyPairSpec::EccNistP256, "prime256v1"),
        (DataKeyPairSpec::EccNistP384, "secp384r1"),
        (DataKeyPairSpec::EccNistP521, "secp521r1"),
        (DataKeyPairSpec::EccSecgP256K1, "secp256k1"),
        (DataKeyPairSpec::EccNistEdwards25519, "ED25519"),
    ];
    for (spec, text) in &specs {
        let out = kms
            .generate_data_key_pair()
            .key_id(wrapping.key_id())
            .key_pair_spec(spec.clone())
            .set_encryption_context(Some(ec.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(w.as_str()));
        assert_eq!(out.key_pair_spec(), Some(spec));
        assert_eq!(out.key_material_id(), wrapping.current_key_material_id());
        let private = out.private_key_plaintext.unwrap().into_inner();
        let public = out.public_key.unwrap().into_inner();
        let blob = out.private_key_ciphertext_blob.unwrap();
        // The PKCS#8 private key, read by OpenSSL, belongs to the public key.
        std::fs::write(d.join("priv.der"), &private).unwrap();
        let derived = openssl(
            d,
            &[
                "pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER",
            ],
        );
        assert_eq!(derived, public, "{spec:?}");
        let described = openssl(
            d,
            &[
                "pkey", "-inform", "DER", "-in", "priv.der", "-text", "-noout",
            ],
        );
        assert!(
            String::from_utf8_lossy(&described).contains(text),
            "{spec:?}"
        );
        // The ciphertext is a normal symmetric ciphertext under the wrapping key and context.
        let dec = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .set_encryption_context(Some(ec.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(dec.key_id(), Some(w.as_str()));
        assert_eq!(dec.plaintext.unwrap().into_inner(), private);
        let (code, _) = expect_err!(kms.decrypt().ciphertext_blob(blob).send().await);
        assert_eq!(code, "InvalidCiphertextException", "the context is bound");

        // Without plaintext: only the ciphertext and the public key.
        let out = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(&w)
            .key_pair_spec(spec.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_pair_spec(), Some(spec));
        assert_eq!(out.key_id(), Some(w.as_str()));
        let public = out.public_key.unwrap().into_inner();
        let private = kms
            .decrypt()
            .ciphertext_blob(out.private_key_ciphertext_blob.unwrap())
            .send()
            .await
            .unwrap()
            .plaintext
            .unwrap()
            .into_inner();
        std::fs::write(d.join("priv.der"), &private).unwrap();
        let derived = openssl(
            d,
            &[
                "pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER",
            ],
        );
        assert_eq!(derived, public, "{spec:?} without plaintext");
    }
    // Errors: SM2, a non-symmetric wrapping key, DryRun, a disabled wrapping key.
    let (code, _) = expect_err!(
        kms.generate_data_key_pair()
            .key_id(&w)
            .key_pair_spec(DataKeyPairSpec::Sm2)
            .send()
            .await
    );
    assert_eq!(code, "UnsupportedOperationException");
    let rsa = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let hmac = create_key_of(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let (code, _) = expect_err!(
        kms.generate_data_key_pair()
            .key_id(rsa.key_id())
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await
    );
    assert_eq!(code, "InvalidKeyUsageException");
    let r = expect_err!(
        kms.generate_data_key_pair_without_plaintext()
            .key_id(hmac.key_id())
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await
    );
    assert_eq!(
        r,
        (
            "InvalidKeyUsageException".to_owned(),
            format!(
                "{} key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKeyPairWithoutPlaintext.",
                arn(&hmac)
            )
        )
    );
    let r = expect_err!(
        kms.generate_data_key_pair()
            .key_id(&w)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
    kms.disable_key().key_id(&w).send().await.unwrap();
    let (code, _) = expect_err!(
        kms.generate_data_key_pair_without_plaintext()
            .key_id(&w)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await
    );
    assert_eq!(code, "DisabledException");
}

/// A key policy that lets the account do everything except `action` when `condition_key`
/// equals `value`.
fn deny_policy(action: &str, condition_key: &str, value: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": format!("kms:{action}"),
             "Resource": "*", "Condition": {"StringEquals": {condition_key: value}}}
        ]
    })
    .to_string()
}

async fn key_with_policy(kms: &Kms, spec: KeySpec, usage: KeyUsageType, policy: String) -> String {
    let mut req = kms.create_key().policy(policy);
    if spec != KeySpec::SymmetricDefault {
        req = req.key_spec(spec).key_usage(usage);
    }
    arn(&req.send().await.unwrap().key_metadata.unwrap())
}

fn is_denied<T: std::fmt::Debug, E, R>(r: Result<T, aws_sdk_kms::error::SdkError<E, R>>) -> bool
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(_) => false,
        Err(e) => crate::common::err_code(&e).0 == "AccessDeniedException",
    }
}

#[tokio::test]
async fn condition_keys_and_grants() {
    let server = Server::start();
    let kms = server.kms();

    // kms:SigningAlgorithm and kms:MessageType.
    let k = key_with_policy(
        &kms,
        KeySpec::Rsa2048,
        KeyUsageType::SignVerify,
        deny_policy("Sign", "kms:SigningAlgorithm", "RSASSA_PSS_SHA_256"),
    )
    .await;
    let s = |alg: SigningAlgorithmSpec, mt: Option<MessageType>, m: Vec<u8>| {
        kms.sign()
            .key_id(&k)
            .message(Blob::new(m))
            .set_message_type(mt)
            .signing_algorithm(alg)
            .send()
    };
    assert!(is_denied(
        s(SigningAlgorithmSpec::RsassaPssSha256, None, b"m".to_vec()).await
    ));
    assert!(!is_denied(
        s(SigningAlgorithmSpec::RsassaPssSha384, None, b"m".to_vec()).await
    ));
    let k2 = key_with_policy(
        &kms,
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
        // The default message type counts (RAW).
        deny_policy("Verify", "kms:MessageType", "RAW"),
    )
    .await;
    let sig = sign(
        &kms,
        &k2,
        &SigningAlgorithmSpec::EcdsaSha256,
        &MessageType::Raw,
        b"m",
    )
    .await;
    let denied = kms
        .verify()
        .key_id(&k2)
        .message(Blob::new(b"m".to_vec()))
        .signature(Blob::new(sig.clone()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    assert!(is_denied(denied));

    // kms:MacAlgorithm.
    let k3 = key_with_policy(
        &kms,
        KeySpec::Hmac256,
        KeyUsageType::GenerateVerifyMac,
        deny_policy("GenerateMac", "kms:MacAlgorithm", "HMAC_SHA_256"),
    )
    .await;
    assert!(is_denied(
        kms.generate_mac()
            .key_id(&k3)
            .message(Blob::new(b"m".to_vec()))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .send()
            .await
    ));

    // kms:KeyAgreementAlgorithm.
    let k4 = key_with_policy(
        &kms,
        KeySpec::EccNistP256,
        KeyUsageType::KeyAgreement,
        deny_policy("DeriveSharedSecret", "kms:KeyAgreementAlgorithm", "ECDH"),
    )
    .await;
    let peer = get_public_key(&kms, &k4).await;
    assert!(is_denied(
        kms.derive_shared_secret()
            .key_id(&k4)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(peer))
            .send()
            .await
    ));

    // kms:DataKeyPairSpec.
    let k5 = key_with_policy(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
        deny_policy("GenerateDataKeyPair", "kms:DataKeyPairSpec", "RSA_4096"),
    )
    .await;
    assert!(is_denied(
        kms.generate_data_key_pair()
            .key_id(&k5)
            .key_pair_spec(DataKeyPairSpec::Rsa4096)
            .send()
            .await
    ));
    assert!(!is_denied(
        kms.generate_data_key_pair()
            .key_id(&k5)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await
    ));

    // kms:EncryptionAlgorithm with an asymmetric key.
    let k6 = key_with_policy(
        &kms,
        KeySpec::Rsa2048,
        KeyUsageType::EncryptDecrypt,
        deny_policy("Encrypt", "kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_1"),
    )
    .await;
    let e = |alg: EncryptionAlgorithmSpec| {
        kms.encrypt()
            .key_id(&k6)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(alg)
            .send()
    };
    assert!(is_denied(e(EncryptionAlgorithmSpec::RsaesOaepSha1).await));
    assert!(!is_denied(
        e(EncryptionAlgorithmSpec::RsaesOaepSha256).await
    ));

    // Grants: operations must suit the key type.
    let role = format!("arn:aws:iam::{ACCOUNT}:role/AppRole");
    let cases: Vec<(String, Vec<GrantOperation>, bool)> = vec![
        (
            k.clone(),
            vec![
                GrantOperation::Sign,
                GrantOperation::Verify,
                GrantOperation::GetPublicKey,
            ],
            true,
        ),
        (k.clone(), vec![GrantOperation::Encrypt], false),
        (
            k3.clone(),
            vec![GrantOperation::GenerateMac, GrantOperation::VerifyMac],
            true,
        ),
        (k3.clone(), vec![GrantOperation::Sign], false),
        (
            k4.clone(),
            vec![
                GrantOperation::DeriveSharedSecret,
                GrantOperation::GetPublicKey,
            ],
            true,
        ),
        (k4.clone(), vec![GrantOperation::Verify], false),
        (
            k6.clone(),
            vec![
                GrantOperation::Encrypt,
                GrantOperation::Decrypt,
                GrantOperation::GetPublicKey,
            ],
            true,
        ),
        (k6.clone(), vec![GrantOperation::GenerateDataKey], false),
        (
            k5.clone(),
            vec![
                GrantOperation::GenerateDataKeyPair,
                GrantOperation::GenerateDataKeyPairWithoutPlaintext,
            ],
            true,
        ),
    ];
    for (key, ops, ok) in cases {
        let r = kms
            .create_grant()
            .key_id(&key)
            .grantee_principal(&role)
            .set_operations(Some(ops.clone()))
            .send()
            .await;
        match (ok, r) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                assert_eq!(
                    crate::common::err_code(&e).0,
                    "ValidationException",
                    "{ops:?}"
                )
            }
            (ok, r) => panic!("grant {ops:?} on {key}: expected ok={ok}, got {r:?}"),
        }
    }
}

#[tokio::test]
async fn audit_records_name_algorithms_and_never_the_secrets() {
    use base64::Engine as _;
    let server = Server::start();
    let kms = server.kms();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut secrets: Vec<String> = Vec::new();

    let ed = create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let message = b"an audited message that must never be logged".to_vec();
    let sig = sign(
        &kms,
        ed.key_id(),
        &SigningAlgorithmSpec::Ed25519Sha512,
        &MessageType::Raw,
        &message,
    )
    .await;
    verify(
        &kms,
        ed.key_id(),
        &SigningAlgorithmSpec::Ed25519Sha512,
        &MessageType::Raw,
        &message,
        &sig,
    )
    .await
    .unwrap();
    secrets.push(b64(&message));
    secrets.push(b64(&sig));

    let hmac = create_key_of(&kms, KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac).await;
    let mac = generate_mac(&kms, hmac.key_id(), &MacAlgorithmSpec::HmacSha384, &message).await;
    verify_mac(
        &kms,
        hmac.key_id(),
        &MacAlgorithmSpec::HmacSha384,
        &message,
        &mac,
    )
    .await
    .unwrap();
    secrets.push(b64(&mac));

    let wrapping = create_key(&kms).await;
    let pair = kms
        .generate_data_key_pair()
        .key_id(wrapping.key_id())
        .key_pair_spec(DataKeyPairSpec::EccNistP384)
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    secrets.push(b64(pair.private_key_plaintext().unwrap().as_ref()));

    let ka = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let peer = create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let shared = kms
        .derive_shared_secret()
        .key_id(ka.key_id())
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(get_public_key(&kms, &arn(&peer)).await))
        .send()
        .await
        .unwrap();
    secrets.push(b64(shared.shared_secret().unwrap().as_ref()));

    let rsa = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let plaintext = b"rsa plaintext that must never be logged".to_vec();
    let ct = kms
        .encrypt()
        .key_id(rsa.key_id())
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    rsa_decrypt(
        &kms,
        &arn(&rsa),
        Some(EncryptionAlgorithmSpec::RsaesOaepSha256),
        &ct,
    )
    .await
    .unwrap();
    secrets.push(b64(&plaintext));
    secrets.push(b64(&ct));

    let records = audit_records(&server.data_dir);
    let dump = serde_json::to_string(&records).unwrap();
    for s in &secrets {
        assert!(!dump.contains(s.as_str()), "a secret reached the audit log");
    }
    let find = |name: &str| -> Vec<&serde_json::Value> {
        records.iter().filter(|r| r["eventName"] == name).collect()
    };
    let params = |name: &str| find(name)[0]["requestParameters"].clone();
    assert_eq!(
        params("Sign"),
        serde_json::json!({"keyId": ed.key_id(), "messageType": "RAW", "signingAlgorithm": "ED25519_SHA_512"})
    );
    assert_eq!(
        params("Verify"),
        serde_json::json!({"keyId": ed.key_id(), "messageType": "RAW", "signingAlgorithm": "ED25519_SHA_512"})
    );
    assert_eq!(
        params("GenerateMac"),
        serde_json::json!({"keyId": hmac.key_id(), "macAlgorithm": "HMAC_SHA_384"})
    );
    assert_eq!(
        params("VerifyMac"),
        serde_json::json!({"keyId": hmac.key_id(), "macAlgorithm": "HMAC_SHA_384"})
    );
    assert_eq!(
        params("GenerateDataKeyPair"),
        serde_json::json!({"keyId": wrapping.key_id(), "keyPairSpec": "ECC_NIST_P384", "encryptionContext": {"tenant": "a"}})
    );
    assert_eq!(
        find("GenerateDataKeyPair")[0]["additionalEventData"]["keyMaterialId"],
        wrapping.current_key_material_id().unwrap()
    );
    assert_eq!(
        params("DeriveSharedSecret"),
        serde_json::json!({"keyId": ka.key_id(), "keyAgreementAlgorithm": "ECDH"})
    );
    assert_eq!(
        params("Decrypt"),
        serde_json::json!({"keyId": arn(&rsa), "encryptionAlgorithm": "RSAES_OAEP_SHA_256"})
    );
    for name in [
        "Sign",
        "Verify",
        "GenerateMac",
        "VerifyMac",
        "GenerateDataKeyPair",
        "DeriveSharedSecret",
        "GetPublicKey",
        "Encrypt",
        "Decrypt",
    ] {
        let r = find(name)[0];
        assert_eq!(r["readOnly"], true, "{name}");
        assert_eq!(r["responseElements"], serde_json::Value::Null, "{name}");
    }
    // Failures are audited with their error code (no message for KMSInvalidSignatureException).
    let _ = verify(
        &kms,
        ed.key_id(),
        &SigningAlgorithmSpec::Ed25519Sha512,
        &MessageType::Raw,
        b"tampered",
        &sig,
    )
    .await;
    let records = audit_records(&server.data_dir);
    let failed = records
        .iter()
        .find(|r| r["eventName"] == "Verify" && r.get("errorCode").is_some())
        .expect("the failed Verify is audited");
    assert_eq!(failed["errorCode"], "KMSInvalidSignatureException");
    assert!(failed.get("errorMessage").is_none());
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let mut server = Server::start_in(&data_dir, &default_config(), &[]);
    let kms = server.kms();
    let ed = create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let rsa = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let hmac = create_key_of(&kms, KeySpec::Hmac512, KeyUsageType::GenerateVerifyMac).await;
    let ka = create_key_of(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let d = sign(
        &kms,
        ed.key_id(),
        &SigningAlgorithmSpec::Ed25519PhSha512,
        &MessageType::Digest,
        &[9u8; 64],
    )
    .await;
    let ed_public = get_public_key(&kms, &arn(&ed)).await;
    let ka_public = get_public_key(&kms, &arn(&ka)).await;
    let ct = kms
        .encrypt()
        .key_id(rsa.key_id())
        .plaintext(Blob::new(b"kept".to_vec()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    let mac = generate_mac(&kms, hmac.key_id(), &MacAlgorithmSpec::HmacSha512, b"m").await;
    assert!(server.stop().success());

    let server = Server::start_in(&data_dir, &default_config(), &[]);
    let kms = server.kms();
    assert_eq!(get_public_key(&kms, &arn(&ed)).await, ed_public);
    assert_eq!(get_public_key(&kms, &arn(&ka)).await, ka_public);
    verify(
        &kms,
        ed.key_id(),
        &SigningAlgorithmSpec::Ed25519PhSha512,
        &MessageType::Digest,
        &[9u8; 64],
        &d,
    )
    .await
    .unwrap();
    assert_eq!(
        rsa_decrypt(
            &kms,
            &arn(&rsa),
            Some(EncryptionAlgorithmSpec::RsaesOaepSha1),
            &ct
        )
        .await
        .unwrap(),
        b"kept"
    );
    assert_eq!(
        generate_mac(&kms, hmac.key_id(), &MacAlgorithmSpec::HmacSha512, b"m").await,
        mac
    );
    // The private material is stored wrapped: no PKCS#8 or HMAC key appears in the store file.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    // Ed25519 PKCS#8 v1 prefix (RFC 8410) must not occur in clear.
    let prefix = [
        0x30u8, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
    ];
    assert!(!stored.windows(prefix.len()).any(|w| w == prefix));
}

#[tokio::test]
async fn rsa_4096_key_generation_does_not_stall_other_requests() {
    // One runtime worker thread: if key generation ran on it, nothing else could be served
    // until it finished.
    let server = Server::start_with_env(&[("TOKIO_WORKER_THREADS", "1")]);
    let kms = server.kms();
    let creates: Vec<_> = (0..2)
        .map(|_| {
            let kms = kms.clone();
            tokio::spawn(async move {
                kms.create_key()
                    .key_spec(KeySpec::Rsa4096)
                    .key_usage(KeyUsageType::SignVerify)
                    .send()
                    .await
            })
        })
        .collect();
    let pending =
        |creates: &Vec<tokio::task::JoinHandle<_>>| creates.iter().any(|h| !h.is_finished());
    // Cheap requests complete while the 4096-bit key generation is still running.
    let mut completed_while_pending = 0;
    for _ in 0..1000 {
        kms.list_keys().send().await.unwrap();
        if !pending(&creates) {
            break;
        }
        completed_while_pending += 1;
    }
    eprintln!("cheap requests completed during RSA_4096 generation: {completed_while_pending}");
    assert!(
        completed_while_pending >= 10,
        "only {completed_while_pending} cheap requests finished before the RSA_4096 CreateKey responses"
    );
    for h in creates {
        let m = h.await.unwrap().unwrap().key_metadata.unwrap();
        assert_eq!(m.key_spec(), Some(&KeySpec::Rsa4096));
    }
}

#[tokio::test]
async fn re_encrypt_between_symmetric_and_asymmetric_keys() {
    let server = Server::start();
    let kms = server.kms();
    let sym = create_key(&kms).await;
    let rsa = create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let rsa3 = create_key_of(&kms, KeySpec::Rsa3072, KeyUsageType::EncryptDecrypt).await;
    let sym_ct = kms
        .encrypt()
        .key_id(sym.key_id())
        .plaintext(Blob::new(b"moving secret".to_vec()))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();

    // Symmetric → RSA: the result is raw OAEP output for the RSA key.
    let out = kms
        .re_encrypt()
        .ciphertext_blob(sym_ct.clone())
        .source_encryption_context("k", "v")
        .destination_key_id(rsa.key_id())
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(out.source_key_id(), Some(arn(&sym).as_str()));
    assert_eq!(out.key_id(), Some(arn(&rsa).as_str()));
    assert_eq!(
        out.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::RsaesOaepSha256)
    );
    assert_eq!(out.source_key_material_id(), sym.current_key_material_id());
    assert_eq!(out.destination_key_material_id(), None);
    let rsa_ct = out.ciphertext_blob.unwrap().into_inner();
    assert_eq!(rsa_ct.len(), 256);
    assert_eq!(
        rsa_decrypt(
            &kms,
            &arn(&rsa),
            Some(EncryptionAlgorithmSpec::RsaesOaepSha256),
            &rsa_ct
        )
        .await
        .unwrap(),
        b"moving secret"
    );

    // RSA → RSA (another key and hash), then RSA → symmetric.
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(rsa_ct.clone()))
        .source_key_id(rsa.key_id())
        .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .destination_key_id(rsa3.key_id())
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.source_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::RsaesOaepSha256)
    );
    assert_eq!(out.source_key_material_id(), None);
    let rsa3_ct = out.ciphertext_blob.unwrap().into_inner();
    assert_eq!(rsa3_ct.len(), 384);
    let out = kms
        .re_encrypt()
        .ciphertext_blob(Blob::new(rsa3_ct))
        .source_key_id(arn(&rsa3))
        .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
        .destination_key_id(sym.key_id())
        .destination_encryption_context("k2", "v2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.destination_key_material_id(),
        sym.current_key_material_id()
    );
    let back = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob.unwrap())
        .encryption_context("k2", "v2")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext.unwrap().into_inner(), b"moving secret");

    // Errors: no SourceKeyId for an asymmetric ciphertext, a missing destination algorithm,
    // a plaintext too large for the destination, a wrong source algorithm.
    let (code, _) = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(rsa_ct.clone()))
            .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .destination_key_id(sym.key_id())
            .send()
            .await
    );
    // Without SourceKeyId the blob is read as a symmetric ciphertext. An RSA ciphertext is
    // random bytes: one in 256 starts with the v1 version byte and then reads as a ciphertext of
    // a key that does not exist, which is AWS's AccessDeniedException (docs/compat.md).
    let expected = if rsa_ct[0] == 0x01 {
        "AccessDeniedException"
    } else {
        "InvalidCiphertextException"
    };
    assert_eq!(code, expected);
    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(sym_ct.clone())
            .source_encryption_context("k", "v")
            .destination_key_id(rsa.key_id())
            .send()
            .await
    );
    assert_eq!(
        r,
        (
            "InvalidKeyUsageException".to_owned(),
            "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.".to_owned()
        )
    );
    let big = kms
        .encrypt()
        .key_id(sym.key_id())
        .plaintext(Blob::new(vec![5u8; 191]))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(big)
            .destination_key_id(rsa.key_id())
            .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(
        r,
        (
            "ValidationException".to_owned(),
            "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."
                .to_owned()
        )
    );
    let (code, _) = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(rsa_ct.clone()))
            .source_key_id(rsa.key_id())
            .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
            .destination_key_id(sym.key_id())
            .send()
            .await
    );
    assert_eq!(code, "InvalidCiphertextException");
    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(rsa_ct))
            .source_key_id(rsa.key_id())
            .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .destination_key_id(sym.key_id())
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(
        r,
        ("DryRunOperationException".to_owned(), DRY_RUN.to_owned())
    );
}
