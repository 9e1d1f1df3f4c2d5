//! The audit log in its own SQLite file (`audit.db`), so audit group commits never wait behind
//! key-store writes and vice versa.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use tresor_kms::audit_log::{AuditBackend, AuditIndex, AuditQuery, AuditRecord, Signed};
use tresor_kms::store::StoreError;

use crate::audit_records::{DEFAULT_SEGMENT_BYTES, RecordFiles, records_dir};
use crate::sqlite::{Checkpoints, Db, internal};

mod batches;
mod summary;
pub use batches::{record_file_span, runs_to_rows};

const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE audit_records (
        chain         TEXT    NOT NULL,
        seq           INTEGER NOT NULL,
        prev_hash     BLOB    NOT NULL,
        hash          BLOB    NOT NULL,
        event_time    INTEGER NOT NULL,
        event_name    TEXT    NOT NULL,
        account       TEXT    NOT NULL,
        region        TEXT    NOT NULL,
        principal_arn TEXT,
        username      TEXT,
        access_key_id TEXT,
        error_code    TEXT,
        read_only     INTEGER NOT NULL,
        event_id      TEXT    NOT NULL,
        request_id    TEXT    NOT NULL,
        resources     TEXT    NOT NULL,
        json          TEXT    NOT NULL,
        PRIMARY KEY (chain, seq)
    );
    CREATE INDEX audit_by_time ON audit_records (account, event_time);
    CREATE TABLE audit_resources (
        chain TEXT    NOT NULL,
        seq   INTEGER NOT NULL,
        arn   TEXT    NOT NULL,
        PRIMARY KEY (arn, chain, seq)
    );
    CREATE TABLE audit_heads (
        chain     TEXT PRIMARY KEY,
        seq       INTEGER NOT NULL,
        hash      BLOB    NOT NULL,
        time      INTEGER NOT NULL,
        signature BLOB    NOT NULL
    );
    CREATE TABLE audit_digests (
        chain     TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        hash      BLOB    NOT NULL,
        time      INTEGER NOT NULL,
        signature BLOB    NOT NULL,
        PRIMARY KEY (chain, seq)
    );
    CREATE TABLE audit_anchors (
        chain     TEXT PRIMARY KEY,
        seq       INTEGER NOT NULL,
        hash      BLOB    NOT NULL,
        time      INTEGER NOT NULL,
        signature BLOB    NOT NULL
    );
"#,
    // The resources of a record are matched in its `resources` column (a JSON array): a lookup
    // walks the time index anyway, and a second table keyed by ARN cost two more B-tree inserts
    // per record at a random place once there are many keys.
    "DROP TABLE audit_resources",
    // How far the journal (`audit.journal`, see `audit_journal`) has been copied into this
    // index, committed with the rows it copied; and the journal's ring size.
    r#"
    CREATE TABLE audit_journal (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        pos      INTEGER NOT NULL,
        capacity INTEGER NOT NULL
    );
"#,
    // Records copied from the journal keep their JSON in the segment files of `audit.records`
    // (see `audit_records`): the row points at it (`json` is then empty). `records_end` is how
    // far those files hold committed records.
    r#"
    ALTER TABLE audit_records ADD COLUMN json_at INTEGER;
    ALTER TABLE audit_records ADD COLUMN json_len INTEGER;
    ALTER TABLE audit_journal ADD COLUMN records_end INTEGER NOT NULL DEFAULT 0;
"#,
    // Records copied from the journal from now on are indexed a run at a time (see `batches`);
    // older rows stay and are read beside.
    batches::MIGRATION,
    batches::SUMMARY_MIGRATION,
];

/// SQLite implementation of [`AuditBackend`].
#[derive(Clone)]
pub struct SqliteAuditLog {
    db: Db,
    files: Arc<RecordFiles>,
}

fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| StoreError::Internal(e.to_string()))
}

/// A stored INTEGER that must be a u64 (a negative one is corruption).
fn to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn arr<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("hash or signature of the wrong length".into()))
}

type SignedRow = (String, i64, Vec<u8>, i64, Vec<u8>);

