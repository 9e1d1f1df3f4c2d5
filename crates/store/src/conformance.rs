//! The conformance suite every backend passes, SQLite and PostgreSQL alike.
//!
//! - Store: [`run_all`] against a fresh, empty store; [`invalidations`] for backends shared by
//!   several nodes (two instances on one database).
//! - Audit: [`audit::run_all`] with a harness that makes fresh backends and can tamper with them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tresor_crypto::KeyMaterialId;
use tresor_kms::identity::{AccessKeyRecord, PrincipalKind, PrincipalRecord};
use tresor_kms::store::{
    AliasRecord, GrantConstraints, GrantRecord, KEY_RECORD_FORMAT, KeyRecord, KeyUsageRecord,
    MaterialRecord, Store, StoreError, Tag,
};
use tresor_kms::types::{
    AccountId, KeyId, KeyManager, KeySpec, KeyState, KeyUsage, Origin, Region, Timestamp,
};

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}
fn region(s: &str) -> Region {
    Region::parse(s).unwrap()
}

pub fn sample_key(acct: &str, reg: &str) -> KeyRecord {
    let id = KeyMaterialId([7u8; 32]);
    KeyRecord {
        format: KEY_RECORD_FORMAT,
        key_id: KeyId::new_random(),
        account: account(acct),
        region: region(reg),
        created: Timestamp(1_700_000_000_123),
        description: "d".into(),
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Customer,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        policy: "{}".into(),
        materials: vec![MaterialRecord {
            id,
            wrapped: vec![1, 2, 3],
            created: Timestamp(1),
            rotation: None,
            public_key: None,
        }],
        current_material: Some(id),
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
        rotation: Default::default(),
        imported: None,
        version: 0,
    }
}

/// Runs every check; panics with the failing check's name.
pub async fn run_all(store: Arc<dyn Store>) {
    meta(&*store).await;
    identities(&*store).await;
    key_round_trip(&*store).await;
    compare_and_set(&*store).await;
    listing(&*store).await;
    namespaces(&*store).await;
    concurrent_updates(store.clone()).await;
    aliases(&*store).await;
    grants(&*store).await;
    usage_due_and_purge(&*store).await;
    races(store.clone()).await;
}

async fn aliases(s: &dyn Store) {
    let k1 = sample_key("131313131313", "us-east-1");
    let k2 = sample_key("131313131313", "us-east-1");
    s.insert_key(&k1).await.unwrap();
    s.insert_key(&k2).await.unwrap();
    let a = |name: &str, k: &KeyRecord| AliasRecord {
        account: k.account.clone(),
        region: k.region.clone(),
        name: name.into(),
        target_key_id: k.key_id,
        created: Timestamp(1),
        updated: Timestamp(1),
    };
    s.create_alias(&a("alias/b", &k1)).await.unwrap();
    s.create_alias(&a("alias/a", &k1)).await.unwrap();
    s.create_alias(&a("alias/c", &k2)).await.unwrap();
    assert!(
        matches!(
            s.create_alias(&a("alias/a", &k2)).await,
            Err(StoreError::Conflict(_))
        ),
        "alias names are unique"
    );
    let (acct, reg) = (k1.account.clone(), k1.region.clone());
    assert_eq!(
        s.get_alias(&acct, &reg, "alias/a")
            .await
            .unwrap()
            .unwrap()
            .target_key_id,
        k1.key_id
    );
    assert_eq!(
        s.get_alias(&acct, &region("eu-west-1"), "alias/a")
            .await
            .unwrap(),
        None
    );
    let names = |v: Vec<AliasRecord>| v.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(
        names(s.list_aliases(&acct, &reg, None, None, 10).await.unwrap()),
        ["alias/a", "alias/b", "alias/c"]
    );
    assert_eq!(
        names(
            s.list_aliases(&acct, &reg, Some(&k1.key_id), None, 10)
                .await
                .unwrap()
        ),
        ["alias/a", "alias/b"]
    );
    assert_eq!(
        names(
            s.list_aliases(&acct, &reg, None, Some("alias/a"), 1)
                .await
                .unwrap()
        ),
        ["alias/b"]
    );
    assert!(
        s.update_alias(&AliasRecord {
            updated: Timestamp(2),
            ..a("alias/a", &k2)
        })
        .await
        .unwrap()
    );
    assert_eq!(
        s.get_alias(&acct, &reg, "alias/a")
            .await
            .unwrap()
            .unwrap()
            .target_key_id,
        k2.key_id
    );
    assert!(!s.update_alias(&a("alias/nope", &k2)).await.unwrap());
    assert!(s.delete_alias(&acct, &reg, "alias/b").await.unwrap());
    assert!(!s.delete_alias(&acct, &reg, "alias/b").await.unwrap());
}

fn sample_grant(k: &KeyRecord, id: &str, retiring: Option<&str>) -> GrantRecord {
    GrantRecord {
        key_region: k.region.clone(),
        key_id: k.key_id,
        key_account: k.account.clone(),
        grant_id: id.into(),
        name: Some("n".into()),
        grantee_principal: "arn:aws:iam::141414141414:role/R".into(),
        retiring_principal: retiring.map(str::to_owned),
        operations: vec!["Decrypt".into(), "GenerateDataKey".into()],
        constraints: Some(GrantConstraints {
            encryption_context_subset: Some(
                [("a".to_owned(), "b".to_owned())].into_iter().collect(),
            ),
            encryption_context_equals: None,
        }),
        issuing_account: "arn:aws:iam::141414141414:root".into(),
        created: Timestamp(3),
    }
}

