//! Key lifecycle through the real server and aws-sdk-kms: aliases, AWS managed keys, tags,
//! deletion (with the scheduler, across a restart), rotation, imported key material and
//! GetKeyLastUsage. Time moves with the server's test clock, never by sleeping.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::operation::RequestId as _;
use aws_sdk_kms::primitives::{Blob, DateTime};
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, ImportState, IncludeKeyMaterial,
    KeyLastUsageTrackingOperation, KeyManagerType, KeyMaterialState, KeyState, OriginType,
    RotationType, Tag, WrappingKeySpec,
};
use serde_json::Value;
use tresor_crypto::import::{ImportWrapping, wrap_for_import};

use crate::common::{
    ACCOUNT, REGION, Server, audit_records, create_key, key_arn, list_all_keys, set_test_clock,
    unknown_key_id,
};
use crate::expect_err;

const DAY: i64 = 86_400;

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn alias_arn(name: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:{name}")
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

async fn all_aliases(
    kms: &aws_sdk_kms::Client,
    key_id: Option<&str>,
) -> Vec<aws_sdk_kms::types::AliasListEntry> {
    kms.list_aliases()
        .set_key_id(key_id.map(str::to_owned))
        .limit(100)
        .send()
        .await
        .unwrap()
        .aliases()
        .to_vec()
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str, text: &str) -> Blob {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(text.as_bytes()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn current_material(kms: &aws_sdk_kms::Client, key: &str) -> String {
    kms.describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_owned()
}

// ---- aliases -------------------------------------------------------------------------------

#[tokio::test]
async fn alias_create_resolve_update_delete() {
    let server = Server::start();
    let kms = server.kms();
    let a = create_key(&kms).await;
    let b = create_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/app/main")
        .target_key_id(a.key_id())
        .send()
        .await
        .unwrap();
    // The alias resolves by name and by ARN in every operation that accepts aliases.
    for id in ["alias/app/main".to_owned(), alias_arn("alias/app/main")] {
        let d = kms.describe_key().key_id(&id).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), a.key_id());
    }
    let listed = all_aliases(&kms, Some(a.key_id())).await;
    assert_eq!(listed.len(), 1);
    let entry = &listed[0];
    assert_eq!(entry.alias_name(), Some("alias/app/main"));
    assert_eq!(
        entry.alias_arn(),
        Some(alias_arn("alias/app/main").as_str())
    );
    assert_eq!(entry.target_key_id(), Some(a.key_id()));
    assert!(entry.creation_date().is_some() && entry.last_updated_date().is_some());
    // Filtering by key ARN works too; the other key has none.
    assert_eq!(all_aliases(&kms, Some(a.arn().unwrap())).await.len(), 1);
    assert!(all_aliases(&kms, Some(b.key_id())).await.is_empty());

    // One alias, one key.
    let (code, msg) = expect_err!(
        kms.create_alias()
            .alias_name("alias/app/main")
            .target_key_id(b.key_id())
            .send()
            .await
    );
    assert_eq!(code, "AlreadyExistsException");
    assert_eq!(
        msg,
        format!(
            "An alias with the name {} already exists",
            alias_arn("alias/app/main")
        )
    );

    // UpdateAlias moves it; encryption through the alias now uses the new key.
    kms.update_alias()
        .alias_name("alias/app/main")
        .target_key_id(b.arn().unwrap())
        .send()
        .await
        .unwrap();
    let out = kms
        .encrypt()
        .key_id("alias/app/main")
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), b.arn());
    assert_eq!(
        all_aliases(&kms, Some(b.key_id())).await[0].alias_name(),
        Some("alias/app/main")
    );
    assert!(all_aliases(&kms, Some(a.key_id())).await.is_empty());

    kms.delete_alias()
        .alias_name("alias/app/main")
        .send()
        .await
        .unwrap();
    let not_found = format!("Alias {} is not found.", alias_arn("alias/app/main"));
    for r in [
        expect_err!(kms.describe_key().key_id("alias/app/main").send().await),
        expect_err!(kms.delete_alias().alias_name("alias/app/main").send().await),
        expect_err!(
            kms.update_alias()
                .alias_name("alias/app/main")
                .target_key_id(a.key_id())
                .send()
                .await
        ),
    ] {
        assert_eq!(r, ("NotFoundException".to_owned(), not_found.clone()));
    }
    // Deleting an alias never touches its key.
    let d = kms.describe_key().key_id(b.key_id()).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
}

