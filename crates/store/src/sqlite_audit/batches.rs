//! Records copied from the journal are indexed a run at a time, not a row each: one
//! `audit_batches` row per run of consecutive records of a chain in an index transaction, holding
//! where the run's JSON starts in the record files, the hash before its first record, its time
//! range and, per record, the JSON's length, the event time and the record's hash. A row per
//! record (its query columns, the primary key and the time index: three B-tree inserts and ~1 KB
//! of WAL) was most of the index thread's work, which the benchmark's cores ran beside the calls
//! (docs/benchmarks.md, twenty-third session).
//!
//! Reading a run derives each record's query columns from its JSON ([`AuditIndex::derive`], as
//! `verify` does anyway), so a lookup filters the records of the runs in its time window as the
//! SQL does the rows of older records, which keep their own rows and are read beside. Each run
//! also keeps a summary of the values lookups ask for ([`summary`]), so a lookup for a key, a
//! caller or an event passes over the runs that cannot hold it unread.

use rusqlite::{Connection, OptionalExtension, params};
use tresor_kms::audit_log::{AuditIndex, AuditQuery, AuditRecord};
use tresor_kms::store::StoreError;

use super::summary::{self, Summary};
use super::{arr, to_i64, to_u64};
use crate::audit_records::RecordFiles;
use crate::sqlite::internal;

/// Bytes per record in `entries`: JSON length (u32 LE), event time in ms (i64 LE), hash.
const ENTRY: usize = 4 + 8 + 32;

/// Records per row at most, so a lookup that needs one record of a row reads a bounded run
/// (a replay after a restart copies a whole ring of frames in one transaction).
const MAX_RUN: usize = 1024;

pub(super) const MIGRATION: &str = r#"
    CREATE TABLE audit_batches (
        chain     TEXT    NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER NOT NULL,
        min_time  INTEGER NOT NULL,
        max_time  INTEGER NOT NULL,
        json_at   INTEGER NOT NULL,
        prev_hash BLOB    NOT NULL,
        entries   BLOB    NOT NULL,
        PRIMARY KEY (chain, first_seq)
    );
    CREATE INDEX audit_batches_by_time ON audit_batches (max_time);
"#;

/// Runs indexed from now on carry a summary ([`summary`]); older runs have none and are read by
/// every lookup that reaches their time window. Lookups take runs in their own order (newest
/// first by time, chain, seq), so that the runs of one busy second are not all read to find its
/// newest records.
pub(super) const SUMMARY_MIGRATION: &str = r#"
    ALTER TABLE audit_batches ADD COLUMN summary BLOB;
    CREATE INDEX audit_batches_newest ON audit_batches (max_time, chain, last_seq);
    DROP INDEX audit_batches_by_time;
"#;

