//! End-to-end tests: one integration-test binary with a module per story.

mod auditor;
mod checkout_storm;
mod discord;
mod durability;
mod flows;
mod learning;
mod simulated_org;
mod telegram;
mod webhooks_out;
