//! Dashboard read models: work blocks (SPEC §3.1, §10 "Work blocks"). Each is one indexed
//! query bounded by a block's members, so a block page never loads the members' rows whole.

use std::collections::HashMap;

use mesa_domain::entity::NorthStarValue;
use mesa_domain::{IssueStatus, MicroUsd, Timestamp, WorkBlockId};

use crate::error::Result;
use crate::governance::Strategy;
use crate::mesa::Mesa;
use crate::read_cache::Depends;

/// How far back spend alignment looks (SPEC §3.2: "the last 30 days").
const SPEND_WINDOW: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// A minute in milliseconds: the spend window's start is rounded down to one.
const MINUTE_MS: i64 = 60_000;

/// The runs on a work block's member issues, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockSpend {
    /// Their cost.
    pub cost: MicroUsd,
    /// Their tokens.
    pub tokens: i64,
    /// How many there are.
    pub runs: u64,
}

/// A work block's (not deleted) member issues by status, and the spend of the runs on its
/// member issues: the block list's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockProgress {
    /// The number of member issues in each status that has any.
    pub counts: Vec<(IssueStatus, u64)>,
    /// The runs on the member issues, summed.
    pub spend: BlockSpend,
}

impl Mesa {
    /// The progress of each of `ids` (blocks without members or runs have the default), from
    /// two aggregate queries whatever the number of blocks, kept in the read cache while
    /// nothing was committed since.
    pub async fn work_blocks_progress(
        &self,
        ids: &[WorkBlockId],
    ) -> Result<HashMap<WorkBlockId, BlockProgress>> {
        let key: String = ids.iter().map(|id| format!("\u{0}{id}")).collect();
        let progress = self
            .read_through(
                format!("blocks-progress{key}"),
                |p: &HashMap<WorkBlockId, BlockProgress>| p.len() * 128,
                |_| Depends::Everything,
                || self.load_blocks_progress(ids),
            )
            .await?;
        Ok(progress.as_ref().clone())
    }

    /// [`Mesa::work_blocks_progress`] from the store.
    async fn load_blocks_progress(
        &self,
        ids: &[WorkBlockId],
    ) -> Result<HashMap<WorkBlockId, BlockProgress>> {
        let store = &self.inner.store;
        let mut progress: HashMap<WorkBlockId, BlockProgress> = ids
            .iter()
            .map(|id| (*id, BlockProgress::default()))
            .collect();
        for (block, status, n) in store.blocks_issue_counts(ids).await? {
            progress.entry(block).or_default().counts.push((status, n));
        }
        for (block, cost, tokens, runs) in store.blocks_spend(ids).await? {
            progress.entry(block).or_default().spend = BlockSpend { cost, tokens, runs };
        }
        Ok(progress)
    }

    /// The number of member issues of a work block in each status that has any: the block
    /// list's progress, from one indexed count instead of loading the members.
    pub async fn work_block_issue_counts(
        &self,
        id: WorkBlockId,
    ) -> Result<Vec<(IssueStatus, u64)>> {
        Ok(self.inner.store.block_issue_counts(id).await?)
    }

    /// The cost, tokens and number of the runs on a work block's member issues.
    pub async fn work_block_spend(&self, id: WorkBlockId) -> Result<BlockSpend> {
        let (cost, tokens, runs) = self.inner.store.block_spend(id).await?;
        Ok(BlockSpend { cost, tokens, runs })
    }

    /// When each member issue was created and, if done, completed (the burn-up chart).
    pub async fn work_block_member_times(
        &self,
        id: WorkBlockId,
    ) -> Result<Vec<(Timestamp, Option<Timestamp>)>> {
        Ok(self.inner.store.block_member_times(id).await?)
    }

    /// A work block's north-star measurements, oldest first.
    pub async fn work_block_north_star(&self, id: WorkBlockId) -> Result<Vec<NorthStarValue>> {
        Ok(self.inner.store.north_star_history(id).await?)
    }

    /// The alignment figures of SPEC §3.2 from aggregate queries (the Strategy page), with at
    /// most `drift_limit` drifting issue keys (newest first) and the full drift count beside.
    /// Same rules as [`Mesa::strategy`]: with nothing to measure an alignment is `1.0`. The
    /// spend window starts on a whole minute, and the figures come from the read cache while
    /// nothing was committed since they were computed for that window (the dashboard and the
    /// Strategy page show them; computing them walks the open issues and the month's runs).
    pub async fn strategy_summary(&self, drift_limit: u32) -> Result<(Strategy, u64)> {
        let since = self.now() - SPEND_WINDOW;
        let since =
            Timestamp::from_millis(since.as_millis() - since.as_millis().rem_euclid(MINUTE_MS));
        let figures = self
            .read_through(
                format!("strategy\u{0}{drift_limit}\u{0}{}", since.as_millis()),
                |(s, _): &(Strategy, u64)| 64 + s.drift_issues.len() * 24,
                |_| Depends::Everything,
                || self.compute_strategy_summary(drift_limit, since),
            )
            .await?;
        Ok(figures.as_ref().clone())
    }

    /// [`Mesa::strategy_summary`] computed, for the spend window starting at `since`.
    async fn compute_strategy_summary(
        &self,
        drift_limit: u32,
        since: Timestamp,
    ) -> Result<(Strategy, u64)> {
        let store = &self.inner.store;
        let (open, aligned, drift_issues) = store.work_alignment(drift_limit).await?;
        let (total, aligned_cost) = store.spend_alignment(since).await?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "a share; counts are far below 2^52"
        )]
        let work_alignment = if open == 0 {
            1.0
        } else {
            aligned as f64 / open as f64
        };
        #[expect(clippy::cast_precision_loss, reason = "a share of micro-dollar sums")]
        let spend_alignment = if total.0 <= 0 {
            1.0
        } else {
            (aligned_cost.0 as f64 / total.0 as f64).clamp(0.0, 1.0)
        };
        let strategy = Strategy {
            work_alignment,
            spend_alignment,
            drift_issues,
            drift_cost: total - aligned_cost,
        };
        Ok((strategy, open - aligned))
    }
}
