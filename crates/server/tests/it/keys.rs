//! Key lifecycle: CreateKey, DescribeKey, ListKeys, EnableKey/DisableKey, UpdateKeyDescription,
//! GetKeyPolicy, ListKeyPolicies.

// CustomerMasterKeySpec is deprecated in the SDK but still part of KeyMetadata on the wire.
#![allow(deprecated)]

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::types::{
    CustomerMasterKeySpec, EncryptionAlgorithmSpec, KeyManagerType, KeySpec, KeyState,
    KeyUsageType, OriginType, Tag,
};

use crate::common::{
    ACCOUNT, REGION, Server, create_key, is_lower_uuid, is_material_id, key_arn, list_all_keys,
    unknown_key_id,
};
use crate::expect_err;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

const DEFAULT_POLICY: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

#[tokio::test]
async fn create_key_defaults_give_full_key_metadata() {
    let server = Server::start();
    let kms = server.kms();
    let before = unix_now();
    let out = kms.create_key().send().await.unwrap();
    let after = unix_now();
    let m = out.key_metadata().unwrap();

    assert_eq!(m.aws_account_id(), Some(ACCOUNT));
    assert!(
        is_lower_uuid(m.key_id()),
        "KeyId {} is not a lower-case UUID",
        m.key_id()
    );
    assert_eq!(m.arn(), Some(key_arn(REGION, ACCOUNT, m.key_id()).as_str()));
    let created = m.creation_date().expect("CreationDate").as_secs_f64();
    // The server's clock is this machine's clock; allow for whole-second rounding either side.
    assert!(
        created >= before.floor() - 1.0 && created <= after.ceil() + 1.0,
        "CreationDate {created} not in [{before}, {after}]"
    );
    assert!(m.enabled());
    assert_eq!(m.description(), Some(""));
    assert_eq!(m.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert_eq!(m.origin(), Some(&OriginType::AwsKms));
    assert_eq!(m.key_manager(), Some(&KeyManagerType::Customer));
    assert_eq!(m.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(
        m.customer_master_key_spec(),
        Some(&CustomerMasterKeySpec::SymmetricDefault)
    );
    assert_eq!(
        m.encryption_algorithms(),
        &[EncryptionAlgorithmSpec::SymmetricDefault]
    );
    assert_eq!(m.multi_region(), Some(false));
    assert!(
        is_material_id(m.current_key_material_id().unwrap()),
        "{:?}",
        m.current_key_material_id()
    );
    // Members that belong to other key kinds or states are absent.
    assert_eq!(m.deletion_date(), None);
    assert_eq!(m.valid_to(), None);
    assert_eq!(m.expiration_model(), None);
    assert!(m.signing_algorithms().is_empty());
    assert!(m.mac_algorithms().is_empty());
    assert!(m.key_agreement_algorithms().is_empty());
    assert_eq!(m.multi_region_configuration(), None);
    assert_eq!(m.custom_key_store_id(), None);
    assert_eq!(m.pending_deletion_window_in_days(), None);

    // DescribeKey gives the same metadata.
    let d = kms.describe_key().key_id(m.key_id()).send().await.unwrap();
    assert_eq!(d.key_metadata(), Some(m));
}

#[tokio::test]
async fn create_key_gives_distinct_ids_and_materials() {
    let server = Server::start();
    let kms = server.kms();
    let a = create_key(&kms).await;
    let b = create_key(&kms).await;
    assert_ne!(a.key_id(), b.key_id());
    assert_ne!(a.current_key_material_id(), b.current_key_material_id());
}

#[tokio::test]
async fn create_key_with_description_and_tags() {
    let server = Server::start();
    let kms = server.kms();
    let m = kms
        .create_key()
        .description("payments master key")
        .tags(tag("team", "payments"))
        .tags(tag("empty-value", ""))
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.description(), Some("payments master key"));

    // Exactly 50 tags is the limit, and allowed.
    let mut req = kms.create_key();
    for i in 0..50 {
        req = req.tags(tag(&format!("k{i}"), "v"));
    }
    req.send().await.unwrap();

    // A description of exactly 8192 characters is allowed.
    let long = "d".repeat(8192);
    let m = kms
        .create_key()
        .description(&long)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.description(), Some(long.as_str()));
}

