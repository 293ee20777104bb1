//! [`AuditStore`] for [`SqliteStore`]: the auditor's figures as bounded aggregate queries, what
//! an audit run proposed, and the guarded writes of an audit's record (SPEC §4.3).
//!
//! Bounds: runs are walked per agent through `runs_agent (agent_id, queued_at)` over the
//! window only; review rejections through the partial index `activity_request_changes`, which
//! holds only `issue.request_changes` rows; blocked issues through `issues_status`; what an
//! agent created through `issues_created` over its run's window. No query scans a table whose
//! size grows with the history.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mesa_domain::entity::{Audit, NewActivity};
use mesa_domain::{
    AgentId, ArchetypePatchId, AuditStatus, IssueKey, MicroUsd, PatchStatus, RunId, Slug,
};
use mesa_store::{
    AgentWindowFigures, AuditStore, BlockedIssue, FAILURE_REASON_CHARS, PatchLine,
    ProposedInWindow, Result, StoreError, TOP_FAILURE_REASONS, TimeWindow, WindowFigures,
};

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::governance::{AuditRow, audit_columns, decode_audit};
use crate::rows::{ms_opt, parse, ts};

/// Each agent's runs queued in the window. `CROSS JOIN` keeps the agents as the outer loop,
/// so `runs_agent` is searched per agent over the window instead of scanned whole.
const RUN_COUNTS: &str = "SELECT r.agent_id, COUNT(*), \
    SUM(r.status = 'succeeded'), SUM(r.status IN ('failed', 'timed_out')), \
    SUM(r.status = 'cancelled'), SUM(r.status IN ('queued', 'running')), \
    SUM(r.cost_usd), \
    SUM(r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens), \
    SUM(r.mode = 'task' AND r.issue_key IS NOT NULL), \
    COUNT(DISTINCT CASE WHEN r.mode = 'task' THEN r.issue_key END) \
    FROM agents a CROSS JOIN runs r INDEXED BY runs_agent ON r.agent_id = a.id \
    WHERE r.queued_at >= ?1 AND r.queued_at < ?2 \
    GROUP BY r.agent_id ORDER BY r.agent_id";

/// Each agent's failure reasons in the window (their first `?3` characters), most common first.
const FAILURE_REASONS: &str = "SELECT r.agent_id, \
    substr(COALESCE(NULLIF(trim(r.failure_reason), ''), r.status), 1, ?3) AS reason, \
    COUNT(*) AS n \
    FROM agents a CROSS JOIN runs r INDEXED BY runs_agent ON r.agent_id = a.id \
    WHERE r.queued_at >= ?1 AND r.queued_at < ?2 AND r.status IN ('failed', 'timed_out') \
    GROUP BY r.agent_id, reason ORDER BY r.agent_id, n DESC, reason";

/// Review rejections in the window per assignee, through the partial index of such rows.
const REJECTIONS: &str = "SELECT i.assignee_id, COUNT(*) \
    FROM activity a INDEXED BY activity_request_changes \
    JOIN issues i ON i.key = a.entity_id \
    WHERE a.action = 'issue.request_changes' AND a.entity_type = 'issue' \
    AND a.at >= ?1 AND a.at < ?2 AND i.assignee_id IS NOT NULL \
    GROUP BY i.assignee_id ORDER BY i.assignee_id";

/// The longest-blocked issues.
const BLOCKED: &str = "SELECT key, title, assignee_id, status_changed_at \
    FROM issues INDEXED BY issues_status WHERE status = 'blocked' AND deleted = 0 \
    ORDER BY status_changed_at, key LIMIT (SELECT ?1)";

/// The issues an agent created in a window.
const CREATED_ISSUES: &str = "SELECT key, title FROM issues INDEXED BY issues_created \
    WHERE created_at >= ?2 AND created_at < ?3 AND created_by = ?1 \
    ORDER BY created_at, key";

