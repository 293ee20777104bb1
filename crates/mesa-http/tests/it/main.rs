//! Black-box tests of the HTTP layer: the real router over a real SQLite file.

mod issues;
mod support;