async fn grants(s: &dyn Store) {
    let k = sample_key("141414141414", "us-east-1");
    s.insert_key(&k).await.unwrap();
    let g1 = sample_grant(
        &k,
        &"1".repeat(64),
        Some("arn:aws:iam::141414141414:role/Retirer"),
    );
    let got = s.insert_grant(&g1, Some("tok")).await.unwrap();
    assert_eq!(got, g1);
    // Same idempotency token: the existing grant comes back, nothing new is stored.
    let again = s
        .insert_grant(&sample_grant(&k, &"2".repeat(64), None), Some("tok"))
        .await
        .unwrap();
    assert_eq!(again.grant_id, g1.grant_id);
    let g3 = sample_grant(&k, &"3".repeat(64), None);
    s.insert_grant(&g3, None).await.unwrap();
    assert_eq!(s.count_grants(&k.region, &k.key_id).await.unwrap(), 2);
    assert_eq!(
        s.get_grant(&k.region, &k.key_id, &g3.grant_id)
            .await
            .unwrap(),
        Some(g3.clone())
    );
    let page = s.list_grants(&k.region, &k.key_id, None, 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].1.grant_id, g1.grant_id);
    let rest = s
        .list_grants(&k.region, &k.key_id, Some(page[0].0), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter()
            .map(|(_, g)| g.grant_id.as_str())
            .collect::<Vec<_>>(),
        [g3.grant_id.as_str()]
    );
    let retirable = s
        .list_retirable_grants("arn:aws:iam::141414141414:role/Retirer", None, 10)
        .await
        .unwrap();
    assert_eq!(retirable.len(), 1);
    assert!(
        s.delete_grant(&k.region, &k.key_id, &g1.grant_id)
            .await
            .unwrap()
    );
    assert!(
        !s.delete_grant(&k.region, &k.key_id, &g1.grant_id)
            .await
            .unwrap()
    );
    assert_eq!(s.count_grants(&k.region, &k.key_id).await.unwrap(), 1);
}

async fn usage_due_and_purge(s: &dyn Store) {
    let mut k = sample_key("151515151515", "us-east-1");
    s.insert_key(&k).await.unwrap();
    k.version = 1;
    let usage = |t: i64, op: &str| KeyUsageRecord {
        region: k.region.clone(),
        key_id: k.key_id,
        operation: op.into(),
        timestamp: Timestamp(t),
        event_id: "e".into(),
        request_id: "r".into(),
    };
    s.record_key_usage(&[usage(10, "Encrypt")]).await.unwrap();
    s.record_key_usage(&[usage(5, "Decrypt")]).await.unwrap();
    assert_eq!(
        s.get_key_usage(&k.region, &k.key_id)
            .await
            .unwrap()
            .unwrap()
            .operation,
        "Encrypt",
        "newer wins"
    );
    s.record_key_usage(&[usage(20, "Decrypt")]).await.unwrap();
    assert_eq!(
        s.get_key_usage(&k.region, &k.key_id)
            .await
            .unwrap()
            .unwrap()
            .operation,
        "Decrypt"
    );

    assert!(
        s.keys_due(Timestamp(i64::MAX), 1000)
            .await
            .unwrap()
            .iter()
            .all(|(_, id)| *id != k.key_id)
    );
    k.state = KeyState::PendingDeletion;
    k.deletion_date = Some(Timestamp(1_000));
    s.update_key(&k).await.unwrap();
    k.version = 2;
    assert!(
        !s.keys_due(Timestamp(999), 1000)
            .await
            .unwrap()
            .iter()
            .any(|(_, id)| *id == k.key_id)
    );
    assert!(
        s.keys_due(Timestamp(1_000), 1000)
            .await
            .unwrap()
            .iter()
            .any(|(_, id)| *id == k.key_id)
    );

    let alias = AliasRecord {
        account: k.account.clone(),
        region: k.region.clone(),
        name: "alias/doomed".into(),
        target_key_id: k.key_id,
        created: Timestamp(1),
        updated: Timestamp(1),
    };
    s.create_alias(&alias).await.unwrap();
    s.insert_grant(&sample_grant(&k, &"9".repeat(64), None), None)
        .await
        .unwrap();
    assert!(
        matches!(
            s.purge_key(&k.region, &k.key_id, 1).await,
            Err(StoreError::Conflict(_))
        ),
        "stale purge loses"
    );
    s.purge_key(&k.region, &k.key_id, 2).await.unwrap();
    assert_eq!(s.get_key(&k.region, &k.key_id).await.unwrap(), None);
    assert_eq!(
        s.get_alias(&k.account, &k.region, "alias/doomed")
            .await
            .unwrap(),
        None,
        "aliases go with the key"
    );
    assert_eq!(
        s.count_grants(&k.region, &k.key_id).await.unwrap(),
        0,
        "grants go with the key"
    );
    assert_eq!(s.get_key_usage(&k.region, &k.key_id).await.unwrap(), None);
    assert!(!s.list_principals().await.unwrap().is_empty());
}

async fn meta(s: &dyn Store) {
    assert_eq!(s.get_meta("x").await.unwrap(), None, "meta: absent");
    assert_eq!(
        s.put_meta_if_absent("x", "1").await.unwrap(),
        "1",
        "meta: insert"
    );
    assert_eq!(
        s.put_meta_if_absent("x", "2").await.unwrap(),
        "1",
        "meta: first value wins"
    );
    assert_eq!(s.get_meta("x").await.unwrap().as_deref(), Some("1"));
    s.ping().await.unwrap();
}

