//! Black-box test harness: starts the real `tresor` binary on a free port in a temp dir and gives
//! tests an aws-sdk-kms client pointed at it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Access key pairs every test server knows (declared in its config file).
pub const ACCOUNT: &str = "111122223333";
pub const OTHER_ACCOUNT: &str = "444455556666";
pub const AKID: &str = "FOOBARKEY";
pub const SECRET: &str = "FOOBARSECRET";
pub const OTHER_AKID: &str = "OTHERKEY";
pub const OTHER_SECRET: &str = "OTHERSECRET";
pub const ROLE_AKID: &str = "ROLEKEY";
pub const ROLE_SECRET: &str = "ROLESECRET";
pub const REGION: &str = "us-east-1";

pub fn default_config() -> String {
    format!(
        r#"
default_account = "{ACCOUNT}"

# alice and AppRole may use every key of their account through the default key policy, which
# delegates to identity policies (as an IAM user with a kms:* policy does on AWS).
[[principals]]
arn = "arn:aws:iam::{ACCOUNT}:user/alice"
[[principals.policies]]
name = "KmsFullAccess"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}]}}'

[[principals]]
arn = "arn:aws:iam::{ACCOUNT}:role/AppRole"
[[principals.policies]]
name = "KmsFullAccess"
document = '{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}]}}'

[[access_keys]]
id = "{AKID}"
secret = "{SECRET}"
principal = "arn:aws:iam::{ACCOUNT}:user/alice"

[[access_keys]]
id = "{OTHER_AKID}"
secret = "{OTHER_SECRET}"
principal = "arn:aws:iam::{OTHER_ACCOUNT}:root"

[[access_keys]]
id = "{ROLE_AKID}"
secret = "{ROLE_SECRET}"
principal = "arn:aws:iam::{ACCOUNT}:role/AppRole"
session_name = "app-session"
"#
    )
}

/// A running server. Killed (SIGKILL) on drop unless stopped first.
pub struct Server {
    pub child: Option<Child>,
    pub endpoint: String,
    pub data_dir: PathBuf,
    pub stdout_lines: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A fresh server with [`default_config`] in a new temp dir.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server::start_in(&data_dir, &default_config(), &[]);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `data_dir` (kept by the caller), with the given config text and extra flags.
    pub fn start_in(data_dir: &Path, config: &str, extra_args: &[&str]) -> Server {
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let config_path = data_dir.parent().unwrap().join("tresor.toml");
        std::fs::write(&config_path, config).unwrap();
        spawn_serve(data_dir, &config_path, extra_args, Stdio::inherit())
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("tresor did not stop within 10 s of SIGTERM");
    }

    /// SIGKILL, no grace.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, AKID, SECRET, REGION)
    }

    pub fn kms_as(&self, akid: &str, secret: &str) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, akid, secret, REGION)
    }

    pub fn kms_in_region(&self, region: &str) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, AKID, SECRET, region)
    }

    /// A fresh server with [`default_config`] and extra `serve` flags (e.g. `--clock-offset-seconds=900`).
    pub fn start_with_args(extra_args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server::start_in(&data_dir, &default_config(), extra_args);
        s._tmp = Some(tmp);
        s
    }

    /// The client of the role session (ROLEKEY).
    pub fn kms_role(&self) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, ROLE_AKID, ROLE_SECRET, REGION)
    }

    /// The client of the root of the other account (OTHERKEY).
    pub fn kms_other(&self) -> aws_sdk_kms::Client {
        kms_client(&self.endpoint, OTHER_AKID, OTHER_SECRET, REGION)
    }

    pub fn sts_as(&self, akid: &str, secret: &str) -> aws_sdk_sts::Client {
        sts_client(&self.endpoint, akid, secret, REGION)
    }

    /// `host:port` of the listener.
    pub fn authority(&self) -> &str {
        self.endpoint
            .strip_prefix("http://")
            .unwrap_or(&self.endpoint)
    }
}