/// The smallest record-file offset a row points at: each chain's first such row (offsets grow
/// with `seq` in a chain; rows before it keep their JSON inline).
fn oldest_json_at(c: &Connection) -> Result<Option<u64>, StoreError> {
    let mut chains = c
        .prepare_cached("SELECT chain FROM audit_heads")
        .map_err(internal)?;
    let chains = chains
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(internal)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(internal)?;
    let mut oldest: Option<u64> = None;
    for chain in chains {
        let at: Option<i64> = c
            .prepare_cached(
                "SELECT json_at FROM audit_records WHERE chain = ?1 AND json_at IS NOT NULL ORDER BY seq LIMIT 1",
            )
            .map_err(internal)?
            .query_row([&chain], |r| r.get(0))
            .optional()
            .map_err(internal)?;
        let at = at.map(to_u64).transpose()?;
        for at in [at, batches::oldest_json_at(c, &chain)?]
            .into_iter()
            .flatten()
        {
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
    }
    Ok(oldest)
}

fn signed_from_row(r: SignedRow) -> Result<Signed, StoreError> {
    Ok(Signed {
        chain: r.0,
        seq: to_u64(r.1)?,
        hash: arr(r.2)?,
        time_millis: r.3,
        signature: arr(r.4)?,
    })
}

fn read_signed(c: &Connection, table: &str, chain: &str) -> Result<Vec<Signed>, StoreError> {
    let sql = format!(
        "SELECT chain, seq, hash, time, signature FROM {table} WHERE chain = ?1 ORDER BY seq"
    );
    let mut st = c.prepare_cached(&sql).map_err(internal)?;
    let rows = st
        .query_map([chain], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(internal)?
        .collect::<Result<Vec<SignedRow>, _>>()
        .map_err(internal)?;
    rows.into_iter().map(signed_from_row).collect()
}

/// The record columns in insert and select order (one list for both statements).
macro_rules! record_columns {
    () => {
        "chain, seq, prev_hash, hash, event_time, event_name, account, region, principal_arn, \
         username, access_key_id, error_code, read_only, event_id, request_id, resources, json, \
         json_at, json_len"
    };
}

const RECORD_COLUMNS: &str = record_columns!();

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecordRow, String)> {
    Ok((
        AuditRecordRow {
            chain: r.get(0)?,
            seq: r.get(1)?,
            prev_hash: r.get(2)?,
            hash: r.get(3)?,
            index: AuditIndex {
                event_time_millis: r.get(4)?,
                event_name: r.get(5)?,
                account: r.get(6)?,
                region: r.get(7)?,
                principal_arn: r.get(8)?,
                username: r.get(9)?,
                access_key_id: r.get(10)?,
                error_code: r.get(11)?,
                read_only: r.get::<_, i64>(12)? != 0,
                event_id: r.get(13)?,
                request_id: r.get(14)?,
                resources: Vec::new(),
            },
            json: r.get(16)?,
            json_at: r.get(17)?,
            json_len: r.get(18)?,
        },
        r.get(15)?,
    ))
}

struct AuditRecordRow {
    chain: String,
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    index: AuditIndex,
    /// Empty when the JSON is in the record files at `json_at`.
    json: String,
    json_at: Option<i64>,
    json_len: Option<i64>,
}

/// Rows into records, reading each JSON kept in the record files (on the calling thread).
fn finish_all(
    files: &RecordFiles,
    rows: Vec<(AuditRecordRow, String)>,
) -> Result<Vec<AuditRecord>, StoreError> {
    rows.into_iter()
        .map(|(mut row, resources)| {
            if row.json.is_empty()
                && let (Some(at), Some(len)) = (row.json_at, row.json_len)
            {
                let len = usize::try_from(len).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                row.json = files.read(to_u64(at)?, len)?;
            }
            finish(row, resources)
        })
        .collect()
}

fn finish(row: AuditRecordRow, resources: String) -> Result<AuditRecord, StoreError> {
    let mut index = row.index;
    index.resources =
        serde_json::from_str(&resources).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(AuditRecord {
        chain: row.chain,
        seq: to_u64(row.seq)?,
        prev_hash: arr(row.prev_hash)?,
        hash: arr(row.hash)?,
        json: row.json,
        index,
    })
}

/// Whether the caller runs on a current-thread runtime: the audit writer's own thread, whose job
/// is to wait for each commit — there the commit runs in place instead of hopping to tokio's
/// blocking pool and back (two thread wake-ups per commit).
pub(crate) fn on_dedicated_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread)
        .unwrap_or(true)
}

