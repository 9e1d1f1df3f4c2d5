//! Throttling (`--throttle-principal-rps`, `--throttle-key-rps`): a noisy principal or a hot key
//! gets `ThrottlingException` (HTTP 400, audited as a failure) while other principals and keys
//! keep being served.

use aws_sdk_kms::primitives::Blob;

use crate::common::{self, Server, create_key, err_code};

const MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// Calls ListKeys `n` times as fast as it goes: (succeeded, throttled). Any other error fails.
async fn hammer(kms: &aws_sdk_kms::Client, n: usize) -> (usize, usize) {
    let (mut ok, mut throttled) = (0, 0);
    for _ in 0..n {
        match kms.list_keys().send().await {
            Ok(_) => ok += 1,
            Err(e) => {
                let (code, message) = err_code(&e);
                assert_eq!(code, "ThrottlingException");
                assert_eq!(message, MESSAGE);
                throttled += 1;
            }
        }
    }
    (ok, throttled)
}

#[tokio::test]
async fn a_noisy_principal_is_throttled_while_others_are_served() {
    // One request every two seconds after a burst of three: 20 quick calls must hit the limit.
    let server = Server::start_with_args(&[
        "--throttle-principal-rps=0.5",
        "--throttle-principal-burst=3",
    ]);
    let noisy = server.kms();
    let (ok, throttled) = hammer(&noisy, 20).await;
    assert!(ok >= 3, "the burst is served: {ok}");
    assert!(throttled > 0, "the noisy principal was never throttled");

    // Other principals have buckets of their own (each within its burst of three).
    for _ in 0..3 {
        server.kms_other().list_keys().send().await.unwrap();
    }
    server.kms_role().list_keys().send().await.unwrap();
    create_key(&server.kms_role()).await;

    // On the wire: HTTP 400, AWS's type and text (which the SDKs classify as retryable throttling).
    let r = server.kms_raw(Some("TrentService.ListKeys"), b"{}").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.header("x-amzn-errortype"), Some("ThrottlingException"));
    assert_eq!(
        r.json(),
        serde_json::json!({"__type": "ThrottlingException", "message": MESSAGE})
    );
    // STS and CloudTrail calls draw from the same bucket (in their own error shapes).
    let e = server
        .sts_as(common::AKID, common::SECRET)
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        aws_sdk_sts::error::ProvideErrorMetadata::code(&e),
        Some("Throttling")
    );

    // Every throttled KMS call is audited as a failure of the noisy caller.
    let records = common::audit_records(&server.data_dir);
    let throttled_records: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["errorCode"] == "ThrottlingException")
        .collect();
    assert_eq!(throttled_records.len(), throttled + 1);
    for r in throttled_records {
        assert_eq!(r["eventName"], "ListKeys");
        assert_eq!(r["errorMessage"], MESSAGE);
        assert_eq!(
            r["userIdentity"]["arn"],
            format!("arn:aws:iam::{}:user/alice", common::ACCOUNT)
        );
    }
    assert!(
        !records
            .iter()
            .any(|r| r["errorCode"] == "ThrottlingException"
                && r["userIdentity"]["arn"]
                    != format!("arn:aws:iam::{}:user/alice", common::ACCOUNT)),
        "only the noisy principal was throttled"
    );
}

#[tokio::test]
async fn a_hot_key_is_throttled_while_other_keys_are_served() {
    let server = Server::start_with_args(&["--throttle-key-rps=0.5", "--throttle-key-burst=3"]);
    let kms = server.kms();
    // CreateKey names no key: never throttled by key.
    let hot = create_key(&kms).await;
    let cool = create_key(&kms).await;
    let mut ciphertexts = Vec::new();
    let mut throttled = 0;
    for _ in 0..20 {
        match kms
            .encrypt()
            .key_id(hot.key_id())
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
        {
            Ok(out) => ciphertexts.push(out.ciphertext_blob.unwrap()),
            Err(e) => {
                assert_eq!(err_code(&e).0, "ThrottlingException");
                throttled += 1;
            }
        }
    }
    assert!(throttled > 0, "the hot key was never throttled");
    // Another key, by any principal, is served.
    let cool_ct = kms
        .encrypt()
        .key_id(cool.key_id())
        .plaintext(Blob::new(b"y".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    kms.decrypt().ciphertext_blob(cool_ct).send().await.unwrap();
    // Decrypt without KeyId draws from the bucket of the key its ciphertext names.
    let e = server
        .kms_role()
        .decrypt()
        .ciphertext_blob(ciphertexts[0].clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e).0, "ThrottlingException");
}
