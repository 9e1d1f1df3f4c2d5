//! The PostgreSQL backend: one database shared by any number of stateless tresor nodes.
//!
//! - **Durability.** Every write is one transaction, acknowledged after PostgreSQL commits it
//!   (`synchronous_commit` as the server is configured; on by default).
//! - **Concurrency.** Key records are documents updated by compare-and-set on their `version`
//!   column; unique constraints decide races (a second insert of a key id, an alias name or a
//!   grant's idempotency token conflicts instead of duplicating).
//! - **Invalidation.** Every write that changes what nodes cache sends `NOTIFY
//!   tresor_invalidations` inside its own transaction, so the announcement goes out if and only
//!   if the write committed. [`PostgresStore::subscribe_invalidations`] starts one `LISTEN`
//!   connection per process on first use; it reconnects by itself and announces
//!   [`Invalidation::All`] whenever it (re)starts listening, because announcements may have been
//!   missed meanwhile.
//! - **Failures.** Lost connections, a server that is starting up or shutting down, pool and
//!   operation timeouts map to [`StoreError::Unavailable`] (a retryable answer to the client);
//!   the pool replaces broken connections by itself.
//! - **Schema.** Numbered migrations in the table `tresor_migrations`, applied at connect under an
//!   advisory lock (nodes starting together apply each migration once); a database migrated by a
//!   newer tresor is refused.
//!
//! Records are the same serde JSON documents the SQLite backend stores, so new record fields need
//! no schema change.

use std::future::Future;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use tokio::sync::broadcast;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};
use tresor_kms::identity::{AccessKeyRecord, PrincipalRecord};
use tresor_kms::store::{
    AliasRecord, GrantRecord, Invalidation, KeyListEntry, KeyRecord, KeyUsageRecord, Store,
    StoreError,
};
use tresor_kms::types::{AccountId, KeyId, Region, Timestamp};

/// The channel every node listens on.
pub const INVALIDATION_CHANNEL: &str = "tresor_invalidations";

/// Longest a single store operation may take before it is answered as unavailable.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Pool bounds: connections per process, and how long a request waits for one.
const POOL_SIZE: usize = 16;
const POOL_WAIT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the listening connection proves it is alive.
const LISTEN_PING: Duration = Duration::from_secs(5);
/// Capacity of the in-process invalidation fan-out; a subscriber further behind drops everything.
const FEED_CAPACITY: usize = 4096;

/// Serialises migrations of nodes starting together (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x7472_6573_6f72_0001;

