//! The read cache behind authentication and the inbox: whatever writes — a core command, a
//! direct store write (as the scheduler makes), another `Mesa` on the same database file (as the
//! `mesa token` CLI is, in another process) — the very next read answers from the new data.

use std::sync::Arc;
use std::time::Duration;

use mesa_core::domain::{Actor, IssueStatus, Name, Timestamp, Title, WorkingDir};
use mesa_core::store::PageRequest;
use mesa_core::{AuthFailure, CoreConfig, FakeClock, IssueList, IssuePatch, Mesa, NewIssue};

/// Two `Mesa`s on one database file, as a server and a CLI process would be.
struct Pair {
    server: Mesa,
    cli: Mesa,
    clock: FakeClock,
    _dir: tempfile::TempDir,
}

async fn open(dir: &std::path::Path, clock: &FakeClock) -> Mesa {
    let config = CoreConfig::new(dir, WorkingDir::parse(&dir.to_string_lossy()).unwrap());
    Mesa::builder()
        .sqlite(dir.join("mesa.db"))
        .config(config)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap()
}

impl Pair {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = FakeClock::new(Timestamp::parse_rfc3339("at", "2026-11-25T09:00:00Z").unwrap());
        let server = open(dir.path(), &clock).await;
        server.bootstrap_if_empty().await.unwrap();
        let cli = open(dir.path(), &clock).await;
        Pair {
            server,
            cli,
            clock,
            _dir: dir,
        }
    }
}

fn board() -> Actor {
    Actor::board("test")
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_whoever_revokes_it() {
    let p = Pair::new().await;
    for revoker in [&p.server, &p.cli] {
        let minted = p
            .server
            .create_agent_key(&board(), "ceo", None, None)
            .await
            .unwrap();
        // Twice: the second answer comes from the cache.
        for _ in 0..2 {
            let who = p.server.authenticate(Some(&minted.raw)).await.unwrap();
            assert_eq!(who.key_id, minted.key.id);
        }
        revoker.revoke_key(&board(), minted.key.id).await.unwrap();
        assert_eq!(
            p.server.authenticate(Some(&minted.raw)).await,
            Err(AuthFailure::Invalid),
            "refused by the very next request"
        );
    }
    // A board token made by the CLI works at once, and its revocation is seen at once.
    let token = p
        .cli
        .create_board_token(&board(), Name::parse("ops").unwrap(), None)
        .await
        .unwrap();
    assert!(
        p.server
            .authenticate(Some(&token.raw))
            .await
            .unwrap()
            .is_board()
    );
    p.cli.revoke_key(&board(), token.key.id).await.unwrap();
    assert_eq!(
        p.server.authenticate(Some(&token.raw)).await,
        Err(AuthFailure::Invalid)
    );
}

#[tokio::test]
async fn an_expired_key_and_a_finished_runs_key_are_refused_at_once() {
    let p = Pair::new().await;
    let expires = Timestamp::from_millis(p.server.now().as_millis() + 60_000);
    let short = p
        .server
        .create_agent_key(&board(), "ceo", None, Some(expires))
        .await
        .unwrap();
    p.server.authenticate(Some(&short.raw)).await.unwrap();
    p.server.authenticate(Some(&short.raw)).await.unwrap();
    p.clock.advance(Duration::from_secs(61));
    assert_eq!(
        p.server.authenticate(Some(&short.raw)).await,
        Err(AuthFailure::Invalid),
        "expiry is checked on every request, cached or not"
    );

    let queued = p
        .server
        .wake_agent(&board(), "ceo", None)
        .await
        .unwrap()
        .run;
    let ceo = p.server.find_agent("ceo").await.unwrap();
    let run_key = p.server.mint_run_key(&ceo, queued.id).await.unwrap();
    for _ in 0..2 {
        let who = p.server.authenticate(Some(&run_key.raw)).await.unwrap();
        assert_eq!(who.run_id, Some(queued.id));
    }
    // The run ends (cancelled while queued) by the other process.
    p.cli.cancel_run(&board(), queued.id).await.unwrap();
    assert_eq!(
        p.server.authenticate(Some(&run_key.raw)).await,
        Err(AuthFailure::Invalid),
        "a finished run's key dies with it"
    );
}

/// The inbox as a test renders it: what a client would see of each item.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the shape `Mesa::inbox_rendered` calls"
)]
fn render(list: IssueList) -> Vec<u8> {
    let items: Vec<String> = list
        .items
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {} v{}",
                v.issue.key,
                v.issue.title,
                v.issue.status,
                v.issue.priority.get(),
                v.issue.version.0
            )
        })
        .collect();
    items.join("\n").into_bytes()
}

