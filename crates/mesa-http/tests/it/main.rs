//! Black-box tests of the HTTP layer: the real router over a real SQLite file.

mod agents;
mod blocks;
mod issues;
mod knowledge;
mod support;
