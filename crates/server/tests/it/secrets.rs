//! Secret hygiene: a workload of every kind of operation (symmetric, asymmetric, HMAC, key
//! agreement, data key pairs, grants, imported material, and failures of each) against a server
//! logging at `trace`; then its logs, its audit records, its data directory and every error
//! response body are scanned for every secret it handled — data keys and plaintexts, key material
//! unwrapped from the store with the root key, private keys, HMAC keys, shared secrets, the
//! import wrapping key inside each import token, secret access keys, the root key — raw, hex and
//! base64. None may appear (except a secret in the one file meant to hold it).

use std::path::{Path, PathBuf};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, DataKeyPairSpec, DataKeySpec, ExpirationModelType, GrantOperation,
    KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType, OriginType,
    SigningAlgorithmSpec, WrappingKeySpec,
};
use base64::Engine as _;
use serde_json::json;
use tresor_kms::store::{Store, material_wrap_purpose};
use tresor_kms::types::{KeyId, Region};

use crate::common;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A secret to look for, and the files (by name) allowed to hold it.
struct Secret {
    label: String,
    bytes: Vec<u8>,
    allowed_files: Vec<&'static str>,
}

#[derive(Default)]
struct Secrets(Vec<Secret>);

impl Secrets {
    fn add(&mut self, label: impl Into<String>, bytes: &[u8]) {
        self.add_allowed(label, bytes, &[]);
    }
    fn add_allowed(&mut self, label: impl Into<String>, bytes: &[u8], allowed: &[&'static str]) {
        assert!(bytes.len() >= 8, "too short to scan for without false hits");
        self.0.push(Secret {
            label: label.into(),
            bytes: bytes.to_vec(),
            allowed_files: allowed.to_vec(),
        });
    }
    /// A private key in PKCS#8: the whole DER, and the bare private scalar of EC and Ed25519 keys.
    fn add_private_key(&mut self, label: &str, pkcs8: &[u8]) {
        self.add(format!("{label} (PKCS#8)"), pkcs8);
        // RFC 8410 Ed25519: ... 04 22 04 20 <32-byte seed>
        if let Some(seed) = after(pkcs8, &[0x04, 0x22, 0x04, 0x20], 32) {
            self.add(format!("{label} (Ed25519 seed)"), seed);
        }
        // RFC 5915 ECPrivateKey: 02 01 01 04 <len> <scalar>
        if let Some(i) = find(pkcs8, &[0x02, 0x01, 0x01, 0x04])
            && let Some(&len) = pkcs8.get(i + 4)
            && let Some(scalar) = pkcs8.get(i + 5..i + 5 + usize::from(len))
        {
            self.add(format!("{label} (EC scalar)"), scalar);
        }
    }
}

/// Where `needle` first occurs in `hay` (memchr's substring search: the data directory holds
/// megabytes — the audit journal alone is 4 MiB after a few calls — and every secret is looked
/// for in six forms).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

fn after<'a>(hay: &'a [u8], prefix: &[u8], len: usize) -> Option<&'a [u8]> {
    let i = find(hay, prefix)? + prefix.len();
    hay.get(i..i + len)
}

/// The forms a secret could take: raw, hex (both cases), base64 (standard and URL-safe).
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
        ("base64", B64.encode(secret).into_bytes()),
        (
            "base64 without padding",
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(secret)
                .into_bytes(),
        ),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(secret)
                .into_bytes(),
        ),
    ]
}

