//! The engine (SPEC §6, §7) stepped deterministically: real `command` runs (subprocesses),
//! budgets, deduplication, idle heartbeats, failures and the runaway guard, secret scrubbing.

use std::time::Duration;

use mesa_core::domain::entity::{Agent, AgentConfig, Run};
use mesa_core::domain::{Actor, IssueKey, IssueStatus, MicroUsd, RunStatus, RunnerKind};
use mesa_core::scheduler::Scheduler;
use mesa_core::store::{PageRequest, RunFilter};
use mesa_core::{BudgetLimits, Engine, EngineConfig, NewIssue};

use crate::support::TestMesa;

#[expect(
    clippy::disallowed_methods,
    reason = "the runners get the test's PATH, as the binary passes its own"
)]
pub(crate) fn engine_config() -> EngineConfig {
    let mut c = EngineConfig::new("http://127.0.0.1:9");
    c.max_runs = 16;
    c.server_env = vec![
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        (
            "HOME".to_owned(),
            std::env::temp_dir().display().to_string(),
        ),
        (
            "MESA_BOARD_TOKEN".to_owned(),
            "mesa_brd_not_for_runs_0123456789abcdef0123456789".to_owned(),
        ),
    ];
    c
}

/// Makes `slug` a `command` agent running `sh -c script`, with `max_concurrent_runs`.
pub(crate) async fn command_agent(
    t: &TestMesa,
    slug: &str,
    script: &str,
    max_concurrent: u32,
) -> Agent {
    let current = t.agent(slug).await;
    let config = AgentConfig {
        runner: RunnerKind::Command,
        command: vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()],
        max_concurrent_runs: max_concurrent,
        timeout_sec: 60,
        ..current.config.clone()
    };
    t.mesa
        .update_agent_config(&t.board, slug, config, None, "test runner")
        .await
        .unwrap()
}

async fn issue_for(t: &TestMesa, title: &str, assignee: &str) -> IssueKey {
    let mut new = NewIssue::titled(title).unwrap();
    new.assignee = Some(assignee.into());
    t.mesa.create_issue(&t.board, new).await.unwrap().issue.key
}

async fn runs(t: &TestMesa, filter: RunFilter) -> Vec<Run> {
    t.mesa
        .runs(&filter, &PageRequest::new(Some(500), None))
        .await
        .unwrap()
        .items
}

async fn runs_of(t: &TestMesa, key: &IssueKey) -> Vec<Run> {
    runs(
        t,
        RunFilter {
            issue: Some(key.clone()),
            ..RunFilter::default()
        },
    )
    .await
}

/// Steps until nothing more starts, waiting for every started run each time.
pub(crate) async fn drain(s: &mut Scheduler<Engine>) -> usize {
    let mut started = 0;
    loop {
        let report = s.step().await.unwrap();
        s.settle().await;
        if report.started.is_empty() {
            return started;
        }
        started += report.started.len();
    }
}

