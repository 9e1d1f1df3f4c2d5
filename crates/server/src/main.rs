//! The `tresor` command.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// mimalloc: request handling is allocation-heavy (JSON, SigV4 canonicalisation, condition
/// contexts); glibc malloc was over a quarter of server CPU under load (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tresor::config::{AuditConfig, FileConfig, Limits, ServeConfig, StoreSpec};

#[derive(Parser)]
#[command(
    name = "tresor",
    version,
    about = "Self-hosted encryption at rest that speaks the AWS KMS wire protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: ./tresor-data, 127.0.0.1:4599, embedded SQLite).
    Serve(ServeArgs),
    /// Inspect the audit log: verify its integrity, look records up, export, prune.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage identities: identity policies and access keys.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Explain why a request was (or would be) allowed or denied: replay an audit record
    /// (--event-id) or describe a request (--principal, --action, --key).
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Replay the request of this audit record (its eventID).
    #[arg(long, conflicts_with_all = ["principal", "action", "key"])]
    event_id: Option<String>,
    /// The caller: an IAM user or role ARN, an assumed-role session ARN, or an account root ARN.
    #[arg(long)]
    principal: Option<String>,
    /// A service principal acting as itself (e.g. voiceid.amazonaws.com).
    #[arg(long)]
    service_principal: Option<String>,
    /// The action, e.g. kms:Decrypt.
    #[arg(long)]
    action: Option<String>,
    /// The key ARN (or alias ARN).
    #[arg(long)]
    key: Option<String>,
    /// Encryption context pairs, key=value (repeatable).
    #[arg(long = "encryption-context")]
    encryption_context: Vec<String>,
    /// The service calling on the principal's behalf (kms:ViaService).
    #[arg(long)]
    via_service: Option<String>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Attach (or replace) a named identity-based policy on a user or role.
    PutPrincipalPolicy {
        #[command(flatten)]
        data: DataArgs,
        /// arn:aws:iam::<account>:user/<name> or …:role/<name> (created if needed).
        #[arg(long)]
        principal: String,
        #[arg(long)]
        name: String,
        /// File holding the policy document, or `-` for standard input.
        #[arg(long)]
        document: PathBuf,
    },
    /// Remove a named identity-based policy.
    DeletePrincipalPolicy {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        principal: String,
        #[arg(long)]
        name: String,
    },
    /// List principals with their policy names and access key ids.
    ListPrincipals {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Create an access key pair for a principal; prints the secret once.
    CreateAccessKey {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        principal: String,
        /// For roles: the session name (assumed-role/<role>/<session>).
        #[arg(long)]
        session_name: Option<String>,
    },
}

#[derive(clap::Args, Clone)]
struct DataArgs {
    /// Data directory (database, root key, bootstrap credentials).
    #[arg(long, env = "TRESOR_DATA_DIR", default_value = "./tresor-data")]
    data_dir: PathBuf,
    /// Root key file (default: <data-dir>/root.key). Keep it apart from database backups.
    #[arg(long, env = "TRESOR_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Where keys and the audit log live: `sqlite` (default: files in the data directory) or
    /// `postgres://user[:password]@host[:port]/database` (shared by several nodes). Prefer the
    /// environment variable or the config file's `store` when the URL holds a password.
    #[arg(long, env = "TRESOR_STORE", hide_env_values = true)]
    store: Option<String>,
}

