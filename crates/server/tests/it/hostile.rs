//! Hostile input over the wire: every malformed, oversized, slow or flooding request gets an
//! AWS-shaped 4xx (or a clean close), and the server stays healthy afterwards (`/health` is 200 and
//! a normal signed request succeeds).

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::common::{
    self, AKID, REGION, RawResponse, SECRET, Server, assert_healthy, create_key, raw_bytes,
    sigv4_headers,
};

const JSON_11: &str = "application/x-amz-json-1.1";

fn target(op: &str) -> String {
    format!("TrentService.{op}")
}

/// An AWS JSON error: the status, `__type` (also in `x-amzn-ErrorType`), and a request id.
fn assert_aws_error(r: &RawResponse, status: u16, ty: &str) -> Option<String> {
    assert_eq!(
        r.status,
        status,
        "{r:?}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.header("x-amzn-requestid").is_some(), "{r:?}");
    assert_eq!(r.header("x-amzn-errortype"), Some(ty), "{r:?}");
    let v = r.json();
    assert_eq!(v["__type"], ty, "{v}");
    v.get("message").map(|m| m.as_str().unwrap().to_owned())
}

/// A signed KMS request with `body` as a string of raw bytes.
async fn signed(server: &Server, op: &str, body: &[u8]) -> RawResponse {
    server.kms_raw(Some(&target(op)), body).await
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let server = Server::start_with_args(&["--max-body-bytes=4096"]);
    // Declared length over the limit (signed, so the answer is about size, not signature).
    let body = format!(r#"{{"KeyId":"{}"}}"#, "a".repeat(8192));
    let r = signed(&server, "DescribeKey", body.as_bytes()).await;
    assert_aws_error(&r, 413, "RequestEntityTooLargeException");
    // A chunked body that grows past the limit.
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: {JSON_11}\r\nX-Amz-Target: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        server.authority(),
        target("ListKeys")
    )
    .into_bytes();
    for _ in 0..4 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 2000, " ".repeat(2000)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw_bytes(server.authority(), &req).await;
    assert_aws_error(&r, 413, "RequestEntityTooLargeException");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn oversized_headers_are_refused_cleanly() {
    let server = Server::start();
    // One header value larger than the header buffer (64 KiB).
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        server.authority(),
        "a".repeat(100 * 1024)
    );
    let r = raw_bytes(server.authority(), big.as_bytes()).await;
    assert!(matches!(r.status, 431 | 400), "{r:?}");
    // Very many small headers.
    let mut many = format!("GET /health HTTP/1.1\r\nHost: {}\r\n", server.authority());
    for i in 0..2000 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("Connection: close\r\n\r\n");
    let r = raw_bytes(server.authority(), many.as_bytes()).await;
    assert!(matches!(r.status, 431 | 400), "{r:?}");
    // A request line longer than the buffer.
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(100 * 1024),
        server.authority()
    );
    let r = raw_bytes(server.authority(), long_uri.as_bytes()).await;
    assert!(matches!(r.status, 431 | 414 | 400), "{r:?}");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn deep_json_nesting_is_a_serialization_error() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    for body in [
        "[".repeat(100_000),
        format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)),
        r#"{"a":"#.repeat(50_000),
        format!(
            r#"{{"KeyId": {}"x"{}}}"#,
            "[".repeat(60_000),
            "]".repeat(60_000)
        ),
    ] {
        let r = signed(&server, "DescribeKey", body.as_bytes()).await;
        assert_aws_error(&r, 400, "SerializationException");
    }
    // Nesting inside a policy document (a JSON string member parsed again by the policy parser).
    // Under the 32 KB policy size bound, so the policy parser sees it.
    let policy = format!(
        r#"{{"Statement": {}{}}}"#,
        "[".repeat(15_000),
        "]".repeat(15_000)
    );
    let body = json!({"KeyId": key.key_id(), "PolicyName": "default", "Policy": policy});
    let r = signed(&server, "PutKeyPolicy", body.to_string().as_bytes()).await;
    assert_aws_error(&r, 400, "MalformedPolicyDocumentException");
    // Over it.
    let policy = format!("{}{}", "[".repeat(60_000), "]".repeat(60_000));
    let body = json!({"KeyId": key.key_id(), "PolicyName": "default", "Policy": policy});
    let r = signed(&server, "PutKeyPolicy", body.to_string().as_bytes()).await;
    assert_aws_error(&r, 400, "LimitExceededException");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn invalid_utf8_in_body_and_headers() {
    let server = Server::start();
    let r = signed(&server, "DescribeKey", b"{\"KeyId\": \"\xff\xfe\xfd\"}").await;
    assert_aws_error(&r, 400, "SerializationException");
    let r = signed(&server, "ListKeys", b"\xef\xbb\xbf{}").await;
    assert_aws_error(&r, 400, "SerializationException");
    let r = signed(&server, "ListKeys", b"\xc0\xaf").await;
    assert_aws_error(&r, 400, "SerializationException");

    // A header value that is not UTF-8, beside a valid signature: no signature can cover it.
    let body = b"{}";
    let mut headers = vec![
        ("Content-Type".to_owned(), JSON_11.to_owned()),
        ("X-Amz-Target".to_owned(), target("ListKeys")),
    ];
    headers.extend(sigv4_headers(
        server.authority(),
        "POST",
        "/",
        &headers,
        body,
        (AKID, SECRET),
        REGION,
        "kms",
        std::time::SystemTime::now(),
    ));
    let mut req = format!("POST / HTTP/1.1\r\nHost: {}\r\n", server.authority()).into_bytes();
    for (n, v) in &headers {
        req.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"User-Agent: caf\xe9 \xff\xfe\r\n");
    req.extend_from_slice(b"Content-Length: 2\r\nConnection: close\r\n\r\n{}");
    let r = raw_bytes(server.authority(), &req).await;
    assert!(r.status == 400, "{r:?}");
    assert!(r.json()["__type"].is_string(), "{r:?}");
    // A NUL or control byte in a header value is refused by the HTTP parser itself.
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nX-Bad: a\x01b\r\nConnection: close\r\n\r\n",
        server.authority()
    );
    let r = raw_bytes(server.authority(), req.as_bytes()).await;
    assert!(matches!(r.status, 400 | 200), "{r:?}");
    assert_healthy(&server).await;
}

