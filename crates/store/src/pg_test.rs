//! Test support: throwaway databases on the machine's PostgreSQL server.
//!
//! Every [`TestDatabase`] is a new database with a unique name, dropped (with its connections)
//! when the value is dropped, so test runs neither interfere nor leave anything behind. The
//! server is `TRESOR_TEST_POSTGRES_URL` (a URL of a database the tests may connect to, to create
//! others), or else `127.0.0.1:5432`, database `test`, user `root` or `postgres` (trust
//! authentication). An unreachable server is a test failure, never a skip: `.ci/run` starts it.
//!
//! Tests hold the server with [`share_server`] (tests that only use it) or [`own_server`] (a test
//! that stops and starts it): an advisory lock on a file in the temp directory, so concurrent test
//! processes and concurrent test runs on one machine never see each other's restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr as _;
use std::time::Duration;

use tokio_postgres::NoTls;

/// The environment variable naming the maintenance database.
pub const ENV_URL: &str = "TRESOR_TEST_POSTGRES_URL";

fn candidates() -> Vec<String> {
    match std::env::var(ENV_URL) {
        Ok(url) if !url.is_empty() => vec![url],
        _ => vec![
            "postgres://root@127.0.0.1:5432/test".to_owned(),
            "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        ],
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    config.connect_timeout(Duration::from_secs(10));
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        format!("{e}{cause}")
    })?;
    tokio::spawn(connection);
    Ok(client)
}

/// The first maintenance URL that accepts a connection.
async fn maintenance() -> (String, tokio_postgres::Client) {
    let mut errors = Vec::new();
    for url in candidates() {
        match connect(&url).await {
            Ok(c) => return (url, c),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    panic!(
        "PostgreSQL is not reachable for the tests ({}). Start it (`.ci/run` does: \
         pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set {ENV_URL}.",
        errors.join("; ")
    );
}

/// A hold on the machine's PostgreSQL server, released on drop.
#[derive(Debug)]
pub struct ServerHold {
    _lock: std::fs::File,
}

async fn hold(exclusive: bool) -> ServerHold {
    let path = std::env::temp_dir().join("tresor-postgres-tests.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
        ServerHold { _lock: file }
    })
    .await
    .unwrap()
}

/// For a test that uses the server: waits while a test stops it.
pub async fn share_server() -> ServerHold {
    hold(false).await
}

/// For a test that stops and starts the server: waits until no other test uses it.
pub async fn own_server() -> ServerHold {
    hold(true).await
}

/// A fresh database, dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    maintenance_url: String,
    config: tokio_postgres::Config,
}

impl TestDatabase {
    /// Creates a uniquely named, empty database. Panics if PostgreSQL cannot be reached.
    pub async fn create() -> TestDatabase {
        let (maintenance_url, client) = maintenance().await;
        let name = format!("tresor_test_{}", uuid::Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e:?}"));
        let mut config = tokio_postgres::Config::from_str(&maintenance_url).unwrap();
        config.dbname(&name);
        let url = with_dbname(&maintenance_url, &name);
        TestDatabase {
            name,
            url,
            maintenance_url,
            config,
        }
    }

    /// `postgres://user@host:port/<this database>` (with the maintenance URL's options).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL with `search_path` set to `schema`, which [`Self::create_schema`] made.
    pub fn url_with_schema(&self, schema: &str) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{schema}", self.url)
    }

    /// Creates a schema in this database (cheap isolation inside one test).
    pub async fn create_schema(&self, schema: &str) {
        self.execute(&format!("CREATE SCHEMA \"{schema}\"")).await;
    }

    /// Runs SQL in this database (tampering with rows, inspecting tables).
    pub async fn execute(&self, sql: &str) {
        let client = self.client().await;
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// A connection to this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e:?}", self.name));
        tokio::spawn(connection);
        client
    }

    /// Host, port and user, for the command-line tools (`pg_dump`, `psql`).
    pub fn cli_args(&self) -> Vec<String> {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".to_owned(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        vec![
            "-h".into(),
            host,
            "-p".into(),
            port.to_string(),
            "-U".into(),
            self.config.get_user().unwrap_or("postgres").to_owned(),
        ]
    }
}

/// Replaces the database name in a `postgres://…/db?opts` URL.
fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.maintenance_url.clone(), self.name.clone());
        // A runtime of its own on a thread of its own: drop may run inside a test's runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                // The server may be restarting (a failed test stopped it): retry for a while.
                let mut last = String::new();
                for _ in 0..60 {
                    match connect(&url).await {
                        Ok(client) => {
                            return client
                                .batch_execute(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await
                                .map_err(|e| format!("{e:?}"));
                        }
                        Err(e) => last = e,
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(last)
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_dbname("postgres://root@127.0.0.1:5432/test", "x"),
            "postgres://root@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_dbname("postgres://root@h/test?sslmode=disable", "x"),
            "postgres://root@h/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://root@h", "x"), "postgres://root@h/x");
    }
}