#[tokio::test]
async fn a_command_run_is_spawned_captured_costed_and_its_key_dies() {
    let t = TestMesa::new().await;
    let keep = tempfile::tempdir().unwrap();
    let key_file = keep.path().join("run.key");
    command_agent(
        &t,
        "founding-engineer",
        &format!(r#"echo "$MESA_API_KEY" > {key_file};
           echo "working on $MESA_ISSUE_KEY as $MESA_AGENT_SLUG";
           echo "key=$MESA_API_KEY token=sk-abcdefghijklmnopqrstuvwx gh=ghp_abcdefghijklmnopqrstuvwxyz0123456789 board=$MESA_BOARD_TOKEN";
           echo '{{"type":"mesa.usage","input_tokens":1200,"output_tokens":300,"cost_usd":0.0125,"model":"m"}}';
           echo "the prompt file has $(wc -c < "$MESA_PROMPT_FILE") bytes" >&2"#,
            key_file = key_file.display()),
        1,
    )
    .await;
    let key = issue_for(&t, "Add login", "founding-engineer").await;
    let mut s = t.mesa.scheduler(engine_config());
    let report = s.step().await.unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
    s.settle().await;

    let run = t
        .mesa
        .run_log(&Actor::System, report.started[0])
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(run.issue_key.as_ref(), Some(&key));
    let log = run.stdout.clone().unwrap_or_default();
    assert!(
        log.contains(&format!("working on {key} as founding-engineer")),
        "{log}"
    );
    assert!(
        log.contains("key=[REDACTED]"),
        "the run key is scrubbed: {log}"
    );
    assert!(
        log.contains("token=[REDACTED]"),
        "sk- tokens are scrubbed: {log}"
    );
    assert!(
        log.contains("board=\n"),
        "the board token is not passed on: {log}"
    );
    assert!(log.contains("the prompt file has"), "{log}");
    assert_eq!(run.usage.input_tokens, 1200);
    assert_eq!(run.usage.output_tokens, 300);
    assert_eq!(run.cost_usd, MicroUsd(12_500));
    assert_eq!(
        run.cost_reserved_usd,
        MicroUsd::ZERO,
        "the reservation is released"
    );
    assert!(
        run.prompt
            .as_deref()
            .is_some_and(|p| p.contains(key.as_str()))
    );
    // The run's key died with the run.
    let raw = std::fs::read_to_string(&key_file).unwrap();
    assert!(raw.trim().len() > 20, "{raw}");
    assert!(
        !log.contains(raw.trim()),
        "the stored log never holds the run key"
    );
    assert!(t.mesa.authenticate(Some(raw.trim())).await.is_err());
}

#[tokio::test]
async fn a_budget_that_fits_three_reservations_starts_exactly_three_of_eight() {
    let t = TestMesa::new().await;
    // Each run reserves $1; the first spends $1.50 (an overshoot of $0.50), the others $0.80.
    let agent = command_agent(
        &t,
        "founding-engineer",
        r#"sleep 0.2
           cost=0.8; [ "$MESA_ISSUE_KEY" = "MESA-1" ] && cost=1.5
           echo "{\"type\":\"mesa.usage\",\"input_tokens\":10,\"output_tokens\":10,\"cost_usd\":$cost}""#,
        8,
    )
    .await;
    t.mesa
        .put_budget(
            &t.board,
            Some("founding-engineer"),
            BudgetLimits {
                daily_token_limit: 0,
                daily_cost_limit_usd: MicroUsd(3_000_000),
                per_run_reserve_usd: Some(MicroUsd(1_000_000)),
            },
        )
        .await
        .unwrap();
    for i in 0..8 {
        issue_for(&t, &format!("Task {i}"), "founding-engineer").await;
    }
    let mut s = t.mesa.scheduler(engine_config());
    let report = s.step().await.unwrap();
    assert_eq!(report.started.len(), 3, "{report:?}");
    assert!(!report.refused.is_empty());
    s.settle().await;
    // Paused until the budget day ends, with the reason; the other five wait.
    let paused = t.agent("founding-engineer").await;
    assert!(paused.paused_until.is_some_and(|u| u > t.mesa.now()));
    assert!(
        paused
            .pause_reason
            .as_deref()
            .is_some_and(|r| r.contains("budget")),
        "{paused:?}"
    );
    assert_eq!(drain(&mut s).await, 0, "nothing more starts while paused");
    let all = runs(
        &t,
        RunFilter {
            agent: Some(agent.id),
            ..RunFilter::default()
        },
    )
    .await;
    assert_eq!(
        all.iter()
            .filter(|r| r.status == RunStatus::Succeeded)
            .count(),
        3
    );
    assert_eq!(
        all.iter().filter(|r| r.status == RunStatus::Queued).count(),
        5
    );
    let budget = t.mesa.agent_budget(&paused).await.unwrap();
    assert_eq!(budget.spent_today_usd, MicroUsd(3_100_000));
    assert!(
        budget.spent_today_usd <= MicroUsd(3_000_000 + 500_000),
        "spend {} stays within the limit plus one run's overshoot",
        budget.spent_today_usd
    );
    assert_eq!(
        budget.reserved_usd,
        MicroUsd::ZERO,
        "reservations are settled"
    );
}

