//! The durable audit log on SQLite: group commit, hash chain, signed head and digests, lookups,
//! pruning, and detection of the five kinds of tampering.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, params};
use tresor_crypto::Ed25519Signer;
use tresor_kms::audit::{AuditEvent, AuditSink};
use tresor_kms::audit_log::{
    AuditBackend, AuditQuery, AuditWriterConfig, GroupCommitAuditSink, prune, verify,
};
use tresor_kms::clock::ManualClock;
use tresor_kms::types::Timestamp;
use tresor_store::SqliteAuditLog;

fn event(i: u64, name: &str, t_secs: i64) -> AuditEvent {
    AuditEvent {
        event_version: "1.11",
        user_identity: serde_json::json!({"type": "IAMUser", "principalId": "AIDAX", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "accessKeyId": "AKIAX", "userName": "alice"}),
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
        resources: vec![tresor_kms::audit::AuditResource {
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

struct Log {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    backend: Arc<SqliteAuditLog>,
    signer: Arc<Ed25519Signer>,
    clock: Arc<ManualClock>,
}

async fn log_with(n: u64, digest_every: u64) -> Log {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let backend = Arc::new(SqliteAuditLog::open(&path).unwrap());
    let signer = Arc::new(Ed25519Signer::generate().unwrap());
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
        1_700_000_000,
    )));
    let cfg = AuditWriterConfig {
        digest_every_records: digest_every,
        digest_every_millis: i64::MAX,
        ..Default::default()
    };
    let (sink, writer) =
        GroupCommitAuditSink::start(backend.clone(), signer.clone(), clock.clone(), cfg)
            .await
            .unwrap();
    let sink = Arc::new(sink);
    // Concurrent callers: their records are committed in groups, each call returning only after.
    let mut tasks = Vec::new();
    for i in 1..=n {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            sink.record(event(i, "Decrypt", 1_700_000_000 + i as i64))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(sink);
    writer.await.unwrap();
    Log {
        _dir: dir,
        path,
        backend,
        signer,
        clock,
    }
}

async fn problems(log: &Log) -> Vec<String> {
    let report = verify(&*log.backend, &log.signer.public_key())
        .await
        .unwrap();
    assert_eq!(
        report.ok,
        report.chains.iter().all(|c| c.problems.is_empty())
    );
    report.chains.into_iter().flat_map(|c| c.problems).collect()
}

fn sql(path: &Path, stmt: &str) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(stmt).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intact_log_verifies_and_every_record_is_there() {
    let log = log_with(200, 50).await;
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

#[tokio::test]
async fn a_modified_record_is_detected() {
    let log = log_with(20, 5).await;
    sql(
        &log.path,
        "UPDATE audit_records SET json = replace(json, '\"n\":7', '\"n\":8') WHERE seq = 7",
    );
    let p = problems(&log).await;
    assert!(
        p.iter().any(|m| m.contains("record 7 was modified")),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_modified_query_column_is_detected() {
    let log = log_with(20, 5).await;
    sql(
        &log.path,
        "UPDATE audit_records SET error_code = NULL WHERE seq = 10",
    );
    let p = problems(&log).await;
    assert!(
        p.iter().any(|m| m.contains("record 10's query columns")),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_deleted_record_is_detected() {
    let log = log_with(20, 5).await;
    sql(&log.path, "DELETE FROM audit_records WHERE seq = 9");
    let p = problems(&log).await;
    assert!(
        p.iter().any(|m| m.contains("records 9..9 are missing")),
        "{p:?}"
    );
}

#[tokio::test]
async fn an_inserted_record_is_detected() {
    let log = log_with(20, 5).await;
    // Shift records 11.. up by one and insert a forged record 11 (a copy of 10 with new content).
    sql(
        &log.path,
        "UPDATE audit_records SET seq = seq + 1000 WHERE seq > 10;
         UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000;
         INSERT INTO audit_records SELECT chain, 11, hash, hash, event_time, event_name, account, region, principal_arn,
             username, access_key_id, error_code, read_only, 'forged', request_id, resources, json FROM audit_records WHERE seq = 10;",
    );
    let p = problems(&log).await;
    assert!(!p.is_empty(), "an inserted record must be detected");
    assert!(
        p.iter().any(|m| m.contains("does not link")
            || m.contains("modified")
            || m.contains("follow the signed head")),
        "{p:?}"
    );
}

#[tokio::test]
async fn reordered_records_are_detected() {
    let log = log_with(20, 5).await;
    sql(
        &log.path,
        "UPDATE audit_records SET seq = -1 WHERE seq = 4;
         UPDATE audit_records SET seq = 4 WHERE seq = 5;
         UPDATE audit_records SET seq = 5 WHERE seq = -1;",
    );
    let p = problems(&log).await;
    assert!(
        p.iter()
            .any(|m| m.contains("record 4") || m.contains("record 5")),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_truncated_tail_is_detected() {
    let log = log_with(20, 1000).await;
    sql(&log.path, "DELETE FROM audit_records WHERE seq > 17");
    let p = problems(&log).await;
    assert!(
        p.iter()
            .any(|m| m.contains("records 18..20 at the end are missing")),
        "{p:?}"
    );
}

#[tokio::test]
async fn a_forged_head_is_detected() {
    let log = log_with(20, 1000).await;
    sql(
        &log.path,
        "DELETE FROM audit_records WHERE seq > 17; UPDATE audit_heads SET seq = 17",
    );
    let p = problems(&log).await;
    assert!(
        p.iter()
            .any(|m| m.contains("signature is invalid") || m.contains("does not match")),
        "{p:?}"
    );
}

#[tokio::test]
async fn lookups_filter_and_page_newest_first() {
    let log = log_with(30, 10).await;
    let all = log
        .backend
        .lookup(&AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 30);
    assert!(
        all.windows(2)
            .all(|w| w[0].index.event_time_millis >= w[1].index.event_time_millis),
        "newest first"
    );
    let key0 = log
        .backend
        .lookup(&AuditQuery {
            resource_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k0".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(key0.len(), 10);
    let denied = log
        .backend
        .lookup(&AuditQuery {
            error_code: Some("AccessDeniedException".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(denied.len(), 6);
    let window = log
        .backend
        .lookup(&AuditQuery {
            start_millis: Some((1_700_000_000 + 11) * 1000),
            end_millis: Some((1_700_000_000 + 20) * 1000),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 10);
    // Paging: 7 at a time until exhausted, no duplicates.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = log
            .backend
            .lookup(&AuditQuery {
                before: before.clone(),
                limit: 7,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        before = Some((last.index.event_time_millis, last.chain.clone(), last.seq));
        seen.extend(page.into_iter().map(|r| r.seq));
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=30).collect::<Vec<_>>());
    let by_principal = log
        .backend
        .lookup(&AuditQuery {
            principal_arn: Some("arn:aws:iam::111122223333:user/bob".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_principal.is_empty());
}

#[tokio::test]
async fn pruning_keeps_the_rest_verifiable() {
    let log = log_with(40, 10).await;
    // Records 1..=25 are older than t0+26.
    let removed = prune(
        &*log.backend,
        &log.signer,
        "main",
        (1_700_000_000 + 26) * 1000,
        0,
    )
    .await
    .unwrap();
    assert_eq!(removed, 25);
    assert_eq!(problems(&log).await, Vec::<String>::new());
    let report = verify(&*log.backend, &log.signer.public_key())
        .await
        .unwrap();
    assert_eq!(report.chains[0].first_seq, Some(26));
    // Deleting the first kept record is still detected.
    sql(&log.path, "DELETE FROM audit_records WHERE seq = 26");
    assert!(!problems(&log).await.is_empty());
    let _ = &log.clock;
}

#[tokio::test]
async fn the_chain_resumes_after_a_restart() {
    let log = log_with(10, 1000).await;
    let cfg = AuditWriterConfig {
        digest_every_records: 1000,
        ..Default::default()
    };
    let (sink, writer) = GroupCommitAuditSink::start(
        log.backend.clone(),
        log.signer.clone(),
        log.clock.clone(),
        cfg,
    )
    .await
    .unwrap();
    sink.record(event(11, "Encrypt", 1_700_000_100))
        .await
        .unwrap();
    drop(sink);
    writer.await.unwrap();
    let report = verify(&*log.backend, &log.signer.public_key())
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chains[0].records, 11);
    let c = Connection::open(&log.path).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM audit_records", params![], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 11);
}
