//! Cryptographic operations: Encrypt, Decrypt, ReEncrypt, GenerateDataKey(+WithoutPlaintext),
//! GenerateRandom; DryRun and grant tokens.

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, DryRunModifierType, EncryptionAlgorithmSpec, KeyMetadata};

use crate::common::{ACCOUNT, REGION, Server, create_key, is_material_id, key_arn, unknown_key_id};
use crate::expect_err;

const LEGACY_UNKNOWN_CIPHERTEXT_KEY: &str = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";
const INCORRECT_KEY: &str =
    "The key ID in the request does not identify a CMK that can perform this operation.";
const DRY_RUN: &str = "The request would have succeeded, but the DryRun option is set.";

fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn encrypt(
    kms: &aws_sdk_kms::Client,
    key: &str,
    plaintext: &[u8],
    ec: &[(&str, &str)],
) -> Blob {
    let out = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext.to_vec()))
        .set_encryption_context((!ec.is_empty()).then(|| ctx(ec)))
        .send()
        .await
        .unwrap();
    out.ciphertext_blob.unwrap()
}

fn assert_invalid_ciphertext(r: (String, String), what: &str) {
    assert_eq!(
        (r.0.as_str(), r.1.as_str()),
        ("InvalidCiphertextException", ""),
        "{what}"
    );
}

fn arn(m: &KeyMetadata) -> &str {
    m.arn().unwrap()
}

#[tokio::test]
async fn encrypt_decrypt_round_trip_without_context() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;

    for key_ref in [key.key_id(), arn(&key)] {
        let out = kms
            .encrypt()
            .key_id(key_ref)
            .plaintext(Blob::new(b"hello".to_vec()))
            .send()
            .await
            .unwrap();
        // The response names the key by ARN, whatever the request used.
        assert_eq!(out.key_id(), Some(arn(&key)));
        assert_eq!(
            out.encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        let blob = out.ciphertext_blob().unwrap();
        assert!(
            !blob.as_ref().windows(5).any(|w| w == b"hello"),
            "plaintext visible in the ciphertext"
        );

        let pt = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(pt.plaintext().unwrap().as_ref(), b"hello");
        assert_eq!(pt.key_id(), Some(arn(&key)));
        assert_eq!(
            pt.encryption_algorithm(),
            Some(&EncryptionAlgorithmSpec::SymmetricDefault)
        );
        assert_eq!(pt.key_material_id(), key.current_key_material_id());
        assert!(is_material_id(pt.key_material_id().unwrap()));
    }

    // Same plaintext twice: different ciphertexts (fresh randomness per blob).
    let a = encrypt(&kms, key.key_id(), b"same", &[]).await;
    let b = encrypt(&kms, key.key_id(), b"same", &[]).await;
    assert_ne!(a, b);

    // Explicit SYMMETRIC_DEFAULT on both sides is the default.
    let out = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(b"x".to_vec()))
        .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
        .send()
        .await
        .unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob.unwrap())
        .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"x");
}

