//! The audit trail through the real server: record shapes against the reference CloudTrail
//! examples, failure records, durability across SIGKILL, `tresor audit verify/lookup/export`.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::process::Command;

use aws_sdk_kms::operation::RequestId as _;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use serde_json::Value;

use crate::common::{self, Server};

fn tresor(args: &[&str], data: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// All records (newest first) via `tresor audit lookup`.
fn lookup(data: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "lookup", "--limit", "100000"];
    args.extend_from_slice(extra);
    let (ok, out, err) = tresor(&args, data);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn by_request_id<'a>(records: &'a [Value], id: &str) -> &'a Value {
    let matching: Vec<&Value> = records.iter().filter(|r| r["requestID"] == id).collect();
    assert_eq!(matching.len(), 1, "exactly one record for request {id}");
    matching[0]
}

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cloudtrail-examples-from-seed.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The envelope every record must have, compared with the reference's field set.
fn assert_envelope(rec: &Value, reference: &Value) {
    let optional: BTreeSet<String> = [
        "errorCode",
        "errorMessage",
        "additionalEventData",
        "sharedEventID",
        "tlsDetails",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let ours: BTreeSet<String> = keys_of(rec).difference(&optional).cloned().collect();
    let theirs: BTreeSet<String> = keys_of(reference).difference(&optional).cloned().collect();
    assert_eq!(ours, theirs, "top-level CloudTrail fields");
    assert_eq!(rec["eventVersion"], "1.11");
    assert_eq!(rec["eventSource"], "kms.amazonaws.com");
    assert_eq!(rec["eventType"], "AwsApiCall");
    assert_eq!(rec["managementEvent"], true);
    assert_eq!(rec["eventCategory"], "Management");
    assert_eq!(rec["awsRegion"], common::REGION);
    assert_eq!(rec["recipientAccountId"], common::ACCOUNT);
    assert_eq!(rec["sourceIPAddress"], "127.0.0.1");
    assert!(
        rec["userAgent"].as_str().unwrap().contains("aws-sdk-rust"),
        "{}",
        rec["userAgent"]
    );
    let t = rec["eventTime"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "eventTime {t}"
    );
    assert_eq!(rec["eventID"].as_str().unwrap().len(), 36);
    let ui = &rec["userIdentity"];
    assert_eq!(ui["type"], "IAMUser");
    assert_eq!(
        ui["arn"],
        format!("arn:aws:iam::{}:user/alice", common::ACCOUNT)
    );
    assert_eq!(ui["accountId"], common::ACCOUNT);
    assert_eq!(ui["accessKeyId"], common::AKID);
    assert_eq!(ui["userName"], "alice");
    assert!(ui["principalId"].as_str().unwrap().starts_with("AIDA"));
}

fn assert_resources(rec: &Value, arns: &[&str]) {
    let got: Vec<&str> = rec["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ARN"].as_str().unwrap())
        .collect();
    assert_eq!(got, arns);
    for r in rec["resources"].as_array().unwrap() {
        assert_eq!(r["type"], "AWS::KMS::Key");
        assert_eq!(r["accountId"], common::ACCOUNT);
    }
}