#[tokio::test]
async fn alias_name_and_target_rules() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let create = |name: &str, target: &str| {
        kms.create_alias()
            .alias_name(name)
            .target_key_id(target)
            .send()
    };
    assert_eq!(
        expect_err!(create("app", key.key_id()).await),
        (
            "ValidationException".to_owned(),
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".to_owned()
        )
    );
    // The reserved namespace of AWS managed keys.
    for name in ["alias/aws/s3", "alias/aws/mine"] {
        let (code, msg) = expect_err!(create(name, key.key_id()).await);
        assert_eq!(code, "NotAuthorizedException");
        assert_eq!(msg, "");
    }
    let (code, msg) = expect_err!(create("alias/a:b", key.key_id()).await);
    assert_eq!(code, "ValidationException");
    assert_eq!(msg, "alias/a:b contains invalid characters for an alias");
    let (code, msg) = expect_err!(create("alias/a b", key.key_id()).await);
    assert_eq!(code, "ValidationException");
    assert!(
        msg.contains("at 'aliasName' failed to satisfy constraint"),
        "{msg}"
    );
    // Targets are keys named by id or ARN, never aliases.
    kms.create_alias()
        .alias_name("alias/first")
        .target_key_id(key.key_id())
        .send()
        .await
        .unwrap();
    let (code, msg) = expect_err!(create("alias/second", "alias/first").await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(msg, "Invalid keyId 'alias/first'");
    let (code, _) = expect_err!(create("alias/second", &alias_arn("alias/first")).await);
    assert_eq!(code, "InvalidArnException");
    let missing = unknown_key_id();
    let (code, msg) = expect_err!(create("alias/second", &missing).await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(
        msg,
        format!(
            "Key '{}' does not exist",
            key_arn(REGION, ACCOUNT, &missing)
        )
    );
    // Another account cannot be targeted.
    let other = create_key(&server.kms_other()).await;
    let (code, _) = expect_err!(create("alias/second", other.arn().unwrap()).await);
    assert_eq!(code, "AccessDeniedException");

    // Key states: no new alias for a key pending deletion; an alias may leave such a key, and
    // be deleted while its key is pending deletion.
    let doomed = create_key(&kms).await;
    for name in ["alias/doomed", "alias/doomed-too"] {
        kms.create_alias()
            .alias_name(name)
            .target_key_id(doomed.key_id())
            .send()
            .await
            .unwrap();
    }
    kms.schedule_key_deletion()
        .key_id(doomed.key_id())
        .send()
        .await
        .unwrap();
    let (code, msg) = expect_err!(create("alias/late", doomed.key_id()).await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(
        msg,
        format!("{} is pending deletion.", doomed.arn().unwrap())
    );
    // Not to a key pending deletion...
    let (code, msg) = expect_err!(
        kms.update_alias()
            .alias_name("alias/first")
            .target_key_id(doomed.key_id())
            .send()
            .await
    );
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(
        msg,
        format!("{} is pending deletion.", doomed.arn().unwrap())
    );
    // ...but away from one.
    kms.update_alias()
        .alias_name("alias/doomed")
        .target_key_id(key.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        all_aliases(&kms, Some(key.key_id())).await.len(),
        2,
        "alias/first and alias/doomed"
    );
    kms.delete_alias()
        .alias_name("alias/doomed-too")
        .send()
        .await
        .unwrap();
    assert!(all_aliases(&kms, Some(doomed.key_id())).await.is_empty());

    // Disabled keys take aliases.
    kms.disable_key().key_id(key.key_id()).send().await.unwrap();
    create("alias/disabled", key.key_id()).await.unwrap();
}

#[tokio::test]
async fn a_key_has_at_most_50_aliases() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    for i in 0..50 {
        kms.create_alias()
            .alias_name(format!("alias/k{i:02}"))
            .target_key_id(key.key_id())
            .send()
            .await
            .unwrap();
    }
    let (code, msg) = expect_err!(
        kms.create_alias()
            .alias_name("alias/k50")
            .target_key_id(key.key_id())
            .send()
            .await
    );
    assert_eq!(code, "LimitExceededException");
    assert!(msg.contains(key.arn().unwrap()), "{msg}");
    // Another key is not affected.
    let other = create_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/k50")
        .target_key_id(other.key_id())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_aliases_pages_and_validates() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    for n in ["alias/c", "alias/a", "alias/e", "alias/b", "alias/d"] {
        kms.create_alias()
            .alias_name(n)
            .target_key_id(key.key_id())
            .send()
            .await
            .unwrap();
    }
    // Default listing: the account's aliases plus the predefined AWS aliases, in name order.
    let first = kms.list_aliases().send().await.unwrap();
    assert!(!first.truncated());
    assert_eq!(first.next_marker(), None);
    let names: Vec<&str> = first
        .aliases()
        .iter()
        .map(|a| a.alias_name().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alias/a",
            "alias/aws/domains",
            "alias/aws/s3",
            "alias/b",
            "alias/c",
            "alias/d",
            "alias/e"
        ]
    );
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = kms
            .list_aliases()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert!(page.aliases().len() <= 2);
        seen.extend(
            page.aliases()
                .iter()
                .map(|a| a.alias_name().unwrap().to_owned()),
        );
        if !page.truncated() {
            assert_eq!(page.next_marker(), None);
            break;
        }
        marker = Some(page.next_marker().unwrap().to_owned());
    }
    assert_eq!(seen, names);
    // With a key filter, only that key's aliases.
    let page = kms
        .list_aliases()
        .key_id(key.key_id())
        .limit(3)
        .send()
        .await
        .unwrap();
    assert!(page.truncated());
    assert_eq!(page.aliases().len(), 3);

    for (limit, bound) in [
        (0, "greater than or equal to 1"),
        (101, "less than or equal to 100"),
    ] {
        let (code, msg) = expect_err!(kms.list_aliases().limit(limit).send().await);
        assert_eq!(code, "ValidationException");
        assert!(msg.contains(bound), "{msg}");
    }
    let (code, _) = expect_err!(kms.list_aliases().marker("garbage").send().await);
    assert_eq!(code, "InvalidMarkerException");
    let (code, _) = expect_err!(kms.list_aliases().key_id(unknown_key_id()).send().await);
    assert_eq!(code, "NotFoundException");
}

// ---- AWS managed keys ------------------------------------------------------------------------

