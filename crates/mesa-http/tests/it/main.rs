//! Black-box tests of the HTTP layer: the real router over a real SQLite file.

mod agents;
mod blocks;
mod caches;
mod conformance;
mod events;
mod issues;
mod issues_extra;
mod knowledge;
mod metrics;
mod rights;
mod runs;
mod support;
mod ui;
mod webhooks_in;
