//! `request_time`, `check_clock_skew`, `check_scope` and the checks `verify`
//! makes before computing anything.

// Helpers outside `#[test]` functions assert too; a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tresor_sigv4::{
    Authorization, Error, Request, RequestTime, SigningKey, UriEncoding, check_clock_skew,
    check_scope, request_time, verify,
};

fn time(amz_date: &str, unix_seconds: i64) -> RequestTime {
    RequestTime {
        amz_date: amz_date.to_owned(),
        unix_seconds,
    }
}

#[test]
fn x_amz_date_is_used_first() {
    let headers = [
        ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("x-amz-date", "20150830T123600Z"),
    ];
    assert_eq!(
        request_time(&headers),
        Ok(time("20150830T123600Z", 1_440_938_160))
    );
    let headers = [("X-AMZ-DATE", " 20150830T123600Z ")];
    assert_eq!(
        request_time(&headers),
        Ok(time("20150830T123600Z", 1_440_938_160))
    );
}

#[test]
fn date_header_is_the_fallback() {
    let headers = [("date", "Sun, 06 Nov 1994 08:49:37 GMT")];
    assert_eq!(
        request_time(&headers),
        Ok(time("19941106T084937Z", 784_111_777))
    );
    // An empty X-Amz-Date counts as absent.
    let headers = [
        ("X-Amz-Date", ""),
        ("Date", "Mon, 30 Aug 2015 12:36:00 GMT"),
    ];
    assert_eq!(
        request_time(&headers),
        Ok(time("20150830T123600Z", 1_440_938_160))
    );
    // Some old clients put the ISO basic format in Date.
    let headers = [("Date", "20150830T123600Z")];
    assert_eq!(
        request_time(&headers),
        Ok(time("20150830T123600Z", 1_440_938_160))
    );
}

#[test]
fn both_missing() {
    let headers = [
        ("Host", "example.com"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=x"),
    ];
    let err = request_time(&headers).unwrap_err();
    assert_eq!(
        err,
        Error::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization=AWS4-HMAC-SHA256 Credential=x"
                .to_owned()
        )
    );
    assert_eq!(err.aws_error_code(), "IncompleteSignatureException");
}

#[test]
fn garbage_dates() {
    for value in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20150830t123600z",
        "20150830T1236000Z",
        "2015083OT123600Z",
        "20150230T123600Z",
        "20150830T250000Z",
        "201",
        "20150830T123600Z junk",
        "+0150830T123600Z",
        "Sun, 06 Nov 1994 08:49:37 GMT",
    ] {
        let headers = [("X-Amz-Date", value)];
        assert_eq!(
            request_time(&headers),
            Err(Error::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{value}'. \
                 See http://en.wikipedia.org/wiki/ISO_8601"
            ))),
            "{value}"
        );
    }
    for value in [
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Now 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
    ] {
        let headers = [("Date", value)];
        assert!(
            matches!(request_time(&headers), Err(Error::Incomplete(_))),
            "{value}"
        );
    }
}

/// 2018-09-20T17:50:04Z, the server time in the brief's example messages.
const NOW: i64 = 1_537_465_804;

#[test]
fn skew_boundaries() {
    let exactly_early = time("20180920T174504Z", NOW - 300);
    let exactly_late = time("20180920T175504Z", NOW + 300);
    assert_eq!(check_clock_skew(&exactly_early, NOW, 300), Ok(()));
    assert_eq!(check_clock_skew(&exactly_late, NOW, 300), Ok(()));
    assert_eq!(
        check_clock_skew(&time("20180920T175004Z", NOW), NOW, 0),
        Ok(())
    );

    let expired = check_clock_skew(&time("20180920T174503Z", NOW - 301), NOW, 300).unwrap_err();
    assert_eq!(
        expired.to_string(),
        "Signature expired: 20180920T174503Z is now earlier than 20180920T174504Z \
         (20180920T175004Z - 5 min.)"
    );
    assert_eq!(expired.aws_error_code(), "InvalidSignatureException");

    let future = check_clock_skew(&time("20180920T175505Z", NOW + 301), NOW, 300).unwrap_err();
    assert_eq!(
        future.to_string(),
        "Signature not yet current: 20180920T175505Z is still later than 20180920T175504Z \
         (20180920T175004Z + 5 min.)"
    );
    assert_eq!(future.aws_error_code(), "InvalidSignatureException");
}