const INSERT_RECORD: &str = concat!(
    "INSERT INTO audit_records (",
    record_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
);

/// One group commit: the records, the new signed head and (sometimes) a digest, atomically.
fn insert_batch(
    c: &mut Connection,
    records: &[AuditRecord],
    head: &Signed,
    digest: Option<&Signed>,
) -> Result<(), StoreError> {
    let tx = c.transaction().map_err(internal)?;
    insert_in(&tx, records, head, digest)?;
    tx.commit().map_err(internal)
}

/// A group commit's rows inside a transaction the caller commits: each record a row holding its
/// JSON (a batch that did not go through the journal; the journal's are indexed as runs, see
/// `batches`), and its signed head.
fn insert_in(
    tx: &rusqlite::Transaction<'_>,
    records: &[AuditRecord],
    head: &Signed,
    digest: Option<&Signed>,
) -> Result<(), StoreError> {
    {
        let mut ins = tx.prepare_cached(INSERT_RECORD).map_err(internal)?;
        for r in records {
            insert_row(&mut ins, r)?;
        }
    }
    insert_signed(tx, head, digest)
}

/// One record as a row holding its JSON, through a prepared [`INSERT_RECORD`].
fn insert_row(ins: &mut rusqlite::Statement<'_>, r: &AuditRecord) -> Result<(), StoreError> {
    let ix = &r.index;
    let resources =
        serde_json::to_string(&ix.resources).map_err(|e| StoreError::Internal(e.to_string()))?;
    ins.execute(params![
        r.chain,
        to_i64(r.seq)?,
        &r.prev_hash[..],
        &r.hash[..],
        ix.event_time_millis,
        ix.event_name,
        ix.account,
        ix.region,
        ix.principal_arn,
        ix.username,
        ix.access_key_id,
        ix.error_code,
        i64::from(ix.read_only),
        ix.event_id,
        ix.request_id,
        resources,
        r.json,
        None::<i64>,
        None::<i64>,
    ])
    .map_err(internal)?;
    Ok(())
}

/// A group commit's signed head, and its digest if it took one.
fn insert_signed(
    tx: &rusqlite::Transaction<'_>,
    head: &Signed,
    digest: Option<&Signed>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
            "INSERT INTO audit_heads (chain, seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, signature = excluded.signature",
        )
        .map_err(internal)?
        .execute(params![head.chain, to_i64(head.seq)?, &head.hash[..], head.time_millis, &head.signature[..]])
        .map_err(internal)?;
    if let Some(d) = digest {
        tx.execute(
                "INSERT OR REPLACE INTO audit_digests (chain, seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.chain, to_i64(d.seq)?, &d.hash[..], d.time_millis, &d.signature[..]],
            )
            .map_err(internal)?;
    }
    Ok(())
}

/// One group commit as the journal carries it to the index.
#[derive(Debug)]
pub(crate) struct IndexBatch {
    pub records: Vec<AuditRecord>,
    pub head: Signed,
    pub digest: Option<Signed>,
}

/// The page size of a new `audit.db` (an existing one keeps its own). Records are ~1.5 KB and are
/// copied in large transactions (from the journal, see `audit_journal`): 16 KiB pages take a
/// transaction's records in a quarter of the WAL frames and write calls of 4 KiB pages (the index
/// thread 13.2–14.2 → 12.0–12.1 µs per record, the checkpointer 3.2 → 1.2 µs, in the tenth
/// session's measurements).
const AUDIT_PAGE_SIZE: u32 = 16_384;

