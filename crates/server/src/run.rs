//! `tresor serve`: start-up, the listener, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tresor_kms::audit::MemoryAuditSink;
use tresor_kms::clock::SystemClock;
use tresor_kms::{Kms, KmsConfig};

use crate::auth::SigningKeyCache;
use crate::bootstrap;
use crate::config::ServeConfig;
use crate::http::{AppState, serve};

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
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

/// Runs the server until SIGTERM/SIGINT.
pub async fn serve_forever(cfg: ServeConfig) -> Result<(), String> {
    let opened = bootstrap::open(&cfg.data_dir, &cfg.root_key_file, &cfg.file).await?;
    let clock = Arc::new(SystemClock::with_offset_seconds(cfg.clock_offset_seconds));
    // AWS-DEVIATION: audit records are kept in memory only until the durable audit log lands.
    let audit = Arc::new(MemoryAuditSink::new(10_000));
    let kms = Arc::new(Kms::new(opened.store, opened.root, clock, audit, KmsConfig::default()));
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let endpoint = format!("http://{addr}");
    if let Some(b) = &opened.new_bootstrap {
        let path = std::fs::canonicalize(&b.credentials_file).unwrap_or_else(|_| b.credentials_file.clone());
        // Printed once, on the first start: the secret itself stays in the 0600 file.
        println!("tresor: created the bootstrap administrator {} (access key {})", b.principal_arn, b.access_key_id);
        println!("tresor: its credentials are in {} (profile \"tresor\"); to use them:", path.display());
        println!(
            "  export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=tresor AWS_DEFAULT_REGION=us-east-1",
            path.display()
        );
        println!("  aws kms create-key --endpoint-url {endpoint}");
    }
    // A machine-readable line tests and scripts wait for.
    println!("tresor: listening on {endpoint}");
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "tresor listening");

    let state = Arc::new(AppState {
        kms,
        signing_keys: SigningKeyCache::default(),
        file: cfg.file.clone(),
        limits: cfg.limits.clone(),
    });
    serve(listener, state, shutdown_signal(), Duration::from_secs(10)).await;
    tracing::info!("stopped");
    Ok(())
}