impl DataArgs {
    fn root_key_file(&self) -> PathBuf {
        self.root_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(tresor::bootstrap::ROOT_KEY_FILE))
    }

    /// `--store`, else the config file's `store`, else SQLite.
    fn store_spec(&self, file: Option<&StoreSpec>) -> Result<StoreSpec, String> {
        match &self.store {
            Some(s) => StoreSpec::parse(s).map_err(|e| format!("--store: {e}")),
            None => Ok(file.cloned().unwrap_or_default()),
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TRESOR_LISTEN", default_value = "127.0.0.1:4599")]
    listen: SocketAddr,
    /// TOML file declaring accounts, principals and access keys.
    #[arg(long, env = "TRESOR_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter (tracing syntax), e.g. `info` or `tresor=debug`.
    #[arg(long, env = "TRESOR_LOG", default_value = "info")]
    log: String,
    /// Maximum request body size in bytes.
    #[arg(long, env = "TRESOR_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Maximum concurrent connections.
    #[arg(long, env = "TRESOR_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Prune audit records older than this many days (default: keep all).
    #[arg(long, env = "TRESOR_AUDIT_RETENTION_DAYS")]
    audit_retention_days: Option<u32>,
    /// Export new audit records in CloudTrail's log file layout to this directory.
    #[arg(long, env = "TRESOR_AUDIT_EXPORT_DIR")]
    audit_export_dir: Option<PathBuf>,
    /// How often to export and prune, in seconds.
    #[arg(
        long,
        env = "TRESOR_AUDIT_EXPORT_INTERVAL_SECONDS",
        default_value_t = 300
    )]
    audit_export_interval_seconds: u64,
    /// Shift the server's clock by this many seconds (testing only).
    #[arg(
        long,
        env = "TRESOR_CLOCK_OFFSET_SECONDS",
        default_value_t = 0,
        hide = true
    )]
    clock_offset_seconds: i64,
    /// Testing only: serve `PUT /_tresor/test/clock-offset` (unauthenticated) to move the core clock.
    #[arg(long, hide = true)]
    test_clock: bool,
    /// Testing only: start the core clock (key lifecycle time, not SigV4's) this many seconds ahead.
    #[arg(long, hide = true, default_value_t = 0)]
    test_clock_offset_seconds: i64,
    /// This node's id: the audit chain it writes (default: `main` with SQLite; with PostgreSQL an
    /// id generated at first start and kept in <data-dir>/node-id). Unique per node.
    #[arg(long, env = "TRESOR_NODE_ID")]
    node_id: Option<String>,
    /// Testing only: ignore the store's invalidation announcements (caches expire by TTL alone).
    #[arg(long, hide = true)]
    test_ignore_invalidations: bool,
    /// Requests per second each principal (caller ARN) may make; beyond it (and its burst) calls
    /// answer ThrottlingException. Default: no limit.
    #[arg(long, env = "TRESOR_THROTTLE_PRINCIPAL_RPS")]
    throttle_principal_rps: Option<f64>,
    /// Requests a principal may make at once before its rate applies (default: one second's worth).
    #[arg(
        long,
        env = "TRESOR_THROTTLE_PRINCIPAL_BURST",
        requires = "throttle_principal_rps"
    )]
    throttle_principal_burst: Option<f64>,
    /// Requests per second that may name one KMS key (across all callers). Default: no limit.
    #[arg(long, env = "TRESOR_THROTTLE_KEY_RPS")]
    throttle_key_rps: Option<f64>,
    /// Requests that may name one key at once before its rate applies (default: one second's worth).
    #[arg(long, env = "TRESOR_THROTTLE_KEY_BURST", requires = "throttle_key_rps")]
    throttle_key_burst: Option<f64>,
    /// Testing only: the header read timeout in milliseconds (default 10 s).
    #[arg(long, hide = true)]
    test_header_read_timeout_ms: Option<u64>,
    /// Testing only: the body read timeout in milliseconds (default 30 s).
    #[arg(long, hide = true)]
    test_body_read_timeout_ms: Option<u64>,
}

#[derive(Subcommand)]
// Parsed once per process: the lookup's many filters make its variant large, which costs nothing.
#[allow(clippy::large_enum_variant)]
enum AuditCommand {
    /// Check the hash chain, digests and signed head of every chain; exit 1 on any problem.
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// Verify against this public key (64 hex characters, from `tresor audit public-key`)
        /// instead of deriving it with the root key.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Print matching records (CloudTrail JSON, one per line, newest first).
    Lookup {
        #[command(flatten)]
        data: DataArgs,
        /// Earliest event time (RFC 3339 or epoch seconds).
        #[arg(long)]
        start: Option<String>,
        /// Latest event time (RFC 3339 or epoch seconds).
        #[arg(long)]
        end: Option<String>,
        #[arg(long)]
        event_name: Option<String>,
        /// Key ARN among the record's resources.
        #[arg(long)]
        key_arn: Option<String>,
        /// The caller's ARN (userIdentity.arn).
        #[arg(long)]
        principal_arn: Option<String>,
        #[arg(long)]
        error_code: Option<String>,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        region: Option<String>,
        /// One record, by its eventID.
        #[arg(long)]
        event_id: Option<String>,
        /// The caller's user name, as `LookupEvents`' `Username` matches it.
        #[arg(long)]
        username: Option<String>,
        /// The access key the caller signed with (userIdentity.accessKeyId).
        #[arg(long)]
        access_key_id: Option<String>,
        /// Only read-only calls (`true`) or only the others (`false`).
        #[arg(long)]
        read_only: Option<bool>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Export records not yet exported in CloudTrail's log file layout.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// Target directory (AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/…json.gz).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Print the audit signing public key (hex), for verification without the root key.
    PublicKey {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove records older than the retention period, leaving a signed anchor.
    Prune {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long)]
        retention_days: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Audit(cmd) => run_async(audit(cmd)),
        Command::Admin(cmd) => run_async(admin(cmd)),
        Command::Explain(args) => run_async(explain(args)),
    }
}

