//! Several stateless tresor nodes on one PostgreSQL database (the machine's server, a fresh
//! database per test, dropped afterwards): changes on one node take effect on the others within
//! the documented bound, audit chains of concurrent nodes verify, concurrent clients lose and
//! duplicate nothing, a PostgreSQL restart under load is survived, and a `pg_dump` restores.
//!
//! These tests share the machine's PostgreSQL and one restarts it: each holds the server
//! (`share_server`, or `own_server` for the restart), a lock that works across test processes and
//! concurrent test runs, and nextest runs them one at a time (`.config/nextest.toml`, group
//! `postgres`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kms::operation::RequestId as _;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, GrantOperation};
use serde_json::Value;
use tresor_store::pg_test::{TestDatabase, own_server, share_server};

use crate::common::{self, Server};

/// The documented staleness bound (docs/operations.md): a change acknowledged by one node is in
/// effect on every node for each request that starts this long after it.
const BOUND: Duration = Duration::from_secs(1);
/// Slack for the test's own clock reads around each request.
const MARGIN: Duration = Duration::from_millis(250);

/// Two nodes (A started first, B given A's root key file) on one fresh database.
struct Cluster {
    a: Server,
    b: Server,
    db: TestDatabase,
    tmp: tempfile::TempDir,
}

impl Cluster {
    async fn start(extra_b: &[&str]) -> Cluster {
        let db = TestDatabase::create().await;
        let tmp = tempfile::tempdir().unwrap();
        let a = common::start_with_store(&tmp.path().join("a/data"), db.url(), &[]);
        // Root-key custody: every node of one database holds the same root key file.
        let b_dir = tmp.path().join("b/data");
        copy_root_key(&a.data_dir, &b_dir);
        let b = common::start_with_store(&b_dir, db.url(), extra_b);
        Cluster { a, b, db, tmp }
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        common::tresor_with_store(args, &self.a.data_dir, self.db.url())
    }
}

