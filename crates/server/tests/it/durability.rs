//! Durability and secret hygiene of the data directory: restarts keep everything, a SIGKILL loses
//! nothing acknowledged, the root key guards the store, and no plaintext secret is ever on disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::Engine as _;
use tresor_kms::store::{Store, material_wrap_purpose};
use tresor_kms::types::{KeyId, Region};

use crate::common::{self, Server};

fn fresh_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    (tmp, data)
}

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The forms a secret could take on disk: raw, hex, base64.
fn encodings(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    vec![
        ("raw".into(), secret.to_vec()),
        ("hex".into(), hex::encode(secret).into_bytes()),
        ("HEX".into(), hex::encode_upper(secret).into_bytes()),
        (
            "base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(secret)
                .into_bytes(),
        ),
    ]
}

/// Scans the data directory for each secret in every encoding; `allowed` names files that may hold it.
fn assert_absent(dir: &Path, secrets: &[(String, Vec<u8>, Vec<&str>)]) {
    let all = files(dir);
    assert!(
        all.iter().any(|p| p.ends_with("tresor.db")),
        "the scan must see the database: {all:?}"
    );
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for (label, secret, allowed) in secrets {
            if allowed.contains(&name.as_str()) {
                continue;
            }
            for (enc, needle) in encodings(secret) {
                assert!(
                    !contains(&bytes, &needle),
                    "{label} ({enc}) found in {}",
                    path.display()
                );
            }
        }
    }
}

/// Reads the bootstrap credentials file: (access key id, secret).
fn bootstrap_credentials(data: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data.join("credentials")).unwrap();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
            })
            .unwrap()
    };
    (get("aws_access_key_id"), get("aws_secret_access_key"))
}

#[tokio::test]
async fn data_directory_holds_no_plaintext_secrets() {
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    let kms = server.kms();
    let mut secrets: Vec<(String, Vec<u8>, Vec<&str>)> = Vec::new();
    let mut key_ids = Vec::new();
    for i in 0..3 {
        let key = kms
            .create_key()
            .description(format!("scan {i}"))
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        key_ids.push(key.key_id().to_owned());
        for _ in 0..3 {
            let dk = kms
                .generate_data_key()
                .key_id(key.key_id())
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("tenant", format!("t{i}"))
                .send()
                .await
                .unwrap();
            secrets.push((
                "data key".into(),
                dk.plaintext().unwrap().as_ref().to_vec(),
                vec![],
            ));
        }
        let marker = format!("PLAINTEXT-MARKER-{i}-d1b2c3").into_bytes();
        kms.encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new(marker.clone()))
            .send()
            .await
            .unwrap();
        secrets.push(("encrypted plaintext".into(), marker, vec![]));
    }
    // Key material, unwrapped with the root key exactly as the server does.
    let root = tresor_crypto::RootKey::from_file_contents(
        &std::fs::read_to_string(data.join("root.key")).unwrap(),
    )
    .unwrap();
    let store = tresor_store::SqliteStore::open(&data.join("tresor.db")).unwrap();
    let region = Region::parse(common::REGION).unwrap();
    for id in &key_ids {
        let rec = store
            .get_key(&region, &KeyId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(!rec.materials.is_empty());
        for m in &rec.materials {
            let material = root
                .unwrap(&material_wrap_purpose(&rec.arn(), &m.id), &m.wrapped)
                .unwrap();
            assert_eq!(material.len(), 32);
            secrets.push(("key material".into(), material.expose().to_vec(), vec![]));
        }
    }
    drop(store);
    for s in [common::SECRET, common::OTHER_SECRET, common::ROLE_SECRET] {
        secrets.push((
            "configured secret access key".into(),
            s.as_bytes().to_vec(),
            vec![],
        ));
    }
    let (_, bootstrap_secret) = bootstrap_credentials(&data);
    secrets.push((
        "bootstrap secret access key".into(),
        bootstrap_secret.into_bytes(),
        vec!["credentials"],
    ));
    secrets.push(("root key".into(), root_bytes(&data), vec!["root.key"]));

    // While running (WAL not yet checkpointed) and after a clean stop.
    assert_absent(&data, &secrets);
    assert!(server.stop().success());
    assert_absent(&data, &secrets);
}

fn root_bytes(data: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(data.join("root.key")).unwrap();
    hex::decode(text.lines().nth(1).unwrap().trim()).unwrap()
}