impl SqliteAuditLog {
    pub fn open(path: &Path) -> Result<SqliteAuditLog, StoreError> {
        Self::open_with_segments(path, DEFAULT_SEGMENT_BYTES)
    }

    /// [`Self::open`] with the size at which a new record file starts (see `audit_records`).
    pub(crate) fn open_with_segments(
        path: &Path,
        segment_bytes: u64,
    ) -> Result<SqliteAuditLog, StoreError> {
        Ok(SqliteAuditLog {
            files: Arc::new(RecordFiles::open(records_dir(path), segment_bytes)?),
            // The audit log takes the server's steadiest write load, and every call waits for its
            // commit: checkpoints run beside the commits, not inside one.
            db: Db::open(
                path,
                MIGRATIONS,
                Checkpoints::Background,
                Some(AUDIT_PAGE_SIZE),
            )?,
        })
    }

    /// Copies journal batches into the index with the journal position they reach (on the
    /// calling thread): the records' JSON appended to the record files and synced, then one
    /// durable transaction with the rows that point at it, the journal position and the files'
    /// new end. Only the journal's owner calls this, after [`Self::recover_records`].
    pub(crate) fn index_blocking(
        &self,
        batches: &[IndexBatch],
        pos: u64,
        capacity: u64,
    ) -> Result<(), StoreError> {
        let len: u64 = batches
            .iter()
            .flat_map(|b| &b.records)
            .map(|r| r.json.len() as u64)
            .sum();
        // Where this transaction's JSON starts in the record files (none without records).
        let base = match len {
            0 => None,
            _ => Some(
                self.files.append(
                    batches
                        .iter()
                        .flat_map(|b| &b.records)
                        .map(|r| r.json.as_bytes()),
                )?,
            ),
        };
        let end = base.map(|b| b + len);
        self.db.write_blocking(|c| {
            let tx = c.transaction().map_err(internal)?;
            if let Some(mut at) = base {
                let records: Vec<&AuditRecord> = batches.iter().flat_map(|b| &b.records).collect();
                batches::insert(&tx, &records, &mut at)?;
            }
            for b in batches {
                insert_signed(&tx, &b.head, b.digest.as_ref())?;
            }
            tx.prepare_cached(
                "INSERT INTO audit_journal (id, pos, capacity) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET pos = excluded.pos, capacity = excluded.capacity",
            )
            .map_err(internal)?
            .execute(params![to_i64(pos)?, to_i64(capacity)?])
            .map_err(internal)?;
            if let Some(end) = end {
                tx.prepare_cached("UPDATE audit_journal SET records_end = ?1 WHERE id = 1")
                    .map_err(internal)?
                    .execute([to_i64(end)?])
                    .map_err(internal)?;
            }
            tx.commit().map_err(internal)
        })?;
        match end {
            Some(end) => self.files.committed(end),
            None => Ok(()),
        }
    }

    /// The journal's owner, before anything is copied: cuts the record files back to what the
    /// index's committed rows point at (see `audit_records`).
    pub(crate) fn recover_records(&self) -> Result<(), StoreError> {
        let end: Option<i64> = self.db.write_blocking(|c| {
            c.query_row(
                "SELECT records_end FROM audit_journal WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)
        })?;
        self.files.recover(to_u64(end.unwrap_or(0))?)
    }

    /// [`AuditBackend::append`] on the calling thread.
    pub(crate) fn append_blocking(
        &self,
        records: &[AuditRecord],
        head: &Signed,
        digest: Option<&Signed>,
    ) -> Result<(), StoreError> {
        self.db
            .write_blocking(|c| insert_batch(c, records, head, digest))
    }

    /// How far the journal has been indexed, and its ring size: `None` before the first copy
    /// (read on the calling thread through the writer connection: the journal asks only while
    /// opening, when this process writes nothing else).
    pub(crate) fn journal_position(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let row: Option<(i64, i64)> = self.db.write_blocking(|c| {
            c.query_row(
                "SELECT pos, capacity FROM audit_journal WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)
        })?;
        row.map(|(p, c)| Ok((to_u64(p)?, to_u64(c)?))).transpose()
    }
}

#[async_trait]
impl AuditBackend for SqliteAuditLog {
    async fn head(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        let chain = chain.to_owned();
        self.db
            .read(move |c| read_signed(c, "audit_heads", &chain).map(|mut v| v.pop()))
            .await
    }

    async fn append(
        &self,
        records: Vec<AuditRecord>,
        head: &Signed,
        digest: Option<&Signed>,
    ) -> Result<(), StoreError> {
        if on_dedicated_thread() {
            return self.append_blocking(&records, head, digest);
        }
        let (head, digest) = (head.clone(), digest.cloned());
        self.db
            .write(move |c| insert_batch(c, &records, &head, digest.as_ref()))
            .await
    }

    async fn chains(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .read(|c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT chain FROM audit_heads UNION SELECT DISTINCT chain FROM audit_records UNION SELECT DISTINCT chain FROM audit_batches UNION SELECT chain FROM audit_anchors ORDER BY 1",
                    )
                    .map_err(internal)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(internal)
            })
            .await
    }