#[tokio::test]
async fn records_match_the_reference_shapes() {
    let (tmp, server) = {
        let tmp = tempfile::tempdir().unwrap();
        let s = Server::start_in(&tmp.path().join("data"), &common::default_config(), &[]);
        (tmp, s)
    };
    let kms = server.kms();
    let ctx = "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId";
    let k1 = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    let k2 = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    let (a1, a2) = (k1.arn().unwrap(), k2.arn().unwrap());
    let described = kms.describe_key().key_id(k1.key_id()).send().await.unwrap();
    let gdk = kms
        .generate_data_key_without_plaintext()
        .key_id(a1)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("aws:voiceid:domain:arn", ctx)
        .send()
        .await
        .unwrap();
    let dec = kms
        .decrypt()
        .ciphertext_blob(gdk.ciphertext_blob().unwrap().clone())
        .encryption_context("aws:voiceid:domain:arn", ctx)
        .send()
        .await
        .unwrap();
    let re = kms
        .re_encrypt()
        .ciphertext_blob(gdk.ciphertext_blob().unwrap().clone())
        .source_encryption_context("aws:voiceid:domain:arn", ctx)
        .destination_key_id(a2)
        .destination_encryption_context("aws:voiceid:domain:arn", ctx)
        .send()
        .await
        .unwrap();
    let grant = kms
        .create_grant()
        .key_id(a1)
        .grantee_principal(format!("arn:aws:iam::{}:role/AppRole", common::ACCOUNT))
        .retiring_principal(format!("arn:aws:iam::{}:role/AppRole", common::ACCOUNT))
        .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
        .operations(aws_sdk_kms::types::GrantOperation::GenerateDataKey)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_subset("aws:voiceid:domain:arn", ctx)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let records = lookup(&server.data_dir, &[]);
    let reference = reference();

    let r = by_request_id(&records, grant.request_id().unwrap());
    assert_envelope(r, &reference["CreateGrant"]);
    assert_eq!(r["readOnly"], false);
    assert_eq!(
        keys_of(&r["requestParameters"]),
        keys_of(&reference["CreateGrant"]["requestParameters"])
    );
    assert_eq!(r["requestParameters"]["keyId"], a1);
    assert_eq!(
        r["requestParameters"]["constraints"]["encryptionContextSubset"]["aws:voiceid:domain:arn"],
        ctx
    );
    assert_eq!(
        r["requestParameters"]["operations"],
        serde_json::json!(["Decrypt", "GenerateDataKey"])
    );
    assert_eq!(
        keys_of(&r["responseElements"]),
        keys_of(&reference["CreateGrant"]["responseElements"])
    );
    assert_eq!(r["responseElements"]["grantId"], grant.grant_id().unwrap());
    assert!(
        !r.to_string().contains(grant.grant_token().unwrap()),
        "grant tokens are never logged"
    );
    assert_resources(r, &[a1]);

    let r = by_request_id(&records, described.request_id().unwrap());
    assert_envelope(r, &reference["DescribeKey"]);
    assert_eq!(r["eventName"], "DescribeKey");
    assert_eq!(r["readOnly"], true);
    assert_eq!(
        r["requestParameters"],
        serde_json::json!({"keyId": k1.key_id()})
    );
    assert_eq!(r["responseElements"], Value::Null);
    assert_resources(r, &[a1]);

    let r = by_request_id(&records, gdk.request_id().unwrap());
    assert_envelope(r, &reference["GenerateDataKeyWithoutPlaintext"]);
    assert_eq!(
        keys_of(&r["requestParameters"]),
        keys_of(&reference["GenerateDataKeyWithoutPlaintext"]["requestParameters"])
    );
    assert_eq!(r["requestParameters"]["keySpec"], "AES_256");
    assert_eq!(r["requestParameters"]["keyId"], a1);
    assert_eq!(
        r["requestParameters"]["encryptionContext"]["aws:voiceid:domain:arn"],
        ctx
    );
    assert_eq!(r["responseElements"], Value::Null);
    assert_eq!(
        r["additionalEventData"]["keyMaterialId"],
        k1.current_key_material_id().unwrap()
    );
    assert_resources(r, &[a1]);

    let r = by_request_id(&records, dec.request_id().unwrap());
    assert_envelope(r, &reference["Decrypt"]);
    // Decrypt logs the resolved key ARN and always the algorithm, exactly the reference's members.
    assert_eq!(
        keys_of(&r["requestParameters"]),
        keys_of(&reference["Decrypt"]["requestParameters"])
    );
    assert_eq!(r["requestParameters"]["keyId"], a1);
    assert_eq!(
        r["requestParameters"]["encryptionAlgorithm"],
        "SYMMETRIC_DEFAULT"
    );
    assert_eq!(r["responseElements"], Value::Null);
    assert_resources(r, &[a1]);

    let r = by_request_id(&records, re.request_id().unwrap());
    assert_envelope(r, &reference["ReEncrypt"]);
    let mut want = keys_of(&reference["ReEncrypt"]["requestParameters"]);
    // The reference's sourceAAD/destinationAAD are sample placeholders of a seed document; KMS
    // ciphertexts carry no caller AAD and Tresor logs none.
    want.remove("sourceAAD");
    want.remove("destinationAAD");
    assert_eq!(keys_of(&r["requestParameters"]), want);
    assert_eq!(r["requestParameters"]["sourceKeyId"], a1);
    assert_eq!(r["requestParameters"]["destinationKeyId"], a2);
    assert_resources(r, &[a1, a2]);

    // No record holds plaintext or ciphertext.
    let all = records.iter().map(|r| r.to_string()).collect::<String>();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(
        !all.contains(&b64.encode(dec.plaintext().unwrap().as_ref())),
        "plaintext in the audit log"
    );
    assert!(
        !all.contains(&b64.encode(gdk.ciphertext_blob().unwrap().as_ref())),
        "ciphertext in the audit log"
    );
    drop(tmp);
}

