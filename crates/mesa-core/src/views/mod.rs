//! Read models for the dashboard (SPEC §10): the queries its pages need beyond what the API
//! already offers, one file per area.

mod agents;
mod blocks;
mod costs;

pub use blocks::BlockSpend;
pub use costs::CostDays;
mod issues;
mod knowledge;
