//! Run evaluation (SPEC §4.3, flag `run_evaluation`): while the flag is on, the engine follows
//! each task run's output with a [`TrajectoryTracker`](mesa_runner::trajectory) and stores the
//! signature when the run ends; the run page shows it and the Observability page rolls the
//! signatures up per archetype.

use std::time::Duration;

use mesa_domain::entity::{Agent, Run};
use mesa_domain::{RunId, Timestamp, ValidationError};
use mesa_runner::judge::{JudgeEndpoint, JudgeInput};
use mesa_runner::trajectory::Trajectory;
use mesa_store::{ArchetypeEvaluation, RunEvaluation};

use crate::error::{CoreError, Result};
use crate::mesa::Mesa;
use crate::settings::Settings;

/// How long the judge may take to answer.
const JUDGE_TIMEOUT: Duration = Duration::from_secs(120);

/// The judge the settings configure: `judge_base_url` (an OpenAI-compatible endpoint),
/// `judge_model` and the secret `judge_api_key`. `None` without a base URL.
fn judge_endpoint(settings: &Settings) -> Option<JudgeEndpoint> {
    let base_url = settings.get("judge_base_url")?.trim();
    if base_url.is_empty() {
        return None;
    }
    Some(JudgeEndpoint {
        base_url: base_url.to_owned(),
        model: settings.get("judge_model").unwrap_or_default().to_owned(),
        api_key: settings
            .get("judge_api_key")
            .filter(|k| !k.is_empty())
            .map(str::to_owned),
    })
}

/// The longest window the Observability page rolls up, in days.
pub const MAX_OBSERVABILITY_DAYS: u32 = 365;

impl Mesa {
    /// Stores the trajectory signature of a finished run of `agent`.
    pub(crate) async fn record_evaluation(
        &self,
        run: &Run,
        agent: &Agent,
        trajectory: &Trajectory,
    ) -> Result<()> {
        let signature = serde_json::to_value(trajectory)
            .map_err(|e| CoreError::Conflict(format!("a signature that is not JSON: {e}")))?;
        let evaluation = RunEvaluation {
            run_id: run.id,
            agent_id: agent.id,
            archetype: agent.config.archetype.clone(),
            signature,
            rubric: None,
            created_at: self.now(),
        };
        Ok(self.inner.store.put_run_evaluation(evaluation).await?)
    }

    /// Asks the configured judge (if any) to grade an evaluated run, in the background: the
    /// run's slot is free already, and a judge that is slow or down only leaves the run
    /// "not judged" (its error is stored in the rubric as `{"error": ...}`).
    pub(crate) async fn judge_in_background(&self, run: RunId, result: Option<String>) {
        let Some(endpoint) = judge_endpoint(&self.settings().await) else {
            return;
        };
        let mesa = self.clone();
        tokio::spawn(async move {
            if let Err(e) = mesa
                .judge_run(run, &endpoint, result.unwrap_or_default())
                .await
            {
                tracing::warn!(%run, error = %e, "could not store the judge's rubric");
            }
        });
    }

    async fn judge_run(&self, run: RunId, endpoint: &JudgeEndpoint, result: String) -> Result<()> {
        let store = &self.inner.store;
        let Some(mut evaluation) = store.run_evaluation(run).await? else {
            return Ok(());
        };
        let stored = store.run(run).await?;
        let issue = match &stored.issue_key {
            Some(key) => Some(store.issue(key).await?),
            None => None,
        };
        let input = JudgeInput {
            issue_key: stored
                .issue_key
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            title: issue
                .as_ref()
                .map(|i| i.title.to_string())
                .unwrap_or_default(),
            description: issue
                .as_ref()
                .map(|i| i.description.to_string())
                .unwrap_or_default(),
            signature: evaluation.signature.to_string(),
            result,
            diff: stored.diff.unwrap_or_default(),
        };
        evaluation.rubric = Some(
            match mesa_runner::judge::ask(endpoint, &input, JUDGE_TIMEOUT).await {
                Ok((rubric, usage)) => {
                    let mut v = serde_json::to_value(&rubric).map_err(|e| {
                        CoreError::Conflict(format!("a rubric that is not JSON: {e}"))
                    })?;
                    v["input_tokens"] = usage.input_tokens.into();
                    v["output_tokens"] = usage.output_tokens.into();
                    v
                }
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            },
        );
        Ok(store.put_run_evaluation(evaluation).await?)
    }

    /// The evaluation of a run, if it was evaluated.
    pub async fn run_evaluation(&self, run: RunId) -> Result<Option<RunEvaluation>> {
        Ok(self.inner.store.run_evaluation(run).await?)
    }

    /// The evaluations of the last `days` days (1 to [`MAX_OBSERVABILITY_DAYS`]), per archetype.
    pub async fn observability(&self, days: u32) -> Result<Vec<ArchetypeEvaluation>> {
        if !(1..=MAX_OBSERVABILITY_DAYS).contains(&days) {
            return Err(ValidationError::new(
                "days",
                format!("days must be from 1 to {MAX_OBSERVABILITY_DAYS}"),
            )
            .into());
        }
        let since = Timestamp::from_millis(
            self.now()
                .as_millis()
                .saturating_sub(i64::from(days) * 86_400_000),
        );
        Ok(self.inner.store.evaluation_rollup(since).await?)
    }
}
