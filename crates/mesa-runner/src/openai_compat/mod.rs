//! The `openai_compat` runner (SPEC §7.2): an in-process agent loop against any
//! OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp server, vLLM, LM Studio or a
//! hosted API), for local models.
//!
//! Each turn sends the conversation to `POST {base_url}/chat/completions` (non-streaming),
//! runs every tool call of the reply (`read_file`, `write_file`, `list_dir`, `run_command`,
//! `mesa_api`) and sends the results back as `role: tool` messages, until a reply calls no tool
//! (success; its text is the result) or the turn limit is reached (`error_max_turns`). Usage is
//! summed over every reply; cost is estimated from the [`PriceTable`], and is zero for an
//! endpoint on a loopback or private address (a local model).

mod command;
mod summary;
mod tools;
pub(crate) mod wire;

use std::time::Duration;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{CostSource, MicroUsd, RunStatus, Timestamp};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::price::PriceTable;
use crate::scrub::Scrubber;
use crate::{
    AgentRunner, Invocation, QuotaHit, Result, RunOutcome, RunnerError, RunnerEvent, Stream,
};

use summary::one_line;
use tools::{MesaApi, ToolBox};
use wire::{Failure, Reply};

/// Largest model reply read, in bytes.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Longest tool-call or tool-result summary in the run's output, in characters.
const SUMMARY_CHARS: usize = 300;

/// Limits of the tools the model may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// Time limit of one `run_command` (its process group is killed after it) and of one
    /// `mesa_api` call.
    pub command_timeout: Duration,
    /// Bytes of command output or API response returned to the model (head and tail kept).
    pub output_cap: usize,
    /// Bytes of a file `read_file` returns (the start of the file).
    pub read_cap: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(600),
            output_cap: 64 * 1024,
            read_cap: 256 * 1024,
        }
    }
}

/// The `openai_compat` runner.
#[derive(Debug, Clone)]
pub struct OpenAiCompatRunner {
    prices: PriceTable,
    limits: ToolLimits,
}

impl OpenAiCompatRunner {
    /// A runner that estimates cost with `prices`, with the default [`ToolLimits`].
    pub fn new(prices: PriceTable) -> Self {
        Self {
            prices,
            limits: ToolLimits::default(),
        }
    }

    /// The same runner with other tool limits.
    #[must_use]
    pub fn with_limits(mut self, limits: ToolLimits) -> Self {
        self.limits = limits;
        self
    }
}

#[async_trait::async_trait]
impl AgentRunner for OpenAiCompatRunner {
    async fn run(
        &self,
        inv: Invocation,
        events: mpsc::Sender<RunnerEvent>,
        cancel: CancellationToken,
    ) -> Result<RunOutcome> {
        let mut session = Session::new(&inv, events, self.limits).await?;
        let mut progress = Progress::default();
        let end = tokio::select! {
            end = session.drive(&mut progress) => end,
            () = cancel.cancelled() => End::Cancelled,
            () = tokio::time::sleep(inv.timeout) => End::TimedOut,
        };
        session.report_end(&end).await;
        let cost = estimate_cost(
            &self.prices,
            &session.base_url,
            &inv.config.model,
            &progress.usage,
        );
        Ok(session.outcome(end, progress, cost, inv.timeout))
    }
}

/// What the loop has counted so far; kept outside the loop's future so that a timeout or a
/// cancel still reports the tokens already spent.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    usage: TokenUsage,
    turns: i64,
}

/// How the loop ended.
#[derive(Debug)]
enum End {
    /// A reply without tool calls; its text.
    Done(Option<String>),
    /// The turn limit was reached.
    MaxTurns,
    /// The provider's quota or rate limit.
    Quota {
        detail: String,
        retry_at: Option<Timestamp>,
    },
    /// Anything else that went wrong.
    Failed(String),
    /// The run's time limit passed.
    TimedOut,
    /// The run was cancelled.
    Cancelled,
}

/// One run's conversation and everything it needs.
struct Session {
    base_url: String,
    url: String,
    api_key: Option<String>,
    model: String,
    max_turns: u32,
    client: reqwest::Client,
    messages: Vec<Value>,
    tools: ToolBox,
    scrubber: Scrubber,
    events: mpsc::Sender<RunnerEvent>,
}

fn env_value(env: &[(String, String)], name: &str) -> Option<String> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