/// A KMS client with full control over credentials (session token) and the retry policy.
pub fn kms_client_with(
    endpoint: &str,
    creds: aws_credential_types::Credentials,
    region: &str,
    retries: bool,
) -> aws_sdk_kms::Client {
    let retry = if retries {
        aws_sdk_kms::config::retry::RetryConfig::standard()
    } else {
        aws_sdk_kms::config::retry::RetryConfig::disabled()
    };
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .retry_config(retry)
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

pub fn sts_client(endpoint: &str, akid: &str, secret: &str, region: &str) -> aws_sdk_sts::Client {
    let creds = aws_credential_types::Credentials::new(akid, secret, None, None, "tresor-tests");
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(conf)
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn kms_client(endpoint: &str, akid: &str, secret: &str, region: &str) -> aws_sdk_kms::Client {
    let creds = aws_credential_types::Credentials::new(akid, secret, None, None, "tresor-tests");
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_owned()))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        // Errors must surface to the test, not be retried away.
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// The AWS error code and message of a failed SDK call.
pub fn err_code<E, R>(e: &aws_sdk_kms::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(se) => (
            se.code().unwrap_or_default().to_owned(),
            se.message().unwrap_or_default().to_owned(),
        ),
        None => panic!("not a service error: {e:?}"),
    }
}

/// Unwraps the error of a call that must fail, returning (code, message).
#[macro_export]
macro_rules! expect_err {
    ($call:expr) => {{
        match $call {
            Ok(v) => panic!("expected an error, got {:?}", v),
            Err(e) => $crate::common::err_code(&e),
        }
    }};
}

/// A response read off the wire by [`raw_http`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) with exactly the given headers (plus `Host`,
/// `Content-Length` and `Connection`) and reads the whole response.
pub async fn raw_http(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);

    let io = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let mut out = Vec::new();
        // A server may close with a reset after answering early; keep what arrived.
        let _ = stream.read_to_end(&mut out).await;
        out
    };
    // Only a guard against a hung server, not a timing assertion.
    let out = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .expect("server did not answer");
    parse_response(&out)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers in response");
    let head = std::str::from_utf8(&raw[..split]).expect("response head is not UTF-8");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        assert!(
            body.len() >= len,
            "response body shorter than its Content-Length"
        );
        body.truncate(len);
    }
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "chunked responses are not expected"
    );
    RawResponse {
        status,
        headers,
        body,
    }
}

/// SigV4 headers (`X-Amz-Date`, `Authorization`) for a request, computed by `aws-sigv4` (the SDK's
/// own signer, independent of the server's verifier).
#[allow(clippy::too_many_arguments)]
pub fn sigv4_headers(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: (&str, &str),
    region: &str,
    service: &str,
    time: std::time::SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity =
        aws_credential_types::Credentials::new(creds.0, creds.1, None, None, "raw-tests").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("http://{authority}{path}");
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    let (added, _query) = instructions.into_parts();
    added
        .iter()
        .map(|h| (h.name().to_owned(), h.value().to_owned()))
        .collect()
}

impl Server {
    /// A signed KMS JSON request as alice (`X-Amz-Target: <target>`; `None` sends no target header).
    pub async fn kms_raw(&self, target: Option<&str>, body: &[u8]) -> RawResponse {
        self.kms_raw_signed_as(target, body, body, (AKID, SECRET))
            .await
    }

    /// Signs `signed_body` but sends `sent_body` (equal for a well-formed request).
    pub async fn kms_raw_signed_as(
        &self,
        target: Option<&str>,
        signed_body: &[u8],
        sent_body: &[u8],
        creds: (&str, &str),
    ) -> RawResponse {
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        )];
        if let Some(t) = target {
            headers.push(("X-Amz-Target".to_owned(), t.to_owned()));
        }
        let auth = sigv4_headers(
            self.authority(),
            "POST",
            "/",
            &headers,
            signed_body,
            creds,
            REGION,
            "kms",
            std::time::SystemTime::now(),
        );
        headers.extend(auth);
        raw_http(self.authority(), "POST", "/", &headers, sent_body).await
    }
}

