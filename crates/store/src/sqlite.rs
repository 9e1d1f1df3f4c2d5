//! The embedded default store: one SQLite file in the data directory.
//!
//! WAL journal with `synchronous=FULL`, so a committed write survives power loss. One writer
//! connection (SQLite allows one writer at a time anyway), whose calls run on tokio's blocking
//! pool, and a few reader connections, each on its own thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use async_trait::async_trait;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tresor_kms::identity::{AccessKeyRecord, PrincipalRecord};
use tresor_kms::store::{
    AliasRecord, GrantRecord, KeyListEntry, KeyRecord, KeyUsageRecord, Store, StoreError,
};
use tresor_kms::types::Timestamp;
use tresor_kms::types::{AccountId, KeyId, Region};

/// Schema migrations, applied in order; the database's `user_version` is the number applied.
/// Never edit a released migration: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: identities, keys, small named values.
    r#"
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE principals (
        arn TEXT PRIMARY KEY,
        doc TEXT NOT NULL
    );
    CREATE TABLE access_keys (
        access_key_id TEXT PRIMARY KEY,
        principal_arn TEXT NOT NULL,
        doc           TEXT NOT NULL
    );
    CREATE TABLE keys (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        region  TEXT NOT NULL,
        key_id  TEXT NOT NULL,
        account TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc     TEXT NOT NULL,
        UNIQUE (region, key_id)
    );
    CREATE INDEX keys_by_account ON keys (account, region, seq);
    "#,
    // 2: aliases, grants, last key usage, scheduled work.
    r#"
    ALTER TABLE keys ADD COLUMN due_at INTEGER;
    CREATE INDEX keys_due ON keys (due_at) WHERE due_at IS NOT NULL;
    CREATE TABLE aliases (
        account       TEXT    NOT NULL,
        region        TEXT    NOT NULL,
        name          TEXT    NOT NULL,
        target_key_id TEXT    NOT NULL,
        doc           TEXT    NOT NULL,
        PRIMARY KEY (account, region, name)
    );
    CREATE INDEX aliases_by_key ON aliases (region, target_key_id);
    CREATE TABLE grants (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        key_region  TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        grant_id    TEXT NOT NULL,
        retiring    TEXT,
        idempotency TEXT,
        doc         TEXT NOT NULL,
        UNIQUE (key_region, key_id, grant_id)
    );
    CREATE UNIQUE INDEX grants_idempotency ON grants (key_region, key_id, idempotency) WHERE idempotency IS NOT NULL;
    CREATE INDEX grants_by_retiring ON grants (retiring, seq) WHERE retiring IS NOT NULL;
    CREATE TABLE key_usage (
        region  TEXT NOT NULL,
        key_id  TEXT NOT NULL,
        time    INTEGER NOT NULL,
        doc     TEXT NOT NULL,
        PRIMARY KEY (region, key_id)
    );
    "#,
    // 3: the number of keys per account and Region, kept by triggers, so the key quota check of
    // CreateKey reads one row instead of counting every key (it was O(keys) per CreateKey).
    r#"
    CREATE TABLE key_counts (
        account TEXT    NOT NULL,
        region  TEXT    NOT NULL,
        n       INTEGER NOT NULL,
        PRIMARY KEY (account, region)
    );
    INSERT INTO key_counts (account, region, n) SELECT account, region, COUNT(*) FROM keys GROUP BY account, region;
    CREATE TRIGGER keys_counted AFTER INSERT ON keys BEGIN
        INSERT OR IGNORE INTO key_counts (account, region, n) VALUES (NEW.account, NEW.region, 0);
        UPDATE key_counts SET n = n + 1 WHERE account = NEW.account AND region = NEW.region;
    END;
    CREATE TRIGGER keys_uncounted AFTER DELETE ON keys BEGIN
        UPDATE key_counts SET n = n - 1 WHERE account = OLD.account AND region = OLD.region;
    END;
    "#,
];

const READERS: usize = 4;

