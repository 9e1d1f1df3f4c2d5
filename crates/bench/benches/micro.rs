//! Microbenchmarks of the per-request work: SigV4 parsing and verification, policy evaluation,
//! ciphertext seal/open and encryption-context canonicalisation; and of the audit writer's work
//! per record (the chained hash) and per group commit (the signed head).
//! `cargo bench -p tresor-bench --bench micro`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::SystemTime;

fn main() {
    divan::main();
}

struct Signed {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    hash: String,
}

fn signed_request() -> Signed {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let body = br#"{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","KeySpec":"AES_256","EncryptionContext":{"tenant":"a"}}"#.to_vec();
    let identity = aws_credential_types::Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("kms")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let base = [
        ("host", "127.0.0.1:4599"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.GenerateDataKey"),
        ("user-agent", "aws-sdk-rust/1.3 os/linux lang/rust/1.95"),
    ];
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:4599/",
        base.into_iter(),
        SignableBody::Bytes(&body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (added, _) = instructions.into_parts();
    let mut headers: Vec<(String, String)> = base
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    headers.extend(
        added
            .iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned())),
    );
    let hash = tresor_sigv4::sha256_hex(&body);
    Signed {
        headers,
        body,
        hash,
    }
}

#[divan::bench]
fn sigv4_verify_cached_key(bencher: divan::Bencher) {
    let s = signed_request();
    let headers: Vec<(&str, &str)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let auth_value = headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .unwrap()
        .1;
    let auth = tresor_sigv4::parse_authorization(auth_value).unwrap();
    let key = tresor_sigv4::SigningKey::derive(
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        &auth.date,
        &auth.region,
        &auth.service,
    );
    bencher.bench_local(|| {
        let auth = tresor_sigv4::parse_authorization(auth_value).unwrap();
        let time = tresor_sigv4::request_time(&headers).unwrap();
        let req = tresor_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256_hex: &s.hash,
            uri_encoding: tresor_sigv4::UriEncoding::Double,
        };
        tresor_sigv4::verify(&req, &auth, &time, &key).unwrap();
    });
}

#[divan::bench]
fn sigv4_verify_with_key_derivation(bencher: divan::Bencher) {
    let s = signed_request();
    let headers: Vec<(&str, &str)> = s
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let auth_value = headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .unwrap()
        .1;
    bencher.bench_local(|| {
        let auth = tresor_sigv4::parse_authorization(auth_value).unwrap();
        let key = tresor_sigv4::SigningKey::derive(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &auth.date,
            &auth.region,
            &auth.service,
        );
        let time = tresor_sigv4::request_time(&headers).unwrap();
        let req = tresor_sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256_hex: &tresor_sigv4::sha256_hex(&s.body),
            uri_encoding: tresor_sigv4::UriEncoding::Double,
        };
        tresor_sigv4::verify(&req, &auth, &time, &key).unwrap();
    });
}

#[divan::bench]
fn sigv4_parse_authorization(bencher: divan::Bencher) {
    let signed = signed_request();
    let header = signed
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap();
    bencher.bench_local(|| tresor_sigv4::parse_authorization(divan::black_box(&header)).unwrap());
}

/// An audit record's JSON is 1–2 KB; each is hashed into the chain by the audit writer.
#[divan::bench]
fn audit_record_hash_1500_bytes(bencher: divan::Bencher) {
    let json = format!(
        r#"{{"eventName":"GenerateDataKey","pad":"{}"}}"#,
        "x".repeat(1460)
    );
    let prev = [7u8; 32];
    bencher.bench_local(|| {
        tresor_kms::audit_log::record_hash("kms", divan::black_box(42), &prev, &json)
    });
}

/// Once per group commit: the chain's head, signed with Ed25519.
#[divan::bench]
fn audit_head_signature(bencher: divan::Bencher) {
    use tresor_kms::audit_log::{Signed, SignedKind};
    let signer = tresor_crypto::Ed25519Signer::generate().unwrap();
    bencher.bench_local(|| {
        Signed::sign(
            SignedKind::Head,
            &signer,
            "kms",
            divan::black_box(42),
            [7u8; 32],
            1_700_000_000_000,
        )
    });
}