async fn inbox(m: &Mesa, actor: &Actor) -> Arc<Vec<u8>> {
    m.inbox_rendered(actor, &PageRequest::first(), render)
        .await
        .unwrap()
}

async fn fresh(m: &Mesa, actor: &Actor) -> Vec<u8> {
    render(m.inbox(actor, &PageRequest::first()).await.unwrap())
}

#[tokio::test]
async fn the_inbox_is_fresh_after_a_write_through_any_path() {
    let p = Pair::new().await;
    let ceo = p.server.find_agent("ceo").await.unwrap();
    let me = Actor::Agent {
        id: ceo.id,
        slug: ceo.slug.clone(),
    };
    let mut new = NewIssue::titled("First").unwrap();
    new.assignee = Some("ceo".to_owned());
    let first = p.server.create_issue(&board(), new).await.unwrap().issue;

    let a = inbox(&p.server, &me).await;
    let b = inbox(&p.server, &me).await;
    assert!(
        Arc::ptr_eq(&a, &b),
        "an unchanged inbox is served from the cache"
    );
    assert_eq!(*a, fresh(&p.server, &me).await);

    // 1. A core command.
    let patch = IssuePatch {
        title: Some(Title::parse("First, renamed").unwrap()),
        ..IssuePatch::default()
    };
    p.server
        .update_issue(&board(), &first.key, patch)
        .await
        .unwrap();
    let c = inbox(&p.server, &me).await;
    assert_ne!(c, b);
    assert_eq!(*c, fresh(&p.server, &me).await, "after a core command");

    // 2. A write straight through the store, as the scheduler's engine makes them.
    let outcome = p
        .server
        .store()
        .checkout_issue(mesa_core::store::CheckoutRequest {
            key: first.key.clone(),
            agent_id: ceo.id,
            run_id: None,
            expected: vec![IssueStatus::Todo],
            now: p.server.now(),
            activity: Vec::new(),
        })
        .await
        .unwrap();
    assert!(outcome.changed);
    let d = inbox(&p.server, &me).await;
    assert_ne!(d, c);
    assert_eq!(*d, fresh(&p.server, &me).await, "after a store write");

    // 3. Another process on the same database.
    let mut other = NewIssue::titled("From the CLI").unwrap();
    other.assignee = Some("ceo".to_owned());
    p.cli.create_issue(&board(), other).await.unwrap();
    let e = inbox(&p.server, &me).await;
    assert!(String::from_utf8_lossy(&e).contains("From the CLI"));
    assert_eq!(
        *e,
        fresh(&p.server, &me).await,
        "after another process's write"
    );

    // Pages and owners are cached apart.
    let page = PageRequest::new(Some(1), None);
    let one = p.server.inbox_rendered(&me, &page, render).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&one).lines().count(), 1);
    let nobody = p
        .server
        .inbox_rendered(&board(), &PageRequest::first(), render)
        .await;
    assert!(nobody.unwrap().is_empty(), "the board's inbox is its own");
}

fn actor_of(agent: &mesa_core::domain::entity::Agent) -> Actor {
    Actor::Agent {
        id: agent.id,
        slug: agent.slug.clone(),
    }
}

/// An issue assigned to nobody, which any agent may check out.
async fn unassigned(m: &Mesa, title: &str) -> mesa_core::domain::IssueKey {
    let key = m
        .create_issue(&board(), NewIssue::titled(title).unwrap())
        .await
        .unwrap()
        .issue
        .key;
    let patch = IssuePatch {
        assignee: Some(None),
        ..IssuePatch::default()
    };
    m.update_issue(&board(), &key, patch).await.unwrap();
    key
}

