//! Integration tests of the SQLite backend: the backend-neutral conformance suite of
//! `mesa_store::conformance`, each scenario against a fresh temp-file database on a
//! multi-thread runtime, plus checks of what only SQLite has (WAL, `BEGIN IMMEDIATE`, the
//! append-only trigger, `VACUUM INTO` backups).

mod aggregates;
mod audit_stats;
mod conformance;
mod dashboard_lists;
mod evaluation;
mod fast_paths;
mod learning;
mod outbox;
mod search_plan;
mod similar;
mod sqlite;
mod stats_agents;
mod stats_blocks;
mod status_counts;
mod support;