#[test]
fn skew_messages_match_the_aws_examples() {
    // The two texts quoted in the brief, recomputed.
    let expired = check_clock_skew(&time("20180920T174101Z", NOW - 543), NOW, 300).unwrap_err();
    assert_eq!(
        expired,
        Error::SignatureExpired {
            request: "20180920T174101Z".to_owned(),
            limit: "20180920T174504Z".to_owned(),
            now: "20180920T175004Z".to_owned(),
            skew_minutes: 5,
        }
    );
    assert_eq!(
        expired.to_string(),
        "Signature expired: 20180920T174101Z is now earlier than 20180920T174504Z \
         (20180920T175004Z - 5 min.)"
    );
    // S3's window is 15 minutes.
    let s3_now = NOW - 900;
    let future = check_clock_skew(&time("20180920T175504Z", NOW + 300), s3_now, 900).unwrap_err();
    assert_eq!(
        future.to_string(),
        "Signature not yet current: 20180920T175504Z is still later than 20180920T175004Z \
         (20180920T173504Z + 15 min.)"
    );
}

#[test]
fn extreme_times_do_not_overflow() {
    let t = time("99991231T235959Z", 253_402_300_799);
    assert!(check_clock_skew(&t, 0, i64::MAX).is_ok());
    assert!(check_clock_skew(&t, i64::MIN, i64::MAX).is_err());
    assert!(check_clock_skew(&t, i64::MAX, 300).is_err());
    assert!(check_clock_skew(&t, i64::MIN, 300).is_err());
    assert!(check_clock_skew(&t, 0, -5).is_err());
}

fn auth(terminator: &str, date: &str, signed: &[&str]) -> Authorization {
    Authorization {
        access_key_id: "AKID".to_owned(),
        date: date.to_owned(),
        region: "us-east-1".to_owned(),
        service: "kms".to_owned(),
        terminator: terminator.to_owned(),
        signed_headers: signed.iter().map(|s| (*s).to_owned()).collect(),
        signature: [0; 32],
    }
}

#[test]
fn scope_messages() {
    let t = time("20240101T120000Z", 1_704_110_400);
    assert_eq!(
        check_scope(&auth("aws4_request", "20240101", &[]), &t, None, None),
        Ok(())
    );
    assert_eq!(
        check_scope(
            &auth("aws4_request", "20240101", &[]),
            &t,
            Some("us-east-1"),
            Some("kms")
        ),
        Ok(())
    );
    assert_eq!(
        check_scope(&auth("aws5_request", "20240101", &[]), &t, None, None),
        Err(Error::InvalidSignature(
            "Credential should be scoped with a valid terminator: 'aws4_request', \
             not 'aws5_request'. "
                .to_owned()
        ))
    );
    assert_eq!(
        check_scope(&auth("aws4_request", "20231231", &[]), &t, None, None),
        Err(Error::InvalidSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '20231231' != '20240101', from '20240101T120000Z'."
                .to_owned()
        ))
    );
    // Everything wrong at once: one message, AWS's order.
    assert_eq!(
        check_scope(
            &auth("e", "b", &[]),
            &t,
            Some("eu-west-1"),
            Some("dynamodb")
        ),
        Err(Error::InvalidSignature(
            "Credential should be scoped to a valid region, not 'us-east-1'. \
             Credential should be scoped to correct service: 'dynamodb'. \
             Credential should be scoped with a valid terminator: 'aws4_request', not 'e'. \
             Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: 'b' != '20240101', from '20240101T120000Z'."
                .to_owned()
        ))
    );
}

#[test]
fn verify_requires_a_signed_host_and_a_valid_scope() {
    let headers = [("host", "example.com"), ("x-amz-date", "20240101T120000Z")];
    let request = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        payload_sha256_hex: "",
        uri_encoding: UriEncoding::Double,
    };
    let t = time("20240101T120000Z", 1_704_110_400);
    let key = SigningKey::derive(b"secret", "20240101", "us-east-1", "kms");

    let err = verify(
        &request,
        &auth("aws4_request", "20240101", &["x-amz-date"]),
        &t,
        &key,
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned()
        )
    );
    assert_eq!(err.aws_error_code(), "InvalidSignatureException");

    let err = verify(
        &request,
        &auth("aws5_request", "20240101", &["host", "x-amz-date"]),
        &t,
        &key,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidSignature(ref m) if m.contains("terminator")),
        "{err}"
    );

    // Host signed and present, scope fine, signature wrong.
    let err = verify(
        &request,
        &auth("aws4_request", "20240101", &["host", "x-amz-date"]),
        &t,
        &key,
    )
    .unwrap_err();
    assert_eq!(err, Error::SignatureMismatch);
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    );

    // A signed header that did not arrive.
    let err = verify(
        &request,
        &auth("aws4_request", "20240101", &["host", "x-amz-target"]),
        &t,
        &key,
    )
    .unwrap_err();
    assert_eq!(err, Error::SignatureMismatch);
}
