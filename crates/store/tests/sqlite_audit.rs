//! The durable audit log on SQLite: the audit section of the conformance suite (group commit,
//! hash chain, signed head and digests, lookups, pruning, several chains, and detection of the
//! five kinds of tampering), each check its own test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tresor_kms::audit_log::AuditBackend;
use tresor_store::SqliteAuditLog;
use tresor_store::conformance::audit::{self, AuditHarness, Tamper};

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

macro_rules! checks {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            audit::$name(&Sqlite::default()).await;
        }
    )*};
}

checks!(
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
);
