//! Read models for the dashboard (SPEC §10): the queries its pages need beyond what the API
//! already offers, one file per area.

mod agents;
mod blocks;
mod costs;
mod counts;

pub use blocks::{BlockProgress, BlockSpend};
pub use costs::CostDays;
pub use counts::StatusCounts;
mod issues;
mod knowledge;
