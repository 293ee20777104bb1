//! The `simulated` runner (SPEC §7.2): an in-process scripted agent that really uses the Mesa
//! REST API with its run key, following its role. The CEO delegates an issue as two or three
//! sub-issues and closes it once they are done; everyone else checks out, comments, commits a
//! file in the worktree, posts evidence and submits; reviewers approve, or request changes at
//! most once per issue, so every issue converges.
//!
//! Randomness is seeded from the runner's seed, the agent's `MESA_SIM_SEED` (default 0) and
//! the run id, so a run is reproducible. Each step takes 50–400 ms divided by the agent's
//! `MESA_SIM_SPEED` (default 1) and spends synthetic tokens, whose cost is estimated from the
//! [`PriceTable`] (`CostSource::Estimated`). An HTTP error ends the run `failed` with the
//! method, path, status and body; cancel and the timeout are honoured between and during
//! steps. `mesa demo` runs a whole company of them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{CostSource, MicroUsd, RunMode, RunStatus};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::price::PriceTable;
use crate::scrub::Scrubber;
use crate::{AgentRunner, Invocation, Result, RunOutcome, RunnerError, RunnerEvent, Stream};

/// The model whose prices estimate the cost when the agent names none the table knows.
const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// Percent of first reviews that request changes.
const CHANGES_PERCENT: u64 = 20;
/// Percent of delegations for which the CEO asks the board for a go-ahead.
const APPROVAL_PERCENT: u64 = 30;
/// Identity of the commits the simulated agents make.
const GIT_NAME: &str = "Mesa Simulated";
/// Email of that identity.
const GIT_EMAIL: &str = "sim@mesa.local";
/// Longest issue title the API accepts, in characters.
const MAX_TITLE: usize = 200;

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
        Ok(SimEnv {
            api_url: get("MESA_API_URL").ok_or(SimError::Env("MESA_API_URL is not set"))?,
            api_key: get("MESA_API_KEY").ok_or(SimError::Env("MESA_API_KEY is not set"))?,
            agent_slug: get("MESA_AGENT_SLUG").unwrap_or_default(),
            speed: speed.clamp(0.01, 1000.0),
            seed,
        })
    }
}