/// Schema migrations, applied in order; `tresor_migrations` holds one row per applied number.
/// Never edit a released migration: add a new one. Text columns that are compared or ordered use
/// the `C` collation, so order is bytewise as in SQLite, whatever the database's locale.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "keys, identities, aliases, grants, key usage",
        r#"
        CREATE TABLE meta (
            name  TEXT COLLATE "C" PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE principals (
            arn TEXT COLLATE "C" PRIMARY KEY,
            doc TEXT NOT NULL
        );
        CREATE TABLE access_keys (
            access_key_id TEXT COLLATE "C" PRIMARY KEY,
            principal_arn TEXT COLLATE "C" NOT NULL,
            doc           TEXT NOT NULL
        );
        CREATE TABLE keys (
            seq     BIGSERIAL PRIMARY KEY,
            region  TEXT COLLATE "C" NOT NULL,
            key_id  TEXT COLLATE "C" NOT NULL,
            account TEXT COLLATE "C" NOT NULL,
            version BIGINT NOT NULL,
            due_at  BIGINT,
            doc     TEXT NOT NULL,
            UNIQUE (region, key_id)
        );
        CREATE INDEX keys_by_account ON keys (account, region, seq);
        CREATE INDEX keys_due ON keys (due_at) WHERE due_at IS NOT NULL;
        CREATE TABLE aliases (
            account       TEXT COLLATE "C" NOT NULL,
            region        TEXT COLLATE "C" NOT NULL,
            name          TEXT COLLATE "C" NOT NULL,
            target_key_id TEXT COLLATE "C" NOT NULL,
            doc           TEXT NOT NULL,
            PRIMARY KEY (account, region, name)
        );
        CREATE INDEX aliases_by_key ON aliases (region, target_key_id);
        CREATE TABLE grants (
            seq         BIGSERIAL PRIMARY KEY,
            key_region  TEXT COLLATE "C" NOT NULL,
            key_id      TEXT COLLATE "C" NOT NULL,
            grant_id    TEXT COLLATE "C" NOT NULL,
            retiring    TEXT COLLATE "C",
            idempotency TEXT COLLATE "C",
            doc         TEXT NOT NULL,
            UNIQUE (key_region, key_id, grant_id)
        );
        CREATE UNIQUE INDEX grants_idempotency ON grants (key_region, key_id, idempotency)
            WHERE idempotency IS NOT NULL;
        CREATE INDEX grants_by_key ON grants (key_region, key_id, seq);
        CREATE INDEX grants_by_retiring ON grants (retiring, seq) WHERE retiring IS NOT NULL;
        CREATE TABLE key_usage (
            region TEXT COLLATE "C" NOT NULL,
            key_id TEXT COLLATE "C" NOT NULL,
            time   BIGINT NOT NULL,
            doc    TEXT NOT NULL,
            PRIMARY KEY (region, key_id)
        );
        "#,
    ),
    (
        "audit log: records, resources, heads, digests, anchors",
        r#"
        CREATE TABLE audit_records (
            chain         TEXT COLLATE "C" NOT NULL,
            seq           BIGINT  NOT NULL,
            prev_hash     BYTEA   NOT NULL,
            hash          BYTEA   NOT NULL,
            event_time    BIGINT  NOT NULL,
            event_name    TEXT COLLATE "C" NOT NULL,
            account       TEXT COLLATE "C" NOT NULL,
            region        TEXT COLLATE "C" NOT NULL,
            principal_arn TEXT COLLATE "C",
            username      TEXT COLLATE "C",
            access_key_id TEXT COLLATE "C",
            error_code    TEXT COLLATE "C",
            read_only     BOOLEAN NOT NULL,
            event_id      TEXT COLLATE "C" NOT NULL,
            request_id    TEXT COLLATE "C" NOT NULL,
            resources     TEXT    NOT NULL,
            json          TEXT    NOT NULL,
            PRIMARY KEY (chain, seq)
        );
        CREATE INDEX audit_by_time ON audit_records (account, event_time);
        CREATE INDEX audit_by_event_time ON audit_records (event_time);
        CREATE TABLE audit_resources (
            chain TEXT COLLATE "C" NOT NULL,
            seq   BIGINT NOT NULL,
            arn   TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (arn, chain, seq)
        );
        CREATE INDEX audit_resources_by_record ON audit_resources (chain, seq);
        CREATE TABLE audit_heads (
            chain     TEXT COLLATE "C" PRIMARY KEY,
            seq       BIGINT NOT NULL,
            hash      BYTEA  NOT NULL,
            time      BIGINT NOT NULL,
            signature BYTEA  NOT NULL
        );
        CREATE TABLE audit_digests (
            chain     TEXT COLLATE "C" NOT NULL,
            seq       BIGINT NOT NULL,
            hash      BYTEA  NOT NULL,
            time      BIGINT NOT NULL,
            signature BYTEA  NOT NULL,
            PRIMARY KEY (chain, seq)
        );
        CREATE TABLE audit_anchors (
            chain     TEXT COLLATE "C" PRIMARY KEY,
            seq       BIGINT NOT NULL,
            hash      BYTEA  NOT NULL,
            time      BIGINT NOT NULL,
            signature BYTEA  NOT NULL
        );
        "#,
    ),
];