async fn identities(s: &dyn Store) {
    let mut p =
        PrincipalRecord::from_arn("arn:aws:iam::123456789012:user/alice", Timestamp(5)).unwrap();
    p.principal_id = "AIDAEXAMPLE".into();
    s.upsert_principal(&p).await.unwrap();
    assert_eq!(s.get_principal(&p.arn).await.unwrap(), Some(p.clone()));
    p.principal_id = "AIDAOTHER".into();
    s.upsert_principal(&p).await.unwrap();
    assert_eq!(
        s.get_principal(&p.arn).await.unwrap().unwrap().principal_id,
        "AIDAOTHER",
        "upsert replaces"
    );
    assert_eq!(
        s.get_principal("arn:aws:iam::123456789012:user/bob")
            .await
            .unwrap(),
        None
    );
    assert_eq!(p.kind, PrincipalKind::User);

    let k = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE".into(),
        principal_arn: p.arn.clone(),
        wrapped_secret: vec![9; 60],
        session_name: None,
        enabled: true,
        created: Timestamp(6),
    };
    s.upsert_access_key(&k).await.unwrap();
    assert_eq!(
        s.get_access_key("AKIAEXAMPLE").await.unwrap(),
        Some(k.clone())
    );
    assert_eq!(
        s.get_access_key("akiaexample").await.unwrap(),
        None,
        "access key ids are case-sensitive"
    );
    let k2 = AccessKeyRecord {
        enabled: false,
        ..k.clone()
    };
    s.upsert_access_key(&k2).await.unwrap();
    assert_eq!(s.get_access_key("AKIAEXAMPLE").await.unwrap(), Some(k2));
    assert_eq!(s.list_access_keys().await.unwrap().len(), 1);
}

async fn key_round_trip(s: &dyn Store) {
    let k = sample_key("111122223333", "us-east-1");
    s.insert_key(&k).await.unwrap();
    let got = s
        .get_key(&k.region, &k.key_id)
        .await
        .unwrap()
        .expect("inserted key is readable");
    assert_eq!(got.version, 1, "a new key has version 1");
    assert_eq!(
        KeyRecord {
            version: 0,
            ..got.clone()
        },
        k,
        "round trip keeps every field"
    );
    assert!(
        matches!(s.insert_key(&k).await, Err(StoreError::Conflict(_))),
        "duplicate insert conflicts"
    );
    assert_eq!(
        s.get_key(&region("eu-west-1"), &k.key_id).await.unwrap(),
        None,
        "region is part of the identity"
    );
}

async fn compare_and_set(s: &dyn Store) {
    let k = sample_key("111122223333", "us-east-1");
    s.insert_key(&k).await.unwrap();
    let mut a = s.get_key(&k.region, &k.key_id).await.unwrap().unwrap();
    let mut b = a.clone();
    a.description = "from a".into();
    s.update_key(&a).await.unwrap();
    b.description = "from b".into();
    assert!(
        matches!(s.update_key(&b).await, Err(StoreError::Conflict(_))),
        "stale update loses"
    );
    let now = s.get_key(&k.region, &k.key_id).await.unwrap().unwrap();
    assert_eq!(now.description, "from a");
    assert_eq!(now.version, 2);
    let missing = sample_key("111122223333", "us-east-1");
    assert!(matches!(
        s.update_key(&KeyRecord {
            version: 1,
            ..missing
        })
        .await,
        Err(StoreError::Conflict(_))
    ));
}

