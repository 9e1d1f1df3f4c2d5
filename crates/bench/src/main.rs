//! `tresor-bench`: a closed-loop load generator for KMS endpoints.
//!
//! N connections (HTTP/1.1 keep-alive), each sending its next request as soon as the previous
//! response arrived; every request SigV4-signed with the given credentials, so the same run can
//! measure Tresor and any other KMS-compatible endpoint. Reports throughput, latency percentiles
//! and errors by type, as text or JSON.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

mod signer;

use base64::Engine as _;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(
    name = "tresor-bench",
    about = "Closed-loop SigV4 load generator for KMS endpoints"
)]
struct Args {
    /// Endpoint, e.g. http://127.0.0.1:4599
    #[arg(long)]
    endpoint: String,
    #[arg(long, default_value = "test")]
    access_key: String,
    #[arg(long, default_value = "test")]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up before measuring, in seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Stop after this many measured requests instead (whichever comes first).
    #[arg(long)]
    count: Option<u64>,
    /// Create this (empty) file when the measured phase begins, after the set-up (keys,
    /// ciphertexts) and the warm-up, so a script can sample the server inside that phase.
    #[arg(long)]
    measuring_file: Option<std::path::PathBuf>,
    /// Operation mix: `generate-data-key`, `generate-data-key-without-plaintext`, `encrypt`,
    /// `decrypt`, `re-encrypt`, `health` (GET /health, the ceiling), or weights such as
    /// `generate-data-key=50,decrypt=50`.
    #[arg(long, default_value = "generate-data-key")]
    op: String,
    /// Key to use; without it a key is created with CreateKey.
    #[arg(long)]
    key_id: Option<String>,
    /// Send this encryption context (key=value, repeatable).
    #[arg(long = "encryption-context")]
    encryption_context: Vec<String>,
    /// Create this many keys first and spread GenerateDataKey/Encrypt/ReEncrypt over them
    /// (round robin), to show whether cost grows with the number of keys.
    #[arg(long, default_value_t = 1)]
    keys: usize,
    /// Use keys already in the account (ListKeys) before creating any, so runs against the same
    /// server share one set of keys instead of each creating `--keys` more (and reaching the
    /// account's key quota). Ignored with `--key-id`.
    #[arg(long)]
    reuse_keys: bool,
    /// How many distinct ciphertexts Decrypt/ReEncrypt cycle through.
    #[arg(long, default_value_t = 256)]
    ciphertexts: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Request signer: `fast` (the generator's own, cross-checked against aws-sigv4 at start-up;
    /// see src/signer.rs) or `aws-sigv4` (the AWS SDK's signer for every request, ~40 µs each).
    #[arg(long, default_value = "fast")]
    signer: String,
    /// A label copied into the report (e.g. "tresor", "moto").
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    Encrypt,
    Decrypt,
    ReEncrypt,
    Health,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "generate-data-key" | "GenerateDataKey" => Op::GenerateDataKey,
            "generate-data-key-without-plaintext" | "GenerateDataKeyWithoutPlaintext" => {
                Op::GenerateDataKeyWithoutPlaintext
            }
            "encrypt" | "Encrypt" => Op::Encrypt,
            "decrypt" | "Decrypt" => Op::Decrypt,
            "re-encrypt" | "ReEncrypt" => Op::ReEncrypt,
            "health" => Op::Health,
            _ => return None,
        })
    }
    fn target(self) -> &'static str {
        match self {
            Op::GenerateDataKey => "GenerateDataKey",
            Op::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Op::Encrypt => "Encrypt",
            Op::Decrypt => "Decrypt",
            Op::ReEncrypt => "ReEncrypt",
            Op::Health => "health",
        }
    }
}

