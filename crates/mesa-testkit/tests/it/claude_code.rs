//! The real Claude Code CLI against the fake server.
//!
//! Runs when `claude` is found (`MESA_CLAUDE_BIN`, else `PATH`); fails when it is missing and
//! the `CI` environment variable is set, so CI never skips it silently. Install it with
//! `npm install --prefix /tmp/claude @anthropic-ai/claude-code` and set
//! `MESA_CLAUDE_BIN=/tmp/claude/node_modules/.bin/claude`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesa_testkit::{FakeModelServer, Fault, Matcher, ToolCall, Turn, Usage};
use serde_json::{Value, json};

use crate::support::agent_cli;

fn claude_binary() -> Option<PathBuf> {
    agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
}

/// What one `claude --print` run printed.
struct ClaudeRun {
    exit_code: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

impl ClaudeRun {
    fn result(&self) -> &Value {
        self.events
            .iter()
            .rev()
            .find(|e| e["type"] == "result")
            .unwrap_or_else(|| panic!("no result event; stderr: {}", self.stderr))
    }
}

/// Runs `claude` in `workdir` with a fresh `HOME` against `server`, only the environment it needs.
async fn run_claude(
    binary: &Path,
    server: &FakeModelServer,
    workdir: &Path,
    prompt: &str,
    model: &str,
    extra_env: &[(&str, &str)],
) -> ClaudeRun {
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "--print",
            "-p",
            prompt,
            "--output-format",
            "stream-json",
            "--verbose",
            "--max-turns",
            "3",
            "--model",
            model,
            "--dangerously-skip-permissions",
        ])
        .current_dir(workdir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("IS_SANDBOX", "1")
        .envs(server.claude_code_env())
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("claude finished within 120 s")
        .expect("claude started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    ClaudeRun {
        exit_code: output.status.code(),
        events,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn claude_code_runs_a_bash_tool_call_and_reports_the_scripted_usage() {
    let Some(binary) = claude_binary() else {
        return;
    };
    let server = FakeModelServer::start([
        Turn::tool_call(
            "Bash",
            json!({"command": "echo hello > file.txt && echo written",
                   "description": "Write file.txt"}),
        )
        .with_usage(Usage::new(1000, 50)),
        Turn::text("I wrote file.txt.")
            .with_usage(Usage::new(2000, 30).with_cache(500, 1000))
            .when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let run = run_claude(
        &binary,
        &server,
        workdir.path(),
        "Write hello to file.txt",
        "claude-sonnet-4-5",
        &[],
    )
    .await;

    let result = run.result();
    assert_eq!(run.exit_code, Some(0), "stderr: {}\n{result:#}", run.stderr);
    assert_eq!(result["is_error"], false, "{result:#}");
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["result"], "I wrote file.txt.");
    assert_eq!(result["num_turns"], 2);
    assert_eq!(
        std::fs::read_to_string(workdir.path().join("file.txt")).unwrap(),
        "hello\n"
    );

    // The `usage` totals are the sum of what the fake reported, both turns.
    let usage = &result["usage"];
    assert_eq!(usage["input_tokens"], 3000, "{result:#}");
    assert_eq!(usage["output_tokens"], 80, "{result:#}");
    assert_eq!(usage["cache_creation_input_tokens"], 500, "{result:#}");
    assert_eq!(usage["cache_read_input_tokens"], 1000, "{result:#}");
    // Claude Code prices the reported usage itself, from the model name (Sonnet 4.5: $3 / MTok
    // input, $15 output, $3.75 cache write, $0.30 cache read): 0.00375 + 0.008625.
    let cost = result["total_cost_usd"].as_f64().unwrap();
    assert!((cost - 0.012_375).abs() < 1e-9, "total_cost_usd {cost}");
    let model_usage = &result["modelUsage"]["claude-sonnet-4-5"];
    assert_eq!(model_usage["inputTokens"], 3000, "{result:#}");
    assert_eq!(model_usage["outputTokens"], 80);
    assert!((model_usage["costUSD"].as_f64().unwrap() - cost).abs() < 1e-9);

    // What Claude Code sent: streaming messages requests with the prompt, the Bash tool and then
    // the tool's output.
    let requests = server.model_requests();
    assert_eq!(requests.len(), 2, "{:#?}", server.requests());
    for request in &requests {
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.query.as_deref(), Some("beta=true"));
        assert!(request.is_stream());
        assert_eq!(request.model(), Some("claude-sonnet-4-5"));
        assert_eq!(request.header("x-api-key"), Some("test"));
    }
    assert!(
        requests[0]
            .user_texts()
            .iter()
            .any(|t| t.contains("Write hello to file.txt"))
    );
    assert!(requests[0].tool_names().iter().any(|t| t == "Bash"));
    assert!(!requests[0].system_prompt().is_empty());
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1, "{results:#?}");
    assert_eq!(results[0].content.trim(), "written");
    assert!(!results[0].is_error);
    assert!(server.unexpected().is_empty(), "{:#?}", server.unexpected());
    assert_eq!(server.remaining_turns(), 0);

    // The stream-json events the runner parses (SPEC §7.4).
    assert_eq!(run.events[0]["type"], "system");
    assert_eq!(run.events[0]["subtype"], "init");
    assert!(run.events.iter().any(|e| e["type"] == "user"));
}

#[tokio::test]
async fn claude_code_reports_a_rate_limit_as_an_error_result() {
    let Some(binary) = claude_binary() else {
        return;
    };
    let server = FakeModelServer::start([Turn::fault(Fault::rate_limited(Duration::from_secs(1)))])
        .await
        .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let run = run_claude(
        &binary,
        &server,
        workdir.path(),
        "hi",
        "claude-sonnet-4-5",
        &[],
    )
    .await;
    let result = run.result();
    assert_eq!(run.exit_code, Some(1), "{result:#}");
    assert_eq!(result["is_error"], true, "{result:#}");
    assert_eq!(result["api_error_status"], 429, "{result:#}");
    // Provider errors still say "success": `is_error` is the failure flag (SPEC §7.4).
    assert_eq!(result["subtype"], "success", "{result:#}");
    let text = result["result"].as_str().unwrap();
    assert!(
        text.contains("429") && text.contains("mesa-testkit scripted rate_limit_error"),
        "{text}"
    );
    assert_eq!(result["total_cost_usd"], 0.0);
    // With CLAUDE_CODE_MAX_RETRIES=0 the 429 is not retried: `HEAD /` and one messages call.
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("HEAD", "/")
    );
    assert_eq!(server.model_requests().len(), 1);
}