#[tokio::test]
async fn aws_managed_keys_are_created_once_on_first_use() {
    let server = Server::start();
    let kms = server.kms();
    // Listed before they exist, without a target.
    let before = all_aliases(&kms, None).await;
    let s3 = before
        .iter()
        .find(|a| a.alias_name() == Some("alias/aws/s3"))
        .expect("alias/aws/s3 is listed");
    assert_eq!(s3.target_key_id(), None);
    assert_eq!(s3.alias_arn(), Some(alias_arn("alias/aws/s3").as_str()));
    assert!(
        before
            .iter()
            .any(|a| a.alias_name() == Some("alias/aws/domains") && a.target_key_id().is_none())
    );
    let keys_before = list_all_keys(&kms, None).await.len();

    // Eight first uses at once: one key.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let kms = kms.clone();
        let id = if i % 2 == 0 {
            "alias/aws/s3".to_owned()
        } else {
            alias_arn("alias/aws/s3")
        };
        tasks.push(tokio::spawn(async move {
            kms.describe_key()
                .key_id(id)
                .send()
                .await
                .unwrap()
                .key_metadata
                .unwrap()
        }));
    }
    let mut ids = HashSet::new();
    let mut metadata = None;
    for t in tasks {
        let m = t.await.unwrap();
        ids.insert(m.key_id().to_owned());
        metadata = Some(m);
    }
    assert_eq!(ids.len(), 1, "one AWS managed key: {ids:?}");
    let m = metadata.unwrap();
    assert_eq!(m.key_manager(), Some(&KeyManagerType::Aws));
    assert_eq!(
        m.description(),
        Some("Default key that protects my S3 objects when no other key is defined")
    );
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert_eq!(m.origin(), Some(&OriginType::AwsKms));
    assert_eq!(list_all_keys(&kms, None).await.len(), keys_before + 1);
    let after = all_aliases(&kms, None).await;
    let s3 = after
        .iter()
        .find(|a| a.alias_name() == Some("alias/aws/s3"))
        .unwrap();
    assert_eq!(s3.target_key_id(), Some(m.key_id()));

    // Its fixed policy: use only through S3 by the account; metadata for the account.
    let policy = kms
        .get_key_policy()
        .key_id(m.key_id())
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .to_owned();
    let p: Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        p["Statement"][0]["Condition"]["StringEquals"]["kms:ViaService"],
        format!("s3.{REGION}.amazonaws.com")
    );
    assert_eq!(
        p["Statement"][0]["Condition"]["StringEquals"]["kms:CallerAccount"],
        ACCOUNT
    );
    assert_eq!(
        p["Statement"][1]["Action"],
        serde_json::json!(["kms:Describe*", "kms:Get*", "kms:List*"])
    );
    // Yearly rotation, always on.
    let status = kms
        .get_key_rotation_status()
        .key_id(m.key_id())
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(365));
    assert!(status.next_rotation_date().is_some());

    // Used directly (not through S3), the policy refuses.
    let (code, _) = expect_err!(
        kms.encrypt()
            .key_id("alias/aws/s3")
            .plaintext(Blob::new("x"))
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");

    // Customers cannot change it.
    let id = m.key_id();
    let denied = [
        expect_err!(kms.disable_key().key_id(id).send().await),
        expect_err!(kms.enable_key().key_id(id).send().await),
        expect_err!(kms.schedule_key_deletion().key_id(id).send().await),
        expect_err!(kms.cancel_key_deletion().key_id(id).send().await),
        expect_err!(
            kms.update_key_description()
                .key_id(id)
                .description("mine")
                .send()
                .await
        ),
        expect_err!(
            kms.tag_resource()
                .key_id(id)
                .tags(tag("a", "b"))
                .send()
                .await
        ),
        expect_err!(kms.untag_resource().key_id(id).tag_keys("a").send().await),
        expect_err!(kms.enable_key_rotation().key_id(id).send().await),
        expect_err!(kms.disable_key_rotation().key_id(id).send().await),
        expect_err!(kms.rotate_key_on_demand().key_id(id).send().await),
        expect_err!(
            kms.create_alias()
                .alias_name("alias/mine")
                .target_key_id(id)
                .send()
                .await
        ),
    ];
    for (code, msg) in denied {
        assert_eq!(code, "AccessDeniedException", "{msg}");
        assert!(msg.contains(m.arn().unwrap()), "{msg}");
    }
    for (code, _) in [
        expect_err!(kms.delete_alias().alias_name("alias/aws/s3").send().await),
        expect_err!(
            kms.update_alias()
                .alias_name("alias/aws/s3")
                .target_key_id(create_key(&kms).await.key_id())
                .send()
                .await
        ),
    ] {
        assert_eq!(code, "NotAuthorizedException");
    }
    // Reading is allowed.
    kms.list_resource_tags().key_id(id).send().await.unwrap();
    kms.list_key_rotations().key_id(id).send().await.unwrap();

    // The domains key, in another region: its own description, its own key.
    let west = server.kms_in_region("eu-west-1");
    let d = west
        .describe_key()
        .key_id("alias/aws/domains")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(
        d.description(),
        Some("Default key that protects my tenant data vault domains when no other key is defined")
    );
    assert!(d.arn().unwrap().contains(":eu-west-1:"));
    // Another account resolving the first account's alias ARN creates nothing.
    let (code, _) = expect_err!(
        server
            .kms_other()
            .describe_key()
            .key_id(alias_arn("alias/aws/domains"))
            .send()
            .await
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        all_aliases(&kms, None)
            .await
            .iter()
            .any(|a| a.alias_name() == Some("alias/aws/domains") && a.target_key_id().is_none())
    );
}

// ---- tags ----------------------------------------------------------------------------------