/// The weighted mix: a list of ops repeated by weight, walked round-robin per connection.
fn parse_mix(s: &str) -> Result<Vec<Op>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (name, weight) = match part.split_once('=') {
            Some((n, w)) => (
                n,
                w.parse::<usize>()
                    .map_err(|_| format!("bad weight in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let op = Op::parse(name.trim()).ok_or_else(|| format!("unknown operation {name:?}"))?;
        out.extend(std::iter::repeat_n(op, weight.min(1000)));
    }
    if out.is_empty() {
        Err("empty operation mix".into())
    } else {
        Ok(out)
    }
}

struct Shared {
    args: Args,
    authority: String,
    addr: SocketAddr,
    key_id: String,
    /// Extra keys (with `--keys`), used round robin.
    keys: Vec<String>,
    context: BTreeMap<String, String>,
    ciphertexts: Vec<String>,
    mix: Vec<Op>,
    /// None: aws-sigv4 for every request.
    fast: Option<signer::FastSigner>,
    /// `POST /` on the endpoint.
    uri: http::Uri,
    /// `GET /health` on the endpoint (the ceiling).
    health_uri: http::Uri,
    /// Each operation's request bodies, made once before the run (see [`prepare`]).
    prepared: Vec<(Op, Vec<Prepared>)>,
}

/// A request body as sent, with its SHA-256 (hex) for the signature: the same few bodies are
/// sent over and over, so the generator builds, serialises and hashes each once instead of per
/// request (CPU the generator does not spend is CPU the server being measured can use).
struct Prepared {
    body: Bytes,
    payload_sha256_hex: String,
}

fn sign(shared: &Shared, body: &[u8], target: &str) -> Result<Vec<(String, String)>, String> {
    let now = SystemTime::now();
    match &shared.fast {
        Some(fast) => Ok(fast
            .sign(&shared.authority, target, body, &signer::amz_date(now))
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect()),
        None => sign_sdk(shared, body, target, now),
    }
}

/// Whether `op` sends one of the pre-made ciphertexts (chosen by the request's position `i`)
/// rather than names a key (chosen by `k`).
fn sends_ciphertext(op: Op) -> bool {
    matches!(op, Op::Decrypt | Op::ReEncrypt)
}

/// The body of each request the run can send, per operation in the mix, serialised and hashed.
fn prepare(shared: &Shared) -> Result<Vec<(Op, Vec<Prepared>)>, String> {
    let mut out = Vec::new();
    for &op in &shared.mix {
        if op == Op::Health || out.iter().any(|(o, _)| *o == op) {
            continue;
        }
        let n = if sends_ciphertext(op) {
            shared.ciphertexts.len()
        } else {
            shared.keys.len()
        }
        .max(1);
        let mut bodies = Vec::with_capacity(n);
        for index in 0..n {
            // Request positions that select this body: ciphertext `index` or key `index`.
            let bytes = serde_json::to_vec(&body_for(shared, op, index, index))
                .map_err(|e| e.to_string())?;
            bodies.push(Prepared {
                payload_sha256_hex: signer::sha256_hex(&bytes),
                body: Bytes::from(bytes),
            });
        }
        out.push((op, bodies));
    }
    Ok(out)
}

/// The fast signer (unless `--signer aws-sigv4`), after checking that it signs every request
/// shape the run sends exactly as aws-sigv4 does.
fn make_signer(shared: &Shared) -> Result<Option<signer::FastSigner>, String> {
    match shared.args.signer.as_str() {
        "aws-sigv4" => return Ok(None),
        "fast" => {}
        other => return Err(format!("--signer {other:?}: expected fast or aws-sigv4")),
    }
    let fast = signer::FastSigner::new(
        &shared.args.access_key,
        &shared.args.secret_key,
        &shared.args.region,
    );
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    let mut targets: Vec<&str> = shared.mix.iter().map(|op| op.target()).collect();
    targets.extend(["CreateKey", "GenerateDataKey", "Decrypt"]);
    for target in targets {
        let body = format!(r#"{{"KeyId":"k","EncryptionContext":{{"tenant":"{target}"}}}}"#);
        let ours = fast.sign(
            &shared.authority,
            target,
            body.as_bytes(),
            &signer::amz_date(now),
        );
        let sdk = sign_sdk(shared, body.as_bytes(), target, now)?;
        for (name, value) in &ours {
            let theirs = sdk.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
            if theirs.map(|(_, v)| v) != Some(value) {
                return Err(format!(
                    "the fast signer differs from aws-sigv4 on {name} for {target}: {value:?} vs {theirs:?}"
                ));
            }
        }
        if sdk.len() != ours.len() {
            return Err(format!("aws-sigv4 sends other headers: {sdk:?}"));
        }
    }
    Ok(Some(fast))
}

/// Signs with aws-sigv4 (what the AWS SDKs use).
fn sign_sdk(
    shared: &Shared,
    body: &[u8],
    target: &str,
    now: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        &shared.args.access_key,
        &shared.args.secret_key,
        None,
        None,
        "bench",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&shared.args.region)
        .name("kms")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let url = format!("http://{}/", shared.authority);
    let target_header = format!("TrentService.{target}");
    let headers = [
        ("host", shared.authority.as_str()),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target_header.as_str()),
    ];
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let (added, _) = instructions.into_parts();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    out.extend(
        added
            .iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned())),
    );
    Ok(out)
}

