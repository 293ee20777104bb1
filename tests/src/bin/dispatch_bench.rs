//! Dispatch latency (SPEC §6.2; run by `cargo xtask bench dispatch`, never as a timed test):
//! from the commit of the change that wakes an agent (an issue created and assigned to it) to
//! the runner's process being spawned, with free capacity.
//!
//! Mesa runs in this process with its scheduler started, as `mesa serve` runs it. The agent's
//! runner is `command` with `date +%s%N`, so the first line a run logs is the wall-clock time
//! its process started; the clock is read just before the issue is created, so each figure
//! includes the whole creation call (the commit happens inside it). Issues are created one at
//! a time, each after the previous run finished (the per-agent loop guard is off, since one
//! agent runs hundreds of times).
//!
//! Usage: `mesa-dispatch-bench [--mesa <ignored>] [--runs N]`. Prints a Markdown table.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark CLI")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use mesa_core::domain::entity::AgentConfig;
use mesa_core::domain::{Actor, RunStatus, RunnerKind, WorkingDir};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{CoreConfig, EngineConfig, Mesa, NewIssue};

fn parse_runs() -> anyhow::Result<usize> {
    let mut runs = 200;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--runs" => runs = value()?.parse()?,
            "--mesa" => {
                value()?;
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(runs)
}

fn wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

fn main() -> anyhow::Result<()> {
    let runs = parse_runs()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut latencies = runtime.block_on(measure(runs))?;
    latencies.sort_unstable();
    let pct = |p: f64| {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a sorted sample"
        )]
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i]
    };
    let ms = |ns: i128| {
        #[expect(clippy::cast_precision_loss, reason = "display")]
        let v = ns as f64 / 1e6;
        v
    };
    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| dispatch latency, issue created → runner process spawned, free capacity ({} runs; p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms) | p99 {:.1} ms | p99 ≤ 50 ms |",
        latencies.len(),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(latencies[latencies.len() - 1]),
        ms(pct(0.99)),
    );
    Ok(())
}

async fn measure(runs: usize) -> anyhow::Result<Vec<i128>> {
    let dir = tempfile::tempdir()?;
    let config = CoreConfig::new(
        dir.path().join("data"),
        WorkingDir::parse(&dir.path().to_string_lossy())?,
    );
    let mesa = Mesa::builder()
        .sqlite(dir.path().join("mesa.db"))
        .config(config)
        .build()
        .await?;
    mesa.bootstrap_if_empty().await?;
    let board = Actor::board("bench");
    let current = mesa.find_agent("founding-engineer").await?;
    let agent = AgentConfig {
        runner: RunnerKind::Command,
        command: vec!["date".to_owned(), "+%s%N".to_owned()],
        max_concurrent_runs: 4,
        ..current.config.clone()
    };
    mesa.update_agent_config(&board, "founding-engineer", agent, None, "bench")
        .await?;
    let mut engine = EngineConfig::new("http://127.0.0.1:9");
    engine.server_env = vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())];
    // One agent runs hundreds of times here; the per-hour loop guard would pause it at 30.
    engine.max_runs_per_hour = 0;
    let scheduler = mesa.start_scheduler(engine);

    let mut latencies = Vec::with_capacity(runs);
    for i in 0..runs {
        let mut new = NewIssue::titled(&format!("Dispatch {i}"))?;
        new.assignee = Some("founding-engineer".to_owned());
        let t0 = wall_ns();
        let key = mesa.create_issue(&board, new).await?.issue.key;
        let run = loop {
            let page = mesa
                .runs(
                    &RunFilter {
                        issue: Some(key.clone()),
                        ..RunFilter::default()
                    },
                    &PageRequest::new(Some(1), None),
                )
                .await?;
            if let Some(r) = page.items.into_iter().find(|r| r.status.is_finished()) {
                break mesa.run_log(&Actor::System, r.id).await?;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        if run.status != RunStatus::Succeeded {
            bail!("run {} {}: {:?}", run.id, run.status, run.failure_reason);
        }
        let spawned: i128 = run
            .stdout
            .as_deref()
            .and_then(|s| s.lines().next())
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("no timestamp in the log of {}", run.id))?;
        latencies.push(spawned - t0);
    }
    scheduler.shutdown().await;
    eprintln!("measured {runs} dispatches");
    Ok(latencies)
}