/// A read, run by one of the reader threads on its connection.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Reads queue here for [`READERS`] threads, each with its own read-only connection, instead
    /// of each taking a thread of tokio's blocking pool: the pool starts a new thread whenever
    /// none is idle at that instant, and kept 50–80 of them alive under load at 100,000 keys
    /// (eighteenth session). A read whose request went away still runs; its answer is dropped.
    /// `None` once the database closes (the readers then finish the queue and end).
    read_jobs: Option<std::sync::mpsc::Sender<ReadJob>>,
    reader_threads: Vec<std::thread::JoinHandle<()>>,
    write_slot: Arc<tokio::sync::Semaphore>,
    /// The background checkpointer and its thread.
    checkpointer: Option<(Arc<Checkpointer>, std::thread::JoinHandle<()>)>,
}

impl Drop for Inner {
    /// Ends the reader threads and the checkpointer and waits for them, so once the database is
    /// dropped none of its connections is open (its files can be copied).
    fn drop(&mut self) {
        self.read_jobs = None;
        for t in self.reader_threads.drain(..) {
            // A read's closure never holds the database, but a reader must not wait for itself.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        if let Some((c, thread)) = self.checkpointer.take() {
            c.stop.store(true, Ordering::Release);
            c.wake();
            let _ = thread.join();
        }
    }
}

/// How a database's write-ahead log is copied back into the database file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Checkpoints {
    /// SQLite's default: the commit that takes the WAL past 1000 pages checkpoints, inside that
    /// commit (so that one commit waits for it).
    Inline,
    /// A thread of the database's own checkpoints (PASSIVE: never blocking the writer) once the
    /// WAL passes [`CHECKPOINT_AFTER_BYTES`], so no commit waits for a checkpoint. If the
    /// checkpoints cannot catch up (a WAL restarts only when it is fully checkpointed at the
    /// start of a write), the writer restarts it itself past [`WAL_LIMIT_BYTES`].
    Background,
}

/// WAL size at which the background checkpointer starts (SQLite's own default of 1,000 pages at
/// 4 KiB; in pages of the database's size).
const CHECKPOINT_AFTER_BYTES: i64 = 4 << 20;
/// WAL size at which the writer restarts the log (a RESTART checkpoint).
const WAL_LIMIT_BYTES: i64 = 64 << 20;

/// The background checkpointer's shared state: the WAL size the writer last saw, and a wake-up.
struct Checkpointer {
    wal_pages: AtomicI64,
    /// [`CHECKPOINT_AFTER_BYTES`] and [`WAL_LIMIT_BYTES`] in the database's pages.
    after_pages: i64,
    limit_pages: i64,
    stop: AtomicBool,
    pending: Mutex<bool>,
    signal: Condvar,
}

impl Checkpointer {
    fn wake(&self) {
        if let Ok(mut p) = self.pending.lock() {
            *p = true;
            self.signal.notify_one();
        }
    }

    /// Runs on its own thread with its own connection until the database is dropped.
    fn run(self: Arc<Self>, conn: Connection) {
        loop {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            while !*pending && !self.stop.load(Ordering::Acquire) {
                pending = match self.signal.wait(pending) {
                    Ok(p) => p,
                    Err(_) => return,
                };
            }
            *pending = false;
            drop(pending);
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                Ok(_) => {}
                // Another checkpoint holds the checkpoint lock (the writer restarting a log that
                // outgrew its limit): nothing is wrong, and the next wake-up tries again.
                Err(rusqlite::Error::SqliteFailure(code, _))
                    if code.code == rusqlite::ErrorCode::DatabaseBusy =>
                {
                    tracing::debug!("background WAL checkpoint skipped: another checkpoint runs");
                }
                Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
            }
        }
    }
}

/// One SQLite database file: a writer connection, reader connections, numbered migrations.
#[derive(Clone)]
pub(crate) struct Db {
    inner: Arc<Inner>,
}

/// SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    db: Db,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.db.inner.path)
            .finish()
    }
}

/// The write slot is never closed; this maps the error its type still declares.
fn closed(e: tokio::sync::AcquireError) -> StoreError {
    StoreError::Internal(e.to_string())
}

