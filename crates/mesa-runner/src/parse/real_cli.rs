//! The command lines of [`crate::argv`] and the parsers of this module against the real Claude
//! Code and Codex CLIs, talking to `mesa-testkit`'s scripted fake model server (SPEC §8).
//!
//! Each test runs when its CLI is found (`MESA_CLAUDE_BIN` / `MESA_CODEX_BIN`, else `PATH`),
//! prints a notice and passes when it is missing outside CI, and fails when it is missing in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesa_domain::entity::{AgentConfig, TokenUsage};
use mesa_domain::{CostSource, MicroUsd, Name, RunId, RunMode, RunStatus, RunnerKind, Slug};
use mesa_domain::{Timestamp, WorkingDir};
use mesa_testkit::{FakeModelServer, Fault, Matcher, Turn, Usage};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::price::PriceTable;
use crate::{Invocation, ProcessExit, RunOutcome, Stream, argv, outcome};

const RUN_KEY: &str = "mesa_run_real_cli_test_key_0001";

/// A prompt far over the kernel's 128 KiB limit for one argument: it must travel on stdin.
fn long_prompt(task: &str) -> String {
    let mut prompt = format!("{task}\n\nBackground notes follow.\n");
    let mut i = 0;
    while prompt.len() < 160 * 1024 {
        prompt.push_str(&format!("note {i}: nothing to do here.\n"));
        i += 1;
    }
    prompt.push_str(&format!("\nReminder: {task}\n"));
    prompt
}

fn invocation(kind: RunnerKind, model: &str, workdir: &Path, scratch: &Path) -> Invocation {
    let mut config = AgentConfig::new(
        Name::parse("Backend Bea").expect("name"),
        Slug::parse("backend").expect("slug"),
        kind,
        WorkingDir::parse(&workdir.display().to_string()).expect("dir"),
    );
    config.model = model.to_owned();
    config.max_turns = 3;
    Invocation {
        run_id: RunId::parse("01937a4e-8c2b-7d3e-9f10-4a5b6c7d8e9f").expect("id"),
        mode: RunMode::Task,
        issue_key: None,
        config,
        prompt: String::new(),
        system_prompt: None,
        workdir: workdir.to_path_buf(),
        scratch_dir: scratch.to_path_buf(),
        env: vec![("MESA_API_KEY".to_owned(), RUN_KEY.to_owned())],
        timeout: Duration::from_secs(120),
        secrets: vec![RUN_KEY.to_owned()],
    }
}

