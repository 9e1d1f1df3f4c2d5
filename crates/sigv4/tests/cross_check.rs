//! Cross-check against the real signer: requests signed by `aws-sigv4` (the
//! AWS SDK for Rust's signer) must verify, and any change to a signed part
//! must turn into `SignatureMismatch`.

// Helpers outside `#[test]` functions assert too; a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use tresor_sigv4::{
    Authorization, Error, Request, RequestTime, SigningKey, UriEncoding, check_clock_skew,
    parse_authorization, request_time, sha256_hex, verify,
};

const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 2024-05-18T12:00:00Z: midday, so shifting by a second stays on the same
/// scope date.
const SIGNING_UNIX: u64 = 1_716_033_600;

#[derive(Clone, Copy, PartialEq)]
enum Service {
    Kms,
    S3,
}

struct Spec {
    name: &'static str,
    method: &'static str,
    /// Scheme and authority, e.g. `http://127.0.0.1:4599`.
    origin: &'static str,
    /// What the HTTP client sends as `Host` for that origin.
    host: &'static str,
    /// Path and query exactly as on the wire (already percent-encoded).
    path_and_query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static [u8],
    service: Service,
    region: &'static str,
    session_token: Option<&'static str>,
}

/// A request as the server sees it after the SDK signed and sent it.
struct Wire {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    service: Service,
}

impl Wire {
    fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    fn set_header(&mut self, name: &str, value: &str) {
        for (n, v) in &mut self.headers {
            if n.eq_ignore_ascii_case(name) {
                *v = value.to_owned();
            }
        }
    }

    fn payload_hash(&self) -> String {
        match self.service {
            Service::Kms => sha256_hex(&self.body),
            Service::S3 => self.header("x-amz-content-sha256").to_owned(),
        }
    }
}

fn signing_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SIGNING_UNIX)
}

