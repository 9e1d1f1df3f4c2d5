//! The wire protocol seen raw: hand-written HTTP/1.1 requests, signed with `aws-sigv4` where
//! needed, checking envelopes, headers and protocol-level errors.

use std::time::{Duration, SystemTime};

use aws_sdk_kms::operation::RequestId as _;
use serde_json::{Value, json};

use crate::common::{
    AKID, REGION, RawResponse, SECRET, Server, create_key, raw_http, sigv4_headers,
};
use crate::expect_err;

const JSON_11: &str = "application/x-amz-json-1.1";

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 29
        && [
            "Mon, ", "Tue, ", "Wed, ", "Thu, ", "Fri, ", "Sat, ", "Sun, ",
        ]
        .iter()
        .any(|d| s.starts_with(d))
        && s.ends_with(" GMT")
        && b[7] == b' '
        && b[11] == b' '
        && b[16] == b' '
        && b[19] == b':'
        && b[22] == b':'
}

fn assert_common_headers(r: &RawResponse) {
    let id = r
        .header("x-amzn-requestid")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId: {r:?}"));
    assert!(crate::common::is_lower_uuid(id), "request id {id}");
    let date = r.header("date").unwrap_or_else(|| panic!("no Date: {r:?}"));
    assert!(is_imf_fixdate(date), "Date {date}");
}