/// Checkouts and issue creations record what they changed, so another agent's cached inbox
/// and every cached key survive them; what they do change is fresh at once, and any other
/// write (another process's included) still empties the cache.
#[tokio::test]
async fn unrelated_writes_keep_other_inboxes_and_what_changed_is_fresh() {
    let p = Pair::new().await;
    let agents = p.server.agents().await.unwrap();
    let ceo = agents.iter().find(|a| a.slug.as_str() == "ceo").unwrap();
    let other = agents.iter().find(|a| a.id != ceo.id).unwrap();
    let (me, them) = (actor_of(ceo), actor_of(other));
    let mut mine = NewIssue::titled("Mine").unwrap();
    mine.assignee = Some("ceo".to_owned());
    p.server.create_issue(&board(), mine).await.unwrap();
    let pool = unassigned(&p.server, "Up for grabs").await;
    let key = p
        .server
        .create_agent_key(&board(), "ceo", None, None)
        .await
        .unwrap();
    p.server.authenticate(Some(&key.raw)).await.unwrap();

    let a = inbox(&p.server, &me).await;
    let b = inbox(&p.server, &them).await;

    // The other agent claims an issue: its inbox changes, mine is kept as it was.
    p.server
        .checkout_issue(&them, &pool, None, None)
        .await
        .unwrap();
    let b2 = inbox(&p.server, &them).await;
    assert_ne!(b2, b);
    assert_eq!(
        *b2,
        fresh(&p.server, &them).await,
        "the claimer's inbox is fresh"
    );
    assert!(String::from_utf8_lossy(&b2).contains("Up for grabs"));
    let a2 = inbox(&p.server, &me).await;
    assert!(
        Arc::ptr_eq(&a, &a2),
        "another agent's checkout keeps my inbox"
    );
    assert_eq!(*a2, fresh(&p.server, &me).await);

    // An issue created for the other agent: the same.
    let mut theirs = NewIssue::titled("Theirs").unwrap();
    theirs.assignee = Some(other.slug.to_string());
    p.server.create_issue(&board(), theirs).await.unwrap();
    let b3 = inbox(&p.server, &them).await;
    assert!(String::from_utf8_lossy(&b3).contains("Theirs"));
    assert_eq!(*b3, fresh(&p.server, &them).await);
    let a3 = inbox(&p.server, &me).await;
    assert!(
        Arc::ptr_eq(&a, &a3),
        "an issue created for another agent keeps my inbox"
    );

    // An issue created for me shows at once.
    let mut new_mine = NewIssue::titled("Mine too").unwrap();
    new_mine.assignee = Some("ceo".to_owned());
    p.server.create_issue(&board(), new_mine).await.unwrap();
    let a4 = inbox(&p.server, &me).await;
    assert!(String::from_utf8_lossy(&a4).contains("Mine too"));
    assert_eq!(*a4, fresh(&p.server, &me).await);

    // My own checkout moves the issue in my inbox at once.
    let grab = unassigned(&p.server, "Mine to grab").await;
    let a5 = inbox(&p.server, &me).await;
    p.server
        .checkout_issue(&me, &grab, None, None)
        .await
        .unwrap();
    let a6 = inbox(&p.server, &me).await;
    assert_ne!(a6, a5);
    assert_eq!(*a6, fresh(&p.server, &me).await, "after my own checkout");

    // Another process writes: nothing can be vouched for, everything is read again.
    p.cli
        .update_issue(
            &board(),
            &grab,
            IssuePatch {
                title: Some(Title::parse("Renamed elsewhere").unwrap()),
                ..IssuePatch::default()
            },
        )
        .await
        .unwrap();
    let a7 = inbox(&p.server, &me).await;
    assert!(String::from_utf8_lossy(&a7).contains("Renamed elsewhere"));
    assert_eq!(*a7, fresh(&p.server, &me).await);

    // The key was cached through all of this; its revocation by either process after more
    // narrow writes is still refused by the very next request.
    for revoker in [&p.server, &p.cli] {
        let key = p
            .server
            .create_agent_key(&board(), "ceo", None, None)
            .await
            .unwrap();
        p.server.authenticate(Some(&key.raw)).await.unwrap();
        let next = unassigned(&p.server, &format!("Another {}", key.key.id)).await;
        p.server.authenticate(Some(&key.raw)).await.unwrap();
        p.server
            .checkout_issue(&them, &next, None, None)
            .await
            .unwrap();
        p.server.authenticate(Some(&key.raw)).await.unwrap();
        revoker.revoke_key(&board(), key.key.id).await.unwrap();
        assert_eq!(
            p.server.authenticate(Some(&key.raw)).await,
            Err(AuthFailure::Invalid),
            "refused by the very next request"
        );
    }
    p.server.authenticate(Some(&key.raw)).await.unwrap();
}