/// `arn:aws:kms:<region>:<account>:key/<id>`.
pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

/// Creates a default symmetric key and returns its metadata.
pub async fn create_key(kms: &aws_sdk_kms::Client) -> aws_sdk_kms::types::KeyMetadata {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .expect("CreateKey returns KeyMetadata")
}

/// A well-formed key id that no server has issued.
pub fn unknown_key_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Whether `s` is a lower-case 8-4-4-4-12 hex UUID.
pub fn is_lower_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| {
            g.len() == n
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Whether `s` is 64 lower-case hex characters (a KeyMaterialId).
pub fn is_material_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The KeyIds (in order) of every page of ListKeys with the given page size, checking the
/// Truncated/NextMarker contract of each page.
pub async fn list_all_keys(kms: &aws_sdk_kms::Client, limit: Option<i32>) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..10_000 {
        let page = kms
            .list_keys()
            .set_limit(limit)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        if let Some(l) = limit {
            assert!(
                page.keys().len() <= usize::try_from(l).unwrap(),
                "page larger than Limit"
            );
        }
        for k in page.keys() {
            let id = k.key_id().unwrap().to_owned();
            let arn = k.key_arn().unwrap();
            assert!(
                arn.ends_with(&format!(":key/{id}")),
                "{arn} does not name {id}"
            );
            out.push(id);
        }
        if page.truncated() {
            let next = page
                .next_marker()
                .expect("a truncated page carries NextMarker");
            marker = Some(next.to_owned());
        } else {
            assert_eq!(
                page.next_marker(),
                None,
                "a complete listing has no NextMarker"
            );
            return out;
        }
    }
    panic!("ListKeys pagination did not terminate");
}

/// Moves the core clock of a server started with `--test-clock` to wall time + `seconds`; the
/// server runs the work that falls due before it answers.
pub async fn set_test_clock(server: &Server, seconds: i64) {
    let r = raw_http(
        server.authority(),
        "PUT",
        "/_tresor/test/clock-offset",
        &[],
        seconds.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "moving the test clock failed: {r:?}");
}

