//! The invariants the `sigv4_authorization` fuzz target (`fuzz/`) checks, also replayed over the
//! committed corpus by `tests/fuzz_corpus.rs`. Not part of the API.

#![allow(clippy::panic)]

use crate::{
    Authorization, Error, Request, SigningKey, UriEncoding, canonical_request, check_clock_skew,
    check_scope, parse_authorization, request_time, string_to_sign, verify,
};

const CODES: [&str; 3] = [
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
];

fn check_error(e: &Error) {
    assert!(CODES.contains(&e.aws_error_code()), "{e:?}");
}

/// The header form of a parsed `Authorization`.
fn render(a: &Authorization) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/{}, SignedHeaders={}, Signature={}",
        a.access_key_id,
        a.date,
        a.region,
        a.service,
        a.terminator,
        a.signed_headers.join(";"),
        hex::encode(a.signature)
    )
}

/// `data` is lines: the `Authorization` value, the method, the path, the query, then `name:value`
/// header lines (the last line may be the body). Panics when an invariant breaks:
///
/// - parsing never panics, and every error has an AWS error code of the JSON protocol;
/// - a parsed header, printed again, parses to the same value (decode → encode → decode);
/// - canonicalisation never panics; and a request signed with the canonical form computed here
///   verifies, unless its scope or host rule is what fails (never a signature mismatch), while
///   the same request with one signature bit flipped never verifies.
pub fn check_authorization(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or("");
    let method = lines.next().unwrap_or("POST");
    let path = lines.next().unwrap_or("/");
    let query = lines.next().unwrap_or("");
    let rest: Vec<&str> = lines.collect();
    let mut headers: Vec<(&str, &str)> = rest.iter().filter_map(|l| l.split_once(':')).collect();
    headers.push(("authorization", header));

    let auth = match parse_authorization(header) {
        Ok(a) => a,
        Err(e) => {
            check_error(&e);
            return;
        }
    };
    let again = parse_authorization(&render(&auth));
    assert_eq!(again.as_ref(), Ok(&auth), "round trip of {header:?}");

    let payload_hash = crate::sha256_hex(rest.last().unwrap_or(&"").as_bytes());
    for uri_encoding in [UriEncoding::Double, UriEncoding::Single] {
        let req = Request {
            method,
            path,
            query,
            headers: &headers,
            payload_sha256_hex: &payload_hash,
            uri_encoding,
        };
        let time = match request_time(&headers) {
            Ok(t) => t,
            Err(e) => {
                check_error(&e);
                continue;
            }
        };
        if let Err(e) = check_clock_skew(&time, time.unix_seconds, 300) {
            check_error(&e);
        }
        let key = SigningKey::derive(b"fuzz-secret", &auth.date, &auth.region, &auth.service);
        let canonical = match canonical_request(&req, &auth.signed_headers) {
            Ok(c) => c,
            Err(e) => {
                check_error(&e);
                continue;
            }
        };
        let mut signed = auth.clone();
        signed.signature = key.sign(&string_to_sign(&time.amz_date, &auth.scope(), &canonical));
        match verify(&req, &signed, &time, &key) {
            Ok(()) => {
                assert!(check_scope(&signed, &time, None, None).is_ok());
                let mut flipped = signed.clone();
                if let Some(b) = flipped.signature.first_mut() {
                    *b ^= 1;
                }
                assert_eq!(
                    verify(&req, &flipped, &time, &key),
                    Err(Error::SignatureMismatch)
                );
            }
            Err(Error::SignatureMismatch) => {
                panic!("a correctly signed request did not verify: {header:?}")
            }
            Err(e) => check_error(&e),
        }
    }
}
