//! End-to-end tests of Mesa through its public crates and real subprocesses.
//!
//! The package holds helper binaries the tests drive (`issue-writer`, a process that creates
//! issues in a loop so a test can kill it at any moment) and the tests themselves in
//! `tests/it/`.
//! `served` starts the release server the benchmarks measure.

pub mod served;