/// Builds the command line of `inv`, runs it with `binary` as the program and exactly `inv.env`,
/// feeds its output line by line to the runner's parser and decides the outcome.
#[expect(
    clippy::disallowed_methods,
    reason = "the test drives a real CLI process"
)]
async fn run(binary: &Path, inv: &Invocation) -> (RunOutcome, String) {
    let line = argv::build(inv).expect("a command line");
    assert!(!line.args.iter().any(|a| a.contains(RUN_KEY)));
    for (path, content) in &line.files {
        std::fs::write(path, content).expect("write a run file");
    }
    let mut child = tokio::process::Command::new(binary)
        .args(&line.args)
        .current_dir(&inv.workdir)
        .env_clear()
        .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(if line.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI starts");
    if let (Some(text), Some(mut stdin)) = (line.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            // The CLI may exit before reading it all; that shows in the assertions.
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the CLI finished within 120 s")
        .expect("the CLI ran");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let mut parser = crate::parse::parser_for(inv.config.runner);
    for l in stdout.lines() {
        parser.line(Stream::Stdout, l);
    }
    for l in stderr.lines() {
        parser.line(Stream::Stderr, l);
    }
    let exit = ProcessExit {
        exit_code: output.status.code(),
        last_stderr_line: stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_owned),
        ..ProcessExit::default()
    };
    let now = Timestamp::from_offset_datetime(time::OffsetDateTime::now_utc());
    let parsed = parser.finish(now);
    let decided = outcome::decide(&exit, parsed, &inv.config.model, &PriceTable::default());
    (decided, format!("stdout:\n{stdout}\nstderr:\n{stderr}"))
}

fn path_env() -> (String, String) {
    #[expect(clippy::disallowed_methods, reason = "the CLI needs the test's PATH")]
    let path = std::env::var("PATH").unwrap_or_default();
    ("PATH".to_owned(), path)
}

struct Dirs {
    _root: tempfile::TempDir,
    home: PathBuf,
    work: PathBuf,
    scratch: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().expect("tempdir");
    let make = |name: &str| {
        let p = root.path().join(name);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    };
    Dirs {
        home: make("home"),
        work: make("work"),
        scratch: make("scratch"),
        _root: root,
    }
}

fn claude_inv(server: &FakeModelServer, d: &Dirs, prompt: String) -> Invocation {
    let mut inv = invocation(
        RunnerKind::ClaudeCode,
        "claude-sonnet-4-5",
        &d.work,
        &d.scratch,
    );
    inv.prompt = prompt;
    inv.system_prompt = Some("ARCHETYPE-MARKER-7Q: you are a careful backend engineer.".into());
    inv.env.extend([
        path_env(),
        ("HOME".to_owned(), d.home.display().to_string()),
        ("IS_SANDBOX".to_owned(), "1".to_owned()),
    ]);
    inv.env.extend(server.claude_code_env());
    inv
}

#[tokio::test]
async fn claude_code_takes_a_long_prompt_on_stdin_and_reports_its_usage() {
    let Some(binary) =
        mesa_testkit::agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
    else {
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
    .expect("fake server");
    let d = dirs();
    let inv = claude_inv(
        &server,
        &d,
        long_prompt("Write hello to file.txt (PROMPT-MARKER-3Z)."),
    );
    let (outcome, output) = run(&binary, &inv).await;

    assert_eq!(
        outcome,
        RunOutcome {
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            failure_reason: None,
            usage: TokenUsage {
                input_tokens: 3000,
                output_tokens: 80,
                cache_read_tokens: 1000,
                cache_write_tokens: 500,
            },
            // Claude Code's own figure for Sonnet 4.5: $0.012375.
            cost_usd: MicroUsd(12_375),
            cost_source: CostSource::Parsed,
            num_turns: Some(2),
            quota: None,
            result_text: Some("I wrote file.txt.".to_owned()),
        },
        "{output}"
    );
    assert_eq!(
        std::fs::read_to_string(d.work.join("file.txt")).expect("file.txt"),
        "hello\n"
    );
    let requests = server.model_requests();
    let first = requests.first().expect("a model request");
    // The whole prompt arrived through stdin, and the archetype through the system prompt file.
    let user = first.user_texts().join("\n");
    assert!(user.contains("PROMPT-MARKER-3Z") && user.contains("Reminder: Write hello"));
    assert!(first.system_prompt().contains("ARCHETYPE-MARKER-7Q"));
    assert!(server.unexpected().is_empty(), "{:#?}", server.unexpected());
}

#[tokio::test]
async fn claude_code_rate_limit_is_a_quota_failure() {
    let Some(binary) =
        mesa_testkit::agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
    else {
        return;
    };
    let server = FakeModelServer::start([Turn::fault(Fault::rate_limited(Duration::from_secs(1)))])
        .await
        .expect("fake server");
    let d = dirs();
    let inv = claude_inv(&server, &d, "hi".to_owned());
    let (outcome, output) = run(&binary, &inv).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{output}");
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.failure_reason.as_deref(), Some("quota"), "{output}");
    assert!(outcome.quota.is_some());
    assert_eq!(
        (outcome.cost_usd, outcome.cost_source),
        (MicroUsd::ZERO, CostSource::Parsed)
    );
}

fn codex_inv(server: &FakeModelServer, d: &Dirs, prompt: String) -> Invocation {
    let codex_home = d.home.join(".codex");
    std::fs::create_dir_all(&codex_home).expect("mkdir");
    std::fs::write(
        codex_home.join("config.toml"),
        server.codex_config_toml("gpt-5-codex"),
    )
    .expect("config.toml");
    let mut inv = invocation(RunnerKind::Codex, "gpt-5-codex", &d.work, &d.scratch);
    inv.prompt = prompt;
    inv.system_prompt = Some("ARCHETYPE-MARKER-8R: you are a careful backend engineer.".into());
    inv.env.extend([
        path_env(),
        ("HOME".to_owned(), d.home.display().to_string()),
        ("CODEX_HOME".to_owned(), codex_home.display().to_string()),
        ("MESA_FAKE_MODEL_KEY".to_owned(), "test".to_owned()),
    ]);
    inv
}

#[tokio::test]
async fn codex_takes_a_long_prompt_on_stdin_and_gets_an_estimated_cost() {
    let Some(binary) = mesa_testkit::agent_cli("MESA_CODEX_BIN", "codex", "@openai/codex") else {
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
    .expect("fake server");
    let d = dirs();
    let inv = codex_inv(
        &server,
        &d,
        long_prompt("Write hello to file.txt (PROMPT-MARKER-4Y)."),
    );
    let (outcome, output) = run(&binary, &inv).await;
    assert_eq!(
        outcome,
        RunOutcome {
            status: RunStatus::Succeeded,
            exit_code: Some(0),
            failure_reason: None,
            usage: TokenUsage {
                input_tokens: 3000,
                output_tokens: 80,
                cache_read_tokens: 500,
                cache_write_tokens: 0,
            },
            // gpt-5 prices: 3000 x $1.25 + 80 x $10 + 500 x $0.125 per MTok = $0.0046125.
            cost_usd: MicroUsd(4_613),
            cost_source: CostSource::Estimated,
            num_turns: Some(1),
            quota: None,
            result_text: Some("I wrote file.txt.".to_owned()),
        },
        "{output}"
    );
    let requests = server.model_requests();
    let user = requests.first().expect("a request").user_texts().join("\n");
    assert!(
        user.contains("ARCHETYPE-MARKER-8R"),
        "the archetype leads the prompt"
    );
    assert!(user.contains("PROMPT-MARKER-4Y") && user.contains("Reminder: Write hello"));
}

#[tokio::test]
async fn codex_insufficient_quota_is_a_quota_failure() {
    let Some(binary) = mesa_testkit::agent_cli("MESA_CODEX_BIN", "codex", "@openai/codex") else {
        return;
    };
    let server = FakeModelServer::start([Turn::fault(
        Fault::status(429).with_kind("insufficient_quota"),
    )])
    .await
    .expect("fake server");
    let d = dirs();
    let inv = codex_inv(&server, &d, "hi".to_owned());
    let (outcome, output) = run(&binary, &inv).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{output}");
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.failure_reason.as_deref(), Some("quota"), "{output}");
    assert_eq!(outcome.quota.map(|q| q.retry_at), Some(None));
}