fn key_for(shared: &Shared, i: usize) -> &str {
    if shared.keys.is_empty() {
        &shared.key_id
    } else {
        shared
            .keys
            .get(i % shared.keys.len())
            .map(String::as_str)
            .unwrap_or(&shared.key_id)
    }
}

/// `i` picks the operation and ciphertext, `k` the key (`--keys`).
fn request(
    shared: &Shared,
    op: Op,
    i: usize,
    k: usize,
) -> Result<http::Request<Full<Bytes>>, String> {
    if op == Op::Health {
        return http::Request::get(shared.health_uri.clone())
            .header("host", &shared.authority)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string());
    }
    let Some(prepared) = shared
        .prepared
        .iter()
        .find(|(o, _)| *o == op)
        .and_then(|(_, bodies)| {
            let pick = if sends_ciphertext(op) { i } else { k };
            bodies.get(pick % bodies.len().max(1))
        })
    else {
        return Err(format!("no prepared body for {op:?}"));
    };
    let mut b = http::Request::post(shared.uri.clone());
    match &shared.fast {
        Some(fast) => {
            let amz_date = signer::amz_date(SystemTime::now());
            for (n, v) in fast.sign_prehashed(
                &shared.authority,
                op.target(),
                &prepared.payload_sha256_hex,
                &amz_date,
            ) {
                b = b.header(n, v);
            }
        }
        None => {
            for (n, v) in sign(shared, &prepared.body, op.target())? {
                b = b.header(n, v);
            }
        }
    }
    b.body(Full::new(prepared.body.clone()))
        .map_err(|e| e.to_string())
}

/// The JSON body of operation `op` for ciphertext `i` / key `k` (with the run's encryption
/// context).
fn body_for(shared: &Shared, op: Op, i: usize, k: usize) -> Value {
    let ctx = (!shared.context.is_empty()).then(|| json!(shared.context));
    let mut body = match op {
        Op::GenerateDataKey | Op::GenerateDataKeyWithoutPlaintext => {
            json!({"KeyId": key_for(shared, k), "KeySpec": "AES_256"})
        }
        Op::Encrypt => {
            json!({"KeyId": key_for(shared, k), "Plaintext": base64::engine::general_purpose::STANDARD.encode([7u8; 32])})
        }
        Op::Decrypt => {
            json!({"CiphertextBlob": shared.ciphertexts.get(i % shared.ciphertexts.len().max(1)).cloned().unwrap_or_default()})
        }
        Op::ReEncrypt => json!({
            "CiphertextBlob": shared.ciphertexts.get(i % shared.ciphertexts.len().max(1)).cloned().unwrap_or_default(),
            "DestinationKeyId": shared.key_id,
        }),
        Op::Health => json!({}),
    };
    if let (Some(c), Some(obj)) = (ctx, body.as_object_mut()) {
        match op {
            Op::ReEncrypt => {
                obj.insert("SourceEncryptionContext".into(), c.clone());
                obj.insert("DestinationEncryptionContext".into(), c);
            }
            _ => {
                obj.insert("EncryptionContext".into(), c);
            }
        }
    }
    body
}

/// A JSON call on an existing connection (set-up work that makes many calls).
async fn call_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    shared: &Shared,
    target: &str,
    body: Value,
) -> Result<Value, String> {
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let mut b = http::Request::post(shared.uri.clone());
    for (n, v) in sign(shared, &bytes, target)? {
        b = b.header(n, v);
    }
    let req = b
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("{target}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{target} failed: {status} {v}"));
    }
    Ok(v)
}

