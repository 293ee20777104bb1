//! The `openai_compat` runner against `mesa-testkit`'s scripted fake model server, with real
//! files, real `sh` commands and a tiny local HTTP server standing in for the Mesa API.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesa_domain::entity::{AgentConfig, TokenUsage};
use mesa_domain::{
    CostSource, MicroUsd, Name, RunId, RunMode, RunStatus, RunnerKind, Slug, Timestamp, WorkingDir,
};
use mesa_runner::openai_compat::{OpenAiCompatRunner, ToolLimits};
use mesa_runner::price::PriceTable;
use mesa_runner::{AgentRunner, Invocation, RunOutcome, RunnerError, RunnerEvent};
use mesa_testkit::{FakeModelServer, Fault, Matcher, ToolCall, Turn, Usage};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const RUN_KEY: &str = "mesa_run_key_0123456789abcdef";
const MODEL_KEY: &str = "local-model-key-42";

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn invocation(workdir: &Path, base_url: Option<String>) -> Invocation {
    let mut config = AgentConfig::new(
        Name::parse("Local Engineer").unwrap(),
        Slug::parse("engineer").unwrap(),
        RunnerKind::OpenaiCompat,
        WorkingDir::parse(workdir.to_str().unwrap()).unwrap(),
    );
    config.model = "qwen3:8b".to_owned();
    config.max_turns = 10;
    config.base_url = base_url;
    Invocation {
        run_id: RunId::parse("01937a4e-0000-7000-8000-000000000001").unwrap(),
        mode: RunMode::Task,
        issue_key: None,
        config,
        prompt: "Write notes/hello.txt, check it, and comment on ENG-1.".to_owned(),
        system_prompt: Some("You are a careful engineer.".to_owned()),
        workdir: workdir.to_path_buf(),
        scratch_dir: workdir.to_path_buf(),
        env: vec![
            ("PATH".to_owned(), PATH.to_owned()),
            ("MESA_API_KEY".to_owned(), RUN_KEY.to_owned()),
            ("OPENAI_API_KEY".to_owned(), MODEL_KEY.to_owned()),
        ],
        timeout: Duration::from_secs(60),
        secrets: vec![RUN_KEY.to_owned(), MODEL_KEY.to_owned()],
    }
}

fn runner() -> OpenAiCompatRunner {
    OpenAiCompatRunner::new(PriceTable::builtin())
}

/// Runs `inv` to its end and returns the outcome and every output line.
async fn run(
    runner: &OpenAiCompatRunner,
    inv: Invocation,
    cancel: CancellationToken,
) -> (Result<RunOutcome, RunnerError>, Vec<String>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let collector = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Some(event) = rx.recv().await {
            if let RunnerEvent::Output { line, .. } = event {
                lines.push(line);
            }
        }
        lines
    });
    let outcome = tokio::time::timeout(Duration::from_secs(60), runner.run(inv, tx, cancel))
        .await
        .expect("the run ends (failure guard)");
    (outcome, collector.await.unwrap())
}