async fn listing(s: &dyn Store) {
    let acct = account("444455556666");
    let reg = region("ap-south-1");
    let mut ids = Vec::new();
    for _ in 0..5 {
        let k = sample_key("444455556666", "ap-south-1");
        ids.push(k.key_id);
        s.insert_key(&k).await.unwrap();
    }
    s.insert_key(&sample_key("444455556666", "ap-south-2"))
        .await
        .unwrap();
    s.insert_key(&sample_key("777788889999", "ap-south-1"))
        .await
        .unwrap();
    assert_eq!(s.count_keys(&acct, &reg).await.unwrap(), 5);
    let page1 = s.list_keys(&acct, &reg, None, 2).await.unwrap();
    assert_eq!(
        page1.iter().map(|e| e.key_id).collect::<Vec<_>>(),
        ids[..2],
        "creation order"
    );
    let page2 = s
        .list_keys(&acct, &reg, Some(page1[1].seq), 10)
        .await
        .unwrap();
    assert_eq!(page2.iter().map(|e| e.key_id).collect::<Vec<_>>(), ids[2..]);
    assert!(
        s.list_keys(&acct, &reg, Some(page2[2].seq), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A purged key no longer counts (the quota check of CreateKey reads this).
    s.purge_key(&reg, &ids[0], 1).await.unwrap();
    assert_eq!(s.count_keys(&acct, &reg).await.unwrap(), 4);
    assert_eq!(s.count_keys(&acct, &region("ap-south-2")).await.unwrap(), 1);
}

async fn namespaces(s: &dyn Store) {
    let a = account("101010101010");
    assert_eq!(s.count_keys(&a, &region("us-east-1")).await.unwrap(), 0);
    assert!(
        s.list_keys(&a, &region("us-east-1"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Eight tasks increment one counter stored in the description through compare-and-set;
/// no increment may be lost.
async fn concurrent_updates(s: Arc<dyn Store>) {
    let k = sample_key("121212121212", "us-west-2");
    s.insert_key(&KeyRecord {
        description: "0".into(),
        ..k.clone()
    })
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        let (reg, id) = (k.region.clone(), k.key_id);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let mut cur = s.get_key(&reg, &id).await.unwrap().unwrap();
                    let n: u32 = cur.description.parse().unwrap();
                    cur.description = (n + 1).to_string();
                    match s.update_key(&cur).await {
                        Ok(()) => break,
                        Err(StoreError::Conflict(_)) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = s.get_key(&k.region, &k.key_id).await.unwrap().unwrap();
    assert_eq!(end.description, "80", "no lost updates");
}

/// For a backend with an invalidation feed (several nodes on one database): every committed
/// write that changes state nodes cache is announced — heard through `listener`, a second
/// instance of the store on the same database (another node), after writes through `writer`.
pub async fn invalidations(writer: Arc<dyn Store>, listener: Arc<dyn Store>) {
    use tresor_kms::store::Invalidation;
    let mut feed = listener
        .subscribe_invalidations()
        .expect("a shared backend has an invalidation feed");
    // The feed announces `All` once it listens: before that, announcements could be missed.
    expect_announcement(&mut feed, "feed is live", |i| *i == Invalidation::All).await;

    let mut p =
        PrincipalRecord::from_arn("arn:aws:iam::161616161616:user/inv", Timestamp(5)).unwrap();
    p.principal_id = "AIDAINV".into();
    writer.upsert_principal(&p).await.unwrap();
    expect_announcement(&mut feed, "principal", |i| {
        *i == Invalidation::Principal { arn: p.arn.clone() }
    })
    .await;
    let ak = AccessKeyRecord {
        access_key_id: "AKIAINVALIDATE".into(),
        principal_arn: p.arn.clone(),
        wrapped_secret: vec![1; 60],
        session_name: None,
        enabled: true,
        created: Timestamp(6),
    };
    writer.upsert_access_key(&ak).await.unwrap();
    expect_announcement(&mut feed, "access key", |i| {
        *i == Invalidation::AccessKey {
            access_key_id: "AKIAINVALIDATE".into(),
        }
    })
    .await;

    let k1 = sample_key("161616161616", "us-east-1");
    let k2 = sample_key("161616161616", "us-east-1");
    writer.insert_key(&k1).await.unwrap();
    writer.insert_key(&k2).await.unwrap();
    let is_key = |k: &KeyRecord| {
        let want = Invalidation::Key {
            region: k.region.clone(),
            key_id: k.key_id,
        };
        move |i: &Invalidation| *i == want
    };
    let mut rec = writer
        .get_key(&k1.region, &k1.key_id)
        .await
        .unwrap()
        .unwrap();
    rec.state = KeyState::Disabled;
    writer.update_key(&rec).await.unwrap();
    expect_announcement(&mut feed, "key update", is_key(&k1)).await;

    let alias = AliasRecord {
        account: k1.account.clone(),
        region: k1.region.clone(),
        name: "alias/announced".into(),
        target_key_id: k1.key_id,
        created: Timestamp(1),
        updated: Timestamp(1),
    };
    writer.create_alias(&alias).await.unwrap();
    expect_announcement(&mut feed, "alias creation", is_key(&k1)).await;
    writer
        .update_alias(&AliasRecord {
            target_key_id: k2.key_id,
            ..alias.clone()
        })
        .await
        .unwrap();
    // Both the old and the new target lose their alias list.
    expect_announcement(&mut feed, "alias update (old target)", is_key(&k1)).await;
    expect_announcement(&mut feed, "alias update (new target)", is_key(&k2)).await;
    assert!(
        writer
            .delete_alias(&alias.account, &alias.region, &alias.name)
            .await
            .unwrap()
    );
    expect_announcement(&mut feed, "alias deletion", is_key(&k2)).await;

    let g = sample_grant(&k1, &"a".repeat(64), None);
    writer.insert_grant(&g, Some("announce")).await.unwrap();
    expect_announcement(&mut feed, "grant creation", is_key(&k1)).await;
    assert!(
        writer
            .delete_grant(&k1.region, &k1.key_id, &g.grant_id)
            .await
            .unwrap()
    );
    expect_announcement(&mut feed, "grant revocation", is_key(&k1)).await;

    let rec = writer
        .get_key(&k1.region, &k1.key_id)
        .await
        .unwrap()
        .unwrap();
    writer
        .purge_key(&k1.region, &k1.key_id, rec.version)
        .await
        .unwrap();
    expect_announcement(&mut feed, "key deletion", is_key(&k1)).await;
}

/// Waits (bounded) for an announcement matching `want`, skipping others.
async fn expect_announcement(
    feed: &mut tokio::sync::broadcast::Receiver<tresor_kms::store::Invalidation>,
    what: &str,
    want: impl Fn(&tresor_kms::store::Invalidation) -> bool,
) {
    use tokio::sync::broadcast::error::RecvError;
    // A guard against a feed that never delivers, not a latency assertion.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Ok(i)) if want(&i) => return,
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(_))) => panic!("{what}: the subscriber lagged"),
            Ok(Err(RecvError::Closed)) => panic!("{what}: the feed closed"),
            Err(_) => panic!("{what}: no announcement within 30 s"),
        }
    }
}

/// One `#[tokio::test]` per check of [`audit`] for a harness (an expression making an
/// [`audit::AuditHarness`]), so each check passes or fails on its own:
/// `tresor_store::audit_conformance_tests!(Sqlite::default());`
#[macro_export]
macro_rules! audit_conformance_tests {
    ($harness:expr) => {
        $crate::audit_conformance_tests!(@each $harness;
            intact_log_verifies_and_every_record_is_there,
            a_modified_record_is_detected,
            a_modified_query_column_is_detected,
            a_deleted_record_is_detected,
            an_inserted_record_is_detected,
            reordered_records_are_detected,
            a_truncated_tail_is_detected,
            a_forged_head_is_detected,
            lookups_filter_and_page_newest_first,
            pruning_keeps_the_rest_verifiable,
            the_chain_resumes_after_a_restart,
            concurrent_writers_keep_their_own_chains,
            the_writer_resyncs_after_an_append_of_unknown_outcome,
            the_writers_tasks_end_before_it_is_reported_finished
        );
    };
    (@each $harness:expr; $($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::conformance::audit::$name(&$harness).await;
        }
    )*};
}

/// The audit-backend conformance section: what every
/// [`AuditBackend`](tresor_kms::audit_log::AuditBackend) must do, driven through the group-commit
/// writer, verification, lookups and pruning of `tresor_kms::audit_log`.
pub mod audit {
    use std::sync::Arc;

    use async_trait::async_trait;
    use tresor_crypto::Ed25519Signer;
    use tresor_kms::audit::{AuditEvent, AuditResource, AuditSink, UserIdentity};
    use tresor_kms::audit_log::{
        AuditBackend, AuditQuery, AuditRecord, AuditWriterConfig, GroupCommitAuditSink, Signed,
        prune, verify,
    };
    use tresor_kms::clock::ManualClock;
    use tresor_kms::store::StoreError;
    use tresor_kms::types::Timestamp;

    /// Runs SQL against the tables of the backend it was made with (to tamper with them).
    #[async_trait]
    pub trait Tamper: Send + Sync {
        async fn sql(&self, statements: &str);
    }

    /// Makes fresh, empty audit backends (each its own file, database or schema).
    #[async_trait]
    pub trait AuditHarness: Send + Sync {
        async fn fresh(&self) -> (Arc<dyn AuditBackend>, Box<dyn Tamper>);
    }

    pub const T0: i64 = 1_700_000_000;

    /// A record of account 111122223333; every fifth is an AccessDenied failure; resources cycle
    /// through three keys.
    pub fn event(i: u64, name: &str, t_secs: i64) -> AuditEvent {
        AuditEvent {
            event_version: "1.11",
            user_identity: UserIdentity {
                kind: Some("IAMUser"),
                principal_id: Some("AIDAX".into()),
                arn: Some("arn:aws:iam::111122223333:user/alice".into()),
                account_id: Some("111122223333".into()),
                access_key_id: Some("AKIAX".into()),
                user_name: Some("alice".into()),
                ..UserIdentity::default()
            },
            event_time: Timestamp::from_unix_seconds(t_secs).to_iso8601_seconds(),
            event_source: "kms.amazonaws.com",
            event_name: name.to_owned(),
            aws_region: "us-east-1".into(),
            source_ip_address: "127.0.0.1".into(),
            user_agent: "test".into(),
            error_code: i
                .is_multiple_of(5)
                .then(|| "AccessDeniedException".to_owned()),
            error_message: None,
            request_parameters: Some(serde_json::json!({"n": i})),
            response_elements: None,
            additional_event_data: None,
            request_id: format!("req-{i}"),
            event_id: format!("evt-{i}"),
            read_only: true,
            resources: vec![AuditResource {
                account_id: "111122223333".into(),
                resource_type: "AWS::KMS::Key",
                arn: format!("arn:aws:kms:us-east-1:111122223333:key/k{}", i % 3),
            }],
            event_type: "AwsApiCall",
            service_event_details: None,
            management_event: true,
            recipient_account_id: "111122223333".into(),
            shared_event_id: None,
            event_category: "Management",
            event_time_millis: t_secs * 1000,
        }
    }

    pub struct Log {
        pub backend: Arc<dyn AuditBackend>,
        pub tamper: Box<dyn Tamper>,
        pub signer: Arc<Ed25519Signer>,
        pub clock: Arc<ManualClock>,
    }

    fn writer_config(chain: &str, digest_every: u64) -> AuditWriterConfig {
        AuditWriterConfig {
            chain: chain.to_owned(),
            digest_every_records: digest_every,
            digest_every_millis: i64::MAX,
            ..Default::default()
        }
    }

    /// How records are handed to the writer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Callers {
        /// One call after the other: record `i` gets seq `i` (checks that tamper with a given
        /// record or rely on time order).
        InOrder,
        /// All at once: the writer commits them in groups, in no particular order.
        Concurrent,
    }

    /// Writes records `first..=last` (event time `T0 + i`) through a group-commit writer of `chain`.
    pub async fn write(
        backend: Arc<dyn AuditBackend>,
        signer: Arc<Ed25519Signer>,
        clock: Arc<ManualClock>,
        chain: &str,
        range: std::ops::RangeInclusive<u64>,
        digest_every: u64,
        callers: Callers,
    ) {
        let (sink, writer) =
            GroupCommitAuditSink::start(backend, signer, clock, writer_config(chain, digest_every))
                .await
                .unwrap();
        let sink = Arc::new(sink);
        match callers {
            Callers::InOrder => {
                for i in range {
                    sink.record(event(i, "Decrypt", T0 + i as i64))
                        .await
                        .unwrap();
                }
            }
            Callers::Concurrent => {
                // Each call returns only after the group commit that holds its record.
                let mut tasks = Vec::new();
                for i in range {
                    let sink = sink.clone();
                    tasks.push(tokio::spawn(async move {
                        sink.record(event(i, "Decrypt", T0 + i as i64)).await
                    }));
                }
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            }
        }
        drop(sink);
        writer.await.unwrap();
    }

    /// A fresh log holding records 1..=n, record `i` at seq `i`.
    pub async fn log_with(h: &dyn AuditHarness, n: u64, digest_every: u64) -> Log {
        log_written(h, n, digest_every, Callers::InOrder).await
    }

    async fn log_written(h: &dyn AuditHarness, n: u64, digest_every: u64, callers: Callers) -> Log {
        let (backend, tamper) = h.fresh().await;
        let signer = Arc::new(Ed25519Signer::generate().unwrap());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(T0)));
        write(
            backend.clone(),
            signer.clone(),
            clock.clone(),
            "main",
            1..=n,
            digest_every,
            callers,
        )
        .await;
        Log {
            backend,
            tamper,
            signer,
            clock,
        }
    }

    pub async fn problems(log: &Log) -> Vec<String> {
        let report = verify(&*log.backend, &log.signer.public_key())
            .await
            .unwrap();
        assert_eq!(
            report.ok,
            report.chains.iter().all(|c| c.problems.is_empty())
        );
        report.chains.into_iter().flat_map(|c| c.problems).collect()
    }

    /// Runs every audit check; panics with the failing check's name.
    pub async fn run_all(h: &dyn AuditHarness) {
        intact_log_verifies_and_every_record_is_there(h).await;
        a_modified_record_is_detected(h).await;
        a_modified_query_column_is_detected(h).await;
        a_deleted_record_is_detected(h).await;
        an_inserted_record_is_detected(h).await;
        reordered_records_are_detected(h).await;
        a_truncated_tail_is_detected(h).await;
        a_forged_head_is_detected(h).await;
        lookups_filter_and_page_newest_first(h).await;
        pruning_keeps_the_rest_verifiable(h).await;
        the_chain_resumes_after_a_restart(h).await;
        concurrent_writers_keep_their_own_chains(h).await;
        the_writer_resyncs_after_an_append_of_unknown_outcome(h).await;
        the_writers_tasks_end_before_it_is_reported_finished(h).await;
    }

    pub async fn intact_log_verifies_and_every_record_is_there(h: &dyn AuditHarness) {
        let log = log_written(h, 200, 50, Callers::Concurrent).await;
        assert_eq!(problems(&log).await, Vec::<String>::new());
        let report = verify(&*log.backend, &log.signer.public_key())
            .await
            .unwrap();
        assert_eq!(report.chains[0].records, 200);
        assert_eq!(report.chains[0].head_seq, Some(200));
        assert!(
            report.chains[0].digests >= 1,
            "digests are taken at commit boundaries"
        );
        // Verification with another public key fails.
        let other = Ed25519Signer::generate().unwrap();
        assert!(!verify(&*log.backend, &other.public_key()).await.unwrap().ok);
    }

    pub async fn a_modified_record_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 5).await;
        log.tamper
            .sql(
                "UPDATE audit_records SET json = replace(json, '\"n\":7', '\"n\":8') WHERE seq = 7",
            )
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter().any(|m| m.contains("record 7 was modified")),
            "{p:?}"
        );
    }

    pub async fn a_modified_query_column_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 5).await;
        log.tamper
            .sql("UPDATE audit_records SET error_code = NULL WHERE seq = 10")
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter().any(|m| m.contains("record 10's query columns")),
            "{p:?}"
        );
    }

    pub async fn a_deleted_record_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 5).await;
        log.tamper
            .sql("DELETE FROM audit_records WHERE seq = 9")
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter().any(|m| m.contains("records 9..9 are missing")),
            "{p:?}"
        );
    }

    pub async fn an_inserted_record_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 5).await;
        // Shift records 11.. up by one and insert a forged record 11 (a copy of 10).
        log.tamper
            .sql(
                "UPDATE audit_records SET seq = seq + 1000 WHERE seq > 10;
                 UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000;
                 INSERT INTO audit_records (chain, seq, prev_hash, hash, event_time, event_name, account, region,
                     principal_arn, username, access_key_id, error_code, read_only, event_id, request_id, resources, json)
                 SELECT chain, 11, hash, hash, event_time, event_name, account, region, principal_arn,
                     username, access_key_id, error_code, read_only, 'forged', request_id, resources, json FROM audit_records WHERE seq = 10;",
            )
            .await;
        let p = problems(&log).await;
        assert!(!p.is_empty(), "an inserted record must be detected");
        assert!(
            p.iter().any(|m| m.contains("does not link")
                || m.contains("modified")
                || m.contains("follow the signed head")),
            "{p:?}"
        );
    }

    pub async fn reordered_records_are_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 5).await;
        log.tamper
            .sql(
                "UPDATE audit_records SET seq = -1 WHERE seq = 4;
                 UPDATE audit_records SET seq = 4 WHERE seq = 5;
                 UPDATE audit_records SET seq = 5 WHERE seq = -1;",
            )
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter()
                .any(|m| m.contains("record 4") || m.contains("record 5")),
            "{p:?}"
        );
    }

    pub async fn a_truncated_tail_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 1000).await;
        log.tamper
            .sql("DELETE FROM audit_records WHERE seq > 17")
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter()
                .any(|m| m.contains("records 18..20 at the end are missing")),
            "{p:?}"
        );
    }

    pub async fn a_forged_head_is_detected(h: &dyn AuditHarness) {
        let log = log_with(h, 20, 1000).await;
        log.tamper
            .sql("DELETE FROM audit_records WHERE seq > 17; UPDATE audit_heads SET seq = 17")
            .await;
        let p = problems(&log).await;
        assert!(
            p.iter()
                .any(|m| m.contains("signature is invalid") || m.contains("does not match")),
            "{p:?}"
        );
    }

    async fn lookup(backend: &dyn AuditBackend, q: AuditQuery) -> Vec<AuditRecord> {
        backend.lookup(&q).await.unwrap()
    }

    pub async fn lookups_filter_and_page_newest_first(h: &dyn AuditHarness) {
        let log = log_with(h, 30, 10).await;
        let b = &*log.backend;
        let all = lookup(
            b,
            AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(all.len(), 30);
        assert!(
            all.windows(2)
                .all(|w| w[0].index.event_time_millis >= w[1].index.event_time_millis),
            "newest first"
        );
        let key0 = lookup(
            b,
            AuditQuery {
                resource_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k0".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(key0.len(), 10);
        let denied = lookup(
            b,
            AuditQuery {
                error_code: Some("AccessDeniedException".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(denied.len(), 6);
        let window = lookup(
            b,
            AuditQuery {
                start_millis: Some((T0 + 11) * 1000),
                end_millis: Some((T0 + 20) * 1000),
                limit: 100,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(window.len(), 10);
        let by_event = lookup(
            b,
            AuditQuery {
                event_id: Some("evt-7".into()),
                read_only: Some(true),
                account: Some("111122223333".into()),
                region: Some("us-east-1".into()),
                event_name: Some("Decrypt".into()),
                username: Some("alice".into()),
                access_key_id: Some("AKIAX".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(by_event.len(), 1);
        assert_eq!(by_event[0].seq, 7);
        assert_eq!(by_event[0].index.resources.len(), 1);
        let seen = page_all(b, 7).await;
        assert_eq!(
            seen.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            (1..=30).collect::<Vec<_>>()
        );
        let by_principal = lookup(
            b,
            AuditQuery {
                principal_arn: Some("arn:aws:iam::111122223333:user/bob".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await;
        assert!(by_principal.is_empty());
    }

    /// Every record, paged `page` at a time: (chain, seq), sorted, duplicates kept.
    async fn page_all(b: &dyn AuditBackend, page: usize) -> Vec<(String, u64)> {
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let got = lookup(
                b,
                AuditQuery {
                    before: before.clone(),
                    limit: page,
                    ..Default::default()
                },
            )
            .await;
            let Some(last) = got.last() else { break };
            before = Some((last.index.event_time_millis, last.chain.clone(), last.seq));
            seen.extend(got.into_iter().map(|r| (r.chain, r.seq)));
        }
        seen.sort();
        seen
    }

    pub async fn pruning_keeps_the_rest_verifiable(h: &dyn AuditHarness) {
        let log = log_with(h, 40, 10).await;
        // Records 1..=25 are older than t0+26.
        let removed = prune(&*log.backend, &log.signer, "main", (T0 + 26) * 1000, 0)
            .await
            .unwrap();
        assert_eq!(removed, 25);
        assert_eq!(problems(&log).await, Vec::<String>::new());
        let report = verify(&*log.backend, &log.signer.public_key())
            .await
            .unwrap();
        assert_eq!(report.chains[0].first_seq, Some(26));
        // Deleting the first kept record is still detected.
        log.tamper
            .sql("DELETE FROM audit_records WHERE seq = 26")
            .await;
        assert!(!problems(&log).await.is_empty());
    }

    pub async fn the_chain_resumes_after_a_restart(h: &dyn AuditHarness) {
        let log = log_with(h, 10, 1000).await;
        write(
            log.backend.clone(),
            log.signer.clone(),
            log.clock.clone(),
            "main",
            11..=11,
            1000,
            Callers::InOrder,
        )
        .await;
        let report = verify(&*log.backend, &log.signer.public_key())
            .await
            .unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.chains[0].records, 11);
        assert_eq!(log.backend.records("main", 0, 100).await.unwrap().len(), 11);
    }

    /// Two writers (nodes) on one backend, each with its own chain, at the same time: both
    /// chains complete and verifiable; lookups and paging see every record once.
    pub async fn concurrent_writers_keep_their_own_chains(h: &dyn AuditHarness) {
        let (backend, _tamper) = h.fresh().await;
        let signer = Arc::new(Ed25519Signer::generate().unwrap());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(T0)));
        let a = write(
            backend.clone(),
            signer.clone(),
            clock.clone(),
            "node-a",
            1..=150,
            40,
            Callers::Concurrent,
        );
        let b = write(
            backend.clone(),
            signer.clone(),
            clock.clone(),
            "node-b",
            1..=150,
            40,
            Callers::Concurrent,
        );
        tokio::join!(a, b);
        let report = verify(&*backend, &signer.public_key()).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(
            report
                .chains
                .iter()
                .map(|c| (c.chain.as_str(), c.records, c.head_seq))
                .collect::<Vec<_>>(),
            [("node-a", 150, Some(150)), ("node-b", 150, Some(150))]
        );
        assert_eq!(backend.chains().await.unwrap(), ["node-a", "node-b"]);
        let seen = page_all(&*backend, 13).await;
        assert_eq!(seen.len(), 300, "every record of both chains, once");
        let mut dedup = seen.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 300);
    }

    /// A backend that runs `after_append` once each append has committed: a check's stand-in for
    /// what happens in a real backend right after a commit.
    struct AfterAppend<F> {
        inner: Arc<dyn AuditBackend>,
        after_append: F,
    }

    #[async_trait]
    impl<F: Fn() -> Result<(), StoreError> + Send + Sync + 'static> AuditBackend for AfterAppend<F> {
        async fn head(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
            self.inner.head(chain).await
        }
        async fn append(
            &self,
            records: Vec<AuditRecord>,
            head: &Signed,
            digest: Option<&Signed>,
        ) -> Result<(), StoreError> {
            self.inner.append(records, head, digest).await?;
            (self.after_append)()
        }
        async fn chains(&self) -> Result<Vec<String>, StoreError> {
            self.inner.chains().await
        }
        async fn anchor(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
            self.inner.anchor(chain).await
        }
        async fn digests(&self, chain: &str) -> Result<Vec<Signed>, StoreError> {
            self.inner.digests(chain).await
        }
        async fn records(
            &self,
            chain: &str,
            after_seq: u64,
            limit: usize,
        ) -> Result<Vec<AuditRecord>, StoreError> {
            self.inner.records(chain, after_seq, limit).await
        }
        async fn lookup(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
            self.inner.lookup(query).await
        }
        async fn prune(
            &self,
            chain: &str,
            through_seq: u64,
            anchor: &Signed,
        ) -> Result<u64, StoreError> {
            self.inner.prune(chain, through_seq, anchor).await
        }
        async fn last_seq_before(
            &self,
            chain: &str,
            before_millis: i64,
        ) -> Result<Option<u64>, StoreError> {
            self.inner.last_seq_before(chain, before_millis).await
        }
    }

    /// An append that commits but reports a failure (the connection was lost after the commit):
    /// the writer must not fork or stall the chain.
    pub async fn the_writer_resyncs_after_an_append_of_unknown_outcome(h: &dyn AuditHarness) {
        let (inner, _tamper) = h.fresh().await;
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let backend = Arc::new(AfterAppend {
            inner: inner.clone(),
            after_append: {
                let armed = armed.clone();
                move || {
                    if armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        return Err(StoreError::Unavailable(
                            "connection lost after commit".into(),
                        ));
                    }
                    Ok(())
                }
            },
        });
        let signer = Arc::new(Ed25519Signer::generate().unwrap());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(T0)));
        let (sink, writer) = GroupCommitAuditSink::start(
            backend.clone(),
            signer.clone(),
            clock,
            writer_config("main", 1000),
        )
        .await
        .unwrap();
        sink.record(event(1, "Encrypt", T0 + 1)).await.unwrap();
        armed.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(
            sink.record(event(2, "Encrypt", T0 + 2)).await.is_err(),
            "the caller of an in-doubt commit is failed"
        );
        sink.record(event(3, "Encrypt", T0 + 3)).await.unwrap();
        sink.record(event(4, "Encrypt", T0 + 4)).await.unwrap();
        drop(sink);
        writer.await.unwrap();
        let report = verify(&*inner, &signer.public_key()).await.unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(
            report.chains[0].records, 4,
            "the in-doubt record was committed"
        );
    }

    /// What the backend spawned on the writer's runtime (a pooled PostgreSQL connection's I/O
    /// task) has ended by the time the writer is reported finished, so the caller never gets a
    /// pooled connection that dies under its next query. The stand-in task's end is slow, as a
    /// closing socket can be: a writer that reported before its runtime ended fails this.
    pub async fn the_writers_tasks_end_before_it_is_reported_finished(h: &dyn AuditHarness) {
        struct SlowEnd(Arc<std::sync::atomic::AtomicUsize>);
        impl Drop for SlowEnd {
            fn drop(&mut self) {
                std::thread::sleep(std::time::Duration::from_millis(30));
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let (inner, _tamper) = h.fresh().await;
        let (spawned, ended) = (
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        );
        let backend = Arc::new(AfterAppend {
            inner,
            after_append: {
                let (spawned, ended) = (spawned.clone(), ended.clone());
                move || {
                    let task = SlowEnd(ended.clone());
                    // Runs until its runtime ends, as a connection's task does until its
                    // socket closes.
                    tokio::spawn(async move {
                        let _task = task;
                        std::future::pending::<()>().await;
                    });
                    spawned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(())
                }
            },
        });
        let signer = Arc::new(Ed25519Signer::generate().unwrap());
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(T0)));
        write(
            backend,
            signer,
            clock,
            "main",
            1..=3,
            1000,
            Callers::InOrder,
        )
        .await;
        let spawned = spawned.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(spawned, 3, "one append per in-order record");
        assert_eq!(
            ended.load(std::sync::atomic::Ordering::SeqCst),
            spawned,
            "every task spawned on the writer's runtime ended before the writer was reported finished"
        );
    }
}

/// Races between nodes are decided by the store: of concurrent inserts of one key id, one alias
/// name or one grant idempotency token exactly one wins and the others see it; concurrent
/// first writes of a meta value agree on one value.
/// What one racer got: key insert, alias insert, grant id, meta value.
type RaceOutcome = (
    Result<(), StoreError>,
    Result<(), StoreError>,
    String,
    String,
);

async fn races(s: Arc<dyn Store>) {
    let k = sample_key("171717171717", "us-east-1");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, k) = (s.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            let key = s.insert_key(&k).await;
            let alias = s
                .create_alias(&AliasRecord {
                    account: k.account.clone(),
                    region: k.region.clone(),
                    name: "alias/contended".into(),
                    target_key_id: k.key_id,
                    created: Timestamp(i),
                    updated: Timestamp(i),
                })
                .await;
            let grant = s
                .insert_grant(
                    &sample_grant(&k, &format!("{i:064x}"), None),
                    Some("same-name-same-properties"),
                )
                .await
                .unwrap();
            let meta = s
                .put_meta_if_absent("contended", &i.to_string())
                .await
                .unwrap();
            (key, alias, grant.grant_id, meta)
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let wins = |f: &dyn Fn(&RaceOutcome) -> bool| results.iter().filter(|r| f(r)).count();
    assert_eq!(wins(&|r| r.0.is_ok()), 1, "one key insert wins");
    assert_eq!(
        wins(&|r| matches!(r.0, Err(StoreError::Conflict(_)))),
        7,
        "the others conflict"
    );
    assert_eq!(wins(&|r| r.1.is_ok()), 1, "one alias insert wins");
    assert_eq!(
        wins(&|r| matches!(r.1, Err(StoreError::Conflict(_)))),
        7,
        "the other alias inserts conflict"
    );
    let grant_ids: std::collections::BTreeSet<_> = results.iter().map(|r| r.2.clone()).collect();
    assert_eq!(grant_ids.len(), 1, "one grant for one idempotency token");
    assert_eq!(s.count_grants(&k.region, &k.key_id).await.unwrap(), 1);
    let metas: std::collections::BTreeSet<_> = results.iter().map(|r| r.3.clone()).collect();
    assert_eq!(metas.len(), 1, "every writer sees the first value");
}
