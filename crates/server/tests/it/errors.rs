//! Key identifiers and callers across every implemented key operation: malformed and unknown
//! identifiers, aliases, regions, other accounts, role sessions.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};

use crate::common::{ACCOUNT, OTHER_ACCOUNT, REGION, Server, create_key, key_arn, unknown_key_id};
use crate::expect_err;

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const ROLE_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/AppRole/app-session";
const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";

/// (operation, IAM action, takes aliases)
const KEY_OPS: &[(&str, &str, bool)] = &[
    ("DescribeKey", "DescribeKey", true),
    ("Encrypt", "Encrypt", true),
    ("Decrypt", "Decrypt", true),
    ("ReEncryptSource", "ReEncryptFrom", true),
    ("ReEncryptDestination", "ReEncryptTo", true),
    ("GenerateDataKey", "GenerateDataKey", true),
    (
        "GenerateDataKeyWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        true,
    ),
    ("EnableKey", "EnableKey", false),
    ("DisableKey", "DisableKey", false),
    ("UpdateKeyDescription", "UpdateKeyDescription", false),
    ("GetKeyPolicy", "GetKeyPolicy", false),
    ("ListKeyPolicies", "ListKeyPolicies", false),
];

/// Runs `op` naming the key `key_ref`; `blob` is a ciphertext of the caller's own key `own`
/// (for Decrypt/ReEncrypt, where `key_ref` is the KeyId/SourceKeyId or DestinationKeyId).
/// Returns the error, or None on success.
async fn run(
    kms: &aws_sdk_kms::Client,
    op: &str,
    key_ref: &str,
    blob: &Blob,
    own: &str,
) -> Option<(String, String)> {
    let pt = || Blob::new(b"x".to_vec());
    match op {
        "DescribeKey" => kms
            .describe_key()
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "Encrypt" => kms
            .encrypt()
            .key_id(key_ref)
            .plaintext(pt())
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "Decrypt" => kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "ReEncryptSource" => kms
            .re_encrypt()
            .ciphertext_blob(blob.clone())
            .source_key_id(key_ref)
            .destination_key_id(own)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "ReEncryptDestination" => kms
            .re_encrypt()
            .ciphertext_blob(blob.clone())
            .destination_key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "GenerateDataKey" => kms
            .generate_data_key()
            .key_id(key_ref)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "GenerateDataKeyWithoutPlaintext" => kms
            .generate_data_key_without_plaintext()
            .key_id(key_ref)
            .number_of_bytes(16)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "EnableKey" => kms
            .enable_key()
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "DisableKey" => kms
            .disable_key()
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "UpdateKeyDescription" => kms
            .update_key_description()
            .key_id(key_ref)
            .description("changed")
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "GetKeyPolicy" => kms
            .get_key_policy()
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        "ListKeyPolicies" => kms
            .list_key_policies()
            .key_id(key_ref)
            .send()
            .await
            .err()
            .map(|e| crate::common::err_code(&e)),
        other => panic!("unknown op {other}"),
    }
}

async fn own_blob(kms: &aws_sdk_kms::Client) -> (String, Blob) {
    let own = create_key(kms).await;
    let blob = kms
        .encrypt()
        .key_id(own.key_id())
        .plaintext(Blob::new(b"own".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    (own.key_id().to_owned(), blob)
}

#[tokio::test]
async fn malformed_unknown_and_foreign_region_identifiers_in_every_operation() {
    let server = Server::start();
    let kms = server.kms();
    let (own, blob) = own_blob(&kms).await;
    let unknown = unknown_key_id();
    let not_found = format!(
        "Key '{}' does not exist",
        key_arn(REGION, ACCOUNT, &unknown)
    );

    for &(op, _, _) in KEY_OPS {
        let r = run(&kms, op, "fake-key-id", &blob, &own).await;
        assert_eq!(
            r,
            Some((
                "NotFoundException".into(),
                "Invalid keyId 'fake-key-id'".into()
            )),
            "{op}"
        );
        let r = run(&kms, op, &unknown, &blob, &own).await;
        assert_eq!(
            r,
            Some(("NotFoundException".into(), not_found.clone())),
            "{op} by id"
        );
        let r = run(&kms, op, &key_arn(REGION, ACCOUNT, &unknown), &blob, &own).await;
        assert_eq!(
            r,
            Some(("NotFoundException".into(), not_found.clone())),
            "{op} by ARN"
        );
        let r = run(&kms, op, &key_arn("us-west-2", ACCOUNT, &own), &blob, &own).await;
        assert_eq!(
            r,
            Some(("NotFoundException".into(), "Invalid arn us-west-2".into())),
            "{op} other region"
        );
    }
}

#[tokio::test]
async fn aliases_are_not_found_until_implemented() {
    let server = Server::start();
    let kms = server.kms();
    let (own, blob) = own_blob(&kms).await;
    let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/app";
    for &(op, _, aliases) in KEY_OPS {
        let by_name = run(&kms, op, "alias/app", &blob, &own)
            .await
            .expect("must fail");
        let by_arn = run(&kms, op, alias_arn, &blob, &own)
            .await
            .expect("must fail");
        if aliases {
            let want = (
                "NotFoundException".to_owned(),
                format!("Alias {alias_arn} is not found."),
            );
            assert_eq!(by_name, want, "{op} alias name");
            assert_eq!(by_arn, want, "{op} alias ARN");
        } else {
            assert_eq!(
                by_name.0, "NotFoundException",
                "{op} alias name: {by_name:?}"
            );
            assert_eq!(
                by_arn,
                (
                    "InvalidArnException".to_owned(),
                    "Key Aliases are not supported for this operation.".to_owned()
                ),
                "{op} alias ARN"
            );
        }
    }
}

#[tokio::test]
async fn another_accounts_keys_are_access_denied_whether_they_exist_or_not() {
    let server = Server::start();
    let alice = server.kms();
    let other = server.kms_other();
    let (own, blob) = own_blob(&alice).await;
    let theirs = create_key(&other).await;
    let missing = key_arn(REGION, OTHER_ACCOUNT, &unknown_key_id());

    for &(op, action, _) in KEY_OPS {
        for target in [theirs.arn().unwrap(), missing.as_str()] {
            let r = run(&alice, op, target, &blob, &own).await;
            let want = format!(
                "User: {ALICE} is not authorized to perform: kms:{action} on resource: {target} because no resource-based policy allows the kms:{action} action"
            );
            assert_eq!(
                r,
                Some(("AccessDeniedException".into(), want)),
                "{op} on {target}"
            );
        }
        // By bare id, the other account's key is simply not in the caller's account.
        let r = run(&alice, op, theirs.key_id(), &blob, &own).await;
        let want = format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, theirs.key_id())
        );
        assert_eq!(
            r,
            Some(("NotFoundException".into(), want)),
            "{op} by bare id"
        );
    }

    // Nothing changed on the other account's key.
    let d = other
        .describe_key()
        .key_id(theirs.key_id())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.key_state(), Some(&KeyState::Enabled));
    assert_eq!(d.description(), Some(""));

    // An alias ARN of another account is refused before it is looked up.
    let alias = "arn:aws:kms:us-east-1:444455556666:alias/shared";
    let (code, msg) = expect_err!(alice.describe_key().key_id(alias).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        format!(
            "User: {ALICE} is not authorized to perform: kms:DescribeKey on resource: {alias} because no resource-based policy allows the kms:DescribeKey action"
        )
    );
}