/// Panics with every finding: which secret, in which form, where.
fn scan(place: &str, name: &str, hay: &[u8], secrets: &Secrets, findings: &mut Vec<String>) {
    for s in &secrets.0 {
        if s.allowed_files.contains(&name) {
            continue;
        }
        for (form, needle) in encodings(&s.bytes) {
            if find(hay, &needle).is_some() {
                findings.push(format!("{} ({form}) in {place}", s.label));
            }
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// 32 random bytes.
fn random32() -> Vec<u8> {
    let mut v = uuid::Uuid::new_v4().as_bytes().to_vec();
    v.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_audit_records_store_or_error_bodies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let log_file = tmp.path().join("tresor.log");
    let mut server = common::start_logging_to(
        &data,
        &common::default_config(),
        &["--log", "trace"],
        &log_file,
    );
    let kms = server.kms();
    let mut secrets = Secrets::default();
    let mut error_bodies: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    // Raw requests whose answers are errors: their bodies are scanned too.
    macro_rules! expect_error {
        ($label:expr, $op:expr, $body:expr) => {{
            let r = server
                .kms_raw(
                    Some(&format!("TrentService.{}", $op)),
                    $body.to_string().as_bytes(),
                )
                .await;
            assert!(r.status >= 400, "{}: {r:?}", $label);
            error_bodies.push(($label.to_owned(), r.body.clone()));
            r
        }};
    }

    // --- Symmetric keys: data keys, plaintexts, random bytes, re-encryption, grants. ---
    let sym = common::create_key(&kms).await;
    let sym_id = sym.key_id().to_owned();
    keys.push(sym_id.clone());
    let other_sym = common::create_key(&kms).await;
    keys.push(other_sym.key_id().to_owned());
    let dk = kms
        .generate_data_key()
        .key_id(&sym_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    secrets.add("data key", dk.plaintext().unwrap().as_ref());
    let dk_blob = dk.ciphertext_blob().unwrap().clone();
    let gdk_np = kms
        .generate_data_key_without_plaintext()
        .key_id(&sym_id)
        .number_of_bytes(48)
        .send()
        .await
        .unwrap();
    let np_plain = kms
        .decrypt()
        .ciphertext_blob(gdk_np.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    secrets.add(
        "data key (without plaintext)",
        np_plain.plaintext().unwrap().as_ref(),
    );
    let marker = b"PLAINTEXT-MARKER-secrets-4f1e9a".to_vec();
    secrets.add("plaintext", &marker);
    let ct = kms
        .encrypt()
        .key_id(&sym_id)
        .plaintext(Blob::new(marker.clone()))
        .encryption_context("purpose", "scan")
        .send()
        .await
        .unwrap();
    kms.re_encrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .source_encryption_context("purpose", "scan")
        .destination_key_id(other_sym.key_id())
        .send()
        .await
        .unwrap();
    let random = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    secrets.add("random bytes", random.plaintext().unwrap().as_ref());
    let grant = kms
        .create_grant()
        .key_id(&sym_id)
        .grantee_principal(format!("arn:aws:iam::{}:role/AppRole", common::ACCOUNT))
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .unwrap();
    let grant_token = grant.grant_token().unwrap().to_owned();
    // Used by the grantee with its token.
    server
        .kms_role()
        .decrypt()
        .ciphertext_blob(dk_blob.clone())
        .encryption_context("tenant", "a")
        .grant_tokens(&grant_token)
        .send()
        .await
        .unwrap();
    // Failures around them.
    expect_error!(
        "decrypt with the wrong context",
        "Decrypt",
        json!({"CiphertextBlob": B64.encode(dk_blob.as_ref()), "EncryptionContext": {"tenant": "b"}})
    );
    let mut tampered = dk_blob.as_ref().to_vec();
    if let Some(b) = tampered.last_mut() {
        *b ^= 1;
    }
    expect_error!(
        "decrypt a tampered ciphertext",
        "Decrypt",
        json!({"CiphertextBlob": B64.encode(&tampered), "EncryptionContext": {"tenant": "a"}})
    );
    let near_miss = format!("{}!", B64.encode(dk.plaintext().unwrap().as_ref()));
    expect_error!(
        "malformed plaintext",
        "Encrypt",
        json!({"KeyId": sym_id, "Plaintext": near_miss})
    );
    expect_error!(
        "plaintext too long",
        "Encrypt",
        json!({"KeyId": sym_id, "Plaintext": B64.encode([marker.as_slice(); 200].concat())})
    );
    let r = server
        .kms_raw_signed_as(
            Some("TrentService.Encrypt"),
            json!({"KeyId": sym_id, "Plaintext": B64.encode(&marker)})
                .to_string()
                .as_bytes(),
            json!({"KeyId": sym_id, "Plaintext": B64.encode(&marker)})
                .to_string()
                .as_bytes(),
            (common::OTHER_AKID, common::OTHER_SECRET),
        )
        .await;
    assert_eq!(r.status, 400);
    error_bodies.push(("another account's key".to_owned(), r.body));
    let r = server
        .kms_raw_signed_as(
            Some("TrentService.ListKeys"),
            b"{}",
            b"{}",
            (common::AKID, "not-the-secret-at-all"),
        )
        .await;
    assert_eq!(r.status, 400);
    error_bodies.push(("wrong secret".to_owned(), r.body));
    expect_error!(
        "bad grant token",
        "Decrypt",
        json!({"CiphertextBlob": B64.encode(dk_blob.as_ref()), "EncryptionContext": {"tenant": "a"}, "GrantTokens": [format!("{grant_token}x")]})
    );

    // --- Asymmetric keys: RSA encryption, ECDSA and Ed25519 signing, HMAC, key agreement. ---
    let rsa = common::create_key_of(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let signer = common::create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let ed =
        common::create_key_of(&kms, KeySpec::EccNistEdwards25519, KeyUsageType::SignVerify).await;
    let hmac = common::create_key_of(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let agree = common::create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let peer = common::create_key_of(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    for k in [&rsa, &signer, &ed, &hmac, &agree, &peer] {
        keys.push(k.key_id().to_owned());
    }
    let rsa_marker = b"RSA-PLAINTEXT-MARKER-77ab01".to_vec();
    secrets.add("RSA plaintext", &rsa_marker);
    let rsa_ct = kms
        .encrypt()
        .key_id(rsa.key_id())
        .plaintext(Blob::new(rsa_marker.clone()))
        .encryption_algorithm(aws_sdk_kms::types::EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    kms.decrypt()
        .key_id(rsa.key_id())
        .ciphertext_blob(rsa_ct.ciphertext_blob().unwrap().clone())
        .encryption_algorithm(aws_sdk_kms::types::EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    expect_error!(
        "RSA decrypt with the wrong algorithm",
        "Decrypt",
        json!({"KeyId": rsa.key_id(), "CiphertextBlob": B64.encode(rsa_ct.ciphertext_blob().unwrap().as_ref()), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"})
    );
    let message = b"message to sign 1234".to_vec();
    let sig = kms
        .sign()
        .key_id(signer.key_id())
        .message(Blob::new(message.clone()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    kms.verify()
        .key_id(signer.key_id())
        .message(Blob::new(message.clone()))
        .signature(sig.signature().unwrap().clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    expect_error!(
        "verify a wrong signature",
        "Verify",
        json!({"KeyId": signer.key_id(), "Message": B64.encode(b"other"), "Signature": B64.encode(sig.signature().unwrap().as_ref()), "SigningAlgorithm": "ECDSA_SHA_256"})
    );
    kms.sign()
        .key_id(ed.key_id())
        .message(Blob::new(message.clone()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap();
    expect_error!(
        "sign with a key agreement key",
        "Sign",
        json!({"KeyId": agree.key_id(), "Message": B64.encode(&message), "SigningAlgorithm": "ECDSA_SHA_256"})
    );
    let mac = kms
        .generate_mac()
        .key_id(hmac.key_id())
        .message(Blob::new(message.clone()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    expect_error!(
        "verify a wrong MAC",
        "VerifyMac",
        json!({"KeyId": hmac.key_id(), "Message": B64.encode(b"other"), "Mac": B64.encode(mac.mac().unwrap().as_ref()), "MacAlgorithm": "HMAC_SHA_256"})
    );
    expect_error!(
        "MAC with the wrong algorithm",
        "GenerateMac",
        json!({"KeyId": hmac.key_id(), "Message": B64.encode(&message), "MacAlgorithm": "HMAC_SHA_512"})
    );
    let peer_public = kms
        .get_public_key()
        .key_id(peer.key_id())
        .send()
        .await
        .unwrap()
        .public_key
        .unwrap();
    let shared = kms
        .derive_shared_secret()
        .key_id(agree.key_id())
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(peer_public.clone())
        .send()
        .await
        .unwrap();
    secrets.add(
        "ECDH shared secret",
        shared.shared_secret().unwrap().as_ref(),
    );
    expect_error!(
        "key agreement with a bad public key",
        "DeriveSharedSecret",
        json!({"KeyId": agree.key_id(), "KeyAgreementAlgorithm": "ECDH", "PublicKey": B64.encode(b"not a public key at all")})
    );
    for spec in [DataKeyPairSpec::EccNistP256, DataKeyPairSpec::Rsa2048] {
        let pair = kms
            .generate_data_key_pair()
            .key_id(&sym_id)
            .key_pair_spec(spec.clone())
            .send()
            .await
            .unwrap();
        secrets.add_private_key(
            &format!("data key pair {spec:?}"),
            pair.private_key_plaintext().unwrap().as_ref(),
        );
    }

    // --- Imported key material. ---
    let external = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    keys.push(external.key_id().to_owned());
    let external_arn = external.arn().unwrap().to_owned();
    let mut tokens = Vec::new();
    for (wrapping, spec) in [
        (AlgorithmSpec::RsaesOaepSha256, WrappingKeySpec::Rsa2048),
        (AlgorithmSpec::RsaAesKeyWrapSha256, WrappingKeySpec::Rsa3072),
    ] {
        let params = kms
            .get_parameters_for_import()
            .key_id(external.key_id())
            .wrapping_algorithm(wrapping.clone())
            .wrapping_key_spec(spec)
            .send()
            .await
            .unwrap();
        tokens.push((
            wrapping,
            params.import_token().unwrap().as_ref().to_vec(),
            params.public_key().unwrap().as_ref().to_vec(),
        ));
    }
    let material = random32();
    secrets.add("imported key material", &material);
    let wrapped_material = tresor_crypto::import::wrap_for_import(
        &tokens[0].2,
        tresor_crypto::import::ImportWrapping::RsaesOaepSha256,
        &material,
    )
    .unwrap();
    // A failure first: the token of the other algorithm.
    expect_error!(
        "import with a mismatched token",
        "ImportKeyMaterial",
        json!({"KeyId": external.key_id(), "ImportToken": B64.encode(&tokens[1].1), "EncryptedKeyMaterial": B64.encode(&wrapped_material), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    );
    kms.import_key_material()
        .key_id(external.key_id())
        .import_token(Blob::new(tokens[0].1.clone()))
        .encrypted_key_material(Blob::new(wrapped_material.clone()))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    let other_material = random32();
    secrets.add("rejected key material", &other_material);
    let wrapped_other = tresor_crypto::import::wrap_for_import(
        &tokens[0].2,
        tresor_crypto::import::ImportWrapping::RsaesOaepSha256,
        &other_material,
    )
    .unwrap();
    expect_error!(
        "import of different material",
        "ImportKeyMaterial",
        json!({"KeyId": external.key_id(), "ImportToken": B64.encode(&tokens[0].1), "EncryptedKeyMaterial": B64.encode(&wrapped_other), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    );
    let ext_ct = kms
        .encrypt()
        .key_id(external.key_id())
        .plaintext(Blob::new(marker.clone()))
        .send()
        .await
        .unwrap();
    kms.decrypt()
        .ciphertext_blob(ext_ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    // A few more management calls and a read of every key.
    for id in &keys {
        kms.describe_key().key_id(id).send().await.unwrap();
    }
    kms.schedule_key_deletion()
        .key_id(other_sym.key_id())
        .send()
        .await
        .unwrap();

    // --- Collect the secrets the server holds. ---
    let root_text = std::fs::read_to_string(data.join("root.key")).unwrap();
    let root = tresor_crypto::RootKey::from_file_contents(&root_text).unwrap();
    let root_bytes = hex::decode(root_text.lines().nth(1).unwrap().trim()).unwrap();
    secrets.add_allowed("root key", &root_bytes, &["root.key"]);
    {
        let store = tresor_store::SqliteStore::open(&data.join("tresor.db")).unwrap();
        let region = Region::parse(common::REGION).unwrap();
        for id in &keys {
            let rec = store
                .get_key(&region, &KeyId::parse(id).unwrap())
                .await
                .unwrap()
                .unwrap();
            assert!(!rec.materials.is_empty(), "{id} has material");
            for m in &rec.materials {
                let unwrapped = root
                    .unwrap(&material_wrap_purpose(&rec.arn(), &m.id), &m.wrapped)
                    .unwrap();
                let label = format!("key material of {:?} key {id}", rec.key_spec);
                if m.public_key.is_some() {
                    secrets.add_private_key(&label, unwrapped.expose());
                } else {
                    secrets.add(label, unwrapped.expose());
                }
            }
        }
    }
    // The import wrapping private key inside each token: "TIT1" ‖ ids ‖ validity ‖ alg ‖ wrapped.
    for (_, token, _) in &tokens {
        let (header, wrapped) = token.split_at(45);
        let mut purpose = b"import-wrapping-key\0".to_vec();
        purpose.extend_from_slice(external_arn.as_bytes());
        purpose.push(0);
        purpose.extend_from_slice(header);
        let pkcs8 = root.unwrap(&purpose, wrapped).unwrap();
        secrets.add_private_key("import wrapping private key", pkcs8.expose());
    }
    for s in [common::SECRET, common::OTHER_SECRET, common::ROLE_SECRET] {
        secrets.add(format!("secret access key {s}"), s.as_bytes());
    }
    let credentials = std::fs::read_to_string(data.join("credentials")).unwrap();
    let bootstrap_secret = credentials
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key"))
        .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
        .unwrap();
    secrets.add_allowed(
        "bootstrap secret access key",
        bootstrap_secret.as_bytes(),
        &["credentials"],
    );
    // Not secrets of the server, but never to be logged or audited either.
    let mut logged_never = Secrets::default();
    logged_never.add("grant token", grant_token.as_bytes());
    for (_, token, _) in &tokens {
        logged_never.add("import token", token);
    }
    logged_never.add("wrapped key material", &wrapped_material);
    logged_never.add("ciphertext blob", dk_blob.as_ref());

    // --- Scan. ---
    let audit_text = common::audit_records(&data)
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        audit_text.contains("ImportKeyMaterial") && audit_text.contains("DeriveSharedSecret"),
        "the audit log saw the workload"
    );
    let mut findings = Vec::new();
    let scan_data_dir = |findings: &mut Vec<String>, when: &str| {
        let all = files(&data);
        assert!(
            all.iter().any(|p| p.ends_with("tresor.db"))
                && all.iter().any(|p| p.ends_with("audit.db")),
            "{all:?}"
        );
        for path in all {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap();
            scan(
                &format!("{} ({when})", path.display()),
                &name,
                &bytes,
                &secrets,
                findings,
            );
        }
    };
    // While running (WAL not checkpointed) and after a clean stop.
    scan_data_dir(&mut findings, "running");
    assert!(server.stop().success(), "clean stop");
    scan_data_dir(&mut findings, "stopped");
    let log = [
        server.stdout_lines.join("\n").into_bytes(),
        std::fs::read(&log_file).unwrap(),
    ]
    .concat();
    assert!(
        String::from_utf8_lossy(&log).contains("tresor listening"),
        "the log was not captured"
    );
    // The scan finds what is there: the bootstrap secret, outside the file allowed to hold it.
    let mut probe = Vec::new();
    let mut unallowed = Secrets::default();
    unallowed.add("bootstrap secret access key", bootstrap_secret.as_bytes());
    scan(
        "probe",
        "probe",
        credentials.as_bytes(),
        &unallowed,
        &mut probe,
    );
    assert_eq!(probe.len(), 1, "{probe:?}");

    scan("the server's log", "log", &log, &secrets, &mut findings);
    scan(
        "the server's log",
        "log",
        &log,
        &logged_never,
        &mut findings,
    );
    scan(
        "the audit records",
        "audit",
        audit_text.as_bytes(),
        &secrets,
        &mut findings,
    );
    scan(
        "the audit records",
        "audit",
        audit_text.as_bytes(),
        &logged_never,
        &mut findings,
    );
    for (label, body) in &error_bodies {
        scan(
            &format!("the error body of {label}"),
            "body",
            body,
            &secrets,
            &mut findings,
        );
    }
    assert!(
        findings.is_empty(),
        "secrets found:\n{}",
        findings.join("\n")
    );
}