#[tokio::test]
async fn create_key_tag_rules() {
    let server = Server::start();
    let kms = server.kms();
    for reserved in ["aws:owner", "AWS:owner", "Aws:x"] {
        let (code, msg) = expect_err!(kms.create_key().tags(tag(reserved, "v")).send().await);
        assert_eq!(
            (code.as_str(), msg.as_str()),
            ("TagException", "Tags beginning with aws: are reserved"),
            "{reserved}"
        );
    }
    let (code, msg) = expect_err!(
        kms.create_key()
            .tags(tag("a", "1"))
            .tags(tag("a", "2"))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TagException", "Duplicate tag keys")
    );

    let mut req = kms.create_key();
    for i in 0..51 {
        req = req.tags(tag(&format!("k{i}"), "v"));
    }
    let (code, msg) = expect_err!(req.send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TagException", "Too many tags")
    );

    let long_key = "k".repeat(129);
    let (code, msg) = expect_err!(kms.create_key().tags(tag(&long_key, "v")).send().await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        format!(
            "1 validation error detected: Value '{long_key}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128"
        )
    );

    // None of the refused requests created a key.
    assert!(list_all_keys(&kms, None).await.is_empty());
}

#[tokio::test]
async fn create_key_usage_and_spec_rules() {
    let server = Server::start();
    let kms = server.kms();

    let (code, msg) = expect_err!(
        kms.create_key()
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"
        )
    );

    for spec in [KeySpec::Rsa2048, KeySpec::EccNistP256, KeySpec::Hmac256] {
        let (code, msg) = expect_err!(kms.create_key().key_spec(spec.clone()).send().await);
        assert_eq!(
            (code.as_str(), msg.as_str()),
            (
                "ValidationException",
                "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
            ),
            "{spec:?}"
        );
    }

    let (code, msg) = expect_err!(
        kms.create_key()
            .key_spec(KeySpec::Rsa2048)
            .key_usage(KeyUsageType::KeyAgreement)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"
        )
    );

    // Explicit symmetric spec and usage are the defaults and fine; so is the deprecated twin.
    let m = kms
        .create_key()
        .key_spec(KeySpec::SymmetricDefault)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_spec(), Some(&KeySpec::SymmetricDefault));
    let m = kms
        .create_key()
        .customer_master_key_spec(CustomerMasterKeySpec::SymmetricDefault)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        m.customer_master_key_spec(),
        Some(&CustomerMasterKeySpec::SymmetricDefault)
    );
    let before = list_all_keys(&kms, None).await.len();

    // AWS-DEVIATION: custom key store origins, multi-Region keys, SM2 and imported asymmetric or
    // HMAC material are not supported (Origin EXTERNAL is for symmetric keys: see lifecycle.rs;
    // asymmetric and HMAC keys: see asymmetric.rs).
    let unsupported = [
        kms.create_key()
            .key_spec(KeySpec::Sm2)
            .key_usage(KeyUsageType::SignVerify),
        kms.create_key()
            .key_spec(KeySpec::EccNistP256)
            .key_usage(KeyUsageType::SignVerify)
            .origin(OriginType::External),
        kms.create_key()
            .key_spec(KeySpec::Hmac256)
            .key_usage(KeyUsageType::GenerateVerifyMac)
            .origin(OriginType::External),
        kms.create_key().origin(OriginType::AwsCloudhsm),
        kms.create_key().multi_region(true),
    ];
    for req in unsupported {
        let (code, msg) = expect_err!(req.send().await);
        assert_eq!(code, "UnsupportedOperationException");
        assert!(!msg.is_empty());
    }
    let (code, _) = expect_err!(
        kms.create_key()
            .custom_key_store_id("cks-1234567890abcdef0")
            .send()
            .await
    );
    assert_eq!(code, "CustomKeyStoreNotFoundException");
    assert_eq!(
        list_all_keys(&kms, None).await.len(),
        before,
        "refused requests created keys"
    );
}

