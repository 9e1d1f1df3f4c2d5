//! # tresor-store — storage backends
//!
//! Implementations of [`tresor_kms::store::Store`]: [`sqlite::SqliteStore`], the zero-setup
//! embedded default. [`conformance`] is the one suite every backend must pass; each backend's
//! tests run it.
//!
//! Invariant: a backend returns `Ok` from a write only once the write is durable.

#![forbid(unsafe_code)]

pub mod conformance;
pub mod sqlite;
pub mod sqlite_audit;

pub use sqlite::SqliteStore;
pub use sqlite_audit::SqliteAuditLog;
