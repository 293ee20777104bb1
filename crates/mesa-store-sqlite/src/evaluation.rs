//! Run evaluations: [`EvaluationStore`] for [`SqliteStore`].

use async_trait::async_trait;
use mesa_domain::{AgentId, RunId, Slug, Timestamp};
use mesa_store::{ArchetypeEvaluation, EvaluationStore, Result, RunEvaluation};

use crate::SqliteStore;
use crate::error::{backend, map_err};
use crate::rows::{json, parse, ts};

const EVALUATION: &str = "run_evaluation";

#[derive(Debug, sqlx::FromRow)]
struct EvaluationRow {
    run_id: String,
    agent_id: String,
    archetype: String,
    signature: String,
    rubric: Option<String>,
    created_at: i64,
}

fn decode(row: &EvaluationRow) -> Result<RunEvaluation> {
    Ok(RunEvaluation {
        run_id: parse(EVALUATION, RunId::parse(&row.run_id))?,
        agent_id: parse(EVALUATION, AgentId::parse(&row.agent_id))?,
        archetype: parse(EVALUATION, Slug::parse(&row.archetype))?,
        signature: json(EVALUATION, "signature", &row.signature)?,
        rubric: row
            .rubric
            .as_deref()
            .map(|r| json(EVALUATION, "rubric", r))
            .transpose()?,
        created_at: ts(row.created_at),
    })
}

#[derive(Debug, sqlx::FromRow)]
struct RollupRow {
    archetype: String,
    runs: i64,
    succeeded: i64,
    avg_tool_calls: f64,
    avg_distinct_tools: f64,
    avg_reads: f64,
    tool_errors: i64,
    runs_with_edit: i64,
    avg_first_edit: Option<f64>,
    avg_fidelity: Option<f64>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl EvaluationStore for SqliteStore {
    async fn put_run_evaluation(&self, e: RunEvaluation) -> Result<()> {
        let rubric = e.rubric.as_ref().map(ToString::to_string);
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO run_evaluations (run_id, agent_id, archetype, signature, rubric, \
             created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (run_id) DO UPDATE SET signature = excluded.signature, \
             rubric = excluded.rubric, created_at = excluded.created_at",
        )
        .bind(e.run_id.to_string())
        .bind(e.agent_id.to_string())
        .bind(e.archetype.as_str())
        .bind(e.signature.to_string())
        .bind(rubric)
        .bind(e.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err(EVALUATION, &e.run_id))?;
        tx.commit().await.map_err(backend)
    }

    async fn run_evaluation(&self, run: RunId) -> Result<Option<RunEvaluation>> {
        let row: Option<EvaluationRow> = sqlx::query_as(
            "SELECT run_id, agent_id, archetype, signature, rubric, created_at \
             FROM run_evaluations WHERE run_id = ?",
        )
        .bind(run.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.as_ref().map(decode).transpose()
    }

    async fn evaluation_rollup(&self, since: Timestamp) -> Result<Vec<ArchetypeEvaluation>> {
        let rows: Vec<RollupRow> = sqlx::query_as(
            "SELECT e.archetype AS archetype, count(*) AS runs, \
               sum(r.status = 'succeeded') AS succeeded, \
               avg(coalesce(json_extract(e.signature, '$.tool_calls'), 0)) AS avg_tool_calls, \
               avg(coalesce(json_array_length(e.signature, '$.tools'), 0)) AS avg_distinct_tools, \
               avg(coalesce(json_extract(e.signature, '$.reads_before_first_write'), 0)) \
                 AS avg_reads, \
               coalesce(sum(json_extract(e.signature, '$.tool_errors')), 0) AS tool_errors, \
               count(json_extract(e.signature, '$.time_to_first_edit_ms')) AS runs_with_edit, \
               avg(json_extract(e.signature, '$.time_to_first_edit_ms')) AS avg_first_edit, \
               avg(json_extract(e.rubric, '$.fidelity')) AS avg_fidelity \
             FROM run_evaluations e JOIN runs r ON r.id = e.run_id \
             WHERE e.created_at >= ? GROUP BY e.archetype ORDER BY e.archetype",
        )
        .bind(since.as_millis())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|r| ArchetypeEvaluation {
                archetype: r.archetype,
                runs: count(r.runs),
                succeeded: count(r.succeeded),
                avg_tool_calls: r.avg_tool_calls,
                avg_distinct_tools: r.avg_distinct_tools,
                avg_reads_before_first_write: r.avg_reads,
                tool_errors: count(r.tool_errors),
                runs_with_edit: count(r.runs_with_edit),
                avg_time_to_first_edit_ms: r.avg_first_edit,
                avg_fidelity: r.avg_fidelity,
            })
            .collect())
    }
}