/// Maps a PostgreSQL error: connection trouble and transient server states are `Unavailable`
/// (the client may retry), unique violations `Conflict`, anything else `Internal`. Messages carry
/// the SQLSTATE and PostgreSQL's message, never row values or connection secrets.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let text = format!("{} ({})", db.message(), code.code());
        let class = code.code().get(..2).unwrap_or("");
        return if *code == SqlState::UNIQUE_VIOLATION {
            StoreError::Conflict(text)
        } else if matches!(class, "08" | "53" | "57" | "58" | "40") {
            // Connection exceptions, insufficient resources, operator intervention (shutdown,
            // starting up), system errors, and serialization failures/deadlocks: retryable.
            StoreError::Unavailable(text)
        } else {
            StoreError::Internal(text)
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let text = e.to_string();
    // tokio-postgres exposes no kind accessor besides `is_closed`; connect failures and timeouts
    // are recognised by their fixed texts.
    if e.is_closed()
        || io
        || text == "error connecting to server"
        || text == "timeout waiting for server"
        || text == "error communicating with the server"
    {
        StoreError::Unavailable(format!("PostgreSQL connection: {text}"))
    } else {
        StoreError::Internal(format!("PostgreSQL: {text}"))
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_err(e),
        PoolError::Timeout(t) => StoreError::Unavailable(format!(
            "no PostgreSQL connection available ({t:?} timeout)"
        )),
        PoolError::Closed => StoreError::Unavailable("the PostgreSQL pool is closed".into()),
        PoolError::NoRuntimeSpecified => {
            StoreError::Internal("the PostgreSQL pool has no runtime".into())
        }
        PoolError::PostCreateHook(e) => StoreError::Unavailable(format!("PostgreSQL: {e}")),
    }
}

/// Runs one store operation within [`OPERATION_TIMEOUT`].
pub(crate) async fn timed<T>(
    op: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(OPERATION_TIMEOUT, op)
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            ))
        })?
}

pub(crate) fn to_doc<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Internal(e.to_string()))
}

pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn to_i64(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| StoreError::Internal(e.to_string()))
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// `postgres://user@host:port/database`: the target without password or options, for messages.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or("")
    )
}

/// Whether `url` names a PostgreSQL database (`postgres://…` or `postgresql://…`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Parses a connection URL without echoing it (it may hold a password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    if !is_postgres_url(url) {
        return Err(StoreError::Internal(
            "a PostgreSQL store is named postgres://user[:password]@host[:port]/database".into(),
        ));
    }
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        StoreError::Internal(format!("invalid PostgreSQL URL{cause}"))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("tresor");
    }
    Ok(config)
}

struct Listener {
    feed: broadcast::Sender<Invalidation>,
    task: tokio::task::JoinHandle<()>,
}

pub(crate) struct DbInner {
    pub(crate) pool: Pool,
    config: tokio_postgres::Config,
    target: String,
    listener: Mutex<Option<Listener>>,
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if let Ok(mut l) = self.listener.lock()
            && let Some(l) = l.take()
        {
            l.task.abort();
        }
    }
}

/// A connection pool to one migrated database, shared by the store and the audit log.
#[derive(Clone)]
pub(crate) struct PgDb {
    pub(crate) inner: Arc<DbInner>,
}

impl PgDb {
    /// Connects, checks the server is reachable and applies pending migrations.
    pub(crate) async fn connect(url: &str) -> Result<PgDb, StoreError> {
        let config = parse_url(url)?;
        let target = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let db = PgDb {
            inner: Arc::new(DbInner {
                pool,
                config,
                target,
                listener: Mutex::new(None),
            }),
        };
        timed(db.migrate())
            .await
            .map_err(|e| db.context(e, "cannot open"))?;
        Ok(db)
    }

    /// Adds the (password-free) target to an error's text.
    fn context(&self, e: StoreError, what: &str) -> StoreError {
        let t = &self.inner.target;
        match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{what} {t}: {m}")),
            StoreError::Conflict(m) => StoreError::Conflict(format!("{what} {t}: {m}")),
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{what} {t}: {m}")),
            StoreError::Internal(m) => StoreError::Internal(format!("{what} {t}: {m}")),
        }
    }

    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_err)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS tresor_migrations (
                 version     INTEGER PRIMARY KEY,
                 description TEXT   NOT NULL,
                 applied_at  BIGINT NOT NULL
             )",
        )
        .await
        .map_err(pg_err)?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM tresor_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let known =
            i32::try_from(MIGRATIONS.len()).map_err(|e| StoreError::Internal(e.to_string()))?;
        if current > known {
            return Err(StoreError::Internal(format!(
                "database schema version {current} is newer than this tresor understands ({known}); upgrade tresor"
            )));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        for (i, (description, sql)) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(current).unwrap_or(0))
        {
            let version = i32::try_from(i + 1).map_err(|e| StoreError::Internal(e.to_string()))?;
            tx.batch_execute(sql).await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO tresor_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
                &[&version, description, &now],
            )
            .await
            .map_err(pg_err)?;
            tracing::info!(version, description, "applied PostgreSQL migration");
        }
        tx.commit().await.map_err(pg_err)
    }

    /// The feed of this process: one `LISTEN` connection, started on first use.
    fn subscribe(&self) -> Option<broadcast::Receiver<Invalidation>> {
        let mut guard = self.inner.listener.lock().ok()?;
        if let Some(l) = guard.as_ref() {
            return Some(l.feed.subscribe());
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("the PostgreSQL invalidation feed needs a tokio runtime");
            return None;
        };
        let (feed, rx) = broadcast::channel(FEED_CAPACITY);
        let task = runtime.spawn(listen_forever(
            self.inner.config.clone(),
            self.inner.target.clone(),
            feed.clone(),
        ));
        *guard = Some(Listener { feed, task });
        Some(rx)
    }
}