#[tokio::test]
async fn failures_are_recorded_with_their_error() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_in(&tmp.path().join("data"), &common::default_config(), &[]);
    let kms = server.kms();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    let ct = kms
        .encrypt()
        .key_id(key.key_id())
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    // InvalidCiphertext (wrong context), AccessDenied (other account), validation, not found.
    let e1 = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .encryption_context("a", "b")
        .send()
        .await
        .unwrap_err();
    let other = server.kms_as(common::OTHER_AKID, common::OTHER_SECRET);
    let e2 = other
        .describe_key()
        .key_id(key.arn().unwrap())
        .send()
        .await
        .unwrap_err();
    let e3 = kms
        .generate_data_key()
        .key_id(key.key_id())
        .number_of_bytes(5000)
        .send()
        .await
        .unwrap_err();
    let e4 = kms
        .describe_key()
        .key_id("fake-key-id")
        .send()
        .await
        .unwrap_err();
    let records = lookup(&server.data_dir, &[]);
    let get = |e: &dyn aws_sdk_kms::operation::RequestId| {
        by_request_id(&records, e.request_id().unwrap()).clone()
    };

    let r = get(&e1);
    assert_eq!(r["eventName"], "Decrypt");
    assert_eq!(r["errorCode"], "InvalidCiphertextException");
    assert!(
        r.get("errorMessage").is_none(),
        "AWS sends no message for InvalidCiphertextException"
    );
    assert_eq!(
        r["requestParameters"]["encryptionContext"],
        serde_json::json!({"a": "b"})
    );

    let r = get(&e2);
    assert_eq!(r["errorCode"], "AccessDeniedException");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("User: arn:aws:iam::444455556666:root is not authorized")
    );
    // A denied cross-account request is logged in the caller's account only.
    assert_eq!(r["recipientAccountId"], common::OTHER_ACCOUNT);
    assert_eq!(r["userIdentity"]["type"], "Root");

    let r = get(&e3);
    assert_eq!(r["eventName"], "GenerateDataKey");
    assert_eq!(r["errorCode"], "ValidationException");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("numberOfBytes")
    );

    let r = get(&e4);
    assert_eq!(r["errorCode"], "NotFoundException");
    assert_eq!(r["errorMessage"], "Invalid keyId 'fake-key-id'");

    // Lookup filters.
    assert_eq!(
        lookup(&server.data_dir, &["--error-code", "AccessDeniedException"]).len(),
        1
    );
    assert_eq!(
        lookup(&server.data_dir, &["--event-name", "CreateKey"]).len(),
        1
    );
    // CreateKey, Encrypt, the failed Decrypt, and the other account's denied DescribeKey (logged
    // in the caller's account, naming the key it tried).
    assert_eq!(
        lookup(&server.data_dir, &["--key-arn", key.arn().unwrap()]).len(),
        4
    );
    assert_eq!(
        lookup(
            &server.data_dir,
            &["--principal-arn", "arn:aws:iam::444455556666:root"]
        )
        .len(),
        1
    );
    assert!(lookup(&server.data_dir, &["--start", "2100-01-01T00:00:00Z"]).is_empty());
    // The filters LookupEvents also has, against the same filter over every record.
    let all = lookup(&server.data_dir, &[]);
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|r| f(r)).count();
    let one = lookup(
        &server.data_dir,
        &["--event-id", r["eventID"].as_str().unwrap()],
    );
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["requestID"], r["requestID"]);
    let user = all
        .iter()
        .find(|r| r["userIdentity"]["type"] == "IAMUser")
        .expect("a call by an IAM user");
    let name = user["userIdentity"]["userName"].as_str().unwrap();
    let access_key = user["userIdentity"]["accessKeyId"].as_str().unwrap();
    for (args, expect) in [
        (
            ["--username", name],
            count(&|r| r["userIdentity"]["userName"] == name),
        ),
        (
            ["--access-key-id", access_key],
            count(&|r| r["userIdentity"]["accessKeyId"] == access_key),
        ),
        (["--read-only", "false"], count(&|r| r["readOnly"] == false)),
        (["--read-only", "true"], count(&|r| r["readOnly"] == true)),
        (["--region", "eu-west-3"], 0),
    ] {
        assert!(expect > 0 || args[0] == "--region", "{args:?}");
        assert_eq!(lookup(&server.data_dir, &args).len(), expect, "{args:?}");
    }
}