#[tokio::test]
async fn a_hundred_wake_ups_make_one_run_and_at_most_one_follow_up() {
    let t = TestMesa::new().await;
    command_agent(&t, "founding-engineer", "sleep 1", 4).await;
    let key = issue_for(&t, "Busy issue", "founding-engineer").await;
    for _ in 0..100 {
        t.mesa
            .wake_agent(&t.board, "founding-engineer", Some(&key))
            .await
            .unwrap();
    }
    assert_eq!(runs_of(&t, &key).await.len(), 1, "queued wake-ups merge");
    let mut s = t.mesa.scheduler(engine_config());
    assert_eq!(s.step().await.unwrap().started.len(), 1);
    for _ in 0..100 {
        t.mesa
            .wake_agent(&t.board, "founding-engineer", Some(&key))
            .await
            .unwrap();
    }
    // The follow-up waits for the running run.
    assert!(s.step().await.unwrap().started.is_empty());
    let all = runs_of(&t, &key).await;
    assert_eq!(all.len(), 2, "one running and one follow-up: {all:?}");
    s.settle().await;
    assert_eq!(drain(&mut s).await, 1, "the follow-up runs once after");
    assert_eq!(runs_of(&t, &key).await.len(), 2);
}

#[tokio::test]
async fn an_idle_heartbeat_starts_nothing_over_twenty_intervals() {
    let t = TestMesa::new().await;
    let current = t.agent("qa").await;
    let config = AgentConfig {
        runner: RunnerKind::Command,
        command: vec!["true".to_owned()],
        heartbeat_enabled: true,
        heartbeat_interval_sec: 60,
        ..current.config.clone()
    };
    t.mesa
        .update_agent_config(&t.board, "qa", config, None, "heartbeats on")
        .await
        .unwrap();
    let mut s = t.mesa.scheduler(engine_config());
    for _ in 0..20 {
        t.clock.advance(Duration::from_secs(61));
        assert!(s.step().await.unwrap().started.is_empty());
    }
    let qa = t.agent("qa").await;
    let theirs = runs(
        &t,
        RunFilter {
            agent: Some(qa.id),
            ..RunFilter::default()
        },
    )
    .await;
    assert!(
        theirs.is_empty(),
        "an idle heartbeat queues nothing: {theirs:?}"
    );

    // With work in its inbox, the next heartbeat queues one run.
    let key = issue_for(&t, "Check the release", "qa").await;
    for r in runs_of(&t, &key).await {
        t.mesa.cancel_run(&t.board, r.id).await.unwrap();
    }
    t.clock.advance(Duration::from_secs(61));
    let report = s.step().await.unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
    s.settle().await;
}

