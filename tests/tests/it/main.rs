//! End-to-end tests: one integration-test binary with a module per story.

mod checkout_storm;
mod durability;
mod flows;