/// Inserts `records` (whose JSON is in the record files from `*json_at` on, one after another)
/// as runs, and moves `*json_at` past them.
pub(super) fn insert(
    tx: &rusqlite::Transaction<'_>,
    records: &[&AuditRecord],
    json_at: &mut u64,
) -> Result<(), StoreError> {
    let mut ins = tx
        .prepare_cached(
            "INSERT INTO audit_batches (chain, first_seq, last_seq, min_time, max_time, json_at, prev_hash, entries, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(internal)?;
    let mut rest = records;
    while let Some(first) = rest.first() {
        // A run: the same chain, consecutive seqs, each linking to the one before.
        let mut n = 1;
        while n < rest.len().min(MAX_RUN)
            && rest[n].chain == first.chain
            && rest[n].seq == rest[n - 1].seq + 1
            && rest[n].prev_hash == rest[n - 1].hash
        {
            n += 1;
        }
        let (run, tail) = rest.split_at(n);
        let mut entries = Vec::with_capacity(run.len() * ENTRY);
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        let mut bytes = 0u64;
        let mut values = summary::Builder::new();
        for r in run {
            let len = u32::try_from(r.json.len())
                .map_err(|_| StoreError::Internal("an audit record over 4 GiB".into()))?;
            let time = r.index.event_time_millis;
            entries.extend_from_slice(&len.to_le_bytes());
            entries.extend_from_slice(&time.to_le_bytes());
            entries.extend_from_slice(&r.hash);
            min_time = min_time.min(time);
            max_time = max_time.max(time);
            bytes += u64::from(len);
            values.add(&r.index);
        }
        let last = run.last().map_or(first.seq, |r| r.seq);
        ins.execute(params![
            first.chain,
            to_i64(first.seq)?,
            to_i64(last)?,
            min_time,
            max_time,
            to_i64(*json_at)?,
            &first.prev_hash[..],
            entries,
            values.finish(),
        ])
        .map_err(internal)?;
        *json_at += bytes;
        rest = tail;
    }
    Ok(())
}

/// One `audit_batches` row.
struct Run {
    chain: String,
    first_seq: u64,
    json_at: u64,
    prev_hash: [u8; 32],
    entries: Vec<u8>,
    summary: Option<Vec<u8>>,
    min_time: i64,
    max_time: i64,
}

/// A run's row as read.
struct RunRow {
    chain: String,
    first_seq: i64,
    json_at: i64,
    prev_hash: Vec<u8>,
    entries: Vec<u8>,
    summary: Option<Vec<u8>>,
    last_seq: i64,
    min_time: i64,
    max_time: i64,
}

/// The columns [`Run::from_row`] reads, in order (lookups read some before the rest).
const RUN_COLUMNS: &str =
    "chain, first_seq, json_at, prev_hash, entries, summary, last_seq, min_time, max_time";
const CHAIN: usize = 0;
const FIRST_SEQ: usize = 1;
const SUMMARY: usize = 5;
const LAST_SEQ: usize = 6;
const MIN_TIME: usize = 7;
const MAX_TIME: usize = 8;

/// The one run `filter` (a `WHERE` clause and what follows, over `?1` = chain and `?2`)
/// selects, if any.
fn one_run(
    c: &Connection,
    filter: &str,
    chain: &str,
    second: i64,
) -> Result<Option<Run>, StoreError> {
    c.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM audit_batches WHERE {filter}"),
        params![chain, second],
        Run::from_row,
    )
    .optional()
    .map_err(internal)?
    .map(Run::new)
    .transpose()
}