/// Why a simulated run could not go on.
#[derive(Debug, thiserror::Error)]
enum SimError {
    /// The API answered with an error status.
    #[error("{method} {path} returned {status}: {body}")]
    Http {
        method: &'static str,
        path: String,
        status: u16,
        body: String,
    },
    /// The request did not get an answer.
    #[error("{method} {path} failed: {message}")]
    Transport {
        method: &'static str,
        path: String,
        message: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected reply from {path}: {what}")]
    Reply { path: String, what: &'static str },
    /// The environment lacks something.
    #[error("{0}")]
    Env(&'static str),
    /// Writing or committing the work failed.
    #[error("could not commit the work: {0}")]
    Git(String),
}

impl SimError {
    /// The HTTP status, when the API answered with an error.
    fn status(&self) -> Option<u16> {
        match self {
            SimError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A detail of the error body (`{"error": {<field>: ...}}`), when there is one.
    fn detail(&self, field: &str) -> Option<String> {
        let SimError::Http { body, .. } = self else {
            return None;
        };
        let v: Value = serde_json::from_str(body).ok()?;
        v["error"][field].as_str().map(str::to_owned)
    }
}

/// How a run ended.
enum Ending {
    Done(String),
    Failed(SimError),
    Cancelled,
    TimedOut,
}

/// SplitMix64: small, fast and good enough for choosing what a simulated agent does.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let len = u64::try_from(items.len()).unwrap_or(u64::MAX);
        let i = usize::try_from(self.below(len)).unwrap_or(0);
        &items[i]
    }
}

/// The Mesa API, as the run's agent.
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SimError> {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = self.client.request(m, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |e: reqwest::Error| SimError::Transport {
            method,
            path: path.to_owned(),
            message: error_chain(&e),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let text = resp.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(SimError::Http {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                body: text,
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|_| SimError::Reply {
            path: path.to_owned(),
            what: "the body is not JSON",
        })
    }

    async fn get(&self, path: &str) -> Result<Value, SimError> {
        self.call("GET", path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, SimError> {
        self.call("POST", path, Some(body)).await
    }

    async fn patch(&self, path: &str, body: &Value) -> Result<Value, SimError> {
        self.call("PATCH", path, Some(body)).await
    }
}

/// An error and its causes, joined with `: ` (reqwest hides "connection refused" in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The statuses after which an issue needs no more work from its assignee.
fn is_settled(status: &str) -> bool {
    matches!(
        status,
        "done" | "wont_do" | "cancelled" | "in_review" | "board_review"
    )
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "done" | "wont_do" | "cancelled")
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// A simulated agent in one run.
struct Sim {
    api: Api,
    rng: Rng,
    speed: f64,
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

    async fn comment(&mut self, key: &str, kind: &str, body: &str) -> Result<(), SimError> {
        let path = format!("/api/v1/issues/{key}/comments");
        self.api
            .post(&path, &json!({ "body": body, "kind": kind }))
            .await?;
        self.say(format!("posted a {kind} on {key}")).await;
        Ok(())
    }

    /// A worker's task run: check out, say so, do the work (a file committed in the worktree),
    /// post evidence, submit. After a review asked for changes, the work addresses them.
    async fn work(&mut self, key: &str, workdir: &Path) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let status = text(&detail["issue"], "status");
        if is_settled(&status) {
            return Ok(format!("{key} is {status}: nothing to do"));
        }
        if !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        let title = text(&detail["issue"], "title");
        let request = pending_change_request(&detail["comments"], &self.me);
        self.think("planning the work").await;
        let progress = match &request {
            Some(r) => format!("Addressing the review of {key}: {r}"),
            None => format!(
                "Picked up {key}. Plan: {}",
                self.rng.pick(PLANS_OF_WORK).to_owned()
            ),
        };
        self.comment(key, "comment", &progress).await?;
        self.think("making the change").await;
        let done = self
            .commit(workdir, key, &title, request.as_deref())
            .await?;
        self.think("running the checks").await;
        let passed = self.rng.between(6, 48);
        let evidence = format!(
            "Evidence for {key}:\n- {done}\n- checks: {passed} passed, 0 failed ({} ms)",
            self.rng.between(300, 4_000)
        );
        self.comment(key, "evidence", &evidence).await?;
        let path = format!("/api/v1/issues/{key}");
        let summary = if request.is_some() {
            "Changes made as requested; ready for another look."
        } else {
            "Ready for review: the change, its checks and the evidence are in."
        };
        let issue = self
            .api
            .patch(&path, &json!({ "status": "submit", "comment": summary }))
            .await?;
        let now = text(&issue, "status");
        self.say(format!("submitted {key}: now {now}")).await;
        Ok(format!("worked on {key} and submitted it ({now})"))
    }

    /// Writes the work into the worktree and commits it when it is a git repository.
    async fn commit(
        &mut self,
        workdir: &Path,
        key: &str,
        title: &str,
        request: Option<&str>,
    ) -> Result<String, SimError> {
        let rel = PathBuf::from("sim").join(format!("{}.md", key.to_lowercase()));
        let mut section = match request {
            None => format!("# {key}: {title}\n\nDone by {} (simulated).\n", self.me),
            Some(r) => format!("\n## Revision after review\n\n{r}\n"),
        };
        for _ in 0..self.rng.between(2, 5) {
            section.push_str(&format!("- {}\n", self.rng.pick(WORK_LINES)));
        }
        let message = match request {
            None => format!("{key}: {title}"),
            Some(_) => format!("{key}: address review"),
        };
        let dir = workdir.to_path_buf();
        let file = rel.clone();
        let sha =
            tokio::task::spawn_blocking(move || write_and_commit(&dir, &file, &section, &message))
                .await
                .map_err(|e| SimError::Git(e.to_string()))?
                .map_err(SimError::Git)?;
        let shown = rel.display();
        Ok(match sha {
            Some(sha) => {
                self.say(format!("committed {sha} ({shown})")).await;
                format!("commit `{sha}` updates `{shown}`")
            }
            None => format!("wrote `{shown}` (the working directory is not a git repository)"),
        })
    }

    /// A review run: approve mostly; request changes at most once per issue.
    async fn review(&mut self, key: &str) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let status = text(&detail["issue"], "status");
        if status != "in_review" {
            return Ok(format!("{key} is {status}: nothing to review"));
        }
        self.think("reading the diff and the evidence").await;
        let asked_before = change_requests(&detail["comments"]) > 0;
        let (decision, comment) = if !asked_before && self.rng.chance(CHANGES_PERCENT) {
            ("request_changes", *self.rng.pick(CHANGE_REQUESTS))
        } else {
            ("approve", *self.rng.pick(APPROVALS))
        };
        let path = format!("/api/v1/issues/{key}/review");
        let issue = self
            .api
            .post(&path, &json!({ "decision": decision, "comment": comment }))
            .await?;
        let now = text(&issue, "status");
        self.say(format!("{decision} on {key}: now {now}")).await;
        Ok(format!("reviewed {key}: {decision}"))
    }

    /// A heartbeat of anyone but the CEO: look at the inbox, touch nothing.
    async fn heartbeat(&mut self) -> Result<String, SimError> {
        self.think("reading my inbox").await;
        let inbox = items(&self.api.get("/api/v1/inbox?limit=100").await?);
        self.say(format!("{} issues in my inbox", inbox.len()))
            .await;
        Ok(format!("heartbeat: {} issues in the inbox", inbox.len()))
    }
}

/// The CEO's scripts.
impl Sim {
    /// A CEO task run: delegate an issue without sub-issues; close one whose sub-issues are
    /// finished; otherwise post a status update.
    async fn ceo_task(&mut self, key: &str) -> Result<String, SimError> {
        let detail = self.issue(key).await?;
        let issue = &detail["issue"];
        let status = text(issue, "status");
        if is_settled(&status) {
            return Ok(format!("{key} is {status}: nothing to do"));
        }
        let children = detail["children"].as_array().cloned().unwrap_or_default();
        if children.is_empty() {
            return self.delegate(key, issue).await;
        }
        if children_finished(&children) {
            return self.close(key, &status, &children).await;
        }
        let update = status_update(&children);
        self.comment(key, "comment", &update).await?;
        Ok(format!("posted a status update on {key}"))
    }

    /// Checks the issue out, creates two or three sub-issues for the team and says so.
    async fn delegate(&mut self, key: &str, issue: &Value) -> Result<String, SimError> {
        if !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        self.think("planning the work with the team").await;
        let roster = items(&self.api.get("/api/v1/agents").await?);
        let team: Vec<Member> = roster
            .iter()
            .filter(|a| a["active"].as_bool() == Some(true))
            .map(|a| Member {
                slug: text(a, "slug"),
                archetype: text(a, "archetype"),
            })
            .filter(|m| m.archetype != "ceo" && m.slug != self.me && !m.slug.is_empty())
            .collect();
        if team.is_empty() {
            let note = "Nobody to delegate to: the team has no active agent besides me.";
            self.comment(key, "comment", note).await?;
            return Ok(format!("could not delegate {key}"));
        }
        let title = text(issue, "title");
        let priority = issue["priority"].as_i64().unwrap_or(0);
        let mut lines = Vec::new();
        for step in plan_steps(&mut self.rng) {
            let who = assignee_for(step, &team, &mut self.rng);
            let child = self.create_child(key, &title, priority, step, &who).await?;
            lines.push(format!("- {child} ({}) → @{who}", step.verb));
        }
        let body = format!(
            "Delegated {key} as {} sub-issues:\n{}\nI will close it when they are done.",
            lines.len(),
            lines.join("\n")
        );
        self.comment(key, "comment", &body).await?;
        if self.rng.chance(APPROVAL_PERCENT) {
            self.ask_go_ahead(key, &title).await?;
        }
        Ok(format!("delegated {key} in {} sub-issues", lines.len()))
    }

    /// Creates one sub-issue; a duplicate title (a retried run) reuses the existing issue.
    async fn create_child(
        &mut self,
        parent: &str,
        title: &str,
        priority: i64,
        step: &Step,
        who: &str,
    ) -> Result<String, SimError> {
        let body = json!({
            "title": child_title(step.verb, title),
            "description": format!(
                "{} for {parent}.\n\n## Acceptance Criteria\n- {}\n- evidence posted before submitting",
                step.verb, step.brief
            ),
            "assignee_slug": who,
            "parent_key": parent,
            "priority": priority,
        });
        match self.api.post("/api/v1/issues", &body).await {
            Ok(created) => {
                let child = text(&created, "key");
                self.say(format!("created {child} for @{who}")).await;
                Ok(child)
            }
            Err(e) if e.status() == Some(409) && e.detail("existing_key").is_some() => {
                Ok(e.detail("existing_key").unwrap_or_default())
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the board (the CEO's reviewer chain ends there) for a go-ahead on the plan.
    async fn ask_go_ahead(&mut self, key: &str, title: &str) -> Result<(), SimError> {
        let body = json!({
            "kind": "other",
            "title": child_title(&format!("Go-ahead on the plan for {key}"), title),
            "body": format!("I split {key} into sub-issues; work has started. Object if you disagree."),
            "subject_type": "issue",
            "subject_id": key,
        });
        self.api.post("/api/v1/approvals", &body).await?;
        self.say(format!("asked the board for a go-ahead on {key}"))
            .await;
        Ok(())
    }

    /// Submits a parent whose sub-issues are finished (the CEO's submit closes it, SPEC §2).
    /// A 409 means another run of mine moved it first.
    async fn close(
        &mut self,
        key: &str,
        status: &str,
        children: &[Value],
    ) -> Result<String, SimError> {
        if matches!(status, "todo" | "blocked") && !self.checkout(key).await? {
            return Ok(format!("{key} is held by someone else"));
        }
        self.think(&format!("closing {key}")).await;
        let keys: Vec<String> = children.iter().map(|c| text(c, "key")).collect();
        let comment = format!(
            "All {} sub-issues are finished ({}); closing.",
            keys.len(),
            keys.join(", ")
        );
        let path = format!("/api/v1/issues/{key}");
        match self
            .api
            .patch(&path, &json!({ "status": "submit", "comment": comment }))
            .await
        {
            Ok(issue) => {
                let now = text(&issue, "status");
                self.say(format!("submitted {key}: now {now}")).await;
                Ok(format!("closed {key} ({now})"))
            }
            Err(e) if e.status() == Some(409) => {
                self.say(format!("{key} moved meanwhile ({e})")).await;
                Ok(format!("{key} moved meanwhile"))
            }
            Err(e) => Err(e),
        }
    }

    /// The CEO's heartbeat: close every parent of mine whose sub-issues are finished. Comments
    /// on nothing.
    async fn ceo_heartbeat(&mut self) -> Result<String, SimError> {
        self.think("reading my inbox").await;
        let inbox = items(&self.api.get("/api/v1/inbox?limit=500").await?);
        let mine: Vec<(String, String)> = inbox
            .iter()
            .filter(|i| text(i, "assignee_slug") == self.me)
            .filter(|i| matches!(text(i, "status").as_str(), "todo" | "in_progress"))
            .map(|i| (text(i, "key"), text(i, "status")))
            .collect();
        let mut closed = 0;
        for (key, status) in mine {
            let path = format!("/api/v1/issues/{key}");
            let detail = self.api.get(&path).await?;
            let children = detail["children"].as_array().cloned().unwrap_or_default();
            if children_finished(&children) {
                self.close(&key, &status, &children).await?;
                closed += 1;
            }
        }
        Ok(format!(
            "heartbeat: {} issues in the inbox, {closed} closed",
            inbox.len()
        ))
    }
}

/// A member of the team the CEO delegates to.
#[derive(Debug, Clone)]
struct Member {
    slug: String,
    archetype: String,
}

/// A kind of sub-issue, and the roles that do it best.
#[derive(Debug)]
struct Step {
    verb: &'static str,
    roles: &'static [&'static str],
    brief: &'static str,
}

/// The sub-issues the CEO may create; `Build` always, then one or two of the others.
const STEPS: &[Step] = &[
    Step {
        verb: "Build",
        roles: &["fullstack", "backend", "frontend", "architect"],
        brief: "implement it end to end, with tests",
    },
    Step {
        verb: "Spec",
        roles: &["product"],
        brief: "user stories and acceptance criteria written down",
    },
    Step {
        verb: "Design",
        roles: &["designer"],
        brief: "the screens and their empty, loading and error states",
    },
    Step {
        verb: "Test",
        roles: &["qa"],
        brief: "checks covering the main path and the error paths",
    },
    Step {
        verb: "Ship",
        roles: &["devops"],
        brief: "deployed behind a flag, with a dashboard to watch",
    },
];

/// Two or three steps: `Build` and one or two others, in table order.
fn plan_steps(rng: &mut Rng) -> Vec<&'static Step> {
    let extra = usize::try_from(rng.between(1, 2)).unwrap_or(1);
    let mut others: Vec<usize> = (1..STEPS.len()).collect();
    let mut chosen = vec![0];
    for _ in 0..extra {
        let i = usize::try_from(rng.below(others.len() as u64)).unwrap_or(0);
        chosen.push(others.remove(i));
    }
    chosen.sort_unstable();
    chosen.into_iter().map(|i| &STEPS[i]).collect()
}

/// The team member for a step: one whose archetype fits, else anyone.
fn assignee_for(step: &Step, team: &[Member], rng: &mut Rng) -> String {
    let fit: Vec<&Member> = team
        .iter()
        .filter(|m| step.roles.contains(&m.archetype.as_str()))
        .collect();
    if fit.is_empty() {
        rng.pick(team).slug.clone()
    } else {
        rng.pick(&fit).slug.clone()
    }
}

/// `<verb>: <parent title>`, cut to the API's title limit.
fn child_title(verb: &str, parent: &str) -> String {
    let full = format!("{verb}: {parent}");
    full.chars().take(MAX_TITLE).collect()
}

/// True when every sub-issue is terminal and at least one is done.
fn children_finished(children: &[Value]) -> bool {
    !children.is_empty()
        && children.iter().all(|c| is_terminal(&text(c, "status")))
        && children.iter().any(|c| text(c, "status") == "done")
}

fn status_update(children: &[Value]) -> String {
    let done = children
        .iter()
        .filter(|c| text(c, "status") == "done")
        .count();
    let open: Vec<String> = children
        .iter()
        .filter(|c| !is_terminal(&text(c, "status")))
        .map(|c| format!("{} ({})", text(c, "key"), text(c, "status")))
        .collect();
    format!(
        "Status: {done} of {} sub-issues done; open: {}.",
        children.len(),
        open.join(", ")
    )
}

/// Review comments that asked for changes.
fn change_requests(comments: &Value) -> usize {
    comments
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|c| text(c, "kind") == "review")
                .filter(|c| text(c, "body").starts_with("Changes requested"))
                .count()
        })
        .unwrap_or(0)
}

/// The text of a change request newer than my last evidence, if any (comments oldest first).
fn pending_change_request(comments: &Value, me: &str) -> Option<String> {
    let mut pending = None;
    for c in comments.as_array().into_iter().flatten() {
        let body = text(c, "body");
        if text(c, "kind") == "review" && body.starts_with("Changes requested") {
            let asked = body
                .split_once(':')
                .map_or(body.as_str(), |(_, rest)| rest)
                .trim()
                .to_owned();
            pending = Some(asked);
        } else if text(c, "kind") == "evidence" && text(c, "author") == me {
            pending = None;
        }
    }
    pending
}

/// Writes `section` to `rel` under `dir` (appending when the file exists) and commits it on
/// the current branch when `dir` is a git repository. Returns the short commit id.
fn write_and_commit(
    dir: &Path,
    rel: &Path,
    section: &str,
    message: &str,
) -> std::result::Result<Option<String>, String> {
    use std::io::Write;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(section.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let Ok(repo) = git2::Repository::open(dir) else {
        return Ok(None);
    };
    commit_path(&repo, rel, message)
        .map(Some)
        .map_err(|e| e.message().to_owned())
}

fn commit_path(repo: &git2::Repository, rel: &Path, message: &str) -> Result<String, git2::Error> {
    let mut index = repo.index()?;
    index.add_path(rel)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sig = git2::Signature::now(GIT_NAME, GIT_EMAIL)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)?;
    let full = oid.to_string();
    Ok(full[..full.len().min(10)].to_owned())
}

fn to_i64(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

const PLANS_OF_WORK: &[&str] = &[
    "read the context, make the change, run the checks, post evidence.",
    "reproduce first, then fix, then add a regression test.",
    "sketch the interface, implement it, cover the edge cases.",
    "small steps: one commit, checks green, evidence, submit.",
];

const WORK_LINES: &[&str] = &[
    "handled the empty input",
    "covered the error path with a test",
    "kept the public interface unchanged",
    "added a note to the changelog",
    "measured it: no regression",
    "removed a dead branch found on the way",
    "documented the new option",
];

const APPROVALS: &[&str] = &[
    "Looks good: the evidence covers the acceptance criteria.",
    "Checked the change and the checks; ship it.",
    "Clean and well evidenced. Approved.",
    "Does what the issue asks, with tests. Approved.",
];

const CHANGE_REQUESTS: &[&str] = &[
    "Please cover the error path with a test and show it in the evidence.",
    "The evidence does not show the empty case; please add it.",
    "Naming differs from the rest of the module; please align it and resubmit.",
];

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use mesa_domain::entity::AgentConfig;
    use mesa_domain::{IssueKey, Name, RunId, RunnerKind, Slug, WorkingDir};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const RUN_KEY: &str = "mesa_run_simulated_test_key_0123456789";

    /// One request the fake API received: method, path, body.
    type Seen = Arc<Mutex<Vec<(String, String, String)>>>;
    /// What the fake API answers to a method and a path: status and JSON body.
    type Answer = Arc<dyn Fn(&str, &str) -> (u16, Value) + Send + Sync>;

    /// A real HTTP server on 127.0.0.1 answering every request with `answer` (one request per
    /// connection); returns its base URL and what it received.
    async fn fake_api(answer: Answer) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (method, path, body) = read_request(&mut stream).await;
                let (status, reply) = answer(&method, &path);
                log.lock().unwrap().push((method, path, body));
                let reply = reply.to_string();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reply.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(reply.as_bytes()).await;
            }
        });
        (url, seen)
    }