#[tokio::test]
async fn verify_passes_then_detects_tampering_via_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &common::default_config(), &[]);
    let kms = server.kms();
    for _ in 0..5 {
        kms.create_key().send().await.unwrap();
    }
    let (ok, out, err) = tresor(&["audit", "verify"], &data);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["chains"][0]["records"], 5);
    // Verification with the exported public key only (no root key needed).
    let (ok, pk, _) = tresor(&["audit", "public-key"], &data);
    assert!(ok);
    assert_eq!(pk.trim().len(), 64);
    assert!(server.stop().success());
    std::fs::rename(data.join("root.key"), tmp.path().join("root.key.offline")).unwrap();
    let (ok, out, _) = tresor(&["audit", "verify", "--public-key", pk.trim()], &data);
    assert!(ok, "{out}");

    // Record 3's JSON is in the record files (`audit.records`), where its run in the index
    // points.
    let (at, len) = tresor_store::sqlite_audit::record_file_span(&data.join("audit.db"), "main", 3)
        .unwrap()
        .expect("record 3 is in the record files");
    assert!(edit_record_files(
        &data,
        at,
        len,
        b"CreateKey",
        b"DeleteKey"
    ));
    let (ok, out, _) = tresor(&["audit", "verify", "--public-key", pk.trim()], &data);
    assert!(!ok, "tampering must fail verification: {out}");
    assert!(out.contains("record 3 was modified"), "{out}");
}

/// Replaces `from` with `to` (as long) in the record-file bytes `at..at + len`, as an attacker
/// with file access would: whether it was there.
fn edit_record_files(data: &Path, at: u64, len: u64, from: &[u8], to: &[u8]) -> bool {
    let segments = tresor_store::audit_records::segments(&data.join("audit.db")).unwrap();
    let Some((start, path)) = segments.into_iter().rev().find(|(s, _)| *s <= at) else {
        return false;
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let range = (at - start) as usize..(at - start + len) as usize;
    let Some(i) = bytes[range.clone()]
        .windows(from.len())
        .position(|w| w == from)
    else {
        return false;
    };
    bytes[range.start + i..range.start + i + to.len()].copy_from_slice(to);
    std::fs::write(&path, bytes).unwrap();
    true
}

#[tokio::test]
async fn no_acknowledged_call_is_missing_after_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut acknowledged: Vec<String> = Vec::new();
    for round in 0..3 {
        let mut server = Server::start_in(&data, &common::default_config(), &[]);
        let key = server.kms().create_key().send().await.unwrap();
        acknowledged.push(key.request_id().unwrap().to_owned());
        let key_id = key.key_metadata.unwrap().key_id().to_owned();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let kms = server.kms();
            let key_id = key_id.clone();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                // Until the server is gone (an error) or the collector stops listening.
                while let Ok(out) = kms
                    .generate_data_key()
                    .key_id(&key_id)
                    .key_spec(DataKeySpec::Aes256)
                    .send()
                    .await
                {
                    if tx.send(out.request_id().unwrap().to_owned()).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        // Let the load run, then kill -9 mid-flight.
        let mut seen = 0;
        while seen < 150 + round * 50 {
            match rx.recv().await {
                Some(id) => {
                    acknowledged.push(id);
                    seen += 1;
                }
                None => break,
            }
        }
        server.kill();
        for t in tasks {
            let _ = t.await;
        }
        while let Ok(id) = rx.try_recv() {
            acknowledged.push(id);
        }
    }
    let logged: BTreeSet<String> = lookup(&data, &[])
        .iter()
        .map(|r| r["requestID"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !logged.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls missing from the audit log: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let (ok, out, err) = tresor(&["audit", "verify"], &data);
    assert!(ok, "the log verifies after three SIGKILLs: {out}{err}");
}

#[tokio::test]
async fn export_writes_cloudtrail_log_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let export = tmp.path().join("export");
    let server = Server::start_in(&data, &common::default_config(), &[]);
    let kms = server.kms();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    kms.describe_key()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap();
    server
        .kms_in_region("eu-west-1")
        .list_keys()
        .send()
        .await
        .unwrap();
    let run = || {
        let (ok, out, err) = tresor(
            &["audit", "export", "--dir", export.to_str().unwrap()],
            &data,
        );
        assert!(ok, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let first = run();
    assert_eq!(first["records"], 3);
    let files: Vec<String> = first["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files.len(), 2, "one file per region: {files:?}");
    let mut total = 0;
    for f in &files {
        let rel = Path::new(f)
            .strip_prefix(&export)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(
            &parts[..3],
            &["AWSLogs", common::ACCOUNT, "CloudTrail"],
            "{rel}"
        );
        let region = parts[3];
        assert!(
            parts[4].len() == 4 && parts[5].len() == 2 && parts[6].len() == 2,
            "{rel}"
        );
        let name = parts[7];
        assert!(
            name.starts_with(&format!("{}_CloudTrail_{region}_", common::ACCOUNT))
                && name.ends_with(".json.gz"),
            "{name}"
        );
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        for r in doc["Records"].as_array().unwrap() {
            assert_eq!(r["awsRegion"], region);
            total += 1;
        }
    }
    assert_eq!(total, 3);
    // Incremental: nothing new, nothing written; one more call, one more record.
    assert_eq!(run()["records"], 0);
    kms.list_keys().send().await.unwrap();
    assert_eq!(run()["records"], 1);
}