/// Up to `limit` key ARNs already in the account, in ListKeys order.
async fn existing_keys(shared: &Shared, limit: usize) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut marker: Option<String> = None;
    while keys.len() < limit {
        let mut body = json!({"Limit": 1000});
        if let (Some(m), Some(o)) = (&marker, body.as_object_mut()) {
            o.insert("Marker".into(), json!(m));
        }
        let page = call(shared, "ListKeys", body).await?;
        keys.extend(
            page.get("Keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|k| k.get("KeyArn").and_then(Value::as_str))
                .map(str::to_owned),
        );
        marker = match (page.get("Truncated"), page.get("NextMarker")) {
            (Some(Value::Bool(true)), Some(Value::String(m))) => Some(m.clone()),
            _ => break,
        };
    }
    keys.truncate(limit);
    Ok(keys)
}

/// One-off JSON call used during set-up.
async fn call(shared: &Shared, target: &str, body: Value) -> Result<Value, String> {
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let mut b = http::Request::post(shared.uri.clone());
    for (n, v) in sign(shared, &bytes, target)? {
        b = b.header(n, v);
    }
    let req = b
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(shared.addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("{target}: {e}"))?;
    if !status.is_success() {
        return Err(format!("{target} failed: {status} {v}"));
    }
    Ok(v)
}

#[derive(Default)]
struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
    reconnects: u64,
}

async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn worker(
    shared: Arc<Shared>,
    id: usize,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    budget: Option<u64>,
    warm: Arc<AtomicUsize>,
) -> Result<WorkerResult, String> {
    let mut sender = connect(shared.addr).await?;
    let mut out = WorkerResult::default();
    let mut i = id.wrapping_mul(7919);
    // Keys are dealt out across the connections (connection `id` takes keys id, id + n, ...), so
    // after keys/connections requests each, every key was used once: the warm-up waits for that.
    let n = shared.args.connections.max(1);
    let per_worker = shared.keys.len().div_ceil(n);
    let mut sent = 0usize;
    while !stop.load(Ordering::Relaxed) {
        if budget.is_some_and(|b| out.latencies_us.len() as u64 >= b) {
            break;
        }
        let op = shared
            .mix
            .get(i % shared.mix.len())
            .copied()
            .unwrap_or(Op::Health);
        let req = request(&shared, op, i, id.wrapping_add(sent.wrapping_mul(n)))?;
        i = i.wrapping_add(1);
        sent = sent.wrapping_add(1);
        if sent == per_worker.max(1) {
            warm.fetch_add(1, Ordering::Relaxed);
        }
        let t0 = Instant::now();
        // Servers without keep-alive close the connection after each response: reconnect (the
        // time to do so counts in the request's latency, as it would for a real client).
        if sender.ready().await.is_err() {
            sender = connect(shared.addr).await?;
            out.reconnects += 1;
        }
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) if e.is_canceled() || e.is_closed() => {
                sender = connect(shared.addr).await?;
                out.reconnects += 1;
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let elapsed = t0.elapsed();
        if !measuring.load(Ordering::Relaxed) {
            continue;
        }
        if status.is_success() {
            out.latencies_us
                .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        } else {
            let ty = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("__type").and_then(|t| t.as_str()).map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            *out.errors.entry(ty).or_default() += 1;
        }
    }
    Ok(out)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    f64::from(sorted.get(idx.min(sorted.len() - 1)).copied().unwrap_or(0)) / 1000.0
}

