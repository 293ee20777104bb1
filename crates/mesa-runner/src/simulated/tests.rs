//! Tests of the simulated runner: its pure parts, a real git repository, and whole runs against
//! a real HTTP server on 127.0.0.1 that plays the Mesa API.

use std::path::Path;
use std::sync::{Arc, Mutex};

use mesa_domain::entity::AgentConfig;
use mesa_domain::{IssueKey, Name, RunId, RunnerKind, Slug, WorkingDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::ceo::{
    MAX_TITLE, Member, STEPS, assignee_for, child_title, children_finished, plan_steps,
    status_update,
};
use super::worker::{
    GIT_EMAIL, GIT_NAME, change_requests, pending_change_request, write_and_commit,
};
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

fn issue_in_review(comments: &Value) -> Value {
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
            issue_in_review(&json!([
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
    let answer: Answer = Arc::new(|_, _| (200, issue_in_review(&json!([]))));
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

#[tokio::test]
async fn a_worker_addresses_requested_changes_commits_and_resubmits() {
    let answer: Answer = Arc::new(|method, path| match (method, path) {
        ("GET", "/api/v1/issues/MESA-7") => (
            200,
            json!({"issue": {"key": "MESA-7", "title": "Build: login", "status": "todo"},
                   "comments": [
                       {"kind": "evidence", "author": "qa", "body": "Evidence v1"},
                       {"kind": "review", "author": "ceo", "body": "Changes requested: cover the empty case"},
                   ],
                   "children": [], "runs": []}),
        ),
        ("PATCH", "/api/v1/issues/MESA-7") => {
            (200, json!({"key": "MESA-7", "status": "in_review"}))
        }
        ("POST", _) => (200, json!({"key": "MESA-7", "status": "in_progress"})),
        _ => (
            404,
            json!({"error": {"code": "not_found", "message": "no"}}),
        ),
    });
    let (url, seen) = fake_api(answer).await;
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(dir.path()).unwrap();
    let sig = git2::Signature::now("Someone", "someone@example.com").unwrap();
    let tree = repo
        .find_tree(repo.index().unwrap().write_tree().unwrap())
        .unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "initial", &tree, &[])
        .unwrap();
    let inv = invocation(&url, dir.path(), RunMode::Task, "qa");
    let (outcome, _) = run(inv, CancellationToken::new()).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");

    let seen = seen.lock().unwrap().clone();
    let calls: Vec<String> = seen.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    assert_eq!(
        calls,
        [
            "GET /api/v1/issues/MESA-7",
            "POST /api/v1/issues/MESA-7/checkout",
            "POST /api/v1/issues/MESA-7/comments",
            "POST /api/v1/issues/MESA-7/comments",
            "PATCH /api/v1/issues/MESA-7",
        ]
    );
    let body = |i: usize| serde_json::from_str::<Value>(&seen[i].2).unwrap();
    assert!(
        body(2)["body"]
            .as_str()
            .unwrap()
            .contains("cover the empty case"),
        "the plan quotes the request"
    );
    assert_eq!(body(3)["kind"], "evidence");
    assert_eq!(body(4)["status"], "submit");
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.message().unwrap(), "MESA-7: address review");
    assert!(
        body(3)["body"]
            .as_str()
            .unwrap()
            .contains(&head.id().to_string()[..10]),
        "the evidence names the commit"
    );
}

#[tokio::test]
async fn the_ceo_delegates_an_issue_to_the_team_by_role() {
    let answer: Answer = Arc::new(|method, path| match (method, path) {
        ("GET", "/api/v1/issues/MESA-7") => (
            200,
            json!({"issue": {"key": "MESA-7", "title": "Password reset", "status": "todo",
                             "priority": 3},
                   "comments": [], "children": [], "runs": []}),
        ),
        ("GET", "/api/v1/agents") => (
            200,
            json!({"items": [
                {"slug": "ceo", "archetype": "ceo", "active": true},
                {"slug": "linus", "archetype": "fullstack", "active": true},
                {"slug": "gone", "archetype": "fullstack", "active": false},
                {"slug": "priya", "archetype": "product", "active": true},
                {"slug": "dora", "archetype": "designer", "active": true},
                {"slug": "quinn", "archetype": "qa", "active": true},
                {"slug": "devi", "archetype": "devops", "active": true},
            ], "next_cursor": null}),
        ),
        ("POST", "/api/v1/issues") => (201, json!({"key": "MESA-8", "status": "todo"})),
        ("GET", "/api/v1/work-blocks?status=active" | "/api/v1/work-blocks?status=proposed")
        | ("GET", "/api/v1/approvals?status=pending") => {
            (200, json!({"items": [], "next_cursor": null}))
        }
        ("POST", "/api/v1/work-blocks") => (201, json!({"id": "wb-1", "status": "proposed"})),
        ("PATCH", "/api/v1/work-blocks/wb-1") => (
            202,
            json!({"approval": {"kind": "work_block_activation", "subject_id": "wb-1"}}),
        ),
        ("POST", _) => (200, json!({"key": "MESA-7", "status": "in_progress"})),
        _ => (
            404,
            json!({"error": {"code": "not_found", "message": "no"}}),
        ),
    });
    for n in 0..4 {
        let (url, seen) = fake_api(Arc::clone(&answer)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut inv = invocation(&url, dir.path(), RunMode::Task, "ceo");
        inv.env
            .push(("MESA_AGENT_SLUG".to_owned(), "ceo".to_owned()));
        inv.run_id = RunId::parse(&format!("01937a4e-0000-7000-8000-0000000000b{n}")).unwrap();
        let (outcome, _) = run(inv, CancellationToken::new()).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
        let seen = seen.lock().unwrap().clone();
        let created: Vec<Value> = seen
            .iter()
            .filter(|(m, p, _)| m == "POST" && p == "/api/v1/issues")
            .map(|(_, _, b)| serde_json::from_str(b).unwrap())
            .collect();
        assert!((2..=3).contains(&created.len()), "{created:?}");
        let expected = |verb: &str| match verb {
            "Build" => "linus",
            "Spec" => "priya",
            "Design" => "dora",
            "Test" => "quinn",
            _ => "devi",
        };
        for c in &created {
            let title = c["title"].as_str().unwrap();
            let (verb, rest) = title.split_once(": ").unwrap();
            assert_eq!(rest, "Password reset");
            assert_eq!(c["assignee_slug"], expected(verb), "{c}");
            assert_eq!(c["parent_key"], "MESA-7");
            assert_eq!(c["priority"], 3);
        }
        assert!(created[0]["title"].as_str().unwrap().starts_with("Build: "));
        let steps: Vec<&str> = seen.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(
            steps[1], "/api/v1/issues/MESA-7/checkout",
            "checked out first"
        );
        let comment = seen
            .iter()
            .find(|(_, p, _)| p == "/api/v1/issues/MESA-7/comments")
            .expect("the CEO says what it delegated");
        assert!(comment.2.contains("Delegated MESA-7"), "{}", comment.2);
        // No block is active: the issue goes into a block the CEO proposes, whose activation
        // it asks the board for.
        let block = seen
            .iter()
            .find(|(m, p, _)| m == "POST" && p == "/api/v1/work-blocks")
            .expect("a block is proposed");
        assert!(block.2.contains("Deliver: Password reset"), "{}", block.2);
        let added = seen
            .iter()
            .find(|(m, p, _)| m == "POST" && p == "/api/v1/work-blocks/wb-1/issues")
            .expect("the issue joins the block");
        assert_eq!(
            serde_json::from_str::<Value>(&added.2).unwrap(),
            json!({"issue_key": "MESA-7"})
        );
        let asked = seen
            .iter()
            .find(|(m, p, _)| m == "PATCH" && p == "/api/v1/work-blocks/wb-1")
            .expect("the CEO asks for the activation");
        assert_eq!(
            serde_json::from_str::<Value>(&asked.2).unwrap(),
            json!({"status": "active"})
        );
    }
}

#[tokio::test]
async fn the_change_request_chance_is_set_per_agent_and_checked() {
    let answer: Answer = Arc::new(|method, path| match (method, path) {
        ("GET", "/api/v1/issues/MESA-7") => (200, issue_in_review(&json!([]))),
        ("POST", "/api/v1/issues/MESA-7/review") => {
            (200, json!({"key": "MESA-7", "status": "todo"}))
        }
        _ => (
            404,
            json!({"error": {"code": "not_found", "message": "no"}}),
        ),
    });
    for (percent, want) in [("100", "request_changes"), ("0", "approve")] {
        for n in 0..4 {
            let (url, seen) = fake_api(Arc::clone(&answer)).await;
            let dir = tempfile::tempdir().unwrap();
            let mut inv = invocation(&url, dir.path(), RunMode::Review, "qa");
            inv.run_id = RunId::parse(&format!("01937a4e-0000-7000-8000-00000000000{n}")).unwrap();
            inv.env
                .push(("MESA_SIM_CHANGES_PERCENT".to_owned(), percent.to_owned()));
            let (outcome, _) = run(inv, CancellationToken::new()).await;
            assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
            let seen = seen.lock().unwrap().clone();
            let (_, _, body) = seen
                .iter()
                .find(|(m, p, _)| m == "POST" && p.ends_with("/review"))
                .expect("a review was posted");
            let body: Value = serde_json::from_str(body).unwrap();
            assert_eq!(body["decision"], want, "{percent}% run {n}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inv = invocation("http://127.0.0.1:9", dir.path(), RunMode::Review, "qa");
    inv.env
        .push(("MESA_SIM_CHANGES_PERCENT".to_owned(), "101".to_owned()));
    let (tx, _rx) = mpsc::channel(8);
    let err = SimulatedRunner::default()
        .run(inv, tx, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("MESA_SIM_CHANGES_PERCENT"),
        "{err}"
    );
}

#[tokio::test]
async fn the_ceo_closes_the_parent_when_its_own_review_finished_the_last_sub_issue() {
    let answer: Answer = Arc::new(|method, path| match (method, path) {
        ("GET", "/api/v1/issues/MESA-8") => (
            200,
            json!({"issue": {"key": "MESA-8", "title": "Design: x", "status": "in_review",
                             "parent_key": "MESA-7", "assignee_slug": "dora"},
                   "comments": [], "children": [], "runs": []}),
        ),
        ("POST", "/api/v1/issues/MESA-8/review") => {
            (200, json!({"key": "MESA-8", "status": "done"}))
        }
        ("GET", "/api/v1/issues/MESA-7") => (
            200,
            json!({"issue": {"key": "MESA-7", "title": "x", "status": "in_progress",
                             "assignee_slug": "ceo"},
                   "comments": [], "runs": [],
                   "children": [{"key": "MESA-8", "status": "done"},
                                {"key": "MESA-9", "status": "cancelled"}]}),
        ),
        ("PATCH", "/api/v1/issues/MESA-7") => (200, json!({"key": "MESA-7", "status": "done"})),
        _ => (
            404,
            json!({"error": {"code": "not_found", "message": "no"}}),
        ),
    });
    let (url, seen) = fake_api(answer).await;
    let dir = tempfile::tempdir().unwrap();
    let mut inv = invocation(&url, dir.path(), RunMode::Review, "ceo");
    inv.issue_key = Some(IssueKey::parse("MESA-8").unwrap());
    inv.env
        .push(("MESA_AGENT_SLUG".to_owned(), "ceo".to_owned()));
    inv.env
        .push(("MESA_SIM_CHANGES_PERCENT".to_owned(), "0".to_owned()));
    let (outcome, _) = run(inv, CancellationToken::new()).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    let seen = seen.lock().unwrap().clone();
    let (_, _, body) = seen
        .iter()
        .find(|(m, p, _)| m == "PATCH" && p == "/api/v1/issues/MESA-7")
        .expect("the parent is closed");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["status"], "submit");
}