#[tokio::test]
async fn encryption_context_binds_the_ciphertext() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let ec = [
        ("tenant", "acme"),
        ("purpose", "backup"),
        ("ключ", "значение ✓"),
        ("empty", ""),
    ];
    let blob = encrypt(&kms, key.key_id(), b"secret", &ec).await;

    // The same pairs in any order decrypt.
    let mut reversed = ec;
    reversed.reverse();
    for order in [&ec[..], &reversed[..]] {
        let mut req = kms.decrypt().ciphertext_blob(blob.clone());
        for (k, v) in order {
            req = req.encryption_context(*k, *v);
        }
        assert_eq!(
            req.send().await.unwrap().plaintext().unwrap().as_ref(),
            b"secret"
        );
    }

    let cases: [(&str, Option<HashMap<String, String>>); 7] = [
        ("no context", None),
        ("empty context", Some(HashMap::new())),
        ("pair missing", Some(ctx(&ec[..3]))),
        (
            "extra pair",
            Some(ctx(&[ec[0], ec[1], ec[2], ec[3], ("extra", "1")])),
        ),
        (
            "key case changed",
            Some(ctx(&[("Tenant", "acme"), ec[1], ec[2], ec[3]])),
        ),
        (
            "value case changed",
            Some(ctx(&[("tenant", "ACME"), ec[1], ec[2], ec[3]])),
        ),
        (
            "value changed",
            Some(ctx(&[ec[0], ec[1], ec[2], ("empty", " ")])),
        ),
    ];
    for (what, c) in cases {
        let r = expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob.clone())
                .set_encryption_context(c)
                .send()
                .await
        );
        assert_invalid_ciphertext(r, what);
    }

    // A blob made without context does not decrypt with one.
    let plain_blob = encrypt(&kms, key.key_id(), b"secret", &[]).await;
    let r = expect_err!(
        kms.decrypt()
            .ciphertext_blob(plain_blob.clone())
            .encryption_context("a", "b")
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "context given for a context-less blob");
    // An empty map is the same as no context.
    let pt = kms
        .decrypt()
        .ciphertext_blob(plain_blob)
        .set_encryption_context(Some(HashMap::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"secret");
}

#[tokio::test]
async fn decrypt_with_key_id() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let other = create_key(&kms).await;
    let blob = encrypt(&kms, key.key_id(), b"pt", &[]).await;

    for right in [key.key_id(), arn(&key)] {
        let out = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .key_id(right)
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), b"pt");
        assert_eq!(out.key_id(), Some(arn(&key)));
    }
    for wrong in [other.key_id(), arn(&other)] {
        let (code, msg) = expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob.clone())
                .key_id(wrong)
                .send()
                .await
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("IncorrectKeyException", INCORRECT_KEY),
            "{wrong}"
        );
    }
    let unknown = unknown_key_id();
    let (code, msg) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .key_id(&unknown)
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &unknown)
        )
    );
    let (code, msg) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .key_id("alias/app")
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "NotFoundException",
            "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found."
        )
    );
    let (code, msg) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob)
            .key_id("fake-key-id")
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", "Invalid keyId 'fake-key-id'")
    );
}

#[tokio::test]
async fn tampered_and_garbage_ciphertexts_are_invalid() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let good = encrypt(
        &kms,
        key.key_id(),
        b"some plaintext of moderate length",
        &[("a", "b")],
    )
    .await;
    let bytes = good.as_ref().to_vec();
    let n = bytes.len();

    let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        Blob::new(b)
    };
    let named = [
        ("last byte flipped", mutate(&|b| b[n - 1] ^= 0x01)),
        ("middle byte flipped", mutate(&|b| b[n - 20] ^= 0x80)),
        ("first byte flipped", mutate(&|b| b[0] ^= 0xff)),
        ("truncated by one", mutate(&|b| b.truncate(n - 1))),
        ("truncated to half", mutate(&|b| b.truncate(n / 2))),
        ("one byte appended", mutate(&|b| b.push(0))),
        ("garbage", Blob::new((0..200u8).collect::<Vec<_>>())),
        ("single byte", Blob::new(vec![1])),
    ];
    for (what, blob) in named {
        let r = expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob)
                .encryption_context("a", "b")
                .send()
                .await
        );
        assert_invalid_ciphertext(r, what);
    }

    // Whatever single byte is changed, the blob never decrypts. Without a KeyId the changed
    // byte may name another (unknown) key instead; with the right KeyId it is IncorrectKey.
    for i in 0..n {
        let blob = mutate(&|b| b[i] ^= 0x01);
        let (code, msg) = expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob.clone())
                .encryption_context("a", "b")
                .send()
                .await
        );
        match code.as_str() {
            "InvalidCiphertextException" => assert_eq!(msg, "", "byte {i}"),
            "AccessDeniedException" => assert_eq!(msg, LEGACY_UNKNOWN_CIPHERTEXT_KEY, "byte {i}"),
            other => panic!("byte {i}: unexpected {other}: {msg}"),
        }
        let (code, _) = expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob)
                .key_id(key.key_id())
                .encryption_context("a", "b")
                .send()
                .await
        );
        assert!(
            matches!(
                code.as_str(),
                "InvalidCiphertextException" | "IncorrectKeyException"
            ),
            "byte {i}: {code}"
        );
    }

    // The untouched blob still decrypts.
    let pt = kms
        .decrypt()
        .ciphertext_blob(good)
        .encryption_context("a", "b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pt.plaintext().unwrap().as_ref(),
        b"some plaintext of moderate length"
    );
}

