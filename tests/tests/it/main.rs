//! End-to-end tests: one integration-test binary with a module per story.

mod auditor;
mod checkout_storm;
mod durability;
mod flows;
mod learning;
mod simulated_org;