#[tokio::test]
async fn tags_add_overwrite_remove_and_page() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let id = key.key_id();
    kms.tag_resource()
        .key_id(id)
        .tags(tag("b", "1"))
        .tags(tag("a", "2"))
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(key.arn().unwrap())
        .tags(tag("b", "3"))
        .tags(tag("c", ""))
        .send()
        .await
        .unwrap();
    let out = kms.list_resource_tags().key_id(id).send().await.unwrap();
    let got: Vec<(&str, &str)> = out
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(got, [("a", "2"), ("b", "3"), ("c", "")]);
    assert!(!out.truncated());

    // Pages of one.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_resource_tags()
            .key_id(id)
            .limit(1)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        seen.extend(page.tags().iter().map(|t| t.tag_key().to_owned()));
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    assert_eq!(seen, ["a", "b", "c"]);

    kms.untag_resource()
        .key_id(id)
        .tag_keys("a")
        .tag_keys("not-there")
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = kms
        .list_resource_tags()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| t.tag_key().to_owned())
        .collect();
    assert_eq!(keys, ["b", "c"]);

    // Rules of CreateKey's tags.
    for (tags, msg) in [
        (
            vec![tag("aws:x", "1")],
            "Tags beginning with aws: are reserved",
        ),
        (
            vec![tag("AWS:x", "1")],
            "Tags beginning with aws: are reserved",
        ),
        (vec![tag("d", "1"), tag("d", "2")], "Duplicate tag keys"),
    ] {
        let (code, m) = expect_err!(
            kms.tag_resource()
                .key_id(id)
                .set_tags(Some(tags))
                .send()
                .await
        );
        assert_eq!((code.as_str(), m.as_str()), ("TagException", msg));
    }
    // At most 50 in all: 48 more fit, 49 do not.
    let many = |n: usize| {
        (0..n)
            .map(|i| tag(&format!("k{i}"), "v"))
            .collect::<Vec<_>>()
    };
    let (code, msg) = expect_err!(
        kms.tag_resource()
            .key_id(id)
            .set_tags(Some(many(49)))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("TagException", "Too many tags")
    );
    kms.tag_resource()
        .key_id(id)
        .set_tags(Some(many(48)))
        .send()
        .await
        .unwrap();
    let (code, msg) = expect_err!(kms.list_resource_tags().key_id(id).limit(51).send().await);
    assert_eq!(code, "ValidationException");
    assert!(msg.contains("less than or equal to 50"), "{msg}");
    let page = kms.list_resource_tags().key_id(id).send().await.unwrap();
    assert_eq!(page.tags().len(), 50);
    assert!(!page.truncated());
    let (code, _) = expect_err!(
        kms.list_resource_tags()
            .key_id(id)
            .marker("nope")
            .send()
            .await
    );
    assert_eq!(code, "InvalidMarkerException");

    // Not while pending deletion; listing still works. Aliases are not taggable resources.
    kms.schedule_key_deletion().key_id(id).send().await.unwrap();
    let (code, msg) = expect_err!(
        kms.tag_resource()
            .key_id(id)
            .tags(tag("x", "y"))
            .send()
            .await
    );
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(msg, format!("{} is pending deletion.", key.arn().unwrap()));
    let (code, _) = expect_err!(kms.untag_resource().key_id(id).tag_keys("b").send().await);
    assert_eq!(code, "KMSInvalidStateException");
    kms.list_resource_tags().key_id(id).send().await.unwrap();
    let (code, _) = expect_err!(
        kms.tag_resource()
            .key_id("alias/x")
            .tags(tag("x", "y"))
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
}

// ---- deletion ------------------------------------------------------------------------------

#[tokio::test]
async fn schedule_and_cancel_key_deletion() {
    let server = Server::start();
    let kms = server.kms();
    let key = create_key(&kms).await;
    let (id, arn) = (key.key_id(), key.arn().unwrap());
    for days in [6, 31] {
        let (code, msg) = expect_err!(
            kms.schedule_key_deletion()
                .key_id(id)
                .pending_window_in_days(days)
                .send()
                .await
        );
        assert_eq!(
            (code.as_str(), msg.as_str()),
            (
                "ValidationException",
                "PendingWindowInDays must be between 7 and 30"
            )
        );
    }
    kms.enable_key_rotation().key_id(id).send().await.unwrap();
    let before = unix_now();
    let out = kms.schedule_key_deletion().key_id(id).send().await.unwrap();
    assert_eq!(out.key_id(), Some(arn));
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days(), Some(30));
    let when = out.deletion_date().unwrap().secs();
    assert!(
        (before + 30 * DAY - 2..=unix_now() + 30 * DAY + 2).contains(&when),
        "DeletionDate {when}"
    );
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::PendingDeletion));
    assert!(!m.enabled());
    assert_eq!(m.deletion_date().map(|d| d.secs()), Some(when));
    // Unusable, and rotation reads as off while pending deletion.
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(id)
            .plaintext(Blob::new("x"))
            .send()
            .await
    );
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(msg, format!("{arn} is pending deletion."));
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), None);
    let (code, msg) = expect_err!(
        kms.schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(7)
            .send()
            .await
    );
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(msg, format!("{arn} is pending deletion."));
    let (code, _) = expect_err!(kms.enable_key().key_id(id).send().await);
    assert_eq!(code, "KMSInvalidStateException");

    let out = kms.cancel_key_deletion().key_id(id).send().await.unwrap();
    assert_eq!(out.key_id(), Some(arn));
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::Disabled), "always Disabled");
    assert!(m.deletion_date().is_none());
    assert!(
        kms.get_key_rotation_status()
            .key_id(id)
            .send()
            .await
            .unwrap()
            .key_rotation_enabled(),
        "the rotation setting returns"
    );
    let (code, msg) = expect_err!(kms.cancel_key_deletion().key_id(id).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(msg, format!("{arn} is not pending deletion."));
    // A custom window; key ids only.
    let out = kms
        .schedule_key_deletion()
        .key_id(arn)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(out.pending_window_in_days(), Some(7));
    let (code, _) = expect_err!(kms.cancel_key_deletion().key_id("alias/x").send().await);
    assert_eq!(code, "NotFoundException");
}

