//! The embedded audit log's commit path: a journal ring in front of the SQLite index.
//!
//! A group commit is acknowledged once it is **one frame in `audit.journal`, written and
//! `fdatasync`ed** — one write into blocks that already exist (after the journal's first lap), so
//! the sync flushes data and no file-system metadata. A thread then copies the frames' records into the index
//! every query reads in large transactions — their JSON appended to the record files
//! (`audit_records`), their query columns into `audit.db` — each of which also records how far
//! the journal has been copied. Nothing else is on the commit path: no B-tree inserts, no WAL frames, no
//! checkpoints.
//!
//! - **Ring.** The journal is a file of `capacity` bytes (grown in steps, zero-filled, on its
//!   first lap) written as a ring, with direct I/O (`O_DIRECT`) where the file system allows it:
//!   a commit writes its own blocks and no more (through the page cache, a small write into a
//!   large folio made the sync write the whole folio — a mebibyte per commit on ext4 with large
//!   folios). Frames start on [`BLOCK`] boundaries and are zero-padded to the next one. A
//!   frame's absolute position `pos` (it only grows) is stored in its header; its place in the
//!   file is `pos % capacity`. A frame never wraps: one that would not fit before the end starts
//!   at the next lap. The writer never overwrites a byte the index
//!   has not durably copied: it waits for the indexer instead (backpressure).
//! - **Frames.** `magic ‖ payload length ‖ pos ‖ CRC-32 of (header, payload)`, then the payload:
//!   the batch's records (chain, seq, previous hash, hash, JSON), its signed head and digest. A
//!   frame is valid only if its magic, position and checksum match, so the end of the journal is
//!   the first invalid frame: a torn write (never acknowledged) or a frame of an earlier lap.
//! - **Recovery.** Opening the log replays every valid frame after the index's recorded position
//!   into the index (query columns re-derived from each record's JSON), then writing resumes at
//!   the end. The hash chain and signed heads are unchanged: `tresor audit verify` checks the
//!   index exactly as before.
//! - **Reads wait.** Every query first waits until the index holds everything acknowledged so far
//!   (usually one indexer pass, milliseconds). A second process (the `tresor audit` commands
//!   beside a running server) cannot take the journal's lock; it finds the journal's end and
//!   waits until the server's indexer has copied that far.
//! - **Oversized batches** (over a quarter of the ring) skip the journal: once the indexer has
//!   caught up, they are committed to the index directly, as before the journal existed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tresor_kms::audit_log::{AuditBackend, AuditIndex, AuditQuery, AuditRecord, Signed};
use tresor_kms::store::StoreError;

use crate::sqlite_audit::{IndexBatch, SqliteAuditLog, on_dedicated_thread};

/// The journal's ring size for a new audit log (recorded in the index; an existing log keeps its
/// own).
pub const DEFAULT_CAPACITY: u64 = 64 << 20;
/// The smallest ring accepted (tests use small rings to wrap quickly).
pub const MIN_CAPACITY: u64 = 64 << 10;
/// How much the file grows at a time on its first lap.
const GROW_STEP: u64 = 4 << 20;
const MAGIC: u32 = 0x5452_4a31; // "TRJ1"
const HEADER: u64 = 24;
/// Frames start on, and are padded to, this boundary (direct I/O's alignment, in the file and in
/// memory).
pub const BLOCK: u64 = 4096;
/// The indexer copies at most this many records per transaction.
const INDEX_MAX_RECORDS: usize = 8192;
/// After a copy, the indexer lets this much time pass before the next (unless a lot waits), so
/// its transactions are large: the copy's cost is per transaction as much as per record.
const INDEX_INTERVAL: Duration = Duration::from_millis(5);
/// How long a query or an append waits for the indexer before failing.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

fn io(context: &str, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("audit journal: {context}: {e}"))
}

/// `n` rounded up to a multiple of [`BLOCK`].
fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// Where a frame of `len` payload bytes goes when the writer is at `pos` (a block boundary):
/// `pos` itself, or the start of the next lap if it would not fit before the end of the ring.
fn place(pos: u64, len: u64, capacity: u64) -> u64 {
    let off = pos % capacity;
    if off + padded(HEADER + len) <= capacity {
        pos
    } else {
        pos - off + capacity
    }
}

// ---------------------------------------------------------------------------------------------
// Frame encoding