/// One request the stand-in HTTP server received.
#[derive(Debug, Clone)]
struct Received {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 server answering every request with `status` and `body`, recording what it
/// received. Stands in for the Mesa API (and for broken model endpoints).
struct StandIn {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl StandIn {
    async fn start(status: &'static str, body: &'static str) -> StandIn {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let request = read_request(&mut socket).await;
                record.lock().unwrap().push(request);
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        StandIn { url, received }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Received {
    let mut data = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before sending headers");
        data.extend_from_slice(&chunk[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = data[header_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before sending the body");
        body.extend_from_slice(&chunk[..n]);
    }
    Received {
        request_line,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn now() -> Timestamp {
    Timestamp::from_offset_datetime(time::OffsetDateTime::now_utc())
}

#[tokio::test]
async fn a_scripted_run_writes_a_file_runs_a_command_calls_the_api_and_finishes() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let api = StandIn::start("201 Created", r#"{"id":"c1"}"#).await;
    let server = FakeModelServer::start([
        Turn::tool_call(
            "write_file",
            json!({"path": "notes/hello.txt", "content": "hello from the model\n"}),
        )
        .with_usage(Usage::new(1000, 50)),
        Turn::text("Checking the file.")
            .with_tool_call(
                ToolCall::new(
                    "run_command",
                    json!({"command": "cat notes/hello.txt; pwd"}),
                )
                .with_id("call_cat"),
            )
            .with_usage(Usage::new(300, 30).with_cache(0, 900))
            .when(Matcher::ends_with_tool_result()),
        Turn::tool_call(
            "mesa_api",
            json!({"method": "POST", "path": "/issues/ENG-1/comments",
                   "body": {"body": "hello.txt written"}}),
        )
        .with_usage(Usage::new(400, 40).with_cache(0, 1200))
        .when(Matcher::ends_with_tool_result()),
        Turn::text(format!("All done. Key was {RUN_KEY}."))
            .with_usage(Usage::new(500, 20))
            .when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let mut inv = invocation(dir.path(), Some(server.openai_base_url()));
    inv.env
        .push(("MESA_API_URL".to_owned(), format!("{}/api/v1", api.url)));

    let (outcome, lines) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    // The outcome: success, the final text (scrubbed), the summed usage, a local model's cost.
    assert_eq!(
        outcome.status,
        RunStatus::Succeeded,
        "{outcome:?}\n{lines:#?}"
    );
    assert_eq!(outcome.failure_reason, None);
    let result = outcome.result_text.as_deref().unwrap();
    assert!(result.starts_with("All done. Key was "), "{result}");
    assert!(!result.contains(RUN_KEY), "{result}");
    assert_eq!(outcome.num_turns, Some(4));
    assert_eq!(
        outcome.usage,
        TokenUsage {
            input_tokens: 1000 + 300 + 400 + 500,
            output_tokens: 50 + 30 + 40 + 20,
            cache_read_tokens: 900 + 1200,
            cache_write_tokens: 0,
        }
    );
    assert_eq!(outcome.cost_usd, MicroUsd::ZERO);
    assert_eq!(outcome.cost_source, CostSource::Estimated);
    assert_eq!(outcome.quota, None);

    // The file is in the working directory.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes/hello.txt")).unwrap(),
        "hello from the model\n"
    );

    // The Mesa API stand-in got the call with the run key.
    let calls = api.received();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].request_line,
        "POST /api/v1/issues/ENG-1/comments HTTP/1.1"
    );
    assert_eq!(
        calls[0].header("authorization"),
        Some(format!("Bearer {RUN_KEY}").as_str())
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].body).unwrap(),
        json!({"body": "hello.txt written"})
    );

    // The model saw the prompt, the archetype, the tools and every tool result.
    let requests = server.model_requests();
    assert_eq!(requests.len(), 4);
    assert!(server.unexpected().is_empty(), "{:#?}", server.unexpected());
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {MODEL_KEY}").as_str())
    );
    assert_eq!(requests[0].model(), Some("qwen3:8b"));
    assert_eq!(requests[0].system_prompt(), "You are a careful engineer.");
    assert_eq!(
        requests[0].user_texts(),
        ["Write notes/hello.txt, check it, and comment on ENG-1."]
    );
    assert_eq!(
        requests[0].tool_names(),
        [
            "read_file",
            "write_file",
            "list_dir",
            "run_command",
            "mesa_api"
        ]
    );
    let results = requests[3].tool_results();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].content, "wrote 21 bytes to notes/hello.txt");
    assert_eq!(results[1].call_id, "call_cat");
    let workdir = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(
        results[1].content,
        format!(
            "exit code: 0\nhello from the model\n{}\n",
            workdir.display()
        )
    );
    assert_eq!(results[2].content, "HTTP 201 Created\n{\"id\":\"c1\"}");
    // The assistant turns are replayed with their tool calls.
    assert!(requests[2].body_contains("Checking the file."));