#[tokio::test]
async fn a_key_is_deleted_when_its_window_ends() {
    let server = Server::start_with_args(&["--test-clock"]);
    let kms = server.kms();
    let key = create_key(&kms).await;
    let keep = create_key(&kms).await;
    let (id, arn) = (key.key_id(), key.arn().unwrap().to_owned());
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(id)
        .send()
        .await
        .unwrap();
    let ciphertext = encrypt(&kms, id, "secret").await;
    kms.schedule_key_deletion()
        .key_id(id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    kms.schedule_key_deletion()
        .key_id(keep.key_id())
        .pending_window_in_days(30)
        .send()
        .await
        .unwrap();

    // Not yet: six days on the key is still there.
    set_test_clock(&server, 6 * DAY).await;
    kms.describe_key().key_id(id).send().await.unwrap();
    set_test_clock(&server, 7 * DAY + 3600).await;

    let (code, msg) = expect_err!(kms.describe_key().key_id(id).send().await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(msg, format!("Key '{arn}' does not exist"));
    // Its ciphertexts answer what AWS answers for a deleted key.
    let (code, msg) = expect_err!(kms.decrypt().ciphertext_blob(ciphertext).send().await);
    assert_eq!(code, "AccessDeniedException");
    assert_eq!(
        msg,
        "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
    );
    assert!(
        !all_aliases(&kms, None)
            .await
            .iter()
            .any(|a| a.alias_name() == Some("alias/doomed")),
        "its aliases went with it"
    );
    assert!(!list_all_keys(&kms, None).await.contains(&id.to_owned()));
    // The other key's window is longer.
    let m = kms
        .describe_key()
        .key_id(keep.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(
        m.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingDeletion)
    );

    let records = audit_records(&server.data_dir);
    let deletes: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventName"] == "DeleteKey")
        .collect();
    assert_eq!(deletes.len(), 1, "one DeleteKey service event");
    let r = deletes[0];
    assert_eq!(r["eventType"], "AwsServiceEvent");
    assert_eq!(
        r["userIdentity"],
        serde_json::json!({"accountId": ACCOUNT, "invokedBy": "AWS Internal"})
    );
    assert_eq!(r["serviceEventDetails"], serde_json::json!({"keyId": id}));
    assert_eq!(r["resources"][0]["ARN"], arn.as_str());
    assert_eq!(r["sourceIPAddress"], "AWS Internal");
    assert_eq!(r["requestParameters"], Value::Null);
    assert_eq!(r["readOnly"], false);
    assert!(r.get("requestID").is_none());
    // Service events keep the log verifiable.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
}

#[tokio::test]
async fn a_key_due_while_the_server_was_down_is_deleted_at_the_next_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = crate::common::default_config();
    let mut server = Server::start_in(&data, &config, &[]);
    let kms = server.kms();
    let key = create_key(&kms).await;
    let keep = create_key(&kms).await;
    let ciphertext = encrypt(&kms, key.key_id(), "secret").await;
    kms.schedule_key_deletion()
        .key_id(key.key_id())
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert!(server.stop().success());

    // Eight days later (for the core; SigV4 keeps wall time).
    let offset = (8 * DAY).to_string();
    let server = Server::start_in(&data, &config, &["--test-clock-offset-seconds", &offset]);
    let kms = server.kms();
    let (code, _) = expect_err!(kms.describe_key().key_id(key.key_id()).send().await);
    assert_eq!(code, "NotFoundException");
    let (code, _) = expect_err!(kms.decrypt().ciphertext_blob(ciphertext).send().await);
    assert_eq!(code, "AccessDeniedException");
    kms.describe_key()
        .key_id(keep.key_id())
        .send()
        .await
        .unwrap();
    let records = audit_records(&data);
    assert!(
        records
            .iter()
            .any(|r| r["eventName"] == "DeleteKey"
                && r["serviceEventDetails"]["keyId"] == key.key_id()),
        "the deletion is audited"
    );
}

// ---- rotation ------------------------------------------------------------------------------

#[tokio::test]
async fn ciphertexts_of_three_material_generations_all_decrypt() {
    let server = Server::start_with_args(&["--test-clock"]);
    let kms = server.kms();
    let key = create_key(&kms).await;
    let id = key.key_id();
    let m1 = key.current_key_material_id().unwrap().to_owned();
    let c1 = encrypt(&kms, id, "one").await;

    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    assert_eq!(status.key_id(), key.arn());
    assert_eq!(status.next_rotation_date(), None);
    let before = unix_now();
    kms.enable_key_rotation()
        .key_id(id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    let next = status.next_rotation_date().unwrap().secs();
    assert!((before + 90 * DAY - 2..=unix_now() + 90 * DAY + 2).contains(&next));
    assert!(status.on_demand_rotation_start_date().is_none());

    // Automatic rotation, by the scheduler, when the period is over.
    set_test_clock(&server, 91 * DAY).await;
    let m2 = current_material(&kms, id).await;
    assert_ne!(m2, m1, "CurrentKeyMaterialId changes");
    let c2 = encrypt(&kms, id, "two").await;
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    let next2 = status.next_rotation_date().unwrap().secs();
    assert!(
        next2 > next + 80 * DAY,
        "the next rotation moved a period on"
    );

    // On demand, independent of the schedule.
    let out = kms.rotate_key_on_demand().key_id(id).send().await.unwrap();
    assert_eq!(out.key_id(), key.arn());
    let m3 = current_material(&kms, id).await;
    assert!(m3 != m1 && m3 != m2);
    let c3 = encrypt(&kms, id, "three").await;
    let status = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(status.next_rotation_date().unwrap().secs(), next2);

    for (c, text, material) in [(c1, "one", &m1), (c2, "two", &m2), (c3, "three", &m3)] {
        let d = kms
            .decrypt()
            .ciphertext_blob(c.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), text.as_bytes());
        assert_eq!(d.key_material_id(), Some(material.as_str()));
        // ReEncrypt reports the source generation and uses the newest for the destination.
        let r = kms
            .re_encrypt()
            .ciphertext_blob(c)
            .destination_key_id(id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.source_key_material_id(), Some(material.as_str()));
        assert_eq!(r.destination_key_material_id(), Some(m3.as_str()));
    }

    let rotations = kms.list_key_rotations().key_id(id).send().await.unwrap();
    let listed: Vec<(&str, &RotationType)> = rotations
        .rotations()
        .iter()
        .map(|r| (r.key_material_id().unwrap(), r.rotation_type().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            (m2.as_str(), &RotationType::Automatic),
            (m3.as_str(), &RotationType::OnDemand)
        ]
    );
    assert!(
        rotations
            .rotations()
            .iter()
            .all(|r| r.rotation_date().is_some())
    );
    let all = kms
        .list_key_rotations()
        .key_id(id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    let states: Vec<(&str, &KeyMaterialState)> = all
        .rotations()
        .iter()
        .map(|r| {
            (
                r.key_material_id().unwrap(),
                r.key_material_state().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (m1.as_str(), &KeyMaterialState::NonCurrent),
            (m2.as_str(), &KeyMaterialState::NonCurrent),
            (m3.as_str(), &KeyMaterialState::Current)
        ]
    );
    let page = kms
        .list_key_rotations()
        .key_id(id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .limit(2)
        .send()
        .await
        .unwrap();
    assert!(page.truncated());
    let rest = kms
        .list_key_rotations()
        .key_id(id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.rotations().len(), 1);
    assert!(!rest.truncated());

    // The automatic rotation is a RotateKey service event.
    let records = audit_records(&server.data_dir);
    let rotate: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventName"] == "RotateKey")
        .collect();
    assert_eq!(rotate.len(), 1);
    assert_eq!(rotate[0]["eventType"], "AwsServiceEvent");
    assert_eq!(rotate[0]["serviceEventDetails"]["keyId"], id);
    assert_eq!(
        rotate[0]["additionalEventData"]["keyMaterialId"],
        m2.as_str()
    );

    // Disabled keys do not rotate; on re-enable an overdue rotation happens at once.
    kms.disable_key().key_id(id).send().await.unwrap();
    set_test_clock(&server, 200 * DAY).await;
    kms.enable_key().key_id(id).send().await.unwrap();
    assert_eq!(current_material(&kms, id).await, m3);
    set_test_clock(&server, 200 * DAY + 1).await;
    assert_ne!(current_material(&kms, id).await, m3);
}

#[tokio::test]
async fn rotation_rules_and_limits() {
    let server = Server::start_with_args(&["--test-clock"]);
    let kms = server.kms();
    let key = create_key(&kms).await;
    let (id, arn) = (key.key_id(), key.arn().unwrap());
    for (days, bound) in [
        (89, "greater than or equal to 90"),
        (2561, "less than or equal to 2560"),
    ] {
        let (code, msg) = expect_err!(
            kms.enable_key_rotation()
                .key_id(id)
                .rotation_period_in_days(days)
                .send()
                .await
        );
        assert_eq!(code, "ValidationException");
        assert!(msg.contains(bound), "{msg}");
    }
    // The default period is a year; enabling again changes the period.
    kms.enable_key_rotation().key_id(id).send().await.unwrap();
    let s = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(s.rotation_period_in_days(), Some(365));
    let next365 = s.next_rotation_date().unwrap().secs();
    kms.enable_key_rotation()
        .key_id(id)
        .rotation_period_in_days(100)
        .send()
        .await
        .unwrap();
    let s = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(s.rotation_period_in_days(), Some(100));
    assert_eq!(s.next_rotation_date().unwrap().secs(), next365 - 265 * DAY);
    kms.disable_key_rotation().key_id(id).send().await.unwrap();
    let s = kms
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert!(!s.key_rotation_enabled());
    assert_eq!(s.rotation_period_in_days(), None);

    // Within 20 minutes of a scheduled rotation, no on-demand rotation.
    kms.enable_key_rotation()
        .key_id(id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    set_test_clock(&server, 90 * DAY - 600).await;
    let (code, _) = expect_err!(kms.rotate_key_on_demand().key_id(id).send().await);
    assert_eq!(code, "ConflictException");
    kms.disable_key_rotation().key_id(id).send().await.unwrap();

    // 25 on-demand rotations per key.
    for _ in 0..25 {
        kms.rotate_key_on_demand().key_id(id).send().await.unwrap();
    }
    let (code, msg) = expect_err!(kms.rotate_key_on_demand().key_id(id).send().await);
    assert_eq!(code, "LimitExceededException");
    assert_eq!(
        msg,
        format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}"
        )
    );
    let listed = kms
        .list_key_rotations()
        .key_id(id)
        .limit(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.rotations().len(), 25);
    let (code, _) = expect_err!(kms.list_key_rotations().key_id(id).limit(1001).send().await);
    assert_eq!(code, "ValidationException");
    let (code, _) = expect_err!(kms.list_key_rotations().key_id(id).limit(0).send().await);
    assert_eq!(code, "ValidationException");

    // Key states.
    let other = create_key(&kms).await;
    kms.disable_key()
        .key_id(other.key_id())
        .send()
        .await
        .unwrap();
    let disabled = format!("{} is disabled.", other.arn().unwrap());
    for r in [
        expect_err!(
            kms.rotate_key_on_demand()
                .key_id(other.key_id())
                .send()
                .await
        ),
        expect_err!(
            kms.enable_key_rotation()
                .key_id(other.key_id())
                .send()
                .await
        ),
        expect_err!(
            kms.disable_key_rotation()
                .key_id(other.key_id())
                .send()
                .await
        ),
    ] {
        assert_eq!(r, ("DisabledException".to_owned(), disabled.clone()));
    }
    // GetKeyRotationStatus works on a disabled key.
    kms.get_key_rotation_status()
        .key_id(other.key_id())
        .send()
        .await
        .unwrap();
    kms.schedule_key_deletion()
        .key_id(other.key_id())
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(
        kms.rotate_key_on_demand()
            .key_id(other.key_id())
            .send()
            .await
    );
    assert_eq!(code, "KMSInvalidStateException");
    // Key ids only.
    let (code, _) = expect_err!(kms.enable_key_rotation().key_id("alias/none").send().await);
    assert_eq!(code, "NotFoundException");

    // Imported-material keys have no automatic rotation.
    let ext = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let ext_arn = ext.arn().unwrap();
    let origin_msg = format!("{ext_arn} origin is EXTERNAL which is not valid for this operation.");
    for r in [
        expect_err!(
            kms.get_key_rotation_status()
                .key_id(ext.key_id())
                .send()
                .await
        ),
        expect_err!(kms.enable_key_rotation().key_id(ext.key_id()).send().await),
    ] {
        assert_eq!(
            r,
            (
                "UnsupportedOperationException".to_owned(),
                origin_msg.clone()
            )
        );
    }
    let (code, msg) = expect_err!(kms.rotate_key_on_demand().key_id(ext.key_id()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(msg, format!("{ext_arn} is pending import."));
}

// ---- imported key material -----------------------------------------------------------------

async fn import_params(
    kms: &aws_sdk_kms::Client,
    key: &str,
    alg: AlgorithmSpec,
) -> (Vec<u8>, Blob) {
    let p = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(alg)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    (
        p.public_key().unwrap().as_ref().to_vec(),
        p.import_token().unwrap().clone(),
    )
}

#[tokio::test]
async fn imported_key_material_round_trip() {
    let server = Server::start_with_args(&["--test-clock"]);
    let kms = server.kms();
    let created = kms
        .create_key()
        .origin(OriginType::External)
        .description("byok")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let (id, arn) = (created.key_id(), created.arn().unwrap());
    assert_eq!(created.key_state(), Some(&KeyState::PendingImport));
    assert!(!created.enabled());
    assert_eq!(created.origin(), Some(&OriginType::External));
    assert_eq!(created.current_key_material_id(), None);
    let pending = format!("{arn} is pending import.");
    let (code, msg) = expect_err!(
        kms.encrypt()
            .key_id(id)
            .plaintext(Blob::new("x"))
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("KMSInvalidStateException", pending.as_str())
    );

    // Parameters: only for EXTERNAL keys, RSA wrapping keys, valid for 24 hours.
    let normal = create_key(&kms).await;
    let (code, msg) = expect_err!(
        kms.get_parameters_for_import()
            .key_id(normal.key_id())
            .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(WrappingKeySpec::Rsa2048)
            .send()
            .await
    );
    assert_eq!(code, "UnsupportedOperationException");
    assert_eq!(
        msg,
        format!(
            "{} origin is AWS_KMS which is not valid for this operation.",
            normal.arn().unwrap()
        )
    );
    let (code, _) = expect_err!(
        kms.get_parameters_for_import()
            .key_id(id)
            .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(WrappingKeySpec::Sm2)
            .send()
            .await
    );
    assert_eq!(code, "UnsupportedOperationException");
    let before = unix_now();
    let p = kms
        .get_parameters_for_import()
        .key_id(id)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa3072)
        .send()
        .await
        .unwrap();
    assert_eq!(p.key_id(), Some(arn));
    let valid_to = p.parameters_valid_to().unwrap().secs();
    assert!((before + DAY - 2..=unix_now() + DAY + 2).contains(&valid_to));
    let public = p.public_key().unwrap().as_ref().to_vec();
    let token = p.import_token().unwrap().clone();

    let material = [0x42u8; 32];
    let wrapped = wrap_for_import(&public, ImportWrapping::RsaesOaepSha256, &material).unwrap();
    let import = |token: Blob, wrapped: Vec<u8>| {
        kms.import_key_material()
            .key_id(id)
            .import_token(token)
            .encrypted_key_material(Blob::new(wrapped))
    };
    // KEY_MATERIAL_EXPIRES (the default) needs ValidTo, at most a year ahead.
    let (code, msg) = expect_err!(import(token.clone(), wrapped.clone()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        (
            "ValidationException",
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
        )
    );
    let (code, _) = expect_err!(
        import(token.clone(), wrapped.clone())
            .valid_to(DateTime::from_secs(unix_now() + 400 * DAY))
            .send()
            .await
    );
    assert_eq!(code, "ValidationException");
    // Another key's token; material that does not unwrap.
    let other_ext = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let (_, other_token) =
        import_params(&kms, other_ext.key_id(), AlgorithmSpec::RsaesOaepSha256).await;
    let (code, _) = expect_err!(
        import(other_token, wrapped.clone())
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
    );
    assert_eq!(code, "InvalidImportTokenException");
    let (code, msg) = expect_err!(
        import(token.clone(), vec![7u8; 384])
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("InvalidCiphertextException", "")
    );
    // Not 256 bits.
    let short = wrap_for_import(&public, ImportWrapping::RsaesOaepSha256, &[1u8; 16]).unwrap();
    let (code, _) = expect_err!(
        import(token.clone(), short)
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
    );
    assert_eq!(code, "IncorrectKeyMaterialException");

    let out = import(token.clone(), wrapped.clone())
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn));
    let material_id = out.key_material_id().unwrap().to_owned();
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert!(m.enabled());
    assert_eq!(
        m.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    assert_eq!(m.valid_to(), None);
    assert_eq!(m.current_key_material_id(), Some(material_id.as_str()));

    let c = encrypt(&kms, id, "imported").await;
    let d = kms
        .decrypt()
        .ciphertext_blob(c.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"imported");
    assert_eq!(d.key_material_id(), Some(material_id.as_str()));

    // Delete the material: the key waits for it again.
    let out = kms
        .delete_imported_key_material()
        .key_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn));
    assert_eq!(out.key_material_id(), Some(material_id.as_str()));
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::PendingImport));
    assert_eq!(m.expiration_model(), None);
    let (code, msg) = expect_err!(kms.decrypt().ciphertext_blob(c.clone()).send().await);
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("KMSInvalidStateException", pending.as_str())
    );
    let all = kms
        .list_key_rotations()
        .key_id(id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    assert_eq!(all.rotations().len(), 1);
    assert_eq!(
        all.rotations()[0].import_state(),
        Some(&ImportState::PendingImport)
    );

    // Different material is refused; the same material (wrapped differently) comes back.
    let (public, token) = import_params(&kms, id, AlgorithmSpec::RsaAesKeyWrapSha256).await;
    let different =
        wrap_for_import(&public, ImportWrapping::RsaAesKeyWrapSha256, &[0x43u8; 32]).unwrap();
    let (code, _) = expect_err!(
        import(token.clone(), different)
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
    );
    assert_eq!(code, "IncorrectKeyMaterialException");
    let same = wrap_for_import(&public, ImportWrapping::RsaAesKeyWrapSha256, &material).unwrap();
    let expires = unix_now() + 10 * DAY;
    let out = import(token, same)
        .valid_to(DateTime::from_secs(expires))
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_material_id(), Some(material_id.as_str()));
    let d = kms
        .decrypt()
        .ciphertext_blob(c.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"imported");
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.valid_to().map(|t| t.secs()), Some(expires));
    assert_eq!(
        m.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialExpires)
    );
    let rotations = kms
        .list_key_rotations()
        .key_id(id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    let entry = &rotations.rotations()[0];
    assert_eq!(entry.import_state(), Some(&ImportState::Imported));
    assert_eq!(entry.key_material_state(), Some(&KeyMaterialState::Current));
    assert_eq!(entry.valid_to().map(|t| t.secs()), Some(expires));

    // Tokens expire after 24 hours.
    let (public, token) = import_params(&kms, id, AlgorithmSpec::RsaesOaepSha1).await;
    let wrapped = wrap_for_import(&public, ImportWrapping::RsaesOaepSha1, &material).unwrap();
    set_test_clock(&server, DAY + 60).await;
    let (code, _) = expect_err!(
        import(token, wrapped)
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
    );
    assert_eq!(code, "ExpiredImportTokenException");

    // The material expires at ValidTo: the scheduler deletes it and logs the service event.
    set_test_clock(&server, 11 * DAY).await;
    let m = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::PendingImport));
    let (code, _) = expect_err!(kms.decrypt().ciphertext_blob(c).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    let records = audit_records(&server.data_dir);
    let expired: Vec<&Value> = records
        .iter()
        .filter(|r| r["eventName"] == "DeleteExpiredKeyMaterial")
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["eventType"], "AwsServiceEvent");
    assert_eq!(expired[0]["serviceEventDetails"]["keyId"], id);
    // No record holds an import token or wrapped material.
    let text = serde_json::to_string(&records).unwrap();
    assert!(!text.contains("importToken") && !text.contains("encryptedKeyMaterial"));

    // Deleting again has no effect; pending deletion keeps its state.
    kms.schedule_key_deletion().key_id(id).send().await.unwrap();
    kms.delete_imported_key_material()
        .key_id(id)
        .send()
        .await
        .unwrap();
    let m = kms.describe_key().key_id(id).send().await.unwrap();
    assert_eq!(
        m.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingDeletion)
    );
    // An imported key's deletion cancelled without material: it waits for import again.
    kms.cancel_key_deletion().key_id(id).send().await.unwrap();
    let m = kms.describe_key().key_id(id).send().await.unwrap();
    assert_eq!(
        m.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingImport)
    );
    let (code, msg) = expect_err!(
        kms.delete_imported_key_material()
            .key_id(normal.key_id())
            .send()
            .await
    );
    assert_eq!(code, "UnsupportedOperationException");
    assert!(msg.ends_with("origin is AWS_KMS which is not valid for this operation."));
}

