//! The whole loop end to end (issue 4): the board creates an issue through the API; the CEO's
//! run creates two sub-issues through the API with `$MESA_API_KEY`; a worker run checks one out,
//! writes and commits a file in its own worktree on `mesa/<key>`, posts evidence and submits; the
//! reviewer's run approves; the issue is `done`. Once with the `command` runner (shell scripts),
//! once with the real Claude Code CLI and once with `openai_compat`, both against the scripted
//! fake model server.

use std::path::Path;
use std::time::Duration;

use mesa_core::domain::entity::{AgentConfig, Run};
use mesa_core::domain::{Actor, IssueKey, Name, RunStatus, RunnerKind, WorkingDir};
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{CoreConfig, EngineConfig, Mesa, RunningScheduler};
use serde_json::{Value, json};

/// A served Mesa with its scheduler, on a project that is a git repository.
pub(crate) struct Flow {
    pub(crate) mesa: Mesa,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) url: String,
    pub(crate) board_token: String,
    scheduler: Option<RunningScheduler>,
    server: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests set up a git repository with git"
)]
fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Board")
        .env("GIT_AUTHOR_EMAIL", "board@mesa.local")
        .env("GIT_COMMITTER_NAME", "Board")
        .env("GIT_COMMITTER_EMAIL", "board@mesa.local")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Flow {
    /// Starts Mesa on a fresh project; `path_extra` is put first on the runners' PATH.
    pub(crate) async fn start(path_extra: Option<&Path>) -> Flow {
        // One run at a time: the scripted model answers in order.
        Flow::start_with(path_extra, 1).await
    }

    /// [`Flow::start`] with up to `max_runs` runs at once.
    #[expect(
        clippy::disallowed_methods,
        reason = "the runners get the test's PATH, as the binary passes its own"
    )]
    pub(crate) async fn start_with(path_extra: Option<&Path>, max_runs: u32) -> Flow {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        git(&project, &["init", "-q", "-b", "main"]);
        std::fs::write(project.join("README.md"), "# Greeter\n").unwrap();
        git(&project, &["add", "."]);
        git(&project, &["commit", "-q", "-m", "initial"]);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();

        let config = CoreConfig::new(
            dir.path().join("data"),
            WorkingDir::parse(&project.to_string_lossy()).unwrap(),
        );
        let mesa = Mesa::builder()
            .sqlite(dir.path().join("mesa.db"))
            .config(config)
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty().await.unwrap();
        let board = Actor::board("test");
        let board_token = mesa
            .create_board_token(&board, Name::parse("flow").unwrap(), None)
            .await
            .unwrap()
            .raw;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = mesa_http::AppState::new(mesa.clone());
        let server = tokio::spawn(async move {
            mesa_http::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });

        let mut engine = EngineConfig::new(url.clone());
        engine.max_runs = max_runs;
        engine.tick = Duration::from_millis(200);
        let mut path = String::new();
        if let Some(extra) = path_extra {
            path.push_str(&extra.display().to_string());
            path.push(':');
        }
        path.push_str(&std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()));
        engine.server_env = vec![
            ("PATH".to_owned(), path),
            ("HOME".to_owned(), home.display().to_string()),
        ];
        let scheduler = mesa.start_scheduler(engine);
        Flow {
            mesa,
            dir,
            url,
            board_token,
            scheduler: Some(scheduler),
            server,
            stop: Some(stop),
        }
    }

    /// Waits until no run is queued or running.
    pub(crate) async fn wait_idle(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let busy = self
                .mesa
                .runs(
                    &RunFilter {
                        statuses: vec![RunStatus::Queued, RunStatus::Running],
                        ..RunFilter::default()
                    },
                    &PageRequest::new(Some(10), None),
                )
                .await
                .unwrap()
                .items;
            if busy.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "runs still busy after {within:?}: {busy:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Points `slug` at `runner` with `env` (git identity included) and `command`.
    pub(crate) async fn configure(
        &self,
        slug: &str,
        runner: RunnerKind,
        env: &[(String, String)],
        command: &[&str],
        base_url: Option<String>,
    ) {
        let board = Actor::board("test");
        let current = self.mesa.find_agent(slug).await.unwrap();
        let mut config = AgentConfig {
            runner,
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            base_url,
            heartbeat_enabled: false,
            timeout_sec: 180,
            max_turns: 6,
            ..current.config.clone()
        };
        config.env.extend(env.iter().cloned());
        for (k, v) in [
            ("GIT_AUTHOR_NAME", slug.to_owned()),
            ("GIT_AUTHOR_EMAIL", format!("{slug}@mesa.local")),
            ("GIT_COMMITTER_NAME", slug.to_owned()),
            ("GIT_COMMITTER_EMAIL", format!("{slug}@mesa.local")),
        ] {
            config.env.insert(k.to_owned(), v);
        }
        self.mesa
            .update_agent_config(&board, slug, config, None, "flow test")
            .await
            .unwrap();
    }

    /// A board API call; the status and the JSON body.
    pub(crate) async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.url, &self.board_token, method, path, body).await
    }

    /// Waits until `key` is `status` (or fails with the runs so far).
    pub(crate) async fn wait_status(&self, key: &str, status: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, issue) = self.api("GET", &format!("/issues/{key}"), None).await;
            if issue["issue"]["status"] == status {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let runs = self.all_runs().await;
                let summary: Vec<String> = runs
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {:?} {} {:?} log: {}",
                            r.mode,
                            r.issue_key,
                            r.status,
                            r.failure_reason,
                            r.stdout
                                .as_deref()
                                .unwrap_or("")
                                .chars()
                                .take(600)
                                .collect::<String>()
                        )
                    })
                    .collect();
                panic!(
                    "{key} is {} after {within:?}; runs:\n{}",
                    issue["issue"]["status"],
                    summary.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every run, newest first, with logs.
    pub(crate) async fn all_runs(&self) -> Vec<Run> {
        let page = self
            .mesa
            .runs(&RunFilter::default(), &PageRequest::new(Some(500), None))
            .await
            .unwrap()
            .items;
        let mut out = Vec::new();
        for r in page {
            out.push(self.mesa.run_log(&Actor::System, r.id).await.unwrap());
        }
        out
    }

    /// The finished runs of `slug` on `key`.
    pub(crate) async fn runs_of(&self, slug: &str, key: &str) -> Vec<Run> {
        let agent = self.mesa.find_agent(slug).await.unwrap();
        let key = IssueKey::parse(key).unwrap();
        self.all_runs()
            .await
            .into_iter()
            .filter(|r| r.agent_id == agent.id && r.issue_key.as_ref() == Some(&key))
            .collect()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.shutdown().await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}

/// An API call with `token`; the status and the JSON body.
pub(crate) async fn call(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(method, format!("{url}/api/v1{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// What every flow checks once the sub-issue is done.
pub(crate) async fn assert_the_story(flow: &Flow, sub: &str, key_file: &Path) {
    // The reviewer's run approved; let it (and anything it woke) finish.
    flow.wait_idle(Duration::from_secs(60)).await;
    // The worker's run committed greeting.txt on mesa/<key>, in its own worktree.
    let worker = flow.runs_of("founding-engineer", sub).await;
    let task = worker
        .iter()
        .find(|r| r.status == RunStatus::Succeeded)
        .unwrap_or_else(|| panic!("no successful worker run: {worker:#?}"));
    assert_eq!(task.branch.as_deref(), Some(format!("mesa/{sub}").as_str()));
    let diff = task.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("greeting.txt"),
        "the diff shows the file: {diff}"
    );
    assert!(diff.contains("Hello from Mesa"), "{diff}");
    assert!(
        task.worktree_path
            .as_deref()
            .is_some_and(|p| !Path::new(p).exists()),
        "the worktree is removed after the run"
    );
    // The reviewer approved in a review run of its own.
    let reviews = flow.runs_of("qa", sub).await;
    assert!(
        reviews
            .iter()
            .any(|r| r.status == RunStatus::Succeeded && r.mode.as_str() == "review"),
        "{reviews:#?}"
    );
    // Evidence was posted before the submit.
    let (_, comments) = flow
        .api("GET", &format!("/issues/{sub}/comments"), None)
        .await;
    assert!(
        comments["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "evidence"),
        "{comments}"
    );
    // The key the worker's run held stopped working when the run ended.
    let key = std::fs::read_to_string(key_file).unwrap();
    let (status, _) = call(&flow.url, key.trim(), "GET", "/inbox", None).await;
    assert_eq!(status, 401, "a finished run's key is refused");
}

/// The commands the CEO runs: two sub-issues of the issue its run is for.
pub(crate) const CEO_COMMANDS: &str = r#"auth="Authorization: Bearer $MESA_API_KEY"
curl -sf -X POST "$MESA_API_URL/api/v1/issues" -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"title\":\"Write the greeting file\",\"assignee_slug\":\"founding-engineer\",\"parent_key\":\"$MESA_ISSUE_KEY\"}"
curl -sf -X POST "$MESA_API_URL/api/v1/issues" -H "$auth" -H 'Content-Type: application/json' \
  -d "{\"title\":\"Design the greeting banner\",\"assignee_slug\":\"designer\",\"parent_key\":\"$MESA_ISSUE_KEY\"}""#;

/// Shell for the CEO's `command` runner: delegate once (a marker file keeps later runs idle).
pub(crate) fn ceo_script(marker: &Path) -> String {
    format!(
        "set -e\nif [ ! -f {m} ]; then\n{CEO_COMMANDS}\ntouch {m}\nfi",
        m = marker.display()
    )
}

/// Shell for the worker: check out, write and commit, evidence, submit; keeps its key in
/// `key_file` so the test can try it after the run.
pub(crate) fn worker_script(key_file: &Path) -> String {
    format!(
        r#"set -e
auth="Authorization: Bearer $MESA_API_KEY"
json='Content-Type: application/json'
echo "$MESA_API_KEY" > {key_file}
curl -sf -X POST "$MESA_API_URL/api/v1/issues/$MESA_ISSUE_KEY/checkout" -H "$auth" -H "$json" -d '{{}}'
echo "Hello from Mesa" > greeting.txt
git add greeting.txt
git commit -q -m "Add the greeting"
curl -sf -X POST "$MESA_API_URL/api/v1/issues/$MESA_ISSUE_KEY/comments" -H "$auth" -H "$json" \
  -d '{{"body":"greeting.txt committed: Hello from Mesa","kind":"evidence"}}'
curl -sf -X PATCH "$MESA_API_URL/api/v1/issues/$MESA_ISSUE_KEY" -H "$auth" -H "$json" \
  -d '{{"status":"in_review"}}'"#,
        key_file = key_file.display()
    )
}

/// Shell for the reviewer: approve.
pub(crate) const REVIEWER_SCRIPT: &str = r#"set -e
curl -sf -X POST "$MESA_API_URL/api/v1/issues/$MESA_ISSUE_KEY/review" \
  -H "Authorization: Bearer $MESA_API_KEY" -H 'Content-Type: application/json' \
  -d '{"decision":"approve","comment":"Looks right."}'"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_runner_ships_a_sub_issue_through_review() {
    let flow = Flow::start(None).await;
    let key_file = flow.dir.path().join("worker.key");
    let ceo = ceo_script(&flow.dir.path().join("ceo.done"));
    let worker = worker_script(&key_file);
    flow.configure("ceo", RunnerKind::Command, &[], &["sh", "-c", &ceo], None)
        .await;
    flow.configure(
        "founding-engineer",
        RunnerKind::Command,
        &[],
        &["sh", "-c", &worker],
        None,
    )
    .await;
    flow.configure(
        "qa",
        RunnerKind::Command,
        &[],
        &["sh", "-c", REVIEWER_SCRIPT],
        None,
    )
    .await;
    flow.configure("designer", RunnerKind::Noop, &[], &[], None)
        .await;
    let (_, parent) = flow
        .api(
            "POST",
            "/issues",
            Some(json!({"title": "Build the greeter"})),
        )
        .await;
    let parent = parent["key"].as_str().unwrap().to_owned();

    let sub = wait_for_child(&flow, &parent).await;
    flow.wait_status(&sub, "done", Duration::from_secs(60))
        .await;
    assert_the_story(&flow, &sub, &key_file).await;
    flow.stop().await;
}

/// The sub-issue assigned to the founding engineer, once the CEO made it.
pub(crate) async fn wait_for_child(flow: &Flow, parent: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, page) = flow
            .api("GET", &format!("/issues?parent={parent}"), None)
            .await;
        if let Some(child) = page["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| i["title"] == "Write the greeting file")
                .and_then(|i| i["key"].as_str())
        }) {
            return child.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CEO made no sub-issues; runs: {:#?}",
            flow.all_runs().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both runs of an agent in the model flows: a tool call, then a final text, each with this
/// usage.
const FIRST: mesa_testkit::Usage = mesa_testkit::Usage::new(1000, 50);
const SECOND: mesa_testkit::Usage = mesa_testkit::Usage::new(2000, 30);

/// A matcher for the first request of `slug`'s run about `text`.
fn first_request_of(slug: &'static str, text: &'static str) -> mesa_testkit::Matcher {
    mesa_testkit::Matcher::new(format!("{slug}'s run about {text:?}"), move |r| {
        r.body_contains(slug) && r.body_contains(text) && !r.ends_with_tool_result()
    })
}

/// The scripted model: CEO delegates, worker ships, reviewer approves; `tool` is the name of
/// the shell tool and `arg` its argument name.
fn script(tool: &str, arg: &str, worker_commands: &str) -> Vec<mesa_testkit::Turn> {
    use mesa_testkit::{Matcher, Turn};
    let shell = |commands: &str| Turn::tool_call(tool, json!({ arg: commands }));
    vec![
        shell(CEO_COMMANDS)
            .with_usage(FIRST)
            .when(first_request_of("ceo", "Build the greeter")),
        Turn::text("Delegated the work to two sub-issues.")
            .with_usage(SECOND)
            .when(Matcher::ends_with_tool_result()),
        shell(worker_commands)
            .with_usage(FIRST)
            .when(first_request_of(
                "founding-engineer",
                "Write the greeting file",
            )),
        Turn::text("Submitted for review with evidence.")
            .with_usage(SECOND)
            .when(Matcher::ends_with_tool_result()),
        shell(REVIEWER_SCRIPT)
            .with_usage(FIRST)
            .when(first_request_of("qa", "Write the greeting file")),
        Turn::text("Approved.")
            .with_usage(SECOND)
            .when(Matcher::ends_with_tool_result()),
    ]
}

/// Every run that talked to the model reports exactly the two turns' usage.
fn assert_usage(runs: &[Run], cost: mesa_core::domain::MicroUsd) {
    for run in runs.iter().filter(|r| r.status == RunStatus::Succeeded) {
        assert_eq!(run.usage.input_tokens, 3000, "{run:#?}");
        assert_eq!(run.usage.output_tokens, 80, "{run:#?}");
        assert_eq!(run.cost_usd, cost, "{run:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_ships_a_sub_issue_through_review_against_the_fake_model() {
    let Some(claude) =
        mesa_testkit::agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
    else {
        return;
    };
    let flow = Flow::start(claude.parent()).await;
    let key_file = flow.dir.path().join("worker.key");
    let worker = worker_script(&key_file);
    let server = mesa_testkit::FakeModelServer::start(script("Bash", "command", &worker))
        .await
        .unwrap();
    let mut env = server.claude_code_env();
    // Root in a container: Claude Code needs this to skip its permission prompts (SPEC §8).
    env.push(("IS_SANDBOX".to_owned(), "1".to_owned()));
    for slug in ["ceo", "founding-engineer", "qa"] {
        let board = Actor::board("test");
        let agent = flow.mesa.find_agent(slug).await.unwrap();
        let config = AgentConfig {
            model: "claude-sonnet-4-5".to_owned(),
            ..agent.config.clone()
        };
        flow.mesa
            .update_agent_config(&board, slug, config, None, "model")
            .await
            .unwrap();
        flow.configure(slug, RunnerKind::ClaudeCode, &env, &[], None)
            .await;
    }
    flow.configure("designer", RunnerKind::Noop, &[], &[], None)
        .await;
    // Run evaluation on: the worker's task run gets a trajectory signature from Claude Code's
    // real stream-json.
    flow.mesa
        .put_settings(
            &Actor::board("test"),
            &[("feature_run_evaluation".to_owned(), "true".to_owned())],
        )
        .await
        .unwrap();
    let (_, parent) = flow
        .api(
            "POST",
            "/issues",
            Some(json!({"title": "Build the greeter"})),
        )
        .await;
    let parent = parent["key"].as_str().unwrap().to_owned();

    let sub = wait_for_child(&flow, &parent).await;
    flow.wait_status(&sub, "done", Duration::from_secs(150))
        .await;
    assert_the_story(&flow, &sub, &key_file).await;
    let task = flow
        .runs_of("founding-engineer", &sub)
        .await
        .into_iter()
        .find(|r| r.mode.as_str() == "task" && r.status == RunStatus::Succeeded)
        .expect("the worker's task run");
    let (status, evaluation) = flow
        .api("GET", &format!("/runs/{}/evaluation", task.id), None)
        .await;
    assert_eq!(status, 200, "{evaluation}");
    assert_eq!(evaluation["signature"]["tool_calls"], 1, "{evaluation}");
    assert_eq!(
        evaluation["signature"]["tools"],
        json!(["Bash"]),
        "{evaluation}"
    );
    assert_eq!(evaluation["signature"]["tool_errors"], 0, "{evaluation}");
    // Sonnet 4.5 at $3 / $15 per MTok: 3000 in and 80 out is $0.0102, as Claude Code computed.
    let mut runs = flow.runs_of("ceo", &parent).await;
    runs.extend(flow.runs_of("founding-engineer", &sub).await);
    runs.extend(flow.runs_of("qa", &sub).await);
    assert_usage(&runs, mesa_core::domain::MicroUsd(10_200));
    assert_eq!(
        server.model_requests().len(),
        6,
        "{:#?}",
        server.unexpected()
    );
    flow.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compat_ships_a_sub_issue_through_review_against_the_fake_model() {
    let flow = Flow::start(None).await;
    let key_file = flow.dir.path().join("worker.key");
    let worker = worker_script(&key_file);
    let server = mesa_testkit::FakeModelServer::start(script("run_command", "command", &worker))
        .await
        .unwrap();
    let env = [("OPENAI_API_KEY".to_owned(), "test".to_owned())];
    for slug in ["ceo", "founding-engineer", "qa"] {
        let board = Actor::board("test");
        let agent = flow.mesa.find_agent(slug).await.unwrap();
        let config = AgentConfig {
            model: "llama3:8b".to_owned(),
            ..agent.config.clone()
        };
        flow.mesa
            .update_agent_config(&board, slug, config, None, "model")
            .await
            .unwrap();
        flow.configure(
            slug,
            RunnerKind::OpenaiCompat,
            &env,
            &[],
            Some(server.openai_base_url()),
        )
        .await;
    }
    flow.configure("designer", RunnerKind::Noop, &[], &[], None)
        .await;
    let (_, parent) = flow
        .api(
            "POST",
            "/issues",
            Some(json!({"title": "Build the greeter"})),
        )
        .await;
    let parent = parent["key"].as_str().unwrap().to_owned();

    let sub = wait_for_child(&flow, &parent).await;
    flow.wait_status(&sub, "done", Duration::from_secs(60))
        .await;
    assert_the_story(&flow, &sub, &key_file).await;
    // A local model: tokens counted, no cost.
    let mut runs = flow.runs_of("ceo", &parent).await;
    runs.extend(flow.runs_of("founding-engineer", &sub).await);
    runs.extend(flow.runs_of("qa", &sub).await);
    assert_usage(&runs, mesa_core::domain::MicroUsd::ZERO);
    flow.stop().await;
}
