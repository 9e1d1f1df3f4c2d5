//! # tresor — the server
//!
//! One binary: `tresor serve` runs the listener (AWS KMS JSON 1.1, CloudTrail `LookupEvents` and
//! STS `GetCallerIdentity`, SigV4-authenticated, plus `/health`) over the embedded SQLite store. The protocol edges here
//! are the only code that knows AWS wire strings; everything else lives in `tresor-kms`.

#![forbid(unsafe_code)]

pub mod admin;
pub mod audit_ops;
pub mod auth;
pub mod bootstrap;
pub mod cloudtrail_edge;
pub mod config;
pub mod explain;
pub mod http;
pub mod kms_edge;
pub mod run;
pub mod sts;
pub mod throttle;
