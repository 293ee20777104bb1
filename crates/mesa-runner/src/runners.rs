//! The runner of each [`RunnerKind`]: the CLI runners (a process, its command line and its
//! output parser), `openai_compat` (in-process loop), and the free ones (`noop`, `dry_run`).

use std::sync::Arc;
use std::time::Duration;

use mesa_domain::{CostSource, MicroUsd, RunStatus, RunnerKind, Timestamp};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::price::PriceTable;
use crate::process::{self, ProcessSpec};
use crate::scrub::Scrubber;
use crate::{AgentRunner, Invocation, Result, RunOutcome, RunnerEvent, argv, outcome, parse};

/// The runner for `kind`.
pub fn runner_for(kind: RunnerKind, prices: &PriceTable) -> Arc<dyn AgentRunner> {
    match kind {
        RunnerKind::Noop => Arc::new(Noop),
        RunnerKind::DryRun => Arc::new(DryRun),
        RunnerKind::OpenaiCompat => Arc::new(crate::openai_compat::OpenAiCompatRunner::new(
            prices.clone(),
        )),
        RunnerKind::Simulated => {
            Arc::new(crate::simulated::SimulatedRunner::new(0).with_prices(prices.clone()))
        }
        _ => Arc::new(Cli {
            prices: prices.clone(),
        }),
    }
}

fn now() -> Timestamp {
    Timestamp::from_offset_datetime(time::OffsetDateTime::now_utc())
}

fn success(result: &str) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Succeeded,
        exit_code: None,
        failure_reason: None,
        usage: Default::default(),
        cost_usd: MicroUsd::ZERO,
        cost_source: CostSource::Parsed,
        num_turns: None,
        quota: None,
        result_text: Some(result.to_owned()),
    }
}

/// `noop`: no process; succeeds after a few milliseconds (tests).
#[derive(Debug, Clone, Copy)]
pub struct Noop;

#[async_trait::async_trait]
impl AgentRunner for Noop {
    async fn run(
        &self,
        _inv: Invocation,
        events: mpsc::Sender<RunnerEvent>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        tokio::select! {
            () = cancel.cancelled() => {
                let mut o = success("cancelled");
                o.status = RunStatus::Cancelled;
                o.result_text = None;
                return Ok(o);
            }
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        let _ = events
            .send(RunnerEvent::Output {
                stream: crate::Stream::Stdout,
                line: "noop: nothing to do".to_owned(),
            })
            .await;
        Ok(success("noop"))
    }
}

/// `dry_run`: no process; the prompt it would send is the run's stored prompt.
#[derive(Debug, Clone, Copy)]
pub struct DryRun;

#[async_trait::async_trait]
impl AgentRunner for DryRun {
    async fn run(
        &self,
        inv: Invocation,
        events: mpsc::Sender<RunnerEvent>,
        _cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let scrubber = Scrubber::new(&inv.secrets);
        let note = format!(
            "dry run: the {} runner would have been sent the stored prompt ({} bytes); \
             nothing was started",
            inv.config.runner,
            inv.prompt.len()
        );
        let _ = events
            .send(RunnerEvent::Output {
                stream: crate::Stream::Stdout,
                line: scrubber.scrub(&note).into_owned(),
            })
            .await;
        Ok(success("dry run"))
    }
}

/// The CLI runners (`claude_code`, `codex`, `gemini`, `opencode`, `copilot`, `command`): the
/// command line from [`argv::build`], the process from [`process::run_process`], the figures
/// from the kind's [`parse`] parser, the outcome from [`outcome::decide`].
#[derive(Debug, Clone)]
pub struct Cli {
    /// Prices for runners that report tokens without cost.
    pub prices: PriceTable,
}

#[async_trait::async_trait]
impl AgentRunner for Cli {
    async fn run(
        &self,
        inv: Invocation,
        events: mpsc::Sender<RunnerEvent>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let line = argv::build(&inv)?;
        for (path, content) in &line.files {
            tokio::fs::write(path, content).await?;
        }
        let scrubber = Scrubber::new(&inv.secrets);
        let mut parser = parse::parser_for(inv.config.runner);
        let mut spec = ProcessSpec::new(
            line.program,
            line.args,
            inv.workdir.clone(),
            inv.env.clone(),
            inv.timeout,
        );
        spec.stdin = line.stdin;
        let exit = process::run_process(
            spec,
            &scrubber,
            &events,
            &mut |stream, l| parser.line(stream, l),
            cancel,
        )
        .await?;
        let parsed = parser.finish(now());
        let mut outcome = outcome::decide(&exit, parsed, &inv.config.model, &self.prices);
        outcome.failure_reason = outcome
            .failure_reason
            .map(|r| scrubber.scrub(&r).into_owned());
        outcome.result_text = outcome.result_text.map(|r| scrubber.scrub(&r).into_owned());
        Ok(outcome)
    }
}