pub(crate) fn internal(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(ref code, _)
            if matches!(
                code.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(internal)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(internal)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(internal)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(internal)?;
    Ok(())
}

fn to_doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn from_doc<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            db: Db::open(path, MIGRATIONS, Checkpoints::Inline, None)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.db.inner.path
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.write(f).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.read(f).await
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and applies pending `migrations`.
    pub(crate) fn open(
        path: &Path,
        migrations: &[&str],
        checkpoints: Checkpoints,
        page_size: Option<u32>,
    ) -> Result<Db, StoreError> {
        let mut writer = Connection::open(path).map_err(internal)?;
        if let Some(n) = page_size {
            // Takes effect only when the file is created (next statement); an existing database
            // keeps its page size.
            writer
                .pragma_update(None, "page_size", n)
                .map_err(internal)?;
        }
        configure(&writer)?;
        migrate(&writer, migrations)?;
        let checkpointer = match checkpoints {
            Checkpoints::Inline => None,
            Checkpoints::Background => {
                let page_size: i64 = writer
                    .pragma_query_value(None, "page_size", |r| r.get(0))
                    .map_err(internal)?;
                let page_size = page_size.max(512);
                let shared = Arc::new(Checkpointer {
                    wal_pages: AtomicI64::new(0),
                    after_pages: CHECKPOINT_AFTER_BYTES / page_size,
                    limit_pages: WAL_LIMIT_BYTES / page_size,
                    stop: AtomicBool::new(false),
                    pending: Mutex::new(false),
                    signal: Condvar::new(),
                });
                let conn = Connection::open(path).map_err(internal)?;
                configure(&conn)?;
                // Registering a WAL hook replaces SQLite's automatic checkpoint on this connection.
                let hook = shared.clone();
                writer
                    .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
                        hook.wal_pages.store(i64::from(pages), Ordering::Release);
                        if i64::from(pages) >= hook.after_pages {
                            hook.wake();
                        }
                        Ok(())
                    }))
                    .map_err(internal)?;
                let runner = shared.clone();
                let thread = std::thread::Builder::new()
                    .name("tresor-sqlite-checkpoint".into())
                    .spawn(move || runner.run(conn))
                    .map_err(|e| StoreError::Internal(format!("checkpoint thread: {e}")))?;
                Some((shared, thread))
            }
        };
        let (read_jobs, queue) = std::sync::mpsc::channel::<ReadJob>();
        let queue = Arc::new(Mutex::new(queue));
        let mut reader_threads = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(internal)?;
            r.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(internal)?;
            let queue = queue.clone();
            let thread = std::thread::Builder::new()
                .name("tresor-sqlite-read".into())
                .spawn(move || run_reader(&r, &queue))
                .map_err(|e| StoreError::Internal(format!("reader thread: {e}")))?;
            reader_threads.push(thread);
        }
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                read_jobs: Some(read_jobs),
                reader_threads,
                write_slot: Arc::new(tokio::sync::Semaphore::new(1)),
                checkpointer,
            }),
        })
    }

    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let slot = self
            .inner
            .write_slot
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            db.write_blocking(f)
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// [`Db::write`] on the calling thread (for a thread whose job is to wait for the database).
    pub(crate) fn write_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError>,
    {
        let mut conn = self
            .inner
            .writer
            .lock()
            .map_err(|_| StoreError::Internal("writer lock poisoned".into()))?;
        let result = f(&mut conn);
        if let Some((c, _)) = &self.inner.checkpointer
            && c.wal_pages.load(Ordering::Acquire) >= c.limit_pages
        {
            // The background checkpoints fell behind: copy the rest and restart the log now.
            match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART) {
                Ok(_) => c.wal_pages.store(0, Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "WAL restart checkpoint failed"),
            }
        }
        result
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |c: &Connection| {
            let _ = tx.send(f(c));
        });
        self.inner
            .read_jobs
            .as_ref()
            .and_then(|q| q.send(job).ok())
            .ok_or_else(|| StoreError::Unavailable("the database is closing".into()))?;
        // Dropped without an answer only if the read panicked (the reader survives it).
        rx.await
            .map_err(|_| StoreError::Internal("a database read failed".into()))?
    }
}

