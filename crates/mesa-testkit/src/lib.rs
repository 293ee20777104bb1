//! `mesa-testkit`: a **scripted fake model server** for testing agent runners with the real agent
//! CLIs (Claude Code, Codex, any OpenAI-compatible client), offline (SPEC §8).
//! AI models are never called: the test says what the "model" answers, turn by turn.
//!
//! This crate is test support. It is only ever a dev-dependency (`cargo xtask check-layers`
//! enforces that), depends on no Mesa crate, and is allowed axum because of that.
//!
//! # What it fakes
//!
//! A real HTTP/1.1 server on `127.0.0.1:<random port>` ([`FakeModelServer::start`]) serving:
//!
//! - the Anthropic Messages API, `POST /v1/messages` (Claude Code sends `?beta=true`), streaming
//!   (SSE `message_start`, `ping`, `content_block_start` / `content_block_delta` (`text_delta`,
//!   `input_json_delta`) / `content_block_stop` per text or `tool_use` block, `message_delta`
//!   with `stop_reason` and cumulative `usage`, `message_stop`) and non-streaming JSON;
//! - `POST /v1/messages/count_tokens` (an estimate, about four bytes a token);
//! - the OpenAI chat-completions API, `POST /v1/chat/completions`, streaming (`data:` chunks with
//!   `tool_calls` deltas, a usage chunk when `stream_options.include_usage` is set, `[DONE]`) and
//!   non-streaming;
//! - the OpenAI Responses API, `POST /v1/responses` (what Codex speaks), streaming
//!   (`response.created`, `response.in_progress`, `response.output_item.added`,
//!   `response.output_text.delta`, `response.function_call_arguments.delta`,
//!   `response.output_item.done`, `response.completed` with usage) and non-streaming;
//! - the start-up probes: `HEAD /` and `GET /` (200; Claude Code 2.1.x sends `HEAD /` first),
//!   `GET /v1/models` and `GET /v1/models/{id}` (Anthropic shape when the request has an
//!   `anthropic-version` header, OpenAI shape otherwise). Anything else is a 404 and recorded.
//!
//! # How to script it
//!
//! ```ignore
//! use mesa_testkit::{FakeModelServer, Turn, Usage, Fault, Matcher};
//! let server = FakeModelServer::start([
//!     Turn::tool_call("Bash", json!({"command": "echo hello > file.txt"}))
//!         .with_usage(Usage::new(1000, 50)),
//!     Turn::fault(Fault::rate_limited(Duration::from_secs(1))),
//!     Turn::text("Done.").when(Matcher::ends_with_tool_result()),
//! ]).await?;
//! // ... run the CLI against server.base_url() ...
//! let requests = server.model_requests();
//! assert_eq!(requests[1].tool_results()[0].content, "");
//! assert!(server.unexpected().is_empty());
//! ```
//!
//! Each request to a model endpoint (messages, chat completions, responses) consumes the next
//! [`Turn`], whatever API it speaks. A turn has text and/or tool calls (name + JSON input; ids are
//! generated unless given) and the [`Usage`] to report (default [`DEFAULT_USAGE`]), or instead a
//! [`Fault`]: an HTTP error (429 with `retry-after`, 529 overloaded, 500, any status) in the API's
//! error shape. A turn made with [`Turn::when`] is consumed only by a request its [`Matcher`]
//! accepts. A request that finds no turn (script exhausted, or the next turn's matcher refuses
//! it) is answered with a plain final text, [`FALLBACK_TEXT`], and recorded with
//! [`Outcome::Unexpected`]; tests should assert `server.unexpected().is_empty()`.
//!
//! Every request is recorded ([`FakeModelServer::requests`]) with its headers and JSON body;
//! [`RecordedRequest`] has helpers for the usual assertions: [`RecordedRequest::tool_results`],
//! [`RecordedRequest::user_texts`], [`RecordedRequest::system_prompt`],
//! [`RecordedRequest::tool_names`], [`RecordedRequest::body_contains`].
//!
//! # Pointing the CLIs at it
//!
//! Claude Code (2.1.x), see [`FakeModelServer::claude_code_env`]:
//! `ANTHROPIC_BASE_URL=<base_url()>`, `ANTHROPIC_API_KEY=<anything>`, a writable temporary
//! `HOME`, `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1
//! DISABLE_ERROR_REPORTING=1` (no side requests), `CLAUDE_CODE_MAX_RETRIES=0` (fault turns are
//! not retried for minutes), and `IS_SANDBOX=1` when running as root with
//! `--dangerously-skip-permissions`. Then
//! `claude --print -p <prompt> --output-format stream-json --verbose --max-turns N
//! --dangerously-skip-permissions`.
//!
//! Codex (0.169, Responses API only): a custom provider in `$CODEX_HOME/config.toml`, see
//! [`FakeModelServer::codex_config_toml`], the key in `MESA_FAKE_MODEL_KEY`, a temporary `HOME`
//! and `CODEX_HOME`; then `codex exec --json --sandbox workspace-write --skip-git-repo-check
//! <prompt>` with stdin from `/dev/null`.
//!
//! OpenAI-compatible clients: base URL [`FakeModelServer::openai_base_url`].
//!
//! `docs/testing-agents.md` records what was learned about the CLIs.

mod anthropic;
mod cli;
mod error;
mod openai;
mod record;
mod script;
mod server;

pub use cli::agent_cli;
pub use error::{Result, TestkitError};
pub use record::{Endpoint, Outcome, RecordedRequest, ToolResult};
pub use script::{DEFAULT_USAGE, FALLBACK_TEXT, Fault, Matcher, ToolCall, Turn, Usage};
pub use server::FakeModelServer;
