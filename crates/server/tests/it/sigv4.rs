//! SigV4 failures as aws-sdk-kms sees them: bad secrets, unknown keys, session tokens, clock skew.

use crate::common::{AKID, REGION, SECRET, Server, default_config, kms_client, kms_client_with};
use crate::expect_err;

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const UNRECOGNIZED: &str = "The security token included in the request is invalid.";

fn creds(akid: &str, secret: &str, token: Option<&str>) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        akid,
        secret,
        token.map(str::to_owned),
        None,
        "sigv4-tests",
    )
}

/// Seconds since the epoch of `YYYYMMDD'T'HHMMSS'Z'`.
fn parse_amz_date(s: &str) -> i64 {
    assert_eq!(s.len(), 16, "{s}");
    assert!(s.as_bytes()[8] == b'T' && s.ends_with('Z'), "{s}");
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    let (y, m, d, hh, mm, ss) = (n(0..4), n(4..6), n(6..8), n(9..11), n(11..13), n(13..15));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// Splits `<prefix><t1><middle><t2> (<t3> <sign> 5 min.)` into the three timestamps.
fn skew_message_times(msg: &str, prefix: &str, middle: &str, sign: char) -> (i64, i64, i64) {
    let rest = msg.strip_prefix(prefix).unwrap_or_else(|| panic!("{msg}"));
    let (request, rest) = rest.split_once(middle).unwrap_or_else(|| panic!("{msg}"));
    let (limit, rest) = rest.split_once(" (").unwrap_or_else(|| panic!("{msg}"));
    let now = rest
        .strip_suffix(&format!(" {sign} 5 min.)"))
        .unwrap_or_else(|| panic!("{msg}"));
    (
        parse_amz_date(request),
        parse_amz_date(limit),
        parse_amz_date(now),
    )
}

#[tokio::test]
async fn wrong_secret_is_invalid_signature() {
    let server = Server::start();
    let kms = server.kms_as(AKID, "not-the-secret");
    let (code, msg) = expect_err!(kms.list_keys().send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidSignatureException", MISMATCH)
    );
    let (code, _) = expect_err!(kms.create_key().send().await);
    assert_eq!(code, "InvalidSignatureException");
    // Nothing was created by the refused request.
    assert!(
        server
            .kms()
            .list_keys()
            .send()
            .await
            .unwrap()
            .keys()
            .is_empty()
    );
}

#[tokio::test]
async fn unknown_access_key_is_unrecognized_client() {
    let server = Server::start();
    for (akid, secret) in [
        ("AKIAUNKNOWN", SECRET),
        ("AKIAUNKNOWN", "whatever"),
        ("foobarkey", SECRET),
    ] {
        let (code, msg) = expect_err!(server.kms_as(akid, secret).list_keys().send().await);
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("UnrecognizedClientException", UNRECOGNIZED),
            "{akid}"
        );
    }
}

#[tokio::test]
async fn session_tokens_are_unrecognized() {
    let server = Server::start();
    let kms = kms_client_with(
        &server.endpoint,
        creds(AKID, SECRET, Some("FwoGZXIvYXdzEXAMPLETOKEN")),
        REGION,
        false,
    );
    let (code, msg) = expect_err!(kms.list_keys().send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("UnrecognizedClientException", UNRECOGNIZED)
    );
    // The same key pair without a token works.
    kms_client_with(&server.endpoint, creds(AKID, SECRET, None), REGION, false)
        .list_keys()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn any_valid_region_is_served() {
    let server = Server::start();
    for region in ["eu-central-1", "us-gov-west-1", "ap-southeast-2"] {
        let kms = kms_client(&server.endpoint, AKID, SECRET, region);
        let m = kms.create_key().send().await.unwrap().key_metadata.unwrap();
        assert!(
            m.arn()
                .unwrap()
                .starts_with(&format!("arn:aws:kms:{region}:111122223333:key/")),
            "{:?}",
            m.arn()
        );
    }
}

#[tokio::test]
async fn request_signed_too_long_ago_is_expired() {
    // The server's clock runs 15 minutes ahead of the client's.
    let server = Server::start_with_args(&["--clock-offset-seconds=900"]);
    let kms = server.kms();
    let (code, msg) = expect_err!(kms.list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    let (request, limit, now) =
        skew_message_times(&msg, "Signature expired: ", " is now earlier than ", '-');
    assert_eq!(limit, now - 300, "{msg}");
    assert!(request < limit, "{msg}");
    // The request time is the client's clock, 15 minutes behind the server's.
    assert!((now - request - 900).abs() <= 5, "{msg}");

    // The SDK learns the skew from the Date header of that answer: the next call on the same
    // client is signed with the corrected time and succeeds.
    kms.list_keys().send().await.unwrap();
    // With the SDK's standard retries, a fresh client recovers within the first call.
    let retrying = kms_client_with(&server.endpoint, creds(AKID, SECRET, None), REGION, true);
    retrying.create_key().send().await.unwrap();
}

#[tokio::test]
async fn request_signed_in_the_future_is_not_yet_current() {
    // The server's clock runs 15 minutes behind the client's.
    let server = Server::start_with_args(&["--clock-offset-seconds=-900"]);
    let kms = server.kms();
    let (code, msg) = expect_err!(kms.list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    let (request, limit, now) = skew_message_times(
        &msg,
        "Signature not yet current: ",
        " is still later than ",
        '+',
    );
    assert_eq!(limit, now + 300, "{msg}");
    assert!(request > limit, "{msg}");
    assert!((request - now - 900).abs() <= 5, "{msg}");
    kms.list_keys().send().await.unwrap();
}

#[tokio::test]
async fn skew_within_five_minutes_is_accepted() {
    for offset in ["--clock-offset-seconds=200", "--clock-offset-seconds=-200"] {
        let server = Server::start_with_args(&[offset]);
        // A fresh client has learnt no skew: its first request carries its own clock.
        server.kms().list_keys().send().await.unwrap();
    }
}

#[tokio::test]
async fn regions_outside_the_configured_set_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "regions = [\"us-east-1\", \"eu-west-1\"]\n{}",
        default_config()
    );
    let server = Server::start_in(&tmp.path().join("data"), &config, &[]);
    server.kms().list_keys().send().await.unwrap();
    server
        .kms_in_region("eu-west-1")
        .list_keys()
        .send()
        .await
        .unwrap();
    let (code, msg) = expect_err!(server.kms_in_region("us-west-2").list_keys().send().await);
    assert_eq!(code, "InvalidSignatureException");
    assert!(msg.contains("'us-west-2'"), "{msg}");
}
