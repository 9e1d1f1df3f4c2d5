//! `tresor serve`: start-up, the listener, background audit tasks, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tresor_kms::audit_log::{AuditWriterConfig, GroupCommitAuditSink};
use tresor_kms::clock::{Clock, SystemClock};
use tresor_kms::{Kms, KmsConfig};

use crate::auth::SigningKeyCache;
use crate::bootstrap;
use crate::config::ServeConfig;
use crate::http::{AppState, serve};

/// Cache bounds per store. With SQLite this process is the only writer of key records (it drops
/// a key from its cache on every change it makes; `tresor admin` changes identities, not keys),
/// so cached keys may live long — cost stays flat with 100,000 keys. Identities keep the
/// one-second bound (the admin CLI writes them from another process). With PostgreSQL other
/// nodes write too: one second for everything (see docs/operations.md).
fn kms_config(store: &crate::config::StoreSpec) -> KmsConfig {
    match store {
        crate::config::StoreSpec::Sqlite => KmsConfig {
            key_cache_ttl: Duration::from_secs(300),
            ..KmsConfig::default()
        },
        crate::config::StoreSpec::Postgres(_) => KmsConfig::default(),
    }
}

/// Resolves on SIGTERM or SIGINT. The SIGTERM handler is installed when this is called (not
/// when the future is first polled), so a SIGTERM right after "listening" is a clean stop.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("signal received");
    }
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn serve_forever(cfg: ServeConfig) -> Result<(), String> {
    let opened = bootstrap::open(&cfg.data_dir, &cfg.root_key_file, &cfg.file, &cfg.store).await?;
    let chain = bootstrap::audit_chain(&cfg.data_dir, &cfg.store, cfg.node_id.as_deref())?;
    let wall_clock = Arc::new(SystemClock::with_offset_seconds(cfg.clock_offset_seconds));
    let core_clock = Arc::new(SystemClock::with_offset_seconds(
        cfg.clock_offset_seconds
            .saturating_add(cfg.test_clock_offset_seconds),
    ));
    let clock: Arc<dyn Clock> = core_clock.clone();
    let (sink, writer) = GroupCommitAuditSink::start(
        opened.audit.clone(),
        opened.audit_signer.clone(),
        clock.clone(),
        AuditWriterConfig {
            chain,
            ..AuditWriterConfig::default()
        },
    )
    .await
    .map_err(|e| format!("cannot start the audit log: {e}"))?;
    let kms = Arc::new(Kms::new(
        opened.store,
        opened.root,
        clock.clone(),
        Arc::new(sink),
        kms_config(&cfg.store),
    ));
    // Several nodes on one database: drop what other nodes changed as soon as they announce it
    // (the one-second cache TTL bounds staleness if announcements are lost).
    let invalidations = if cfg.test_ignore_invalidations {
        None
    } else {
        kms.follow_invalidations()
    };
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let shutdown = shutdown_signal();
    let endpoint = format!("http://{addr}");
    if let Some(b) = &opened.new_bootstrap {
        let path = std::fs::canonicalize(&b.credentials_file)
            .unwrap_or_else(|_| b.credentials_file.clone());
        // Printed once, on the first start: the secret itself stays in the 0600 file.
        println!(
            "tresor: created the bootstrap administrator {} (access key {})",
            b.principal_arn, b.access_key_id
        );
        println!(
            "tresor: its credentials are in {} (profile \"tresor\"); to use them:",
            path.display()
        );
        println!(
            "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=tresor AWS_DEFAULT_REGION=us-east-1",
            path.display()
        );
        println!("  aws kms create-key --endpoint-url {endpoint}");
    }
    // A machine-readable line tests and scripts wait for.
    println!("tresor: listening on {endpoint}");
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "tresor listening");

    // Scheduled key work: once at start (work that fell due while the server was down) and then
    // every few seconds.
    kms.run_due_work().await;
    let scheduler = {
        let kms = kms.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                kms.run_due_work().await;
            }
        })
    };
    // Key usage (GetKeyLastUsage) is noted in memory by every call and reaches the store in
    // batches: every 10 seconds, and once more at shutdown (GetKeyLastUsage writes what is noted
    // before it reads). Every key used in an interval is one row written, so the interval bounds
    // the write load when calls spread over many keys (1 s cost ~5 % of the server's CPU with
    // 20,000 keys in use), and so does `key_usage_rewrite_after` (a key's use is rewritten at
    // most once a minute); the periodic flush is paced, so a large one does not take a core in
    // one piece.
    let usage_flusher = {
        let kms = kms.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                if let Err(e) = kms.flush_key_usage_paced().await {
                    tracing::warn!(error = %e, "cannot record key usage; retried");
                }
            }
        })
    };
    let kms_at_shutdown = kms.clone();
    let background = tokio::spawn(audit_maintenance(
        cfg.clone(),
        opened.audit.clone(),
        opened.audit_signer.clone(),
        clock,
    ));
    let state = Arc::new(AppState {
        kms,
        health: std::sync::Mutex::new(None),
        audit: opened.audit,
        wall_clock,
        test_clock: cfg.test_clock.then_some(core_clock),
        signing_keys: SigningKeyCache::default(),
        file: cfg.file.clone(),
        limits: cfg.limits.clone(),
        throttle: crate::throttle::Throttle::new(&cfg.throttle),
    });
    serve(listener, state, shutdown, Duration::from_secs(10)).await;
    background.abort();
    if let Some(task) = invalidations {
        task.abort();
    }
    scheduler.abort();
    let _ = scheduler.await;
    usage_flusher.abort();
    let _ = usage_flusher.await;
    if let Err(e) = kms_at_shutdown.flush_key_usage().await {
        tracing::warn!(error = %e, "cannot record key usage at shutdown");
    }
    // The audit writer stops only once every handle on the core (and so on its sink) is gone.
    drop(kms_at_shutdown);
    // The last reference to the sink went with the listener state: the writer commits what is
    // queued and stops.
    if tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .is_err()
    {
        tracing::warn!("the audit writer did not finish within 10 s");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Periodic export and pruning of the audit log.
async fn audit_maintenance(
    cfg: ServeConfig,
    audit: Arc<dyn tresor_kms::audit_log::AuditBackend>,
    signer: Arc<tresor_crypto::Ed25519Signer>,
    clock: Arc<dyn Clock>,
) {
    if cfg.audit.export_dir.is_none() && cfg.audit.retention_days.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(cfg.audit.export_interval.max(Duration::from_secs(1)));
    loop {
        tick.tick().await;
        if let Some(dir) = &cfg.audit.export_dir {
            match crate::audit_ops::export(&*audit, dir).await {
                Ok(s) if s.records > 0 => tracing::info!(
                    records = s.records,
                    files = s.files.len(),
                    "exported audit records"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit export failed"),
            }
        }
        if let Some(days) = cfg.audit.retention_days {
            match crate::audit_ops::prune_older_than(&*audit, &signer, days, clock.now()).await {
                Ok(n) if n > 0 => {
                    tracing::info!(records = n, "pruned audit records past retention")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit pruning failed"),
            }
        }
    }
}