fn run_async(f: impl std::future::Future<Output = Result<ExitCode, String>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tresor: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tresor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    if let Some(ms) = args.test_header_read_timeout_ms {
        limits.header_read_timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(ms) = args.test_body_read_timeout_ms {
        limits.body_read_timeout = Duration::from_millis(ms.max(1));
    }
    let rate = |name: &str, rps: Option<f64>, burst: Option<f64>| {
        rps.map(|r| tresor::throttle::RateLimit::new(r, burst))
            .transpose()
            .map_err(|e| format!("--{name}: {e}"))
    };
    let throttle = match (
        rate(
            "throttle-principal-rps",
            args.throttle_principal_rps,
            args.throttle_principal_burst,
        ),
        rate(
            "throttle-key-rps",
            args.throttle_key_rps,
            args.throttle_key_burst,
        ),
    ) {
        (Ok(principal), Ok(key)) => tresor::throttle::ThrottleConfig {
            principal,
            key,
            ..Default::default()
        },
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tresor: {e}");
            return ExitCode::from(2);
        }
    };
    let root_key_file = args.data.root_key_file();
    let store = match args.data.store_spec(file.store.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tresor: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = ServeConfig {
        data_dir: args.data.data_dir,
        listen: args.listen,
        root_key_file,
        file,
        limits,
        clock_offset_seconds: args.clock_offset_seconds,
        test_clock: args.test_clock,
        test_clock_offset_seconds: args.test_clock_offset_seconds,
        audit: AuditConfig {
            retention_days: args.audit_retention_days,
            export_dir: args.audit_export_dir,
            export_interval: Duration::from_secs(args.audit_export_interval_seconds),
        },
        store,
        node_id: args.node_id,
        test_ignore_invalidations: args.test_ignore_invalidations,
        throttle,
    };
    run_async(async move {
        tresor::run::serve_forever(cfg)
            .await
            .map(|()| ExitCode::SUCCESS)
    })
}

async fn explain(a: ExplainArgs) -> Result<ExitCode, String> {
    use tresor::explain::{Question, explain, questions_from_record, record_by_event_id};
    let spec = a.data.store_spec(None)?;
    let questions = match &a.event_id {
        Some(id) => questions_from_record(&record_by_event_id(&a.data.data_dir, &spec, id).await?)?,
        None => {
            let mut ec = tresor_kms::ops::EncryptionContext::new();
            for pair in &a.encryption_context {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--encryption-context {pair:?}: expected key=value"))?;
                ec.insert(k.to_owned(), v.to_owned());
            }
            if a.principal.is_none() && a.service_principal.is_none() {
                return Err(
                    "give --event-id, or --principal (or --service-principal), --action and --key"
                        .to_owned(),
                );
            }
            vec![Question {
                principal: a.principal.clone(),
                service_principal: a.service_principal.clone(),
                action: a.action.clone().ok_or("--action is required")?,
                key_arn: a.key.clone().ok_or("--key is required")?,
                encryption_context: (!a.encryption_context.is_empty()).then_some(ec),
                via_service: a.via_service.clone(),
            }]
        }
    };
    let out = explain(&a.data.data_dir, &a.data.root_key_file(), &spec, questions).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

async fn admin(cmd: AdminCommand) -> Result<ExitCode, String> {
    use tresor::admin;
    match cmd {
        AdminCommand::PutPrincipalPolicy {
            data,
            principal,
            name,
            document,
        } => {
            let text = if document.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| e.to_string())?;
                s
            } else {
                std::fs::read_to_string(&document)
                    .map_err(|e| format!("{}: {e}", document.display()))?
            };
            admin::put_principal_policy(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
                &principal,
                &name,
                &text,
            )
            .await?;
        }
        AdminCommand::DeletePrincipalPolicy {
            data,
            principal,
            name,
        } => {
            admin::delete_principal_policy(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
                &principal,
                &name,
            )
            .await?;
        }
        AdminCommand::ListPrincipals { data } => {
            let v = admin::list_principals(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
            )
            .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
            );
        }
        AdminCommand::CreateAccessKey {
            data,
            principal,
            session_name,
        } => {
            let (id, secret) = admin::create_access_key(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
                &principal,
                session_name,
            )
            .await?;
            println!(
                "[{id}]\naws_access_key_id = {id}\naws_secret_access_key = {}",
                secret.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(cmd: AuditCommand) -> Result<ExitCode, String> {
    use tresor::audit_ops;
    use tresor_kms::audit_log::{AuditQuery, verify};
    match cmd {
        AuditCommand::Verify { data, public_key } => {
            let backend =
                tresor::bootstrap::open_audit_log(&data.data_dir, &data.store_spec(None)?).await?;
            let mut extra = Vec::new();
            let key = match public_key {
                Some(hex_key) => {
                    hex::decode(hex_key.trim()).map_err(|e| format!("--public-key: {e}"))?
                }
                None => {
                    let (store, root) = tresor::bootstrap::open_existing(
                        &data.data_dir,
                        &data.root_key_file(),
                        &data.store_spec(None)?,
                    )
                    .await?;
                    let signer = tresor::bootstrap::audit_signer(&*store, &root).await?;
                    let stored = store
                        .get_meta("audit_public_key")
                        .await
                        .map_err(|e| e.to_string())?;
                    if stored.as_deref() != Some(hex::encode(signer.public_key()).as_str()) {
                        extra.push(
                            "the stored audit public key is not the signing key's".to_owned(),
                        );
                    }
                    signer.public_key().to_vec()
                }
            };
            let mut report = verify(&*backend, &key).await.map_err(|e| e.to_string())?;
            if !extra.is_empty() {
                report.ok = false;
            }
            let out =
                serde_json::json!({ "ok": report.ok, "problems": extra, "chains": report.chains });
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
            );
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Lookup {
            data,
            start,
            end,
            event_name,
            key_arn,
            principal_arn,
            error_code,
            account,
            region,
            event_id,
            username,
            access_key_id,
            read_only,
            limit,
        } => {
            let backend =
                tresor::bootstrap::open_audit_log(&data.data_dir, &data.store_spec(None)?).await?;
            let q = AuditQuery {
                account,
                start_millis: start.as_deref().map(audit_ops::parse_time).transpose()?,
                end_millis: end.as_deref().map(audit_ops::parse_time).transpose()?,
                event_name,
                resource_arn: key_arn,
                principal_arn,
                error_code,
                region,
                event_id,
                username,
                access_key_id,
                read_only,
                limit: limit.clamp(1, audit_ops::LOOKUP_MAX_RECORDS),
                ..AuditQuery::default()
            };
            for r in backend.lookup(&q).await.map_err(|e| e.to_string())? {
                println!("{}", r.json);
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { data, dir } => {
            let backend =
                tresor::bootstrap::open_audit_log(&data.data_dir, &data.store_spec(None)?).await?;
            let summary = audit_ops::export(&*backend, &dir).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
            );
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::PublicKey { data } => {
            let (store, root) = tresor::bootstrap::open_existing(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
            )
            .await?;
            let signer = tresor::bootstrap::audit_signer(&*store, &root).await?;
            println!("{}", hex::encode(signer.public_key()));
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prune {
            data,
            retention_days,
        } => {
            let (store, root) = tresor::bootstrap::open_existing(
                &data.data_dir,
                &data.root_key_file(),
                &data.store_spec(None)?,
            )
            .await?;
            let signer = tresor::bootstrap::audit_signer(&*store, &root).await?;
            let backend =
                tresor::bootstrap::open_audit_log(&data.data_dir, &data.store_spec(None)?).await?;
            let now = tresor_kms::types::Timestamp(
                i64::try_from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0),
                )
                .unwrap_or(i64::MAX),
            );
            let n = audit_ops::prune_older_than(&*backend, &signer, retention_days, now).await?;
            println!("pruned {n} records");
            Ok(ExitCode::SUCCESS)
        }
    }
}
