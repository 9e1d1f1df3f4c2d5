//! Where the embedded audit index keeps its records' JSON: append-only segment files
//! (`audit.records/<start offset>`), which the `audit.db` rows point into (offset and length).
//!
//! The journal's indexer used to copy every record's ~1.5 KB of JSON into a SQLite row: written
//! once into the WAL and again by the checkpoint, with B-tree work on every page. Here the JSON
//! is appended once, sequentially, through the page cache, and the row keeps only its query
//! columns and `(json_at, json_len)`.
//!
//! - **Offsets** are absolute and only grow. A segment is named by the offset of its first byte
//!   (20 decimal digits) and holds the bytes up to the next segment's start; a new segment starts
//!   once the current one has reached its size, between two records (a record is never split).
//! - **Durability.** The indexer writes a transaction's JSON, syncs the segment (and the
//!   directory when it made a segment), and only then commits the rows that point into it,
//!   together with the new end (`audit_journal.records_end`). A crash in between leaves bytes
//!   past the recorded end, which the next owner cuts off ([`RecordFiles::recover`]) before the
//!   journal replays the same batches. A transaction that fails is retried over the same
//!   bytes (a segment its failed attempt started is removed first).
//! - **Tampering** with a segment changes a record's JSON, which its hash covers: `tresor audit
//!   verify` reports it as it reports an edited row.
//! - **Retention.** Pruning deletes the rows, then every segment that lies wholly before the
//!   oldest record still kept. The last segment is never deleted (its owner writes it).
//! - Rows written before this existed (and batches too large for the journal, which go to the
//!   index directly) keep their JSON in the row; a row with non-empty `json` is read from there.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tresor_kms::store::StoreError;

/// The size at which a new segment starts (the record that crosses it ends the segment).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// The largest write the appender gathers (a larger record is written alone).
const CHUNK: usize = 256 << 10;
/// Read handles kept open at most (a verify or an export walks the segments in order).
const OPEN_READERS: usize = 16;

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("audit records {what} {}: {e}", path.display()))
}

/// `audit.db` → `audit.records` (a directory) beside it.
pub fn records_dir(index_path: &Path) -> PathBuf {
    index_path.with_extension("records")
}

/// The segment files of one audit index.
pub(crate) struct RecordFiles {
    dir: PathBuf,
    segment_bytes: u64,
    /// Segment starts known to this process, with a read handle once one was needed.
    readers: Mutex<BTreeMap<u64, Option<Arc<File>>>>,
    writer: Mutex<Writer>,
}

#[derive(Default)]
struct Writer {
    /// Where the next bytes go (the committed end once [`RecordFiles::recover`] ran).
    end: u64,
    /// The segment being written: its start and a write handle.
    current: Option<(u64, File)>,
    /// Set by [`RecordFiles::recover`]: only the journal's owner writes.
    recovered: bool,
    /// Gathers the pieces of one write.
    buf: Vec<u8>,
}

fn segment_name(start: u64) -> String {
    format!("{start:020}")
}

fn list(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", dir, e)),
    };
    let mut starts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io("list", dir, e))?;
        let name = entry.file_name();
        // Anything else in the directory is not ours to read.
        if let Some(start) = name
            .to_str()
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        {
            starts.push(start);
        }
    }
    starts.sort_unstable();
    Ok(starts)
}

/// The record files of the audit index at `index_path`: each segment's first offset and path, in
/// order (for tools and tests that read or check them).
pub fn segments(index_path: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let dir = records_dir(index_path);
    Ok(list(&dir)?
        .into_iter()
        .map(|start| (start, dir.join(segment_name(start))))
        .collect())
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync", dir, e))
}

impl RecordFiles {
    pub(crate) fn open(dir: PathBuf, segment_bytes: u64) -> Result<RecordFiles, StoreError> {
        let readers = list(&dir)?.into_iter().map(|s| (s, None)).collect();
        Ok(RecordFiles {
            dir,
            segment_bytes: segment_bytes.max(1),
            readers: Mutex::new(readers),
            writer: Mutex::new(Writer::default()),
        })
    }

