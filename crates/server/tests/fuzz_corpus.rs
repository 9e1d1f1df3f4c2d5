//! The `kms_request` fuzz target's corpus, replayed through its invariant checks
//! (`tresor::kms_edge::fuzzing::check_request`), and the regression tests of its findings.
//! `cargo test -p tresor --test fuzz_corpus -- --ignored` rewrites the seed files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("../../../fuzz/replay.rs");

use tresor::kms_edge::fuzzing::{check_operation, check_request};

const TARGET: &str = "kms_request";

#[test]
fn replay_corpus() {
    replay(TARGET, check_request);
}

/// The CI smoke run: mutants of every corpus file through the same checks (`fuzz/replay.rs`).
#[test]
fn smoke_mutants() {
    smoke(TARGET, check_request);
}

#[test]
fn every_model_operation_is_checked() {
    for op in tresor_kms_model::operation_names() {
        check_operation(op, b"{}");
        check_operation(op, b"");
        check_operation(op, br#"{"KeyId": 1}"#);
    }
}

/// The first byte of a corpus entry picks the operation by its index among the model's.
fn entry(op: &str, body: &[u8]) -> Vec<u8> {
    let index = tresor_kms_model::operation_names()
        .position(|o| o == op)
        .unwrap_or_else(|| panic!("{op} is not in the model"));
    let mut out = vec![u8::try_from(index).unwrap()];
    out.extend_from_slice(body);
    out
}

#[test]
#[ignore = "rewrites the seed corpus"]
fn write_seed_corpus() {
    let key = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{key}");
    let blob = "AQ".repeat(60);
    let mut seeds: Vec<(String, Vec<u8>)> = tresor_kms_model::operation_names()
        .map(|op| (format!("{op}-empty"), entry(op, b"{}")))
        .collect();
    let bodies: Vec<(&str, &str, String)> = vec![
        ("Encrypt", "valid", format!(r#"{{"KeyId": "{key}", "Plaintext": "aGVsbG8=", "EncryptionContext": {{"tenant": "a", "b": ""}}, "GrantTokens": ["t"], "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}"#)),
        ("Encrypt", "bad-base64", format!(r#"{{"KeyId": "{key}", "Plaintext": "aGVsbG8"}}"#)),
        ("Encrypt", "context-not-strings", format!(r#"{{"KeyId": "{key}", "Plaintext": "aA==", "EncryptionContext": {{"a": 1}}}}"#)),
        ("Decrypt", "valid", format!(r#"{{"CiphertextBlob": "{blob}", "KeyId": "{arn}", "DryRun": true}}"#)),
        ("GenerateDataKey", "valid", r#"{"KeyId": "alias/tenant-a", "KeySpec": "AES_256", "NumberOfBytes": 32}"#.to_owned()),
        ("GenerateDataKey", "bad-enum", format!(r#"{{"KeyId": "{key}", "KeySpec": "AES_512"}}"#)),
        ("GenerateRandom", "range", r#"{"NumberOfBytes": 1025}"#.to_owned()),
        ("GenerateRandom", "float", r#"{"NumberOfBytes": 1.5e3}"#.to_owned()),
        ("CreateKey", "full", r#"{"Description": "d", "KeyUsage": "SIGN_VERIFY", "KeySpec": "ECC_NIST_P256", "Origin": "AWS_KMS", "Tags": [{"TagKey": "k", "TagValue": "v"}], "BypassPolicyLockoutSafetyCheck": false, "MultiRegion": false, "Policy": "{\"Statement\": []}"}"#.to_owned()),
        ("CreateGrant", "constraints", format!(r#"{{"KeyId": "{key}", "GranteePrincipal": "arn:aws:iam::111122223333:role/R", "Operations": ["Decrypt", "Encrypt"], "Constraints": {{"EncryptionContextSubset": {{"a": "b"}}}}, "Name": "n"}}"#)),
        ("PutKeyPolicy", "valid", format!(r#"{{"KeyId": "{key}", "PolicyName": "default", "Policy": "{{}}"}}"#)),
        ("ImportKeyMaterial", "valid", format!(r#"{{"KeyId": "{key}", "ImportToken": "{blob}", "EncryptedKeyMaterial": "{blob}", "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 1893456000}}"#)),
        ("Sign", "valid", format!(r#"{{"KeyId": "{key}", "Message": "aGk=", "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}}"#)),
        ("ListAliases", "paging", format!(r#"{{"KeyId": "{key}", "Limit": 0, "Marker": "\u0000"}}"#)),
        ("ScheduleKeyDeletion", "window", format!(r#"{{"KeyId": "{key}", "PendingWindowInDays": 6}}"#)),
        ("DescribeKey", "duplicate", format!(r#"{{"KeyId": "{key}", "KeyId": "alias/x"}}"#)),
        ("DescribeKey", "nested-duplicate", r#"{"KeyId": "k", "GrantTokens": [{"a": 1, "a": 2}]}"#.to_owned()),
        ("DescribeKey", "deep", format!("{}{}", "[".repeat(200), "]".repeat(200))),
        ("DescribeKey", "deep-object", r#"{"a":"#.repeat(300)),
        ("DescribeKey", "trailing", r#"{"KeyId": "k"} {}"#.to_owned()),
        ("DescribeKey", "null", "null".to_owned()),
        ("DescribeKey", "list", "[]".to_owned()),
        ("DescribeKey", "string", r#""KeyId""#.to_owned()),
        ("DescribeKey", "escapes", r#"{"KeyId": "\ud83d\ude00\n\t\"\\"}"#.to_owned()),
        ("DescribeKey", "lone-surrogate", r#"{"KeyId": "\ud800"}"#.to_owned()),
        ("ListKeys", "whitespace", " \n\t ".to_owned()),
        ("ListKeys", "huge-number", r#"{"Limit": 123456789012345678901234567890}"#.to_owned()),
    ];
    for (op, name, body) in bodies {
        seeds.push((format!("{op}-{name}"), entry(op, body.as_bytes())));
    }
    seeds.push((
        "DescribeKey-invalid-utf8".into(),
        entry("DescribeKey", b"{\"KeyId\": \"\xff\xfe\"}"),
    ));
    write_seeds(TARGET, &seeds);
}

/// Checks a regression input and that it is committed in the corpus as `regression-<what-broke>`
/// (`TRESOR_FUZZ_WRITE_REGRESSIONS=1` writes it).
fn regression(name: &str, op: &str, body: &[u8]) {
    let bytes = entry(op, body);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(TARGET)
        .join(format!("regression-{name}"));
    if std::env::var_os("TRESOR_FUZZ_WRITE_REGRESSIONS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let committed =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{} is not committed: {e}", path.display()));
    assert_eq!(
        committed,
        bytes,
        "{} differs from the test's input",
        path.display()
    );
    check_request(&bytes);
}

fn refusal(op: &str, body: &[u8]) -> String {
    match tresor::kms_edge::decode(op, body) {
        Ok(()) => panic!("{op} accepted {:?}", String::from_utf8_lossy(body)),
        Err(r) => r.error.to_string(),
    }
}

/// Found by the smoke run: serde_json's default float parser is not correctly rounded, so a
/// number printed and read again came back as another number (fixed: `float_roundtrip`).
#[test]
fn float_round_trip() {
    let body = br#"{"KeyId": "k", "Message": "aGk=", "SigningAlgorithm": "ECDSA_SHA_256", "GrantTokens": [9.254775809233721e+26]}"#;
    regression("float-round-trip", "Sign", body);
}

/// Found by the smoke run: a validation message echoed a caller's carriage return, so a log line
/// or terminal showed a forged second line (fixed: control characters are escaped).
#[test]
fn control_characters_in_validation_message() {
    let body = br#"{"KeyId": "k", "GranteePrincipal": "a\rn:aws:iam::111122223333:role/R", "Operations": ["Decrypt"]}"#;
    regression(
        "control-characters-in-validation-message",
        "CreateGrant",
        body,
    );
    let message = refusal("CreateGrant", body);
    assert!(
        message.contains(r"Value 'a\rn:aws:iam::111122223333:role/R'"),
        "{message}"
    );
    assert!(!message.contains('\r'), "{message}");
}

/// Found by the smoke run: the base64 refusal of a blob echoed its text (and the offending
/// character) with a raw newline.
#[test]
fn control_characters_in_blob_message() {
    let body = b"{\"CiphertextBlob\": \"AQAQ\\n\\t==\"}";
    regression("control-characters-in-blob-message", "Decrypt", body);
    let message = refusal("Decrypt", body);
    assert!(!message.contains(['\n', '\t']), "{message}");
    assert!(message.contains(r"AQAQ\n\t=="), "{message}");
    let encrypt = refusal(
        "Encrypt",
        b"{\"KeyId\": \"k\", \"Plaintext\": \"AQA\\nAQ==\"}",
    );
    assert!(
        encrypt.ends_with(r"Invalid Base64 character: '\n'"),
        "{encrypt}"
    );
}
