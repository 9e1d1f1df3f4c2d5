//! Crash consistency: the real server under a mixed load from several concurrent clients, killed
//! with SIGKILL at random moments and restarted each time. After every restart, everything it
//! acknowledged must be there: keys, aliases, grants, key policies, scheduled deletions; every
//! ciphertext it returned decrypts; every acknowledged call's audit record is in the log; the log
//! verifies; and the server started cleanly.
//!
//! `crash_consistency` runs a short version in the normal suite. The long version is
//! `crash_consistency_long` (ignored by default), run by `scripts/crash-test --kills N --seconds S`
//! (see docs/reliability.md), which passes its parameters in `TRESOR_CRASH_KILLS`,
//! `TRESOR_CRASH_SECONDS`, `TRESOR_CRASH_CLIENTS` and `TRESOR_CRASH_SEED`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::operation::RequestId as _;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, GrantOperation, KeyState};

use crate::common::{self, Server};

/// xorshift64*: reproducible choices from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A ciphertext the server returned, with what it must decrypt to.
#[derive(Clone)]
struct Sealed {
    blob: Blob,
    plaintext: Vec<u8>,
    context: Option<(String, String)>,
}

/// Everything the server acknowledged, over all rounds.
#[derive(Default)]
struct Ledger {
    keys: BTreeSet<String>,
    /// Usable (enabled, not scheduled for deletion) keys of each client.
    owned: BTreeMap<usize, Vec<String>>,
    aliases: BTreeMap<String, String>,
    grants: BTreeMap<String, BTreeSet<String>>,
    /// Per key: the last acknowledged policy and the one in flight when the server died.
    policies: BTreeMap<String, (String, Option<String>)>,
    scheduled: BTreeSet<String>,
    sealed: Vec<Sealed>,
    request_ids: Vec<String>,
    /// Service errors while the server was up: each one is a bug.
    unexpected: Vec<String>,
}

fn policy_text(marker: u64) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Id": "crash-{marker}", "Statement": [{{"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {{"AWS": "arn:aws:iam::{}:root"}}, "Action": "kms:*", "Resource": "*"}}]}}"#,
        common::ACCOUNT
    )
}

/// A failed call: a service error is recorded as unexpected; anything else means the server is
/// gone (killed), which ends the client's round.
fn failed<E: std::fmt::Debug, R: std::fmt::Debug>(
    ledger: &Mutex<Ledger>,
    what: &str,
    e: &SdkError<E, R>,
) {
    if let SdkError::ServiceError(_) = e {
        ledger
            .lock()
            .unwrap()
            .unexpected
            .push(format!("{what}: {e:?}"));
    }
}

