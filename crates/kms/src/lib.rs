//! # tresor-kms — the KMS core
//!
//! Keys, the operations on them, the key-state × operation table, authorization and audit
//! emission. No HTTP types: the protocol edge parses requests into the operation types of
//! [`ops`] and in-process services (S3, domains) build the same types directly. Every call goes
//! through [`Kms::call`] with a [`CallContext`], so neither authorization nor audit can be bypassed.
//!
//! Invariants:
//! - Key material and secret access keys exist unwrapped only in memory ([`tresor_crypto`] secret
//!   types, zeroized on drop); the [`store::Store`] holds them wrapped under the root key.
//! - Every call yields exactly one audit record, written before the call returns.
//! - Errors are [`KmsError`] variants named after AWS exceptions; wire strings live at the edge.
//!
//! ```no_run
//! # async fn demo(kms: &tresor_kms::Kms, ctx: &tresor_kms::CallContext) -> Result<(), tresor_kms::KmsError> {
//! use tresor_kms::ops::generate_data_key::GenerateDataKey;
//! use tresor_kms::types::DataKeySpec;
//! let out = kms
//!     .call(ctx, GenerateDataKey { key_id: "alias/tenant-a".into(), key_spec: Some(DataKeySpec::Aes256), ..Default::default() })
//!     .await?;
//! assert_eq!(out.plaintext.0.len(), 32);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod asymmetric;
pub mod audit;
mod audit_json;
pub mod audit_log;
mod authz;
pub mod aws_managed;
pub mod clock;
pub mod context;
pub mod error;
mod flight;
mod grant_token;
pub mod identity;
mod import_token;
mod invalidation;
mod key_usage;
mod kms;
mod lifecycle;
pub mod ops;
mod scheduler;
pub mod state;
pub mod store;
pub mod types;

pub use context::CallContext;
pub use error::KmsError;
pub use kms::{Kms, KmsConfig, LoadedKey};
