//! # tresor-store — storage backends
//!
//! Implementations of [`tresor_kms::store::Store`] and [`tresor_kms::audit_log::AuditBackend`]:
//! [`sqlite::SqliteStore`] / [`audit_journal::JournaledAuditLog`] (a journal ring in front of
//! [`sqlite_audit::SqliteAuditLog`]), the zero-setup embedded default (one node), and
//! [`postgres::PostgresStore`] / [`postgres_audit::PostgresAuditLog`], one database shared by
//! many stateless nodes. [`conformance`] is the one suite every backend must pass (store and
//! audit sections); each backend's tests run it.
//!
//! Invariants: a backend returns `Ok` from a write only once the write is durable; a backend
//! shared by several nodes announces every committed change of cached state on its invalidation
//! feed ([`tresor_kms::store::Store::subscribe_invalidations`]).

#![forbid(unsafe_code)]

pub mod audit_journal;
pub mod audit_records;
pub mod conformance;
pub mod pg_test;
pub mod postgres;
pub mod postgres_audit;
pub mod sqlite;
pub mod sqlite_audit;

pub use audit_journal::JournaledAuditLog;
pub use postgres::PostgresStore;
pub use postgres_audit::PostgresAuditLog;
pub use sqlite::SqliteStore;
pub use sqlite_audit::SqliteAuditLog;