    async fn anchor(&self, chain: &str) -> Result<Option<Signed>, StoreError> {
        let chain = chain.to_owned();
        self.db
            .read(move |c| read_signed(c, "audit_anchors", &chain).map(|mut v| v.pop()))
            .await
    }

    async fn digests(&self, chain: &str) -> Result<Vec<Signed>, StoreError> {
        let chain = chain.to_owned();
        self.db
            .read(move |c| read_signed(c, "audit_digests", &chain))
            .await
    }

    async fn records(
        &self,
        chain: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let chain = chain.to_owned();
        let after = to_i64(after_seq)?;
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let files = self.files.clone();
        self.db
            .read(move |c| {
                let mut st = c
                    .prepare_cached(&format!(
                        "SELECT {RECORD_COLUMNS} FROM audit_records WHERE chain = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
                    ))
                    .map_err(internal)?;
                let rows = st.query_map(params![chain, after, limit_sql], record_from_row).map_err(internal)?;
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(internal)?;
                let mut records = finish_all(&files, rows)?;
                // Rows and runs hold disjoint seqs (a batch too large for the journal is rows
                // between runs): the first `limit` of both together.
                records.extend(batches::records(c, &files, &chain, after_seq, limit)?);
                records.sort_unstable_by_key(|r| r.seq);
                records.truncate(limit);
                Ok(records)
            })
            .await
    }

