//! Dashboard aggregates: [`StatsStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mesa_domain::IssueStatus;
use mesa_store::{Result, StatsStore};

use crate::SqliteStore;
use crate::error::backend;
use crate::rows::parse;

#[async_trait]
impl StatsStore for SqliteStore {
    async fn issue_status_counts(&self) -> Result<Vec<(IssueStatus, u64)>> {
        // Both counts walk indexes only: `issues_status` for all rows, and the partial
        // `issues_deleted_status` for the soft-deleted ones, which are subtracted.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT a.status, a.n - COALESCE(d.n, 0) FROM \
             (SELECT status, COUNT(*) AS n FROM issues INDEXED BY issues_status \
              GROUP BY status) AS a \
             LEFT JOIN (SELECT status, COUNT(*) AS n FROM issues \
              INDEXED BY issues_deleted_status WHERE deleted = 1 GROUP BY status) AS d \
             ON d.status = a.status ORDER BY a.status",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(status, n)| {
                Ok((
                    parse("issue", IssueStatus::parse(&status))?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }
}