    // The run's output tells the story, without secrets.
    let expected = [
        "tool call write_file: {\"content\":\"hello from the model\\n\",\"path\":\"notes/hello.txt\"}",
        "tool result write_file: wrote 21 bytes to notes/hello.txt",
        "assistant: Checking the file.",
        "tool call run_command: {\"command\":\"cat notes/hello.txt; pwd\"}",
        "tool call mesa_api: {\"body\":{\"body\":\"hello.txt written\"},\"method\":\"POST\",\"path\":\"/issues/ENG-1/comments\"}",
        "tool result mesa_api: HTTP 201 Created ⏎ {\"id\":\"c1\"}",
    ];
    for line in expected {
        assert!(
            lines.iter().any(|l| l == line),
            "missing {line:?} in {lines:#?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("tool result run_command: exit code: 0 ⏎ hello from the model")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains(RUN_KEY)), "{lines:#?}");
}

#[tokio::test]
async fn the_turn_limit_fails_the_run_with_error_max_turns() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = FakeModelServer::start([
        Turn::tool_call("run_command", json!({"command": "touch first"})),
        Turn::tool_call("run_command", json!({"command": "touch second"}))
            .when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let mut inv = invocation(dir.path(), Some(server.openai_base_url()));
    inv.config.max_turns = 2;

    let (outcome, lines) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.failure_reason.as_deref(), Some("error_max_turns"));
    assert_eq!(outcome.num_turns, Some(2));
    assert_eq!(outcome.usage.input_tokens, 200);
    assert_eq!(outcome.usage.output_tokens, 40);
    assert_eq!(server.model_requests().len(), 2);
    assert!(server.unexpected().is_empty());
    // The first call ran; the calls of the last allowed turn did not.
    assert!(dir.path().join("first").exists());
    assert!(!dir.path().join("second").exists());
    assert!(
        lines.contains(&"stopped: the turn limit (2) was reached".to_owned()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_a_quota_hit_with_its_reset_time() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server =
        FakeModelServer::start([Turn::fault(Fault::rate_limited(Duration::from_secs(120)))])
            .await
            .unwrap();
    let inv = invocation(dir.path(), Some(server.openai_base_url()));

    let before = now();
    let (outcome, lines) = run(&runner(), inv, CancellationToken::new()).await;
    let after = now();
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.failure_reason.as_deref(), Some("quota"));
    let retry_at = outcome.quota.unwrap().retry_at.unwrap();
    // Whole seconds: the reset is 120 s after the answer, give or take the clock's millis.
    assert!(
        retry_at.as_millis() >= before.as_millis() + 119_000,
        "{retry_at:?}"
    );
    assert!(
        retry_at.as_millis() <= after.as_millis() + 120_000,
        "{retry_at:?}"
    );
    assert_eq!(outcome.num_turns, Some(0));
    assert!(outcome.usage.is_zero());
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stopped: quota or rate limit: ") && l.contains("429")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn overloaded_is_a_quota_hit_and_a_server_error_names_its_status() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = FakeModelServer::start([
        Turn::fault(Fault::overloaded()),
        Turn::fault(Fault::status(503).with_message("Model is overloaded, try later")),
        Turn::fault(Fault::server_error().with_message("llama exploded")),
        Turn::fault(Fault::status(404).with_message("model 'qwen3:8b' not found")),
    ])
    .await
    .unwrap();

    let mut reasons = Vec::new();
    for _ in 0..4 {
        let inv = invocation(dir.path(), Some(server.openai_base_url()));
        let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
        let outcome = outcome.unwrap();
        assert_eq!(outcome.status, RunStatus::Failed);
        reasons.push((outcome.failure_reason.unwrap(), outcome.quota));
    }
    assert_eq!(
        reasons[0],
        (
            "quota".to_owned(),
            Some(mesa_runner::QuotaHit { retry_at: None })
        )
    );
    assert_eq!(
        reasons[1],
        (
            "quota".to_owned(),
            Some(mesa_runner::QuotaHit { retry_at: None })
        )
    );
    assert_eq!(
        reasons[2],
        (
            "the model endpoint answered HTTP 500 Internal Server Error: llama exploded".to_owned(),
            None
        )
    );
    assert_eq!(
        reasons[3],
        (
            "the model endpoint answered HTTP 404 Not Found: model 'qwen3:8b' not found".to_owned(),
            None
        )
    );
}

#[tokio::test]
async fn paths_outside_the_working_directory_are_refused_to_the_model() {
    install_crypto();
    let outer = tempfile::tempdir().unwrap();
    let workdir = outer.path().join("work");
    std::fs::create_dir(&workdir).unwrap();
    std::fs::write(outer.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outer.path(), workdir.join("up")).unwrap();
    let server = FakeModelServer::start([
        Turn::tool_call(
            "write_file",
            json!({"path": "../escape.txt", "content": "x"}),
        ),
        Turn::tool_call("read_file", json!({"path": "/etc/hostname"}))
            .when(Matcher::ends_with_tool_result()),
        Turn::tool_call("read_file", json!({"path": "up/secret.txt"}))
            .when(Matcher::ends_with_tool_result()),
        Turn::tool_call("list_dir", json!({"path": "up"})).when(Matcher::ends_with_tool_result()),
        Turn::tool_call("read_file", json!({"path": 7})).when(Matcher::ends_with_tool_result()),
        Turn::text("I stayed inside.").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let inv = invocation(&workdir, Some(server.openai_base_url()));

    let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.result_text.as_deref(), Some("I stayed inside."));
    assert!(!outer.path().join("escape.txt").exists());
    let results: Vec<String> = server.model_requests()[5]
        .tool_results()
        .into_iter()
        .map(|r| r.content)
        .collect();
    assert_eq!(
        results,
        [
            "error: ../escape.txt: the path leads outside the working directory",
            "error: /etc/hostname: absolute paths are not allowed; use a path relative to the \
             working directory",
            "error: up/secret.txt: the path leads outside the working directory",
            "error: up: the path leads outside the working directory",
            "error: argument \"path\" must be a string",
        ]
    );
}

/// Whether the process is gone (or a zombie waiting for its reaper).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..400 {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never appeared", path.display());
}

async fn assert_dies(pid: i32) {
    for _ in 0..400 {
        if is_dead(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process {pid} survived the run");
}

/// A script whose one command starts a grandchild, records its pid, and waits for ever.
async fn hanging_command_server() -> FakeModelServer {
    FakeModelServer::start([Turn::tool_call(
        "run_command",
        json!({"command": "sleep 300 & echo $! > grandchild.pid; wait"}),
    )])
    .await
    .unwrap()
}

#[tokio::test]
async fn the_run_timeout_stops_a_command_and_kills_its_group() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = hanging_command_server().await;
    let mut inv = invocation(dir.path(), Some(server.openai_base_url()));
    inv.timeout = Duration::from_secs(2);
    let pid_file = dir.path().join("grandchild.pid");

    let (outcome, lines) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::TimedOut);
    assert_eq!(
        outcome.failure_reason.as_deref(),
        Some("timed out after 2s")
    );
    assert_eq!(outcome.num_turns, Some(1));
    assert_eq!(outcome.usage.input_tokens, 100);
    assert!(lines.contains(&"stopped: the run's time limit passed".to_owned()));
    let pid: i32 = wait_for_file(&pid_file).await.trim().parse().unwrap();
    assert_dies(pid).await;
}

#[tokio::test]
async fn cancelling_stops_a_command_and_kills_its_group() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = hanging_command_server().await;
    let inv = invocation(dir.path(), Some(server.openai_base_url()));
    let pid_file = dir.path().join("grandchild.pid");
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let watched = pid_file.clone();
    tokio::spawn(async move {
        wait_for_file(&watched).await;
        trigger.cancel();
    });

    let (outcome, _) = run(&runner(), inv, cancel).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(outcome.num_turns, Some(1));
    let pid: i32 = wait_for_file(&pid_file).await.trim().parse().unwrap();
    assert_dies(pid).await;
}

#[tokio::test]
async fn a_command_past_its_own_limit_is_reported_to_the_model() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = FakeModelServer::start([
        Turn::tool_call("run_command", json!({"command": "echo start; sleep 300"})),
        Turn::text("It hung.").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let inv = invocation(dir.path(), Some(server.openai_base_url()));
    let runner = runner().with_limits(ToolLimits {
        command_timeout: Duration::from_secs(1),
        ..ToolLimits::default()
    });

    let (outcome, _) = run(&runner, inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Succeeded);
    let result = &server.model_requests()[1].tool_results()[0].content;
    assert_eq!(
        result,
        "timed out after 1s; the command's process group was killed\nstart\n"
    );
}

/// A model endpoint that accepts connections and never answers.
async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn the_run_timeout_applies_while_waiting_for_the_model() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = silent_endpoint().await;
    let mut inv = invocation(dir.path(), Some(url));
    inv.timeout = Duration::from_millis(500);

    let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::TimedOut);
    assert_eq!(outcome.num_turns, Some(0));
}

#[tokio::test]
async fn cancelling_applies_while_waiting_for_the_model() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = silent_endpoint().await;
    let inv = invocation(dir.path(), Some(url));
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });

    let (outcome, _) = run(&runner(), inv, cancel).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert_eq!(outcome.failure_reason.as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn a_refused_connection_fails_with_a_clear_reason() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let inv = invocation(dir.path(), Some(url.clone()));

    let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();

    assert_eq!(outcome.status, RunStatus::Failed);
    let reason = outcome.failure_reason.unwrap();
    assert!(
        reason.starts_with(&format!(
            "cannot reach the model endpoint {url}/chat/completions: "
        )),
        "{reason}"
    );
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
}