/// One client's load until the server dies.
async fn client(kms: aws_sdk_kms::Client, me: usize, seed: u64, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(seed | 1);
    let role = format!("arn:aws:iam::{}:role/AppRole", common::ACCOUNT);
    loop {
        let owned = ledger
            .lock()
            .unwrap()
            .owned
            .get(&me)
            .cloned()
            .unwrap_or_default();
        let key = (!owned.is_empty())
            .then(|| owned[usize::try_from(rng.below(owned.len() as u64)).unwrap()].clone());
        let choice = if key.is_none() { 0 } else { rng.below(100) };
        let marker = rng.next();
        match (choice, key) {
            (0..10, _) | (_, None) => match kms
                .create_key()
                .description(format!("client {me}"))
                .send()
                .await
            {
                Ok(out) => {
                    let id = out.key_metadata().unwrap().key_id().to_owned();
                    let mut l = ledger.lock().unwrap();
                    l.request_ids.push(out.request_id().unwrap().to_owned());
                    l.keys.insert(id.clone());
                    l.owned.entry(me).or_default().push(id);
                }
                Err(e) => return failed(&ledger, "CreateKey", &e),
            },
            (10..40, Some(key)) => {
                let context = (format!("client-{me}"), format!("{marker}"));
                match kms
                    .generate_data_key()
                    .key_id(&key)
                    .key_spec(DataKeySpec::Aes256)
                    .encryption_context(&context.0, &context.1)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.sealed.push(Sealed {
                            blob: out.ciphertext_blob().unwrap().clone(),
                            plaintext: out.plaintext().unwrap().as_ref().to_vec(),
                            context: Some(context),
                        });
                    }
                    Err(e) => return failed(&ledger, "GenerateDataKey", &e),
                }
            }
            (40..70, Some(key)) => {
                let plaintext = format!("client {me} secret {marker}").into_bytes();
                match kms
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(plaintext.clone()))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.sealed.push(Sealed {
                            blob: out.ciphertext_blob().unwrap().clone(),
                            plaintext,
                            context: None,
                        });
                    }
                    Err(e) => return failed(&ledger, "Encrypt", &e),
                }
            }
            (70..78, Some(key)) => {
                let alias = format!("alias/crash-{me}-{marker:x}");
                match kms
                    .create_alias()
                    .alias_name(&alias)
                    .target_key_id(&key)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.aliases.insert(alias, key);
                    }
                    Err(e) => return failed(&ledger, "CreateAlias", &e),
                }
            }
            (78..86, Some(key)) => match kms
                .create_grant()
                .key_id(&key)
                .grantee_principal(&role)
                .operations(GrantOperation::Decrypt)
                .name(format!("crash-{marker:x}"))
                .send()
                .await
            {
                Ok(out) => {
                    let mut l = ledger.lock().unwrap();
                    l.request_ids.push(out.request_id().unwrap().to_owned());
                    l.grants
                        .entry(key)
                        .or_default()
                        .insert(out.grant_id().unwrap().to_owned());
                }
                Err(e) => return failed(&ledger, "CreateGrant", &e),
            },
            (86..94, Some(key)) => {
                let policy = policy_text(marker);
                ledger
                    .lock()
                    .unwrap()
                    .policies
                    .entry(key.clone())
                    .or_insert_with(|| (String::new(), None))
                    .1 = Some(policy.clone());
                match kms
                    .put_key_policy()
                    .key_id(&key)
                    .policy_name("default")
                    .policy(&policy)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.policies.insert(key, (policy, None));
                    }
                    Err(e) => return failed(&ledger, "PutKeyPolicy", &e),
                }
            }
            (_, Some(_)) => {
                // A deleted key's ciphertexts no longer decrypt, so deletion is scheduled for a
                // fresh key that sealed nothing.
                let fresh = match kms.create_key().description("to delete").send().await {
                    Ok(out) => {
                        let id = out.key_metadata().unwrap().key_id().to_owned();
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.keys.insert(id.clone());
                        id
                    }
                    Err(e) => return failed(&ledger, "CreateKey", &e),
                };
                match kms
                    .schedule_key_deletion()
                    .key_id(&fresh)
                    .pending_window_in_days(7)
                    .send()
                    .await
                {
                    Ok(out) => {
                        let mut l = ledger.lock().unwrap();
                        l.request_ids.push(out.request_id().unwrap().to_owned());
                        l.scheduled.insert(fresh);
                    }
                    Err(e) => return failed(&ledger, "ScheduleKeyDeletion", &e),
                }
            }
        }
    }
}