/// Sends one announcement inside the caller's transaction (delivered only if it commits).
pub(crate) async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    what: &Invalidation,
) -> Result<(), StoreError> {
    let payload = encode_invalidation(what);
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&INVALIDATION_CHANNEL, &payload],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

fn key_invalidation(region: &str, key_id: &str) -> Invalidation {
    match (Region::parse(region), KeyId::parse(key_id)) {
        (Some(region), Some(key_id)) => Invalidation::Key { region, key_id },
        _ => Invalidation::All,
    }
}

/// `k\t<region>\t<key id>`, `p\t<principal ARN>`, `a\t<access key id>`, `*`.
fn encode_invalidation(what: &Invalidation) -> String {
    match what {
        Invalidation::Key { region, key_id } => format!("k\t{region}\t{key_id}"),
        Invalidation::Principal { arn } => format!("p\t{arn}"),
        Invalidation::AccessKey { access_key_id } => format!("a\t{access_key_id}"),
        Invalidation::All => "*".to_owned(),
    }
}

/// Anything unreadable invalidates everything (safe, never stale).
fn decode_invalidation(payload: &str) -> Invalidation {
    let mut parts = payload.split('\t');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("k"), Some(region), Some(key_id), None) => key_invalidation(region, key_id),
        (Some("p"), Some(arn), None, None) => Invalidation::Principal {
            arn: arn.to_owned(),
        },
        (Some("a"), Some(id), None, None) => Invalidation::AccessKey {
            access_key_id: id.to_owned(),
        },
        _ => Invalidation::All,
    }
}

