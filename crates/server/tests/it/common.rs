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

[[principals]]
arn = "arn:aws:iam::{ACCOUNT}:role/AppRole"

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_tresor"))
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--config")
            .arg(&config_path)
            .args(extra_args)
            .env("TRESOR_LOG", "warn")
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
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("tresor did not report its address");
            lines.push(line.clone());
            if let Some(addr) = line.strip_prefix("tresor: listening on ") {
                break addr.trim().to_owned();
            }
        };
        Server { child: Some(child), endpoint, data_dir: data_dir.to_owned(), stdout_lines: lines, _tmp: None }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
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
        Some(se) => (se.code().unwrap_or_default().to_owned(), se.message().unwrap_or_default().to_owned()),
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