/// Every audit record of the data directory (newest first), via `tresor audit lookup`. One
/// lookup answers at most [`tresor::audit_ops::LOOKUP_MAX_RECORDS`] records, so a log with more
/// is read in pages back in time (each page ends one second after the oldest record of the
/// previous one, since the records' `eventTime` has whole seconds; records seen twice count
/// once).
pub fn audit_records(data_dir: &Path) -> Vec<serde_json::Value> {
    const LOOKUP_LIMIT: usize = tresor::audit_ops::LOOKUP_MAX_RECORDS;
    let mut seen = std::collections::HashSet::new();
    let mut all = Vec::new();
    let mut end: Option<i64> = None;
    loop {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tresor"));
        cmd.args([
            "audit",
            "lookup",
            "--limit",
            &LOOKUP_LIMIT.to_string(),
            "--data-dir",
        ])
        .arg(data_dir);
        if let Some(end) = end {
            cmd.args(["--end", &end.to_string()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let page: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let full = page.len() >= LOOKUP_LIMIT;
        let mut oldest = i64::MAX;
        let mut added = 0;
        for r in page {
            let t = r["eventTime"].as_str().unwrap();
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap()
                .unix_timestamp();
            oldest = oldest.min(t);
            if seen.insert(r["eventID"].as_str().unwrap().to_owned()) {
                all.push(r);
                added += 1;
            }
        }
        assert!(
            !full || added > 0,
            "more than {LOOKUP_LIMIT} audit records within two seconds"
        );
        if !full {
            return all;
        }
        end = Some(oldest + 1);
    }
}

impl Server {
    /// A fresh server with [`default_config`] whose process gets extra environment variables
    /// (e.g. `TOKIO_WORKER_THREADS=1`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let config_path = tmp.path().join("tresor.toml");
        std::fs::write(&config_path, default_config()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tresor"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&config_path)
            .env("TRESOR_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tresor");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let endpoint = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("tresor did not report its address");
            lines.push(line.clone());
            if let Some(addr) = line.strip_prefix("tresor: listening on ") {
                break addr.trim().to_owned();
            }
        };
        Server {
            child: Some(child),
            endpoint,
            data_dir,
            stdout_lines: lines,
            _tmp: Some(tmp),
        }
    }
}

/// Creates a key of `spec` with `usage` and returns its metadata.
pub async fn create_key_of(
    kms: &aws_sdk_kms::Client,
    spec: aws_sdk_kms::types::KeySpec,
    usage: aws_sdk_kms::types::KeyUsageType,
) -> aws_sdk_kms::types::KeyMetadata {
    kms.create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap()
        .key_metadata
        .expect("CreateKey returns KeyMetadata")
}

/// Runs the `openssl` command line tool in `dir` and returns its stdout; panics on failure.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line tool is needed for interoperability tests");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `openssl` and returns whether it exited successfully (for verifications expected to fail).
pub fn openssl_ok(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line tool is needed for interoperability tests")
        .status
        .success()
}

/// A server on `data_dir` (kept by the caller) with [`default_config`] whose keys and audit log
/// live in the PostgreSQL database `store_url` (`--store`), plus extra `serve` flags.
pub fn start_with_store(data_dir: &Path, store_url: &str, extra_args: &[&str]) -> Server {
    let mut args = vec!["--store", store_url];
    args.extend_from_slice(extra_args);
    Server::start_in(data_dir, &default_config(), &args)
}

/// Runs `tresor <args> --data-dir <data_dir> --store <store_url>`: (success, stdout, stderr).
pub fn tresor_with_store(
    args: &[&str],
    data_dir: &Path,
    store_url: &str,
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--store")
        .arg(store_url)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `request` (a complete HTTP/1.1 request, any bytes) on a new connection and parses the
/// whole answer (the server closes the connection or the request says `Connection: close`).
pub async fn raw_bytes(authority: &str, request: &[u8]) -> RawResponse {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let io = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
        // The server may answer (and close) before it read everything; keep what arrived.
        let _ = stream.write_all(request).await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        out
    };
    // Only a guard against a hung server, not a timing assertion.
    let out = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .expect("server did not answer");
    parse_response(&out)
}

/// Parses a raw HTTP/1.1 response (status line, headers, `Content-Length` body).
pub fn parse_raw_response(raw: &[u8]) -> RawResponse {
    parse_response(raw)
}

/// Like [`Server::start_in`], with the server's stderr (its log) appended to `log_file`.
pub fn start_logging_to(
    data_dir: &Path,
    config: &str,
    extra_args: &[&str],
    log_file: &Path,
) -> Server {
    std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
    let config_path = data_dir.parent().unwrap().join("tresor.toml");
    std::fs::write(&config_path, config).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .unwrap();
    spawn_serve(data_dir, &config_path, extra_args, Stdio::from(log))
}

/// Starts `tresor serve` on `data_dir` with `config_path`, waiting for its address.
fn spawn_serve(data_dir: &Path, config_path: &Path, extra_args: &[&str], stderr: Stdio) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tresor"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(config_path)
        .args(extra_args)
        .env("TRESOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start tresor");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let endpoint = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("tresor did not report its address");
        lines.push(line.clone());
        if let Some(addr) = line.strip_prefix("tresor: listening on ") {
            break addr.trim().to_owned();
        }
    };
    Server {
        child: Some(child),
        endpoint,
        data_dir: data_dir.to_owned(),
        stdout_lines: lines,
        _tmp: None,
    }
}

/// Asserts the server is healthy: `/health` answers 200 and a signed call (ListKeys) succeeds.
pub async fn assert_healthy(server: &Server) {
    let r = raw_http(server.authority(), "GET", "/health", &[], b"").await;
    assert_eq!(r.status, 200, "/health: {r:?}");
    server
        .kms()
        .list_keys()
        .send()
        .await
        .expect("a normal request succeeds");
}
