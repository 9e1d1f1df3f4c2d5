//! The conformance suite (store and audit sections) against PostgreSQL, on the machine's server:
//! each test holds the server (`share_server`: no test restarts it meanwhile), creates its own
//! database and drops it afterwards. A server that cannot be reached fails these tests (it is
//! never skipped).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tresor_kms::audit_log::AuditBackend;
use tresor_kms::store::{Store, StoreError};
use tresor_store::conformance::audit::{self, AuditHarness, Tamper};
use tresor_store::pg_test::{TestDatabase, share_server};
use tresor_store::{PostgresAuditLog, PostgresStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_store_conformance_suite() {
    let _pg = share_server().await;
    let db = TestDatabase::create().await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    tresor_store::conformance::run_all(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announces_every_change_to_other_nodes() {
    let _pg = share_server().await;
    let db = TestDatabase::create().await;
    let node_a = PostgresStore::connect(db.url()).await.unwrap();
    let node_b = PostgresStore::connect(db.url()).await.unwrap();
    tresor_store::conformance::invalidations(Arc::new(node_a), Arc::new(node_b)).await;
}

/// Fresh audit backends as schemas of one test database (cheap, isolated).
struct Postgres {
    db: TestDatabase,
    logs: Mutex<u32>,
}

struct SchemaTamper {
    db_url: String,
}

#[async_trait]
impl Tamper for SchemaTamper {
    async fn sql(&self, statements: &str) {
        let (client, connection) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(statements).await.unwrap();
    }
}

#[async_trait]
impl AuditHarness for Postgres {
    async fn fresh(&self) -> (Arc<dyn AuditBackend>, Box<dyn Tamper>) {
        let n = {
            let mut n = self.logs.lock().unwrap();
            *n += 1;
            *n
        };
        let schema = format!("audit_{n}");
        self.db.create_schema(&schema).await;
        let url = self.db.url_with_schema(&schema);
        let backend = Arc::new(PostgresAuditLog::connect(&url).await.unwrap());
        (backend, Box::new(SchemaTamper { db_url: url }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_audit_conformance_suite() {
    let _pg = share_server().await;
    let h = Postgres {
        db: TestDatabase::create().await,
        logs: Mutex::new(0),
    };
    audit::run_all(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_keep_data_and_refuse_a_newer_database() {
    let _pg = share_server().await;
    let db = TestDatabase::create().await;
    // Nodes starting together on an empty database: each migration is applied once.
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = db.url().to_owned();
        starts.push(tokio::spawn(
            async move { PostgresStore::connect(&url).await },
        ));
    }
    for s in starts {
        s.await.unwrap().unwrap();
    }
    let client = db.client().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM tresor_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2], "each migration once, in order");

    let k = tresor_store::conformance::sample_key("111122223333", "us-east-1");
    PostgresStore::connect(db.url())
        .await
        .unwrap()
        .insert_key(&k)
        .await
        .unwrap();
    let again = PostgresStore::connect(db.url()).await.unwrap();
    assert!(again.get_key(&k.region, &k.key_id).await.unwrap().is_some());

    client
        .batch_execute(
            "INSERT INTO tresor_migrations (version, description, applied_at) VALUES (99, 'from the future', 0)",
        )
        .await
        .unwrap();
    let refused = PostgresStore::connect(db.url()).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Internal(m) if m.contains("newer than this tresor understands")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_and_urls_are_not_echoed() {
    // Nothing listens on port 1: a retryable error that names the target without its password.
    let e = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.to_string().contains("postgres://u@127.0.0.1:1/x"), "{e}");
}
