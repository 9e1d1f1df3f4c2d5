//! The store conformance suite. Every backend runs [`run_all`] against a fresh, empty store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tresor_crypto::KeyMaterialId;
use tresor_kms::identity::{AccessKeyRecord, PrincipalKind, PrincipalRecord};
use tresor_kms::store::{KEY_RECORD_FORMAT, KeyRecord, MaterialRecord, Store, StoreError, Tag};
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
        }],
        current_material: Some(id),
        tags: vec![Tag {
            key: "k".into(),
            value: "v".into(),
        }],
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