#[tokio::test]
async fn another_accounts_ciphertext_is_access_denied() {
    let server = Server::start();
    let alice = server.kms();
    let other = server.kms_other();
    let theirs = create_key(&other).await;
    let their_blob = other
        .encrypt()
        .key_id(theirs.key_id())
        .plaintext(Blob::new(b"theirs".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let mine = create_key(&alice).await;

    let (code, msg) = expect_err!(
        alice
            .decrypt()
            .ciphertext_blob(their_blob.clone())
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        format!(
            "User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {} because no resource-based policy allows the kms:Decrypt action",
            theirs.arn().unwrap()
        )
    );
    let (code, msg) = expect_err!(
        alice
            .re_encrypt()
            .ciphertext_blob(their_blob.clone())
            .destination_key_id(mine.key_id())
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(msg.contains("kms:ReEncryptFrom"), "{msg}");
    // The owner still decrypts it.
    let pt = other
        .decrypt()
        .ciphertext_blob(their_blob)
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"theirs");
}

#[tokio::test]
async fn each_account_has_its_own_keys_and_role_sessions_share_their_accounts() {
    let server = Server::start();
    let alice = server.kms();
    let role = server.kms_role();
    let other = server.kms_other();

    // The other account's root manages its own keys.
    let o = create_key(&other).await;
    assert_eq!(o.aws_account_id(), Some(OTHER_ACCOUNT));
    assert_eq!(
        o.arn(),
        Some(key_arn(REGION, OTHER_ACCOUNT, o.key_id()).as_str())
    );
    let policy = other
        .get_key_policy()
        .key_id(o.key_id())
        .send()
        .await
        .unwrap()
        .policy
        .unwrap();
    assert!(
        policy.contains("\"AWS\" : \"arn:aws:iam::444455556666:root\""),
        "{policy}"
    );

    // A key the role session creates belongs to the role's account: alice can use it and vice versa.
    let r = create_key(&role).await;
    assert_eq!(r.aws_account_id(), Some(ACCOUNT));
    let blob = role
        .encrypt()
        .key_id(r.key_id())
        .plaintext(Blob::new(b"role data".to_vec()))
        .encryption_context("app", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let pt = alice
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("app", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"role data");
    let a = create_key(&alice).await;
    let dk = role
        .generate_data_key()
        .key_id(a.arn().unwrap())
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.key_id(), a.arn());
    role.disable_key().key_id(a.key_id()).send().await.unwrap();
    role.enable_key().key_id(a.key_id()).send().await.unwrap();
    role.update_key_description()
        .key_id(a.key_id())
        .description("by role")
        .send()
        .await
        .unwrap();
    assert_eq!(
        alice
            .describe_key()
            .key_id(a.key_id())
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .description(),
        Some("by role")
    );

    // The role session is named in its denials; so is the other account's root.
    let (code, msg) = expect_err!(role.describe_key().key_id(o.arn().unwrap()).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        format!(
            "User: {ROLE_SESSION} is not authorized to perform: kms:DescribeKey on resource: {} because no resource-based policy allows the kms:DescribeKey action",
            o.arn().unwrap()
        )
    );
    let (code, msg) = expect_err!(
        other
            .decrypt()
            .ciphertext_blob(blob)
            .encryption_context("app", "1")
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        format!(
            "User: {OTHER_ROOT} is not authorized to perform: kms:Decrypt on resource: {} because no resource-based policy allows the kms:Decrypt action",
            r.arn().unwrap()
        )
    );
    let (code, _) = expect_err!(other.disable_key().key_id(r.arn().unwrap()).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        alice
            .describe_key()
            .key_id(r.key_id())
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_state(),
        Some(&KeyState::Enabled)
    );
}