fn context() -> BTreeMap<String, String> {
    [
        (
            "aws:voiceid:domain:arn".to_owned(),
            "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId".to_owned(),
        ),
        ("tenant".to_owned(), "a".to_owned()),
    ]
    .into()
}

#[divan::bench]
fn blob_seal_32_bytes(bencher: divan::Bencher) {
    let m = tresor_crypto::SymmetricKeyMaterial::generate().unwrap();
    let id = tresor_crypto::KeyMaterialId::random().unwrap();
    let ctx = context();
    let key_id = uuid_bytes();
    bencher.bench_local(|| tresor_crypto::blob::seal(&m, key_id, id, &ctx, &[7u8; 32]).unwrap());
}

#[divan::bench]
fn blob_open_32_bytes(bencher: divan::Bencher) {
    let m = tresor_crypto::SymmetricKeyMaterial::generate().unwrap();
    let id = tresor_crypto::KeyMaterialId::random().unwrap();
    let ctx = context();
    let blob = tresor_crypto::blob::seal(&m, uuid_bytes(), id, &ctx, &[7u8; 32]).unwrap();
    bencher.bench_local(|| tresor_crypto::blob::open(&m, &blob, &ctx).unwrap());
}

fn uuid_bytes() -> uuid::Uuid {
    uuid::Uuid::from_bytes([1u8; 16])
}

#[divan::bench]
fn encryption_context_canonicalisation(bencher: divan::Bencher) {
    let ctx = context();
    bencher.bench_local(|| tresor_crypto::canonical_encryption_context(divan::black_box(&ctx)));
}

#[divan::bench]
fn policy_evaluation_default_policy_with_delegation(bencher: divan::Bencher) {
    use tresor_policy::*;
    let key_policy = parse_key_policy(
        r#"{"Version": "2012-10-17", "Id": "key-default-1", "Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]}"#,
    )
    .unwrap();
    let identity = parse_identity_policy(r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}"#).unwrap();
    let principal = Principal::iam_user("111122223333", "alice");
    let mut cx = ConditionContext::new();
    cx.insert_single("kms:CallerAccount", "111122223333");
    cx.insert_encryption_context(&context());
    let named = [NamedPolicy {
        name: "KmsFull",
        policy: &identity,
    }];
    let ec = context();
    bencher.bench_local(|| {
        let req = AuthzRequest {
            action: "kms:GenerateDataKey",
            resource: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            resource_account: Some("111122223333"),
            principal: &principal,
            key_policy: Some(&key_policy),
            identity_policies: &named,
            grants: &[],
            grant_operation: Some("GenerateDataKey"),
            encryption_context: Some(&ec),
            context: &cx,
        };
        assert!(authorize(&req).is_allowed());
    });
}

#[divan::bench]
fn policy_evaluation_service_grant_with_constraint(bencher: divan::Bencher) {
    use tresor_policy::*;
    let key_policy = parse_key_policy(
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/VoiceIdRole"}, "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*", "Condition": {"StringEquals": {"kms:ViaService": "voiceid.us-west-2.amazonaws.com"}}}]}"#,
    )
    .unwrap();
    let principal = Principal::service("voiceid.amazonaws.com");
    let ops: Vec<String> = ["Decrypt", "GenerateDataKey", "DescribeKey"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let constraints = GrantConstraints {
        encryption_context_subset: Some(
            [(
                "aws:voiceid:domain:arn".to_owned(),
                "arn:aws:voiceid:us-west-2:111122223333:domain/sampleDomainId".to_owned(),
            )]
            .into(),
        ),
        encryption_context_equals: None,
    };
    let grant_id = "a".repeat(64);
    let grants = [GrantView {
        grant_id: &grant_id,
        grantee_principal: "voiceid.amazonaws.com",
        operations: &ops,
        constraints: Some(&constraints),
    }];
    let cx = ConditionContext::new();
    let ec = context();
    bencher.bench_local(|| {
        let req = AuthzRequest {
            action: "kms:Decrypt",
            resource: "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            resource_account: Some("111122223333"),
            principal: &principal,
            key_policy: Some(&key_policy),
            identity_policies: &[],
            grants: &grants,
            grant_operation: Some("Decrypt"),
            encryption_context: Some(&ec),
            context: &cx,
        };
        assert!(authorize(&req).is_allowed());
    });
}