impl Run {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
        Ok(RunRow {
            chain: r.get(CHAIN)?,
            first_seq: r.get(FIRST_SEQ)?,
            json_at: r.get(2)?,
            prev_hash: r.get(3)?,
            entries: r.get(4)?,
            summary: r.get(SUMMARY)?,
            last_seq: r.get(LAST_SEQ)?,
            min_time: r.get(MIN_TIME)?,
            max_time: r.get(MAX_TIME)?,
        })
    }

    /// The row checked for shape: a record list of whole entries, as many as its seq range
    /// says, and a well-formed summary.
    fn new(row: RunRow) -> Result<Run, StoreError> {
        let RunRow {
            chain,
            first_seq,
            entries,
            ..
        } = &row;
        if entries.is_empty() || entries.len() % ENTRY != 0 {
            return Err(StoreError::Corrupt(format!(
                "audit index run at {chain}/{first_seq} has a malformed record list"
            )));
        }
        let held = (entries.len() / ENTRY) as u64;
        let first = to_u64(row.first_seq)?;
        match to_u64(row.last_seq)?.checked_sub(first) {
            Some(span) if span + 1 == held => {}
            Some(span) if span + 1 > held => {
                return Err(StoreError::Corrupt(format!(
                    "audit index run at {chain}/{first_seq} holds fewer records than its last seq says"
                )));
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "audit index run at {chain}/{first_seq} holds more records than its last seq says"
                )));
            }
        }
        Summary::parse(row.summary.as_deref(), chain, *first_seq)?;
        Ok(Run {
            first_seq: first,
            json_at: to_u64(row.json_at)?,
            prev_hash: arr(row.prev_hash)?,
            entries: row.entries,
            summary: row.summary,
            min_time: row.min_time,
            max_time: row.max_time,
            chain: row.chain,
        })
    }

    fn len(&self) -> usize {
        self.entries.len() / ENTRY
    }

    /// Record `i`'s JSON length, event time and hash.
    fn entry(&self, i: usize) -> (u64, i64, [u8; 32]) {
        let e = &self.entries[i * ENTRY..(i + 1) * ENTRY];
        let mut len = [0u8; 4];
        let mut time = [0u8; 8];
        let mut hash = [0u8; 32];
        len.copy_from_slice(&e[..4]);
        time.copy_from_slice(&e[4..12]);
        hash.copy_from_slice(&e[12..]);
        (
            u64::from(u32::from_le_bytes(len)),
            i64::from_le_bytes(time),
            hash,
        )
    }

    /// The records `keep(seq, event_time)` selects and whose JSON `wanted` accepts, in seq
    /// order, at most `max`: their JSON read from the record files and their query columns
    /// derived from it. A record the run's row misdescribes (an edited index: its event time
    /// not the one in its entry or outside the run's time range, or values the summary does not
    /// hold — what lookups pass runs over by) comes without query columns, which `verify`
    /// reports.
    fn records(
        &self,
        files: &RecordFiles,
        keep: impl Fn(u64, i64) -> bool,
        wanted: impl Fn(&str) -> bool,
        max: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let entries: Vec<(u64, i64, [u8; 32])> = (0..self.len()).map(|i| self.entry(i)).collect();
        let kept = (self.first_seq..)
            .zip(&entries)
            .filter(|(seq, (_, time, _))| keep(*seq, *time))
            .count();
        // A run's JSON is one stretch of the record files: read whole when most of it is wanted
        // (unless it crosses into the next segment; then record by record).
        let whole = if kept > 8 && kept * 2 >= entries.len() && max >= kept {
            let total: u64 = entries.iter().map(|(len, _, _)| len).sum();
            usize::try_from(total)
                .ok()
                .and_then(|total| files.read(self.json_at, total).ok())
        } else {
            None
        };
        let summary = Summary::parse(
            self.summary.as_deref(),
            &self.chain,
            to_i64(self.first_seq)?,
        )?;
        let mut out = Vec::new();
        let (mut at, mut prev) = (self.json_at, self.prev_hash);
        for (seq, &(len, time, hash)) in (self.first_seq..).zip(&entries) {
            if out.len() >= max {
                break;
            }
            if keep(seq, time) {
                let len_usize =
                    usize::try_from(len).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let json = match &whole {
                    Some(text) => {
                        let from = usize::try_from(at - self.json_at)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        text.get(from..from + len_usize)
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!(
                                    "audit record {seq} does not lie on character boundaries"
                                ))
                            })?
                            .to_owned()
                    }
                    None => files.read(at, len_usize)?,
                };
                if wanted(&json) {
                    let mut index = AuditIndex::derive(&json).map_err(|e| {
                        StoreError::Corrupt(format!("audit record {seq} is not a record: {e}"))
                    })?;
                    let t = index.event_time_millis;
                    if t != time
                        || t < self.min_time
                        || t > self.max_time
                        || summary.as_ref().is_some_and(|s| !s.covers(&index))
                    {
                        index = AuditIndex::default();
                    }
                    out.push(AuditRecord {
                        chain: self.chain.clone(),
                        seq,
                        prev_hash: prev,
                        hash,
                        json,
                        index,
                    });
                }
            }
            at += len;
            prev = hash;
        }
        Ok(out)
    }
}