#[tokio::test]
async fn a_failing_issue_gets_comments_and_is_blocked_by_the_runaway_guard() {
    let t = TestMesa::new().await;
    command_agent(
        &t,
        "founding-engineer",
        "echo 'cannot build' >&2; exit 3",
        1,
    )
    .await;
    let key = issue_for(&t, "Flaky build", "founding-engineer").await;
    let mut s = t.mesa.scheduler(engine_config());
    let eng = t.actor("founding-engineer").await;
    let _ = eng;
    for _ in 0..12 {
        drain(&mut s).await;
        // Someone keeps poking it (not the board, whose pokes override the guard).
        let ceo = t.actor("ceo").await;
        let _ = t
            .mesa
            .add_comment(
                &ceo,
                &key,
                "try again",
                mesa_core::domain::CommentKind::Comment,
            )
            .await;
        t.clock.advance(Duration::from_secs(31));
    }
    let issue = t.mesa.issue(&key).await.unwrap();
    assert_eq!(issue.issue.status, IssueStatus::Blocked, "{issue:?}");
    let failed = runs_of(&t, &key)
        .await
        .into_iter()
        .filter(|r| r.status == RunStatus::Failed)
        .count();
    assert!(failed <= 8, "at most max_runs_per_issue runs: {failed}");
    let comments = t
        .mesa
        .comments(&key, &PageRequest::new(Some(100), None))
        .await
        .unwrap()
        .items;
    assert!(
        comments.iter().any(|c| c.body.contains("cannot build")),
        "the failure reason is on the issue"
    );
    assert!(
        comments
            .iter()
            .any(|c| c.kind == mesa_core::domain::CommentKind::System
                && c.body.contains("Runaway guard")),
        "the block is explained: {comments:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_quota_pauses_the_agent_until_its_reset_and_requeues_without_a_hot_loop() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = mesa_testkit::FakeModelServer::start([mesa_testkit::Turn::fault(
        mesa_testkit::Fault::rate_limited(Duration::from_secs(600)),
    )])
    .await
    .unwrap();
    let t = TestMesa::new().await;
    // The fake clock at the wall clock: the provider's reset time is wall-clock based.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.clock.set(mesa_core::domain::Timestamp::from_millis(
        i64::try_from(wall.as_millis()).unwrap(),
    ));
    let current = t.agent("founding-engineer").await;
    let config = AgentConfig {
        runner: RunnerKind::OpenaiCompat,
        model: "llama3:8b".to_owned(),
        base_url: Some(server.openai_base_url()),
        ..current.config.clone()
    };
    t.mesa
        .update_agent_config(&t.board, "founding-engineer", config, None, "local model")
        .await
        .unwrap();
    let key = issue_for(&t, "Needs the model", "founding-engineer").await;
    let mut s = t.mesa.scheduler(engine_config());
    assert_eq!(s.step().await.unwrap().started.len(), 1);
    s.settle().await;

    let first = runs_of(&t, &key).await;
    let failed = first
        .iter()
        .find(|r| r.status == RunStatus::Failed)
        .unwrap();
    assert_eq!(
        failed.failure_reason.as_deref(),
        Some("quota"),
        "{failed:?}"
    );
    let agent = t.agent("founding-engineer").await;
    let until = agent.paused_until.expect("paused");
    let ahead = until.since(t.mesa.now());
    assert!(
        ahead > Duration::from_secs(590) && ahead <= Duration::from_secs(601),
        "paused until the provider's reset, {ahead:?} ahead"
    );
    assert!(
        agent
            .pause_reason
            .as_deref()
            .is_some_and(|r| r.contains("quota")),
        "{agent:?}"
    );
    let requeued = first
        .iter()
        .find(|r| r.status == RunStatus::Queued)
        .expect("re-queued");
    assert_eq!(requeued.not_before, Some(until));

    // Nothing more runs before the reset, however often the scheduler passes.
    for _ in 0..50 {
        t.clock.advance(Duration::from_secs(10));
        assert!(s.step().await.unwrap().started.is_empty());
    }
    assert_eq!(runs_of(&t, &key).await.len(), 2, "no hot loop");
    assert_eq!(server.model_requests().len(), 1);
    // After the reset the wake-up runs again.
    t.clock.advance(Duration::from_secs(120));
    assert_eq!(s.step().await.unwrap().started.len(), 1);
    s.settle().await;
}

#[tokio::test]
async fn a_ceo_run_moves_the_backlog_sections_it_was_handed_only_when_it_succeeds() {
    let t = TestMesa::new().await;
    let ceo = t.agent("ceo").await;
    let docs = std::path::Path::new(ceo.config.working_dir.as_str()).join("artifact-docs");
    std::fs::create_dir_all(&docs).unwrap();
    let backlog = "## Export invoices\nAs CSV, monthly.\n\n## Status page\nPublic uptime.\n";
    std::fs::write(docs.join("backlog.md"), backlog).unwrap();

    // A failed run leaves the backlog as it was.
    command_agent(&t, "ceo", "echo 'thinking'; exit 3", 1).await;
    let mut s = t.mesa.scheduler(engine_config());
    t.mesa.wake_agent(&t.board, "ceo", None).await.unwrap();
    assert_eq!(drain(&mut s).await, 1);
    let failed = runs(&t, RunFilter::default()).await;
    assert_eq!(failed[0].status, RunStatus::Failed, "{failed:?}");
    let shown = t
        .mesa
        .run_log(&Actor::System, failed[0].id)
        .await
        .unwrap()
        .prompt
        .unwrap_or_default();
    assert!(
        shown.contains("Export invoices") && shown.contains("Status page"),
        "the CEO's prompt quotes the backlog: {shown}"
    );
    assert_eq!(
        std::fs::read_to_string(docs.join("backlog.md")).unwrap(),
        backlog
    );
    assert!(!docs.join("backlog.done.md").exists());

    // The board adds a section while the next run works; the run succeeds: what it was handed
    // moves to the done file, the new section stays for the next run.
    let script = format!(
        "printf '\\n## Magic links\\nNo passwords.\\n' >> {}; echo planned",
        docs.join("backlog.md").display()
    );
    command_agent(&t, "ceo", &script, 1).await;
    t.mesa.wake_agent(&t.board, "ceo", None).await.unwrap();
    assert_eq!(drain(&mut s).await, 1);
    let newest = &runs(&t, RunFilter::default()).await[0];
    assert_eq!(newest.status, RunStatus::Succeeded, "{newest:?}");
    let rest = std::fs::read_to_string(docs.join("backlog.md")).unwrap();
    assert_eq!(rest, "\n## Magic links\nNo passwords.\n");
    let done = std::fs::read_to_string(docs.join("backlog.done.md")).unwrap();
    assert!(
        done.starts_with(&format!("<!-- processed by run {} at ", newest.id)),
        "{done}"
    );
    assert!(done.contains(backlog), "{done}");
}