fn copy_root_key(from_data: &Path, to_data: &Path) {
    std::fs::create_dir_all(to_data).unwrap();
    let to = to_data.join("root.key");
    std::fs::copy(from_data.join("root.key"), &to).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn code_of<E, R>(r: Result<R, aws_sdk_kms::error::SdkError<E>>) -> Option<String>
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => None,
        Err(e) => Some(common::err_code(&e).0),
    }
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str) -> Option<String> {
    code_of(
        kms.encrypt()
            .key_id(key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await,
    )
}

/// Polls node B (`attempt`: `Some(observation)` once B shows the change) until it shows the
/// change. Every attempt that *started* [`BOUND`] (+ [`MARGIN`]) after node A acknowledged the
/// change must show it; how much sooner it does (announcements) is not asserted.
async fn seen_within_bound<Fut>(
    what: &str,
    acknowledged: Instant,
    mut attempt: impl FnMut() -> Fut,
) -> String
where
    Fut: Future<Output = Option<String>>,
{
    loop {
        let started = Instant::now();
        if let Some(seen) = attempt().await {
            return seen;
        }
        assert!(
            started < acknowledged + BOUND + MARGIN,
            "{what}: node B still showed the old state to a request that started {:?} after node A acknowledged the change",
            started - acknowledged
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_key(kms: &aws_sdk_kms::Client) -> (String, String) {
    let k = common::create_key(kms).await;
    (k.key_id().to_owned(), k.arn().unwrap().to_owned())
}

const OTHER_ROOT: &str = "arn:aws:iam::444455556666:root";
const APP_ROLE: &str = "arn:aws:iam::111122223333:role/AppRole";

/// A disabled key, a revoked and a retired grant, a changed key policy, an alias change, a
/// changed identity policy and a scheduled deletion on node A (or through `tresor admin`) are
/// refused or seen on node B within the bound; a key created on A is usable on B at once.
async fn changes_reach_the_other_node(extra_b: &[&str]) {
    let c = Cluster::start(extra_b).await;
    let (a, b) = (c.a.kms(), c.b.kms());

    // Created on A, usable on B at once (a cache miss reads the store).
    let (k1, _) = create_key(&a).await;
    assert_eq!(
        encrypt(&b, &k1).await,
        None,
        "a new key is usable on the other node at once"
    );

    // Disabled on A.
    a.disable_key().key_id(&k1).send().await.unwrap();
    let t = Instant::now();
    let code = seen_within_bound("DisableKey", t, || encrypt(&b, &k1)).await;
    assert_eq!(code, "DisabledException");

    // A grant to another account, revoked; another, retired.
    let (k2, k2_arn) = create_key(&a).await;
    let other_b = c.b.kms_other();
    for retire in [false, true] {
        let grant = a
            .create_grant()
            .key_id(&k2)
            .grantee_principal(OTHER_ROOT)
            .operations(GrantOperation::Encrypt)
            .send()
            .await
            .unwrap();
        let grant_id = grant.grant_id().unwrap().to_owned();
        // Warm B's cache with the grant in it.
        let arn = k2_arn.clone();
        seen_within_bound("CreateGrant", Instant::now(), || {
            let (kms, arn) = (other_b.clone(), arn.clone());
            async move { encrypt(&kms, &arn).await.is_none().then(String::new) }
        })
        .await;
        if retire {
            a.retire_grant()
                .key_id(&k2_arn)
                .grant_id(&grant_id)
                .send()
                .await
                .unwrap();
        } else {
            a.revoke_grant()
                .key_id(&k2)
                .grant_id(&grant_id)
                .send()
                .await
                .unwrap();
        }
        let t = Instant::now();
        let what = if retire { "RetireGrant" } else { "RevokeGrant" };
        let code = seen_within_bound(what, t, || encrypt(&other_b, &k2_arn)).await;
        assert_eq!(code, "AccessDeniedException", "{what}");
    }

    // A key policy that now denies alice Encrypt.
    let (k3, _) = create_key(&a).await;
    assert_eq!(encrypt(&b, &k3).await, None);
    let policy = format!(
        r#"{{"Version": "2012-10-17", "Statement": [
            {{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{acct}:root"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Sid": "NoEncrypt", "Effect": "Deny", "Principal": {{"AWS": "arn:aws:iam::{acct}:user/alice"}}, "Action": "kms:Encrypt", "Resource": "*"}}]}}"#,
        acct = common::ACCOUNT
    );
    a.put_key_policy()
        .key_id(&k3)
        .policy_name("default")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    let code = seen_within_bound("PutKeyPolicy", t, || encrypt(&b, &k3)).await;
    assert_eq!(code, "AccessDeniedException");

    // An alias moved to another key.
    let (k4, _) = create_key(&a).await;
    let (k5, _) = create_key(&a).await;
    a.create_alias()
        .alias_name("alias/scale-moving")
        .target_key_id(&k4)
        .send()
        .await
        .unwrap();
    let target_on_b = |kms: aws_sdk_kms::Client| async move {
        kms.describe_key()
            .key_id("alias/scale-moving")
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .key_id()
            .to_owned()
    };
    assert_eq!(target_on_b(b.clone()).await, k4);
    a.update_alias()
        .alias_name("alias/scale-moving")
        .target_key_id(&k5)
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    seen_within_bound("UpdateAlias", t, || {
        let (b, k5) = (b.clone(), k5.clone());
        async move { (target_on_b(b).await == k5).then(String::new) }
    })
    .await;

    // Scheduled for deletion on A.
    let (k6, _) = create_key(&a).await;
    assert_eq!(encrypt(&b, &k6).await, None);
    a.schedule_key_deletion()
        .key_id(&k6)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let t = Instant::now();
    let code = seen_within_bound("ScheduleKeyDeletion", t, || encrypt(&b, &k6)).await;
    assert_eq!(code, "KMSInvalidStateException");

    // An identity policy changed with `tresor admin` (a third process on the database).
    let (k7, k7_arn) = create_key(&a).await;
    let role_b = c.b.kms_role();
    assert_eq!(encrypt(&role_b, &k7).await, None, "the role may encrypt");
    let deny = c.tmp.path().join("deny-encrypt.json");
    std::fs::write(
        &deny,
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}"#,
    )
    .unwrap();
    let (ok, out, err) = c.cli(&[
        "admin",
        "put-principal-policy",
        "--principal",
        APP_ROLE,
        "--name",
        "DenyEncrypt",
        "--document",
        deny.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let t = Instant::now();
    let code = seen_within_bound("put-principal-policy", t, || encrypt(&role_b, &k7)).await;
    assert_eq!(code, "AccessDeniedException");

    // `tresor explain` reads the same database.
    let (ok, out, err) = common::tresor_with_store(
        &[
            "explain",
            "--principal",
            "arn:aws:sts::111122223333:assumed-role/AppRole/app-session",
            "--action",
            "kms:Encrypt",
            "--key",
            &k7_arn,
        ],
        &c.b.data_dir,
        c.db.url(),
    );
    assert!(ok, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["results"][0]["decision"]
            .as_str()
            .unwrap()
            .contains("Deny"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_on_one_node_take_effect_on_the_other_within_the_bound() {
    let _pg = share_server().await;
    changes_reach_the_other_node(&[]).await;
}

/// The same with node B deaf to announcements: the caches' TTL alone keeps the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bound_holds_without_announcements() {
    let _pg = share_server().await;
    changes_reach_the_other_node(&["--test-ignore-invalidations"]).await;
}

/// Request ids of `per_task` GenerateDataKey calls by each of `tasks` clients.
async fn load(kms: aws_sdk_kms::Client, key: String, tasks: usize, per_task: usize) -> Vec<String> {
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (kms, key) = (kms.clone(), key.clone());
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..per_task {
                let out = kms
                    .generate_data_key()
                    .key_id(&key)
                    .key_spec(DataKeySpec::Aes256)
                    .send()
                    .await
                    .unwrap();
                ids.push(out.request_id().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.extend(h.await.unwrap());
    }
    ids
}

/// `LookupEvents` (SigV4 service `cloudtrail`) through one node: every event's requestID, all pages.
async fn lookup_events(server: &Server, event_name: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let mut body = serde_json::json!({
            "MaxResults": 50,
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event_name}],
        });
        if let Some(t) = &token {
            body["NextToken"] = Value::String(t.clone());
        }
        let body = serde_json::to_vec(&body).unwrap();
        let mut headers = vec![
            (
                "Content-Type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "X-Amz-Target".to_owned(),
                "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents".to_owned(),
            ),
        ];
        let auth = common::sigv4_headers(
            server.authority(),
            "POST",
            "/",
            &headers,
            &body,
            (common::AKID, common::SECRET),
            common::REGION,
            "cloudtrail",
            std::time::SystemTime::now(),
        );
        headers.extend(auth);
        let r = common::raw_http(server.authority(), "POST", "/", &headers, &body).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        for e in v["Events"].as_array().unwrap() {
            let record: Value =
                serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap();
            ids.insert(record["requestID"].as_str().unwrap().to_owned());
        }
        match v["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return ids,
        }
    }
    panic!("LookupEvents paging did not end");
}

/// Each node writes its own chain; with both writing at once every record is there, `tresor
/// audit verify` passes on the shared database, and lookups and export see both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_nodes_write_their_own_verifiable_audit_chains() {
    let _pg = share_server().await;
    let c = Cluster::start(&[]).await;
    let (key, _) = create_key(&c.a.kms()).await;
    let (on_a, on_b) = tokio::join!(
        load(c.a.kms(), key.clone(), 4, 20),
        load(c.b.kms(), key.clone(), 4, 20)
    );
    assert_eq!((on_a.len(), on_b.len()), (80, 80));
    let all: BTreeSet<String> = on_a.iter().chain(&on_b).cloned().collect();

    // LookupEvents on either node sees both nodes' records.
    for server in [&c.a, &c.b] {
        let seen = lookup_events(server, "GenerateDataKey").await;
        let missing: Vec<_> = all.difference(&seen).collect();
        assert!(
            missing.is_empty(),
            "LookupEvents misses {} records",
            missing.len()
        );
    }

    let node_ids: BTreeSet<String> = [&c.a.data_dir, &c.b.data_dir]
        .iter()
        .map(|d| {
            std::fs::read_to_string(d.join("node-id"))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(node_ids.len(), 2, "each node has its own id");

    let verify = |c: &Cluster| {
        let (ok, out, err) = c.cli(&["audit", "verify"]);
        assert!(ok, "verify: {out}{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["chains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ch| ch["chain"].as_str().unwrap().to_owned())
            .collect::<BTreeSet<_>>()
    };
    // While both nodes run, and after both stopped.
    assert_eq!(verify(&c), node_ids, "one chain per node");
    let mut c = c;
    assert!(c.a.stop().success() && c.b.stop().success());
    assert_eq!(verify(&c), node_ids);

    let (ok, out, err) = c.cli(&["audit", "lookup", "--limit", "100000"]);
    assert!(ok, "{err}");
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r["requestID"].as_str().map(str::to_owned))
        .collect();
    assert!(
        all.is_subset(&logged),
        "tresor audit lookup sees every node's records"
    );

    let export_dir = c.tmp.path().join("export");
    let (ok, out, err) = c.cli(&["audit", "export", "--dir", export_dir.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        summary["records"].as_u64().unwrap(),
        records.len() as u64,
        "export writes every record of both chains"
    );
}

/// Eight clients, alternating between two nodes, create keys, aliases (racing for the same
/// names), grants (racing with one idempotent name) and use an AWS managed key for the first
/// time together: nothing acknowledged is lost and nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_through_two_nodes_lose_nothing_and_duplicate_nothing() {
    let _pg = share_server().await;
    let c = Cluster::start(&[]).await;
    let (shared, _) = create_key(&c.a.kms()).await;
    let mut clients = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &c.a } else { &c.b };
        let (kms, shared) = (node.kms(), shared.clone());
        clients.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            for _ in 0..3 {
                keys.push(create_key(&kms).await.0);
            }
            // Own aliases: all must exist.
            for (j, k) in keys.iter().enumerate() {
                kms.create_alias()
                    .alias_name(format!("alias/own-{i}-{j}"))
                    .target_key_id(k)
                    .send()
                    .await
                    .unwrap();
            }
            // Contended aliases: one winner per name.
            let mut won = Vec::new();
            for n in 0..4 {
                let name = format!("alias/race-{n}");
                match kms
                    .create_alias()
                    .alias_name(&name)
                    .target_key_id(&keys[0])
                    .send()
                    .await
                {
                    Ok(_) => won.push((name, keys[0].clone())),
                    Err(e) => assert_eq!(common::err_code(&e).0, "AlreadyExistsException"),
                }
            }
            // The same named grant from everyone: one grant, one id.
            let grant = kms
                .create_grant()
                .key_id(&shared)
                .name("shared-grant")
                .grantee_principal(APP_ROLE)
                .operations(GrantOperation::Decrypt)
                .send()
                .await
                .unwrap();
            // First use of the AWS managed key, by everyone at once.
            let managed = kms
                .describe_key()
                .key_id("alias/aws/s3")
                .send()
                .await
                .unwrap()
                .key_metadata
                .unwrap();
            (
                keys,
                won,
                grant.grant_id().unwrap().to_owned(),
                managed.key_id().to_owned(),
            )
        }));
    }
    let mut created = Vec::new();
    let mut winners = BTreeMap::new();
    let mut grant_ids = BTreeSet::new();
    let mut managed_ids = BTreeSet::new();
    for h in clients {
        let (keys, won, grant, managed) = h.await.unwrap();
        created.extend(keys);
        for (name, key) in won {
            assert!(
                winners.insert(name, key).is_none(),
                "two winners for one alias"
            );
        }
        grant_ids.insert(grant);
        managed_ids.insert(managed);
    }
    assert_eq!(
        winners.len(),
        4,
        "every contended alias has exactly one winner"
    );
    assert_eq!(grant_ids.len(), 1, "one grant for one name");
    assert_eq!(managed_ids.len(), 1, "one AWS managed key");
    let managed = managed_ids.into_iter().next().unwrap();

    // Read back through the other node than most writes went through, and through both.
    for node in [&c.a, &c.b] {
        let kms = node.kms();
        let listed = common::list_all_keys(&kms, Some(7)).await;
        let unique: BTreeSet<&String> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "no key listed twice");
        for k in created.iter().chain([&shared, &managed]) {
            assert!(unique.contains(k), "key {k} lost");
        }
        assert_eq!(
            listed.len(),
            created.len() + 2,
            "no extra keys (one managed key)"
        );

        let aliases = kms.list_aliases().limit(100).send().await.unwrap();
        assert!(!aliases.truncated());
        let mut names = BTreeMap::new();
        for a in aliases.aliases() {
            assert!(
                names
                    .insert(
                        a.alias_name().unwrap().to_owned(),
                        a.target_key_id().map(str::to_owned)
                    )
                    .is_none(),
                "alias listed twice"
            );
        }
        for (name, key) in &winners {
            assert_eq!(names.get(name), Some(&Some(key.clone())), "{name}");
        }
        for i in 0..8 {
            for j in 0..3 {
                assert!(names.contains_key(&format!("alias/own-{i}-{j}")));
            }
        }
        assert_eq!(names.get("alias/aws/s3"), Some(&Some(managed.clone())));
        let grants = kms.list_grants().key_id(&shared).send().await.unwrap();
        assert_eq!(grants.grants().len(), 1, "one grant for one name");
    }
}