/// Keeps a `LISTEN` connection open for the life of the process, reconnecting with backoff.
async fn listen_forever(
    config: tokio_postgres::Config,
    target: String,
    feed: broadcast::Sender<Invalidation>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&config, &feed).await {
            Ok(()) => {
                tracing::warn!(%target, "the PostgreSQL invalidation connection ended; reconnecting");
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(%target, error = %e, "cannot listen for invalidations; retrying");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// One listening session: returns when the connection is lost.
async fn listen_once(
    config: &tokio_postgres::Config,
    feed: &broadcast::Sender<Invalidation>,
) -> Result<(), StoreError> {
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
        .map_err(pg_err)?;
    let (payloads_tx, mut payloads) = tokio::sync::mpsc::unbounded_channel::<String>();
    // Drives the connection and hands notifications over; ends when the connection does.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if payloads_tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let result = async {
        tokio::time::timeout(
            OPERATION_TIMEOUT,
            client.batch_execute(&format!("LISTEN {INVALIDATION_CHANNEL}")),
        )
        .await
        .map_err(|_| StoreError::Unavailable("LISTEN timed out".into()))?
        .map_err(pg_err)?;
        // Anything committed before LISTEN took effect was not heard: everyone drops everything.
        let _ = feed.send(Invalidation::All);
        let mut ping = tokio::time::interval(LISTEN_PING);
        ping.tick().await;
        loop {
            tokio::select! {
                payload = payloads.recv() => match payload {
                    Some(p) => {
                        let _ = feed.send(decode_invalidation(&p));
                    }
                    None => return Ok(()),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(OPERATION_TIMEOUT, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(pg_err(e)),
                        Err(_) => return Err(StoreError::Unavailable("ping timed out".into())),
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    db: PgDb,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.db.inner.target)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database[?options]`) and applies
    /// pending migrations. The URL is never logged or echoed (it may hold a password).
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Ok(PostgresStore {
            db: PgDb::connect(url).await?,
        })
    }

    /// The audit log in the same database, sharing this store's connection pool.
    pub fn audit_log(&self) -> crate::postgres_audit::PostgresAuditLog {
        crate::postgres_audit::PostgresAuditLog::from_db(self.db.clone())
    }

    /// `postgres://user@host:port/database` (no password, no options).
    pub fn target(&self) -> &str {
        &self.db.inner.target
    }

    async fn meta_value(&self, name: &str) -> Result<Option<String>, StoreError> {
        let c = self.db.client().await?;
        let st = c
            .prepare_cached("SELECT value FROM meta WHERE name = $1")
            .await
            .map_err(pg_err)?;
        Ok(c.query_opt(&st, &[&name])
            .await
            .map_err(pg_err)?
            .map(|r| r.get(0)))
    }

    async fn doc_opt(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<String>, StoreError> {
        let c = self.db.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        Ok(c.query_opt(&st, args)
            .await
            .map_err(pg_err)?
            .map(|r| r.get(0)))
    }

    async fn docs(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        let c = self.db.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        Ok(c.query(&st, args)
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn seq_docs(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError> {
        let c = self.db.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        c.query(&st, args)
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| {
                let doc: String = r.get(1);
                Ok((r.get(0), from_doc(&doc)?))
            })
            .collect()
    }

    async fn count(
        &self,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let c = self.db.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pg_err)?;
        let n: i64 = c.query_one(&st, args).await.map_err(pg_err)?.get(0);
        count_u64(n)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        timed(async {
            let c = self.db.client().await?;
            c.simple_query("SELECT 1").await.map_err(pg_err)?;
            Ok(())
        })
        .await
    }

    async fn get_meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        timed(self.meta_value(name)).await
    }

    async fn put_meta_if_absent(&self, name: &str, value: &str) -> Result<String, StoreError> {
        timed(async {
            {
                let c = self.db.client().await?;
                // Waits for a concurrent insert of the same name to commit or roll back.
                c.execute(
                    "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[&name, &value],
                )
                .await
                .map_err(pg_err)?;
            }
            // A new statement (and snapshot) sees whichever insert won.
            self.meta_value(name)
                .await?
                .ok_or_else(|| StoreError::Internal(format!("meta value {name} vanished")))
        })
        .await
    }

    async fn upsert_principal(&self, principal: &PrincipalRecord) -> Result<(), StoreError> {
        let doc = to_doc(principal)?;
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO principals (arn, doc) VALUES ($1, $2) ON CONFLICT (arn) DO UPDATE SET doc = EXCLUDED.doc",
                &[&principal.arn, &doc],
            )
            .await
            .map_err(pg_err)?;
            notify(&tx, &Invalidation::Principal { arn: principal.arn.clone() }).await?;
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn get_principal(&self, arn: &str) -> Result<Option<PrincipalRecord>, StoreError> {
        let doc = timed(self.doc_opt("SELECT doc FROM principals WHERE arn = $1", &[&arn])).await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn upsert_access_key(&self, key: &AccessKeyRecord) -> Result<(), StoreError> {
        let doc = to_doc(key)?;
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO access_keys (access_key_id, principal_arn, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (access_key_id) DO UPDATE SET principal_arn = EXCLUDED.principal_arn, doc = EXCLUDED.doc",
                &[&key.access_key_id, &key.principal_arn, &doc],
            )
            .await
            .map_err(pg_err)?;
            notify(
                &tx,
                &Invalidation::AccessKey { access_key_id: key.access_key_id.clone() },
            )
            .await?;
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn get_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Option<AccessKeyRecord>, StoreError> {
        let doc = timed(self.doc_opt(
            "SELECT doc FROM access_keys WHERE access_key_id = $1",
            &[&access_key_id],
        ))
        .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>, StoreError> {
        let docs =
            timed(self.docs("SELECT doc FROM access_keys ORDER BY access_key_id", &[])).await?;
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
        // A new key is in nobody's cache: nothing to announce.
        timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO keys (region, key_id, account, version, doc, due_at) VALUES ($1, $2, $3, 1, $4, $5)",
                )
                .await
                .map_err(pg_err)?;
            match c.execute(&st, &[&region, &key_id, &account, &doc, &due]).await {
                Ok(_) => Ok(()),
                Err(e) => match pg_err(e) {
                    StoreError::Conflict(_) => Err(StoreError::Conflict(format!(
                        "key {key_id} exists in {region}"
                    ))),
                    other => Err(other),
                },
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
        let row: Option<(i64, String)> = timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached("SELECT version, doc FROM keys WHERE region = $1 AND key_id = $2")
                .await
                .map_err(pg_err)?;
            Ok(c.query_opt(&st, &[&region, &key_id])
                .await
                .map_err(pg_err)?
                .map(|r| (r.get(0), r.get(1))))
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
        let expected = to_i64(key.version)?;
        let due = key.next_due().map(Timestamp::millis);
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let n = tx
                .execute(
                    "UPDATE keys SET doc = $1, version = version + 1, due_at = $5 WHERE region = $2 AND key_id = $3 AND version = $4",
                    &[&doc, &region, &key_id, &expected, &due],
                )
                .await
                .map_err(pg_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(format!("key {key_id} changed concurrently")));
            }
            notify(&tx, &Invalidation::Key { region: key.region.clone(), key_id: key.key_id }).await?;
            tx.commit().await.map_err(pg_err)
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
        let (after, limit) = (after.unwrap_or(0), limit_i64(limit));
        // AWS-DEVIATION: pages follow the insertion sequence; an insert by another node that
        // commits late can land behind a page already returned.
        let rows: Vec<(i64, String)> = timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT seq, key_id FROM keys WHERE account = $1 AND region = $2 AND seq > $3 ORDER BY seq LIMIT $4",
                )
                .await
                .map_err(pg_err)?;
            Ok(c.query(&st, &[&account, &region, &after, &limit])
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
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
        timed(self.count(
            "SELECT COUNT(*) FROM keys WHERE account = $1 AND region = $2",
            &[&account, &region],
        ))
        .await
    }

    async fn keys_due(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Region, KeyId)>, StoreError> {
        let (now, limit) = (now.millis(), limit_i64(limit));
        let rows: Vec<(String, String)> = timed(async {
            let c = self.db.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT region, key_id FROM keys WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
                )
                .await
                .map_err(pg_err)?;
            Ok(c.query(&st, &[&now, &limit])
                .await
                .map_err(pg_err)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
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
        let (r, k) = (region.to_string(), key_id.to_string());
        let expected = to_i64(expected_version)?;
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let n = tx
                .execute(
                    "DELETE FROM keys WHERE region = $1 AND key_id = $2 AND version = $3",
                    &[&r, &k, &expected],
                )
                .await
                .map_err(pg_err)?;
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "key {k} changed concurrently"
                )));
            }
            for sql in [
                "DELETE FROM aliases WHERE region = $1 AND target_key_id = $2",
                "DELETE FROM grants WHERE key_region = $1 AND key_id = $2",
                "DELETE FROM key_usage WHERE region = $1 AND key_id = $2",
            ] {
                tx.execute(sql, &[&r, &k]).await.map_err(pg_err)?;
            }
            notify(
                &tx,
                &Invalidation::Key {
                    region: region.clone(),
                    key_id: *key_id,
                },
            )
            .await?;
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn create_alias(&self, alias: &AliasRecord) -> Result<(), StoreError> {
        let (account, region, target, doc) = (
            alias.account.to_string(),
            alias.region.to_string(),
            alias.target_key_id.to_string(),
            to_doc(alias)?,
        );
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            match tx
                .execute(
                    "INSERT INTO aliases (account, region, name, target_key_id, doc) VALUES ($1, $2, $3, $4, $5)",
                    &[&account, &region, &alias.name, &target, &doc],
                )
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    return Err(match pg_err(e) {
                        StoreError::Conflict(_) => {
                            StoreError::Conflict(format!("alias {} exists", alias.name))
                        }
                        other => other,
                    });
                }
            }
            notify(
                &tx,
                &Invalidation::Key { region: alias.region.clone(), key_id: alias.target_key_id },
            )
            .await?;
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn get_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        let doc = timed(self.doc_opt(
            "SELECT doc FROM aliases WHERE account = $1 AND region = $2 AND name = $3",
            &[&account, &region, &name],
        ))
        .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn update_alias(&self, alias: &AliasRecord) -> Result<bool, StoreError> {
        let (account, region, target, doc) = (
            alias.account.to_string(),
            alias.region.to_string(),
            alias.target_key_id.to_string(),
            to_doc(alias)?,
        );
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let old: Option<String> = tx
                .query_opt(
                    "SELECT target_key_id FROM aliases WHERE account = $1 AND region = $2 AND name = $3 FOR UPDATE",
                    &[&account, &region, &alias.name],
                )
                .await
                .map_err(pg_err)?
                .map(|r| r.get(0));
            let Some(old) = old else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE aliases SET target_key_id = $4, doc = $5 WHERE account = $1 AND region = $2 AND name = $3",
                &[&account, &region, &alias.name, &target, &doc],
            )
            .await
            .map_err(pg_err)?;
            notify(&tx, &key_invalidation(&region, &old)).await?;
            notify(&tx, &key_invalidation(&region, &target)).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(true)
        })
        .await
    }

    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &str,
    ) -> Result<bool, StoreError> {
        let (account, region) = (account.to_string(), region.to_string());
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let target: Option<String> = tx
                .query_opt(
                    "DELETE FROM aliases WHERE account = $1 AND region = $2 AND name = $3 RETURNING target_key_id",
                    &[&account, &region, &name],
                )
                .await
                .map_err(pg_err)?
                .map(|r| r.get(0));
            let Some(target) = target else {
                return Ok(false);
            };
            notify(&tx, &key_invalidation(&region, &target)).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(true)
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
        let limit = limit_i64(limit);
        let docs = timed(self.docs(
            "SELECT doc FROM aliases WHERE account = $1 AND region = $2 AND ($3::text IS NULL OR target_key_id = $3)
             AND name > $4 ORDER BY name LIMIT $5",
            &[&account, &region, &target, &after, &limit],
        ))
        .await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    async fn insert_grant(
        &self,
        grant: &GrantRecord,
        idempotency_token: Option<&str>,
    ) -> Result<GrantRecord, StoreError> {
        let (region, key_id, doc) = (
            grant.key_region.to_string(),
            grant.key_id.to_string(),
            to_doc(grant)?,
        );
        let doc_back: String = timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            // With a token, a concurrent insert of the same token (on any node) waits for the
            // other transaction and then finds its grant instead of adding a second one.
            let inserted = tx
                .query_opt(
                    "INSERT INTO grants (key_region, key_id, grant_id, retiring, idempotency, doc) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (key_region, key_id, idempotency) WHERE idempotency IS NOT NULL DO NOTHING
                     RETURNING doc",
                    &[&region, &key_id, &grant.grant_id, &grant.retiring_principal, &idempotency_token, &doc],
                )
                .await
                .map_err(pg_err)?
                .map(|r| r.get::<_, String>(0));
            match inserted {
                Some(d) => {
                    notify(
                        &tx,
                        &Invalidation::Key { region: grant.key_region.clone(), key_id: grant.key_id },
                    )
                    .await?;
                    tx.commit().await.map_err(pg_err)?;
                    Ok(d)
                }
                None => {
                    tx.rollback().await.map_err(pg_err)?;
                    // The statement's snapshot predates the winner's commit: look again.
                    let c = self.db.client().await?;
                    c.query_opt(
                        "SELECT doc FROM grants WHERE key_region = $1 AND key_id = $2 AND idempotency = $3",
                        &[&region, &key_id, &idempotency_token],
                    )
                    .await
                    .map_err(pg_err)?
                    .map(|r| r.get::<_, String>(0))
                    .ok_or_else(|| StoreError::Conflict("the grant with this idempotency token was deleted concurrently".into()))
                }
            }
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
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let doc = timed(self.doc_opt(
            "SELECT doc FROM grants WHERE key_region = $1 AND key_id = $2 AND grant_id = $3",
            &[&region, &key_id, &grant_id],
        ))
        .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn delete_grant(
        &self,
        region: &Region,
        key_id: &KeyId,
        grant_id: &str,
    ) -> Result<bool, StoreError> {
        let (r, k) = (region.to_string(), key_id.to_string());
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let n = tx
                .execute(
                    "DELETE FROM grants WHERE key_region = $1 AND key_id = $2 AND grant_id = $3",
                    &[&r, &k, &grant_id],
                )
                .await
                .map_err(pg_err)?;
            if n != 1 {
                return Ok(false);
            }
            notify(
                &tx,
                &Invalidation::Key {
                    region: region.clone(),
                    key_id: *key_id,
                },
            )
            .await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(true)
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
        let (after, limit) = (after.unwrap_or(0), limit_i64(limit));
        timed(self.seq_docs(
            "SELECT seq, doc FROM grants WHERE key_region = $1 AND key_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            &[&region, &key_id, &after, &limit],
        ))
        .await
    }

    async fn list_retirable_grants(
        &self,
        retiring_principal: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<(i64, GrantRecord)>, StoreError> {
        let (after, limit) = (after.unwrap_or(0), limit_i64(limit));
        timed(self.seq_docs(
            "SELECT seq, doc FROM grants WHERE retiring = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&retiring_principal, &after, &limit],
        ))
        .await
    }

    async fn count_grants(&self, region: &Region, key_id: &KeyId) -> Result<u64, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        timed(self.count(
            "SELECT COUNT(*) FROM grants WHERE key_region = $1 AND key_id = $2",
            &[&region, &key_id],
        ))
        .await
    }

    async fn record_key_usage(&self, usage: &[KeyUsageRecord]) -> Result<(), StoreError> {
        let mut rows = usage
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
        // One lock order for every node's batch, so concurrent flushes cannot deadlock.
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        rows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        timed(async {
            let mut c = self.db.client().await?;
            let tx = c.transaction().await.map_err(pg_err)?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO key_usage (region, key_id, time, doc) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (region, key_id) DO UPDATE SET time = EXCLUDED.time, doc = EXCLUDED.doc
                     WHERE EXCLUDED.time >= key_usage.time",
                )
                .await
                .map_err(pg_err)?;
            for (region, key_id, time, doc) in &rows {
                tx.execute(&st, &[region, key_id, time, doc])
                    .await
                    .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
        .await
    }

    async fn get_key_usage(
        &self,
        region: &Region,
        key_id: &KeyId,
    ) -> Result<Option<KeyUsageRecord>, StoreError> {
        let (region, key_id) = (region.to_string(), key_id.to_string());
        let doc = timed(self.doc_opt(
            "SELECT doc FROM key_usage WHERE region = $1 AND key_id = $2",
            &[&region, &key_id],
        ))
        .await?;
        doc.as_deref().map(from_doc).transpose()
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        let docs = timed(self.docs("SELECT doc FROM principals ORDER BY arn", &[])).await?;
        docs.iter().map(|d| from_doc(d)).collect()
    }

    fn subscribe_invalidations(&self) -> Option<broadcast::Receiver<Invalidation>> {
        self.db.subscribe()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_garbage_invalidates_everything() {
        let k = Invalidation::Key {
            region: Region::parse("eu-west-1").unwrap(),
            key_id: KeyId::new_random(),
        };
        let p = Invalidation::Principal {
            arn: "arn:aws:iam::111122223333:user/alice".into(),
        };
        let a = Invalidation::AccessKey {
            access_key_id: "AKIAEXAMPLE".into(),
        };
        for what in [k, p, a, Invalidation::All] {
            assert_eq!(decode_invalidation(&encode_invalidation(&what)), what);
        }
        for junk in ["", "k\tnot-a-region\tx", "k\tus-east-1", "x\ty", "p\ta\tb"] {
            assert_eq!(decode_invalidation(junk), Invalidation::All, "{junk:?}");
        }
    }

    #[test]
    fn urls_are_checked_without_echoing_them() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("sqlite"));
        let e = parse_url("postgres://u:s3cret@h:notaport/db").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let c = parse_url("postgres://u:s3cret@db.example:6543/tresor").unwrap();
        assert_eq!(describe(&c), "postgres://u@db.example:6543/tresor");
    }
}