#[tokio::test]
async fn ciphertext_of_a_key_unknown_here_is_access_denied() {
    // A blob from another server (another root of trust, other keys).
    let elsewhere = Server::start();
    let foreign_key = create_key(&elsewhere.kms()).await;
    let foreign = encrypt(&elsewhere.kms(), foreign_key.key_id(), b"pt", &[]).await;

    let server = Server::start();
    let kms = server.kms();
    let local = create_key(&kms).await;
    let (code, msg) = expect_err!(kms.decrypt().ciphertext_blob(foreign.clone()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("AccessDeniedException", LEGACY_UNKNOWN_CIPHERTEXT_KEY)
    );
    let (code, msg) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(foreign)
            .key_id(local.key_id())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("IncorrectKeyException", INCORRECT_KEY)
    );

    // A blob of this server's key presented in another region.
    let blob = encrypt(&kms, local.key_id(), b"pt", &[]).await;
    let west = server.kms_in_region("eu-west-1");
    let (code, msg) = expect_err!(west.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("AccessDeniedException", LEGACY_UNKNOWN_CIPHERTEXT_KEY)
    );
    let (code, msg) = expect_err!(
        west.re_encrypt()
            .ciphertext_blob(blob)
            .destination_key_id(local.key_id())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("AccessDeniedException", LEGACY_UNKNOWN_CIPHERTEXT_KEY)
    );
}

#[tokio::test]
async fn plaintext_length_limits() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;

    let max: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let blob = encrypt(&kms, key.key_id(), &max, &[]).await;
    assert!(
        blob.as_ref().len() <= 6144,
        "a 4096-byte plaintext must fit CiphertextType (6144 bytes)"
    );
    let pt = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), &max[..]);
    let one = encrypt(&kms, key.key_id(), &[0], &[]).await;
    assert_eq!(
        kms.decrypt()
            .ciphertext_blob(one)
            .send()
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        &[0]
    );

    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new(vec![7u8; 4097]))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        )
    );
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new(Vec::new()))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
}