    async fn lookup(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = format!("SELECT {RECORD_COLUMNS} FROM audit_records a WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        let eq = |col: &str, v: &Option<String>, sql: &mut String, args: &mut Vec<SqlValue>| {
            if let Some(v) = v {
                args.push(SqlValue::Text(v.clone()));
                sql.push_str(&format!(" AND a.{col} = ?{}", args.len()));
            }
        };
        eq("account", &q.account, &mut sql, &mut args);
        eq("region", &q.region, &mut sql, &mut args);
        eq("event_name", &q.event_name, &mut sql, &mut args);
        eq("principal_arn", &q.principal_arn, &mut sql, &mut args);
        eq("username", &q.username, &mut sql, &mut args);
        eq("access_key_id", &q.access_key_id, &mut sql, &mut args);
        eq("error_code", &q.error_code, &mut sql, &mut args);
        eq("event_id", &q.event_id, &mut sql, &mut args);
        if let Some(t) = q.start_millis {
            args.push(SqlValue::Integer(t));
            sql.push_str(&format!(" AND a.event_time >= ?{}", args.len()));
        }
        if let Some(t) = q.end_millis {
            args.push(SqlValue::Integer(t));
            sql.push_str(&format!(" AND a.event_time <= ?{}", args.len()));
        }
        if let Some(ro) = q.read_only {
            args.push(SqlValue::Integer(i64::from(ro)));
            sql.push_str(&format!(" AND a.read_only = ?{}", args.len()));
        }
        if let Some(arn) = &q.resource_arn {
            args.push(SqlValue::Text(arn.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(a.resources) r WHERE r.value = ?{})",
                args.len()
            ));
        }
        if let Some((t, chain, seq)) = &q.before {
            args.push(SqlValue::Integer(*t));
            args.push(SqlValue::Text(chain.clone()));
            args.push(SqlValue::Integer(to_i64(*seq)?));
            let n = args.len();
            sql.push_str(&format!(
                " AND (a.event_time, a.chain, a.seq) < (?{}, ?{}, ?{})",
                n - 2,
                n - 1,
                n
            ));
        }
        args.push(SqlValue::Integer(
            i64::try_from(q.limit).unwrap_or(i64::MAX),
        ));
        sql.push_str(&format!(
            " ORDER BY a.event_time DESC, a.chain DESC, a.seq DESC LIMIT ?{}",
            args.len()
        ));
        let files = self.files.clone();
        let q = q.clone();
        self.db
            .read(move |c| {
                let mut st = c.prepare(&sql).map_err(internal)?;
                let rows = st
                    .query_map(params_from_iter(args.iter()), record_from_row)
                    .map_err(internal)?;
                let rows = rows.collect::<Result<Vec<_>, _>>().map_err(internal)?;
                let mut records = finish_all(&files, rows)?;
                records.extend(batches::lookup(c, &files, &q)?);
                batches::sort_newest_first(&mut records);
                records.truncate(q.limit);
                Ok(records)
            })
            .await
    }

    async fn prune(
        &self,
        chain: &str,
        through_seq: u64,
        anchor: &Signed,
    ) -> Result<u64, StoreError> {
        let chain = chain.to_owned();
        let through = to_i64(through_seq)?;
        let anchor = anchor.clone();
        let files = self.files.clone();
        self.db
            .write(move |c| {
                let tx = c.transaction().map_err(internal)?;
                let n = tx
                    .execute("DELETE FROM audit_records WHERE chain = ?1 AND seq <= ?2", params![chain, through])
                    .map_err(internal)?;
                let n = u64::try_from(n).map_err(|e| StoreError::Internal(e.to_string()))?
                    + batches::prune(&tx, &chain, through_seq)?;
                tx.execute("DELETE FROM audit_digests WHERE chain = ?1 AND seq <= ?2", params![chain, through])
                    .map_err(internal)?;
                tx.execute(
                    "INSERT INTO audit_anchors (chain, seq, hash, time, signature) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, signature = excluded.signature",
                    params![anchor.chain, to_i64(anchor.seq)?, &anchor.hash[..], anchor.time_millis, &anchor.signature[..]],
                )
                .map_err(internal)?;
                tx.commit().map_err(internal)?;
                files.release_before(oldest_json_at(c)?)?;
                Ok(n)
            })
            .await
    }

    async fn last_seq_before(
        &self,
        chain: &str,
        before_millis: i64,
    ) -> Result<Option<u64>, StoreError> {
        let chain = chain.to_owned();
        self.db
            .read(move |c| {
                // The prefix of the chain whose records are all older than the cut-off: up to the
                // record before the first one at or after it (in rows or in runs).
                let first_new: Option<i64> = c
                    .query_row(
                        "SELECT MIN(seq) FROM audit_records WHERE chain = ?1 AND event_time >= ?2",
                        params![chain, before_millis],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(internal)?
                    .flatten();
                let first_new = [
                    first_new.map(to_u64).transpose()?,
                    batches::first_seq_at_or_after(c, &chain, before_millis)?,
                ]
                .into_iter()
                .flatten()
                .min();
                // The last seq before it (before none: the last of all), in rows or in runs.
                let below = first_new.map(to_i64).transpose()?.unwrap_or(i64::MAX);
                let last: Option<i64> = c
                    .query_row(
                        "SELECT MAX(s) FROM (
                             SELECT MAX(seq) AS s FROM audit_records WHERE chain = ?1 AND seq < ?2
                             UNION ALL
                             SELECT MAX(MIN(last_seq, ?2 - 1)) FROM audit_batches WHERE chain = ?1 AND first_seq < ?2
                         )",
                        params![chain, below],
                        |r| r.get(0),
                    )
                    .map_err(internal)?;
                last.map(to_u64).transpose()
            })
            .await
    }
}