fn sign_with_sdk(spec: &Spec) -> Wire {
    let identity: Identity = Credentials::new(
        ACCESS_KEY_ID,
        SECRET,
        spec.session_token.map(str::to_owned),
        None,
        "cross-check",
    )
    .into();
    let mut settings = SigningSettings::default();
    if spec.service == Service::S3 {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let service_name = match spec.service {
        Service::Kms => "kms",
        Service::S3 => "s3",
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name(service_name)
        .time(signing_time())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("{}{}", spec.origin, spec.path_and_query);
    let signable = SignableRequest::new(
        spec.method,
        uri.as_str(),
        spec.headers.iter().copied(),
        SignableBody::Bytes(spec.body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    let (added, _query_params) = instructions.into_parts();

    let mut headers: Vec<(String, String)> = vec![("Host".to_owned(), spec.host.to_owned())];
    headers.extend(
        spec.headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    headers.extend(
        added
            .iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned())),
    );

    let parsed: http::Uri = uri.parse().unwrap();
    Wire {
        method: spec.method.to_owned(),
        path: parsed.path().to_owned(),
        query: parsed.query().unwrap_or("").to_owned(),
        headers,
        body: spec.body.to_vec(),
        service: spec.service,
    }
}

fn encoding(service: Service) -> UriEncoding {
    match service {
        Service::Kms => UriEncoding::Double,
        Service::S3 => UriEncoding::Single,
    }
}

/// The server side, with optional overrides for tampering.
fn check(
    wire: &Wire,
    edit_auth: impl FnOnce(&mut Authorization),
    key_for: impl FnOnce(&Authorization) -> SigningKey,
) -> Result<(), Error> {
    let headers = wire.header_pairs();
    let mut auth = parse_authorization(wire.header("authorization"))?;
    edit_auth(&mut auth);
    let time: RequestTime = request_time(&headers)?;
    let now = i64::try_from(SIGNING_UNIX).unwrap() + 30;
    check_clock_skew(&time, now, 300)?;
    let payload = wire.payload_hash();
    let request = Request {
        method: &wire.method,
        path: &wire.path,
        query: &wire.query,
        headers: &headers,
        payload_sha256_hex: &payload,
        uri_encoding: encoding(wire.service),
    };
    let key = key_for(&auth);
    verify(&request, &auth, &time, &key)
}

fn honest_key(auth: &Authorization) -> SigningKey {
    SigningKey::derive(SECRET.as_bytes(), &auth.date, &auth.region, &auth.service)
}

fn check_honest(wire: &Wire) -> Result<(), Error> {
    check(wire, |_| {}, honest_key)
}

const KMS_HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/x-amz-json-1.1"),
    ("X-Amz-Target", "TrentService.Encrypt"),
    (
        "x-amz-user-agent",
        "aws-sdk-rust/1.3.9 api/kms/1.129.0 os/linux lang/rust/1.95.0",
    ),
    (
        "amz-sdk-invocation-id",
        "0f6a2c5e-9a1b-4c3d-8e7f-123456789abc",
    ),
    ("amz-sdk-request", "attempt=1; max=3"),
    ("content-length", "61"),
    ("user-agent", "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0"),
];
const KMS_BODY: &[u8] = br#"{"KeyId":"alias/tresor-test","Plaintext":"aGVsbG8gd29ybGQ="}"#;

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "kms encrypt over a host with a port",
            method: "POST",
            origin: "http://127.0.0.1:4599",
            host: "127.0.0.1:4599",
            path_and_query: "/",
            headers: KMS_HEADERS,
            body: KMS_BODY,
            service: Service::Kms,
            region: "us-east-1",
            session_token: None,
        },
        Spec {
            name: "kms encrypt with a session token",
            method: "POST",
            origin: "https://kms.eu-west-3.amazonaws.com",
            host: "kms.eu-west-3.amazonaws.com",
            path_and_query: "/",
            headers: KMS_HEADERS,
            body: KMS_BODY,
            service: Service::Kms,
            region: "eu-west-3",
            session_token: Some("IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="),
        },
        Spec {
            name: "query string with reserved characters",
            method: "GET",
            origin: "http://127.0.0.1:4599",
            host: "127.0.0.1:4599",
            path_and_query: "/?b=2&a=x%20y&c=%2F%26%3D%3F&d=~tilde&e=&f&g=%E2%9C%93&h=1+2&i=%2B&A=upper&a=w",
            headers: &[("X-Amz-Target", "TrentService.ListKeys")],
            body: b"",
            service: Service::Kms,
            region: "us-east-1",
            session_token: None,
        },
        Spec {
            name: "path with spaces, unicode and dot segments",
            method: "PUT",
            origin: "http://127.0.0.1:4599",
            host: "127.0.0.1:4599",
            path_and_query: "/some%20path/caf%C3%A9/%E2%9C%93/./x/../a+b%2Fc//end/",
            headers: &[("Content-Type", "application/octet-stream")],
            body: b"payload",
            service: Service::Kms,
            region: "ap-southeast-2",
            session_token: None,
        },
        Spec {
            name: "repeated headers and inner spaces",
            method: "POST",
            origin: "http://localhost:4599",
            host: "localhost:4599",
            path_and_query: "/",
            headers: &[
                ("X-Custom", "first   value"),
                ("x-custom", "  second  "),
                ("X-Other", "a\tb"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            body: b"{}",
            service: Service::Kms,
            region: "us-east-1",
            session_token: None,
        },
        Spec {
            name: "s3 put with an encoded key",
            method: "PUT",
            origin: "http://127.0.0.1:4599",
            host: "127.0.0.1:4599",
            path_and_query: "/my-bucket/a%20b/c%2Bd/%E2%9C%93//x/../y.txt",
            headers: &[
                ("Content-Type", "text/plain"),
                ("x-amz-meta-owner", "tresor"),
            ],
            body: b"hello world",
            service: Service::S3,
            region: "us-east-1",
            session_token: None,
        },
        Spec {
            name: "s3 list with query and session token",
            method: "GET",
            origin: "https://s3.us-west-2.amazonaws.com",
            host: "s3.us-west-2.amazonaws.com",
            path_and_query: "/my-bucket?list-type=2&prefix=photos%2F2024%20summer&delimiter=%2F&max-keys=10",
            headers: &[],
            body: b"",
            service: Service::S3,
            region: "us-west-2",
            session_token: Some("FwoGZXIvYXdzEXAMPLE+session/token=="),
        },
    ]
}

#[test]
fn sdk_signed_requests_verify() {
    for spec in specs() {
        let wire = sign_with_sdk(&spec);
        check_honest(&wire).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    }
}

#[test]
fn session_token_is_signed_when_present() {
    for spec in specs().into_iter().filter(|s| s.session_token.is_some()) {
        let wire = sign_with_sdk(&spec);
        let auth = parse_authorization(wire.header("authorization")).unwrap();
        assert!(
            auth.signed_headers
                .iter()
                .any(|h| h == "x-amz-security-token"),
            "{}",
            spec.name
        );
    }
}

#[test]
fn changing_the_body_hash_is_a_mismatch() {
    for spec in specs() {
        let mut wire = sign_with_sdk(&spec);
        match wire.service {
            Service::Kms => wire.body.push(b' '),
            Service::S3 => {
                let mut hash = wire.header("x-amz-content-sha256").to_owned();
                let flipped = if hash.starts_with('0') { "1" } else { "0" };
                hash.replace_range(..1, flipped);
                wire.set_header("x-amz-content-sha256", &hash);
            }
        }
        assert_eq!(
            check_honest(&wire),
            Err(Error::SignatureMismatch),
            "{}",
            spec.name
        );
    }
}

#[test]
fn changing_any_signed_header_is_a_mismatch() {
    for spec in specs() {
        let wire = sign_with_sdk(&spec);
        let auth = parse_authorization(wire.header("authorization")).unwrap();
        for name in &auth.signed_headers {
            let mut tampered = sign_with_sdk(&spec);
            if name == "x-amz-date" {
                // One second later, same scope date: only the signature can
                // notice.
                tampered.set_header(name, "20240518T120001Z");
            } else {
                let value = format!("{}x", tampered.header(name));
                tampered.set_header(name, &value);
            }
            assert_eq!(
                check_honest(&tampered),
                Err(Error::SignatureMismatch),
                "{}: header {name}",
                spec.name
            );
        }
    }
}

#[test]
fn unsigned_headers_and_whitespace_do_not_matter() {
    let spec = &specs()[0];
    let mut wire = sign_with_sdk(spec);
    let auth = parse_authorization(wire.header("authorization")).unwrap();
    assert!(!auth.signed_headers.iter().any(|h| h == "user-agent"));
    wire.set_header("user-agent", "a proxy rewrote this");
    wire.headers
        .push(("X-Forwarded-For".to_owned(), "10.0.0.1".to_owned()));
    let target = format!("  {}  ", wire.header("x-amz-target"));
    wire.set_header("x-amz-target", &target);
    check_honest(&wire).unwrap();
}

#[test]
fn changing_method_path_or_query_is_a_mismatch() {
    for spec in specs() {
        let mut wire = sign_with_sdk(&spec);
        wire.method = if wire.method == "GET" { "HEAD" } else { "GET" }.to_owned();
        assert_eq!(
            check_honest(&wire),
            Err(Error::SignatureMismatch),
            "{}",
            spec.name
        );

        let mut wire = sign_with_sdk(&spec);
        wire.path.push('x');
        assert_eq!(
            check_honest(&wire),
            Err(Error::SignatureMismatch),
            "{}",
            spec.name
        );

        let mut wire = sign_with_sdk(&spec);
        wire.query.push_str("&extra=1");
        assert_eq!(
            check_honest(&wire),
            Err(Error::SignatureMismatch),
            "{}",
            spec.name
        );
    }
}

#[test]
fn another_region_is_a_mismatch() {
    for spec in specs() {
        let wire = sign_with_sdk(&spec);
        // The server derives the key for a different region than the client
        // used.
        let result = check(
            &wire,
            |_| {},
            |auth| {
                SigningKey::derive(
                    SECRET.as_bytes(),
                    &auth.date,
                    "us-gov-west-1",
                    &auth.service,
                )
            },
        );
        assert_eq!(result, Err(Error::SignatureMismatch), "{}", spec.name);

        // The scope in the header is rewritten to another region.
        let result = check(
            &wire,
            |auth| auth.region = "us-gov-west-1".to_owned(),
            honest_key,
        );
        assert_eq!(result, Err(Error::SignatureMismatch), "{}", spec.name);
    }
}

#[test]
fn a_flipped_signature_bit_is_a_mismatch() {
    for spec in specs() {
        let wire = sign_with_sdk(&spec);
        for byte in [0, 17, 31] {
            let result = check(&wire, |auth| auth.signature[byte] ^= 0x01, honest_key);
            assert_eq!(result, Err(Error::SignatureMismatch), "{}", spec.name);
        }
    }
}

#[test]
fn the_wrong_secret_is_a_mismatch() {
    let wire = sign_with_sdk(&specs()[0]);
    let result = check(
        &wire,
        |_| {},
        |auth| SigningKey::derive(b"not-the-secret", &auth.date, &auth.region, &auth.service),
    );
    assert_eq!(result, Err(Error::SignatureMismatch));
}

#[test]
fn a_date_on_another_day_is_a_scope_error() {
    let mut wire = sign_with_sdk(&specs()[0]);
    wire.set_header("x-amz-date", "20240519T000000Z");
    let headers = wire.header_pairs();
    let auth = parse_authorization(wire.header("authorization")).unwrap();
    let time = request_time(&headers).unwrap();
    let payload = wire.payload_hash();
    let request = Request {
        method: &wire.method,
        path: &wire.path,
        query: &wire.query,
        headers: &headers,
        payload_sha256_hex: &payload,
        uri_encoding: UriEncoding::Double,
    };
    let err = verify(&request, &auth, &time, &honest_key(&auth)).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '20240518' != '20240519', from '20240519T000000Z'."
                .to_owned()
        )
    );
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");
}
