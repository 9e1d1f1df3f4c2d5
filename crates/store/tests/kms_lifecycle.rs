//! The KMS core's key lifecycle on a real store with a [`ManualClock`]: scheduled deletion and
//! rotation, several nodes running the scheduler at once, AWS managed keys created concurrently
//! through the S3 service path, and batched last-usage tracking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tresor_crypto::RootKey;
use tresor_kms::audit::{AuditEvent, MemoryAuditSink};
use tresor_kms::clock::ManualClock;
use tresor_kms::identity::{Caller, PrincipalRecord};
use tresor_kms::ops::create_key::CreateKey;
use tresor_kms::ops::describe_key::DescribeKey;
use tresor_kms::ops::enable_key_rotation::EnableKeyRotation;
use tresor_kms::ops::encrypt::Encrypt;
use tresor_kms::ops::generate_data_key::GenerateDataKey;
use tresor_kms::ops::schedule_key_deletion::ScheduleKeyDeletion;
use tresor_kms::ops::{SecretBlob, list_aliases::ListAliases};
use tresor_kms::store::Store;
use tresor_kms::types::{AccountId, KeyId, KeyManager, Region, Timestamp};
use tresor_kms::{CallContext, Kms, KmsConfig, KmsError};
use tresor_store::SqliteStore;

const DAY: i64 = 86_400;

struct Node {
    kms: Kms,
    audit: Arc<MemoryAuditSink>,
}

/// A "node": a core on the shared store, root key and clock, with its own caches and audit sink.
fn node(store: &Arc<SqliteStore>, root: &Arc<RootKey>, clock: &Arc<ManualClock>) -> Node {
    let audit = Arc::new(MemoryAuditSink::new(10_000));
    let kms = Kms::new(
        store.clone(),
        root.clone(),
        clock.clone(),
        audit.clone(),
        KmsConfig::default(),
    );
    Node { kms, audit }
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    root: Arc<RootKey>,
    clock: Arc<ManualClock>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("tresor.db")).unwrap());
    World {
        _dir: dir,
        store,
        root: Arc::new(RootKey::generate().unwrap()),
        clock: Arc::new(ManualClock::new(Timestamp::from_unix_seconds(
            1_800_000_000,
        ))),
    }
}

fn account() -> AccountId {
    AccountId::parse("111122223333").unwrap()
}

fn region() -> Region {
    Region::parse("us-east-1").unwrap()
}

/// The account root calling directly.
fn root_ctx() -> CallContext {
    let caller = Caller::from_records(PrincipalRecord::root(&account(), Timestamp(0)), None, None);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    CallContext::direct(caller, region(), format!("request-{id}"))
}

/// The account root calling through S3 (`kms:ViaService`).
fn via_s3() -> CallContext {
    let mut ctx = root_ctx();
    ctx.via_service = Some("s3.us-east-1.amazonaws.com".to_owned());
    ctx
}

async fn new_key(kms: &Kms) -> KeyId {
    let out = kms.call(&root_ctx(), CreateKey::default()).await.unwrap();
    KeyId::parse(&out.key_metadata.key_id).unwrap()
}