/// The records of `chain` after `after` from runs, in seq order, at most `limit`.
pub(super) fn records(
    c: &Connection,
    files: &RecordFiles,
    chain: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM audit_batches WHERE chain = ?1 AND last_seq > ?2 ORDER BY first_seq"
        ))
        .map_err(internal)?;
    let mut rows = st.query(params![chain, to_i64(after)?]).map_err(internal)?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next().map_err(internal)? else {
            break;
        };
        let run = Run::new(Run::from_row(row).map_err(internal)?)?;
        out.extend(run.records(files, |seq, _| seq > after, |_| true, limit - out.len())?);
    }
    Ok(out)
}

/// Whether a record passes a lookup's filters (the same as the SQL over the rows).
fn matches(q: &AuditQuery, r: &AuditRecord) -> bool {
    let ix = &r.index;
    let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    let eq_opt = |want: &Option<String>, have: &Option<String>| {
        want.as_deref().is_none_or(|w| have.as_deref() == Some(w))
    };
    eq(&q.account, &ix.account)
        && eq(&q.region, &ix.region)
        && eq(&q.event_name, &ix.event_name)
        && eq_opt(&q.principal_arn, &ix.principal_arn)
        && eq_opt(&q.username, &ix.username)
        && eq_opt(&q.access_key_id, &ix.access_key_id)
        && eq_opt(&q.error_code, &ix.error_code)
        && eq(&q.event_id, &ix.event_id)
        && q.start_millis.is_none_or(|t| ix.event_time_millis >= t)
        && q.end_millis.is_none_or(|t| ix.event_time_millis <= t)
        && q.read_only.is_none_or(|ro| ix.read_only == ro)
        && q.resource_arn
            .as_deref()
            .is_none_or(|arn| ix.resources.iter().any(|x| x == arn))
        && q.before.as_ref().is_none_or(|(t, chain, seq)| {
            (ix.event_time_millis, r.chain.as_str(), r.seq) < (*t, chain.as_str(), *seq)
        })
}

/// Strings the JSON of a record that passes `q` contains: each string filter's value as JSON
/// escapes it (the record's own text, escaped alike). A record without one of them is passed over
/// unparsed. (Not the user name: it is derived, e.g. from a role session's ARN.)
fn needles(q: &AuditQuery) -> Vec<memchr::memmem::Finder<'static>> {
    [
        &q.account,
        &q.region,
        &q.event_name,
        &q.principal_arn,
        &q.access_key_id,
        &q.error_code,
        &q.event_id,
        &q.resource_arn,
    ]
    .into_iter()
    .flatten()
    .filter_map(|v| serde_json::to_string(v).ok())
    .map(|quoted| {
        let inner = quoted
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(&quoted);
        memchr::memmem::Finder::new(inner.as_bytes()).into_owned()
    })
    .collect()
}

/// The lookup order: newest first (event time, then chain, then seq, all descending).
pub(super) fn sort_newest_first(records: &mut [AuditRecord]) {
    records.sort_unstable_by(|a, b| {
        (b.index.event_time_millis, &b.chain, b.seq).cmp(&(
            a.index.event_time_millis,
            &a.chain,
            a.seq,
        ))
    });
}