/// A reader thread: runs queued reads on its connection until the database closes.
fn run_reader(conn: &Connection, queue: &Mutex<std::sync::mpsc::Receiver<ReadJob>>) {
    loop {
        // One thread waits on the queue at a time; the others wait for the lock.
        let job = match queue.lock() {
            Ok(q) => q.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
    }
}

fn migrate(conn: &Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(internal)?;
    let known = i64::try_from(migrations.len()).map_err(|e| StoreError::Internal(e.to_string()))?;
    if current > known {
        return Err(StoreError::Internal(format!(
            "database schema version {current} is newer than this tresor understands ({known}); upgrade tresor"
        )));
    }
    for (i, sql) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let version = i + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(internal)?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(internal))
            .await
    }

    async fn get_meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            c.query_row("SELECT value FROM meta WHERE name = ?1", [&name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn put_meta_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.write(move |c| {
            let tx = c.transaction().map_err(internal)?;
            tx.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
                params![name, value],
            )
            .map_err(internal)?;
            let stored: String = tx
                .query_row("SELECT value FROM meta WHERE name = ?1", [&name], |r| {
                    r.get(0)
                })
                .map_err(internal)?;
            tx.commit().map_err(internal)?;
            Ok(stored)
        })
        .await
    }

    async fn upsert_principal(&self, principal: &PrincipalRecord) -> Result<(), StoreError> {
        let (arn, doc) = (principal.arn.clone(), to_doc(principal)?);
        self.write(move |c| {
            c.execute(
                "INSERT INTO principals (arn, doc) VALUES (?1, ?2) ON CONFLICT (arn) DO UPDATE SET doc = excluded.doc",
                params![arn, doc],
            )
            .map(|_| ())
            .map_err(internal)
        })
        .await
    }

    async fn get_principal(&self, arn: &str) -> Result<Option<PrincipalRecord>, StoreError> {
        let arn = arn.to_owned();
        let doc: Option<String> = self
            .read(move |c| {
                c.query_row("SELECT doc FROM principals WHERE arn = ?1", [&arn], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(internal)
            })
            .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn upsert_access_key(&self, key: &AccessKeyRecord) -> Result<(), StoreError> {
        let (id, principal, doc) = (
            key.access_key_id.clone(),
            key.principal_arn.clone(),
            to_doc(key)?,
        );
        self.write(move |c| {
            c.execute(
                "INSERT INTO access_keys (access_key_id, principal_arn, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (access_key_id) DO UPDATE SET principal_arn = excluded.principal_arn, doc = excluded.doc",
                params![id, principal, doc],
            )
            .map(|_| ())
            .map_err(internal)
        })
        .await
    }

    async fn get_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<AccessKeyRecord>, StoreError> {
        let id = access_key_id.to_owned();
        let doc: Option<String> = self
            .read(move |c| {
                c.query_row(
                    "SELECT doc FROM access_keys WHERE access_key_id = ?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)
            })
            .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let docs: Vec<String> = self
            .read(|c| {
                let mut st = c
                    .prepare("SELECT doc FROM access_keys ORDER BY access_key_id")
                    .map_err(internal)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(internal)
            })
            .await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn insert_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let (region, key_id, account, doc) = (
            key.region.to_string(),
            key.key_id.to_string(),
            key.account.to_string(),
            to_doc(key)?,
        );
        let due = key.next_due().map(Timestamp::millis);
        self.write(move |c| {
            match c.execute(
                "INSERT INTO keys (region, key_id, account, version, doc, due_at) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                params![region, key_id, account, doc, due],
            ) {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Conflict(format!("key {key_id} exists in {region}")))
                }
                Err(e) => Err(internal(e)),
            }
        })
        .await
    }

    async fn get_key(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let row: Option<(i64, String)> = self
            .read(move |c| {
                c.query_row(
                    "SELECT version, doc FROM keys WHERE region = ?1 AND key_id = ?2",
                    params![region, key_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(internal)
            })
            .await?;
        row.map(|(version, doc)| {
            let mut k: KeyRecord = from_doc(&doc)?;
            k.version = u64::try_from(version).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(k)
        })
        .transpose()
    }

    async fn update_key(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let (region, key_id, doc) = (key.region.to_string(), key.key_id.to_string(), to_doc(key)?);
        let expected =
            i64::try_from(key.version).map_err(|e| StoreError::Internal(e.to_string()))?;
        let due = key.next_due().map(Timestamp::millis);
        self.write(move |c| {
            let n = c
                .execute(
                    "UPDATE keys SET doc = ?1, version = version + 1, due_at = ?5 WHERE region = ?2 AND key_id = ?3 AND version = ?4",
                    params![doc, region, key_id, expected, due],
                )
                .map_err(internal)?;
            if n == 1 { Ok(()) } else { Err(StoreError::Conflict(format!("key {key_id} changed concurrently"))) }
        })
        .await
    }

    async fn list_keys(
        &self,
        account: &AccountId,
        region: &Region,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<KeyListEntry>, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        let after = after.unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT seq, key_id FROM keys WHERE account = ?1 AND region = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                    )
                    .map_err(internal)?;
                let rows = st
                    .query_map(params![account, region, after, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(internal)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(internal)
            })
            .await?;
        rows.into_iter()
            .map(|(seq, id)| {
                let key_id = KeyId::parse(&id)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad key id {id}")))?;
                Ok(KeyListEntry { seq, key_id })
            })
            .collect()
    }

    async fn count_keys(&self, account: &AccountId, region: &Region) -> Result<u64, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        let n: i64 = self
            .read(move |c| {
                c.query_row(
                    "SELECT n FROM key_counts WHERE account = ?1 AND region = ?2",
                    params![account, region],
                    |r| r.get(0),
                )
                .optional()
                .map(Option::unwrap_or_default)
                .map_err(internal)
            })
            .await?;
        u64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn keys_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Region, KeyId)>, StoreError> {
        let now = now.millis();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String)> = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached("SELECT region, key_id FROM keys WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?2")
                    .map_err(internal)?;
                let rows = st.query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(internal)
            })
            .await?;
        rows.into_iter()
            .map(|(r, k)| {
                let region = Region::parse(&r)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad region {r}")))?;
                let key_id = KeyId::parse(&k)
                    .ok_or_else(|| StoreError::Corrupt(format!("bad key id {k}")))?;
                Ok((region, key_id))
            })
            .collect()
    }

    async fn purge_key(
        &self,
        region: &Region,
        key_id: &KeyId,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let expected =
            i64::try_from(expected_version).map_err(|e| StoreError::Internal(e.to_string()))?;
        self.write(move |c| {
            let tx = c.transaction().map_err(internal)?;
            let n = tx
                .execute(
                    "DELETE FROM keys WHERE region = ?1 AND key_id = ?2 AND version = ?3",
                    params![region, key_id, expected],
                )
                .map_err(internal)?;
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "key {key_id} changed concurrently"
                )));
            }
            tx.execute(
                "DELETE FROM aliases WHERE region = ?1 AND target_key_id = ?2",
                params![region, key_id],
            )
            .map_err(internal)?;
            tx.execute(
                "DELETE FROM grants WHERE key_region = ?1 AND key_id = ?2",
                params![region, key_id],
            )
            .map_err(internal)?;
            tx.execute(
                "DELETE FROM key_usage WHERE region = ?1 AND key_id = ?2",
                params![region, key_id],
            )
            .map_err(internal)?;
            tx.commit().map_err(internal)
        })
        .await
    }

    async fn create_alias(&self, alias: &AliasRecord) -> Result<(), StoreError> {
        let (account, region, name, target, doc) = (
            alias.account.to_string(),
            alias.region.to_string(),
            alias.name.clone(),
            alias.target_key_id.to_string(),
            to_doc(alias)?,
        );
        self.write(move |c| {
            match c.execute(
                "INSERT INTO aliases (account, region, name, target_key_id, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![account, region, name, target, doc],
            ) {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Conflict(format!("alias {name} exists")))
                }
                Err(e) => Err(internal(e)),
            }
        })
        .await
    }

    async fn get_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_owned());
        let doc: Option<String> = self
            .read(move |c| {
                c.query_row(
                    "SELECT doc FROM aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
                    params![account, region, name],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)
            })
            .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn update_alias(&self, alias: &AliasRecord) -> Result<bool, StoreError> {
        let (account, region, name, target, doc) = (
            alias.account.to_string(),
            alias.region.to_string(),
            alias.name.clone(),
            alias.target_key_id.to_string(),
            to_doc(alias)?,
        );
        self.write(move |c| {
            c.execute(
                "UPDATE aliases SET target_key_id = ?4, doc = ?5 WHERE account = ?1 AND region = ?2 AND name = ?3",
                params![account, region, name, target, doc],
            )
            .map(|n| n == 1)
            .map_err(internal)
        })
        .await
    }

    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (account, region, name) = (account.to_string(), region.to_string(), name.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM aliases WHERE account = ?1 AND region = ?2 AND name = ?3",
                params![account, region, name],
            )
            .map(|n| n == 1)
            .map_err(internal)
        })
        .await
    }

    async fn list_aliases(
        &self,
        account: &AccountId,
        region: &Region,
        target: Option<&KeyId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        let target = target.map(ToString::to_string);
        let after = after.unwrap_or("").to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let docs: Vec<String> = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT doc FROM aliases WHERE account = ?1 AND region = ?2 AND (?3 IS NULL OR target_key_id = ?3)
                         AND name > ?4 ORDER BY name LIMIT ?5",
                    )
                    .map_err(internal)?;
                let rows = st.query_map(params![account, region, target, after, limit], |r| r.get(0)).map_err(internal)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(internal)
            })
            .await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        idempotency_token: Option<&str>,
    ) -> Result<GrantRecord, StoreError> {
        let (region, key_id, grant_id, retiring, doc) = (
            grant.key_region.to_string(),
            grant.key_id.to_string(),
            grant.grant_id.clone(),
            grant.retiring_principal.clone(),
            to_doc(grant)?,
        );
        let token = idempotency_token.map(str::to_owned);
        let doc_back: String = self
            .write(move |c| {
                let tx = c.transaction().map_err(internal)?;
                if let Some(t) = &token {
                    let existing: Option<String> = tx
                        .query_row(
                            "SELECT doc FROM grants WHERE key_region = ?1 AND key_id = ?2 AND idempotency = ?3",
                            params![region, key_id, t],
                            |r| r.get(0),
                        )
                        .optional()
                        .map_err(internal)?;
                    if let Some(d) = existing {
                        return Ok(d);
                    }
                }
                tx.execute(
                    "INSERT INTO grants (key_region, key_id, grant_id, retiring, idempotency, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![region, key_id, grant_id, retiring, token, doc],
                )
                .map_err(internal)?;
                tx.commit().map_err(internal)?;
                Ok(doc)
            })
            .await?;
        from_doc(&doc_back)
    }

    async fn get_grant(
        &self,
        region: &Region,
        key_id: &KeyId,
        grant_id: &str,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let (region, key_id, grant_id) =
            (region.to_string(), key_id.to_string(), grant_id.to_owned());
        let doc: Option<String> = self
            .read(move |c| {
                c.query_row(
                    "SELECT doc FROM grants WHERE key_region = ?1 AND key_id = ?2 AND grant_id = ?3",
                    params![region, key_id, grant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)
            })
            .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn delete_grant(
        &self,
        region: &Region,
        key_id: &KeyId,
        grant_id: &str,
    ) -> Result<bool, StoreError> {
        let (region, key_id, grant_id) =
            (region.to_string(), key_id.to_string(), grant_id.to_owned());
        self.write(move |c| {
            c.execute(
                "DELETE FROM grants WHERE key_region = ?1 AND key_id = ?2 AND grant_id = ?3",
                params![region, key_id, grant_id],
            )
            .map(|n| n == 1)
            .map_err(internal)
        })
        .await
    }

    async fn list_grants(
        &self,
        region: &Region,
        key_id: &KeyId,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let after = after.unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached(
                        "SELECT seq, doc FROM grants WHERE key_region = ?1 AND key_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
                    )
                    .map_err(internal)?;
                let rows = st.query_map(params![region, key_id, after, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(internal)
            })
            .await?;
        rows.into_iter()
            .map(|(seq, d)| Ok((seq, from_doc(&d)?)))
            .collect()
    }

    async fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError> {
        let retiring = retiring_principal.to_owned();
        let after = after.unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String)> = self
            .read(move |c| {
                let mut st = c
                    .prepare_cached("SELECT seq, doc FROM grants WHERE retiring = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
                    .map_err(internal)?;
                let rows = st.query_map(params![retiring, after, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(internal)
            })
            .await?;
        rows.into_iter()
            .map(|(seq, d)| Ok((seq, from_doc(&d)?)))
            .collect()
    }

    async fn count_grants(&self, region: &Region, key_id: &KeyId) -> Result<u64, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let n: i64 = self
            .read(move |c| {
                c.query_row(
                    "SELECT COUNT(*) FROM grants WHERE key_region = ?1 AND key_id = ?2",
                    params![region, key_id],
                    |r| r.get(0),
                )
                .map_err(internal)
            })
            .await?;
        u64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn record_key_usage(&self, usage: &[KeyUsageRecord]) -> Result<(), StoreError> {
        let rows = usage
            .iter()
            .map(|u| {
                Ok((
                    u.region.to_string(),
                    u.key_id.to_string(),
                    u.timestamp.millis(),
                    to_doc(u)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write(move |c| {
            let tx = c.transaction().map_err(internal)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO key_usage (region, key_id, time, doc) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (region, key_id) DO UPDATE SET time = excluded.time, doc = excluded.doc
                         WHERE excluded.time >= key_usage.time",
                    )
                    .map_err(internal)?;
                for (region, key_id, time, doc) in &rows {
                    st.execute(params![region, key_id, time, doc]).map_err(internal)?;
                }
            }
            tx.commit().map_err(internal)
        })
        .await
    }

    async fn get_key_usage(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<KeyUsageRecord>, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let doc: Option<String> = self
            .read(move |c| {
                c.query_row(
                    "SELECT doc FROM key_usage WHERE region = ?1 AND key_id = ?2",
                    params![region, key_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)
            })
            .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        let docs: Vec<String> = self
            .read(|c| {
                let mut st = c
                    .prepare("SELECT doc FROM principals ORDER BY arn")
                    .map_err(internal)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
                rows.collect::<Result<Vec<String>, _>>().map_err(internal)
            })
            .await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    /// None: one process owns the SQLite file, so there is no other node to hear from. The core
    /// invalidates its caches after its own writes; writes by another process on the same file
    /// (`tresor admin` while the server runs) are seen within the caches' one-second TTL.
    fn subscribe_invalidations(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<tresor_kms::store::Invalidation>> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("t.db"),
            &["CREATE TABLE t (n INTEGER)"],
            Checkpoints::Inline,
            None,
        )
        .unwrap();
        (dir, db)
    }

    /// Reads run on the database's own reader threads, many at once, and each sees what was
    /// committed before it was asked for.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_run_on_the_reader_threads() {
        let (_dir, db) = db();
        db.write(|c| c.execute("INSERT INTO t VALUES (7)", []).map_err(internal))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.read(|c| {
                    let n: i64 = c
                        .query_row("SELECT n FROM t", [], |r| r.get(0))
                        .map_err(internal)?;
                    Ok((n, std::thread::current().name().map(str::to_owned)))
                })
                .await
            }));
        }
        for t in tasks {
            let (n, thread) = t.await.unwrap().unwrap();
            assert_eq!(n, 7);
            assert_eq!(thread.as_deref(), Some("tresor-sqlite-read"));
        }
    }

    /// A read that panics fails alone: the readers go on serving the next reads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_read_fails_and_the_readers_survive() {
        let (_dir, db) = db();
        for _ in 0..(2 * READERS) {
            let e = db
                .read(|_| -> Result<(), StoreError> { panic!("a bug in a read") })
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Internal(_)), "{e:?}");
        }
        let n: i64 = db
            .read(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(internal)
            })
            .await
            .unwrap();
        assert_eq!(n, 0);
    }
}