fn put_str16(b: &mut Vec<u8>, s: &str) -> Result<(), StoreError> {
    let n = u16::try_from(s.len())
        .map_err(|_| StoreError::Internal("audit chain name too long".into()))?;
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_signed(b: &mut Vec<u8>, s: &Signed) -> Result<(), StoreError> {
    put_str16(b, &s.chain)?;
    b.extend_from_slice(&s.seq.to_be_bytes());
    b.extend_from_slice(&s.hash);
    b.extend_from_slice(&s.time_millis.to_be_bytes());
    b.extend_from_slice(&s.signature);
    Ok(())
}

/// Appends one frame (header and payload) for a batch at `pos` to `b`.
fn encode_frame(
    b: &mut Vec<u8>,
    pos: u64,
    records: &[AuditRecord],
    head: &Signed,
    digest: Option<&Signed>,
) -> Result<(), StoreError> {
    let start = b.len();
    b.extend_from_slice(&[0u8; HEADER as usize]);
    b.push(u8::from(digest.is_some()));
    let n = u32::try_from(records.len())
        .map_err(|_| StoreError::Internal("audit batch too large".into()))?;
    b.extend_from_slice(&n.to_be_bytes());
    for r in records {
        put_str16(b, &r.chain)?;
        b.extend_from_slice(&r.seq.to_be_bytes());
        b.extend_from_slice(&r.prev_hash);
        b.extend_from_slice(&r.hash);
        let n = u32::try_from(r.json.len())
            .map_err(|_| StoreError::Internal("audit record too large".into()))?;
        b.extend_from_slice(&n.to_be_bytes());
        b.extend_from_slice(r.json.as_bytes());
    }
    put_signed(b, head)?;
    if let Some(d) = digest {
        put_signed(b, d)?;
    }
    let len = u32::try_from(b.len() - start - HEADER as usize)
        .map_err(|_| StoreError::Internal("audit batch too large".into()))?;
    let mut header = [0u8; HEADER as usize];
    header[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    header[4..8].copy_from_slice(&len.to_be_bytes());
    header[8..16].copy_from_slice(&pos.to_be_bytes());
    let crc = frame_crc(&header[0..16], &b[start + HEADER as usize..]);
    header[16..20].copy_from_slice(&crc.to_be_bytes());
    b[start..start + HEADER as usize].copy_from_slice(&header);
    Ok(())
}

fn frame_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(payload);
    h.finalize()
}

/// A bounds-checked reader over a frame's payload.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn arr<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn u16(&mut self) -> Option<u16> {
        self.arr::<2>().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.arr::<4>().map(u32::from_be_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.arr::<8>().map(u64::from_be_bytes)
    }
    fn str(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    /// A string written by `put_str16` (u16 length, then the bytes).
    fn str16(&mut self) -> Option<String> {
        let n = usize::from(self.u16()?);
        self.str(n)
    }
    fn signed(&mut self) -> Option<Signed> {
        Some(Signed {
            chain: self.str16()?,
            seq: self.u64()?,
            hash: self.arr()?,
            time_millis: i64::from_be_bytes(self.arr()?),
            signature: self.arr()?,
        })
    }
}

/// A frame's batch, with every record's query columns re-derived from its JSON.
fn decode_payload(p: &[u8]) -> Result<IndexBatch, String> {
    let bad = || "malformed audit journal frame".to_owned();
    let mut c = Cursor { b: p };
    let has_digest = c.take(1).ok_or_else(bad)? != [0];
    let n = c.u32().ok_or_else(bad)?;
    let mut records = Vec::new();
    for _ in 0..n {
        let chain = c.str16().ok_or_else(bad)?;
        let seq = c.u64().ok_or_else(bad)?;
        let prev_hash = c.arr().ok_or_else(bad)?;
        let hash = c.arr().ok_or_else(bad)?;
        let json_len = usize::try_from(c.u32().ok_or_else(bad)?).map_err(|_| bad())?;
        let json = c.str(json_len).ok_or_else(bad)?;
        let index = AuditIndex::derive(&json)?;
        records.push(AuditRecord {
            chain,
            seq,
            prev_hash,
            hash,
            json,
            index,
        });
    }
    let head = c.signed().ok_or_else(bad)?;
    let digest = if has_digest {
        Some(c.signed().ok_or_else(bad)?)
    } else {
        None
    };
    if !c.b.is_empty() {
        return Err(bad());
    }
    Ok(IndexBatch {
        records,
        head,
        digest,
    })
}

/// Reads the frame at `pos` if there is a valid one: its payload and the position after it.
fn read_frame(file: &File, pos: u64, capacity: u64) -> Option<(Vec<u8>, u64)> {
    let off = pos % capacity;
    if off + HEADER > capacity {
        return None;
    }
    let mut header = [0u8; HEADER as usize];
    file.read_exact_at(&mut header, off).ok()?;
    let magic = u32::from_be_bytes(header[0..4].try_into().ok()?);
    let len = u64::from(u32::from_be_bytes(header[4..8].try_into().ok()?));
    let at = u64::from_be_bytes(header[8..16].try_into().ok()?);
    let crc = u32::from_be_bytes(header[16..20].try_into().ok()?);
    if magic != MAGIC || at != pos || off + HEADER + len > capacity {
        return None;
    }
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut payload, off + HEADER).ok()?;
    (frame_crc(&header[0..16], &payload) == crc).then_some((payload, pos + padded(HEADER + len)))
}