async fn run(args: Args) -> Result<Value, String> {
    let authority = args
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let addr: SocketAddr = tokio::net::lookup_host(&authority)
        .await
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut context = BTreeMap::new();
    for pair in &args.encryption_context {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--encryption-context {pair:?}: expected k=v"))?;
        context.insert(k.to_owned(), v.to_owned());
    }
    let mix = parse_mix(&args.op)?;
    let parse_uri = |path: &str| -> Result<http::Uri, String> {
        format!("http://{authority}{path}")
            .parse()
            .map_err(|e| format!("{authority}: {e}"))
    };
    let (uri, health_uri) = (parse_uri("/")?, parse_uri("/health")?);
    let mut shared = Shared {
        args: args.clone(),
        authority,
        addr,
        key_id: String::new(),
        keys: Vec::new(),
        context,
        ciphertexts: Vec::new(),
        mix,
        fast: None,
        uri,
        health_uri,
        prepared: Vec::new(),
    };
    shared.fast = make_signer(&shared)?;
    let uses_keys = shared.mix.iter().any(|op| *op != Op::Health);
    let existing = if uses_keys && args.reuse_keys && args.key_id.is_none() {
        existing_keys(&shared, args.keys.max(1)).await?
    } else {
        Vec::new()
    };
    if uses_keys {
        shared.key_id = match (&args.key_id, existing.first()) {
            (Some(k), _) | (None, Some(k)) => k.clone(),
            (None, None) => call(&shared, "CreateKey", json!({"Description": "tresor-bench"}))
                .await?
                .pointer("/KeyMetadata/Arn")
                .and_then(|v| v.as_str())
                .ok_or("CreateKey returned no Arn")?
                .to_owned(),
        };
    }
    // (The ceiling's `/health` mix uses no key: with `--keys N` it must not create N keys, which
    // would also count against the account's key quota for the next measurement.)
    if args.keys > 1 && uses_keys {
        // Create the keys with all connections at once (bounded concurrency).
        let shared_ref = Arc::new(Shared {
            args: shared.args.clone(),
            authority: shared.authority.clone(),
            addr: shared.addr,
            key_id: shared.key_id.clone(),
            keys: Vec::new(),
            context: shared.context.clone(),
            ciphertexts: Vec::new(),
            mix: shared.mix.clone(),
            fast: make_signer(&shared)?,
            uri: shared.uri.clone(),
            health_uri: shared.health_uri.clone(),
            prepared: Vec::new(),
        });
        // The key chosen above is the first of them (or the reused keys are): `--keys N` ends
        // with exactly N keys.
        let have = existing.len().max(1);
        let missing = args.keys.saturating_sub(have);
        let tasks_n = args.connections.max(1);
        let (each, extra) = (missing / tasks_n, missing % tasks_n);
        let mut tasks = Vec::new();
        for t in 0..tasks_n {
            let s = shared_ref.clone();
            let per_task = each + usize::from(t < extra);
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::with_capacity(per_task);
                let mut sender = connect(s.addr).await?;
                for _ in 0..per_task {
                    let v = call_on(
                        &mut sender,
                        &s,
                        "CreateKey",
                        json!({"Description": "tresor-bench"}),
                    )
                    .await?;
                    out.push(
                        v.pointer("/KeyMetadata/Arn")
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                Ok::<_, String>(out)
            }));
        }
        if existing.is_empty() {
            shared.keys.push(shared.key_id.clone());
        } else {
            shared.keys.extend(existing.iter().cloned());
        }
        for t in tasks {
            shared.keys.extend(t.await.map_err(|e| e.to_string())??);
        }
        shared.keys.truncate(args.keys);
    }
    if shared
        .mix
        .iter()
        .any(|op| matches!(op, Op::Decrypt | Op::ReEncrypt))
    {
        // Spread over the keys too (every `keys / ciphertexts`-th key), so Decrypt touches them.
        let stride = (shared.keys.len() / args.ciphertexts.max(1)).max(1);
        for n in 0..args.ciphertexts.max(1) {
            let mut body = json!({"KeyId": key_for(&shared, n * stride), "KeySpec": "AES_256"});
            if !shared.context.is_empty()
                && let Some(o) = body.as_object_mut()
            {
                o.insert("EncryptionContext".into(), json!(shared.context));
            }
            let v = call(&shared, "GenerateDataKeyWithoutPlaintext", body).await?;
            shared.ciphertexts.push(
                v.get("CiphertextBlob")
                    .and_then(|c| c.as_str())
                    .ok_or("no CiphertextBlob")?
                    .to_owned(),
            );
        }
    }
    shared.prepared = prepare(&shared)?;
    let shared = Arc::new(shared);
    let measuring = Arc::new(AtomicBool::new(args.warmup <= 0.0));
    let stop = Arc::new(AtomicBool::new(false));
    let budget = args
        .count
        .map(|c| c.div_ceil(args.connections.max(1) as u64));
    let mut tasks = Vec::new();
    let warm = Arc::new(AtomicUsize::new(0));
    for id in 0..args.connections.max(1) {
        tasks.push(tokio::spawn(worker(
            shared.clone(),
            id,
            measuring.clone(),
            stop.clone(),
            budget,
            warm.clone(),
        )));
    }
    if args.warmup > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
        // With many keys, the warm-up lasts until every key was used once (the server's steady
        // state has them cached; a cold key's first use reads it from the store), up to 15 minutes.
        let until = Instant::now() + Duration::from_secs(900);
        while shared.keys.len() > 1
            && warm.load(Ordering::Relaxed) < args.connections.max(1)
            && Instant::now() < until
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        measuring.store(true, Ordering::Relaxed);
    }
    if let Some(path) = &args.measuring_file {
        std::fs::write(path, b"").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(args.duration.max(0.1));
    if args.count.is_some() {
        // Count mode: wait for the workers, but never past the duration.
        let all = futures_join(tasks, deadline, stop.clone()).await;
        return report(&args, all?, started.elapsed());
    }
    tokio::time::sleep(deadline).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let all = futures_join(tasks, Duration::from_secs(30), stop).await?;
    report(&args, all, elapsed)
}

