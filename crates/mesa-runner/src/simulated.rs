//! The `simulated` runner (SPEC §7.2): an in-process scripted agent that really uses the Mesa
//! REST API with its run key, following its role. The CEO delegates an issue as two or three
//! sub-issues and closes it once they are done; everyone else checks out, comments, commits a
//! file in the worktree, posts evidence and submits; reviewers approve, or request changes at
//! most once per issue, so every issue converges.
//!
//! Randomness is seeded from the runner's seed, the agent's `MESA_SIM_SEED` (default 0) and
//! the run id, so a run is reproducible. Each step takes 50–400 ms divided by the agent's
//! `MESA_SIM_SPEED` (default 1) and spends synthetic tokens, whose cost is estimated from the
//! [`PriceTable`] (`CostSource::Estimated`). A reviewer asks for changes on an issue's first
//! review with the chance `MESA_SIM_CHANGES_PERCENT` (0–100, default 20). An HTTP error ends the run `failed` with the
//! method, path, status and body; cancel and the timeout are honoured between and during
//! steps. `mesa demo` runs a whole company of them.

mod api;
mod ceo;
mod rng;
mod worker;

#[cfg(test)]
mod tests;

use std::time::Duration;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{CostSource, MicroUsd, RunMode, RunStatus};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::price::PriceTable;
use crate::scrub::Scrubber;
use crate::{AgentRunner, Invocation, Result, RunOutcome, RunnerError, RunnerEvent, Stream};
use api::{Api, SimError};
use rng::Rng;

/// The model whose prices estimate the cost when the agent names none the table knows.
const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// The `simulated` runner. Cheap to build; each run makes its own HTTP client.
#[derive(Debug, Clone)]
pub struct SimulatedRunner {
    seed: u64,
    prices: PriceTable,
}

impl SimulatedRunner {
    /// A runner whose randomness derives from `seed` and each run's id, with the built-in
    /// prices.
    pub fn new(seed: u64) -> Self {
        SimulatedRunner {
            seed,
            prices: PriceTable::default(),
        }
    }

    /// The same runner estimating cost with `prices`.
    #[must_use]
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }
}

impl Default for SimulatedRunner {
    fn default() -> Self {
        SimulatedRunner::new(0)
    }
}

#[async_trait::async_trait]
impl AgentRunner for SimulatedRunner {
    async fn run(
        &self,
        inv: Invocation,
        events: mpsc::Sender<RunnerEvent>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let env = SimEnv::from_pairs(&inv.env).map_err(|e| RunnerError::Config(e.to_string()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| RunnerError::Config(format!("cannot build an HTTP client: {e}")))?;
        let run_seed = self.seed ^ env.seed.rotate_left(29) ^ fold(inv.run_id.as_uuid().as_u128());
        let mut agent = Sim {
            api: Api {
                client,
                base: env.api_url.trim_end_matches('/').to_owned(),
                key: env.api_key.clone(),
            },
            rng: Rng::new(run_seed),
            speed: env.speed,
            changes_percent: env.changes_percent,
            me: env.agent_slug.clone(),
            scrubber: Scrubber::new(&inv.secrets),
            events,
            usage: TokenUsage::default(),
            turns: 0,
        };
        let ending = {
            let play = agent.play(&inv);
            tokio::select! {
                () = cancel.cancelled() => Ending::Cancelled,
                r = tokio::time::timeout(inv.timeout, play) => match r {
                    Ok(Ok(note)) => Ending::Done(note),
                    Ok(Err(e)) => Ending::Failed(e),
                    Err(_) => Ending::TimedOut,
                },
            }
        };
        let model = if inv.config.model.is_empty() {
            DEFAULT_MODEL
        } else {
            inv.config.model.as_str()
        };
        Ok(agent.outcome(ending, &self.prices, model, inv.timeout))
    }
}

/// Folds a 128-bit id into 64 bits.
fn fold(x: u128) -> u64 {
    #[expect(clippy::cast_possible_truncation, reason = "folding on purpose")]
    let (hi, lo) = ((x >> 64) as u64, x as u64);
    hi ^ lo.rotate_left(17)
}

/// What a simulated run needs from its environment.
#[derive(Debug, Clone)]
struct SimEnv {
    api_url: String,
    api_key: String,
    agent_slug: String,
    speed: f64,
    seed: u64,
    changes_percent: u64,
}

impl SimEnv {
    fn from_pairs(env: &[(String, String)]) -> Result<SimEnv, SimError> {
        let get = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.trim().is_empty())
        };
        let speed = match get("MESA_SIM_SPEED") {
            None => 1.0,
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or(SimError::Env("MESA_SIM_SPEED must be a positive number"))?,
        };
        let seed = match get("MESA_SIM_SEED") {
            None => 0,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| SimError::Env("MESA_SIM_SEED must be a whole number"))?,
        };
        let changes_percent = match get("MESA_SIM_CHANGES_PERCENT") {
            None => worker::CHANGES_PERCENT,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or(SimError::Env(
                    "MESA_SIM_CHANGES_PERCENT must be a whole number from 0 to 100",
                ))?,
        };
        Ok(SimEnv {
            changes_percent,
            api_url: get("MESA_API_URL").ok_or(SimError::Env("MESA_API_URL is not set"))?,
            api_key: get("MESA_API_KEY").ok_or(SimError::Env("MESA_API_KEY is not set"))?,
            agent_slug: get("MESA_AGENT_SLUG").unwrap_or_default(),
            speed: speed.clamp(0.01, 1000.0),
            seed,
        })
    }
}

