//! The SQLite backend of Mesa's storage port ([`mesa_store::Store`]), on sqlx.
//!
//! Architecture invariants:
//! - This is one of the only places that know SQL (with future `mesa-store-postgres`). sqlx types
//!   never leave the crate: `error::map_err` is the one place sqlx errors are interpreted.
//! - Every write transaction starts with `BEGIN IMMEDIATE` on the single writer connection, so a
//!   transaction that reads and then writes never fails with "database is locked" under
//!   contention; reads go through a separate pool of read-only connections (WAL lets them run
//!   beside the writer).
//! - Each store call is one transaction. Audit rows passed with a write are appended to the
//!   hash-chained log inside that same transaction (`activity::append`).
//!
//! Start reading at [`SqliteStore::open`], then `db.rs`.

mod activity;
mod checkout;
mod create;
mod db;
mod error;
mod group;
mod rows;
mod version;

mod agents;
mod approvals;
mod archetypes;
mod audit_stats;
mod blocks;
mod evaluation;
mod governance;
mod issues;
mod keys;
mod knowledge;
mod outbox;
mod runs;
mod sessions;
mod similar;
mod stats;
mod system;

pub use db::{CHECKPOINT_EVERY, SqliteOptions, SqliteStore, Synchronous, WAL_LIMIT_PAGES};

/// The embedded migrations of `migrations/sqlite`, applied by [`SqliteStore::open`].
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
