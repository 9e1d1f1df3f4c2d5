//! The store conformance suite. Every backend runs [`run_all`] against a fresh, empty store.

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
