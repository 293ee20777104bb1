//! Tests of the embedding API against real SQLite files: one binary, a module per aggregate.

mod approvals;
mod audits;
mod caches;
mod engine;
mod issues;
mod org;
mod outbox;
mod support;
mod wakes;