#[tokio::test]
async fn a_malformed_reply_fails_the_run() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    for (body, expected) in [
        (
            "this is not json",
            "malformed reply from the model endpoint: the body is not JSON",
        ),
        (
            r#"{"choices": []}"#,
            "malformed reply from the model endpoint: the reply has no choices[0].message",
        ),
        (
            r#"{"choices": [{"message": {"tool_calls": [{"id": "x", "function": {}}]}}]}"#,
            "malformed reply from the model endpoint: tool call 0 has no function name",
        ),
    ] {
        let server = StandIn::start("200 OK", body).await;
        let inv = invocation(dir.path(), Some(format!("{}/v1", server.url)));
        let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
        let outcome = outcome.unwrap();
        assert_eq!(outcome.status, RunStatus::Failed);
        let reason = outcome.failure_reason.unwrap();
        assert!(reason.starts_with(expected), "{reason}");
        assert_eq!(
            server.received()[0].request_line,
            "POST /v1/chat/completions HTTP/1.1"
        );
    }
}

#[tokio::test]
async fn a_missing_base_url_is_a_configuration_error() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let inv = invocation(dir.path(), None);
    let (outcome, lines) = run(&runner(), inv, CancellationToken::new()).await;
    let err = outcome.unwrap_err();
    assert!(matches!(err, RunnerError::Config(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid runner configuration: the openai_compat runner needs a base_url"
    );
    assert!(lines.is_empty());
}

#[tokio::test]
async fn disallowed_tools_are_not_offered_and_mesa_api_needs_a_url() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = FakeModelServer::start([
        Turn::tool_call("run_command", json!({"command": "echo hi"})),
        Turn::text("ok").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let mut inv = invocation(dir.path(), Some(server.openai_base_url()));
    inv.config.disallowed_tools = vec!["run_command".to_owned()];
    inv.system_prompt = None;

    let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
    assert_eq!(outcome.unwrap().status, RunStatus::Succeeded);

    let requests = server.model_requests();
    assert_eq!(
        requests[0].tool_names(),
        ["read_file", "write_file", "list_dir"]
    );
    assert_eq!(requests[0].system_prompt(), "");
    assert_eq!(
        requests[1].tool_results()[0].content,
        "error: there is no tool named \"run_command\"; the tools are: read_file, write_file, \
         list_dir"
    );
}

#[tokio::test]
async fn a_model_served_from_loopback_costs_nothing_even_when_priced() {
    install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let server = FakeModelServer::start([Turn::text("hi").with_usage(Usage::new(1_000_000, 0))])
        .await
        .unwrap();
    let mut inv = invocation(dir.path(), Some(server.openai_base_url()));
    inv.config.model = "gpt-5".to_owned();
    let (outcome, _) = run(&runner(), inv, CancellationToken::new()).await;
    let outcome = outcome.unwrap();
    assert_eq!(outcome.usage.input_tokens, 1_000_000);
    assert_eq!(outcome.cost_usd, MicroUsd::ZERO);
    assert_eq!(outcome.cost_source, CostSource::Estimated);
}