/// The records of runs that pass `q`, newest first, at most `q.limit`: the runs overlapping the
/// query's time window in the lookup order of their newest possible record (max time, chain,
/// last seq), until that is older than the `limit`-th record found (every later run could only
/// add older ones). Runs whose summary rules the query out, and runs wholly at or after the page
/// cursor `before`, are passed over unread.
pub(super) fn lookup(
    c: &Connection,
    files: &RecordFiles,
    q: &AuditQuery,
) -> Result<Vec<AuditRecord>, StoreError> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let start = q.start_millis.unwrap_or(i64::MIN);
    let mut end = q.end_millis.unwrap_or(i64::MAX);
    if let Some((t, _, _)) = &q.before {
        end = end.min(*t);
    }
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM audit_batches
             WHERE max_time >= ?1 AND min_time <= ?2 ORDER BY max_time DESC, chain DESC, last_seq DESC"
        ))
        .map_err(internal)?;
    let mut rows = st.query(params![start, end]).map_err(internal)?;
    let needles = needles(q);
    let wanted = summary::query_hashes(q);
    let mut found: Vec<AuditRecord> = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        let chain = row
            .get_ref(CHAIN)
            .map_err(internal)?
            .as_str()
            .map_err(|e| internal(e.into()))?;
        let first_seq: i64 = row.get(FIRST_SEQ).map_err(internal)?;
        let max_time: i64 = row.get(MAX_TIME).map_err(internal)?;
        let min_time: i64 = row.get(MIN_TIME).map_err(internal)?;
        let last_seq = to_u64(row.get(LAST_SEQ).map_err(internal)?)?;
        // Each record of the run sorts between these two in the lookup order.
        let (newest, oldest) = (
            (max_time, chain, last_seq),
            (min_time, chain, to_u64(first_seq)?),
        );
        if found.len() >= q.limit
            && found
                .last()
                .is_some_and(|r| newest < (r.index.event_time_millis, r.chain.as_str(), r.seq))
        {
            break;
        }
        if q.before
            .as_ref()
            .is_some_and(|(t, c, s)| oldest >= (*t, c.as_str(), *s))
        {
            continue;
        }
        if !wanted.is_empty() {
            // Passed over without copying its record list when its summary rules it out.
            let bytes = row
                .get_ref(SUMMARY)
                .map_err(internal)?
                .as_blob_or_null()
                .map_err(|e| internal(e.into()))?;
            if let Some(s) = Summary::parse(bytes, chain, first_seq)?
                && !s.may_hold_all(&wanted)
            {
                continue;
            }
        }
        let run = Run::new(Run::from_row(row).map_err(internal)?)?;
        let records = run.records(
            files,
            |_, t| t >= start && t <= end,
            |json| needles.iter().all(|n| n.find(json.as_bytes()).is_some()),
            usize::MAX,
        )?;
        found.extend(records.into_iter().filter(|r| matches(q, r)));
        if found.len() >= q.limit {
            sort_newest_first(&mut found);
            found.truncate(q.limit);
        }
    }
    Ok(found)
}

/// Deletes the records of `chain` with `seq <= through` from runs (a run that holds both sides
/// keeps its later records); returns how many.
pub(super) fn prune(
    tx: &rusqlite::Transaction<'_>,
    chain: &str,
    through: u64,
) -> Result<u64, StoreError> {
    let through_i = to_i64(through)?;
    let whole: i64 = tx
        .query_row(
            "SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM audit_batches WHERE chain = ?1 AND last_seq <= ?2",
            params![chain, through_i],
            |r| r.get(0),
        )
        .map_err(internal)?;
    tx.execute(
        "DELETE FROM audit_batches WHERE chain = ?1 AND last_seq <= ?2",
        params![chain, through_i],
    )
    .map_err(internal)?;
    let mut pruned = to_u64(whole)?;
    let split = one_run(
        tx,
        "chain = ?1 AND first_seq <= ?2 AND last_seq > ?2",
        chain,
        through_i,
    )?;
    if let Some(run) = split {
        // Fewer than the run's records: it goes on past the cut, and `Run::new` checked that
        // its record list holds as many as its seq range says.
        let k = usize::try_from(through + 1 - run.first_seq)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut json_at = run.json_at;
        let mut prev = run.prev_hash;
        for i in 0..k {
            let (len, _, hash) = run.entry(i);
            json_at += len;
            prev = hash;
        }
        let (mut min_time, mut max_time) = (i64::MAX, i64::MIN);
        for i in k..run.len() {
            let (_, time, _) = run.entry(i);
            min_time = min_time.min(time);
            max_time = max_time.max(time);
        }
        tx.execute(
            "UPDATE audit_batches SET first_seq = ?1, json_at = ?2, prev_hash = ?3, entries = ?4, min_time = ?5, max_time = ?6
             WHERE chain = ?7 AND first_seq = ?8",
            params![
                to_i64(through + 1)?,
                to_i64(json_at)?,
                &prev[..],
                &run.entries[k * ENTRY..],
                min_time,
                max_time,
                chain,
                to_i64(run.first_seq)?,
            ],
        )
        .map_err(internal)?;
        pruned += k as u64;
    }
    Ok(pruned)
}

