//! The `sigv4_authorization` fuzz target's corpus, replayed through its invariant checks
//! (`tresor_sigv4::fuzzing::check_authorization`), and the regression tests of its findings.
//! `cargo test -p tresor-sigv4 --test fuzz_corpus -- --ignored` rewrites the seed files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("../../../fuzz/replay.rs");

use tresor_sigv4::fuzzing::check_authorization;

const TARGET: &str = "sigv4_authorization";

#[test]
fn replay_corpus() {
    replay(TARGET, check_authorization);
}

/// The CI smoke run: mutants of every corpus file through the same checks (`fuzz/replay.rs`).
#[test]
fn smoke_mutants() {
    smoke(TARGET, check_authorization);
}

fn request(
    auth: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[&str],
    body: &str,
) -> Vec<u8> {
    let mut s = format!("{auth}\n{method}\n{path}\n{query}\n");
    for h in headers {
        s.push_str(h);
        s.push('\n');
    }
    s.push_str(body);
    s.into_bytes()
}

#[test]
#[ignore = "rewrites the seed corpus"]
fn write_seed_corpus() {
    let vanilla = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let kms = "AWS4-HMAC-SHA256 Credential=FOOBARKEY/20240101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000";
    let kms_headers = [
        "content-type:application/x-amz-json-1.1",
        "host:127.0.0.1:4599",
        "x-amz-date:20240101T120000Z",
        "x-amz-target:TrentService.ListKeys",
    ];
    let seeds: Vec<(String, Vec<u8>)> = vec![
        ("get-vanilla".into(), request(vanilla, "GET", "/", "", &["Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"], "")),
        ("kms-post".into(), request(kms, "POST", "/", "", &kms_headers, "{}")),
        ("query-and-path".into(), request(vanilla, "GET", "/a/../b/%7Ec//d", "b=2&a=1&a=0&c&d=%2F+x", &["Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"], "")),
        ("date-header".into(), request(vanilla, "GET", "/", "", &["Host:example.amazonaws.com", "Date:Sun, 30 Aug 2015 12:36:00 GMT"], "")),
        ("folded-spaces".into(), request(vanilla, "GET", "/", "", &["Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z", "My-Header1:  a   b   c  "], "")),
        ("s3-style".into(), request(&vanilla.replace("/service/", "/s3/"), "PUT", "/bucket/key with space", "", &["Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"], "body")),
        ("no-host-signed".into(), request(&vanilla.replace("host;", ""), "GET", "/", "", &["X-Amz-Date:20150830T123600Z"], "")),
        ("wrong-date-scope".into(), request(&vanilla.replace("20150830", "20150831"), "GET", "/", "", &["Host:example.amazonaws.com", "X-Amz-Date:20150830T123600Z"], "")),
        ("missing-signature".into(), b"AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request, SignedHeaders=host".to_vec()),
        ("missing-everything".into(), b"AWS4-HMAC-SHA256".to_vec()),
        ("other-algorithm".into(), vanilla.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256").into_bytes()),
        ("no-equals".into(), b"AWS4-HMAC-SHA256 Credential".to_vec()),
        ("short-credential".into(), vanilla.replace("AKIDEXAMPLE/", "").into_bytes()),
        ("trailing-slashes".into(), vanilla.replace("aws4_request", "aws4_request//").into_bytes()),
        ("bad-signature-hex".into(), vanilla.replace("5fa0", "zzzz").into_bytes()),
        ("basic".into(), b"Basic Zm9vOmJhcg==".to_vec()),
        ("empty".into(), Vec::new()),
        ("tabs-and-commas".into(), b"AWS4-HMAC-SHA256\tCredential=A/B/C/D/E,,SignedHeaders=Host;X-Amz-Date\t,Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_vec()),
        ("multibyte".into(), "AWS4-HMAC-SHA256 Credential=ÄKID/2015083\u{e9}/us-east-1/ß/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31\nGET\n/\u{e9}\n\u{e9}=\u{e9}\nhost:\u{e9}".as_bytes().to_vec()),
    ];
    write_seeds(TARGET, &seeds);
}
