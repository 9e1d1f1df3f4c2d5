//! The store conformance suite against SQLite.

use std::sync::Arc;

use tresor_kms::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = tresor_store::SqliteStore::open(&dir.path().join("tresor.db")).unwrap();
    tresor_store::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_has_no_invalidation_feed_because_it_has_one_node() {
    let dir = tempfile::tempdir().unwrap();
    let store = tresor_store::SqliteStore::open(&dir.path().join("tresor.db")).unwrap();
    assert!(store.subscribe_invalidations().is_none());
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.db");
    let k = tresor_store::conformance::sample_key("111122223333", "us-east-1");
    {
        let s = tresor_store::SqliteStore::open(&path).unwrap();
        s.insert_key(&k).await.unwrap();
    }
    let s = tresor_store::SqliteStore::open(&path).unwrap();
    assert!(s.get_key(&k.region, &k.key_id).await.unwrap().is_some());
}

/// Migration 3 (a key counter kept by triggers) counts the keys a database already holds.
#[tokio::test]
async fn the_key_counter_starts_from_the_keys_already_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tresor.db");
    let (acct, reg) = ("111122223333", "us-east-1");
    {
        let s = tresor_store::SqliteStore::open(&path).unwrap();
        for _ in 0..3 {
            s.insert_key(&tresor_store::conformance::sample_key(acct, reg))
                .await
                .unwrap();
        }
    }
    // Back to schema 2, as a database written by an older tresor.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TRIGGER keys_counted; DROP TRIGGER keys_uncounted; DROP TABLE key_counts; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let s = tresor_store::SqliteStore::open(&path).unwrap();
    let (a, r) = (
        tresor_kms::types::AccountId::parse(acct).unwrap(),
        tresor_kms::types::Region::parse(reg).unwrap(),
    );
    assert_eq!(s.count_keys(&a, &r).await.unwrap(), 3);
    s.insert_key(&tresor_store::conformance::sample_key(acct, reg))
        .await
        .unwrap();
    assert_eq!(s.count_keys(&a, &r).await.unwrap(), 4);
}
