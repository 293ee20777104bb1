//! Dashboard read models: the counts every page's navigation shows (open issues, issues in
//! review, runs in flight, pending approvals), kept in the read cache.

use std::sync::Arc;

use mesa_domain::{ApprovalStatus, IssueStatus, RunStatus};

use crate::error::Result;
use crate::mesa::Mesa;
use crate::read_cache::Depends;

/// Issues, runs and approvals counted by status, as of one data version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCounts {
    /// The (not deleted) issues in every status, in [`IssueStatus::ALL`] order.
    pub issues: Vec<(IssueStatus, u64)>,
    /// The runs in every status, in [`RunStatus::ALL`] order.
    pub runs: Vec<(RunStatus, u64)>,
    /// The approvals waiting for a decision.
    pub approvals_pending: u64,
}

impl StatusCounts {
    /// The issues in any of `statuses`.
    pub fn issues_in(&self, statuses: &[IssueStatus]) -> u64 {
        sum_of(&self.issues, statuses)
    }

    /// The runs in any of `statuses`.
    pub fn runs_in(&self, statuses: &[RunStatus]) -> u64 {
        sum_of(&self.runs, statuses)
    }
}

fn sum_of<S: PartialEq>(counts: &[(S, u64)], wanted: &[S]) -> u64 {
    counts
        .iter()
        .filter(|(s, _)| wanted.contains(s))
        .map(|(_, n)| n)
        .sum()
}

impl Mesa {
    /// Issues, runs and pending approvals counted by status: [`Mesa::issue_counts`],
    /// [`Mesa::run_counts`] and the pending approvals, from the read cache while nothing was
    /// committed since they were counted (every page shows them, and counting walks every
    /// issue's and run's index entry).
    pub async fn status_counts(&self) -> Result<Arc<StatusCounts>> {
        self.read_through(
            "status-counts".to_owned(),
            |c: &StatusCounts| (c.issues.len() + c.runs.len()) * 16 + 8,
            |_| Depends::Everything,
            || async {
                Ok(StatusCounts {
                    issues: self.issue_counts().await?,
                    runs: self.run_counts().await?,
                    approvals_pending: self
                        .inner
                        .store
                        .approval_count(ApprovalStatus::Pending)
                        .await?,
                })
            },
        )
        .await
    }
}