#[tokio::test]
async fn encrypt_errors() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let pt = || Blob::new(b"pt".to_vec());

    let unknown = unknown_key_id();
    let (code, msg) = expect_err!(kms.encrypt().key_id(&unknown).plaintext(pt()).send().await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &unknown)
        )
    );
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id("alias/app")
            .plaintext(pt())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "NotFoundException",
            "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found."
        )
    );
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id("arn:aws:kms:us-east-1:111122223333:alias/app")
            .plaintext(pt())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "NotFoundException",
            "Alias arn:aws:kms:us-east-1:111122223333:alias/app is not found."
        )
    );
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id("fake-key-id")
            .plaintext(pt())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", "Invalid keyId 'fake-key-id'")
    );

    for alg in [
        EncryptionAlgorithmSpec::RsaesOaepSha256,
        EncryptionAlgorithmSpec::RsaesOaepSha1,
    ] {
        let (code, msg) = expect_err!(
            kms.encrypt()
                .key_id(key.key_id())
                .plaintext(pt())
                .encryption_algorithm(alg.clone())
                .send()
                .await
        );
        assert_eq!(code, "InvalidKeyUsageException", "{alg:?}");
        assert!(!msg.is_empty());
    }
    let blob = encrypt(&kms, key.key_id(), b"pt", &[]).await;
    let (code, _) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob)
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
    );
    assert_eq!(code, "InvalidKeyUsageException");

    // Required members.
    let (code, msg) = expect_err!(kms.encrypt().key_id(key.key_id()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[tokio::test]
async fn re_encrypt_to_another_key() {
    let server = Server::start();
    let kms = server.kms();
    let src = create_key(&kms).await;
    let dst = create_key(&kms).await;
    let blob = encrypt(&kms, src.key_id(), b"move me", &[("from", "src")]).await;

    let out = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("from", "src")
        .destination_key_id(dst.key_id())
        .destination_encryption_context("to", "dst")
        .send()
        .await
        .unwrap();
    assert_eq!(out.source_key_id(), Some(arn(&src)));
    assert_eq!(out.key_id(), Some(arn(&dst)));
    assert_eq!(
        out.source_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    assert_eq!(
        out.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    assert_eq!(out.source_key_material_id(), src.current_key_material_id());
    assert_eq!(
        out.destination_key_material_id(),
        dst.current_key_material_id()
    );
    let new_blob = out.ciphertext_blob().unwrap().clone();
    assert_ne!(new_blob, blob);

    let pt = kms
        .decrypt()
        .ciphertext_blob(new_blob.clone())
        .encryption_context("to", "dst")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"move me");
    assert_eq!(pt.key_id(), Some(arn(&dst)));
    assert_eq!(pt.key_material_id(), dst.current_key_material_id());
    let r = expect_err!(
        kms.decrypt()
            .ciphertext_blob(new_blob.clone())
            .encryption_context("from", "src")
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "old context on the new blob");
    let (code, _) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(new_blob)
            .key_id(src.key_id())
            .encryption_context("to", "dst")
            .send()
            .await
    );
    assert_eq!(code, "IncorrectKeyException");
    // The source blob is untouched.
    let pt = kms
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("from", "src")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"move me");

    // With the right SourceKeyId (ARN), and a destination given by ARN.
    let again = kms
        .re_encrypt()
        .ciphertext_blob(
            kms.encrypt()
                .key_id(src.key_id())
                .plaintext(Blob::new(b"z".to_vec()))
                .send()
                .await
                .unwrap()
                .ciphertext_blob
                .unwrap(),
        )
        .source_key_id(arn(&src))
        .destination_key_id(arn(&dst))
        .send()
        .await
        .unwrap();
    assert_eq!(again.key_id(), Some(arn(&dst)));
}

#[tokio::test]
async fn re_encrypt_on_the_same_key_changes_the_context() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let blob = encrypt(&kms, key.key_id(), b"same key", &[("v", "1")]).await;
    let out = kms
        .re_encrypt()
        .ciphertext_blob(blob)
        .source_encryption_context("v", "1")
        .source_key_id(key.key_id())
        .destination_key_id(key.key_id())
        .destination_encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(out.source_key_id(), Some(arn(&key)));
    assert_eq!(out.key_id(), Some(arn(&key)));
    assert_eq!(
        out.source_key_material_id(),
        out.destination_key_material_id()
    );
    let new_blob = out.ciphertext_blob.unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(new_blob.clone())
        .encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"same key");
    let r = expect_err!(
        kms.decrypt()
            .ciphertext_blob(new_blob)
            .encryption_context("v", "1")
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "old context");
}

