//! The durable audit log on SQLite: the audit section of the conformance suite (group commit,
//! hash chain, signed head and digests, lookups, pruning, several chains, and detection of the
//! five kinds of tampering), each check its own test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tresor_kms::audit_log::AuditBackend;
use tresor_store::SqliteAuditLog;
use tresor_store::conformance::audit::{AuditHarness, Tamper};

/// Fresh `audit.db` files in temp dirs kept for the harness's life.
#[derive(Default)]
struct Sqlite {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

struct FileTamper(PathBuf);

#[async_trait]
impl Tamper for FileTamper {
    async fn sql(&self, statements: &str) {
        let c = rusqlite::Connection::open(&self.0).unwrap();
        c.execute_batch(statements).unwrap();
    }
}

#[async_trait]
impl AuditHarness for Sqlite {
    async fn fresh(&self) -> (Arc<dyn AuditBackend>, Box<dyn Tamper>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let backend = Arc::new(SqliteAuditLog::open(&path).unwrap());
        self.dirs.lock().unwrap().push(dir);
        (backend, Box::new(FileTamper(path)))
    }
}

tresor_store::audit_conformance_tests!(Sqlite::default());

/// The audit log's WAL is checkpointed by a background thread (commits never run one): after
/// enough appends the records reach `audit.db` itself while the log is still open, and a lookup
/// by resource (matched in the record's resources column) still finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_checkpointed_in_the_background() {
    use tresor_kms::audit_log::{AuditIndex, AuditQuery, AuditRecord, Signed};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let log = SqliteAuditLog::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let filler = "x".repeat(4000);
    let mut seq = 0u64;
    for _ in 0..100 {
        let records: Vec<AuditRecord> = (0..30)
            .map(|i| {
                seq += 1;
                AuditRecord {
                    chain: "main".into(),
                    seq,
                    prev_hash: [0; 32],
                    hash: [1; 32],
                    json: format!("{{\"n\":{seq},\"filler\":\"{filler}\"}}"),
                    index: AuditIndex {
                        event_time_millis: 1_000 + i64::try_from(seq).unwrap(),
                        event_name: "Encrypt".into(),
                        account: "111122223333".into(),
                        region: "us-east-1".into(),
                        resources: vec![format!(
                            "arn:aws:kms:us-east-1:111122223333:key/k{}",
                            i % 3
                        )],
                        ..AuditIndex::default()
                    },
                }
            })
            .collect();
        let head = Signed {
            chain: "main".into(),
            seq,
            hash: [1; 32],
            time_millis: 0,
            signature: [0; 64],
        };
        log.append(records, &head, None).await.unwrap();
    }
    // ~3,000 records of 4 KB: ~12 MB of WAL, past the 4 MiB that wake the checkpointer.
    let mut grown = false;
    for _ in 0..200 {
        if std::fs::metadata(&path).unwrap().len() > before + 8_000_000 {
            grown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(grown, "records reached audit.db while the log is open");
    let page_size: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "page_size", |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 16_384, "a new audit.db has 16 KiB pages");
    let found = log
        .lookup(&AuditQuery {
            resource_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k1".into()),
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 1_000);
    assert!(found.iter().all(|r| r.seq % 3 == 2));
}
