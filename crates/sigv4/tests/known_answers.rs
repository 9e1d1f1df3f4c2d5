//! Known-answer tests: AWS's documented SigV4 examples, each step checked on
//! its own (canonical request, string to sign, signing key, signature), then
//! the whole `verify` path.

// Helpers outside `#[test]` functions assert too; a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_sigv4::{
    Request, SigningKey, UriEncoding, canonical_request, parse_authorization, request_time,
    sha256_hex, string_to_sign, verify,
};

/// The example secret used throughout AWS's SigV4 documentation and suite.
const EXAMPLE_SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The IAM `ListUsers` walk-through from the AWS General Reference ("Examples
/// of the complete Signature Version 4 signing process"); the same values are
/// used as vectors by many independent SigV4 implementations.
mod iam_list_users {
    use super::*;

    const HEADERS: &[(&str, &str)] = &[
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("Host", "iam.amazonaws.com"),
        ("X-Amz-Date", "20150830T123600Z"),
    ];
    const CANONICAL_REQUEST: &str = "GET\n\
        /\n\
        Action=ListUsers&Version=2010-05-08\n\
        content-type:application/x-www-form-urlencoded; charset=utf-8\n\
        host:iam.amazonaws.com\n\
        x-amz-date:20150830T123600Z\n\
        \n\
        content-type;host;x-amz-date\n\
        e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HASHED_CANONICAL_REQUEST: &str =
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
    const STRING_TO_SIGN: &str = "AWS4-HMAC-SHA256\n\
        20150830T123600Z\n\
        20150830/us-east-1/iam/aws4_request\n\
        f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59";
    const SIGNING_KEY: &str = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
    const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    const AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date, \
        Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn request<'a>(payload_hash: &'a str) -> Request<'a> {
        Request {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: HEADERS,
            payload_sha256_hex: payload_hash,
            uri_encoding: UriEncoding::Double,
        }
    }

    fn signed_headers() -> Vec<String> {
        ["content-type", "host", "x-amz-date"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn canonical_request_text() {
        let payload = sha256_hex(b"");
        let creq = canonical_request(&request(&payload), &signed_headers()).unwrap();
        assert_eq!(creq, CANONICAL_REQUEST);
        assert_eq!(sha256_hex(creq.as_bytes()), HASHED_CANONICAL_REQUEST);
    }

    #[test]
    fn string_to_sign_text() {
        assert_eq!(
            string_to_sign(
                "20150830T123600Z",
                "20150830/us-east-1/iam/aws4_request",
                CANONICAL_REQUEST
            ),
            STRING_TO_SIGN
        );
    }

    #[test]
    fn signing_key_hex() {
        let key = SigningKey::derive(EXAMPLE_SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key.as_bytes()), SIGNING_KEY);
    }

    #[test]
    fn signature_hex() {
        let key = SigningKey::derive(EXAMPLE_SECRET, "20150830", "us-east-1", "iam");
        assert_eq!(hex::encode(key.sign(STRING_TO_SIGN)), SIGNATURE);
    }

    #[test]
    fn verify_accepts_the_documented_request() {
        let auth = parse_authorization(AUTHORIZATION).unwrap();
        assert_eq!(auth.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.scope(), "20150830/us-east-1/iam/aws4_request");
        let time = request_time(HEADERS).unwrap();
        let payload = sha256_hex(b"");
        let key = SigningKey::derive(EXAMPLE_SECRET, &auth.date, &auth.region, &auth.service);
        verify(&request(&payload), &auth, &time, &key).unwrap();
    }
}

/// One case of the AWS SigV4 signing test suite (see `tests/vectors/README.md`).
struct SuiteCase {
    name: &'static str,
    encoding: UriEncoding,
    signed_request: &'static str,
    canonical_request: &'static str,
    string_to_sign: &'static str,
    /// `None` where the suite's secret for the case is not the example one.
    signature: Option<&'static str>,
}

macro_rules! suite_case {
    ($name:literal, $encoding:ident) => {
        suite_case!(@build $name, $encoding, Some(include_str!(concat!(
            "vectors/v4/", $name, "/header-signature.txt"
        ))))
    };
    ($name:literal, $encoding:ident, no_signature) => {
        suite_case!(@build $name, $encoding, None)
    };
    (@build $name:literal, $encoding:ident, $signature:expr) => {
        SuiteCase {
            name: $name,
            encoding: UriEncoding::$encoding,
            signed_request: include_str!(concat!(
                "vectors/v4/", $name, "/header-signed-request.txt"
            )),
            canonical_request: include_str!(concat!(
                "vectors/v4/", $name, "/header-canonical-request.txt"
            )),
            string_to_sign: include_str!(concat!(
                "vectors/v4/", $name, "/header-string-to-sign.txt"
            )),
            signature: $signature,
        }
    };
}