/// Finds the machine's PostgreSQL cluster version (`ls /etc/postgresql`).
fn cluster_version() -> String {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql: the machine's PostgreSQL cluster")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions.pop().expect("a cluster under /etc/postgresql")
}

fn pg_ctl(action: &str) -> bool {
    Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &cluster_version(),
            "main",
            action,
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pg_ready() -> bool {
    Command::new("pg_isready")
        .args(["-q", "-h", "127.0.0.1", "-p", "5432"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn wait_pg_ready() {
    for _ in 0..120 {
        if pg_ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("PostgreSQL did not become ready within 30 s");
}

/// Brings PostgreSQL back up when dropped, whatever happened in between.
struct PgBackUp;

impl Drop for PgBackUp {
    fn drop(&mut self) {
        if !pg_ready() {
            pg_ctl("start");
        }
        for _ in 0..120 {
            if pg_ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!("warning: PostgreSQL is not ready after the restart test");
    }
}

#[derive(Default)]
struct Observed {
    /// (ciphertext, plaintext) of acknowledged GenerateDataKey calls.
    data_keys: Vec<(Blob, Vec<u8>)>,
    /// Key ids of acknowledged CreateKey calls.
    keys: Vec<String>,
    request_ids: Vec<String>,
    /// Error code and HTTP status of each failure.
    failures: Vec<(String, u16)>,
}

/// One client's loop: GenerateDataKey, and every tenth call CreateKey, until `stop`.
async fn client_loop(
    kms: aws_sdk_kms::Client,
    key: String,
    observed: Arc<std::sync::Mutex<Observed>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        n += 1;
        let failure = if n.is_multiple_of(10) {
            match kms.create_key().send().await {
                Ok(out) => {
                    let mut o = observed.lock().unwrap();
                    o.request_ids.push(out.request_id().unwrap().to_owned());
                    o.keys.push(out.key_metadata.unwrap().key_id().to_owned());
                    None
                }
                Err(e) => Some(failure_of(&e)),
            }
        } else {
            match kms
                .generate_data_key()
                .key_id(&key)
                .key_spec(DataKeySpec::Aes256)
                .send()
                .await
            {
                Ok(out) => {
                    let mut o = observed.lock().unwrap();
                    o.data_keys.push((
                        out.ciphertext_blob().unwrap().clone(),
                        out.plaintext().unwrap().as_ref().to_vec(),
                    ));
                    o.request_ids.push(out.request_id().unwrap().to_owned());
                    None
                }
                Err(e) => Some(failure_of(&e)),
            }
        };
        if let Some(f) = failure {
            observed.lock().unwrap().failures.push(f);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn failure_of<E>(e: &aws_sdk_kms::error::SdkError<E>) -> (String, u16)
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match e.as_service_error() {
        Some(se) => (
            se.code().unwrap_or_default().to_owned(),
            e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
        ),
        None => (format!("not a service error: {e:?}"), 0),
    }
}

fn counts(o: &std::sync::Mutex<Observed>) -> (usize, usize) {
    let o = o.lock().unwrap();
    (o.request_ids.len(), o.failures.len())
}

/// Waits (bounded, a guard not a latency assertion) until `cond` holds.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL stopped and started again under a small load through two real nodes: while it is
/// down requests fail with retryable 5xx AWS errors (and `/health` says so), nothing acknowledged
/// is lost, and service resumes by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_restart_under_load_loses_nothing_and_service_resumes() {
    let _pg = own_server().await;
    let c = Cluster::start(&[]).await;
    let (key, _) = create_key(&c.a.kms()).await;
    let observed = Arc::new(std::sync::Mutex::new(Observed::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for node in [&c.a, &c.b, &c.a, &c.b] {
        clients.push(tokio::spawn(client_loop(
            node.kms(),
            key.clone(),
            observed.clone(),
            stop.clone(),
        )));
    }
    wait_until("load running", Duration::from_secs(60), || {
        counts(&observed).0 >= 100
    })
    .await;

    let back_up = PgBackUp;
    assert!(pg_ctl("stop"), "pg_ctlcluster stop");
    let (ok_at_stop, failed_at_stop) = counts(&observed);
    // While it is down: failures, each a retryable 5xx.
    wait_until(
        "failures while PostgreSQL is down",
        Duration::from_secs(60),
        || counts(&observed).1 >= failed_at_stop + 20,
    )
    .await;
    for server in [&c.a, &c.b] {
        let health = common::raw_http(server.authority(), "GET", "/health", &[], b"").await;
        assert_eq!(health.status, 503, "/health reports the store unreachable");
    }
    assert!(pg_ctl("start"), "pg_ctlcluster start");
    wait_pg_ready();
    drop(back_up);
    // Service resumes by itself (the pools reconnect): new successes on both nodes.
    wait_until("service resumes", Duration::from_secs(60), || {
        counts(&observed).0 >= ok_at_stop + 200
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for h in clients {
        h.await.unwrap();
    }
    for server in [&c.a, &c.b] {
        let health = common::raw_http(server.authority(), "GET", "/health", &[], b"").await;
        assert_eq!(health.status, 200);
    }

    let o = std::mem::take(&mut *observed.lock().unwrap());
    let mut by_code: BTreeMap<&(String, u16), usize> = BTreeMap::new();
    for f in &o.failures {
        *by_code.entry(f).or_default() += 1;
    }
    eprintln!(
        "PostgreSQL restart: {} acknowledged requests, failures by (code, status): {by_code:?}",
        o.request_ids.len()
    );
    assert!(!o.failures.is_empty());
    let unexpected: Vec<_> = o
        .failures
        .iter()
        .filter(|(code, status)| {
            !matches!(
                (code.as_str(), status),
                ("KMSInternalException", 500) | ("DependencyTimeoutException", 503)
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "only retryable 5xx errors while PostgreSQL is down: {unexpected:?}"
    );
    // Nothing acknowledged is lost (keys, data keys, audit records), and both nodes serve again.
    let nodes = [c.a.kms(), c.b.kms()];
    for (i, k) in o.keys.iter().enumerate() {
        nodes[i % 2].describe_key().key_id(k).send().await.unwrap();
    }
    for (i, (ct, pt)) in o.data_keys.iter().enumerate() {
        let out = nodes[i % 2]
            .decrypt()
            .ciphertext_blob(ct.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.plaintext().unwrap().as_ref(), &pt[..]);
    }
    let (ok, out, err) = c.cli(&["audit", "lookup", "--limit", "1000000"]);
    assert!(ok, "{err}");
    let logged: BTreeSet<String> = out
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["requestID"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let missing = o
        .request_ids
        .iter()
        .filter(|id| !logged.contains(*id))
        .count();
    assert_eq!(
        missing, 0,
        "acknowledged requests missing from the audit log"
    );
    let (ok, out, err) = c.cli(&["audit", "verify"]);
    assert!(ok, "the audit log verifies after the restart: {out}{err}");
}

fn run(cmd: &str, args: &[String]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Backup and restore as docs/operations.md describes: `pg_dump` of a live database, restored
/// into a fresh one with `psql`, served by a new node that has only the root key file: every
/// ciphertext made before the backup decrypts, aliases resolve, the audit log verifies. Without
/// the root key file the node refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pg_dump_restores_into_a_fresh_database_and_decrypts_old_ciphertexts() {
    let _pg = share_server().await;
    let db = TestDatabase::create().await;
    let tmp = tempfile::tempdir().unwrap();
    let node = common::start_with_store(&tmp.path().join("a/data"), db.url(), &[]);
    let kms = node.kms();
    let mut made = Vec::new();
    for i in 0..3 {
        let (key, _) = create_key(&kms).await;
        kms.create_alias()
            .alias_name(format!("alias/backup-{i}"))
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
        let ct = kms
            .encrypt()
            .key_id(format!("alias/backup-{i}"))
            .plaintext(Blob::new(format!("secret {i}").into_bytes()))
            .encryption_context("tenant", format!("t{i}"))
            .send()
            .await
            .unwrap();
        made.push((i, key, ct.ciphertext_blob().unwrap().clone()));
    }
    // Rotate one key so the backup holds two material generations.
    kms.rotate_key_on_demand()
        .key_id(&made[0].1)
        .send()
        .await
        .unwrap();

    // Backup while the node runs: pg_dump takes a consistent snapshot.
    let dump: PathBuf = tmp.path().join("tresor.sql");
    let mut args = db.cli_args();
    args.extend([
        "--no-owner".into(),
        "-f".into(),
        dump.display().to_string(),
        db.name().to_owned(),
    ]);
    run("pg_dump", &args);

    let restored = TestDatabase::create().await;
    let mut args = restored.cli_args();
    args.extend([
        "-q".into(),
        "-v".into(),
        "ON_ERROR_STOP=1".into(),
        "-d".into(),
        restored.name().to_owned(),
        "-f".into(),
        dump.display().to_string(),
    ]);
    run("psql", &args);

    // Without the root key file a node refuses the restored database.
    let bare = tmp.path().join("bare/data");
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&bare)
        .args(["--store", restored.url()])
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not start without the root key");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("root key file") && err.contains("missing"),
        "{err}"
    );

    // A new node with only the root key file serves the restored database (named by the config
    // file's `store` this time).
    let fresh = tmp.path().join("c/data");
    copy_root_key(&node.data_dir, &fresh);
    let config = format!(
        "store = \"{}\"\n{}",
        restored.url(),
        common::default_config()
    );
    let c = Server::start_in(&fresh, &config, &[]);
    let kms = c.kms();
    for (i, key, ct) in &made {
        let out = kms
            .decrypt()
            .ciphertext_blob(ct.clone())
            .encryption_context("tenant", format!("t{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.plaintext().unwrap().as_ref(),
            format!("secret {i}").as_bytes()
        );
        assert_eq!(
            out.key_id().unwrap(),
            common::key_arn(common::REGION, common::ACCOUNT, key)
        );
        let d = kms
            .describe_key()
            .key_id(format!("alias/backup-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(d.key_metadata.unwrap().key_id(), key);
    }
    let (ok, out, err) = common::tresor_with_store(&["audit", "verify"], &fresh, restored.url());
    assert!(ok, "the restored audit log verifies: {out}{err}");
}
