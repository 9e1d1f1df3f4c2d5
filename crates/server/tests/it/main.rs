//! Black-box integration tests: the real `tresor` binary, started on a free port in a temp dir,
//! driven by aws-sdk-kms (one test binary, one module per area).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod crypto;
mod errors;
mod sigv4;
mod keys;
mod smoke;
mod sts;
