//! `parse_authorization`: exact AWS messages for malformed headers, and the
//! accepted variations of well-formed ones.

// Helpers outside `#[test]` functions assert too; a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_sigv4::{Authorization, Error, parse_authorization};

const SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn incomplete(message: &str) -> Result<Authorization, Error> {
    Err(Error::Incomplete(message.to_owned()))
}

#[test]
fn missing_or_foreign_schemes_are_missing_authentication() {
    for header in [
        "",
        "   ",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "aws4-hmac-sha256 Credential=a/b/c/d/e",
    ] {
        let result = parse_authorization(header);
        assert_eq!(result, Err(Error::MissingAuthorization), "{header:?}");
    }
    let err = Error::MissingAuthorization;
    assert_eq!(err.to_string(), "Request is missing Authentication Token");
    assert_eq!(err.aws_error_code(), "MissingAuthenticationTokenException");
}

#[test]
fn malformed_headers_get_aws_messages() {
    let cases: &[(&str, &str)] = &[
        (
            "AWS4-HMAC-SHA256",
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request",
            "Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. \
             Authorization=AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request",
        ),
        (
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=",
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter. \
             Authorization=AWS4-HMAC-SHA256 SignedHeaders=host, Signature=",
        ),
        (
            "AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders",
            "'Credential' not a valid key=value pair (missing equal-sign) in Authorization \
             header: 'AWS4-HMAC-SHA256 Signature=b,    Credential,    SignedHeaders'.",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
             SignedHeaders=host; x-amz-date, Signature=00",
            "'x-amz-date' not a valid key=value pair (missing equal-sign) in Authorization \
             header: 'AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
             SignedHeaders=host; x-amz-date, Signature=00'.",
        ),
        (
            "AWS4-HMAC-SHA512 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
             SignedHeaders=host, Signature=00",
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=00",
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got 'a/b/c/d'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got 'a/b/c/d/e/f'",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
             SignedHeaders=host, Signature=abc",
            "Signature must be 64 hexadecimal characters, got 'abc'. \
             Authorization=AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
             SignedHeaders=host, Signature=abc",
        ),
    ];
    for (header, message) in cases {
        let result = parse_authorization(header);
        assert_eq!(result, incomplete(message), "{header}");
        assert_eq!(
            result.unwrap_err().aws_error_code(),
            "IncompleteSignatureException"
        );
    }
}

#[test]
fn a_non_hex_signature_of_the_right_length_is_rejected() {
    let bad = "g".repeat(64);
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request, \
         SignedHeaders=host, Signature={bad}"
    );
    let err = parse_authorization(&header).unwrap_err();
    assert!(matches!(err, Error::Incomplete(_)), "{err:?}");
}

fn expected() -> Authorization {
    Authorization {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        date: "20240101".to_owned(),
        region: "us-east-1".to_owned(),
        service: "kms".to_owned(),
        terminator: "aws4_request".to_owned(),
        signed_headers: vec!["host".to_owned(), "x-amz-date".to_owned()],
        signature: hex::decode(SIG).unwrap().try_into().unwrap(),
    }
}

#[test]
fn well_formed_variations() {
    let cred = "Credential=AKIDEXAMPLE/20240101/us-east-1/kms/aws4_request";
    let headers = [
        format!("AWS4-HMAC-SHA256 {cred}, SignedHeaders=host;x-amz-date, Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 {cred},SignedHeaders=host;x-amz-date,Signature={SIG}"),
        format!("AWS4-HMAC-SHA256   {cred},   SignedHeaders=host;x-amz-date,    Signature={SIG}  "),
        format!("AWS4-HMAC-SHA256 {cred} SignedHeaders=host;x-amz-date Signature={SIG}"),
        format!("AWS4-HMAC-SHA256 Signature={SIG}, SignedHeaders=host;x-amz-date, {cred}"),
        format!("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={SIG}, {cred}"),
        format!("  AWS4-HMAC-SHA256\t{cred}, SignedHeaders=Host;X-Amz-Date, Signature={SIG}"),
        format!(
            "AWS4-HMAC-SHA256 {cred}/, SignedHeaders=host;x-amz-date, Signature={}",
            SIG.to_ascii_uppercase()
        ),
        format!(
            "AWS4-HMAC-SHA256 Credential=other/1/2/3/4, {cred}, Extra=ignored, \
             SignedHeaders=host;x-amz-date, Signature={SIG}"
        ),
    ];
    for header in &headers {
        assert_eq!(parse_authorization(header), Ok(expected()), "{header}");
    }
}

#[test]
fn scope_and_empty_signed_headers() {
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/s3/aws4_request, \
         SignedHeaders=, Signature={SIG}"
    );
    let auth = parse_authorization(&header).unwrap();
    assert!(auth.signed_headers.is_empty());
    assert_eq!(auth.scope(), "20240101/eu-west-1/s3/aws4_request");
}

#[test]
fn scope_problems_are_left_to_verification() {
    // The terminator and date are checked against the request by `verify`,
    // which reports them as InvalidSignatureException, as AWS does.
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AKID/someday//kms/aws5_request, \
         SignedHeaders=host, Signature={SIG}"
    );
    let auth = parse_authorization(&header).unwrap();
    assert_eq!(auth.terminator, "aws5_request");
    assert_eq!(auth.region, "");
    assert_eq!(auth.date, "someday");
}