#[tokio::test]
async fn claude_code_answers_a_scripted_tool_call_id_and_prices_haiku() {
    let Some(binary) = claude_binary() else {
        return;
    };
    let server = FakeModelServer::start([
        Turn::text("Checking.").with_tool_call(
            ToolCall::new("Bash", json!({"command": "printf 'marker-%s' 42"}))
                .with_id("toolu_scripted"),
        ),
        Turn::text("Done."),
    ])
    .await
    .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let run = run_claude(
        &binary,
        &server,
        workdir.path(),
        "print",
        "claude-haiku-4-5",
        &[],
    )
    .await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result:#}");
    assert_eq!(result["result"], "Done.");
    // Haiku 4.5 at $1 / MTok input and $5 output: 2 x (100 in + 20 out) = $0.0004.
    let cost = result["total_cost_usd"].as_f64().unwrap();
    assert!((cost - 0.0004).abs() < 1e-9, "total_cost_usd {cost}");
    let requests = server.model_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].tool_results()[0].call_id, "toolu_scripted");
    assert_eq!(requests[1].tool_results()[0].content, "marker-42");
}

#[tokio::test]
async fn claude_code_retries_an_overloaded_error_when_allowed() {
    let Some(binary) = claude_binary() else {
        return;
    };
    let server = FakeModelServer::start([
        Turn::fault(Fault::overloaded().with_retry_after(Duration::from_secs(1))),
        Turn::text("Back."),
    ])
    .await
    .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let run = run_claude(
        &binary,
        &server,
        workdir.path(),
        "hi",
        "claude-sonnet-4-5",
        &[("CLAUDE_CODE_MAX_RETRIES", "1")],
    )
    .await;
    let result = run.result();
    assert_eq!(result["is_error"], false, "{result:#}");
    assert_eq!(result["result"], "Back.");
    let requests = server.model_requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    // Claude Code retries in its own loop, not the SDK's: the retry still says retry count 0.
    assert_eq!(requests[1].header("x-stainless-retry-count"), Some("0"));
    // The retry honoured `retry-after: 1`.
    assert!(started.elapsed() >= Duration::from_secs(1));
    // The `system` event `api_retry` reports the retry (SPEC §7.4).
    assert!(
        run.events
            .iter()
            .any(|e| e["type"] == "system" && e["subtype"] == "api_retry"),
        "{:#?}",
        run.events
    );
}