    async fn read_request(stream: &mut tokio::net::TcpStream) -> (String, String, String) {
        let mut data = Vec::new();
        let mut buf = [0_u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    let mut first = head.lines().next().unwrap_or("").split(' ');
                    let method = first.next().unwrap_or("").to_owned();
                    let path = first.next().unwrap_or("").to_owned();
                    return (method, path, body.to_owned());
                }
            }
        }
        (String::new(), String::new(), String::new())
    }

    fn invocation(api_url: &str, workdir: &Path, mode: RunMode, archetype: &str) -> Invocation {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = AgentConfig::new(
            Name::parse("Quinn").unwrap(),
            Slug::parse(archetype).unwrap(),
            RunnerKind::Simulated,
            WorkingDir::parse(workdir.to_str().unwrap()).unwrap(),
        );
        Invocation {
            run_id: RunId::parse("01937a4e-0000-7000-8000-0000000000a1").unwrap(),
            mode,
            issue_key: Some(IssueKey::parse("MESA-7").unwrap()),
            config,
            prompt: String::new(),
            system_prompt: None,
            workdir: workdir.to_path_buf(),
            scratch_dir: workdir.to_path_buf(),
            env: vec![
                ("MESA_API_URL".to_owned(), api_url.to_owned()),
                ("MESA_API_KEY".to_owned(), RUN_KEY.to_owned()),
                ("MESA_AGENT_SLUG".to_owned(), "qa".to_owned()),
                ("MESA_SIM_SPEED".to_owned(), "50".to_owned()),
            ],
            timeout: Duration::from_secs(60),
            secrets: vec![RUN_KEY.to_owned()],
        }
    }

    async fn run(inv: Invocation, cancel: CancellationToken) -> (RunOutcome, Vec<String>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let outcome = SimulatedRunner::new(7).run(inv, tx, cancel).await.unwrap();
        let mut lines = Vec::new();
        while let Ok(RunnerEvent::Output { line, .. }) = rx.try_recv() {
            lines.push(line);
        }
        (outcome, lines)
    }

    fn issue_in_review(comments: Value) -> Value {
        json!({
            "issue": {"key": "MESA-7", "title": "Build: login", "status": "in_review",
                      "assignee_slug": "founding-engineer"},
            "comments": comments,
            "children": [],
            "runs": [],
        })
    }

    #[test]
    fn the_rng_is_reproducible_and_stays_in_range() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        let xs: Vec<u64> = (0..100).map(|_| a.between(50, 400)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.between(50, 400)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|x| (50..=400).contains(x)));
        assert_ne!(
            xs,
            (0..100)
                .map(|_| Rng::new(43).between(50, 400))
                .collect::<Vec<_>>()
        );
        let hits = (0..10_000).filter(|_| a.chance(20)).count();
        assert!((1_500..2_500).contains(&hits), "{hits}");
    }

    #[test]
    fn a_plan_is_build_and_one_or_two_other_steps() {
        for seed in 0..200 {
            let steps = plan_steps(&mut Rng::new(seed));
            assert!((2..=3).contains(&steps.len()));
            assert_eq!(steps[0].verb, "Build");
            let mut verbs: Vec<_> = steps.iter().map(|s| s.verb).collect();
            verbs.dedup();
            assert_eq!(verbs.len(), steps.len(), "no step twice: {verbs:?}");
        }
    }

    #[test]
    fn steps_go_to_a_fitting_role_else_to_anyone() {
        let team = vec![
            Member {
                slug: "linus".into(),
                archetype: "fullstack".into(),
            },
            Member {
                slug: "quinn".into(),
                archetype: "qa".into(),
            },
        ];
        let mut rng = Rng::new(1);
        let build = &STEPS[0];
        let design = STEPS.iter().find(|s| s.verb == "Design").unwrap();
        for _ in 0..20 {
            assert_eq!(assignee_for(build, &team, &mut rng), "linus");
            let who = assignee_for(design, &team, &mut rng);
            assert!(who == "linus" || who == "quinn");
        }
        let long = "x".repeat(300);
        assert_eq!(child_title("Build", &long).chars().count(), MAX_TITLE);
    }

    #[test]
    fn a_change_request_is_pending_until_my_next_evidence() {
        let asked = json!([
            {"kind": "evidence", "author": "qa", "body": "Evidence: v1"},
            {"kind": "review", "author": "ceo", "body": "Changes requested: add a test"},
        ]);
        assert_eq!(
            pending_change_request(&asked, "qa").as_deref(),
            Some("add a test")
        );
        assert_eq!(change_requests(&asked), 1);
        let answered = json!([
            {"kind": "review", "author": "ceo", "body": "Changes requested: add a test"},
            {"kind": "evidence", "author": "someone-else", "body": "Evidence"},
            {"kind": "evidence", "author": "qa", "body": "Evidence: v2"},
        ]);
        assert_eq!(pending_change_request(&answered, "qa"), None);
        assert_eq!(change_requests(&json!([])), 0);
    }

    #[test]
    fn a_parent_is_finished_when_all_children_are_terminal_and_one_is_done() {
        let kids = |s: &[&str]| -> Vec<Value> {
            s.iter()
                .map(|st| json!({"key": "K-1", "status": st}))
                .collect()
        };
        assert!(children_finished(&kids(&["done", "wont_do"])));
        assert!(!children_finished(&kids(&["done", "in_review"])));
        assert!(!children_finished(&kids(&["cancelled"])));
        assert!(!children_finished(&[]));
        assert!(status_update(&kids(&["done", "todo"])).contains("1 of 2"));
    }

    #[test]
    fn work_is_committed_on_head_with_the_simulated_identity() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("Someone", "someone@example.com").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
            .unwrap();
        let rel = Path::new("sim/mesa-7.md");
        let first = write_and_commit(dir.path(), rel, "# one\n", "MESA-7: one")
            .unwrap()
            .unwrap();
        write_and_commit(dir.path(), rel, "## two\n", "MESA-7: two")
            .unwrap()
            .unwrap();
        let head = repo.head().unwrap().peel_to_commit().unwrap();
        assert_eq!(head.author().name().unwrap(), GIT_NAME);
        assert_eq!(head.author().email().unwrap(), GIT_EMAIL);
        assert_eq!(head.message().unwrap(), "MESA-7: two");
        assert!(head.parent(0).unwrap().id().to_string().starts_with(&first));
        let content = std::fs::read_to_string(dir.path().join(rel)).unwrap();
        assert_eq!(content, "# one\n## two\n");
        assert_eq!(
            repo.statuses(None).unwrap().len(),
            0,
            "nothing left uncommitted"
        );

        let plain = tempfile::tempdir().unwrap();
        assert_eq!(
            write_and_commit(plain.path(), rel, "x\n", "m").unwrap(),
            None
        );
        assert!(plain.path().join(rel).is_file());
    }

    #[tokio::test]
    async fn a_reviewer_never_requests_changes_twice() {
        let answer: Answer = Arc::new(|method, path| match (method, path) {
            ("GET", "/api/v1/issues/MESA-7") => (
                200,
                issue_in_review(json!([
                    {"kind": "review", "author": "qa", "body": "Changes requested: add a test"},
                    {"kind": "evidence", "author": "founding-engineer", "body": "Evidence v2"},
                ])),
            ),
            ("POST", "/api/v1/issues/MESA-7/review") => {
                (200, json!({"key": "MESA-7", "status": "done"}))
            }
            _ => (
                404,
                json!({"error": {"code": "not_found", "message": "no"}}),
            ),
        });
        for n in 0..8 {
            let (url, seen) = fake_api(Arc::clone(&answer)).await;
            let dir = tempfile::tempdir().unwrap();
            let mut inv = invocation(&url, dir.path(), RunMode::Review, "qa");
            inv.run_id = RunId::parse(&format!("01937a4e-0000-7000-8000-00000000000{n}")).unwrap();
            let (outcome, lines) = run(inv, CancellationToken::new()).await;
            assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
            let seen = seen.lock().unwrap().clone();
            let (_, _, body) = seen
                .iter()
                .find(|(m, p, _)| m == "POST" && p.ends_with("/review"))
                .expect("a review was posted");
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["decision"], "approve", "run {n}: {lines:?}");
            assert_eq!(outcome.cost_source, CostSource::Estimated);
            assert!(outcome.usage.input_tokens > 0 && outcome.cost_usd > MicroUsd::ZERO);
            assert!(lines.iter().any(|l| l.contains("approve on MESA-7")));
        }
    }

    #[tokio::test]
    async fn a_worker_stops_quietly_when_the_checkout_conflicts() {
        let answer: Answer = Arc::new(|method, path| match (method, path) {
            ("GET", "/api/v1/issues/MESA-7") => (
                200,
                json!({"issue": {"key": "MESA-7", "title": "t", "status": "todo"},
                       "comments": [], "children": [], "runs": []}),
            ),
            ("POST", "/api/v1/issues/MESA-7/checkout") => (
                409,
                json!({"error": {"code": "checkout_conflict", "message": "taken", "status": "in_progress"}}),
            ),
            _ => (
                500,
                json!({"error": {"code": "internal", "message": "unexpected"}}),
            ),
        });
        let (url, seen) = fake_api(answer).await;
        let dir = tempfile::tempdir().unwrap();
        let inv = invocation(&url, dir.path(), RunMode::Task, "fullstack");
        let (outcome, _) = run(inv, CancellationToken::new()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let paths: Vec<String> = seen.lock().unwrap().iter().map(|r| r.1.clone()).collect();
        assert_eq!(
            paths,
            ["/api/v1/issues/MESA-7", "/api/v1/issues/MESA-7/checkout"]
        );
        assert!(
            !dir.path().join("sim").exists(),
            "no work without the issue"
        );
    }

    #[tokio::test]
    async fn an_http_error_fails_the_run_with_status_and_body_scrubbed() {
        let answer: Answer = Arc::new(|_, _| {
            (
                500,
                json!({"error": {"code": "internal", "message": format!("boom {RUN_KEY}")}}),
            )
        });
        let (url, _) = fake_api(answer).await;
        let dir = tempfile::tempdir().unwrap();
        let inv = invocation(&url, dir.path(), RunMode::Review, "qa");
        let (outcome, _) = run(inv, CancellationToken::new()).await;
        assert_eq!(outcome.status, RunStatus::Failed);
        let reason = outcome.failure_reason.unwrap();
        assert!(
            reason.contains("GET /api/v1/issues/MESA-7 returned 500"),
            "{reason}"
        );
        assert!(reason.contains("boom"), "{reason}");
        assert!(!reason.contains(RUN_KEY), "{reason}");
    }

    #[tokio::test]
    async fn cancel_and_timeout_end_a_slow_run() {
        let answer: Answer = Arc::new(|_, _| (200, issue_in_review(json!([]))));
        let (url, _) = fake_api(answer).await;
        let dir = tempfile::tempdir().unwrap();
        let slow = |timeout| {
            let mut inv = invocation(&url, dir.path(), RunMode::Review, "qa");
            inv.env
                .push(("MESA_SIM_SPEED".to_owned(), "0.001".to_owned()));
            inv.timeout = timeout;
            inv
        };
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.cancel();
        });
        let (outcome, _) = run(slow(Duration::from_secs(600)), cancel).await;
        assert_eq!(outcome.status, RunStatus::Cancelled);
        let (outcome, _) = run(slow(Duration::from_millis(200)), CancellationToken::new()).await;
        assert_eq!(outcome.status, RunStatus::TimedOut);
        assert!(outcome.failure_reason.unwrap().contains("timed out"));
    }

    #[tokio::test]
    async fn a_run_without_an_api_url_cannot_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = invocation("http://127.0.0.1:9", dir.path(), RunMode::Task, "qa");
        inv.env.retain(|(k, _)| k != "MESA_API_URL");
        let (tx, _rx) = mpsc::channel(8);
        let err = SimulatedRunner::default()
            .run(inv, tx, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("MESA_API_URL"), "{err}");
    }
}