#[tokio::test]
async fn restart_keeps_keys_credentials_and_ciphertexts() {
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    assert!(
        server
            .stdout_lines
            .iter()
            .any(|l| l.contains("created the bootstrap administrator")),
        "first start announces the bootstrap credentials: {:?}",
        server.stdout_lines
    );
    let (boot_akid, boot_secret) = bootstrap_credentials(&data);
    let kms = server.kms();
    let key = kms
        .create_key()
        .description("survivor")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let dk = kms
        .generate_data_key()
        .key_id(key.key_id())
        .number_of_bytes(48)
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    let ct = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(b"hello".to_vec()))
        .send()
        .await
        .unwrap();
    let boot_key = common::kms_client(&server.endpoint, &boot_akid, &boot_secret, common::REGION)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(server.stop().success(), "SIGTERM stops cleanly");

    let server = Server::start_in(&data, &common::default_config(), &[]);
    assert!(
        !server
            .stdout_lines
            .iter()
            .any(|l| l.contains("created the bootstrap administrator")),
        "the bootstrap secret is announced only once"
    );
    assert_eq!(
        bootstrap_credentials(&data),
        (boot_akid.clone(), boot_secret.clone()),
        "credentials file unchanged"
    );
    let kms = server.kms();
    let described = kms
        .describe_key()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(described.description(), Some("survivor"));
    assert_eq!(
        described.current_key_material_id(),
        key.current_key_material_id()
    );
    let pt = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pt.plaintext().unwrap().as_ref(),
        dk.plaintext().unwrap().as_ref()
    );
    let pt = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"hello");
    // The bootstrap administrator still authenticates and still owns its key.
    let boot = common::kms_client(&server.endpoint, &boot_akid, &boot_secret, common::REGION);
    boot.describe_key()
        .key_id(boot_key.key_id())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_key() {
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    let kms = server.kms();
    let mut acknowledged = Vec::new();
    for _ in 0..20 {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
        let ct = kms
            .encrypt()
            .key_id(key.key_id())
            .plaintext(Blob::new(key.key_id().as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        acknowledged.push((
            key.key_id().to_owned(),
            ct.ciphertext_blob().unwrap().clone(),
        ));
    }
    kms.disable_key()
        .key_id(&acknowledged[0].0)
        .send()
        .await
        .unwrap();
    server.kill();

    let server = Server::start_in(&data, &common::default_config(), &[]);
    let kms = server.kms();
    let listed = kms.list_keys().limit(1000).send().await.unwrap();
    assert_eq!(listed.keys().len(), 20);
    let d = kms
        .describe_key()
        .key_id(&acknowledged[0].0)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        d.key_state(),
        Some(&aws_sdk_kms::types::KeyState::Disabled),
        "an acknowledged state change survives"
    );
    for (id, ct) in &acknowledged[1..] {
        let pt = kms
            .decrypt()
            .ciphertext_blob(ct.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(pt.plaintext().unwrap().as_ref(), id.as_bytes());
    }
}

/// Runs `tresor serve` expecting it to refuse to start; returns its stderr.
fn refuse_to_start(data: &Path) -> String {
    let config = data.parent().unwrap().join("tresor.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "must not start: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_store_refuses_a_missing_or_different_root_key() {
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    let key = server
        .kms()
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(server.stop().success());
    let original = std::fs::read(data.join("root.key")).unwrap();

    std::fs::remove_file(data.join("root.key")).unwrap();
    let err = refuse_to_start(&data);
    assert!(
        err.contains("root key file") && err.contains("missing"),
        "{err}"
    );
    assert!(
        !data.join("root.key").exists(),
        "no new root key is made for a store that has data"
    );

    let other = tresor_crypto::RootKey::generate().unwrap();
    std::fs::write(data.join("root.key"), other.to_file_contents().as_bytes()).unwrap();
    let err = refuse_to_start(&data);
    assert!(
        err.contains("not the one this store was created with"),
        "{err}"
    );

    std::fs::write(data.join("root.key"), &original).unwrap();
    let server = Server::start_in(&data, &common::default_config(), &[]);
    server
        .kms()
        .describe_key()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap();
}

#[cfg(unix)]
#[test]
fn secret_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_tmp, data) = fresh_dir();
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    assert!(server.stop().success());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data.join("root.key")), 0o600);
    assert_eq!(mode(&data.join("credentials")), 0o600);
    assert_eq!(mode(&data), 0o700);
}
