//! Arbitrary input must produce a result, never a panic.

// Helpers outside `#[test]` functions assert too; a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tresor_sigv4::{
    Request, RequestTime, SigningKey, UriEncoding, canonical_request, check_clock_skew,
    parse_authorization, request_time, verify,
};

/// Header-like strings: mostly the characters that matter to the parser.
fn authorization_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "AWS4-[A-Z0-9-]{0,20}( |\t)?[ ,=/;a-zA-Z0-9\t]{0,120}",
        (
            "[a-zA-Z0-9/]{0,40}",
            "[a-z0-9;:-]{0,40}",
            "[0-9a-fA-Fg]{0,70}"
        )
            .prop_map(|(cred, signed, sig)| format!(
                "AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature={sig}"
            )),
    ]
}

fn encoding() -> impl Strategy<Value = UriEncoding> {
    prop_oneof![Just(UriEncoding::Double), Just(UriEncoding::Single)]
}

proptest! {
    #[test]
    fn parse_authorization_never_panics(header in authorization_like()) {
        let _ = parse_authorization(&header);
    }

    #[test]
    fn canonical_request_never_panics(
        method in any::<String>(),
        path in prop_oneof![any::<String>(), "[/.%a-zA-Z0-9 +]{0,40}"],
        query in prop_oneof![any::<String>(), "[&=%+a-zA-Z0-9 ]{0,40}"],
        headers in proptest::collection::vec((any::<String>(), any::<String>()), 0..6),
        signed in proptest::collection::vec(any::<String>(), 0..6),
        hash in any::<String>(),
        uri_encoding in encoding(),
    ) {
        let pairs: Vec<(&str, &str)> =
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let request = Request {
            method: &method,
            path: &path,
            query: &query,
            headers: &pairs,
            payload_sha256_hex: &hash,
            uri_encoding,
        };
        let _ = canonical_request(&request, &signed);
        // Signing every header present always succeeds.
        let present: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
        prop_assert!(canonical_request(&request, &present).is_ok());
    }

    #[test]
    fn time_handling_never_panics(
        amz_date in prop_oneof![any::<String>(), "[0-9]{8}T[0-9]{6}Z"],
        date in prop_oneof![any::<String>(), "[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"],
        now in any::<i64>(),
        skew in any::<i64>(),
    ) {
        let headers = [("x-amz-date", amz_date.as_str()), ("date", date.as_str())];
        if let Ok(t) = request_time(&headers) {
            prop_assert_eq!(t.amz_date.len(), 16);
            let _ = check_clock_skew(&t, now, skew);
        }
        let headers = [("date", date.as_str())];
        let _ = request_time(&headers);
    }

    #[test]
    fn verify_never_panics(
        header in authorization_like(),
        path in any::<String>(),
        query in any::<String>(),
        seconds in any::<i64>(),
    ) {
        if let Ok(auth) = parse_authorization(&header) {
            let headers = [("host", "h"), ("x-amz-date", "20240101T000000Z")];
            let request = Request {
                method: "POST",
                path: &path,
                query: &query,
                headers: &headers,
                payload_sha256_hex: "",
                uri_encoding: UriEncoding::Double,
            };
            let time = RequestTime { amz_date: "x".repeat(usize::try_from(seconds.rem_euclid(20)).unwrap()), unix_seconds: seconds };
            let key = SigningKey::derive(b"s", &auth.date, &auth.region, &auth.service);
            let _ = verify(&request, &auth, &time, &key);
        }
    }
}