#[tokio::test]
async fn duplicate_json_members_are_refused() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    let id = key.key_id();
    let body = format!(r#"{{"KeyId": "{id}", "KeyId": "alias/other"}}"#);
    let msg = assert_aws_error(
        &signed(&server, "DescribeKey", body.as_bytes()).await,
        400,
        "SerializationException",
    );
    assert_eq!(
        msg.as_deref(),
        Some("Duplicate member name in a JSON object.")
    );
    let body = format!(
        r#"{{"KeyId": "{id}", "Plaintext": "aGk=", "EncryptionContext": {{"a": "1", "a": "2"}}}}"#
    );
    assert_aws_error(
        &signed(&server, "Encrypt", body.as_bytes()).await,
        400,
        "SerializationException",
    );
    // The refusal is audited like any other malformed request.
    let records = common::audit_records(&server.data_dir);
    assert!(
        records.iter().any(|r| r["eventName"] == "Encrypt"
            && r["errorMessage"] == "Duplicate member name in a JSON object."),
        "{records:?}"
    );
    assert_healthy(&server).await;
}

#[tokio::test]
async fn wrong_member_types_are_serialization_errors() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    let id = key.key_id();
    let cases = [
        ("GenerateRandom", json!({"NumberOfBytes": "8"})),
        ("GenerateRandom", json!({"NumberOfBytes": 8.5})),
        ("GenerateRandom", json!({"NumberOfBytes": [8]})),
        ("DescribeKey", json!({"KeyId": {}})),
        ("DescribeKey", json!({"KeyId": true})),
        ("DescribeKey", json!({"KeyId": null, "GrantTokens": "t"})),
        ("Encrypt", json!({"KeyId": id, "Plaintext": 5})),
        (
            "Encrypt",
            json!({"KeyId": id, "Plaintext": "aGk=", "EncryptionContext": []}),
        ),
        (
            "Encrypt",
            json!({"KeyId": id, "Plaintext": "aGk=", "EncryptionContext": {"a": {"b": "c"}}}),
        ),
        ("CreateKey", json!({"Tags": {"TagKey": "a"}})),
        (
            "CreateKey",
            json!({"BypassPolicyLockoutSafetyCheck": "yes"}),
        ),
        ("ListKeys", json!("a string")),
        ("ListKeys", json!(42)),
        ("ListKeys", json!([])),
    ];
    for (op, body) in cases {
        let r = signed(&server, op, body.to_string().as_bytes()).await;
        assert_eq!(r.status, 400, "{op} {body}: {r:?}");
        assert_eq!(
            r.json()["__type"],
            "SerializationException",
            "{op} {body}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_healthy(&server).await;
}

#[tokio::test]
async fn huge_and_empty_encryption_contexts() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    let id = key.key_id();
    // Over the context size bound (8192 bytes of keys and values): one big value, many pairs.
    let big =
        json!({"KeyId": id, "Plaintext": "aGk=", "EncryptionContext": {"k": "v".repeat(9000)}});
    assert_aws_error(
        &signed(&server, "Encrypt", big.to_string().as_bytes()).await,
        400,
        "ValidationException",
    );
    let pairs: serde_json::Map<String, serde_json::Value> =
        (0..5000).map(|i| (format!("k{i}"), json!("v"))).collect();
    for op in ["Encrypt", "GenerateDataKey"] {
        let body = json!({"KeyId": id, "Plaintext": "aGk=", "KeySpec": "AES_256", "EncryptionContext": pairs});
        assert_aws_error(
            &signed(&server, op, body.to_string().as_bytes()).await,
            400,
            "ValidationException",
        );
    }
    let body = json!({"CiphertextBlob": "AQ".repeat(100), "EncryptionContext": pairs});
    let r = signed(&server, "Decrypt", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 400, "{r:?}");
    // An empty context is no context (as on AWS): the ciphertext decrypts without one.
    let body = json!({"KeyId": id, "Plaintext": "aGk=", "EncryptionContext": {}});
    let r = signed(&server, "Encrypt", body.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let blob = r.json()["CiphertextBlob"].as_str().unwrap().to_owned();
    let r = signed(
        &server,
        "Decrypt",
        json!({"CiphertextBlob": blob}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.json()["Plaintext"], "aGk=");
    // An empty key or value in a context is a context like any other.
    let body = json!({"KeyId": id, "Plaintext": "aGk=", "EncryptionContext": {"": ""}});
    let r = signed(&server, "Encrypt", body.to_string().as_bytes()).await;
    assert!(matches!(r.status, 200 | 400), "{r:?}");
    if r.status == 400 {
        assert_aws_error(&r, 400, "ValidationException");
    }
    assert_healthy(&server).await;
}

#[tokio::test]
async fn malformed_base64_is_a_serialization_error() {
    let server = Server::start();
    let key = create_key(&server.kms()).await;
    let id = key.key_id();
    for text in [
        "%%%%",
        "aGk",
        "aGk=x",
        "a===",
        "aG\u{e9}=",
        "aGk=\n",
        " aGk=",
    ] {
        let r = signed(
            &server,
            "Encrypt",
            json!({"KeyId": id, "Plaintext": text})
                .to_string()
                .as_bytes(),
        )
        .await;
        let msg = assert_aws_error(&r, 400, "SerializationException").unwrap_or_default();
        assert!(
            !msg.contains(text.trim()),
            "a plaintext is never echoed: {msg}"
        );
        let r = signed(
            &server,
            "Decrypt",
            json!({"CiphertextBlob": text}).to_string().as_bytes(),
        )
        .await;
        assert_aws_error(&r, 400, "SerializationException");
    }
    // Valid base64 that is not a ciphertext.
    let r = signed(
        &server,
        "Decrypt",
        json!({"CiphertextBlob": "AAAA"}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        assert_aws_error(&r, 400, "InvalidCiphertextException"),
        None
    );
    assert_healthy(&server).await;
}

/// Starts a server whose header and body read timeouts are short.
fn start_with_short_timeouts() -> Server {
    Server::start_with_args(&[
        "--test-header-read-timeout-ms=700",
        "--test-body-read-timeout-ms=700",
    ])
}

#[tokio::test]
async fn a_client_sending_headers_too_slowly_is_disconnected() {
    let server = start_with_short_timeouts();
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {}\r\nX-Slow: {}\r\n\r\n",
        server.authority(),
        "s".repeat(200)
    );
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    let slowloris = async {
        // One byte every 50 ms: the whole header would take over 10 s.
        for b in request.bytes() {
            if stream.write_all(&[b]).await.is_err() {
                return "write failed";
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A closed connection shows as a readable EOF (or an error).
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return "closed",
                Ok(Ok(_)) => return "answered",
                Err(_) => {}
            }
        }
        "sent everything"
    };
    // Only a guard against a hung test.
    let outcome = tokio::time::timeout(Duration::from_secs(60), slowloris)
        .await
        .unwrap();
    assert!(
        matches!(outcome, "closed" | "write failed" | "answered"),
        "the server waited for the whole slow header: {outcome}"
    );
    if outcome == "answered" {
        // hyper may say 408 before closing; it must not have served the request.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    }
    assert_healthy(&server).await;
}

#[tokio::test]
async fn a_client_stalling_mid_body_gets_a_timeout_error() {
    let server = start_with_short_timeouts();
    let body = br#"{"NumberOfBytes": 8}"#;
    let mut headers = vec![
        ("Content-Type".to_owned(), JSON_11.to_owned()),
        ("X-Amz-Target".to_owned(), target("GenerateRandom")),
    ];
    headers.extend(sigv4_headers(
        server.authority(),
        "POST",
        "/",
        &headers,
        body,
        (AKID, SECRET),
        REGION,
        "kms",
        std::time::SystemTime::now(),
    ));
    let mut head = format!("POST / HTTP/1.1\r\nHost: {}\r\n", server.authority());
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut stream = TcpStream::connect(server.authority()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    // ... and nothing more: the server answers on its own once its body timeout passes.
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out))
        .await
        .expect("the server never answered a stalled body")
        .unwrap();
    let r = common::parse_raw_response(&out);
    assert_aws_error(&r, 408, "RequestTimeoutException");
    assert_eq!(r.header("connection"), Some("close"));
    assert_healthy(&server).await;
}

/// Opens a connection and sends `GET /health` on it (keep-alive).
async fn health_on(stream: &mut TcpStream, authority: &str) {
    let req = format!("GET /health HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
}

/// Reads one `/health` response (status and headers, then its Content-Length body).
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return common::parse_raw_response(&buf[..end + 4 + len]);
            }
        }
    }
}