impl Session {
    async fn new(
        inv: &Invocation,
        events: mpsc::Sender<RunnerEvent>,
        limits: ToolLimits,
    ) -> Result<Self> {
        let base_url = inv
            .config
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .ok_or_else(|| {
                RunnerError::Config("the openai_compat runner needs a base_url".to_owned())
            })?
            .to_owned();
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        reqwest::Url::parse(&url).map_err(|e| {
            RunnerError::Config(format!("base_url {base_url:?} is not a valid URL: {e}"))
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| RunnerError::Config(format!("cannot build an HTTP client: {e}")))?;
        let root = tokio::fs::canonicalize(&inv.workdir).await.map_err(|e| {
            RunnerError::Config(format!(
                "working directory {} is not usable: {e}",
                inv.workdir.display()
            ))
        })?;
        let mesa = env_value(&inv.env, "MESA_API_URL").map(|url| MesaApi {
            url,
            key: env_value(&inv.env, "MESA_API_KEY"),
        });
        let tools = ToolBox {
            root,
            env: inv.env.clone(),
            mesa,
            client: client.clone(),
            limits,
            disallowed: inv.config.disallowed_tools.clone(),
        };
        let mut messages = Vec::new();
        if let Some(system) = inv.system_prompt.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": inv.prompt}));
        Ok(Self {
            base_url,
            url,
            api_key: env_value(&inv.env, "OPENAI_API_KEY"),
            model: inv.config.model.clone(),
            max_turns: inv.config.max_turns.max(1),
            client,
            messages,
            tools,
            scrubber: Scrubber::new(&inv.secrets),
            events,
        })
    }

    /// The loop: ask, run the tool calls, repeat.
    async fn drive(&mut self, progress: &mut Progress) -> End {
        let specs = self.tools.specs();
        for turn in 1..=self.max_turns {
            let reply = match self.ask(turn, &specs).await {
                Ok(reply) => reply,
                Err(end) => return end,
            };
            progress.turns += 1;
            add_usage(&mut progress.usage, &reply.usage);
            self.report_reply(turn, &reply).await;
            self.messages.push(reply.to_message());
            if reply.tool_calls.is_empty() {
                return End::Done(reply.text);
            }
            if turn == self.max_turns {
                break;
            }
            for call in &reply.tool_calls {
                let result = self.tools.call(&call.name, &call.arguments).await;
                self.emit(
                    Stream::Stdout,
                    &format!(
                        "tool result {}: {}",
                        call.name,
                        one_line(&result, SUMMARY_CHARS)
                    ),
                )
                .await;
                self.messages
                    .push(json!({"role": "tool", "tool_call_id": call.id, "content": result}));
            }
        }
        End::MaxTurns
    }

    /// One model call.
    async fn ask(&self, turn: u32, specs: &[Value]) -> std::result::Result<Reply, End> {
        let body = wire::request_body(&self.model, &self.messages, specs);
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| {
            End::Failed(format!(
                "cannot reach the model endpoint {}: {}",
                self.url,
                error_chain(&e)
            ))
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            End::Failed(format!(
                "reading the model's reply failed: {}",
                error_chain(&e)
            ))
        })? {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(End::Failed(format!(
                    "the model's reply is larger than {MAX_REPLY_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let now = time::OffsetDateTime::now_utc();
            return Err(
                match wire::classify(status, retry_after.as_deref(), &bytes, now) {
                    Failure::Quota { detail, retry_at } => End::Quota { detail, retry_at },
                    Failure::Other(reason) => End::Failed(reason),
                },
            );
        }
        Reply::parse(&bytes, turn)
            .map_err(|e| End::Failed(format!("malformed reply from the model endpoint: {e}")))
    }

    async fn report_reply(&self, turn: u32, reply: &Reply) {
        let calls = reply.tool_calls.len();
        self.emit(
            Stream::Stdout,
            &format!(
                "turn {turn}: {} input, {} cached, {} output tokens; {calls} tool call{}",
                reply.usage.input_tokens,
                reply.usage.cache_read_tokens,
                reply.usage.output_tokens,
                if calls == 1 { "" } else { "s" }
            ),
        )
        .await;
        if let Some(text) = &reply.text {
            for line in text.lines() {
                self.emit(Stream::Stdout, &format!("assistant: {line}"))
                    .await;
            }
        }
        for call in &reply.tool_calls {
            let arguments = serde_json::from_str::<Value>(&call.arguments)
                .map_or_else(|_| call.arguments.clone(), |v| v.to_string());
            self.emit(
                Stream::Stdout,
                &format!(
                    "tool call {}: {}",
                    call.name,
                    one_line(&arguments, SUMMARY_CHARS)
                ),
            )
            .await;
        }
    }

    async fn report_end(&self, end: &End) {
        let line = match end {
            End::Done(_) => return,
            End::MaxTurns => format!("stopped: the turn limit ({}) was reached", self.max_turns),
            End::Quota { detail, .. } => format!("stopped: quota or rate limit: {detail}"),
            End::Failed(reason) => format!("stopped: {reason}"),
            End::TimedOut => "stopped: the run's time limit passed".to_owned(),
            End::Cancelled => "stopped: the run was cancelled".to_owned(),
        };
        self.emit(Stream::Stderr, &line).await;
    }

    async fn emit(&self, stream: Stream, line: &str) {
        let line = self.scrubber.scrub(line).into_owned();
        // A closed channel means nobody listens any more; the run goes on.
        let _ = self.events.send(RunnerEvent::Output { stream, line }).await;
    }

    fn outcome(
        &self,
        end: End,
        progress: Progress,
        cost: MicroUsd,
        timeout: Duration,
    ) -> RunOutcome {
        let scrub = |text: String| self.scrubber.scrub(&text).into_owned();
        let (status, reason, quota, result) = match end {
            End::Done(text) => (RunStatus::Succeeded, None, None, text),
            End::MaxTurns => (
                RunStatus::Failed,
                Some("error_max_turns".to_owned()),
                None,
                None,
            ),
            End::Quota { retry_at, .. } => (
                RunStatus::Failed,
                Some("quota".to_owned()),
                Some(QuotaHit { retry_at }),
                None,
            ),
            End::Failed(reason) => (RunStatus::Failed, Some(reason), None, None),
            End::TimedOut => (
                RunStatus::TimedOut,
                Some(format!("timed out after {timeout:?}")),
                None,
                None,
            ),
            End::Cancelled => (
                RunStatus::Cancelled,
                Some("cancelled".to_owned()),
                None,
                None,
            ),
        };
        RunOutcome {
            status,
            exit_code: None,
            failure_reason: reason.map(scrub),
            usage: progress.usage,
            cost_usd: cost,
            cost_source: CostSource::Estimated,
            num_turns: Some(progress.turns),
            quota,
            result_text: result.map(scrub),
        }
    }
}

/// The cost of `usage`: zero for an endpoint on this machine or a private network (a local
/// model), else the price table's estimate (zero for a model it does not know).
fn estimate_cost(prices: &PriceTable, base_url: &str, model: &str, usage: &TokenUsage) -> MicroUsd {
    if wire::is_local_endpoint(base_url) {
        return MicroUsd::ZERO;
    }
    prices.estimate(model, usage).unwrap_or(MicroUsd::ZERO)
}

fn add_usage(total: &mut TokenUsage, more: &TokenUsage) {
    total.input_tokens += more.input_tokens;
    total.output_tokens += more.output_tokens;
    total.cache_read_tokens += more.cache_read_tokens;
    total.cache_write_tokens += more.cache_write_tokens;
}

/// An error and its causes, joined with `: ` (reqwest hides "connection refused" in a source).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn million_in() -> TokenUsage {
        TokenUsage {
            input_tokens: 1_000_000,
            ..TokenUsage::default()
        }
    }

    #[test]
    fn a_hosted_model_is_priced_from_the_table() {
        let prices = PriceTable::builtin();
        let usage = million_in();
        let hosted = estimate_cost(&prices, "https://api.openai.com/v1", "gpt-5", &usage);
        assert_eq!(Some(hosted), prices.estimate("gpt-5", &usage));
        assert!(!hosted.is_zero());
        assert_eq!(
            estimate_cost(
                &prices,
                "https://api.example.com/v1",
                "no-such-model",
                &usage
            ),
            MicroUsd::ZERO
        );
    }

    #[test]
    fn a_local_endpoint_costs_nothing() {
        let prices = PriceTable::builtin();
        let usage = million_in();
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:8080/v1",
            "http://192.168.1.20:1234/v1",
            "http://[::1]:8000/v1",
            "http://host.docker.internal:11434/v1",
        ] {
            assert_eq!(
                estimate_cost(&prices, url, "gpt-5", &usage),
                MicroUsd::ZERO,
                "{url}"
            );
        }
    }

    #[test]
    fn error_chains_name_every_cause() {
        let inner =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let outer = std::io::Error::other(Wrapper(inner));
        assert_eq!(error_chain(&outer), "wrapped: connection refused");
    }

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
