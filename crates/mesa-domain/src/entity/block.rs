//! Work blocks and apex blocks (SPEC §3).

use crate::{
    ApexBlockId, ApexStatus, Markdown, Timestamp, Title, Version, WorkBlockId, WorkBlockStatus,
};

/// A sprint-sized, shippable slice (SPEC §1 WorkBlock, §3.1).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkBlock {
    /// Identity.
    pub id: WorkBlockId,
    /// Title.
    pub title: Title,
    /// What it achieves.
    pub goal: Markdown,
    /// How we know it is done.
    pub acceptance_criteria: Markdown,
    /// Lifecycle position.
    pub status: WorkBlockStatus,
    /// North-star metric name.
    pub north_star_metric: Option<String>,
    /// Its target.
    pub north_star_target: Option<f64>,
    /// Its latest measurement.
    pub north_star_current: Option<f64>,
    /// The strategic goal it serves.
    pub apex_block_id: Option<ApexBlockId>,
    /// Entered `active` (latest).
    pub activated_at: Option<Timestamp>,
    /// Entered `ready`.
    pub ready_at: Option<Timestamp>,
    /// Entered `shipped`.
    pub shipped_at: Option<Timestamp>,
    /// Entered `cancelled`.
    pub cancelled_at: Option<Timestamp>,
    /// Actor string of the creator.
    pub created_by: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}

/// One recorded north-star measurement (the history SPEC §3.1 asks to keep).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NorthStarValue {
    /// The block.
    pub work_block_id: WorkBlockId,
    /// The value.
    pub value: f64,
    /// Actor string of who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: Timestamp,
}

/// A board-level strategic goal (SPEC §1 ApexBlock, §3.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApexBlock {
    /// Identity.
    pub id: ApexBlockId,
    /// Title.
    pub title: Title,
    /// The goal.
    pub goal: Markdown,
    /// active or archived.
    pub status: ApexStatus,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version.
    pub version: Version,
}