#[tokio::test]
async fn create_key_policy_rules() {
    let server = Server::start();
    let kms = server.kms();

    // Default policy: AWS's pretty-printed text with the account root.
    let m = create_key(&kms).await;
    let p = kms
        .get_key_policy()
        .key_id(m.key_id())
        .policy_name("default")
        .send()
        .await
        .unwrap();
    assert_eq!(p.policy(), Some(DEFAULT_POLICY));
    assert_eq!(p.policy_name(), Some("default"));
    // PolicyName is optional in recent models.
    let p = kms
        .get_key_policy()
        .key_id(m.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(p.policy(), Some(DEFAULT_POLICY));

    // A supplied policy comes back verbatim, whitespace and member order included.
    let policy = "{\"Version\":\"2012-10-17\",  \"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\n\"Action\":\"kms:*\",\"Resource\":\"*\",\"Sid\":\"x\"}]}";
    let m = kms
        .create_key()
        .policy(policy)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let p = kms
        .get_key_policy()
        .key_id(m.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(p.policy(), Some(policy));

    // Size quota 32768 bytes: exactly at the quota is fine, one byte more is LimitExceeded.
    let sized = |total: usize| {
        let head = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":\"kms:*\",\"Resource\":\"*\",\"Sid\":\"";
        let tail = "\"}]}";
        format!(
            "{head}{}{tail}",
            "a".repeat(total - head.len() - tail.len())
        )
    };
    let at_quota = sized(32_768);
    assert_eq!(at_quota.len(), 32_768);
    let m = kms
        .create_key()
        .policy(&at_quota)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        kms.get_key_policy()
            .key_id(m.key_id())
            .send()
            .await
            .unwrap()
            .policy(),
        Some(at_quota.as_str())
    );
    let (code, msg) = expect_err!(kms.create_key().policy(sized(32_769)).send().await);
    assert_eq!(code, "LimitExceededException");
    assert!(!msg.is_empty());

    // The model's own bounds come first: at most 131072 characters from a restricted set.
    let (code, msg) = expect_err!(kms.create_key().policy(sized(131_073)).send().await);
    assert_eq!(code, "ValidationException");
    assert!(
        msg.ends_with("at 'policy' failed to satisfy constraint: Member must have length less than or equal to 131072"),
        "{}",
        &msg[msg.len() - 120..]
    );
    let (code, msg) = expect_err!(
        kms.create_key()
            .policy("{\"Sid\":\"\u{20ac}\"}")
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    assert!(msg.contains("at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{msg}");

    for bad in ["not json", "[]", "{\"Version\":", "\"a string\""] {
        let (code, msg) = expect_err!(kms.create_key().policy(bad).send().await);
        assert_eq!(code, "MalformedPolicyDocumentException", "{bad}");
        assert!(!msg.is_empty());
    }
}

#[tokio::test]
async fn create_key_description_over_8192_is_a_coral_validation_error() {
    let server = Server::start();
    let kms = server.kms();
    let long = "x".repeat(8193);
    let (code, msg) = expect_err!(kms.create_key().description(&long).send().await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        format!(
            "1 validation error detected: Value '{long}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
        )
    );
    assert!(list_all_keys(&kms, None).await.is_empty());
}

#[tokio::test]
async fn describe_key_by_id_and_arn() {
    let server = Server::start();
    let kms = server.kms();
    let m = kms
        .create_key()
        .description("d")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let by_id = kms
        .describe_key()
        .key_id(m.key_id())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let by_arn = kms
        .describe_key()
        .key_id(m.arn().unwrap())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(by_id, m);
    assert_eq!(by_arn, m);
}

#[tokio::test]
async fn describe_key_not_found_and_malformed_ids() {
    let server = Server::start();
    let kms = server.kms();
    create_key(&kms).await;

    let unknown = unknown_key_id();
    let want = format!(
        "Key '{}' does not exist",
        key_arn(REGION, ACCOUNT, &unknown)
    );
    let (code, msg) = expect_err!(kms.describe_key().key_id(&unknown).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );
    let (code, msg) = expect_err!(
        kms.describe_key()
            .key_id(key_arn(REGION, ACCOUNT, &unknown))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );

    for bad in [
        "fake-key-id",
        "mrk-fake-key-id",
        "1234abcd12ab34cd56ef1234567890ab",
        "1234ABCD-12AB-34CD-56EF-1234567890AB",
        "arn:aws:kms:us-east-1:111122223333:key/not-a-uuid",
    ] {
        let (code, msg) = expect_err!(kms.describe_key().key_id(bad).send().await);
        assert_eq!(
            (code.as_str(), msg.as_str()),
            (
                "NotFoundException",
                format!("Invalid keyId '{bad}'").as_str()
            )
        );
    }

    // An empty KeyId fails the model's length constraint before any lookup.
    let (code, msg) = expect_err!(kms.describe_key().key_id("").send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
    // A missing KeyId is a null required member.
    let (code, msg) = expect_err!(kms.describe_key().send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[tokio::test]
async fn regions_are_separate_namespaces() {
    let server = Server::start();
    let east = server.kms();
    let west = server.kms_in_region("eu-west-1");
    let m = create_key(&east).await;

    // By id: not found in the other region (and the message names the other region).
    let (code, msg) = expect_err!(west.describe_key().key_id(m.key_id()).send().await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn("eu-west-1", ACCOUNT, m.key_id())
        )
    );
    // By ARN of the other region.
    let (code, msg) = expect_err!(west.describe_key().key_id(m.arn().unwrap()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", "Invalid arn us-east-1")
    );
    let (code, msg) = expect_err!(
        east.describe_key()
            .key_id(key_arn("us-west-2", ACCOUNT, m.key_id()))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", "Invalid arn us-west-2")
    );

    // Keys created in eu-west-1 carry its region, and ListKeys is per region.
    let w = create_key(&west).await;
    assert_eq!(
        w.arn(),
        Some(key_arn("eu-west-1", ACCOUNT, w.key_id()).as_str())
    );
    assert_eq!(
        list_all_keys(&east, None).await,
        vec![m.key_id().to_owned()]
    );
    assert_eq!(
        list_all_keys(&west, None).await,
        vec![w.key_id().to_owned()]
    );
    let page = west.list_keys().send().await.unwrap();
    assert_eq!(page.keys()[0].key_arn(), w.arn());
}

#[tokio::test]
async fn list_keys_shows_only_the_callers_account_and_region() {
    let server = Server::start();
    let alice = server.kms();
    let role = server.kms_role();
    let other = server.kms_other();
    assert!(list_all_keys(&alice, None).await.is_empty());
    let empty = alice.list_keys().send().await.unwrap();
    assert!(empty.keys().is_empty());
    assert!(!empty.truncated());

    let a1 = create_key(&alice).await;
    let o1 = create_key(&other).await;
    let r1 = create_key(&role).await;
    let w1 = create_key(&server.kms_in_region("ap-southeast-2")).await;

    let mine = list_all_keys(&alice, None).await;
    assert_eq!(
        mine,
        vec![a1.key_id().to_owned(), r1.key_id().to_owned()],
        "same account: user and role share keys"
    );
    assert_eq!(list_all_keys(&role, None).await, mine);
    assert_eq!(
        list_all_keys(&other, None).await,
        vec![o1.key_id().to_owned()]
    );
    assert!(!mine.contains(&w1.key_id().to_owned()));

    let page = alice.list_keys().send().await.unwrap();
    let arns: Vec<_> = page
        .keys()
        .iter()
        .map(|k| k.key_arn().unwrap().to_owned())
        .collect();
    assert_eq!(
        arns,
        vec![a1.arn().unwrap().to_owned(), r1.arn().unwrap().to_owned()]
    );
}

#[tokio::test]
async fn list_keys_pagination() {
    let server = Server::start();
    let kms = server.kms();
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create_key(&kms).await.key_id().to_owned());
    }
    // Keys of another account interleaved in the store must not disturb paging.
    create_key(&server.kms_other()).await;
    created.push(create_key(&kms).await.key_id().to_owned());

    let all = list_all_keys(&kms, None).await;
    assert_eq!(
        all.iter().collect::<HashSet<_>>(),
        created.iter().collect::<HashSet<_>>()
    );
    for limit in 1..=7 {
        let paged = list_all_keys(&kms, Some(limit)).await;
        assert_eq!(paged, all, "Limit {limit}");
    }

    // The first page of Limit 2 is truncated, the page with the last key is not.
    let p1 = kms.list_keys().limit(2).send().await.unwrap();
    assert_eq!(p1.keys().len(), 2);
    assert!(p1.truncated());
    let p = kms.list_keys().limit(6).send().await.unwrap();
    assert_eq!(p.keys().len(), 6);
    assert!(!p.truncated());
    assert_eq!(p.next_marker(), None);

    // The SDK's paginator follows NextMarker.
    let pages: Vec<_> = kms
        .list_keys()
        .limit(4)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(pages.len(), 2);
    let ids: Vec<String> = pages
        .into_iter()
        .flat_map(|p| p.unwrap().keys.unwrap_or_default())
        .map(|k| k.key_id.unwrap())
        .collect();
    assert_eq!(ids, all);
}

#[tokio::test]
async fn list_keys_parameter_errors() {
    let server = Server::start();
    let kms = server.kms();
    create_key(&kms).await;
    for bad in ["garbage", "tresor-1-x", "%%%"] {
        let (code, msg) = expect_err!(kms.list_keys().marker(bad).send().await);
        assert_eq!(code, "InvalidMarkerException", "{bad}");
        assert!(!msg.is_empty());
    }
    let (code, msg) = expect_err!(kms.list_keys().limit(0).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
    let (code, msg) = expect_err!(kms.list_keys().limit(1001).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"
        )
    );
    let p = kms.list_keys().limit(1000).send().await.unwrap();
    assert_eq!(p.keys().len(), 1);
}

#[tokio::test]
async fn enable_and_disable_are_idempotent_and_visible_in_describe_key() {
    let server = Server::start();
    let kms = server.kms();
    let m = create_key(&kms).await;
    let id = m.key_id();

    kms.enable_key().key_id(id).send().await.unwrap(); // already enabled: fine
    kms.disable_key().key_id(id).send().await.unwrap();
    kms.disable_key()
        .key_id(m.arn().unwrap())
        .send()
        .await
        .unwrap(); // twice, by ARN
    let d = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(!d.enabled());
    assert_eq!(d.key_state(), Some(&KeyState::Disabled));
    // Everything else is unchanged.
    assert_eq!(d.creation_date(), m.creation_date());
    assert_eq!(d.current_key_material_id(), m.current_key_material_id());
    assert_eq!(d.encryption_algorithms(), m.encryption_algorithms());
    // ListKeys includes keys in every state.
    assert_eq!(list_all_keys(&kms, None).await, vec![id.to_owned()]);

    kms.enable_key().key_id(id).send().await.unwrap();
    kms.enable_key()
        .key_id(m.arn().unwrap())
        .send()
        .await
        .unwrap();
    let d = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert!(d.enabled());
    assert_eq!(d.key_state(), Some(&KeyState::Enabled));
    assert_eq!(d, m);
}

#[tokio::test]
async fn enable_disable_errors() {
    let server = Server::start();
    let kms = server.kms();
    let unknown = unknown_key_id();
    let want = format!(
        "Key '{}' does not exist",
        key_arn(REGION, ACCOUNT, &unknown)
    );
    let (code, msg) = expect_err!(kms.enable_key().key_id(&unknown).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );
    let (code, msg) = expect_err!(kms.disable_key().key_id(&unknown).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );
    let (code, msg) = expect_err!(kms.disable_key().key_id("fake-key-id").send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", "Invalid keyId 'fake-key-id'")
    );
    // Key-only operations do not take alias ARNs.
    let (code, msg) = expect_err!(
        kms.disable_key()
            .key_id("arn:aws:kms:us-east-1:111122223333:alias/app")
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "InvalidArnException",
            "Key Aliases are not supported for this operation."
        )
    );
}

#[tokio::test]
async fn update_key_description_round_trip() {
    let server = Server::start();
    let kms = server.kms();
    let m = kms
        .create_key()
        .description("first")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let id = m.key_id();
    kms.update_key_description()
        .key_id(id)
        .description("second ✓")
        .send()
        .await
        .unwrap();
    let d = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.description(), Some("second ✓"));

    // By ARN, to empty, and on a disabled key.
    kms.disable_key().key_id(id).send().await.unwrap();
    kms.update_key_description()
        .key_id(m.arn().unwrap())
        .description("")
        .send()
        .await
        .unwrap();
    let d = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d.description(), Some(""));
    assert_eq!(d.key_state(), Some(&KeyState::Disabled));

    let long = "y".repeat(8193);
    let (code, msg) = expect_err!(
        kms.update_key_description()
            .key_id(id)
            .description(&long)
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    assert_eq!(
        msg,
        format!(
            "1 validation error detected: Value '{long}' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"
        )
    );
    let unknown = unknown_key_id();
    let (code, msg) = expect_err!(
        kms.update_key_description()
            .key_id(&unknown)
            .description("x")
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &unknown)
        )
    );
    // Description is required.
    let (code, msg) = expect_err!(kms.update_key_description().key_id(id).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null"
        )
    );
    assert_eq!(
        kms.describe_key()
            .key_id(id)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .description(),
        Some("")
    );
}

