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
