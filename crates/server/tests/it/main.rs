//! Black-box integration tests: the real `tresor` binary, started on a free port in a temp dir,
//! driven by aws-sdk-kms (one test binary, one module per area).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod asymmetric;
mod audit;
mod authz;
mod authz_inprocess;
mod common;
mod crash;
mod crypto;
mod durability;
mod errors;
mod hostile;
mod keys;
mod lifecycle;
mod scaleout;
mod secrets;
mod sigv4;
mod smoke;
mod sts;
mod throttle;
mod wire;
