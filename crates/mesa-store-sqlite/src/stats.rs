//! Dashboard aggregates: [`StatsStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mesa_domain::{
    AgentId, ApprovalStatus, IssueKey, IssueStatus, MicroUsd, Timestamp, WorkBlockId,
};
use mesa_store::{DailyCost, Result, StatsStore};

use crate::SqliteStore;
use crate::error::backend;
use crate::rows::parse;

#[async_trait]
impl StatsStore for SqliteStore {
    async fn issue_status_counts(&self) -> Result<Vec<(IssueStatus, u64)>> {
        // Kept in step by the triggers of migration 0014 (soft-deleted issues not counted).
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, n FROM issue_status_counts WHERE n > 0 ORDER BY status")
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

    async fn approval_count(&self, status: ApprovalStatus) -> Result<u64> {
        // A range of `approvals_status (status, created_at)`.
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM approvals WHERE status = ?")
            .bind(status.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn daily_costs(
        &self,
        since: Timestamp,
        offset_minutes: i32,
        agent: Option<AgentId>,
    ) -> Result<Vec<DailyCost>> {
        const DAY_MS: i64 = 86_400_000;
        let offset_ms = i64::from(offset_minutes) * 60_000;
        // A range walk of `cost_events_time` (or `cost_events_agent` for one agent).
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT agent_id, ((created_at - ?2) / 86400000) AS day, SUM(cost_usd), \
             SUM(input_tokens + output_tokens) FROM cost_events \
             WHERE created_at >= ?1 AND (?3 IS NULL OR agent_id = ?3) \
             GROUP BY day, agent_id ORDER BY day, agent_id",
        )
        .bind(since.as_millis())
        .bind(offset_ms)
        .bind(agent.map(|a| a.to_string()))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(agent_id, day, cost, tokens)| {
                Ok(DailyCost {
                    agent_id: parse("cost event", AgentId::parse(&agent_id))?,
                    day: Timestamp::from_millis(day * DAY_MS + offset_ms),
                    cost_usd: MicroUsd(cost),
                    tokens,
                })
            })
            .collect()
    }

    async fn runs_per_agent_since(
        &self,
        agents: &[AgentId],
        since: Timestamp,
    ) -> Result<Vec<(AgentId, u64)>> {
        // One range count of `runs_agent (agent_id, queued_at)` per agent asked about: bounded
        // by the agents a page shows, never a scan of the runs table.
        let ids =
            serde_json::Value::from(agents.iter().map(ToString::to_string).collect::<Vec<_>>())
                .to_string();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT a.value, (SELECT COUNT(*) FROM runs r WHERE r.agent_id = a.value \
             AND r.queued_at >= ?2) AS n FROM json_each(?1) a WHERE n > 0 ORDER BY a.value",
        )
        .bind(ids)
        .bind(since.as_millis())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, n)| {
                Ok((
                    parse("run count", AgentId::parse(&id))?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn block_issue_counts(&self, block: WorkBlockId) -> Result<Vec<(IssueStatus, u64)>> {
        // The batch form's index-only count, for one block.
        Ok(self
            .blocks_issue_counts(&[block])
            .await?
            .into_iter()
            .map(|(_, status, n)| (status, n))
            .collect())
    }

    async fn block_spend(&self, block: WorkBlockId) -> Result<(MicroUsd, i64, u64)> {
        // The batch form's index-only sums, for one block.
        Ok(self
            .blocks_spend(&[block])
            .await?
            .into_iter()
            .next()
            .map_or((MicroUsd(0), 0, 0), |(_, cost, tokens, runs)| {
                (cost, tokens, runs)
            }))
    }

    async fn blocks_issue_counts(
        &self,
        blocks: &[WorkBlockId],
    ) -> Result<Vec<(WorkBlockId, IssueStatus, u64)>> {
        // The partial index `issues_block_live` alone (migration 0013).
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT work_block_id, status, COUNT(*) FROM issues INDEXED BY issues_block_live \
             WHERE work_block_id IN (SELECT value FROM json_each(?1)) \
             AND work_block_id IS NOT NULL AND deleted = 0 \
             GROUP BY work_block_id, status ORDER BY work_block_id, status",
        )
        .bind(id_list(blocks))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(block, status, n)| {
                Ok((
                    parse("work block", WorkBlockId::parse(&block))?,
                    parse("issue", IssueStatus::parse(&status))?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn blocks_spend(
        &self,
        blocks: &[WorkBlockId],
    ) -> Result<Vec<(WorkBlockId, MicroUsd, i64, u64)>> {
        // Index-only: the members' keys (`issues_block_key`), their runs counted on
        // `runs_issue`, and the usage of those that used anything on `runs_issue_usage`
        // (migration 0013).
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "WITH members AS (SELECT i.work_block_id AS block, i.key AS key \
              FROM issues i INDEXED BY issues_block_key \
              WHERE i.work_block_id IN (SELECT value FROM json_each(?1)) \
              AND i.work_block_id IS NOT NULL), \
             counted AS (SELECT m.block AS block, COUNT(*) AS runs FROM members m \
              JOIN runs r INDEXED BY runs_issue ON r.issue_key = m.key GROUP BY m.block), \
             used AS (SELECT m.block AS block, SUM(r.cost_usd) AS cost, \
              SUM(r.input_tokens + r.output_tokens + r.cache_read_tokens \
              + r.cache_write_tokens) AS tokens FROM members m \
              JOIN runs r INDEXED BY runs_issue_usage ON r.issue_key = m.key \
              WHERE r.cost_usd <> 0 OR r.input_tokens <> 0 OR r.output_tokens <> 0 \
              OR r.cache_read_tokens <> 0 OR r.cache_write_tokens <> 0 GROUP BY m.block) \
             SELECT c.block, COALESCE(u.cost, 0), COALESCE(u.tokens, 0), c.runs \
             FROM counted c LEFT JOIN used u ON u.block = c.block ORDER BY c.block",
        )
        .bind(id_list(blocks))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(block, cost, tokens, runs)| {
                Ok((
                    parse("work block", WorkBlockId::parse(&block))?,
                    MicroUsd(cost),
                    tokens,
                    u64::try_from(runs).unwrap_or(0),
                ))
            })
            .collect()
    }

    async fn block_member_times(
        &self,
        block: WorkBlockId,
    ) -> Result<Vec<(Timestamp, Option<Timestamp>)>> {
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT created_at, CASE WHEN status = 'done' \
             THEN COALESCE(completed_at, updated_at) END \
             FROM issues INDEXED BY issues_work_block WHERE work_block_id = ?1 AND deleted = 0 \
             ORDER BY created_at",
        )
        .bind(block.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(c, d)| (Timestamp::from_millis(c), d.map(Timestamp::from_millis)))
            .collect())
    }

    async fn agent_cost_limits(&self) -> Result<Vec<(AgentId, MicroUsd)>> {
        // One row per agent at most (`scope` is unique): bounded by the roster.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT agent_id, daily_cost_limit_usd FROM budget_policies \
             WHERE agent_id IS NOT NULL AND active = 1 ORDER BY agent_id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, limit)| {
                Ok((
                    parse("budget policy", AgentId::parse(&id))?,
                    MicroUsd(limit),
                ))
            })
            .collect()
    }