/// What the scheduler's writes change in an inbox: the issue's runs and version.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the shape `Mesa::inbox_rendered` calls"
)]
fn render_runs(list: IssueList) -> Vec<u8> {
    let items: Vec<String> = list
        .items
        .iter()
        .map(|v| {
            format!(
                "{} {} runs {} v{}",
                v.issue.key, v.issue.status, v.issue.run_count, v.issue.version.0
            )
        })
        .collect();
    items.join("\n").into_bytes()
}

/// The scheduler's writes (a run started counts on its issue) record nothing about what they
/// changed: the inbox cached before them is read afresh after them.
#[tokio::test]
async fn the_inbox_is_fresh_after_the_scheduler_starts_a_run() {
    let t = crate::support::TestMesa::new().await;
    let agent = crate::engine::command_agent(&t, "founding-engineer", "echo done", 1).await;
    let mut new = NewIssue::titled("Scheduled work").unwrap();
    new.assignee = Some("founding-engineer".into());
    t.mesa.create_issue(&t.board, new).await.unwrap();
    let actor = actor_of(&agent);
    let page = PageRequest::first();
    let before = t
        .mesa
        .inbox_rendered(&actor, &page, render_runs)
        .await
        .unwrap();
    let mut s = t.mesa.scheduler(crate::engine::engine_config());
    let report = s.step().await.unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
    s.settle().await;
    let after = t
        .mesa
        .inbox_rendered(&actor, &page, render_runs)
        .await
        .unwrap();
    assert_ne!(after, before, "the run counts on the issue");
    assert_eq!(
        *after,
        render_runs(t.mesa.inbox(&actor, &page).await.unwrap()),
        "after the scheduler's writes"
    );
}

#[tokio::test]
async fn the_status_counts_are_fresh_after_a_write_through_any_path() {
    use mesa_core::NewApproval;
    use mesa_core::domain::{ApprovalKind, Markdown};

    let p = Pair::new().await;
    let todo = |c: &mesa_core::StatusCounts| c.issues_in(&[IssueStatus::Todo]);
    let a = p.server.status_counts().await.unwrap();
    let b = p.server.status_counts().await.unwrap();
    assert!(Arc::ptr_eq(&a, &b), "unchanged counts come from the cache");

    // A core command, then another process on the same database.
    p.server
        .create_issue(&board(), NewIssue::titled("Counted").unwrap())
        .await
        .unwrap();
    let c = p.server.status_counts().await.unwrap();
    assert_eq!(todo(&c), todo(&a) + 1, "after a core command");
    p.cli
        .create_issue(&board(), NewIssue::titled("Counted too").unwrap())
        .await
        .unwrap();
    let d = p.server.status_counts().await.unwrap();
    assert_eq!(todo(&d), todo(&a) + 2, "after another process's write");

    // A pending approval, and a queued run.
    let ceo = p.server.find_agent("ceo").await.unwrap();
    let new = NewApproval {
        kind: ApprovalKind::Other,
        title: Title::parse("Use a new vendor").unwrap(),
        body: Markdown::parse("").unwrap(),
        subject: None,
        payload: serde_json::json!({}),
    };
    p.cli.request_approval(&actor_of(&ceo), new).await.unwrap();
    let e = p.server.status_counts().await.unwrap();
    assert_eq!(e.approvals_pending, d.approvals_pending + 1);
    // A wake-up (merged into a queued run, or queued): the counts are the fresh ones.
    p.cli.wake_agent(&board(), "ceo", None).await.unwrap();
    let f = p.server.status_counts().await.unwrap();
    assert_eq!(f.runs, p.server.run_counts().await.unwrap());
    assert_eq!(f.issues, p.server.issue_counts().await.unwrap());
    assert!(f.runs_in(&[mesa_core::domain::RunStatus::Queued]) >= 1);
}