// ---- GetKeyLastUsage -----------------------------------------------------------------------

#[tokio::test]
async fn last_usage_counts_successful_cryptographic_operations_only() {
    let server = Server::start();
    let kms = server.kms();
    let a = create_key(&kms).await;
    let b = create_key(&kms).await;
    let fresh = kms
        .get_key_last_usage()
        .key_id(a.key_id())
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.key_id(), a.arn());
    let usage = fresh.key_last_usage().expect("present, empty");
    assert!(usage.operation().is_none() && usage.timestamp().is_none());
    let tracking = fresh.tracking_start_date().unwrap().secs();
    let created = fresh.key_creation_date().unwrap().secs();
    assert_eq!(Some(created), a.creation_date().map(|d| d.secs()));
    assert!(tracking <= unix_now());

    let enc = kms
        .encrypt()
        .key_id(a.key_id())
        .plaintext(Blob::new("x"))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    // Failures and non-cryptographic calls do not count.
    let _ = kms
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    kms.describe_key().key_id(a.key_id()).send().await.unwrap();
    let got = kms
        .get_key_last_usage()
        .key_id(a.key_id())
        .send()
        .await
        .unwrap();
    let u = got.key_last_usage().unwrap();
    assert_eq!(u.operation(), Some(&KeyLastUsageTrackingOperation::Encrypt));
    assert_eq!(u.kms_request_id(), enc.request_id());
    let records = audit_records(&server.data_dir);
    let rec = records
        .iter()
        .find(|r| r["requestID"] == enc.request_id().unwrap())
        .unwrap();
    assert_eq!(u.cloud_trail_event_id(), rec["eventID"].as_str());
    assert!(u.timestamp().is_some());
    assert_eq!(got.tracking_start_date().unwrap().secs(), tracking);

    // ReEncrypt updates both keys.
    kms.re_encrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .source_encryption_context("k", "v")
        .destination_key_id(b.key_id())
        .send()
        .await
        .unwrap();
    for key in [&a, &b] {
        let u = kms
            .get_key_last_usage()
            .key_id(key.key_id())
            .send()
            .await
            .unwrap();
        assert_eq!(
            u.key_last_usage().unwrap().operation(),
            Some(&KeyLastUsageTrackingOperation::ReEncrypt)
        );
    }
    kms.generate_data_key_without_plaintext()
        .key_id(b.arn().unwrap())
        .number_of_bytes(16)
        .send()
        .await
        .unwrap();
    let u = kms
        .get_key_last_usage()
        .key_id(b.arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.key_last_usage().unwrap().operation(),
        Some(&KeyLastUsageTrackingOperation::GenerateDataKeyWithoutPlaintext)
    );
    // Aliases are not accepted; unknown keys are not found.
    kms.create_alias()
        .alias_name("alias/used")
        .target_key_id(a.key_id())
        .send()
        .await
        .unwrap();
    let (code, _) = expect_err!(kms.get_key_last_usage().key_id("alias/used").send().await);
    assert_eq!(code, "NotFoundException");
    let (code, _) = expect_err!(
        kms.get_key_last_usage()
            .key_id(unknown_key_id())
            .send()
            .await
    );
    assert_eq!(code, "NotFoundException");
}

#[tokio::test]
async fn last_usage_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = crate::common::default_config();
    let mut server = Server::start_in(&data, &config, &[]);
    let kms = server.kms();
    let key = create_key(&kms).await;
    let out = kms
        .generate_data_key()
        .key_id(key.key_id())
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    // Stopped right away: the shutdown flush keeps the use.
    assert!(server.stop().success());
    let server = Server::start_in(&data, &config, &[]);
    let u = server
        .kms()
        .get_key_last_usage()
        .key_id(key.key_id())
        .send()
        .await
        .unwrap();
    let u = u.key_last_usage().unwrap();
    assert_eq!(
        u.operation(),
        Some(&KeyLastUsageTrackingOperation::GenerateDataKey)
    );
    assert_eq!(u.kms_request_id(), out.request_id());
}