/// Where `chain`'s oldest run starts in the record files.
pub(super) fn oldest_json_at(c: &Connection, chain: &str) -> Result<Option<u64>, StoreError> {
    let at: Option<i64> = c
        .prepare_cached(
            "SELECT json_at FROM audit_batches WHERE chain = ?1 ORDER BY first_seq LIMIT 1",
        )
        .map_err(internal)?
        .query_row([chain], |r| r.get(0))
        .optional()
        .map_err(internal)?;
    at.map(to_u64).transpose()
}

/// The first seq of `chain` in runs with an event time at or after `cutoff`.
pub(super) fn first_seq_at_or_after(
    c: &Connection,
    chain: &str,
    cutoff: i64,
) -> Result<Option<u64>, StoreError> {
    // Runs hold disjoint seq ranges: the first run (by seq) that reaches the cut-off holds it.
    let Some(run) = one_run(
        c,
        "chain = ?1 AND max_time >= ?2 ORDER BY first_seq LIMIT 1",
        chain,
        cutoff,
    )?
    else {
        return Ok(None);
    };
    Ok((0..run.len())
        .find(|&i| run.entry(i).1 >= cutoff)
        .map(|i| run.first_seq + i as u64))
}

/// For tests that edit the index as an attacker would: every run turned back into one row per
/// record with its JSON in the row, so SQL written against rows edits the records.
#[doc(hidden)]
pub fn runs_to_rows(index: &std::path::Path) -> Result<(), StoreError> {
    let c = Connection::open(index).map_err(internal)?;
    let files = RecordFiles::open(
        crate::audit_records::records_dir(index),
        crate::audit_records::DEFAULT_SEGMENT_BYTES,
    )?;
    let runs = c
        .prepare(&format!("SELECT {RUN_COLUMNS} FROM audit_batches"))
        .map_err(internal)?
        .query_map([], Run::from_row)
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let mut ins = c.prepare(super::INSERT_RECORD).map_err(internal)?;
    for row in runs {
        let run = Run::new(row)?;
        for r in run.records(&files, |_, _| true, |_| true, usize::MAX)? {
            super::insert_row(&mut ins, &r)?;
        }
    }
    c.execute("DELETE FROM audit_batches", [])
        .map_err(internal)?;
    Ok(())
}

/// For tests that edit the record files as an attacker would: where record `seq` of `chain`
/// is in them (offset, length), if it is there.
#[doc(hidden)]
pub fn record_file_span(
    index: &std::path::Path,
    chain: &str,
    seq: u64,
) -> Result<Option<(u64, u64)>, StoreError> {
    let c = Connection::open(index).map_err(internal)?;
    let row: Option<(i64, i64)> = c
        .query_row(
            "SELECT json_at, json_len FROM audit_records WHERE chain = ?1 AND seq = ?2 AND json_at IS NOT NULL",
            params![chain, to_i64(seq)?],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(internal)?;
    if let Some((at, len)) = row {
        return Ok(Some((to_u64(at)?, to_u64(len)?)));
    }
    let Some(run) = one_run(
        &c,
        "chain = ?1 AND first_seq <= ?2 AND last_seq >= ?2",
        chain,
        to_i64(seq)?,
    )?
    else {
        return Ok(None);
    };
    let mut at = run.json_at;
    for i in 0..run.len() {
        let (len, _, _) = run.entry(i);
        if run.first_seq + i as u64 == seq {
            return Ok(Some((at, len)));
        }
        at += len;
    }
    Ok(None)
}
