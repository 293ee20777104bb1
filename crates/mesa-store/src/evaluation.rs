//! Run evaluation (SPEC §4.3, flag `run_evaluation`): the stored trajectory signature of a
//! finished task run (and a judge's rubric, when there is one), and their roll-up per archetype
//! for the Observability page.

use async_trait::async_trait;
use mesa_domain::{AgentId, RunId, Slug, Timestamp};

use crate::Result;

/// The evaluation of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvaluation {
    /// The run.
    pub run_id: RunId,
    /// Its agent.
    pub agent_id: AgentId,
    /// The agent's archetype when the run ran.
    pub archetype: Slug,
    /// The trajectory signature (JSON object: `tool_calls`, `tools`,
    /// `reads_before_first_write`, `tool_errors`, `time_to_first_edit_ms`).
    pub signature: serde_json::Value,
    /// A judge's rubric (JSON object with `fidelity` 0–1 among others), when one was asked.
    pub rubric: Option<serde_json::Value>,
    /// When it was computed.
    pub created_at: Timestamp,
}

/// The evaluations of one archetype's runs in a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchetypeEvaluation {
    /// The archetype.
    pub archetype: String,
    /// Evaluated runs.
    pub runs: u64,
    /// Of them, runs that `succeeded`.
    pub succeeded: u64,
    /// Mean tool calls per run.
    pub avg_tool_calls: f64,
    /// Mean distinct tools per run.
    pub avg_distinct_tools: f64,
    /// Mean reads before the first write.
    pub avg_reads_before_first_write: f64,
    /// Failed tool calls, in all.
    pub tool_errors: u64,
    /// Runs that edited a file.
    pub runs_with_edit: u64,
    /// Mean time to the first edit over the runs that edited, in milliseconds.
    pub avg_time_to_first_edit_ms: Option<f64>,
    /// Mean judged fidelity over the runs a judge scored.
    pub avg_fidelity: Option<f64>,
}

/// Storage of run evaluations.
#[async_trait]
pub trait EvaluationStore: Send + Sync {
    /// Stores (or replaces) the evaluation of a run.
    async fn put_run_evaluation(&self, evaluation: RunEvaluation) -> Result<()>;
    /// The evaluation of a run, if it has one.
    async fn run_evaluation(&self, run: RunId) -> Result<Option<RunEvaluation>>;
    /// The evaluations since `since`, rolled up per archetype (by archetype name).
    async fn evaluation_rollup(&self, since: Timestamp) -> Result<Vec<ArchetypeEvaluation>>;
}