/// How a run ended.
enum Ending {
    Done(String),
    Failed(SimError),
    Cancelled,
    TimedOut,
}

/// A simulated agent in one run.
struct Sim {
    api: Api,
    rng: Rng,
    speed: f64,
    /// Chance (percent) of asking for changes on an issue's first review.
    changes_percent: u64,
    me: String,
    scrubber: Scrubber,
    events: mpsc::Sender<RunnerEvent>,
    usage: TokenUsage,
    turns: i64,
}

impl Sim {
    /// Plays the run: the role and the mode decide the script.
    async fn play(&mut self, inv: &Invocation) -> Result<String, SimError> {
        let ceo = inv.config.archetype.as_str() == "ceo";
        let key = inv.issue_key.as_ref().map(ToString::to_string);
        self.say(format!(
            "simulated {} ({}) starts a {} run{}",
            self.me,
            inv.config.archetype.as_str(),
            inv.mode,
            key.as_deref()
                .map(|k| format!(" on {k}"))
                .unwrap_or_default()
        ))
        .await;
        let note = match (inv.mode, key) {
            (RunMode::Review, Some(k)) if ceo => {
                let note = self.review(&k).await?;
                self.close_parent_of(&k).await?;
                note
            }
            (RunMode::Review, Some(k)) => self.review(&k).await?,
            (RunMode::Task, Some(k)) if ceo => self.ceo_task(&k).await?,
            (RunMode::Task, Some(k)) => self.work(&k, &inv.workdir).await?,
            _ if ceo => self.ceo_heartbeat().await?,
            _ => self.heartbeat().await?,
        };
        self.say(format!("done: {note}")).await;
        Ok(note)
    }

    /// One line of output, scrubbed.
    async fn say(&self, line: impl AsRef<str>) {
        let line = self.scrubber.scrub(line.as_ref()).into_owned();
        let _ = self
            .events
            .send(RunnerEvent::Output {
                stream: Stream::Stdout,
                line,
            })
            .await;
    }

    /// A synthetic model turn: it takes a while and spends tokens.
    async fn think(&mut self, what: &str) {
        let ms = self.rng.between(50, 400);
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a few hundred milliseconds, scaled"
        )]
        let scaled = ((ms as f64) / self.speed).round().max(1.0) as u64;
        tokio::time::sleep(Duration::from_millis(scaled)).await;
        self.turns += 1;
        let grow = self.turns.min(20);
        self.usage.input_tokens += to_i64(self.rng.between(600, 2_400)) * grow;
        self.usage.output_tokens += to_i64(self.rng.between(80, 700));
        self.usage.cache_read_tokens += to_i64(self.rng.between(2_000, 12_000));
        if self.turns == 1 {
            self.usage.cache_write_tokens += to_i64(self.rng.between(3_000, 9_000));
        }
        self.say(format!("· {what}")).await;
    }

    /// The outcome of the run with its synthetic usage and estimated cost.
    fn outcome(
        &self,
        ending: Ending,
        prices: &PriceTable,
        model: &str,
        timeout: Duration,
    ) -> RunOutcome {
        let (status, failure_reason, result_text) = match ending {
            Ending::Done(note) => (RunStatus::Succeeded, None, Some(note)),
            Ending::Failed(e) => (RunStatus::Failed, Some(e.to_string()), None),
            Ending::Cancelled => (RunStatus::Cancelled, Some("cancelled".to_owned()), None),
            Ending::TimedOut => (
                RunStatus::TimedOut,
                Some(format!("timed out after {} s", timeout.as_secs())),
                None,
            ),
        };
        let cost = prices
            .estimate(model, &self.usage)
            .or_else(|| prices.estimate(DEFAULT_MODEL, &self.usage))
            .or_else(|| PriceTable::builtin().estimate(DEFAULT_MODEL, &self.usage))
            .unwrap_or(MicroUsd::ZERO);
        let scrub = |s: String| self.scrubber.scrub(&s).into_owned();
        RunOutcome {
            status,
            exit_code: None,
            failure_reason: failure_reason.map(scrub),
            usage: self.usage,
            cost_usd: cost,
            cost_source: CostSource::Estimated,
            num_turns: Some(self.turns),
            quota: None,
            result_text: result_text.map(scrub),
        }
    }

    /// `GET /issues/{key}`: `{issue, comments, children, runs}`.
    async fn issue(&mut self, key: &str) -> Result<Value, SimError> {
        self.think(&format!("reading {key}")).await;
        let path = format!("/api/v1/issues/{key}");
        let detail = self.api.get(&path).await?;
        if !detail["issue"].is_object() {
            return Err(SimError::Reply {
                path,
                what: "no issue object",
            });
        }
        Ok(detail)
    }

    /// The atomic checkout; false when someone else holds the issue (409).
    async fn checkout(&mut self, key: &str) -> Result<bool, SimError> {
        let path = format!("/api/v1/issues/{key}/checkout");
        match self.api.post(&path, &json!({})).await {
            Ok(_) => {
                self.say(format!("checked out {key}")).await;
                Ok(true)
            }
            Err(e) if e.status() == Some(409) => {
                self.say(format!("{key} is not mine to take ({e}); stopping"))
                    .await;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Posts a comment of `kind` (`comment` or `evidence`).
    async fn comment(&mut self, key: &str, kind: &str, body: &str) -> Result<(), SimError> {
        let path = format!("/api/v1/issues/{key}/comments");
        self.api
            .post(&path, &json!({ "body": body, "kind": kind }))
            .await?;
        self.say(format!("posted a {kind} on {key}")).await;
        Ok(())
    }
}

/// A synthetic count as the store's integer.
fn to_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}
