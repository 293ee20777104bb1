//! Figures about runs for monitoring (`GET /metrics`).

use mesa_domain::RunStatus;

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
}