fn events(audit: &MemoryAuditSink, name: &str) -> Vec<AuditEvent> {
    audit
        .events()
        .into_iter()
        .filter(|e| e.event_name == name)
        .collect::<Vec<_>>()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deletion_falls_due_on_the_clock_and_runs_once_across_nodes() {
    let w = world();
    let nodes: Vec<Node> = (0..3).map(|_| node(&w.store, &w.root, &w.clock)).collect();
    let kms = &nodes[0].kms;
    let key = new_key(kms).await;
    kms.call(
        &root_ctx(),
        ScheduleKeyDeletion {
            key_id: key.to_string(),
            pending_window_in_days: Some(7),
        },
    )
    .await
    .unwrap();
    // Not due yet.
    w.clock.advance_seconds(7 * DAY - 60);
    for n in &nodes {
        n.kms.run_due_work().await;
    }
    assert!(w.store.get_key(&region(), &key).await.unwrap().is_some());
    // Due: three nodes race; the key goes once and one DeleteKey event is written.
    w.clock.advance_seconds(120);
    let mut tasks = Vec::new();
    for n in nodes {
        tasks.push(tokio::spawn(async move {
            n.kms.run_due_work().await;
            n
        }));
    }
    let mut nodes = Vec::new();
    for t in tasks {
        nodes.push(t.await.unwrap());
    }
    assert!(w.store.get_key(&region(), &key).await.unwrap().is_none());
    let deletes: usize = nodes
        .iter()
        .map(|n| events(&n.audit, "DeleteKey").len())
        .sum();
    assert_eq!(deletes, 1);
    let e = nodes
        .iter()
        .flat_map(|n| events(&n.audit, "DeleteKey"))
        .next()
        .unwrap();
    assert_eq!(e.event_type, "AwsServiceEvent");
    assert_eq!(
        e.service_event_details,
        Some(serde_json::json!({"keyId": key.to_string()}))
    );
    assert_eq!(e.user_identity.invoked_by.as_deref(), Some("AWS Internal"));
    let err = nodes[1]
        .kms
        .call(
            &root_ctx(),
            DescribeKey {
                key_id: key.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, KmsError::NotFound(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn automatic_rotation_runs_once_per_period_across_nodes() {
    let w = world();
    let a = node(&w.store, &w.root, &w.clock);
    let b = node(&w.store, &w.root, &w.clock);
    let key = new_key(&a.kms).await;
    a.kms
        .call(
            &root_ctx(),
            EnableKeyRotation {
                key_id: key.to_string(),
                rotation_period_in_days: Some(90),
            },
        )
        .await
        .unwrap();
    let generations = || async {
        w.store
            .get_key(&region(), &key)
            .await
            .unwrap()
            .unwrap()
            .materials
            .len()
    };
    for period in 1..=3 {
        w.clock.advance_seconds(90 * DAY + 1);
        let (_, _) = tokio::join!(a.kms.run_due_work(), b.kms.run_due_work());
        assert_eq!(generations().await, 1 + period);
    }
    let rotations = events(&a.audit, "RotateKey").len() + events(&b.audit, "RotateKey").len();
    assert_eq!(rotations, 3);
    // The key's newest material is what encryption uses.
    let record = w.store.get_key(&region(), &key).await.unwrap().unwrap();
    let out = b
        .kms
        .call(
            &root_ctx(),
            Encrypt {
                key_id: key.to_string(),
                plaintext: SecretBlob(tresor_crypto::SecretBytes::new(b"x".to_vec())),
                encryption_context: None,
                grant_tokens: None,
                encryption_algorithm: None,
                dry_run: None,
            },
        )
        .await
        .unwrap();
    let header = tresor_crypto::blob::parse_header(&out.ciphertext_blob.0).unwrap();
    assert_eq!(Some(header.material_id), record.current_material);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_aws_s3_key_is_created_once_by_concurrent_first_uses() {
    let w = world();
    let nodes: Vec<Arc<Node>> = (0..4)
        .map(|_| Arc::new(node(&w.store, &w.root, &w.clock)))
        .collect();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let n = nodes[i % nodes.len()].clone();
        tasks.push(tokio::spawn(async move {
            n.kms
                .call(
                    &via_s3(),
                    GenerateDataKey {
                        key_id: "alias/aws/s3".into(),
                        number_of_bytes: Some(32),
                        ..Default::default()
                    },
                )
                .await
                .map(|o| o.key_id)
        }));
    }
    let mut arns = std::collections::HashSet::new();
    for t in tasks {
        arns.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(arns.len(), 1, "{arns:?}");
    let keys = w
        .store
        .list_keys(&account(), &region(), None, 100)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    let record = w
        .store
        .get_key(&region(), &keys[0].key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.key_manager, KeyManager::Aws);
    assert_eq!(record.rotation.period_days, Some(365));
    // It rotates yearly by itself.
    w.clock.advance_seconds(366 * DAY);
    nodes[0].kms.run_due_work().await;
    let record = w
        .store
        .get_key(&region(), &keys[0].key_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.materials.len(), 2);
    // Listing shows it with its key now.
    let listed = nodes[1]
        .kms
        .call(&root_ctx(), ListAliases::default())
        .await
        .unwrap();
    let s3 = listed
        .aliases
        .iter()
        .find(|a| a.alias_name == "alias/aws/s3")
        .unwrap();
    assert_eq!(s3.target_key_id, Some(keys[0].key_id.to_string()));
}

async fn generate_data_key(kms: &Kms, key: &KeyId) {
    kms.call(
        &root_ctx(),
        GenerateDataKey {
            key_id: key.to_string(),
            number_of_bytes: Some(16),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn key_usage_is_written_in_batches() {
    let w = world();
    let n = node(&w.store, &w.root, &w.clock);
    let key = new_key(&n.kms).await;
    generate_data_key(&n.kms, &key).await;
    // Noted in memory only: no store write on the call's path.
    assert!(
        w.store
            .get_key_usage(&region(), &key)
            .await
            .unwrap()
            .is_none()
    );
    n.kms.flush_key_usage().await.unwrap();
    let u = w
        .store
        .get_key_usage(&region(), &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.operation, "GenerateDataKey");
    let event = events(&n.audit, "GenerateDataKey").pop().unwrap();
    assert_eq!(u.event_id, event.event_id);
    assert_eq!(u.request_id, event.request_id);
    assert_eq!(u.timestamp, w.clock_now());
}

/// The periodic flush writes a key's first use at once and then rewrites it at most once a
/// minute (by the node's clock); what it holds back reaches the store with the flush a
/// `GetKeyLastUsage` runs.
#[tokio::test]
async fn the_periodic_flush_rewrites_a_key_at_most_once_a_minute() {
    let w = world();
    let n = node(&w.store, &w.root, &w.clock);
    let key = new_key(&n.kms).await;
    let stored = || async {
        w.store
            .get_key_usage(&region(), &key)
            .await
            .unwrap()
            .map(|u| u.event_id)
    };
    let last_event = || events(&n.audit, "GenerateDataKey").pop().unwrap().event_id;
    generate_data_key(&n.kms, &key).await;
    n.kms.flush_key_usage_paced().await.unwrap();
    let first = last_event();
    assert_eq!(stored().await, Some(first.clone()));
    w.clock.advance_seconds(30);
    generate_data_key(&n.kms, &key).await;
    n.kms.flush_key_usage_paced().await.unwrap();
    assert_eq!(stored().await, Some(first), "held back: written 30 s ago");
    w.clock.advance_seconds(30);
    n.kms.flush_key_usage_paced().await.unwrap();
    assert_eq!(
        stored().await,
        Some(last_event()),
        "a minute after the last write"
    );
    w.clock.advance_seconds(1);
    generate_data_key(&n.kms, &key).await;
    n.kms.flush_key_usage_paced().await.unwrap();
    assert_ne!(stored().await, Some(last_event()));
    n.kms.flush_key_usage().await.unwrap();
    assert_eq!(
        stored().await,
        Some(last_event()),
        "GetKeyLastUsage's flush writes it all"
    );
}

trait ClockNow {
    fn clock_now(&self) -> Timestamp;
}

impl ClockNow for World {
    fn clock_now(&self) -> Timestamp {
        use tresor_kms::clock::Clock as _;
        self.clock.now()
    }
}

/// A core whose periodic usage flush writes 2 rows per transaction and then pauses for an hour,
/// with `n` keys each used once (returned in the flush's order).
async fn paced_world(n: usize) -> (World, Arc<Kms>, Vec<KeyId>) {
    let w = world();
    let kms = Arc::new(Kms::new(
        w.store.clone(),
        w.root.clone(),
        w.clock.clone(),
        Arc::new(MemoryAuditSink::new(10_000)),
        KmsConfig {
            key_usage_flush_chunk: 2,
            key_usage_flush_pause: std::time::Duration::from_secs(3600),
            ..KmsConfig::default()
        },
    ));
    let mut keys = Vec::new();
    for _ in 0..n {
        let key = new_key(&kms).await;
        generate_data_key(&kms, &key).await;
        keys.push(key);
    }
    keys.sort();
    (w, kms, keys)
}

async fn written(w: &World, key: &KeyId) -> bool {
    w.store
        .get_key_usage(&region(), key)
        .await
        .unwrap()
        .is_some()
}

/// Starts the periodic (paced) flush and waits until its first transaction is in the store.
async fn first_chunk_written(
    w: &World,
    kms: &Arc<Kms>,
    keys: &[KeyId],
) -> tokio::task::JoinHandle<Result<(), KmsError>> {
    let task = tokio::spawn({
        let kms = kms.clone();
        async move { kms.flush_key_usage_paced().await }
    });
    for _ in 0..1000 {
        if written(w, &keys[1]).await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(written(w, &keys[0]).await && written(w, &keys[1]).await);
    // The rest waits behind the hour's pause.
    assert!(!written(w, &keys[2]).await && !written(w, &keys[4]).await);
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_key_last_usage_does_not_wait_for_a_paced_flush() {
    let (w, kms, keys) = paced_world(5).await;
    let paced = first_chunk_written(&w, &kms, &keys).await;
    // An unpaced flush (what GetKeyLastUsage runs before it reads) cuts the pause short and
    // returns only once every use taken before it is in the store.
    tokio::time::timeout(std::time::Duration::from_secs(60), kms.flush_key_usage())
        .await
        .expect("the paced flush stops pausing")
        .unwrap();
    for k in &keys {
        assert!(written(&w, k).await, "{k}");
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), paced)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_flush_stopped_half_way_loses_nothing() {
    let (w, kms, keys) = paced_world(5).await;
    let paced = first_chunk_written(&w, &kms, &keys).await;
    // The server aborts the periodic flush at shutdown, then flushes once more.
    paced.abort();
    assert!(paced.await.unwrap_err().is_cancelled());
    assert!(!written(&w, &keys[4]).await);
    kms.flush_key_usage().await.unwrap();
    for k in &keys {
        assert!(written(&w, k).await, "{k}");
    }
}