#[tokio::test]
async fn a_connection_flood_waits_beyond_max_connections() {
    let server = Server::start_with_args(&["--max-connections=4"]);
    let authority = server.authority().to_owned();
    // Four accepted keep-alive connections hold every permit.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&authority).await.unwrap();
        health_on(&mut s, &authority).await;
        assert_eq!(read_response(&mut s).await.status, 200);
        held.push(s);
    }
    // The flood: connections beyond the limit are not served yet (they wait in the backlog).
    let mut waiting = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(&authority).await.unwrap();
        health_on(&mut s, &authority).await;
        waiting.push(s);
    }
    let mut probe = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), waiting[0].read(&mut probe)).await;
    assert!(
        early.is_err(),
        "a connection beyond --max-connections was served at once"
    );
    // The accepted connections are still served.
    for s in &mut held {
        health_on(s, &authority).await;
        assert_eq!(read_response(s).await.status, 200);
    }
    // When they go, the waiting connections are accepted and answered, in turn.
    drop(held);
    for s in &mut waiting {
        let r = tokio::time::timeout(Duration::from_secs(60), read_response(s))
            .await
            .expect("a waiting connection was never served");
        assert_eq!(r.status, 200);
        // Close it so the next one gets a permit.
        let _ = s.shutdown().await;
    }
    drop(waiting);
    assert_healthy(&server).await;
}