#[tokio::test]
async fn get_key_policy_and_list_key_policies() {
    let server = Server::start();
    let kms = server.kms();
    let m = create_key(&kms).await;
    let id = m.key_id();

    let l = kms.list_key_policies().key_id(id).send().await.unwrap();
    assert_eq!(l.policy_names(), &["default".to_owned()]);
    assert!(!l.truncated());
    assert_eq!(l.next_marker(), None);
    let l = kms
        .list_key_policies()
        .key_id(m.arn().unwrap())
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(l.policy_names(), &["default".to_owned()]);

    // Both work on a disabled key.
    kms.disable_key().key_id(id).send().await.unwrap();
    assert_eq!(
        kms.get_key_policy()
            .key_id(id)
            .send()
            .await
            .unwrap()
            .policy(),
        Some(DEFAULT_POLICY)
    );
    assert_eq!(
        kms.list_key_policies()
            .key_id(id)
            .send()
            .await
            .unwrap()
            .policy_names()
            .len(),
        1
    );

    let unknown = unknown_key_id();
    let want = format!(
        "Key '{}' does not exist",
        key_arn(REGION, ACCOUNT, &unknown)
    );
    let (code, msg) = expect_err!(kms.get_key_policy().key_id(&unknown).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );
    let (code, msg) = expect_err!(kms.list_key_policies().key_id(&unknown).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("NotFoundException", want.as_str())
    );

    let (code, _) = expect_err!(
        kms.get_key_policy()
            .key_id(id)
            .policy_name("other")
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
    let (code, _) = expect_err!(kms.list_key_policies().key_id(id).marker("m").send().await);
    assert_eq!(code, "InvalidMarkerException");
    let (code, msg) = expect_err!(kms.list_key_policies().key_id(id).limit(0).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
}

#[tokio::test]
async fn keys_and_ciphertexts_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config = crate::common::default_config();
    let mut server = Server::start_in(&data_dir, &config, &[]);
    let kms = server.kms();
    let m = kms
        .create_key()
        .description("durable")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    kms.disable_key().key_id(m.key_id()).send().await.unwrap();
    kms.enable_key().key_id(m.key_id()).send().await.unwrap();
    let ct = kms
        .encrypt()
        .key_id(m.key_id())
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"survives".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    assert!(server.stop().success(), "clean shutdown on SIGTERM");

    let server = Server::start_in(&data_dir, &config, &[]);
    let kms = server.kms();
    let d = kms
        .describe_key()
        .key_id(m.key_id())
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(d, m);
    let pt = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"survives");
    assert_eq!(list_all_keys(&kms, None).await, vec![m.key_id().to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_succeed() {
    let server = Server::start();
    let kms = server.kms();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let kms = kms.clone();
        tasks.push(tokio::spawn(async move {
            kms.create_key()
                .send()
                .await
                .map(|o| o.key_metadata.unwrap().key_id)
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 32);
    assert_eq!(
        list_all_keys(&kms, Some(10))
            .await
            .into_iter()
            .collect::<HashSet<_>>(),
        ids
    );
}

/// `writers` concurrent DisableKey/EnableKey/UpdateKeyDescription calls on one key: every call
/// must succeed (none of the three operations models ConflictException) and the final description
/// is one of the written ones.
async fn many_writers_on_one_key(writers: usize) {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await.key_id().to_owned();
    let mut tasks = Vec::new();
    for i in 0..writers {
        let kms = kms.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let r = match i % 3 {
                0 => kms
                    .disable_key()
                    .key_id(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::common::err_code(&e)),
                1 => kms
                    .enable_key()
                    .key_id(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::common::err_code(&e)),
                _ => kms
                    .update_key_description()
                    .key_id(&key)
                    .description(format!("writer {i}"))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::common::err_code(&e)),
            };
            r.map_err(|e| format!("writer {i}: {e:?}"))
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {writers} writers failed: {failures:?}",
        failures.len()
    );
    let d = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let desc = d.description().unwrap();
    assert!(desc.starts_with("writer "), "{desc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_one_key_all_succeed() {
    many_writers_on_one_key(16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heavily_contended_writers_on_one_key_all_succeed() {
    many_writers_on_one_key(64).await;
}

#[tokio::test]
async fn list_keys_default_page_is_100() {
    let server = Server::start();
    let kms = server.kms();
    for _ in 0..101 {
        create_key(&kms).await;
    }
    let p = kms.list_keys().send().await.unwrap();
    assert_eq!(p.keys().len(), 100);
    assert!(p.truncated());
    let rest = kms
        .list_keys()
        .marker(p.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.keys().len(), 1);
    assert!(!rest.truncated());
    assert_eq!(list_all_keys(&kms, None).await.len(), 101);
}