/// The valid frames from `pos` on, in order, handed to `f` with the position after each; returns
/// the journal's end (where the next frame goes).
fn scan(
    file: &File,
    mut pos: u64,
    capacity: u64,
    mut f: impl FnMut(Vec<u8>, u64) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    loop {
        let found = read_frame(file, pos, capacity).or_else(|| {
            // A frame that did not fit before the end of the ring starts the next lap.
            let off = pos % capacity;
            (off != 0)
                .then(|| read_frame(file, pos - off + capacity, capacity))
                .flatten()
        });
        match found {
            Some((payload, next)) => {
                f(payload, next)?;
                pos = next;
            }
            None => return Ok(pos),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The log

/// How far the journal is durable and how far the index has copied it.
struct Progress {
    /// End of the last acknowledged frame (absolute position).
    durable: AtomicU64,
    indexed: Mutex<Indexed>,
    changed: Condvar,
    watch: tokio::sync::watch::Sender<u64>,
    /// The log is closing: an indexer that cannot copy gives up (the journal keeps the batches).
    stopping: std::sync::atomic::AtomicBool,
    /// Someone waits for the index (an append that needs ring space or the index current, or the
    /// log closing): the indexer copies what it has now instead of gathering more.
    hurry: std::sync::atomic::AtomicBool,
    /// The indexer thread, woken when someone waits for it.
    indexer: std::sync::OnceLock<std::thread::Thread>,
}

struct Indexed {
    pos: u64,
    error: Option<String>,
}

impl Progress {
    /// A journal durable and indexed through `pos`.
    fn new(pos: u64) -> Arc<Progress> {
        let (watch, _) = tokio::sync::watch::channel(pos);
        Arc::new(Progress {
            durable: AtomicU64::new(pos),
            indexed: Mutex::new(Indexed { pos, error: None }),
            changed: Condvar::new(),
            watch,
            stopping: Default::default(),
            hurry: Default::default(),
            indexer: std::sync::OnceLock::new(),
        })
    }

    /// Makes the indexer copy what it has now (see [`run_indexer`]).
    fn hurry_indexer(&self) {
        self.hurry.store(true, Ordering::Release);
        if let Some(t) = self.indexer.get() {
            t.unpark();
        }
    }

    fn set_indexed(&self, pos: u64, error: Option<String>) {
        let Ok(mut i) = self.indexed.lock() else {
            return;
        };
        if error.is_none() {
            i.pos = i.pos.max(pos);
        }
        i.error = error;
        let indexed = i.pos;
        drop(i);
        self.changed.notify_all();
        self.watch.send_replace(indexed);
    }

    fn indexed(&self) -> (u64, Option<String>) {
        match self.indexed.lock() {
            Ok(i) => (i.pos, i.error.clone()),
            Err(_) => (0, Some("indexer state poisoned".into())),
        }
    }

    /// Blocks until the index has copied through `pos`.
    fn wait_blocking(&self, pos: u64) -> Result<(), StoreError> {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut i = self
            .indexed
            .lock()
            .map_err(|_| StoreError::Internal("indexer state poisoned".into()))?;
        if i.pos < pos {
            self.hurry_indexer();
        }
        while i.pos < pos {
            let now = Instant::now();
            if now >= deadline {
                return Err(behind(i.error.as_deref()));
            }
            i = self
                .changed
                .wait_timeout(i, deadline - now)
                .map_err(|_| StoreError::Internal("indexer state poisoned".into()))?
                .0;
        }
        Ok(())
    }
}

fn behind(error: Option<&str>) -> StoreError {
    StoreError::Unavailable(format!(
        "the audit index has not caught up with the audit journal{}",
        error.map(|e| format!(": {e}")).unwrap_or_default()
    ))
}

/// The writing side: the file, where the next frame goes, and reusable buffers.
struct Writer {
    /// Opened for direct I/O when `direct`.
    file: File,
    direct: bool,
    path: PathBuf,
    /// The handle that holds the journal's lock (and reads it).
    _lock: File,
    capacity: u64,
    /// Bytes of the file that exist (zero-filled or written): it grows until `capacity`.
    len: u64,
    pos: u64,
    buf: Vec<u8>,
    /// The frame, padded, at a [`BLOCK`]-aligned address inside (for direct I/O).
    aligned: Vec<u8>,
    /// Taken when the log closes, which ends the indexer.
    to_indexer: Option<mpsc::Sender<(IndexBatch, u64)>>,
}

/// The embedded audit log: journal ring + SQLite index (see the module documentation).
pub struct JournaledAuditLog {
    index: SqliteAuditLog,
    /// `None` for a reader beside a running server (which holds the journal).
    writer: Option<Mutex<Writer>>,
    progress: Arc<Progress>,
    indexer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for JournaledAuditLog {
    /// Lets the indexer finish what it was given, before the journal's lock is released (a new
    /// owner would replay the same frames): the log is closed only once its index is current.
    fn drop(&mut self) {
        self.progress.stopping.store(true, Ordering::Release);
        if let Some(w) = &self.writer
            && let Ok(mut w) = w.lock()
        {
            w.to_indexer = None;
        }
        self.progress.hurry_indexer();
        if let Some(h) = self.indexer.take() {
            let _ = h.join();
        }
    }
}

/// How a journal is made and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalOptions {
    /// The ring size a new journal gets (an existing one keeps its own).
    pub capacity: u64,
    /// Write with direct I/O where the file system allows it (otherwise through the page cache,
    /// zero-filled in block-sized writes).
    pub direct_io: bool,
    /// The size at which the index starts a new record file (`audit_records`).
    pub record_segment_bytes: u64,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            capacity: DEFAULT_CAPACITY,
            direct_io: true,
            record_segment_bytes: crate::audit_records::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// Whether the journal must be ours (a server) or may be another process's (a reading command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Take the journal's lock (waiting a few seconds for it) or fail.
    Exclusive,
    /// Take the lock if it is free; otherwise read the index once it holds the journal's end.
    Shared,
}

impl JournaledAuditLog {
    /// Opens `<dir>/audit.db` with its journal `<dir>/audit.journal`, replaying the journal.
    pub fn open(index_path: &Path, access: Access) -> Result<JournaledAuditLog, StoreError> {
        Self::open_with_options(index_path, access, JournalOptions::default())
    }

    /// Whether the journal is written with direct I/O (`None` for a reader beside the owner).
    pub fn direct_io(&self) -> Option<bool> {
        let w = self.writer.as_ref()?.lock().ok()?;
        Some(w.direct)
    }

    /// [`Self::open`] with [`JournalOptions`].
    pub fn open_with_options(
        index_path: &Path,
        access: Access,
        options: JournalOptions,
    ) -> Result<JournaledAuditLog, StoreError> {
        let index = SqliteAuditLog::open_with_segments(index_path, options.record_segment_bytes)?;
        let journal_path = journal_path(index_path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&journal_path)
            .map_err(|e| io(&journal_path.display().to_string(), e))?;
        // Read and locked through `file`; written through a direct-I/O handle where possible.
        if !lock(&file, access)? {
            return Self::beside_owner(index, &file);
        }
        index.recover_records()?;
        let (pos, capacity) = match index.journal_position()? {
            Some((pos, capacity)) => (pos, capacity),
            None => (0, padded(options.capacity.max(MIN_CAPACITY))),
        };
        if capacity % BLOCK != 0 || pos % BLOCK != 0 {
            return Err(StoreError::Corrupt(format!(
                "audit journal position {pos} or ring size {capacity} is not a multiple of {BLOCK}"
            )));
        }
        let len = file.metadata().map_err(|e| io("size", e))?.len();
        // Replay what the index does not have yet, in transactions of bounded size.
        let mut pending: Vec<IndexBatch> = Vec::new();
        let mut records = 0usize;
        let replayed_from = pos;
        let end = scan(&file, pos, capacity, |payload, next| {
            let batch = decode_payload(&payload).map_err(StoreError::Corrupt)?;
            records += batch.records.len();
            pending.push(batch);
            if records >= INDEX_MAX_RECORDS {
                index.index_blocking(&pending, next, capacity)?;
                pending.clear();
                records = 0;
            }
            Ok(())
        })?;
        if !pending.is_empty() || replayed_from == 0 {
            index.index_blocking(&pending, end, capacity)?;
        }
        if end != replayed_from {
            tracing::info!(
                from = replayed_from,
                to = end,
                "replayed the audit journal into the index"
            );
        }
        let progress = Progress::new(end);
        let (to_indexer, from_writer) = mpsc::channel();
        let (idx, prog) = (index.clone(), progress.clone());
        let indexer = std::thread::Builder::new()
            .name("tresor-audit-index".into())
            .spawn(move || run_indexer(from_writer, idx, prog, capacity))
            .map_err(|e| StoreError::Internal(format!("audit index thread: {e}")))?;
        let (writer_file, direct) = open_writer(&journal_path, options.direct_io)?;
        let w = Writer {
            file: writer_file,
            direct,
            path: journal_path,
            _lock: file,
            capacity,
            len: (len / BLOCK * BLOCK).min(capacity),
            pos: end,
            buf: Vec::new(),
            aligned: Vec::new(),
            to_indexer: Some(to_indexer),
        };
        Ok(JournaledAuditLog {
            index,
            writer: Some(Mutex::new(w)),
            progress,
            indexer: Some(indexer),
        })
    }

    /// A reader beside the process that holds the journal: waits until that process's index
    /// holds everything its journal held when we looked.
    fn beside_owner(index: SqliteAuditLog, file: &File) -> Result<JournaledAuditLog, StoreError> {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut target = None;
        loop {
            let (pos, capacity) = index.journal_position()?.unwrap_or((0, DEFAULT_CAPACITY));
            // The journal's end when we first looked (scanned once, not on every poll).
            let end = match target {
                Some(end) => end,
                None => *target.insert(scan(file, pos, capacity, |_, _| Ok(()))?),
            };
            if pos >= end {
                return Ok(JournaledAuditLog {
                    index,
                    writer: None,
                    progress: Progress::new(pos),
                    indexer: None,
                });
            }
            if Instant::now() >= deadline {
                return Err(behind(None));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until the index holds every acknowledged batch.
    async fn caught_up(&self) -> Result<(), StoreError> {
        let target = self.progress.durable.load(Ordering::Acquire);
        let (pos, error) = self.progress.indexed();
        if pos >= target {
            return Ok(());
        }
        let mut rx = self.progress.watch.subscribe();
        match tokio::time::timeout(WAIT_LIMIT, rx.wait_for(|p| *p >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(behind(error.as_deref())),
        }
    }

    fn append_blocking(
        &self,
        records: Vec<AuditRecord>,
        head: &Signed,
        digest: Option<&Signed>,
    ) -> Result<(), StoreError> {
        let writer = self.writer.as_ref().ok_or_else(|| {
            StoreError::Unavailable(
                "the audit journal belongs to another process (a running server)".into(),
            )
        })?;
        let mut w = writer
            .lock()
            .map_err(|_| StoreError::Internal("audit journal lock poisoned".into()))?;
        let w = &mut *w;
        w.buf.clear();
        // Encoded at the current position first; re-encoded if the frame moves to the next lap.
        encode_frame(&mut w.buf, w.pos, &records, head, digest)?;
        let len = w.buf.len() as u64 - HEADER;
        if padded(HEADER + len) > w.capacity / 4 {
            // Too large for the ring: straight into the index once it has everything before.
            self.progress
                .wait_blocking(self.progress.durable.load(Ordering::Acquire))?;
            return self.index.append_blocking(&records, head, digest);
        }
        let at = place(w.pos, len, w.capacity);
        if at != w.pos {
            w.buf.clear();
            encode_frame(&mut w.buf, at, &records, head, digest)?;
        }
        let end = at + padded(HEADER + len);
        // Everything this frame overwrites (the previous lap) must be in the index, durably.
        self.progress
            .wait_blocking(end.saturating_sub(w.capacity))?;
        let off = at % w.capacity;
        if off + (end - at) > w.len {
            grow(w, off + (end - at))?;
        }
        write_padded(w, off, end - at)?;
        // On failure the position stays: the next batch overwrites this frame and syncs again.
        w.file.sync_data().map_err(|e| io("sync", e))?;
        w.pos = end;
        self.progress.durable.store(end, Ordering::Release);
        let batch = IndexBatch {
            records,
            head: head.clone(),
            digest: digest.cloned(),
        };
        w.to_indexer
            .as_ref()
            .and_then(|tx| tx.send((batch, end)).ok())
            .ok_or_else(|| StoreError::Internal("the audit indexer stopped".into()))
    }
}

/// `<index>.journal` beside the index: `audit.db` → `audit.journal`.
pub fn journal_path(index_path: &Path) -> PathBuf {
    index_path.with_extension("journal")
}

/// Takes the journal's lock: `Ok(false)` if another process holds it and `access` allows that.
fn lock(file: &File, access: Access) -> Result<bool, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {
                if access == Access::Shared {
                    return Ok(false);
                }
                if Instant::now() >= deadline {
                    return Err(StoreError::Unavailable(
                        "the audit journal is in use by another tresor process on this data directory"
                            .into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
    }
}

/// Opens the journal for writing, with direct I/O (`O_DIRECT`) if `direct`: `(handle, true)`;
/// where the file system refuses it, or without `direct`, an ordinary handle: `(handle, false)`.
fn open_writer(path: &Path, direct: bool) -> Result<(File, bool), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let plain = || {
        OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io("open", e))
    };
    if !direct {
        return Ok((plain()?, false));
    }
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(f) => Ok((f, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::info!(
                "the audit journal's file system has no direct I/O; writing through the page cache"
            );
            Ok((plain()?, false))
        }
        Err(e) => Err(io("open", e)),
    }
}

/// The [`BLOCK`]-aligned window of `v` of `n` bytes (`v` is resized so that one exists).
fn aligned_window(v: &mut Vec<u8>, n: usize) -> &mut [u8] {
    let block = BLOCK as usize;
    v.resize(n + block, 0);
    let shift = (block - (v.as_ptr() as usize) % block) % block;
    &mut v[shift..shift + n]
}

/// Writes the encoded frame in `w.buf`, zero-padded to `n` bytes, at `off` (direct I/O needs
/// the memory, the offset and the length aligned; the frame is copied into an aligned buffer).
fn write_padded(w: &mut Writer, off: u64, n: u64) -> Result<(), StoreError> {
    let n = usize::try_from(n).map_err(|e| StoreError::Internal(e.to_string()))?;
    let window = aligned_window(&mut w.aligned, n);
    let (frame, pad) = window.split_at_mut(w.buf.len().min(n));
    frame.copy_from_slice(&w.buf[..frame.len()]);
    pad.fill(0);
    match w.file.write_all_at(window, off) {
        Ok(()) => Ok(()),
        // A file system that opened the file for direct I/O but refuses the write.
        Err(e) if w.direct && e.raw_os_error() == Some(libc::EINVAL) => {
            tracing::info!(
                "the audit journal's direct write was refused; writing through the page cache"
            );
            (w.file, w.direct) = open_writer(&w.path, false)?;
            let window = aligned_window(&mut w.aligned, n);
            w.file.write_all_at(window, off).map_err(|e| io("write", e))
        }
        Err(e) => Err(io("write", e)),
    }
}

/// Zero-fills the file up to at least `need` bytes (in steps, at most `capacity`), so frames are
/// written into blocks that exist and their syncs carry no allocation. Through the page cache the
/// zeros go in block-sized writes, so the cache holds block-sized folios (see the module docs).
fn grow(w: &mut Writer, need: u64) -> Result<(), StoreError> {
    let target = need
        .div_ceil(GROW_STEP)
        .saturating_mul(GROW_STEP)
        .min(w.capacity);
    let chunk = if w.direct { 1 << 20 } else { BLOCK as usize };
    // A new vector: its aligned window is zeros already.
    let mut zeros = Vec::new();
    let zeros = aligned_window(&mut zeros, chunk);
    let mut at = w.len;
    while at < target {
        let n = (target - at).min(chunk as u64);
        let part = zeros
            .get(..usize::try_from(n).unwrap_or(chunk))
            .ok_or_else(|| StoreError::Internal("audit journal growth step".into()))?;
        w.file.write_all_at(part, at).map_err(|e| io("grow", e))?;
        at += n;
    }
    w.file.sync_all().map_err(|e| io("grow", e))?;
    w.len = target;
    Ok(())
}

/// The indexer thread: copies acknowledged batches into the index, many per transaction.
fn run_indexer(
    rx: mpsc::Receiver<(IndexBatch, u64)>,
    index: SqliteAuditLog,
    progress: Arc<Progress>,
    capacity: u64,
) {
    let _ = progress.indexer.set(std::thread::current());
    let mut batches: Vec<IndexBatch> = Vec::new();
    while let Ok((first, mut end)) = rx.recv() {
        let started = Instant::now();
        let mut records = first.records.len();
        batches.push(first);
        // Let a few milliseconds of batches gather, asleep: waiting on the channel instead woke
        // this thread for every group commit (one futex wake for the writer and a context switch
        // here, per commit). Someone who waits for the index wakes it early (`hurry_indexer`).
        loop {
            // Read before draining: the batches a waiter needs were sent before it hurried us,
            // so a drain after seeing its hurry takes them.
            let hurried = progress.hurry.swap(false, Ordering::AcqRel);
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok((b, e)) => {
                        records += b.records.len();
                        batches.push(b);
                        end = e;
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let left = INDEX_INTERVAL.saturating_sub(started.elapsed());
            if closed || hurried || records >= INDEX_MAX_RECORDS || left.is_zero() {
                break;
            }
            std::thread::park_timeout(left);
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match index.index_blocking(&batches, end, capacity) {
                Ok(()) => {
                    progress.set_indexed(end, None);
                    break;
                }
                Err(e) => {
                    // The batches are safe in the journal; keep trying (queries and, once the
                    // ring is full, appends wait and then fail with this error) until the log
                    // closes: then the next owner replays them.
                    if progress.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    tracing::warn!(error = %e, "copying the audit journal into the index failed; retrying");
                    progress.set_indexed(end, Some(e.to_string()));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        batches.clear();
    }
}

#[async_trait]
impl AuditBackend for JournaledAuditLog {
    async fn head(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        self.caught_up().await?;
        self.index.head(chain).await
    }

    async fn append(
        &self,
        records: Vec<AuditRecord>,
        head: &Signed,
        digest: Option<&Signed>,
    ) -> Result<(), StoreError> {
        if on_dedicated_thread() {
            return self.append_blocking(records, head, digest);
        }
        tokio::task::block_in_place(|| self.append_blocking(records, head, digest))
    }

    async fn chains(&self) -> Result<Vec<String>, StoreError> {
        self.caught_up().await?;
        self.index.chains().await
    }

    async fn anchor(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        self.caught_up().await?;
        self.index.anchor(chain).await
    }

    async fn digests(&self, chain: &str) -> Result<Vec<Signed>, StoreError> {
        self.caught_up().await?;
        self.index.digests(chain).await
    }

    async fn records(
        &self,
        chain: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.caught_up().await?;
        self.index.records(chain, after_seq, limit).await
    }

    async fn lookup(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        self.caught_up().await?;
        self.index.lookup(query).await
    }

    async fn prune(
        &self,
        chain: &str,
        through_seq: u64,
        anchor: &Signed,
    ) -> Result<u64, StoreError> {
        self.caught_up().await?;
        self.index.prune(chain, through_seq, anchor).await
    }

    async fn last_seq_before(
        &self,
        chain: &str,
        before_millis: i64,
    ) -> Result<Option<u64>, StoreError> {
        self.caught_up().await?;
        self.index.last_seq_before(chain, before_millis).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_that_would_not_fit_starts_the_next_lap() {
        let cap = 4 * BLOCK;
        assert_eq!(place(0, 100, cap), 0);
        assert_eq!(place(3 * BLOCK, BLOCK - HEADER, cap), 3 * BLOCK);
        assert_eq!(place(3 * BLOCK, BLOCK - HEADER + 1, cap), cap);
        assert_eq!(place(cap + 2 * BLOCK, 2 * BLOCK, cap), 2 * cap);
        assert_eq!(padded(1), BLOCK);
        assert_eq!(padded(BLOCK), BLOCK);
    }

    #[test]
    fn aligned_windows_are_aligned() {
        let mut v = Vec::new();
        for n in [1usize, 4096, 10_000, 100] {
            let w = aligned_window(&mut v, n);
            assert_eq!(w.len(), n);
            assert_eq!(w.as_ptr() as usize % BLOCK as usize, 0);
        }
    }
}