#[tokio::test]
async fn re_encrypt_errors() {
    let server = Server::start();
    let kms = server.kms();
    let src = create_key(&kms).await;
    let dst = create_key(&kms).await;
    let blob = encrypt(&kms, src.key_id(), b"pt", &[("k", "v")]).await;

    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(blob.clone())
            .source_encryption_context("k", "V")
            .destination_key_id(dst.key_id())
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "wrong source context");
    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(blob.clone())
            .destination_key_id(dst.key_id())
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "missing source context");
    let (code, msg) = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(blob.clone())
            .source_encryption_context("k", "v")
            .source_key_id(dst.key_id())
            .destination_key_id(dst.key_id())
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("IncorrectKeyException", INCORRECT_KEY)
    );

    let unknown = unknown_key_id();
    let (code, msg) = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(blob.clone())
            .source_encryption_context("k", "v")
            .destination_key_id(&unknown)
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &unknown)
        )
    );

    let mut tampered = blob.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let r = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(Blob::new(tampered))
            .source_encryption_context("k", "v")
            .destination_key_id(dst.key_id())
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "tampered source");

    let (code, msg) = expect_err!(
        kms.re_encrypt()
            .ciphertext_blob(blob)
            .source_encryption_context("k", "v")
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value null at 'destinationKeyId' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[tokio::test]
async fn generate_data_key_lengths_and_round_trip() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;

    let cases: [(Option<DataKeySpec>, Option<i32>, usize); 4] = [
        (Some(DataKeySpec::Aes256), None, 32),
        (Some(DataKeySpec::Aes128), None, 16),
        (None, Some(1), 1),
        (None, Some(1024), 1024),
    ];
    for (spec, n, want) in cases {
        let out = kms
            .generate_data_key()
            .key_id(key.key_id())
            .set_key_spec(spec.clone())
            .set_number_of_bytes(n)
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        let dk = out.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(dk.len(), want, "{spec:?} {n:?}");
        assert_eq!(out.key_id(), Some(arn(&key)));
        assert_eq!(out.key_material_id(), key.current_key_material_id());
        let pt = kms
            .decrypt()
            .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        assert_eq!(pt.plaintext().unwrap().as_ref(), &dk[..]);
        assert_eq!(pt.key_id(), Some(arn(&key)));
        let r = expect_err!(
            kms.decrypt()
                .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
                .send()
                .await
        );
        assert_invalid_ciphertext(r, "data key without its context");
    }

    // Fresh random keys every time.
    let a = kms
        .generate_data_key()
        .key_id(arn(&key))
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let b = kms
        .generate_data_key()
        .key_id(arn(&key))
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());
    assert_ne!(a.ciphertext_blob(), b.ciphertext_blob());
}

#[tokio::test]
async fn generate_data_key_parameter_errors() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let id = key.key_id();

    let either = (
        "ValidationException",
        "Please specify either number of bytes or key spec.",
    );
    let (code, msg) = expect_err!(
        kms.generate_data_key()
            .key_id(id)
            .key_spec(DataKeySpec::Aes256)
            .number_of_bytes(32)
            .send()
            .await
    );
    assert_eq!((code.as_str(), msg.as_str()), either);
    let (code, msg) = expect_err!(kms.generate_data_key().key_id(id).send().await);
    assert_eq!((code.as_str(), msg.as_str()), either);
    let (code, msg) = expect_err!(
        kms.generate_data_key_without_plaintext()
            .key_id(id)
            .key_spec(DataKeySpec::Aes128)
            .number_of_bytes(16)
            .send()
            .await
    );
    assert_eq!((code.as_str(), msg.as_str()), either);
    let (code, msg) = expect_err!(
        kms.generate_data_key_without_plaintext()
            .key_id(id)
            .send()
            .await
    );
    assert_eq!((code.as_str(), msg.as_str()), either);

    for (n, bound) in [
        (0, "greater than or equal to 1"),
        (1025, "less than or equal to 1024"),
    ] {
        let want = format!(
            "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value {bound}"
        );
        let (code, msg) = expect_err!(
            kms.generate_data_key()
                .key_id(id)
                .number_of_bytes(n)
                .send()
                .await
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("ValidationException", want.as_str())
        );
        let (code, msg) = expect_err!(
            kms.generate_data_key_without_plaintext()
                .key_id(id)
                .number_of_bytes(n)
                .send()
                .await
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("ValidationException", want.as_str())
        );
    }

    let unknown = unknown_key_id();
    let (code, msg) = expect_err!(
        kms.generate_data_key()
            .key_id(&unknown)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &unknown)
        )
    );
}

#[tokio::test]
async fn generate_data_key_without_plaintext() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let out = kms
        .generate_data_key_without_plaintext()
        .key_id(key.key_id())
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("c", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn(&key)));
    assert_eq!(out.key_material_id(), key.current_key_material_id());
    let pt = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
        .encryption_context("c", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref().len(), 32);

    let out = kms
        .generate_data_key_without_plaintext()
        .key_id(arn(&key))
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref().len(), 64);
}