/// Checks everything in the ledger against the restarted server.
async fn verify(server: &Server, ledger: &Mutex<Ledger>, round: usize) {
    let kms = server.kms();
    // The audit log verifies (checked first, while the server is idle).
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(["audit", "verify", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "round {round}: audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (keys, aliases, grants, policies, scheduled, request_ids) = {
        let l = ledger.lock().unwrap();
        assert!(
            l.unexpected.is_empty(),
            "round {round}: service errors under load: {:?}",
            l.unexpected
        );
        (
            l.keys.clone(),
            l.aliases.clone(),
            l.grants.clone(),
            l.policies.clone(),
            l.scheduled.clone(),
            l.request_ids.clone(),
        )
    };
    // Keys.
    let listed: BTreeSet<String> = common::list_all_keys(&kms, Some(1000))
        .await
        .into_iter()
        .collect();
    let missing: Vec<&String> = keys.difference(&listed).collect();
    assert!(missing.is_empty(), "round {round}: keys lost: {missing:?}");
    // Scheduled deletions.
    for id in &scheduled {
        let m = kms.describe_key().key_id(id).send().await.unwrap();
        assert_eq!(
            m.key_metadata().unwrap().key_state(),
            Some(&KeyState::PendingDeletion),
            "round {round}: the scheduled deletion of {id} was lost"
        );
    }
    // Aliases.
    let mut found = BTreeMap::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_aliases()
            .limit(100)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        for a in page.aliases() {
            if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                found.insert(name.to_owned(), target.to_owned());
            }
        }
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_owned);
    }
    for (alias, key) in &aliases {
        assert_eq!(
            found.get(alias),
            Some(key),
            "round {round}: alias {alias} lost"
        );
    }
    // Grants.
    for (key, ids) in &grants {
        let mut listed = BTreeSet::new();
        let mut marker = None;
        loop {
            let page = kms
                .list_grants()
                .key_id(key)
                .limit(100)
                .set_marker(marker.clone())
                .send()
                .await
                .unwrap();
            for g in page.grants() {
                listed.insert(g.grant_id().unwrap().to_owned());
            }
            if !page.truncated() {
                break;
            }
            marker = page.next_marker().map(str::to_owned);
        }
        let lost: Vec<&String> = ids.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "round {round}: grants of {key} lost: {lost:?}"
        );
    }
    // Key policies: the last acknowledged one, or the one in flight when the server died.
    for (key, (acked, in_flight)) in &policies {
        let got = kms
            .get_key_policy()
            .key_id(key)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap();
        let ok = (!acked.is_empty() && &got == acked)
            || in_flight.as_ref() == Some(&got)
            || (acked.is_empty() && !got.contains("crash-"));
        assert!(
            ok,
            "round {round}: policy of {key} is neither the acknowledged nor the in-flight one: {got}"
        );
    }
    // Every ciphertext decrypts, four at a time.
    let sealed: Vec<Sealed> = ledger.lock().unwrap().sealed.clone();
    let sealed = Arc::new(sealed);
    let mut tasks = Vec::new();
    for part in 0..4 {
        let kms = kms.clone();
        let sealed = sealed.clone();
        tasks.push(tokio::spawn(async move {
            for s in sealed.iter().skip(part).step_by(4) {
                let mut call = kms.decrypt().ciphertext_blob(s.blob.clone());
                if let Some((k, v)) = &s.context {
                    call = call.encryption_context(k, v);
                }
                let out = call.send().await.unwrap_or_else(|e| {
                    panic!("round {round}: an acknowledged ciphertext does not decrypt: {e:?}")
                });
                assert_eq!(out.plaintext().unwrap().as_ref(), s.plaintext.as_slice());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every acknowledged call is in the audit log.
    let logged: BTreeSet<String> = common::audit_records(&server.data_dir)
        .iter()
        .filter_map(|r| r["requestID"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&String> = request_ids
        .iter()
        .filter(|id| !logged.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "round {round}: {} acknowledged calls missing from the audit log: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Starts the server on `data`, checking it starts cleanly and is healthy.
async fn start(data: &Path, round: usize) -> Server {
    let mut server = Server::start_in(data, &common::default_config(), &[]);
    let r = common::raw_http(server.authority(), "GET", "/health", &[], b"").await;
    assert_eq!(
        r.status, 200,
        "round {round}: unhealthy after restart: {r:?}"
    );
    assert!(
        server.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "round {round}: the server exited"
    );
    server
}

/// The harness: `kills` rounds of load from `clients` clients, each killed after a random moment
/// of up to `max_burst`.
async fn run(kills: usize, max_burst: Duration, clients: usize, seed: u64) {
    println!(
        "crash test: {kills} kills, bursts up to {max_burst:?}, {clients} clients, seed {seed}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    for round in 0..kills {
        let mut server = start(&data, round).await;
        if round > 0 {
            verify(&server, &ledger, round).await;
        }
        let tasks: Vec<_> = (0..clients)
            .map(|me| tokio::spawn(client(server.kms(), me, rng.next(), ledger.clone())))
            .collect();
        // Kill at a random moment of the burst (at least a little load first).
        let min = max_burst.as_millis().min(50) as u64;
        let ms = min + rng.below(max_burst.as_millis() as u64 - min + 1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        server.kill();
        for t in tasks {
            t.await.unwrap();
        }
        let l = ledger.lock().unwrap();
        println!(
            "round {round}: killed after {ms} ms; so far {} keys, {} aliases, {} grants, {} policies, {} scheduled, {} ciphertexts, {} calls ({:?})",
            l.keys.len(),
            l.aliases.len(),
            l.grants.values().map(BTreeSet::len).sum::<usize>(),
            l.policies.len(),
            l.scheduled.len(),
            l.sealed.len(),
            l.request_ids.len(),
            started.elapsed()
        );
    }
    let mut server = start(&data, kills).await;
    verify(&server, &ledger, kills).await;
    {
        let l = ledger.lock().unwrap();
        assert!(
            !l.keys.is_empty() && !l.sealed.is_empty(),
            "the load did nothing"
        );
    }
    assert!(server.stop().success(), "clean stop after the last check");
}

fn seed_from_env() -> u64 {
    std::env::var("TRESOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The short version for the normal suite: a few kills, short bursts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_consistency() {
    run(4, Duration::from_millis(700), 4, seed_from_env()).await;
}

/// The long version (`scripts/crash-test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: run with scripts/crash-test"]
async fn crash_consistency_long() {
    let kills = env_or("TRESOR_CRASH_KILLS", 25usize);
    let seconds = env_or("TRESOR_CRASH_SECONDS", 3.0f64);
    let clients = env_or("TRESOR_CRASH_CLIENTS", 6usize);
    run(
        kills,
        Duration::from_secs_f64(seconds.max(0.1)),
        clients,
        seed_from_env(),
    )
    .await;
}