/// One agent's run counts: agent, runs, succeeded, failed, cancelled, unfinished, cost,
/// tokens, issue runs, distinct issues.
type RunCounts = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    async fn run_counts(&self, window: TimeWindow) -> Result<Vec<RunCounts>> {
        sqlx::query_as(RUN_COUNTS)
            .bind(window.since.as_millis())
            .bind(window.until.as_millis())
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn failure_reasons(&self, window: TimeWindow) -> Result<Vec<(String, String, i64)>> {
        sqlx::query_as(FAILURE_REASONS)
            .bind(window.since.as_millis())
            .bind(window.until.as_millis())
            .bind(i64::try_from(FAILURE_REASON_CHARS).unwrap_or(120))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn rejections(&self, window: TimeWindow) -> Result<Vec<(String, i64)>> {
        sqlx::query_as(REJECTIONS)
            .bind(window.since.as_millis())
            .bind(window.until.as_millis())
            .fetch_all(&self.reader)
            .await
            .map_err(backend)
    }

    async fn blocked(&self, limit: u32) -> Result<(u64, Vec<BlockedIssue>)> {
        let (total,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM issues INDEXED BY issues_status \
             WHERE status = 'blocked' AND deleted = 0",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(BLOCKED)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        let blocked = rows
            .into_iter()
            .map(|(key, title, assignee, since)| {
                Ok(BlockedIssue {
                    key: parse("issue", IssueKey::parse(&key))?,
                    title,
                    assignee_id: parse(
                        "issue",
                        assignee.as_deref().map(AgentId::parse).transpose(),
                    )?,
                    since: ts(since),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((count(total), blocked))
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn window_figures(
        &self,
        window: TimeWindow,
        blocked_limit: u32,
    ) -> Result<WindowFigures> {
        let mut agents: BTreeMap<String, AgentWindowFigures> = BTreeMap::new();
        for (agent, runs, ok, failed, cancelled, open, cost, tokens, issue_runs, issues) in
            self.run_counts(window).await?
        {
            agents.insert(
                agent,
                AgentWindowFigures {
                    runs: count(runs),
                    succeeded: count(ok),
                    failed: count(failed),
                    cancelled: count(cancelled),
                    unfinished: count(open),
                    cost: MicroUsd(cost),
                    tokens,
                    issue_runs: count(issue_runs),
                    issues: count(issues),
                    ..AgentWindowFigures::default()
                },
            );
        }
        for (agent, reason, n) in self.failure_reasons(window).await? {
            let entry = agents.entry(agent).or_default();
            if entry.failure_reasons.len() < TOP_FAILURE_REASONS {
                entry.failure_reasons.push((reason, count(n)));
            }
        }
        for (agent, n) in self.rejections(window).await? {
            agents.entry(agent).or_default().changes_requested = count(n);
        }
        let agents = agents
            .into_iter()
            .map(|(id, mut figures)| {
                figures.agent_id = Some(parse("run", AgentId::parse(&id))?);
                Ok(figures)
            })
            .collect::<Result<Vec<_>>>()?;
        let (blocked_total, blocked) = self.blocked(blocked_limit).await?;
        Ok(WindowFigures {
            agents,
            blocked_total,
            blocked,
        })
    }

    async fn proposed_in_window(
        &self,
        agent: AgentId,
        actor: &str,
        window: TimeWindow,
    ) -> Result<ProposedInWindow> {
        let (since, until) = (window.since.as_millis(), window.until.as_millis());
        let patches: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT id, archetype_slug, base_version, status FROM archetype_patches \
             WHERE proposed_by = ?1 AND created_at >= ?2 AND created_at < ?3 \
             ORDER BY created_at, id",
        )
        .bind(agent.to_string())
        .bind(since)
        .bind(until)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let skills: Vec<(String, String)> = sqlx::query_as(
            "SELECT slug, title FROM skills \
             WHERE promoted_by = ?1 AND created_at >= ?2 AND created_at < ?3 \
             ORDER BY created_at, slug",
        )
        .bind(actor)
        .bind(since)
        .bind(until)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let issues: Vec<(String, String)> = sqlx::query_as(CREATED_ISSUES)
            .bind(agent.to_string())
            .bind(since)
            .bind(until)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        Ok(ProposedInWindow {
            patches: patches
                .into_iter()
                .map(|(id, slug, base_version, status)| {
                    Ok(PatchLine {
                        id: parse("archetype_patch", ArchetypePatchId::parse(&id))?,
                        archetype_slug: parse("archetype_patch", Slug::parse(&slug))?,
                        base_version,
                        status: parse("archetype_patch", PatchStatus::parse(&status))?,
                    })
                })
                .collect::<Result<_>>()?,
            skills: skills
                .into_iter()
                .map(|(slug, title)| Ok((parse("skill", Slug::parse(&slug))?, title)))
                .collect::<Result<_>>()?,
            issues: issues
                .into_iter()
                .map(|(key, title)| Ok((parse("issue", IssueKey::parse(&key))?, title)))
                .collect::<Result<_>>()?,
        })
    }

    async fn audit_of_run(&self, run: RunId) -> Result<Option<Audit>> {
        let row: Option<AuditRow> = sqlx::query_as(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audits WHERE run_id = ?1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(run.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(decode_audit).transpose()
    }

    async fn advance_audit(
        &self,
        audit: Audit,
        from: &[AuditStatus],
        activity: Vec<NewActivity>,
    ) -> Result<Option<Audit>> {
        let id = audit.id.to_string();
        let allowed: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE audits SET run_id = ?1, focus = ?2, status = ?3, findings = ?4, \
             figures = ?5, window_days = ?6, patches_proposed = ?7, issues_created = ?8, \
             finished_at = ?9 \
             WHERE id = ?10 AND status IN (SELECT value FROM json_each(?11))",
        )
        .bind(audit.run_id.map(|r| r.to_string()))
        .bind(&audit.focus)
        .bind(audit.status.as_str())
        .bind(&audit.findings)
        .bind(&audit.figures)
        .bind(i64::from(audit.window_days))
        .bind(audit.patches_proposed)
        .bind(audit.issues_created)
        .bind(ms_opt(audit.finished_at))
        .bind(&id)
        .bind(serde_json::to_string(&allowed).map_err(StoreError::backend)?)
        .execute(&mut *tx)
        .await
        .map_err(map_err("audit", &id))?;
        if done.rows_affected() == 0 {
            let exists: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM audits WHERE id = ?1")
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
            return match exists {
                Some(_) => Ok(None),
                None => Err(StoreError::not_found("audit", &id)),
            };
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(audit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every figures query searches its index over the window; none scans the runs, the
    /// activity log or the issues.
    #[tokio::test]
    async fn the_figures_queries_search_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_path(dir.path().join("mesa.db"))
            .await
            .unwrap();
        for sql in [
            RUN_COUNTS,
            FAILURE_REASONS,
            REJECTIONS,
            BLOCKED,
            CREATED_ISSUES,
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .bind(1_i64)
                    .bind(2_i64)
                    .bind(3_i64)
                    .fetch_all(&store.reader)
                    .await
                    .unwrap();
            let steps: Vec<&str> = plan.iter().map(|p| p.3.as_str()).collect();
            for step in &steps {
                let scans_history = step.starts_with("SCAN")
                    && ["runs", " r ", "activity", "issues"]
                        .iter()
                        .any(|t| step.contains(t) || step.ends_with(" r"));
                assert!(!scans_history, "{sql}\n{steps:#?}");
            }
            assert!(steps.iter().any(|s| s.starts_with("SEARCH")), "{steps:#?}");
        }
    }
}