#[tokio::test]
async fn generate_random() {
    let server = Server::start();
    let kms = server.kms();
    for n in [1, 32, 1024] {
        let out = kms
            .generate_random()
            .number_of_bytes(n)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.plaintext().unwrap().as_ref().len(),
            usize::try_from(n).unwrap()
        );
    }
    let a = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let b = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_ne!(a.plaintext(), b.plaintext());

    let (code, msg) = expect_err!(kms.generate_random().send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("ValidationException", "NumberOfBytes is required.")
    );
    for (n, bound) in [
        (0, "greater than or equal to 1"),
        (1025, "less than or equal to 1024"),
    ] {
        let (code, msg) = expect_err!(kms.generate_random().number_of_bytes(n).send().await);
        assert_eq!(code, "ValidationException");
        assert_eq!(
            msg,
            format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: Member must have value {bound}"
            )
        );
    }
    let (code, _) = expect_err!(
        kms.generate_random()
            .number_of_bytes(8)
            .custom_key_store_id("cks-1234567890abcdef0")
            .send()
            .await
    );
    assert_eq!(code, "CustomKeyStoreNotFoundException");
    // Any principal may call it, other accounts and role sessions included.
    server
        .kms_other()
        .generate_random()
        .number_of_bytes(4)
        .send()
        .await
        .unwrap();
    server
        .kms_role()
        .generate_random()
        .number_of_bytes(4)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn disabled_key_refuses_cryptographic_operations() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let dst = create_key(&kms).await;
    let blob = encrypt(&kms, key.key_id(), b"before", &[]).await;
    let dst_blob = encrypt(&kms, dst.key_id(), b"dst", &[]).await;
    kms.disable_key().key_id(key.key_id()).send().await.unwrap();
    let disabled = format!("{} is disabled.", arn(&key));
    let id = key.key_id();

    let results = [
        (
            "Encrypt",
            expect_err!(
                kms.encrypt()
                    .key_id(id)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKey",
            expect_err!(
                kms.generate_data_key()
                    .key_id(id)
                    .key_spec(DataKeySpec::Aes256)
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            expect_err!(
                kms.generate_data_key_without_plaintext()
                    .key_id(id)
                    .number_of_bytes(16)
                    .send()
                    .await
            ),
        ),
        (
            "Decrypt",
            expect_err!(kms.decrypt().ciphertext_blob(blob.clone()).send().await),
        ),
        (
            "Decrypt with KeyId",
            expect_err!(
                kms.decrypt()
                    .ciphertext_blob(blob.clone())
                    .key_id(id)
                    .send()
                    .await
            ),
        ),
        (
            "ReEncrypt from",
            expect_err!(
                kms.re_encrypt()
                    .ciphertext_blob(blob.clone())
                    .destination_key_id(dst.key_id())
                    .send()
                    .await
            ),
        ),
        (
            "ReEncrypt to",
            expect_err!(
                kms.re_encrypt()
                    .ciphertext_blob(dst_blob.clone())
                    .destination_key_id(id)
                    .send()
                    .await
            ),
        ),
    ];
    for (what, (code, msg)) in results {
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("DisabledException", disabled.as_str()),
            "{what}"
        );
    }
    // Refused even when the request would fail later anyway: state comes before crypto.
    let (code, _) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("wrong", "ctx")
            .send()
            .await
    );
    assert_eq!(code, "DisabledException");

    // Management still works.
    let d = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(!d.enabled());
    // The other key is unaffected.
    encrypt(&kms, dst.key_id(), b"ok", &[]).await;

    kms.enable_key().key_id(id).send().await.unwrap();
    let pt = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"before");
    encrypt(&kms, id, b"after", &[]).await;
    kms.generate_data_key()
        .key_id(id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    kms.re_encrypt()
        .ciphertext_blob(dst_blob)
        .destination_key_id(id)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn dry_run() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let dst = create_key(&kms).await;
    let id = key.key_id();
    let blob = encrypt(&kms, id, b"pt", &[("k", "v")]).await;
    let want = ("DryRunOperationException", DRY_RUN);

    let results = [
        (
            "Encrypt",
            expect_err!(
                kms.encrypt()
                    .key_id(id)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .dry_run(true)
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKey",
            expect_err!(
                kms.generate_data_key()
                    .key_id(id)
                    .key_spec(DataKeySpec::Aes256)
                    .dry_run(true)
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            expect_err!(
                kms.generate_data_key_without_plaintext()
                    .key_id(id)
                    .number_of_bytes(8)
                    .dry_run(true)
                    .send()
                    .await
            ),
        ),
        (
            "Decrypt",
            expect_err!(
                kms.decrypt()
                    .ciphertext_blob(blob.clone())
                    .encryption_context("k", "v")
                    .dry_run(true)
                    .send()
                    .await
            ),
        ),
        (
            "ReEncrypt",
            expect_err!(
                kms.re_encrypt()
                    .ciphertext_blob(blob.clone())
                    .source_encryption_context("k", "v")
                    .destination_key_id(dst.key_id())
                    .dry_run(true)
                    .send()
                    .await
            ),
        ),
        (
            "Decrypt IGNORE_CIPHERTEXT without a blob",
            expect_err!(
                kms.decrypt()
                    .key_id(id)
                    .dry_run(true)
                    .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
                    .send()
                    .await
            ),
        ),
        (
            "Decrypt IGNORE_CIPHERTEXT with garbage",
            expect_err!(
                kms.decrypt()
                    .ciphertext_blob(Blob::new(vec![1, 2, 3]))
                    .key_id(arn(&key))
                    .dry_run(true)
                    .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
                    .send()
                    .await
            ),
        ),
        (
            "ReEncrypt IGNORE_CIPHERTEXT",
            expect_err!(
                kms.re_encrypt()
                    .source_key_id(id)
                    .destination_key_id(dst.key_id())
                    .dry_run(true)
                    .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
                    .send()
                    .await
            ),
        ),
    ];
    for (what, (code, msg)) in results {
        assert_eq!((code.as_str(), msg.as_str()), want, "{what}");
    }

    // All checks run first: a dry run that would fail reports the failure.
    let r = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("k", "x")
            .dry_run(true)
            .send()
            .await
    );
    assert_invalid_ciphertext(r, "dry run with the wrong context");
    let (code, _) = expect_err!(
        kms.decrypt()
            .ciphertext_blob(blob.clone())
            .key_id(dst.key_id())
            .encryption_context("k", "v")
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(code, "IncorrectKeyException");
    let (code, _) = expect_err!(
        kms.encrypt()
            .key_id(unknown_key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .dry_run(true)
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    let (code, _) = expect_err!(
        kms.decrypt()
            .dry_run(true)
            .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
            .send()
            .await
    );
    assert_eq!(
        code, "ValidationException",
        "IGNORE_CIPHERTEXT needs a KeyId"
    );
    let (code, msg) = expect_err!(
        kms.decrypt()
            .key_id(key_arn(
                REGION,
                crate::common::OTHER_ACCOUNT,
                &unknown_key_id()
            ))
            .dry_run(true)
            .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException", "{msg}");

    // On a disabled key the state error wins over the dry run.
    kms.disable_key().key_id(id).send().await.unwrap();
    let disabled = format!("{} is disabled.", arn(&key));
    let results = [
        expect_err!(
            kms.encrypt()
                .key_id(id)
                .plaintext(Blob::new(b"x".to_vec()))
                .dry_run(true)
                .send()
                .await
        ),
        expect_err!(
            kms.generate_data_key()
                .key_id(id)
                .key_spec(DataKeySpec::Aes256)
                .dry_run(true)
                .send()
                .await
        ),
        expect_err!(
            kms.decrypt()
                .ciphertext_blob(blob.clone())
                .encryption_context("k", "v")
                .dry_run(true)
                .send()
                .await
        ),
        expect_err!(
            kms.decrypt()
                .key_id(id)
                .dry_run(true)
                .dry_run_modifiers(DryRunModifierType::IgnoreCiphertext)
                .send()
                .await
        ),
        expect_err!(
            kms.re_encrypt()
                .ciphertext_blob(blob.clone())
                .source_encryption_context("k", "v")
                .destination_key_id(dst.key_id())
                .dry_run(true)
                .send()
                .await
        ),
    ];
    for (code, msg) in results {
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("DisabledException", disabled.as_str())
        );
    }
    kms.enable_key().key_id(id).send().await.unwrap();

    // DryRun=false is an ordinary call.
    let out = kms
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("k", "v")
        .dry_run(false)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"pt");
}

#[tokio::test]
async fn grant_tokens_are_rejected_until_grants_exist() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let id = key.key_id();
    let blob = encrypt(&kms, id, b"pt", &[]).await;
    let t = "AQpAM2RhZTk1MGMyNTk2ZmZmMzEyYWVhOWViN2I1MWM4Mzc0MWFiYjc0ZDE1ODkyNGFlNTIzODZhMzgyZjBlNGY3NiKIAgEBAgB4Pa6VDCWW__MSrqnre1HIN0Grt00ViSSuUjhqOC8OT3YAAADfMIHcBgkqhkiG9w0BBwaggc4wgcsCAQAwgcUGCSqGSIb3DQEHATAeBglghkgBZQMEAS4wEQQMnEh42cM9hQ7-RAxdAgEQgIGXDGLNuh7VedqR3qnz0_aLPlFg_4C1ak4V5bmD_2kAtZ_pa3AWiX6ng_qN-xDlYgXAabmn3d";

    let results = [
        (
            "DescribeKey",
            expect_err!(kms.describe_key().key_id(id).grant_tokens(t).send().await),
        ),
        (
            "Encrypt",
            expect_err!(
                kms.encrypt()
                    .key_id(id)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .grant_tokens(t)
                    .send()
                    .await
            ),
        ),
        (
            "Decrypt",
            expect_err!(
                kms.decrypt()
                    .ciphertext_blob(blob.clone())
                    .grant_tokens(t)
                    .send()
                    .await
            ),
        ),
        (
            "ReEncrypt",
            expect_err!(
                kms.re_encrypt()
                    .ciphertext_blob(blob.clone())
                    .destination_key_id(id)
                    .grant_tokens(t)
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKey",
            expect_err!(
                kms.generate_data_key()
                    .key_id(id)
                    .key_spec(DataKeySpec::Aes256)
                    .grant_tokens(t)
                    .send()
                    .await
            ),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            expect_err!(
                kms.generate_data_key_without_plaintext()
                    .key_id(id)
                    .number_of_bytes(8)
                    .grant_tokens(t)
                    .send()
                    .await
            ),
        ),
    ];
    for (what, (code, msg)) in results {
        assert_eq!(code, "InvalidGrantTokenException", "{what}");
        assert!(!msg.is_empty(), "{what}");
    }
    // An empty list is no grant token at all.
    let out = kms
        .decrypt()
        .ciphertext_blob(blob)
        .set_grant_tokens(Some(Vec::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"pt");
}

#[tokio::test]
async fn encryption_context_size_is_bounded() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    // AWS-DEVIATION: Tresor caps the summed UTF-8 size of keys and values at 8192 bytes.
    let at_cap = ctx(&[("k", &"v".repeat(8191))]);
    let out = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(b"x".to_vec()))
        .set_encryption_context(Some(at_cap.clone()))
        .send()
        .await
        .unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob.unwrap())
        .set_encryption_context(Some(at_cap))
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"x");

    let over = ctx(&[("k", &"v".repeat(8192))]);
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .set_encryption_context(Some(over.clone()))
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    assert!(msg.contains("'encryptionContext'"), "{msg}");
    let (code, _) = expect_err!(
        kms.generate_data_key()
            .key_id(key.key_id())
            .number_of_bytes(8)
            .set_encryption_context(Some(over))
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
}