#[tokio::test]
async fn with_run_evaluation_on_a_task_run_gets_its_trajectory_signature() {
    let t = TestMesa::new().await;
    let script = r#"echo '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"1","name":"Read","input":{"file_path":"a.rs"}}]}}'
echo '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"2","name":"Bash","input":{"command":"cargo test"}}]}}'
echo '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"2","content":"1 failed","is_error":true}]}}'
echo '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"3","name":"Edit","input":{"file_path":"a.rs"}}]}}'"#;
    command_agent(&t, "founding-engineer", script, 1).await;
    let mut s = t.mesa.scheduler(engine_config());

    // Off (the default): nothing is evaluated.
    let first = issue_for(&t, "Add login", "founding-engineer").await;
    assert_eq!(drain(&mut s).await, 1);
    let run = &runs_of(&t, &first).await[0];
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(t.mesa.run_evaluation(run.id).await.unwrap(), None);

    t.mesa
        .put_settings(
            &t.board,
            &[("feature_run_evaluation".to_owned(), "true".to_owned())],
        )
        .await
        .unwrap();
    let second = issue_for(&t, "Add logout", "founding-engineer").await;
    assert_eq!(drain(&mut s).await, 1);
    let run = &runs_of(&t, &second).await[0];
    let evaluation = t
        .mesa
        .run_evaluation(run.id)
        .await
        .unwrap()
        .expect("an evaluated task run");
    assert_eq!(evaluation.archetype.as_str(), "fullstack");
    let sig = &evaluation.signature;
    assert_eq!(sig["tool_calls"], 3, "{sig}");
    assert_eq!(sig["tools"], serde_json::json!(["Bash", "Edit", "Read"]));
    assert_eq!(sig["reads_before_first_write"], 1);
    assert_eq!(sig["tool_errors"], 1);
    assert!(sig["time_to_first_edit_ms"].is_u64(), "{sig}");

    let rollup = t.mesa.observability(14).await.unwrap();
    assert_eq!(rollup.len(), 1, "{rollup:#?}");
    assert_eq!((rollup[0].runs, rollup[0].succeeded), (1, 1));
    assert_eq!(rollup[0].tool_errors, 1);
    assert!(t.mesa.observability(0).await.is_err());
}