async fn futures_join(
    tasks: Vec<tokio::task::JoinHandle<Result<WorkerResult, String>>>,
    limit: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Vec<WorkerResult>, String> {
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string())??);
    }
    stopper.abort();
    Ok(out)
}

fn report(args: &Args, results: Vec<WorkerResult>, elapsed: Duration) -> Result<Value, String> {
    let mut latencies: Vec<u32> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for r in &results {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    let ok = latencies.len() as f64;
    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(json!({
        "label": args.label,
        "endpoint": args.endpoint,
        "op": args.op,
        "keys": args.keys,
        "connections": args.connections,
        "encryption_context": !args.encryption_context.is_empty(),
        "duration_s": secs,
        "requests": latencies.len(),
        "throughput_rps": ok / secs,
        "latency_ms": {
            "p50": percentile(&latencies, 50.0),
            "p99": percentile(&latencies, 99.0),
            "p99_9": percentile(&latencies, 99.9),
            "max": f64::from(latencies.last().copied().unwrap_or(0)) / 1000.0,
        },
        "errors": errors,
        "reconnects": results.iter().map(|r| r.reconnects).sum::<u64>(),
    }))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json_out = args.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tresor-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(v) => {
            if json_out {
                println!("{v}");
            } else {
                println!(
                    "{} {} x{}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms, errors {}",
                    v["label"].as_str().unwrap_or(""),
                    v["op"].as_str().unwrap_or(""),
                    v["connections"],
                    v["throughput_rps"].as_f64().unwrap_or(0.0),
                    v["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
                    v["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
                    v["latency_ms"]["p99_9"].as_f64().unwrap_or(0.0),
                    v["latency_ms"]["max"].as_f64().unwrap_or(0.0),
                    v["errors"]
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tresor-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(signer: &str) -> Shared {
        let args = Args::parse_from([
            "tresor-bench",
            "--endpoint",
            "http://127.0.0.1:4599",
            "--access-key",
            "AKIDEXAMPLE",
            "--secret-key",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "--region",
            "eu-west-3",
            "--op",
            "generate-data-key,decrypt,re-encrypt,encrypt,generate-data-key-without-plaintext",
            "--signer",
            signer,
        ]);
        Shared {
            authority: "127.0.0.1:4599".into(),
            addr: "127.0.0.1:4599".parse().unwrap(),
            key_id: String::new(),
            keys: Vec::new(),
            context: BTreeMap::new(),
            ciphertexts: Vec::new(),
            mix: parse_mix(&args.op).unwrap(),
            fast: None,
            uri: "http://127.0.0.1:4599/".parse().unwrap(),
            health_uri: "http://127.0.0.1:4599/health".parse().unwrap(),
            prepared: Vec::new(),
            args,
        }
    }

    /// Each request sends the body its position selects (key `k`, ciphertext `i`), exactly as
    /// serialised from the operation's JSON, signed over that body's own hash.
    #[test]
    fn prepared_bodies_follow_the_request_positions() {
        let mut s = shared("fast");
        s.fast = make_signer(&s).unwrap();
        s.keys = vec!["k0".into(), "k1".into(), "k2".into()];
        s.ciphertexts = vec!["c0".into(), "c1".into()];
        s.context.insert("tenant".into(), "acme".into());
        s.prepared = prepare(&s).unwrap();
        for (i, k) in [(0, 0), (1, 1), (2, 2), (3, 4), (5, 7)] {
            for op in [Op::GenerateDataKey, Op::Decrypt, Op::ReEncrypt, Op::Encrypt] {
                let req = request(&s, op, i, k).unwrap();
                let sent = req.body().clone();
                let sent = body_bytes(sent);
                let want = serde_json::to_vec(&body_for(&s, op, i, k)).unwrap();
                assert_eq!(sent, want, "{op:?} {i} {k}");
                let text = String::from_utf8(sent.clone()).unwrap();
                match op {
                    Op::Decrypt | Op::ReEncrypt => {
                        assert!(text.contains(&format!("\"c{}\"", i % 2)))
                    }
                    _ => assert!(text.contains(&format!("\"k{}\"", k % 3))),
                }
                assert!(text.contains("\"tenant\":\"acme\""), "{text}");
                let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
                let date = req.headers()["x-amz-date"].to_str().unwrap().to_owned();
                let expected =
                    s.fast
                        .as_ref()
                        .unwrap()
                        .sign(&s.authority, op.target(), &sent, &date);
                assert_eq!(auth, expected[4].1);
            }
        }
    }

    /// The bytes of a `Full` body.
    fn body_bytes(body: Full<Bytes>) -> Vec<u8> {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(body.collect()).unwrap().to_bytes().to_vec()
    }

    /// The fast signer signs like aws-sigv4 (make_signer refuses to start otherwise), and a
    /// changed secret or body changes the signature.
    #[test]
    fn fast_signer_matches_aws_sigv4() {
        let s = shared("fast");
        let fast = make_signer(&s).unwrap().unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        for body in [
            &b""[..],
            b"{}",
            br#"{"KeyId":"alias/a","Plaintext":"aGk="}"#,
        ] {
            let ours = fast.sign(&s.authority, "Encrypt", body, &signer::amz_date(t));
            let sdk = sign_sdk(&s, body, "Encrypt", t).unwrap();
            let auth = |h: &[(String, String)]| {
                h.iter()
                    .find(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.clone())
            };
            let ours: Vec<(String, String)> =
                ours.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
            assert_eq!(auth(&ours), auth(&sdk));
            assert!(auth(&ours).unwrap().contains("/eu-west-3/kms/aws4_request"));
        }
        let other = signer::FastSigner::new("AKIDEXAMPLE", "other", "eu-west-3");
        let a = fast.sign(&s.authority, "Encrypt", b"{}", &signer::amz_date(t));
        let b = other.sign(&s.authority, "Encrypt", b"{}", &signer::amz_date(t));
        let c = fast.sign(&s.authority, "Encrypt", b"{ }", &signer::amz_date(t));
        assert_ne!(a[4], b[4]);
        assert_ne!(a[4], c[4]);
        assert!(make_signer(&shared("aws-sigv4")).unwrap().is_none());
        assert!(make_signer(&shared("nope")).is_err());
    }

    #[test]
    fn mixes_and_percentiles() {
        assert_eq!(
            parse_mix("generate-data-key=2,decrypt").unwrap(),
            vec![Op::GenerateDataKey, Op::GenerateDataKey, Op::Decrypt]
        );
        assert!(parse_mix("nope").is_err());
        let v: Vec<u32> = (1..=1000).collect();
        assert!((percentile(&v, 50.0) - 0.5).abs() < 0.01);
        assert!((percentile(&v, 99.0) - 0.99).abs() < 0.01);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
