//! The `policy_document` fuzz target's corpus, replayed through its invariant checks
//! (`tresor_policy::fuzzing::check_policy`), and the regression tests of its findings.
//! `cargo test -p tresor-policy --test fuzz_corpus -- --ignored` rewrites the seed files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("../../../fuzz/replay.rs");

use tresor_policy::fuzzing::check_policy;

const TARGET: &str = "policy_document";

#[test]
fn replay_corpus() {
    replay(TARGET, check_policy);
}

/// The CI smoke run: mutants of every corpus file through the same checks (`fuzz/replay.rs`).
#[test]
fn smoke_mutants() {
    smoke(TARGET, check_policy);
}

#[test]
fn deeply_nested_documents_are_refused_without_overflowing_the_stack() {
    check_policy(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes());
    check_policy(format!(r#"{{"Statement": {}"#, r#"{"a":"#.repeat(50_000)).as_bytes());
}

#[test]
#[ignore = "rewrites the seed corpus"]
fn write_seed_corpus() {
    let account = "111122223333";
    let seeds: Vec<(&str, String)> = vec![
        ("default-key-policy", format!(r#"{{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:*", "Resource": "*"}}]}}"#)),
        ("identity-policy", r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "arn:aws:kms:*:111122223333:key/*"}}"#.to_owned()),
        ("deny-with-conditions", format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:*", "Resource": "*"}}, {{"Sid": "DenyOutsideVpc", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*", "Condition": {{"StringNotEquals": {{"kms:ViaService": "voiceid.us-east-1.amazonaws.com"}}, "Bool": {{"aws:SecureTransport": "false"}}}}}}]}}"#)),
        ("encryption-context-conditions", format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": ["arn:aws:iam::{account}:user/alice", "arn:aws:iam::{account}:role/AppRole"]}}, "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*", "Condition": {{"StringEquals": {{"kms:EncryptionContext:tenant": "a"}}, "ForAnyValue:StringLike": {{"kms:EncryptionContextKeys": ["ten*", "x?"]}}, "Null": {{"kms:EncryptionContext:other": "true"}}}}}}]}}"#)),
        ("grant-conditions", format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{account}:root"}}, "Action": "kms:CreateGrant", "Resource": "*", "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": true}}, "ForAllValues:StringEquals": {{"kms:GrantOperations": ["Decrypt", "Encrypt"]}}}}}}]}}"#)),
        ("not-principal-not-action", format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Deny", "NotPrincipal": {{"AWS": ["arn:aws:iam::{account}:root", "arn:aws:sts::{account}:assumed-role/AppRole/session"]}}, "NotAction": "kms:Describe*", "NotResource": "arn:aws:kms:us-east-1:{account}:key/other"}}]}}"#)),
        ("service-principal", r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": ["voiceid.amazonaws.com"]}, "Action": "kms:Decrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}}]}"#.to_owned()),
        ("variables-ip-date-numeric", format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Principal": {{"AWS": "*"}}, "Action": "kms:*", "Resource": "arn:aws:kms:*:${{aws:PrincipalAccount}}:key/*", "Condition": {{"IpAddress": {{"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}, "DateLessThan": {{"aws:CurrentTime": "2100-01-01T00:00:00Z"}}, "NumericLessThanEquals": {{"kms:MaxNumberOfBytes": "64"}}, "ArnLike": {{"aws:PrincipalArn": "arn:aws:iam::{account}:*"}}}}}}]}}"#)),
        ("version-2008", r#"{"Version": "2008-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}"#.to_owned()),
        ("duplicate-members", r#"{"Statement": [{"Effect": "Allow", "Effect": "Deny", "Action": "*", "Resource": "*"}]}"#.to_owned()),
        ("unknown-element", r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Bogus": 1}]}"#.to_owned()),
        ("unknown-operator", r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualsish": {"a": "b"}}}]}"#.to_owned()),
        ("empty-lists", r#"{"Statement": [{"Effect": "Allow", "Action": [], "Resource": []}]}"#.to_owned()),
        ("no-statement", r#"{"Version": "2012-10-17"}"#.to_owned()),
        ("not-json", "Statement: allow everything".to_owned()),
        ("nested", format!(r#"{{"Statement": {}{}}}"#, "[".repeat(200), "]".repeat(200))),
        ("numbers-and-nulls", r#"{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"NumericEquals": {"kms:MaxNumberOfBytes": 1e400}, "Null": {"kms:GrantIsForAWSResource": null}}}]}"#.to_owned()),
    ];
    let seeds: Vec<(String, Vec<u8>)> = seeds
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s.into_bytes()))
        .collect();
    write_seeds(TARGET, &seeds);
}
