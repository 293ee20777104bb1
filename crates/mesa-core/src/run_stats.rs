//! Counts of runs and issues per status, for monitoring (`GET /metrics`) and the dashboard.

use mesa_domain::{IssueStatus, RunStatus};

use crate::Mesa;
use crate::error::Result;

impl Mesa {
    /// The number of runs in every status (zero included), in [`RunStatus::ALL`] order; the
    /// `queued` figure is the queue depth. One aggregate query.
    pub async fn run_counts(&self) -> Result<Vec<(RunStatus, u64)>> {
        let found = self.inner.store.run_status_counts().await?;
        Ok(RunStatus::ALL
            .iter()
            .map(|s| {
                let n = found.iter().find(|(f, _)| f == s).map_or(0, |(_, n)| *n);
                (*s, n)
            })
            .collect())
    }

    /// The number of issues in every status (zero included), in [`IssueStatus::ALL`] order.
    /// Two index-only aggregate queries.
    pub async fn issue_counts(&self) -> Result<Vec<(IssueStatus, u64)>> {
        let found = self.inner.store.issue_status_counts().await?;
        Ok(IssueStatus::ALL
            .iter()
            .map(|s| {
                let n = found.iter().find(|(f, _)| f == s).map_or(0, |(_, n)| *n);
                (*s, n)
            })
            .collect())
    }
}
