//! STS GetCallerIdentity (AWS Query protocol) through aws-sdk-sts.

use crate::common::{AKID, OTHER_AKID, OTHER_SECRET, ROLE_AKID, ROLE_SECRET, SECRET, Server};
use crate::expect_err;

fn is_unique_id(s: &str, prefix: &str) -> bool {
    s.len() > prefix.len() + 8
        && s.starts_with(prefix)
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

#[tokio::test]
async fn get_caller_identity_of_a_user() {
    let server = Server::start();
    let sts = server.sts_as(AKID, SECRET);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::111122223333:user/alice"));
    assert_eq!(me.account(), Some("111122223333"));
    let user_id = me.user_id().unwrap();
    assert!(is_unique_id(user_id, "AIDA"), "{user_id}");
    // Stable across calls.
    let again = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(again.user_id(), Some(user_id));
}

#[tokio::test]
async fn get_caller_identity_of_a_role_session() {
    let server = Server::start();
    let me = server
        .sts_as(ROLE_AKID, ROLE_SECRET)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::111122223333:assumed-role/AppRole/app-session")
    );
    assert_eq!(me.account(), Some("111122223333"));
    let user_id = me.user_id().unwrap();
    let (role_id, session) = user_id
        .split_once(':')
        .expect("UserId is <role id>:<session>");
    assert!(is_unique_id(role_id, "AROA"), "{user_id}");
    assert_eq!(session, "app-session");
    let alice = server
        .sts_as(AKID, SECRET)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_ne!(alice.user_id().unwrap(), role_id);
}

#[tokio::test]
async fn get_caller_identity_of_an_account_root() {
    let server = Server::start();
    let me = server
        .sts_as(OTHER_AKID, OTHER_SECRET)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(me.arn(), Some("arn:aws:iam::444455556666:root"));
    assert_eq!(me.account(), Some("444455556666"));
    assert_eq!(me.user_id(), Some("444455556666"));
}

#[tokio::test]
async fn sts_rejects_bad_credentials_in_its_own_protocol() {
    let server = Server::start();
    let (code, msg) = expect_err!(
        server
            .sts_as(AKID, "wrong")
            .get_caller_identity()
            .send()
            .await
    );
    assert_eq!(code, "SignatureDoesNotMatch");
    assert_eq!(
        msg,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    let (code, msg) = expect_err!(
        server
            .sts_as("NOSUCHKEY", "x")
            .get_caller_identity()
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "InvalidClientTokenId",
            "The security token included in the request is invalid."
        )
    );
}

#[tokio::test]
async fn other_sts_actions_are_invalid() {
    let server = Server::start();
    let (code, msg) = expect_err!(
        server
            .sts_as(AKID, SECRET)
            .assume_role()
            .role_arn("arn:aws:iam::111122223333:role/AppRole")
            .role_session_name("s")
            .send()
            .await
    );
    assert_eq!(code, "InvalidAction");
    assert!(msg.contains("AssumeRole"), "{msg}");
}
