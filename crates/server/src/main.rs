//! The `tresor` command.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tresor::config::{FileConfig, Limits, ServeConfig};

#[derive(Parser)]
#[command(name = "tresor", version, about = "Self-hosted encryption at rest that speaks the AWS KMS wire protocol")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: ./tresor-data, 127.0.0.1:4599, embedded SQLite).
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Data directory (database, root key, bootstrap credentials).
    #[arg(long, env = "TRESOR_DATA_DIR", default_value = "./tresor-data")]
    data_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TRESOR_LISTEN", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// TOML file declaring accounts, principals and access keys.
    #[arg(long, env = "TRESOR_CONFIG")]
    config: Option<PathBuf>,
    /// Root key file (default: <data-dir>/root.key). Keep it apart from database backups.
    #[arg(long, env = "TRESOR_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Log filter (tracing syntax), e.g. `info` or `tresor=debug`.
    #[arg(long, env = "TRESOR_LOG", default_value = "info")]
    log: String,
    /// Maximum request body size in bytes.
    #[arg(long, env = "TRESOR_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Maximum concurrent connections.
    #[arg(long, env = "TRESOR_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Shift the server's clock by this many seconds (testing only).
    #[arg(long, env = "TRESOR_CLOCK_OFFSET_SECONDS", default_value_t = 0, hide = true)]
    clock_offset_seconds: i64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let file = match &args.config {
        Some(p) => match FileConfig::load(p) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("tresor: {e}");
                return ExitCode::from(2);
            }
        },
        None => FileConfig::default(),
    };
    let mut limits = Limits::default();
    if let Some(n) = args.max_body_bytes {
        limits.max_body_bytes = n;
    }
    if let Some(n) = args.max_connections {
        limits.max_connections = n.max(1);
    }
    let root_key_file = args.root_key_file.clone().unwrap_or_else(|| args.data_dir.join(tresor::bootstrap::ROOT_KEY_FILE));
    let cfg = ServeConfig {
        data_dir: args.data_dir,
        listen: args.listen,
        root_key_file,
        file,
        limits,
        clock_offset_seconds: args.clock_offset_seconds,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tresor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tresor::run::serve_forever(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tresor: {e}");
            ExitCode::FAILURE
        }
    }
}