/// Waits until the run's evaluation has a rubric (the judge answers in the background).
async fn rubric_of(t: &TestMesa, run: mesa_core::domain::RunId) -> serde_json::Value {
    for _ in 0..200 {
        if let Some(rubric) = t
            .mesa
            .run_evaluation(run)
            .await
            .unwrap()
            .and_then(|e| e.rubric)
        {
            return rubric;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no rubric for run {run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_judge_grades_evaluated_runs_and_a_bad_answer_is_recorded_as_such() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = TestMesa::new().await;
    let judge = mesa_testkit::FakeModelServer::start([
        mesa_testkit::Turn::text(
            "```json\n{\"fidelity\": 0.9, \"scope_drift\": \"low\", \"missed_criteria\": [], \
             \"unrequested_changes\": [\"renamed a module\"], \"confidence\": 0.7}\n```",
        )
        .when(mesa_testkit::Matcher::body_contains("Add login")),
        mesa_testkit::Turn::text("Looks fine to me."),
    ])
    .await
    .unwrap();
    command_agent(
        &t,
        "founding-engineer",
        r#"echo '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"1","name":"Edit","input":{}}]}}'"#,
        1,
    )
    .await;
    t.mesa
        .put_settings(
            &t.board,
            &[
                ("feature_run_evaluation".to_owned(), "true".to_owned()),
                ("judge_base_url".to_owned(), judge.openai_base_url()),
                ("judge_model".to_owned(), "judge-1".to_owned()),
                ("judge_api_key".to_owned(), "sk-judge".to_owned()),
            ],
        )
        .await
        .unwrap();
    let bad_url = t
        .mesa
        .put_settings(
            &t.board,
            &[("judge_base_url".to_owned(), "ftp://x".to_owned())],
        )
        .await
        .unwrap_err();
    assert_eq!(bad_url.field(), Some("judge_base_url"));
    let mut s = t.mesa.scheduler(engine_config());

    let key = issue_for(&t, "Add login", "founding-engineer").await;
    assert_eq!(drain(&mut s).await, 1);
    let run = runs_of(&t, &key).await[0].id;
    let rubric = rubric_of(&t, run).await;
    assert_eq!(rubric["fidelity"], 0.9, "{rubric}");
    assert_eq!(rubric["scope_drift"], "low");
    assert_eq!(
        rubric["unrequested_changes"],
        serde_json::json!(["renamed a module"])
    );
    let asked = &judge.model_requests()[0];
    assert!(
        asked.body_contains("\"tool_calls\":1"),
        "the judge sees the signature"
    );
    assert_eq!(asked.model(), Some("judge-1"));
    assert_eq!(asked.header("authorization"), Some("Bearer sk-judge"));

    // An answer that is no rubric is kept as the judge's error, and grades nothing.
    let key = issue_for(&t, "Add logout", "founding-engineer").await;
    assert_eq!(drain(&mut s).await, 1);
    let run = runs_of(&t, &key).await[0].id;
    let rubric = rubric_of(&t, run).await;
    assert!(
        rubric["error"].as_str().unwrap().contains("no JSON object"),
        "{rubric}"
    );
    let rollup = t.mesa.observability(14).await.unwrap();
    assert_eq!(rollup[0].avg_fidelity, Some(0.9), "{rollup:#?}");
}

#[tokio::test]
async fn the_scheduler_expires_pending_approvals_on_time_and_wakes_the_requester() {
    let t = TestMesa::new().await;
    command_agent(&t, "ceo", "echo noted", 1).await;
    let ceo = t.actor("ceo").await;
    let asked = t
        .mesa
        .request_approval(
            &ceo,
            mesa_core::NewApproval {
                kind: mesa_core::domain::ApprovalKind::Other,
                title: mesa_core::domain::Title::parse("Use a new vendor").unwrap(),
                body: mesa_core::domain::Markdown::parse("").unwrap(),
                subject: None,
                payload: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    let mut s = t.mesa.scheduler(engine_config());
    t.clock.advance(Duration::from_secs(71 * 3600));
    assert_eq!(drain(&mut s).await, 0);
    assert_eq!(
        t.mesa.approval(asked.id).await.unwrap().status,
        mesa_core::domain::ApprovalStatus::Pending
    );
    t.clock.advance(Duration::from_secs(3600 + 1));
    let woke = drain(&mut s).await;
    let expired = t.mesa.approval(asked.id).await.unwrap();
    assert_eq!(expired.status, mesa_core::domain::ApprovalStatus::Expired);
    assert_eq!(expired.decided_by.as_deref(), Some("system"));
    assert_eq!(woke, 1, "the CEO is told its request lapsed");
    let runs = runs(&t, RunFilter::default()).await;
    assert!(
        runs[0]
            .triggers
            .contains(&mesa_core::domain::RunTrigger::ApprovalResolved),
        "{runs:#?}"
    );
}