    async fn run_cost_source(
        &self,
        run: mesa_domain::RunId,
    ) -> Result<Option<mesa_domain::CostSource>> {
        // `cost_events_run`; one event per finished run.
        let row: Option<(String,)> =
            sqlx::query_as("SELECT source FROM cost_events WHERE run_id = ? LIMIT 1")
                .bind(run.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
        row.map(|(s,)| parse("cost event", mesa_domain::CostSource::parse(&s)))
            .transpose()
    }

    async fn work_alignment(&self, drift_limit: u32) -> Result<(u64, u64, Vec<IssueKey>)> {
        // An issue is aligned when its block, or (without one) its parent's, serves an active
        // apex block. Counted from the aligned side so the cost is bounded by the aligned
        // blocks' members, not the open issues: the open ones among the members
        // (`issues_work_block`), plus the open children without a block of any member
        // (`issues_parent`). The open issues are counted on the partial index
        // `issues_open_title` alone.
        let (open, aligned): (i64, i64) = sqlx::query_as(
            "WITH aligned AS (SELECT w.id FROM work_blocks w JOIN apex_blocks a \
             ON a.id = w.apex_block_id WHERE a.status = 'active') \
             SELECT (SELECT COUNT(*) FROM issues INDEXED BY issues_open_title \
              WHERE open = 1 AND deleted = 0), \
             (SELECT COUNT(*) FROM issues i INDEXED BY issues_work_block \
              WHERE i.work_block_id IN (SELECT id FROM aligned) AND i.open = 1 \
              AND i.deleted = 0) + \
             (SELECT COUNT(*) FROM issues p INDEXED BY issues_work_block \
              CROSS JOIN issues c INDEXED BY issues_parent \
              WHERE p.work_block_id IN (SELECT id FROM aligned) AND c.parent_key = p.key \
              AND c.work_block_id IS NULL AND c.open = 1 AND c.deleted = 0)",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        // The newest drifting issues: `issues_created` walked newest first, stopping at the
        // limit (drifting issues are the common case; sorting every open issue is not needed).
        let keys: Vec<(String,)> = sqlx::query_as(
            "WITH aligned AS (SELECT w.id FROM work_blocks w JOIN apex_blocks a \
             ON a.id = w.apex_block_id WHERE a.status = 'active') \
             SELECT i.key FROM issues i INDEXED BY issues_created \
             WHERE i.open = 1 AND i.deleted = 0 AND COALESCE(COALESCE(i.work_block_id, \
             (SELECT p.work_block_id FROM issues p WHERE p.key = i.parent_key)) \
             IN (SELECT id FROM aligned), 0) = 0 \
             ORDER BY i.created_at DESC, i.key DESC LIMIT (SELECT ?1)",
        )
        .bind(i64::from(drift_limit))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let keys = keys
            .into_iter()
            .map(|(k,)| parse("issue", IssueKey::parse(&k)))
            .collect::<Result<Vec<_>>>()?;
        Ok((
            u64::try_from(open).unwrap_or(0),
            u64::try_from(aligned).unwrap_or(0),
            keys,
        ))
    }

    async fn spend_alignment(&self, since: Timestamp) -> Result<(MicroUsd, MicroUsd)> {
        // Only runs that cost something change the sums, and the partial index `runs_costly`
        // (migration 0009) holds just those, by `queued_at`: the queued wake-ups, however
        // many, are never walked. A run queued more than a day before the window cannot
        // finish inside it (timeouts are far shorter).
        let (total, aligned): (i64, i64) = sqlx::query_as(
            "WITH aligned AS (SELECT w.id FROM work_blocks w JOIN apex_blocks a \
             ON a.id = w.apex_block_id WHERE a.status = 'active') \
             SELECT COALESCE(SUM(r.cost_usd), 0), COALESCE(SUM(CASE WHEN \
             COALESCE(i.work_block_id, (SELECT p.work_block_id FROM issues p \
             WHERE p.key = i.parent_key)) IN (SELECT id FROM aligned) \
             THEN r.cost_usd ELSE 0 END), 0) \
             FROM runs r INDEXED BY runs_costly LEFT JOIN issues i ON i.key = r.issue_key \
             WHERE r.cost_usd <> 0 AND r.queued_at >= ?1 \
             AND COALESCE(r.finished_at, r.queued_at) >= ?2",
        )
        .bind(since.as_millis() - 86_400_000)
        .bind(since.as_millis())
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok((MicroUsd(total), MicroUsd(aligned)))
    }
}

/// Ids as a JSON array of strings, for `json_each`.
fn id_list<T: ToString>(ids: &[T]) -> String {
    serde_json::Value::from(ids.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}