    fn path(&self, start: u64) -> PathBuf {
        self.dir.join(segment_name(start))
    }

    /// The owner's start: cuts off everything past `end` (bytes of a transaction that never
    /// committed) and resumes writing there.
    pub(crate) fn recover(&self, end: u64) -> Result<(), StoreError> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        self.cut_back(&mut w, end)?;
        w.recovered = true;
        Ok(())
    }

    /// Removes every byte at or past `end` (segments that start there, the tail of the one that
    /// holds it) and makes that segment the one written next.
    fn cut_back(&self, w: &mut Writer, end: u64) -> Result<(), StoreError> {
        let mut readers = self.readers.lock().map_err(|_| poisoned())?;
        let mut current = None;
        let mut removed = false;
        for start in list(&self.dir)? {
            if start >= end {
                // Made by a transaction that never committed.
                let path = self.path(start);
                std::fs::remove_file(&path).map_err(|e| io("remove", &path, e))?;
                readers.remove(&start);
                removed = true;
            } else {
                current = Some(start);
            }
        }
        w.current = match current {
            Some(start) => {
                let path = self.path(start);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| io("open", &path, e))?;
                let keep = end - start;
                let len = file.metadata().map_err(|e| io("size", &path, e))?.len();
                if len < keep {
                    return Err(StoreError::Corrupt(format!(
                        "audit records segment {} holds {len} bytes; the index refers to {keep}",
                        path.display()
                    )));
                }
                if len > keep {
                    file.set_len(keep).map_err(|e| io("truncate", &path, e))?;
                    file.sync_all().map_err(|e| io("sync", &path, e))?;
                }
                Some((start, file))
            }
            None => None,
        };
        if removed {
            sync_dir(&self.dir)?;
        }
        w.end = end;
        Ok(())
    }

    /// Appends `pieces` at the end, one after another, and makes them durable; returns the
    /// offset of the first. A new segment starts before a piece once the current one has
    /// reached its size (so segments are about that size whatever a transaction holds). The end
    /// moves only with [`Self::committed`], so a failed transaction's bytes are overwritten by
    /// the next.
    pub(crate) fn append<'a>(
        &self,
        pieces: impl Iterator<Item = &'a [u8]>,
    ) -> Result<u64, StoreError> {
        let mut w = self.writer.lock().map_err(|_| poisoned())?;
        if !w.recovered {
            return Err(StoreError::Internal(
                "the audit record files are written only by the journal's owner".into(),
            ));
        }
        let at = w.end;
        if w.current.as_ref().is_some_and(|(start, _)| *start > at) {
            // A failed transaction started a segment past the committed end.
            self.cut_back(&mut w, at)?;
        }
        self.append_pieces(&mut w, at, pieces)?;
        Ok(at)
    }

    fn append_pieces<'a>(
        &self,
        w: &mut Writer,
        at: u64,
        pieces: impl Iterator<Item = &'a [u8]>,
    ) -> Result<(), StoreError> {
        // Gathered into writes of up to CHUNK bytes in one reused buffer (a transaction can
        // hold megabytes of records; copying it whole would be memory held for nothing).
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        // Where `buf`'s first byte goes.
        let mut buf_at = at;
        for piece in pieces {
            let pos = buf_at + buf.len() as u64;
            let roll = match &w.current {
                Some((start, _)) => pos - start >= self.segment_bytes,
                None => true,
            };
            if roll {
                self.flush(w, &mut buf, &mut buf_at)?;
                if let Some((start, file)) = &w.current {
                    file.sync_data()
                        .map_err(|e| io("sync", &self.path(*start), e))?;
                }
                w.current = Some(self.create(pos)?);
            } else if !buf.is_empty() && buf.len() + piece.len() > CHUNK {
                self.flush(w, &mut buf, &mut buf_at)?;
            }
            buf.extend_from_slice(piece);
        }
        self.flush(w, &mut buf, &mut buf_at)?;
        buf.shrink_to(CHUNK);
        w.buf = buf;
        if let Some((start, file)) = &w.current {
            file.sync_data()
                .map_err(|e| io("sync", &self.path(*start), e))?;
        }
        Ok(())
    }

    /// Writes `buf` at `buf_at` into the current segment.
    fn flush(&self, w: &Writer, buf: &mut Vec<u8>, buf_at: &mut u64) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some((start, file)) = &w.current else {
            return Err(StoreError::Internal("no audit records segment".into()));
        };
        file.write_all_at(buf, *buf_at - start)
            .map_err(|e| io("write", &self.path(*start), e))?;
        *buf_at += buf.len() as u64;
        buf.clear();
        Ok(())
    }

    /// A new, empty segment starting at `start`, durably in the directory.
    fn create(&self, start: u64) -> Result<(u64, File), StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("create", &self.dir, e))?;
        let path = self.path(start);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| io("create", &path, e))?;
        sync_dir(&self.dir)?;
        self.readers
            .lock()
            .map_err(|_| poisoned())?
            .insert(start, None);
        Ok((start, file))
    }

    /// The transaction that points at `end`'s bytes committed.
    pub(crate) fn committed(&self, end: u64) -> Result<(), StoreError> {
        self.writer.lock().map_err(|_| poisoned())?.end = end;
        Ok(())
    }

    /// A record's JSON. `at` and `len` come from the index, which someone may have edited: the
    /// bytes must lie inside the segment before any memory is set aside for them.
    pub(crate) fn read(&self, at: u64, len: usize) -> Result<String, StoreError> {
        let mut refreshed = false;
        let (start, file) = loop {
            let (start, file) = self.reader(at, refreshed)?;
            let size = file
                .metadata()
                .map_err(|e| io("size", &self.path(start), e))?
                .len();
            if (at - start).saturating_add(len as u64) <= size {
                break (start, file);
            }
            if refreshed {
                return Err(StoreError::Corrupt(format!(
                    "audit record at {at} ({len} bytes) is missing from its segment"
                )));
            }
            // A segment this process has not seen yet (another process writes them).
            refreshed = true;
        };
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, at - start)
            .map_err(|e| io("read", &self.path(start), e))?;
        String::from_utf8(buf)
            .map_err(|_| StoreError::Corrupt(format!("audit record at {at} is not UTF-8 text")))
    }

    /// The segment holding `at` and a read handle to it.
    fn reader(&self, at: u64, refresh: bool) -> Result<(u64, Arc<File>), StoreError> {
        let mut readers = self.readers.lock().map_err(|_| poisoned())?;
        let known = readers.range(..=at).next_back().map(|(s, _)| *s);
        if refresh || known.is_none() {
            for start in list(&self.dir)? {
                readers.entry(start).or_insert(None);
            }
        }
        let Some((&start, slot)) = readers.range_mut(..=at).next_back() else {
            return Err(StoreError::Corrupt(format!(
                "no audit records segment holds offset {at}"
            )));
        };
        if let Some(file) = slot {
            return Ok((start, file.clone()));
        }
        let path = self.path(start);
        let file = Arc::new(File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::Corrupt(format!(
                "audit records segment {} is missing",
                path.display()
            )),
            _ => io("open", &path, e),
        })?);
        *slot = Some(file.clone());
        if readers.values().filter(|f| f.is_some()).count() > OPEN_READERS {
            for (s, f) in readers.iter_mut() {
                if *s != start {
                    *f = None;
                }
            }
        }
        Ok((start, file))
    }

    /// Deletes every segment that ends at or before `oldest_kept` (the smallest offset a kept row
    /// points at; `None`: no row points into a segment). The last segment stays.
    pub(crate) fn release_before(&self, oldest_kept: Option<u64>) -> Result<usize, StoreError> {
        let starts = list(&self.dir)?;
        let mut removed = 0;
        for pair in starts.windows(2) {
            let (start, next) = (pair[0], pair[1]);
            if oldest_kept.is_some_and(|k| next > k) {
                break;
            }
            let path = self.path(start);
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &path, e)),
            }
            self.readers.lock().map_err(|_| poisoned())?.remove(&start);
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal("audit records lock poisoned".into())
}
