//! The embedded audit log's journal (`audit.journal` in front of the `audit.db` index): the whole
//! audit conformance suite through it, then what only a journal can get wrong — replay of
//! acknowledged batches the index missed (a crash between the journal's sync and the index's
//! commit), a torn last frame, wrapping the ring (with the writer waiting for the indexer) — each
//! with direct I/O, through the page cache, and on a file system that refuses direct I/O (a
//! ramfs, mounted by the test: it needs root, as CI has) —, a batch too large for the ring, a
//! reader process beside the owner, and a second owner refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tresor_crypto::Ed25519Signer;
use tresor_kms::audit::AuditSink;
use tresor_kms::audit_log::{
    AuditBackend, AuditIndex, AuditQuery, AuditRecord, GroupCommitAuditSink, Signed, SignedKind,
    event_json, record_hash, verify,
};
use tresor_kms::clock::ManualClock;
use tresor_kms::types::Timestamp;
use tresor_store::JournaledAuditLog;
use tresor_store::audit_journal::{Access, BLOCK, JournalOptions, MIN_CAPACITY, journal_path};
use tresor_store::audit_records::records_dir;
use tresor_store::conformance::audit::{AuditHarness, Callers, T0, Tamper, event, write};

/// Fresh journaled logs in temp dirs kept for the harness's life, with a small ring (so the
/// suite's logs wrap it).
#[derive(Default)]
struct Journaled {
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

/// Tampers with the index once it holds everything acknowledged (an attacker edits the file as
/// it is; the records are in the index a few milliseconds after their commit).
struct IndexTamper {
    path: PathBuf,
    log: Arc<JournaledAuditLog>,
}

#[async_trait]
impl Tamper for IndexTamper {
    /// The suite's statements edit rows of records with their `json` column: the runs of
    /// records copied from the journal are first turned into such rows, and the JSON of rows
    /// that point into the record files put back into them (a row's own JSON is read before its
    /// record file's), so an edit to a row is an edit to the record.
    /// `a_modified_record_file_is_detected` edits the files themselves.
    async fn sql(&self, statements: &str) {
        self.log.chains().await.unwrap();
        tresor_store::sqlite_audit::runs_to_rows(&self.path).unwrap();
        let c = rusqlite::Connection::open(&self.path).unwrap();
        let pointed: Vec<(i64, i64, i64)> = c
            .prepare("SELECT rowid, json_at, json_len FROM audit_records WHERE json = '' AND json_at IS NOT NULL")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (rowid, at, len) in pointed {
            let json = record_file_bytes(&self.path, at as u64, len as usize);
            c.execute(
                "UPDATE audit_records SET json = ?1 WHERE rowid = ?2",
                rusqlite::params![String::from_utf8(json).unwrap(), rowid],
            )
            .unwrap();
        }
        c.execute_batch(statements).unwrap();
    }
}

/// The record files' segments (start offset, path), in order.
fn segments(index: &Path) -> Vec<(u64, PathBuf)> {
    tresor_store::audit_records::segments(index).unwrap()
}

/// The record files' total size in bytes.
fn segment_bytes(index: &Path) -> u64 {
    segments(index)
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// The seqs of the first `limit` records of chain `main`, in order.
async fn seqs(log: &dyn AuditBackend, limit: usize) -> Vec<u64> {
    log.records("main", 0, limit)
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// `len` bytes at absolute offset `at` of the record files.
fn record_file_bytes(index: &Path, at: u64, len: usize) -> Vec<u8> {
    let (start, path) = segments(index)
        .into_iter()
        .rev()
        .find(|(s, _)| *s <= at)
        .unwrap();
    let bytes = std::fs::read(path).unwrap();
    bytes[(at - start) as usize..(at - start) as usize + len].to_vec()
}

/// Small record files, so the suite's logs span many and pruning deletes some.
const SMALL_SEGMENTS: u64 = 8 << 10;

#[async_trait]
impl AuditHarness for Journaled {
    async fn fresh(&self) -> (Arc<dyn AuditBackend>, Box<dyn Tamper>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.db");
        let options = JournalOptions {
            capacity: MIN_CAPACITY,
            record_segment_bytes: SMALL_SEGMENTS,
            ..JournalOptions::default()
        };
        let log = Arc::new(
            JournaledAuditLog::open_with_options(&path, Access::Exclusive, options).unwrap(),
        );
        self.dirs.lock().unwrap().push(dir);
        (log.clone(), Box::new(IndexTamper { path, log }))
    }
}

tresor_store::audit_conformance_tests!(Journaled::default());

struct Fixture {
    index: PathBuf,
    signer: Arc<Ed25519Signer>,
    clock: Arc<ManualClock>,
    /// Direct I/O asked for (where the file system allows it) or the page cache.
    direct_io: bool,
    /// The journal must end up written through the page cache (asked for, or because its file
    /// system refuses direct I/O).
    page_cache: bool,
    _ramfs: Option<RamFs>,
    _dir: tempfile::TempDir,
}

/// A ramfs mounted on a temp dir (a file system that refuses `O_DIRECT` at open, as some
/// network and FUSE file systems do), unmounted on drop.
struct RamFs {
    dir: PathBuf,
}

impl RamFs {
    /// Mounts one on `dir`. Mounting needs root (CI runs as root); elsewhere the test fails with
    /// this reason rather than passing without having run, unless `TRESOR_SKIP_MOUNT_TESTS` is
    /// set (see `skip_mount_tests`).
    fn mount(dir: &Path) -> RamFs {
        let out = std::process::Command::new("mount")
            .args(["-t", "ramfs", "tresor-test"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a ramfs (a file system without direct I/O) and needs root \
             (as another user, TRESOR_SKIP_MOUNT_TESTS=1 skips it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        RamFs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for RamFs {
    fn drop(&mut self) {
        // Lazily, so a test that failed with the journal still open leaves no mount behind.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_io(IO::Direct)
    }

    fn with_io(io: IO) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ramfs = (io == IO::NoDirectIoFs).then(|| RamFs::mount(dir.path()));
        let index = dir.path().join("audit.db");
        Fixture {
            index,
            signer: Arc::new(Ed25519Signer::generate().unwrap()),
            clock: Arc::new(ManualClock::new(Timestamp::from_unix_seconds(T0))),
            direct_io: io != IO::PageCache,
            page_cache: io != IO::Direct,
            _ramfs: ramfs,
            _dir: dir,
        }
    }

    /// A group-commit writer of chain `main` on `log`, and its task.
    async fn sink(
        &self,
        log: &Arc<JournaledAuditLog>,
    ) -> (GroupCommitAuditSink, tokio::task::JoinHandle<()>) {
        GroupCommitAuditSink::start(
            log.clone(),
            self.signer.clone(),
            self.clock.clone(),
            Default::default(),
        )
        .await
        .unwrap()
    }

    fn open(&self, capacity: u64) -> Arc<JournaledAuditLog> {
        let log = JournaledAuditLog::open_with_options(
            &self.index,
            Access::Exclusive,
            JournalOptions {
                capacity,
                direct_io: self.direct_io,
                record_segment_bytes: SMALL_SEGMENTS,
            },
        )
        .unwrap();
        if self.page_cache {
            assert_eq!(
                log.direct_io(),
                Some(false),
                "written through the page cache"
            );
        }
        Arc::new(log)
    }

    /// Writes records `range` through a group-commit writer; the log is closed afterwards (its
    /// index current).
    async fn write(&self, capacity: u64, range: std::ops::RangeInclusive<u64>, callers: Callers) {
        let log = self.open(capacity);
        self.write_into(log.clone(), range, callers).await;
        close(log);
    }

    /// Writes records `range` into `log` (left open).
    async fn write_into(
        &self,
        log: Arc<dyn AuditBackend>,
        range: std::ops::RangeInclusive<u64>,
        callers: Callers,
    ) {
        write(
            log,
            self.signer.clone(),
            self.clock.clone(),
            "main",
            range,
            100,
            callers,
        )
        .await;
    }

    /// Copies of the index's files (database, WAL), to put back later: the index as it was.
    fn snapshot(&self) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| {
                let p = PathBuf::from(format!("{}{suffix}", self.index.display()));
                let bytes = std::fs::read(&p).ok();
                (p, bytes)
            })
            .collect()
    }

    fn restore(&self, snapshot: &[(PathBuf, Option<Vec<u8>>)]) {
        for (p, bytes) in snapshot {
            match bytes {
                Some(b) => std::fs::write(p, b).unwrap(),
                None => {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }

    /// The bytes a frame of one record takes in the ring (measured from the first record, plus
    /// a margin for the frame's header, hashes and signed head), in whole blocks.
    async fn one_record_frame(&self) -> u64 {
        let log = self.open(MIN_CAPACITY);
        let r = log.records("main", 0, 1).await.unwrap();
        close(log);
        (r[0].json.len() as u64 + 200).div_ceil(BLOCK) * BLOCK
    }

    /// Opens the log and verifies it: the number of records and the head's seq.
    async fn verified(&self, capacity: u64) -> (u64, Option<u64>) {
        let log = self.open(capacity);
        let report = verify(&*log, &self.signer.public_key()).await.unwrap();
        assert!(report.ok, "{report:?}");
        let seqs = seqs(&*log, 1_000_000).await;
        assert!(
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1),
            "records 1..=n in order, none twice"
        );
        close(log);
        (report.chains[0].records, report.chains[0].head_seq)
    }
}

/// How the journal is written: the file system's choice of direct I/O, the page cache (asked
/// for), or direct I/O asked for on a file system that refuses it (the journal falls back to the
/// page cache by itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IO {
    Direct,
    PageCache,
    NoDirectIoFs,
}

/// A user who cannot mount (not root) opts out of the ramfs tests explicitly, and is told so.
fn skip_mount_tests() -> bool {
    let skip = std::env::var_os("TRESOR_SKIP_MOUNT_TESTS").is_some();
    if skip {
        eprintln!("SKIPPED: TRESOR_SKIP_MOUNT_TESTS is set (this test mounts a ramfs)");
    }
    skip
}

/// Each of these checks with direct I/O, through the page cache, and on a file system without
/// direct I/O.
macro_rules! every_io {
    ($($check:ident => $direct:ident, $cached:ident, $no_direct_fs:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $direct() {
            $check(IO::Direct).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $cached() {
            $check(IO::PageCache).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $no_direct_fs() {
            if skip_mount_tests() {
                return;
            }
            $check(IO::NoDirectIoFs).await;
        }
    )*};
}

every_io! {
    replay => acknowledged_batches_the_index_missed_are_replayed,
        acknowledged_batches_the_index_missed_are_replayed_through_the_page_cache,
        acknowledged_batches_the_index_missed_are_replayed_on_a_file_system_without_direct_io;
    torn_frame => a_torn_last_frame_ends_the_journal,
        a_torn_last_frame_ends_the_journal_through_the_page_cache,
        a_torn_last_frame_ends_the_journal_on_a_file_system_without_direct_io;
    ring => the_ring_wraps_and_replays_across_its_end,
        the_ring_wraps_and_replays_across_its_end_through_the_page_cache,
        the_ring_wraps_and_replays_across_its_end_on_a_file_system_without_direct_io;
}

/// Drops the last handle of a log (which waits for its indexer).
fn close(log: Arc<JournaledAuditLog>) {
    assert_eq!(Arc::strong_count(&log), 1, "the log's last handle");
    drop(log);
}

/// The index lost its last copies (as if the process died after the journal's sync and before
/// the index's commit): opening the log puts every acknowledged record back from the journal,
/// and the chain verifies and continues.
async fn replay(io: IO) {
    // A ring that holds the 50 records within one lap (each frame takes whole blocks).
    const RING: u64 = 64 * BLOCK;
    let f = Fixture::with_io(io);
    f.write(RING, 1..=10, Callers::InOrder).await;
    let before = f.snapshot();
    f.write(RING, 11..=60, Callers::Concurrent).await;
    f.restore(&before);
    assert_eq!(f.verified(RING).await, (60, Some(60)));
    // The chain goes on from the replayed head.
    f.write(RING, 61..=62, Callers::InOrder).await;
    assert_eq!(f.verified(RING).await, (62, Some(62)));
}

/// A torn last frame (a write that was never acknowledged) ends the journal: replay keeps
/// everything before it, and the log verifies.
async fn torn_frame(io: IO) {
    let f = Fixture::with_io(io);
    f.write(MIN_CAPACITY, 1..=10, Callers::InOrder).await;
    let before = f.snapshot();
    // One record per frame: the last frame holds record 15.
    f.write(MIN_CAPACITY, 11..=15, Callers::InOrder).await;
    f.restore(&before);
    let journal = std::fs::read(journal_path(&f.index)).unwrap();
    let last = last_frame_end(&journal);
    let mut torn = journal.clone();
    torn[last - 1] ^= 0x55;
    std::fs::write(journal_path(&f.index), &torn).unwrap();
    assert_eq!(f.verified(MIN_CAPACITY).await, (14, Some(14)));
    // The next batch takes the torn frame's place.
    f.write(MIN_CAPACITY, 15..=16, Callers::InOrder).await;
    assert_eq!(f.verified(MIN_CAPACITY).await, (16, Some(16)));
}

/// The end of the last frame in a journal that has not wrapped: the last non-zero byte.
fn last_frame_end(journal: &[u8]) -> usize {
    journal.iter().rposition(|b| *b != 0).unwrap() + 1
}

/// Many laps around a small ring with concurrent callers (the writer waits for the indexer
/// before overwriting a lap), and a replay across the ring's end.
async fn ring(io: IO) {
    let f = Fixture::with_io(io);
    // One record per frame (4 KiB each): 1,500 frames are ~90 laps of 64 KiB. Then concurrent
    // callers, whose batches are frames of several blocks or (past a quarter of the ring) go
    // straight to the index.
    f.write(MIN_CAPACITY, 1..=1500, Callers::InOrder).await;
    f.write(MIN_CAPACITY, 1501..=3000, Callers::Concurrent)
        .await;
    assert_eq!(
        std::fs::metadata(journal_path(&f.index)).unwrap().len(),
        MIN_CAPACITY,
        "the journal stays at its ring size"
    );
    assert_eq!(f.verified(MIN_CAPACITY).await, (3000, Some(3000)));
    // The index behind by most of a lap (one record per frame), which crosses the end of the
    // ring at least once in two: replayed.
    let frame = f.one_record_frame().await;
    let n = 3000 + MIN_CAPACITY * 7 / 10 / frame;
    let before = f.snapshot();
    f.write(MIN_CAPACITY, 3001..=n, Callers::InOrder).await;
    f.restore(&before);
    assert_eq!(f.verified(MIN_CAPACITY).await, (n, Some(n)));
    // An existing journal keeps its ring size whatever a new one would get.
    assert_eq!(f.verified(MIN_CAPACITY * 4).await, (n, Some(n)));
    f.write(MIN_CAPACITY * 4, n + 1..=n + 500, Callers::Concurrent)
        .await;
    assert_eq!(
        std::fs::metadata(journal_path(&f.index)).unwrap().len(),
        MIN_CAPACITY
    );
    assert_eq!(f.verified(MIN_CAPACITY).await, (n + 500, Some(n + 500)));
}

/// A batch larger than a quarter of the ring goes straight into the index, in order with the
/// journal's batches around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_too_large_for_the_ring_goes_to_the_index_in_order() {
    let f = Fixture::new();
    let log = f.open(MIN_CAPACITY);
    let (sink, writer) = f.sink(&log).await;
    for i in 1..=30u64 {
        let mut e = event(i, "Encrypt", T0 + i as i64);
        if i % 10 == 5 {
            e.request_parameters = Some(serde_json::json!({ "big": "x".repeat(20_000) }));
        }
        sink.record(e).await.unwrap();
    }
    drop(sink);
    writer.await.unwrap();
    let found = log
        .lookup(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.len(), 30);
    assert_eq!(
        found.iter().filter(|r| r.json.len() > 20_000).count(),
        3,
        "the large records are there"
    );
    close(log);
    assert_eq!(f.verified(MIN_CAPACITY).await, (30, Some(30)));
}

/// A second process (the `tresor audit` commands beside a running server) cannot own the
/// journal: it reads the index once the owner has copied everything acknowledged into it, and
/// cannot append. A second owner is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_beside_the_owner_sees_every_acknowledged_record() {
    let f = Fixture::new();
    let owner = f.open(MIN_CAPACITY);
    let (sink, writer) = f.sink(&owner).await;
    let sink = Arc::new(sink);
    for round in 0..5u64 {
        let mut tasks = Vec::new();
        for i in 1..=40u64 {
            let sink = sink.clone();
            let n = round * 40 + i;
            tasks.push(tokio::spawn(async move {
                sink.record(event(n, "Decrypt", T0 + n as i64)).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Everything acknowledged so far, at once.
        let reader = JournaledAuditLog::open(&f.index, Access::Shared).unwrap();
        let seen = reader.records("main", 0, 10_000).await.unwrap().len() as u64;
        assert_eq!(seen, (round + 1) * 40);
        let head = reader.head("main").await.unwrap().unwrap();
        assert!(
            reader
                .append(Vec::new(), &head, None)
                .await
                .unwrap_err()
                .to_string()
                .contains("another process"),
            "a reader cannot append"
        );
    }
    let second = JournaledAuditLog::open(&f.index, Access::Exclusive);
    assert!(
        second
            .err()
            .unwrap()
            .to_string()
            .contains("in use by another tresor process"),
        "a second owner is refused"
    );
    drop(sink);
    writer.await.unwrap();
    close(owner);
    // Once the owner has closed, a reader becomes the owner (and would replay).
    assert_eq!(f.verified(MIN_CAPACITY).await, (200, Some(200)));
}

#[test]
fn the_journal_lies_beside_its_index() {
    assert_eq!(
        journal_path(Path::new("/data/audit.db")),
        Path::new("/data/audit.journal")
    );
}

/// While the index cannot take writes (another connection holds its write lock), appends go on
/// until the ring is full and then wait: a frame the index has not copied is never overwritten.
/// Once the index is free again, every waiting append completes and the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_waits_for_the_index_instead_of_overwriting_it() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=1, Callers::InOrder).await;
    let frame = f.one_record_frame().await;
    // One record per frame: a lap holds this many.
    let lap = MIN_CAPACITY / frame;
    let blocker = rusqlite::Connection::open(&f.index).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let log = f.open(MIN_CAPACITY);
    let (sink, writer) = f.sink(&log).await;
    let done = Arc::new(AtomicU64::new(0));
    let total = 2 * lap + 10;
    let task = {
        let done = done.clone();
        tokio::spawn(async move {
            for i in 2..=total + 1 {
                sink.record(event(i, "Decrypt", T0 + i as i64))
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let acknowledged = done.load(Ordering::SeqCst);
    assert!(
        acknowledged <= lap,
        "{acknowledged} frames of {frame} bytes acknowledged into a {MIN_CAPACITY}-byte ring the index has not copied"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    task.await.unwrap();
    writer.await.unwrap();
    assert_eq!(done.load(Ordering::SeqCst), total);
    close(log);
    assert_eq!(f.verified(MIN_CAPACITY).await, (total + 1, Some(total + 1)));
}

/// The records' JSON lives in the record files: an edit there is a modified record to `verify`,
/// as an edit of the row is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modified_record_file_is_detected() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=20, Callers::InOrder).await;
    let log = f.open(MIN_CAPACITY);
    let seven = log.records("main", 6, 1).await.unwrap().remove(0);
    assert!(seven.json.contains("\"n\":7"), "{}", seven.json);
    close(log);
    let mut edited = 0;
    for (_, path) in segments(&f.index) {
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(i) = bytes.windows(5).position(|w| w == b"\"n\":7") {
            bytes[i + 4] = b'8';
            std::fs::write(&path, &bytes).unwrap();
            edited += 1;
        }
    }
    assert_eq!(edited, 1, "record 7 is in one segment");
    let log = f.open(MIN_CAPACITY);
    let report = verify(&*log, &f.signer.public_key()).await.unwrap();
    assert!(!report.ok);
    let problems: Vec<String> = report.chains.into_iter().flat_map(|c| c.problems).collect();
    assert!(
        problems.iter().any(|m| m.contains("record 7 was modified")),
        "{problems:?}"
    );
    close(log);
}

/// Bytes past what the index's committed rows point at (a transaction that wrote its records'
/// JSON and died before its commit) are cut off by the next owner, a segment started by such a
/// transaction is removed, and the log goes on where the committed records end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_bytes_past_the_committed_end_are_cut_off() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=30, Callers::InOrder).await;
    let before = segments(&f.index);
    assert!(before.len() > 1, "the records span several segments");
    let (last_start, last) = before.last().unwrap().clone();
    let last_len = std::fs::metadata(&last).unwrap().len();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"uncommitted\":true}").unwrap();
    drop(file);
    let stray = records_dir(&f.index).join(format!("{:020}", last_start + last_len + 100));
    std::fs::write(&stray, b"{\"uncommitted\":true}").unwrap();
    let log = f.open(MIN_CAPACITY);
    assert!(!stray.exists(), "a segment past the end is removed");
    assert_eq!(std::fs::metadata(&last).unwrap().len(), last_len);
    close(log);
    f.write(MIN_CAPACITY, 31..=40, Callers::InOrder).await;
    assert_eq!(f.verified(MIN_CAPACITY).await, (40, Some(40)));
    let text: Vec<u8> = segments(&f.index)
        .into_iter()
        .flat_map(|(_, p)| std::fs::read(p).unwrap())
        .collect();
    assert!(
        !text.windows(12).any(|w| w == b"uncommitted\""),
        "the cut-off bytes are gone"
    );
}

/// Pruning deletes the record files that hold only pruned records, never one a kept record is
/// in, nor the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_the_segments_of_pruned_records_only() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=60, Callers::InOrder).await;
    let before = segments(&f.index);
    assert!(before.len() >= 4, "{before:?}");
    let log = f.open(MIN_CAPACITY);
    // Records 1..=40 are older than t0+41.
    let removed = tresor_kms::audit_log::prune(&*log, &f.signer, "main", (T0 + 41) * 1000, 0)
        .await
        .unwrap();
    assert_eq!(removed, 40);
    let after = segments(&f.index);
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    let kept = seqs(&*log, 100).await;
    assert_eq!(kept, (41..=60).collect::<Vec<u64>>());
    close(log);
    let log = f.open(MIN_CAPACITY);
    let report = verify(&*log, &f.signer.public_key()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chains[0].first_seq, Some(41));
    close(log);
    // Pruning everything keeps the last segment (its owner writes on in it).
    let log = f.open(MIN_CAPACITY);
    let removed = tresor_kms::audit_log::prune(&*log, &f.signer, "main", (T0 + 1000) * 1000, 0)
        .await
        .unwrap();
    assert_eq!(removed, 20);
    assert_eq!(segments(&f.index).len(), 1);
    close(log);
    f.write(MIN_CAPACITY, 61..=62, Callers::InOrder).await;
    let log = f.open(MIN_CAPACITY);
    assert_eq!(log.records("main", 0, 100).await.unwrap().len(), 2);
    assert!(verify(&*log, &f.signer.public_key()).await.unwrap().ok);
    close(log);
}

/// A log written before the record files existed (each record's JSON in its row) goes on in
/// record files: both kinds read and verify as one chain, and pruning past the old rows deletes
/// only segments that hold nothing kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_with_their_json_and_rows_in_record_files_make_one_chain() {
    let f = Fixture::new();
    let old = Arc::new(tresor_store::SqliteAuditLog::open(&f.index).unwrap());
    f.write_into(old.clone(), 1..=10, Callers::InOrder).await;
    drop(old);
    assert!(segments(&f.index).is_empty());
    f.write(MIN_CAPACITY, 11..=40, Callers::InOrder).await;
    let inline: i64 = rusqlite::Connection::open(&f.index)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM audit_records WHERE json <> '' AND json_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(inline, 10, "the first ten keep their JSON in the row");
    assert!(segments(&f.index).len() > 1);
    assert_eq!(f.verified(MIN_CAPACITY).await, (40, Some(40)));
    let log = f.open(MIN_CAPACITY);
    // Pruning only rows with their own JSON keeps every segment.
    let before = segments(&f.index);
    let removed = tresor_kms::audit_log::prune(&*log, &f.signer, "main", (T0 + 6) * 1000, 0)
        .await
        .unwrap();
    assert_eq!(removed, 5);
    assert_eq!(segments(&f.index), before);
    let removed = tresor_kms::audit_log::prune(&*log, &f.signer, "main", (T0 + 26) * 1000, 0)
        .await
        .unwrap();
    assert_eq!(removed, 20);
    assert!(segments(&f.index).len() < before.len());
    let kept = log.records("main", 0, 100).await.unwrap();
    assert_eq!(kept.len(), 15);
    assert!(
        kept.iter()
            .all(|r| r.json.contains("\"eventName\":\"Decrypt\""))
    );
    let report = verify(&*log, &f.signer.public_key()).await.unwrap();
    assert!(report.ok, "{report:?}");
    close(log);
}

/// An index transaction that fails after its records' JSON went into the record files (here a
/// trigger refuses the rows) is retried: the retry writes the same records over the same bytes
/// (dropping a segment the failed attempt started), and once the index takes the rows the log
/// holds every acknowledged record once and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_transaction_is_retried_over_the_same_record_bytes() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=5, Callers::InOrder).await;
    let committed: u64 = segment_bytes(&f.index);
    let c = rusqlite::Connection::open(&f.index).unwrap();
    c.execute_batch(
        "CREATE TABLE fail (x);
         INSERT INTO fail VALUES (1);
         CREATE TRIGGER fail_inserts BEFORE INSERT ON audit_batches WHEN EXISTS (SELECT 1 FROM fail)
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();
    let log = f.open(MIN_CAPACITY);
    // Acknowledged from the journal while every copy into the index fails: one group commit of
    // ten records, ~7 KB of JSON after ~3.5 KB, so every attempt copies all ten and starts a
    // segment past the committed end (segments of 8 KiB). One commit, not ten calls: the
    // indexer's first attempt takes only the commits that arrived within its few milliseconds,
    // and its retries copy the same ones.
    let head = log.head("main").await.unwrap().unwrap();
    assert_eq!(head.seq, 5);
    let mut prev = head.hash;
    let records = chained(&mut prev, 6..=15, |seq| T0 + seq as i64);
    let head = Signed::sign(
        SignedKind::Head,
        &f.signer,
        "main",
        15,
        prev,
        (T0 + 15) * 1000,
    );
    log.append(records, &head, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let written: u64 = segment_bytes(&f.index);
    assert!(
        written > committed && segments(&f.index).last().unwrap().0 > committed,
        "the failed attempts wrote their records and started a segment ({committed} -> {written} bytes)"
    );
    c.execute_batch("DELETE FROM fail").unwrap();
    log.chains().await.unwrap();
    let total: u64 = segment_bytes(&f.index);
    let json: u64 = log
        .records("main", 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.json.len() as u64)
        .sum();
    assert_eq!(total, json, "each record's JSON once in the record files");
    close(log);
    c.execute_batch("DROP TRIGGER fail_inserts").unwrap();
    drop(c);
    assert_eq!(f.verified(MIN_CAPACITY).await, (15, Some(15)));
}

/// A run whose record length was edited to lie past its segment (here the largest length an
/// entry can hold) is a corrupt record to `verify` and to reads, not a crash or a huge
/// allocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_record_pointer_is_reported_not_followed() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=5, Callers::InOrder).await;
    let c = rusqlite::Connection::open(&f.index).unwrap();
    // Record 3's entry (44 bytes: length, time, hash) starts with its length.
    let edited = c
        .execute(
            "UPDATE audit_batches SET entries = CAST(substr(entries, 1, (3 - first_seq) * 44)
                 || X'FFFFFFFF' || substr(entries, (3 - first_seq) * 44 + 5) AS BLOB)
             WHERE chain = 'main' AND first_seq <= 3 AND last_seq >= 3",
            [],
        )
        .unwrap();
    assert_eq!(edited, 1);
    drop(c);
    let log = f.open(MIN_CAPACITY);
    reads_and_verify_fail(&f, &log, "missing from its segment").await;
    close(log);
}

/// Records copied from the journal are indexed a run at a time (`audit_batches`). Beside rows of
/// an older index they read, look up, page and prune as rows do: records in seq order in pages
/// that cross from rows into runs, lookups equal to the same filter over every record (newest
/// first, paged with `before`), the cut-off for pruning across rows and runs, and a prune that
/// ends inside a run keeps the run's later records verifiable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_read_look_up_and_prune_like_rows() {
    const RING: u64 = 1 << 20;
    let f = Fixture::new();
    let old = Arc::new(tresor_store::SqliteAuditLog::open(&f.index).unwrap());
    f.write_into(old.clone(), 1..=10, Callers::InOrder).await;
    drop(old);
    f.write(RING, 11..=80, Callers::Concurrent).await;
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let (rows, runs, longest): (i64, i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM audit_records), count(*), MAX(last_seq - first_seq + 1) FROM audit_batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(rows, 10, "the older index's rows stay rows");
    assert!(
        runs >= 1 && longest >= 3,
        "{runs} runs, the longest {longest}"
    );
    let log = f.open(RING);

    // Every record once, in seq order, in pages of 7.
    let mut seqs = Vec::new();
    loop {
        let page = log
            .records("main", seqs.last().copied().unwrap_or(0), 7)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        seqs.extend(page.iter().map(|r| r.seq));
    }
    assert_eq!(seqs, (1..=80).collect::<Vec<u64>>());
    let all = log.records("main", 0, 1000).await.unwrap();
    assert_eq!(all.len(), 80);
    for r in &all {
        assert_eq!(
            r.index,
            AuditIndex::derive(&r.json).unwrap(),
            "record {}",
            r.seq
        );
    }

    // Lookups: the same records as the filter over all of them, newest first, page by page.
    let newest_first = |pred: &dyn Fn(&AuditRecord) -> bool| {
        let mut v: Vec<(i64, u64)> = all
            .iter()
            .filter(|r| pred(r))
            .map(|r| (r.index.event_time_millis, r.seq))
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v.into_iter().map(|(_, s)| s).collect::<Vec<u64>>()
    };
    let paged = |q: AuditQuery| {
        let log = log.clone();
        async move {
            let mut out = Vec::new();
            let mut q = q;
            loop {
                let page = log.lookup(&q).await.unwrap();
                assert!(page.len() <= q.limit);
                let Some(last) = page.last() else { break };
                q.before = Some((last.index.event_time_millis, last.chain.clone(), last.seq));
                out.extend(page.iter().map(|r| r.seq));
            }
            out
        }
    };
    let denied = AuditQuery {
        error_code: Some("AccessDeniedException".into()),
        limit: 4,
        ..Default::default()
    };
    let expect = newest_first(&|r| r.index.error_code.as_deref() == Some("AccessDeniedException"));
    assert_eq!(expect.len(), 16);
    assert_eq!(paged(denied).await, expect);
    let key = "arn:aws:kms:us-east-1:111122223333:key/k1";
    let window = AuditQuery {
        resource_arn: Some(key.into()),
        start_millis: Some((T0 + 5) * 1000),
        end_millis: Some((T0 + 60) * 1000),
        limit: 5,
        ..Default::default()
    };
    let expect = newest_first(&|r| {
        r.index.resources.iter().any(|x| x == key)
            && (T0 + 5..=T0 + 60).contains(&(r.index.event_time_millis / 1000))
    });
    assert!(expect.iter().any(|s| *s <= 10) && expect.iter().any(|s| *s > 10));
    assert_eq!(paged(window).await, expect);
    let one = AuditQuery {
        event_id: Some("evt-42".into()),
        limit: 10,
        ..Default::default()
    };
    let found = log.lookup(&one).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].json.contains("\"n\":42"));
    let every = paged(AuditQuery {
        limit: 9,
        ..Default::default()
    })
    .await;
    assert_eq!(every, newest_first(&|_| true));

    // The cut-off for pruning: the last seq before the first record at or after a time.
    let last_before = |t: i64| {
        all.iter()
            .find(|r| r.index.event_time_millis >= t * 1000)
            .map_or(Some(80), |r| r.seq.checked_sub(1).filter(|s| *s > 0))
    };
    for t in [
        T0,
        T0 + 1,
        T0 + 5,
        T0 + 11,
        T0 + 12,
        T0 + 40,
        T0 + 79,
        T0 + 80,
        T0 + 1000,
    ] {
        assert_eq!(
            log.last_seq_before("main", t * 1000).await.unwrap(),
            last_before(t),
            "cut-off at T0 + {}",
            t - T0
        );
    }

    // A prune that ends inside a run.
    let (first, last): (i64, i64) = c
        .query_row(
            "SELECT first_seq, last_seq FROM audit_batches WHERE last_seq - first_seq >= 2 ORDER BY first_seq LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let through = first as u64;
    let kept = &all[through as usize - 1];
    let anchor = Signed::sign(
        SignedKind::Anchor,
        &f.signer,
        "main",
        through + 1,
        kept.hash,
        (T0 + 100) * 1000,
    );
    assert_eq!(log.prune("main", through, &anchor).await.unwrap(), through);
    let (first_after, last_after): (i64, i64) = c
        .query_row(
            "SELECT first_seq, last_seq FROM audit_batches WHERE last_seq = ?1",
            [last],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (first_after, last_after),
        (first + 1, last),
        "the run keeps its later records"
    );
    let rest = log.records("main", 0, 1000).await.unwrap();
    assert_eq!(
        rest.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (through + 1..=80).collect::<Vec<_>>()
    );
    assert_eq!(rest, all[through as usize..].to_vec());
    let report = verify(&*log, &f.signer.public_key()).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.chains[0].first_seq, Some(through + 1));
    assert_eq!(report.chains[0].records, 80 - through);
    let every = paged(AuditQuery {
        limit: 50,
        ..Default::default()
    })
    .await;
    assert_eq!(every, newest_first(&|r| r.seq > through));
    drop(c);
    close(log);
}

/// A run whose `last_seq` was edited to claim records its list does not hold is a corrupt index
/// to a prune that cuts inside it, not a panic or a prune of bytes it does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_claiming_more_records_than_it_holds_is_reported_by_prune() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=5, Callers::InOrder).await;
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let (first, last) = first_run(&c);
    c.execute(
        "UPDATE audit_batches SET last_seq = last_seq + 100 WHERE first_seq = ?1",
        [first],
    )
    .unwrap();
    drop(c);
    let log = f.open(MIN_CAPACITY);
    let through = last as u64;
    let anchor = Signed::sign(
        SignedKind::Anchor,
        &f.signer,
        "main",
        through + 1,
        [0; 32],
        0,
    );
    let e = log.prune("main", through, &anchor).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("fewer records than its last seq says"),
        "{e}"
    );
    close(log);
}

/// The first and last seq of the index's first run.
fn first_run(c: &rusqlite::Connection) -> (i64, i64) {
    c.query_row(
        "SELECT first_seq, last_seq FROM audit_batches ORDER BY first_seq LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// Records `seqs` of chain `main` (Decrypt events at `time(seq)` seconds) linked from `*prev`,
/// which moves to the last one's hash.
fn chained(
    prev: &mut [u8; 32],
    seqs: std::ops::RangeInclusive<u64>,
    time: impl Fn(u64) -> i64,
) -> Vec<AuditRecord> {
    seqs.map(|seq| {
        let e = event(seq, "Decrypt", time(seq));
        let json = event_json(&e);
        let hash = record_hash("main", seq, prev, &json);
        let r = AuditRecord {
            chain: "main".into(),
            seq,
            prev_hash: *prev,
            hash,
            json,
            index: AuditIndex::from_event(e),
        };
        *prev = hash;
        r
    })
    .collect()
}

/// Reading chain `main` and verifying the log both fail with an error that says `what`.
async fn reads_and_verify_fail(f: &Fixture, log: &JournaledAuditLog, what: &str) {
    let e = log.records("main", 0, 100).await.unwrap_err();
    assert!(e.to_string().contains(what), "{e}");
    let e = verify(log, &f.signer.public_key()).await.unwrap_err();
    assert!(e.to_string().contains(what), "{e}");
}

/// Overwrites the record-file bytes of record `seq` of chain `main` with `x`s.
fn garble_record(index: &Path, seq: u64) {
    let (at, len) = tresor_store::sqlite_audit::record_file_span(index, "main", seq)
        .unwrap()
        .expect("the record is in the record files");
    let (start, path) = segments(index)
        .into_iter()
        .rev()
        .find(|(s, _)| *s <= at)
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let from = usize::try_from(at - start).unwrap();
    bytes[from..from + usize::try_from(len).unwrap()].fill(b'x');
    std::fs::write(&path, bytes).unwrap();
}

/// Each run keeps a summary of the values lookups ask for, and a lookup passes over the runs it
/// rules out without reading them: with the JSON of the first run's records garbled, a lookup
/// for a user name no record has (a filter the JSON pre-filter cannot apply) answers, while one
/// for the user name every record has reads the garbled run and fails. A run indexed before
/// summaries existed (none stored) is read by every lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_pass_over_runs_their_summary_rules_out() {
    let f = Fixture::new();
    for range in [1..=20, 21..=40, 41..=60] {
        f.write(MIN_CAPACITY, range, Callers::InOrder).await;
    }
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let (runs, with_summary): (i64, i64) = c
        .query_row(
            "SELECT count(*), count(summary) FROM audit_batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        runs >= 3 && runs == with_summary,
        "{runs} runs, {with_summary} with a summary"
    );
    let log = f.open(MIN_CAPACITY);
    let by = |user: &str| AuditQuery {
        username: Some(user.into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(log.lookup(&by("alice")).await.unwrap().len(), 60);
    close(log);
    for seq in 1..=20 {
        garble_record(&f.index, seq);
    }
    let log = f.open(MIN_CAPACITY);
    assert_eq!(log.lookup(&by("bob")).await.unwrap(), Vec::new());
    let e = log.lookup(&by("alice")).await.unwrap_err();
    assert!(e.to_string().contains("is not a record"), "{e}");
    let found = log
        .lookup(&AuditQuery {
            event_id: Some("evt-42".into()),
            username: Some("alice".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![42]);

    // Without summaries (an index from before them), every run in the window is read.
    c.execute("UPDATE audit_batches SET summary = NULL", [])
        .unwrap();
    let e = log.lookup(&by("bob")).await.unwrap_err();
    assert!(e.to_string().contains("is not a record"), "{e}");
    close(log);
}

/// Clearing a run's summary would hide its records from lookups; reading the run checks each
/// record against it, so `verify` reports every record it no longer covers, and a summary of
/// the wrong shape is a corrupt index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_summary_is_reported_by_verify() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=10, Callers::InOrder).await;
    f.write(MIN_CAPACITY, 11..=20, Callers::InOrder).await;
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let (first, last) = first_run(&c);
    c.execute(
        "UPDATE audit_batches SET summary = zeroblob(length(summary)) WHERE first_seq = ?1",
        [first],
    )
    .unwrap();
    let log = f.open(MIN_CAPACITY);
    let hidden = log
        .lookup(&AuditQuery {
            event_id: Some(format!("evt-{first}")),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(hidden.is_empty(), "the cleared summary rules its run out");
    let report = verify(&*log, &f.signer.public_key()).await.unwrap();
    assert!(!report.ok);
    let problems = &report.chains[0].problems;
    assert_eq!(
        problems,
        &(first..=last)
            .map(|s| format!("record {s}'s query columns do not match its content"))
            .collect::<Vec<_>>()
    );
    c.execute(
        "UPDATE audit_batches SET summary = X'00' WHERE first_seq = ?1",
        [first],
    )
    .unwrap();
    reads_and_verify_fail(&f, &log, "has a malformed summary").await;
    close(log);
}

/// Many records in one second (event times have a second's resolution, and a busy server
/// writes tens of thousands a second) lie in many runs with the same time range. A lookup for
/// the newest of them reads only the runs it needs, and pages through them in order: here the
/// first run's JSON is garbled, and the newest records and every page that does not reach the
/// first run still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_second_is_read_from_its_newest_runs() {
    let f = Fixture::new();
    let mut prev = tresor_kms::audit_log::GENESIS_HASH;
    for batch in 0..4u64 {
        let log = f.open(MIN_CAPACITY);
        let records = chained(&mut prev, batch * 5 + 1..=batch * 5 + 5, |_| T0);
        let head = Signed::sign(
            SignedKind::Head,
            &f.signer,
            "main",
            batch * 5 + 5,
            prev,
            T0 * 1000,
        );
        log.append(records, &head, None).await.unwrap();
        close(log);
    }
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let runs: Vec<(i64, i64)> = c
        .prepare("SELECT first_seq, last_seq FROM audit_batches ORDER BY first_seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs, vec![(1, 5), (6, 10), (11, 15), (16, 20)]);
    for seq in 1..=5 {
        garble_record(&f.index, seq);
    }
    let log = f.open(MIN_CAPACITY);
    let mut q = AuditQuery {
        limit: 7,
        ..Default::default()
    };
    let seqs = |v: Vec<AuditRecord>| v.iter().map(|r| r.seq).collect::<Vec<_>>();
    let page = log.lookup(&q).await.unwrap();
    assert_eq!(seqs(page.clone()), (14..=20).rev().collect::<Vec<_>>());
    q.before = Some((T0 * 1000, "main".into(), 14));
    let page = log.lookup(&q).await.unwrap();
    assert_eq!(seqs(page), (7..=13).rev().collect::<Vec<_>>());
    q.before = Some((T0 * 1000, "main".into(), 7));
    let e = log.lookup(&q).await.unwrap_err();
    assert!(e.to_string().contains("is not a record"), "{e}");
    close(log);
}

/// Lookups pass runs over by their time range, their seq range and each record's event time in
/// the record list, so an edit to any of them that would hide records from lookups is found by
/// reading the run: a record outside its run's edited time range, or whose listed time is not
/// its own, comes back without query columns for `verify` to report, and a seq range that does
/// not match the record list is a corrupt index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_to_what_lookups_pass_runs_over_by_are_reported() {
    let f = Fixture::new();
    f.write(MIN_CAPACITY, 1..=10, Callers::InOrder).await;
    f.write(MIN_CAPACITY, 11..=20, Callers::InOrder).await;
    let c = rusqlite::Connection::open(&f.index).unwrap();
    let (first, last) = first_run(&c);
    let log = f.open(MIN_CAPACITY);
    let mismatched = |seqs: std::ops::RangeInclusive<i64>| {
        seqs.map(|s| format!("record {s}'s query columns do not match its content"))
            .collect::<Vec<_>>()
    };
    let edits = [
        // The run ends a second earlier: its last record is outside it.
        (
            "UPDATE audit_batches SET max_time = max_time - 1000 WHERE first_seq = ?1",
            last..=last,
        ),
        // The first record's listed event time (bytes 5..12 of its entry) moved.
        (
            "UPDATE audit_batches SET entries = CAST(substr(entries, 1, 4) || X'0000000000000000'
                 || substr(entries, 13) AS BLOB) WHERE first_seq = ?1",
            first..=first,
        ),
    ];
    let (max_time, entries): (i64, Vec<u8>) = c
        .query_row(
            "SELECT max_time, entries FROM audit_batches WHERE first_seq = ?1",
            [first],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    for (edit, expect) in edits {
        c.execute(edit, [first]).unwrap();
        let report = verify(&*log, &f.signer.public_key()).await.unwrap();
        assert_eq!(report.chains[0].problems, mismatched(expect), "{edit}");
        c.execute(
            "UPDATE audit_batches SET max_time = ?1, entries = ?2 WHERE first_seq = ?3",
            rusqlite::params![max_time, entries, first],
        )
        .unwrap();
        let report = verify(&*log, &f.signer.public_key()).await.unwrap();
        assert!(report.ok, "{report:?}");
    }
    c.execute(
        "UPDATE audit_batches SET last_seq = last_seq - 1 WHERE first_seq = ?1",
        [first],
    )
    .unwrap();
    reads_and_verify_fail(&f, &log, "holds more records than its last seq says").await;
    close(log);
}