fn suite() -> Vec<SuiteCase> {
    vec![
        suite_case!("get-vanilla", Double),
        suite_case!("post-vanilla", Double),
        suite_case!("get-vanilla-query", Double),
        suite_case!("get-vanilla-empty-query-key", Double),
        suite_case!("get-vanilla-query-order-key-case", Double),
        suite_case!("get-vanilla-query-order-encoded", Double),
        suite_case!("get-vanilla-query-unreserved", Double),
        suite_case!("get-vanilla-utf8-query", Double),
        suite_case!("get-unreserved", Double),
        suite_case!("get-utf8", Double),
        suite_case!("get-header-key-duplicate", Double),
        suite_case!("get-header-value-order", Double),
        suite_case!("get-header-value-trim", Double),
        suite_case!("get-slash-normalized", Double),
        suite_case!("get-slashes-normalized", Double),
        suite_case!("get-slash-dot-slash-normalized", Double),
        suite_case!("get-slash-pointless-dot-normalized", Double),
        suite_case!("get-relative-normalized", Double),
        suite_case!("get-relative-relative-normalized", Double),
        suite_case!("get-vanilla-with-session-token", Double),
        suite_case!("post-header-key-case", Double),
        suite_case!("post-header-key-sort", Double),
        suite_case!("post-header-value-case", Double),
        suite_case!("post-vanilla-query", Double),
        suite_case!("post-vanilla-empty-query-value", Double),
        suite_case!("post-x-www-form-urlencoded", Double),
        suite_case!("post-x-www-form-urlencoded-parameters", Double),
        suite_case!("post-sts-header-before", Double),
        suite_case!("post-sts-header-after", Double),
        suite_case!("get-slash-unnormalized", Single),
        suite_case!("get-slashes-unnormalized", Single),
        suite_case!("get-slash-dot-slash-unnormalized", Single),
        suite_case!("get-slash-pointless-dot-unnormalized", Single),
        suite_case!("get-relative-unnormalized", Single),
        suite_case!("get-relative-relative-unnormalized", Single),
        suite_case!("double-url-encode", Double, no_signature),
    ]
}

/// A request from the suite's text format: request line, `Name:value` header
/// lines, blank line, body.
struct ParsedRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn parse_suite_request(text: &str) -> ParsedRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let mut words = request_line.split(' ');
    let method = words.next().unwrap().to_owned();
    let target = words.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    ParsedRequest {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: body.to_owned(),
    }
}

fn without_final_newline(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

#[test]
fn aws_signing_test_suite() {
    let cases = suite();
    assert_eq!(cases.len(), 36);
    for case in cases {
        let name = case.name;
        let parsed = parse_suite_request(case.signed_request);
        let headers: Vec<(&str, &str)> = parsed
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let payload_hash = sha256_hex(parsed.body.as_bytes());
        let request = Request {
            method: &parsed.method,
            path: &parsed.path,
            query: &parsed.query,
            headers: &headers,
            payload_sha256_hex: &payload_hash,
            uri_encoding: case.encoding,
        };
        let authorization = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| *v)
            .unwrap();
        let auth = parse_authorization(authorization).unwrap();

        // The files migrated from the old suite format (`double-url-encode`)
        // end with a newline that is not part of the value.
        let creq = canonical_request(&request, &auth.signed_headers).unwrap();
        assert_eq!(
            creq,
            without_final_newline(case.canonical_request),
            "canonical request of {name}"
        );

        let time = request_time(&headers).unwrap();
        let sts = string_to_sign(&time.amz_date, &auth.scope(), &creq);
        assert_eq!(
            sts,
            without_final_newline(case.string_to_sign),
            "string to sign of {name}"
        );

        if let Some(signature) = case.signature {
            let key = SigningKey::derive(EXAMPLE_SECRET, &auth.date, &auth.region, &auth.service);
            assert_eq!(
                hex::encode(key.sign(&sts)),
                signature,
                "signature of {name}"
            );
            assert_eq!(hex::encode(auth.signature), signature, "header of {name}");
            verify(&request, &auth, &time, &key)
                .unwrap_or_else(|e| panic!("verify rejected {name}: {e}"));
        }
    }
}

/// The suite's two path encodings really differ on a path that needs
/// normalising: the Double rule must not accept the S3 canonical form.
#[test]
fn encoding_mode_matters() {
    let headers = [("host", "example.amazonaws.com")];
    let hash = sha256_hex(b"");
    let mut request = Request {
        method: "GET",
        path: "//example//",
        query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
        uri_encoding: UriEncoding::Double,
    };
    let signed = vec!["host".to_owned()];
    let double = canonical_request(&request, &signed).unwrap();
    request.uri_encoding = UriEncoding::Single;
    let single = canonical_request(&request, &signed).unwrap();
    assert!(double.starts_with("GET\n/example/\n"), "{double}");
    assert!(single.starts_with("GET\n//example//\n"), "{single}");
}
