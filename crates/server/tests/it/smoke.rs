//! The smallest end-to-end check: the real binary answers aws-sdk-kms.

#[tokio::test]
async fn create_key_and_round_trip_a_data_key() {
    let server = crate::common::Server::start();
    let kms = server.kms();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap();
    let dk = kms
        .generate_data_key()
        .key_id(key.key_id())
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(dk.key_id(), Some(key.arn().unwrap()));
    let pt = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        pt.plaintext().unwrap().as_ref(),
        dk.plaintext().unwrap().as_ref()
    );
    let (code, msg) = crate::expect_err!(
        kms.decrypt()
            .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
            .encryption_context("tenant", "A")
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidCiphertextException", "")
    );
}
