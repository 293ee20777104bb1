//! The real Codex CLI against the fake server (Responses API).
//!
//! Runs when `codex` is found (`MESA_CODEX_BIN`, else `PATH`); fails when it is missing and the
//! `CI` environment variable is set. Install it with `npm install --prefix /tmp/codex
//! @openai/codex` and set `MESA_CODEX_BIN=/tmp/codex/node_modules/.bin/codex`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesa_testkit::{FakeModelServer, Fault, Matcher, Turn, Usage};
use serde_json::{Value, json};

use crate::support::agent_cli;

fn codex_binary() -> Option<PathBuf> {
    agent_cli("MESA_CODEX_BIN", "codex", "@openai/codex")
}

/// What one `codex exec --json` run printed.
struct CodexRun {
    exit_code: Option<i32>,
    events: Vec<Value>,
    stderr: String,
}

/// Runs `codex exec` in `workdir` with a fresh `HOME` and `CODEX_HOME` whose `config.toml` points
/// at `server`, and only the environment it needs.
async fn run_codex(
    binary: &Path,
    server: &FakeModelServer,
    workdir: &Path,
    prompt: &str,
) -> CodexRun {
    let home = tempfile::tempdir().unwrap();
    let codex_home = home.path().join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        server.codex_config_toml("gpt-5-codex"),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(binary);
    command
        .args([
            "exec",
            "--json",
            "--sandbox",
            "workspace-write",
            "--skip-git-repo-check",
            prompt,
        ])
        .current_dir(workdir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("CODEX_HOME", &codex_home)
        .env("MESA_FAKE_MODEL_KEY", "test")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("codex finished within 120 s")
        .expect("codex started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    CodexRun {
        exit_code: output.status.code(),
        events,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn codex_runs_an_exec_command_call_and_reports_the_scripted_usage() {
    let Some(binary) = codex_binary() else {
        return;
    };
    let server = FakeModelServer::start([
        Turn::tool_call(
            "exec_command",
            json!({"cmd": "echo hello > file.txt && echo written"}),
        )
        .with_usage(Usage::new(1000, 50)),
        Turn::text("I wrote file.txt.")
            .with_usage(Usage::new(2000, 30).with_cache(0, 500))
            .when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let run = run_codex(&binary, &server, workdir.path(), "Write hello to file.txt").await;
    assert_eq!(
        run.exit_code,
        Some(0),
        "stderr: {}\n{:#?}",
        run.stderr,
        run.events
    );
    assert_eq!(
        std::fs::read_to_string(workdir.path().join("file.txt")).unwrap(),
        "hello\n"
    );

    // `codex exec --json` events (SPEC §7.4): the command, the final message, and one
    // `turn.completed` whose usage sums the model calls. Its `input_tokens` include the cached
    // ones, as the Responses API counts them.
    let command = run
        .events
        .iter()
        .find(|e| e["type"] == "item.completed" && e["item"]["type"] == "command_execution")
        .unwrap_or_else(|| panic!("{:#?}", run.events));
    assert_eq!(command["item"]["exit_code"], 0);
    assert_eq!(command["item"]["aggregated_output"], "written\n");
    let message = run
        .events
        .iter()
        .find(|e| e["type"] == "item.completed" && e["item"]["type"] == "agent_message")
        .unwrap_or_else(|| panic!("{:#?}", run.events));
    assert_eq!(message["item"]["text"], "I wrote file.txt.");
    let turns: Vec<&Value> = run
        .events
        .iter()
        .filter(|e| e["type"] == "turn.completed")
        .collect();
    assert_eq!(turns.len(), 1, "{:#?}", run.events);
    assert_eq!(turns[0]["usage"]["input_tokens"], 3500);
    assert_eq!(turns[0]["usage"]["cached_input_tokens"], 500);
    assert_eq!(turns[0]["usage"]["output_tokens"], 80);

    // What Codex sent: two streaming Responses calls, no start-up probe, the tool's output back.
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert_eq!(request.path, "/v1/responses");
        assert!(request.is_stream());
        assert_eq!(request.model(), Some("gpt-5-codex"));
        assert_eq!(request.header("authorization"), Some("Bearer test"));
    }
    assert!(requests[0].tool_names().iter().any(|t| t == "exec_command"));
    assert!(
        requests[0]
            .user_texts()
            .iter()
            .any(|t| t.contains("Write hello to file.txt"))
    );
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1, "{results:#?}");
    assert!(
        results[0].content.ends_with("Output:\nwritten\n"),
        "{results:#?}"
    );
    assert!(server.unexpected().is_empty(), "{:#?}", server.unexpected());
}

#[tokio::test]
async fn codex_reports_an_insufficient_quota_error_as_a_failed_turn() {
    let Some(binary) = codex_binary() else {
        return;
    };
    let server = FakeModelServer::start([Turn::fault(
        Fault::status(429).with_kind("insufficient_quota"),
    )])
    .await
    .unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let run = run_codex(&binary, &server, workdir.path(), "hi").await;
    assert_eq!(run.exit_code, Some(1), "{:#?}", run.events);
    // With `request_max_retries = 0` one request, then an `error` event and `turn.failed`
    // carrying Codex's own wording for the quota error.
    assert_eq!(server.requests().len(), 1);
    let failed = run
        .events
        .iter()
        .find(|e| e["type"] == "turn.failed")
        .unwrap_or_else(|| panic!("{:#?}", run.events));
    assert_eq!(
        failed["error"]["message"],
        "Quota exceeded. Check your plan and billing details."
    );
    assert!(run.events.iter().any(|e| e["type"] == "error"));
    assert!(!run.events.iter().any(|e| e["type"] == "turn.completed"));
}