/// A KMS error response: 400, JSON 1.1, `{"__type", "message"}` and nothing else, the type also
/// in `x-amzn-ErrorType`. Returns the message (None when the body has none).
fn assert_kms_error(r: &RawResponse, status: u16, ty: &str) -> Option<String> {
    assert_eq!(
        r.status,
        status,
        "{r:?} / {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_common_headers(r);
    assert_eq!(r.header("content-type"), Some(JSON_11));
    assert_eq!(r.header("x-amzn-errortype"), Some(ty));
    let v = r.json();
    let obj = v.as_object().expect("error body is an object");
    assert_eq!(obj.get("__type"), Some(&json!(ty)), "{v}");
    for k in obj.keys() {
        assert!(
            k == "__type" || k == "message",
            "unexpected member {k} in {v}"
        );
    }
    obj.get("message")
        .map(|m| m.as_str().expect("message is a string").to_owned())
}

fn assert_ok(r: &RawResponse) -> Value {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_common_headers(r);
    assert_eq!(r.header("content-type"), Some(JSON_11));
    assert_eq!(r.header("x-amzn-errortype"), None);
    if r.body.is_empty() {
        json!({})
    } else {
        r.json()
    }
}

fn assert_no_nulls(v: &Value) {
    match v {
        Value::Null => panic!("null in a response"),
        Value::Array(a) => a.iter().for_each(assert_no_nulls),
        Value::Object(o) => o.values().for_each(assert_no_nulls),
        _ => {}
    }
}

fn target(op: &str) -> String {
    format!("TrentService.{op}")
}

#[tokio::test]
async fn health() {
    let server = Server::start();
    let r = raw_http(server.authority(), "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_common_headers(&r);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["store"], "reachable", "{v}");
    assert!(v["version"].is_string(), "{v}");
}

#[tokio::test]
async fn unsigned_and_malformed_authorization() {
    let server = Server::start();
    let headers = vec![
        ("Content-Type".to_owned(), JSON_11.to_owned()),
        ("X-Amz-Target".to_owned(), target("ListKeys")),
    ];
    let r = raw_http(server.authority(), "POST", "/", &headers, b"{}").await;
    let msg = assert_kms_error(&r, 400, "MissingAuthenticationTokenException");
    assert!(msg.is_some_and(|m| !m.is_empty()));

    let mut basic = headers.clone();
    basic.push(("Authorization".to_owned(), "Basic Zm9vOmJhcg==".to_owned()));
    let r = raw_http(server.authority(), "POST", "/", &basic, b"{}").await;
    assert_kms_error(&r, 400, "MissingAuthenticationTokenException");

    let mut broken = headers.clone();
    broken.push(("X-Amz-Date".to_owned(), "20240101T000000Z".to_owned()));
    broken.push((
        "Authorization".to_owned(),
        "AWS4-HMAC-SHA256 Credential=FOOBARKEY".to_owned(),
    ));
    let r = raw_http(server.authority(), "POST", "/", &broken, b"{}").await;
    assert_kms_error(&r, 400, "IncompleteSignatureException");
}

#[tokio::test]
async fn signature_must_cover_the_body_actually_sent() {
    let server = Server::start();
    let r = server
        .kms_raw_signed_as(
            Some(&target("GenerateRandom")),
            br#"{"NumberOfBytes":8}"#,
            br#"{"NumberOfBytes":9}"#,
            (AKID, SECRET),
        )
        .await;
    let msg = assert_kms_error(&r, 400, "InvalidSignatureException");
    assert_eq!(
        msg.as_deref(),
        Some(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        )
    );
    // The same request, body unchanged, succeeds.
    let r = server
        .kms_raw(Some(&target("GenerateRandom")), br#"{"NumberOfBytes":9}"#)
        .await;
    let v = assert_ok(&r);
    assert_eq!(
        v["Plaintext"].as_str().map(str::len),
        Some(12),
        "9 bytes are 12 base64 characters: {v}"
    );
}

#[tokio::test]
async fn clock_skew_message_names_the_request_time() {
    let server = Server::start();
    let body = b"{}";
    let mut headers = vec![
        ("Content-Type".to_owned(), JSON_11.to_owned()),
        ("X-Amz-Target".to_owned(), target("ListKeys")),
    ];
    let signed_at = SystemTime::now() - Duration::from_secs(400);
    let auth = sigv4_headers(
        server.authority(),
        "POST",
        "/",
        &headers,
        body,
        (AKID, SECRET),
        REGION,
        "kms",
        signed_at,
    );
    let amz_date = auth
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
        .unwrap()
        .1
        .clone();
    headers.extend(auth);
    let r = raw_http(server.authority(), "POST", "/", &headers, body).await;
    let msg = assert_kms_error(&r, 400, "InvalidSignatureException").unwrap();
    assert!(
        msg.starts_with(&format!(
            "Signature expired: {amz_date} is now earlier than "
        )),
        "{msg}"
    );
    assert!(msg.ends_with(" - 5 min.)"), "{msg}");
}

#[tokio::test]
async fn unknown_or_missing_target_is_unknown_operation() {
    let server = Server::start();
    for t in [
        Some("TrentService.NoSuchOperation"),
        Some("Foo.ListKeys"),
        Some("ListKeys"),
        None,
    ] {
        let r = server.kms_raw(t, b"{}").await;
        assert_kms_error(&r, 400, "UnknownOperationException");
    }
}

#[tokio::test]
async fn model_operations_not_implemented_are_unsupported() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    let cases = [
        (
            "ReplicateKey",
            json!({"KeyId": key.key_id(), "ReplicaRegion": "us-west-2"}),
        ),
        // GetPublicKey exists, but a symmetric key has no public key.
        ("GetPublicKey", json!({"KeyId": key.key_id()})),
        ("DescribeCustomKeyStores", json!({})),
    ];
    for (op, body) in cases {
        let r = server
            .kms_raw(Some(&target(op)), body.to_string().as_bytes())
            .await;
        let msg = assert_kms_error(&r, 400, "UnsupportedOperationException");
        assert!(msg.is_some_and(|m| !m.is_empty()), "{op}");
    }
    // Through the SDK as well.
    let (code, _) = expect_err!(
        server
            .kms()
            .get_public_key()
            .key_id(key.key_id())
            .send()
            .await
    );
    assert_eq!(code, "UnsupportedOperationException");
}

#[tokio::test]
async fn bodies_that_are_not_the_input_shape_are_serialization_errors() {
    let server = Server::start();
    let describe = target("DescribeKey");
    let r = server.kms_raw(Some(&describe), b"not json").await;
    assert_kms_error(&r, 400, "SerializationException");
    let r = server.kms_raw(Some(&describe), br#"{"KeyId": 5}"#).await;
    let msg = assert_kms_error(&r, 400, "SerializationException");
    assert_eq!(
        msg.as_deref(),
        Some("NUMBER_VALUE can not be converted to a String")
    );
    let r = server.kms_raw(Some(&describe), b"[]").await;
    let msg = assert_kms_error(&r, 400, "SerializationException");
    assert_eq!(
        msg.as_deref(),
        Some("Start of list found where not expected")
    );
    let r = server
        .kms_raw(
            Some(&target("GenerateRandom")),
            br#"{"NumberOfBytes": "8"}"#,
        )
        .await;
    let msg = assert_kms_error(&r, 400, "SerializationException");
    assert_eq!(
        msg.as_deref(),
        Some("STRING_VALUE can not be converted to an Integer")
    );
    let r = server
        .kms_raw(
            Some(&target("Encrypt")),
            br#"{"KeyId": "x", "Plaintext": "aGk=", "EncryptionContext": {"a": 1}}"#,
        )
        .await;
    assert_kms_error(&r, 400, "SerializationException");
}

#[tokio::test]
async fn model_validation_over_raw_json() {
    let server = Server::start();
    // Every violation is reported, Coral style.
    let r = server.kms_raw(Some(&target("Encrypt")), b"{}").await;
    let msg = assert_kms_error(&r, 400, "ValidationException");
    assert_eq!(
        msg.as_deref(),
        Some(
            "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
        )
    );
    let key = create_key(&server.kms()).await;
    let body = json!({"KeyId": key.key_id(), "KeySpec": "AES_512"}).to_string();
    let r = server
        .kms_raw(Some(&target("GenerateDataKey")), body.as_bytes())
        .await;
    let msg = assert_kms_error(&r, 400, "ValidationException").unwrap();
    assert!(
        msg.starts_with("1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["),
        "{msg}"
    );
    assert!(msg.contains("AES_256") && msg.contains("AES_128"), "{msg}");

    // An empty body is an empty input; unknown members are ignored.
    let v = assert_ok(&server.kms_raw(Some(&target("ListKeys")), b"").await);
    assert_eq!(v["Truncated"], json!(false));
    let v = assert_ok(
        &server
            .kms_raw(
                Some(&target("GenerateRandom")),
                br#"{"NumberOfBytes": 3, "FutureMember": {"x": [1]}}"#,
            )
            .await,
    );
    assert_eq!(v["Plaintext"].as_str().map(str::len), Some(4));
    let r = server.kms_raw(Some(&target("GenerateRandom")), b"{}").await;
    assert_eq!(
        assert_kms_error(&r, 400, "ValidationException").as_deref(),
        Some("NumberOfBytes is required.")
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = Server::start_with_args(&["--max-body-bytes=1024"]);
    let headers = vec![
        ("Content-Type".to_owned(), JSON_11.to_owned()),
        ("X-Amz-Target".to_owned(), target("DescribeKey")),
    ];
    let body = format!("{{\"KeyId\":\"{}\"}}", "a".repeat(2048));
    let r = raw_http(server.authority(), "POST", "/", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_common_headers(&r);
    assert!(r.json()["__type"].is_string());
    // A signed request of exactly the limit is served.
    let mut body = br#"{"NumberOfBytes":1}"#.to_vec();
    body.resize(1024, b' ');
    let r = server.kms_raw(Some(&target("GenerateRandom")), &body).await;
    assert_ok(&r);
    let mut body = br#"{"NumberOfBytes":1}"#.to_vec();
    body.resize(1025, b' ');
    let r = server.kms_raw(Some(&target("GenerateRandom")), &body).await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn success_envelopes() {
    let server = Server::start();
    let r = server
        .kms_raw(Some(&target("CreateKey")), br#"{"Description":"raw"}"#)
        .await;
    let v = assert_ok(&r);
    assert_no_nulls(&v);
    let m = &v["KeyMetadata"];
    assert!(
        m["CreationDate"].is_number(),
        "CreationDate must be epoch seconds: {m}"
    );
    assert_eq!(m["Enabled"], json!(true));
    assert_eq!(m["MultiRegion"], json!(false));
    assert_eq!(m["KeyState"], json!("Enabled"));
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(m["AWSAccountId"], json!("111122223333"));
    assert!(m.get("DeletionDate").is_none());
    let key_id = m["KeyId"].as_str().unwrap().to_owned();

    // Operations without output answer 200 with an empty body or `{}`.
    for op in ["DisableKey", "EnableKey"] {
        let v = assert_ok(
            &server
                .kms_raw(
                    Some(&target(op)),
                    json!({"KeyId": key_id}).to_string().as_bytes(),
                )
                .await,
        );
        assert_eq!(v, json!({}), "{op}");
    }

    // Blobs are standard base64; the context is order-insensitive on the wire too.
    let enc = json!({"KeyId": key_id, "Plaintext": "aGVsbG8=", "EncryptionContext": {"b": "2", "a": "1"}});
    let v = assert_ok(
        &server
            .kms_raw(Some(&target("Encrypt")), enc.to_string().as_bytes())
            .await,
    );
    assert_no_nulls(&v);
    let blob = v["CiphertextBlob"].as_str().unwrap().to_owned();
    assert!(
        blob.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{blob}"
    );
    let dec = r#"{"CiphertextBlob": "BLOB", "EncryptionContext": {"a": "1", "b": "2"}}"#
        .replace("BLOB", &blob);
    let v = assert_ok(
        &server
            .kms_raw(Some(&target("Decrypt")), dec.as_bytes())
            .await,
    );
    assert_eq!(v["Plaintext"], json!("aGVsbG8="));
    assert_eq!(
        v["KeyId"].as_str().unwrap(),
        format!("arn:aws:kms:us-east-1:111122223333:key/{key_id}")
    );

    // InvalidCiphertextException carries no message member at all.
    let dec = json!({"CiphertextBlob": blob, "EncryptionContext": {"a": "1"}});
    let r = server
        .kms_raw(Some(&target("Decrypt")), dec.to_string().as_bytes())
        .await;
    assert_eq!(
        assert_kms_error(&r, 400, "InvalidCiphertextException"),
        None
    );
    // Other errors do.
    let r = server
        .kms_raw(Some(&target("DescribeKey")), br#"{"KeyId":"fake-key-id"}"#)
        .await;
    assert_eq!(
        assert_kms_error(&r, 400, "NotFoundException").as_deref(),
        Some("Invalid keyId 'fake-key-id'")
    );
}

#[tokio::test]
async fn request_ids_are_unique_and_reach_the_sdk() {
    let server = Server::start();
    let a = server.kms_raw(Some(&target("ListKeys")), b"{}").await;
    let b = server.kms_raw(Some(&target("ListKeys")), b"{}").await;
    assert_ne!(a.header("x-amzn-requestid"), b.header("x-amzn-requestid"));

    let kms = server.kms();
    let out = kms.list_keys().send().await.unwrap();
    assert!(
        out.request_id().is_some_and(crate::common::is_lower_uuid),
        "{:?}",
        out.request_id()
    );
    let err = kms
        .describe_key()
        .key_id("fake-key-id")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.request_id().is_some_and(crate::common::is_lower_uuid),
        "{:?}",
        err.request_id()
    );
    let err = server
        .kms_as(AKID, "wrong")
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert!(
        err.request_id().is_some(),
        "auth failures carry a request id too"
    );
}
