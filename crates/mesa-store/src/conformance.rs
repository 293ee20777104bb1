//! The backend-neutral conformance suite: scenarios every [`crate::Store`] must pass.
//! Each backend's tests call every scenario against a fresh database.
//!
//! Scenarios are generic over the smallest set of store traits they need (`S: IssueStore +
//! ?Sized`, ...), so they run against `Arc<dyn Store>` as well as against a backend that
//! implements only some of the traits yet. They panic with a message on the first broken rule.
//!
//! Scenarios that need agents (as assignees, run owners) take their ids: the agents must exist
//! in the backend before the scenario runs. [`create_agents`] makes them through [`AgentStore`];
//! a backend may insert them any other way. [`AGENTS_NEEDED`] is enough for every scenario.
//!
//! The concurrency scenarios (`checkout_is_exclusive`, `issue_keys_are_dense`,
//! `budget_*`, `one_active_work_block`, `activity_chain_survives_concurrency`) spawn tokio
//! tasks: run them on a multi-thread runtime so the tasks really race.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use mesa_domain::entity::{
    Agent, AgentConfig, ApiKey, BudgetPolicy, BudgetScope, Issue, Label, NewActivity, Session,
    Setting, TokenUsage, WebhookDelivery, WorkBlock,
};
use mesa_domain::{
    AgentId, ApiKeyId, ApiKeyKind, BudgetPolicyId, Color, CommentId, CommentKind, CostEventId,
    CostSource, IssueKey, IssuePrefix, IssueStatus, IssueType, LabelId, Markdown, MicroUsd, Name,
    Priority, RunId, RunMode, RunStatus, RunTrigger, RunnerKind, Slug, Stages, Timestamp, Title,
    Version, WebhookDeliveryId, WebhookStatus, WorkBlockId, WorkBlockStatus, WorkingDir,
};
use uuid::Uuid;

use crate::{
    ActivityFilter, AgentStore, BlockStore, BudgetScopeKind, CheckoutRequest, Created,
    FinishRunRecord, InboxOwner, IssueFilter, IssueStore, IssueWrite, KeyStore, LabelStore,
    NewAgentRecord, NewApiKey, NewComment, NewIssueRecord, NewRunRecord, PageRequest, RunFilter,
    RunStore, SessionStore, StartRunRequest, StatsStore, StoreError, SystemStore, UsageRecord,
    Versioned,
};

mod outbox;
pub use outbox::*;

/// Agents enough for every scenario.
pub const AGENTS_NEEDED: usize = 64;

/// The scenarios' clock: 2026-01-01T00:00:00Z.
pub const BASE: Timestamp = Timestamp::from_millis(1_767_225_600_000);

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(BASE.as_millis() + offset_ms)
}

fn uuid() -> Uuid {
    Uuid::now_v7()
}

fn title(text: &str) -> Title {
    Title::parse(text).expect("scenario titles are valid")
}

fn usd(dollars: f64) -> MicroUsd {
    MicroUsd::from_usd("usd", dollars).expect("scenario amounts are valid")
}

/// One audit row, as the core would write it.
pub fn activity(action: &str, entity_type: &str, entity_id: &str, when: Timestamp) -> NewActivity {
    NewActivity {
        at: when,
        actor: "board:test".to_owned(),
        action: action.to_owned(),
        entity_type: entity_type.to_owned(),
        entity_id: entity_id.to_owned(),
        summary: format!("{action} {entity_id}"),
        data: serde_json::json!({ "scenario": true }),
    }
}

/// A new `todo` issue with prefix `MESA` and one `issue.created` audit row (entity id left
/// empty, for the store to fill with the allocated key).
pub fn new_issue(text: &str, when: Timestamp) -> NewIssueRecord {
    NewIssueRecord {
        id: uuid().into(),
        prefix: IssuePrefix::default_prefix(),
        title: title(text),
        description: Markdown::parse("").expect("empty markdown is valid"),
        issue_type: IssueType::Task,
        priority: Priority::NONE,
        assignee_id: None,
        parent_key: None,
        work_block_id: None,
        labels: Vec::new(),
        stages: Stages::empty(),
        created_by: "board".to_owned(),
        created_at: when,
        activity: vec![activity("issue.created", "issue", "", when)],
        wake: None,
    }
}

/// Creates `n` agents through [`AgentStore`] (slugs `agent-0`, `agent-1`, ...).
pub async fn create_agents<S: AgentStore + ?Sized>(store: &S, n: usize) -> Vec<AgentId> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id: AgentId = uuid().into();
        let config = AgentConfig::new(
            Name::parse(&format!("Agent {i}")).expect("valid name"),
            Slug::parse("backend").expect("valid slug"),
            RunnerKind::Noop,
            WorkingDir::parse("/tmp").expect("valid dir"),
        );
        let agent = Agent {
            id,
            slug: Slug::parse(&format!("agent-{i}")).expect("valid slug"),
            config,
            paused_until: None,
            pause_reason: None,
            created_at: BASE,
            updated_at: BASE,
            version: Version::FIRST,
        };
        store
            .create_agent(NewAgentRecord {
                agent,
                changed_by: "board:test".to_owned(),
                reason: "conformance".to_owned(),
                activity: Vec::new(),
            })
            .await
            .expect("create agent");
        ids.push(id);
    }
    ids
}

/// A small deterministic shuffle (xorshift), so the suite needs no randomness crate.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).expect("index fits usize");
        items.swap(i, j);
    }
}

async fn create_issues<S: IssueStore + ?Sized>(store: &S, n: usize, label: &str) -> Vec<Issue> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let when = at(i64::try_from(i).expect("small"));
        out.push(
            store
                .create_issue(new_issue(&format!("{label} {i}"), when))
                .await
                .expect("create issue"),
        );
    }
    out
}

async fn all_activity<S: SystemStore + ?Sized>(
    store: &S,
) -> Vec<mesa_domain::entity::ActivityEvent> {
    let mut out = Vec::new();
    let mut after = mesa_domain::ActivityId(0);
    loop {
        let batch = store
            .activity_after(after, 1000)
            .await
            .expect("activity_after");
        let Some(last) = batch.last() else {
            return out;
        };
        after = last.id;
        out.extend(batch);
    }
}

// ---------------------------------------------------------------------------------------------
// Issues
// ---------------------------------------------------------------------------------------------

/// SPEC §2.2: 64 agents race to check out the same 200 issues, each trying every issue in its
/// own order. Every issue is claimed exactly once, every loser gets `CheckoutConflict` naming
/// the winner, and the winner holds the issue afterwards.
pub async fn checkout_is_exclusive<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + ?Sized + 'static,
{
    const TASKS: usize = 64;
    const ISSUES: usize = 200;
    assert!(
        agents.len() >= TASKS,
        "checkout_is_exclusive needs {TASKS} agents"
    );
    let keys: Vec<IssueKey> = create_issues(&*store, ISSUES, "Claim me")
        .await
        .into_iter()
        .map(|i| i.key)
        .collect();

    let mut handles = Vec::with_capacity(TASKS);
    for (t, agent) in agents.iter().copied().take(TASKS).enumerate() {
        let store = Arc::clone(&store);
        let mut order = keys.clone();
        shuffle(&mut order, t as u64 + 1);
        handles.push(tokio::spawn(async move {
            let mut won = Vec::new();
            let mut lost = Vec::new();
            for key in order {
                let req = CheckoutRequest {
                    key: key.clone(),
                    agent_id: agent,
                    run_id: None,
                    expected: vec![IssueStatus::Todo, IssueStatus::Blocked],
                    now: at(HOUR),
                    activity: vec![activity("issue.checkout", "issue", key.as_str(), at(HOUR))],
                };
                match store.checkout_issue(req).await {
                    Ok(outcome) => {
                        assert!(outcome.changed, "a first claim of {key} must change it");
                        assert_eq!(outcome.issue.assignee_id, Some(agent));
                        assert_eq!(outcome.issue.status, IssueStatus::InProgress);
                        won.push(key);
                    }
                    Err(StoreError::CheckoutConflict {
                        key: k,
                        status,
                        assignee,
                    }) => {
                        assert_eq!(k, key);
                        assert_eq!(status, IssueStatus::InProgress, "{key} lost to a claim");
                        let holder = assignee.expect("a lost checkout names the holder");
                        assert_ne!(holder, agent, "an agent never loses to itself");
                        lost.push((key, holder));
                    }
                    Err(other) => panic!("checkout of {key} failed unexpectedly: {other:?}"),
                }
            }
            (agent, won, lost)
        }));
    }

    let mut winners: HashMap<IssueKey, Vec<AgentId>> = HashMap::new();
    let mut conflicts: HashMap<IssueKey, Vec<AgentId>> = HashMap::new();
    for handle in handles {
        let (agent, won, lost) = handle.await.expect("checkout task panicked");
        for key in won {
            winners.entry(key).or_default().push(agent);
        }
        for (key, holder) in lost {
            conflicts.entry(key).or_default().push(holder);
        }
    }
    for key in &keys {
        let won = winners.get(key).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            won.len(),
            1,
            "{key} must be claimed exactly once, got {won:?}"
        );
        let winner = won[0];
        let lost = conflicts.get(key).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(lost.len(), TASKS - 1, "{key}: every other agent must lose");
        assert!(
            lost.iter().all(|h| *h == winner),
            "{key}: every conflict names the winner"
        );
        let issue = store.issue(key).await.expect("read issue");
        assert_eq!(
            issue.assignee_id,
            Some(winner),
            "{key} is held by its winner"
        );
        assert_eq!(issue.status, IssueStatus::InProgress);
        assert_eq!(issue.started_at, Some(at(HOUR)));
        assert_eq!(issue.version, Version(2), "{key} changed exactly once");
    }
}

/// SPEC §1: 1,000 issues created by 50 concurrent tasks get exactly the keys `MESA-1` to
/// `MESA-1000`; the list pages through all of them newest first without gaps or repeats.
pub async fn issue_keys_are_dense<S>(store: Arc<S>)
where
    S: IssueStore + ?Sized + 'static,
{
    const TASKS: i64 = 50;
    const EACH: i64 = 20;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            for i in 0..EACH {
                let n = t * EACH + i;
                let issue = store
                    .create_issue(new_issue(&format!("Dense key {t}/{i}"), at(n)))
                    .await
                    .expect("create issue");
                keys.push(issue.key);
            }
            keys
        }));
    }
    let mut keys = BTreeSet::new();
    for handle in handles {
        for key in handle.await.expect("create task panicked") {
            assert!(keys.insert(key.to_string()), "key {key} allocated twice");
        }
    }
    let expected: BTreeSet<String> = (1..=TASKS * EACH).map(|n| format!("MESA-{n}")).collect();
    assert_eq!(keys, expected, "keys are exactly MESA-1..MESA-1000");

    let filter = IssueFilter::default();
    assert_eq!(store.count_issues(&filter).await.expect("count"), 1000);
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_issues(&filter, &PageRequest::new(Some(137), cursor))
            .await
            .expect("list page");
        assert!(page.items.len() <= 137);
        seen.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1000, "pages cover every issue once");
    let distinct: BTreeSet<_> = seen.iter().map(|i| i.id).collect();
    assert_eq!(distinct.len(), 1000, "no issue appears on two pages");
    assert!(
        seen.windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
        "the list is newest first (created_at, id descending)"
    );
}

/// SPEC §9.2: an update made on a stale version is refused with `StaleVersion` and writes
/// nothing: not the row, not its comments, not the audit log.
pub async fn stale_update_writes_nothing<S>(store: Arc<S>)
where
    S: IssueStore + SystemStore + ?Sized,
{
    let created = store
        .create_issue(new_issue("Optimistic", at(0)))
        .await
        .expect("create");
    assert_eq!(created.version, Version::FIRST);

    let mut first = created.clone();
    first.description = Markdown::parse("first writer").expect("valid");
    first.updated_at = at(MINUTE);
    let v2 = store
        .update_issue(IssueWrite {
            issue: first,
            expected: created.version,
            comments: vec![comment(&created.key, "first", at(MINUTE))],
            activity: vec![activity(
                "issue.updated",
                "issue",
                created.key.as_str(),
                at(MINUTE),
            )],
        })
        .await
        .expect("first update");
    assert_eq!(v2.version, Version(2));
    assert_eq!(v2.description.as_str(), "first writer");

    let activity_before = all_activity(&*store).await;
    let comments_before = store
        .comments(&created.key, &PageRequest::all())
        .await
        .expect("comments");

    let mut stale = created.clone();
    stale.title = title("Second writer's title");
    stale.status = IssueStatus::Cancelled;
    stale.labels = Vec::new();
    stale.updated_at = at(2 * MINUTE);
    let err = store
        .update_issue(IssueWrite {
            issue: stale,
            expected: created.version,
            comments: vec![comment(&created.key, "second", at(2 * MINUTE))],
            activity: vec![activity(
                "issue.updated",
                "issue",
                created.key.as_str(),
                at(2 * MINUTE),
            )],
        })
        .await
        .expect_err("a stale update must be refused");
    match err {
        StoreError::StaleVersion {
            expected, actual, ..
        } => {
            assert_eq!(expected, Version(1));
            assert_eq!(actual, Version(2));
        }
        other => panic!("expected StaleVersion, got {other:?}"),
    }

    let after = store.issue(&created.key).await.expect("read");
    assert_eq!(after, v2, "the row is untouched by the refused update");
    let comments_after = store
        .comments(&created.key, &PageRequest::all())
        .await
        .expect("comments");
    assert_eq!(comments_after, comments_before, "no comment was added");
    assert_eq!(
        all_activity(&*store).await,
        activity_before,
        "no audit row was added"
    );

    let mut missing = v2.clone();
    missing.id = uuid().into();
    let err = store
        .update_issue(IssueWrite {
            issue: missing,
            expected: Version(2),
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect_err("updating a missing issue fails");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

fn comment(key: &IssueKey, body: &str, when: Timestamp) -> NewComment {
    NewComment {
        id: CommentId::from_uuid(uuid()),
        issue_key: key.clone(),
        author_agent_id: None,
        author: "board:test".to_owned(),
        kind: CommentKind::Comment,
        body: body.to_owned(),
        created_at: when,
    }
}

/// SPEC §2: an open issue's title is unique (case-insensitive, trimmed, inner spaces
/// collapsed): a duplicate is `DuplicateTitle` with the existing key. Once the first is
/// terminal the title is free again; reopening it while another holds the title is refused.
pub async fn duplicate_open_title<S>(store: Arc<S>)
where
    S: IssueStore + ?Sized,
{
    let first = store
        .create_issue(new_issue("Fix login", at(0)))
        .await
        .expect("create");
    let err = store
        .create_issue(new_issue("  fix   LOGIN ", at(1)))
        .await
        .expect_err("duplicate open title");
    match err {
        StoreError::DuplicateTitle { existing_key } => assert_eq!(existing_key, first.key),
        other => panic!("expected DuplicateTitle, got {other:?}"),
    }
    assert_eq!(
        store
            .open_issue_with_title(&title("FIX LOGIN").normalized())
            .await
            .expect("lookup"),
        Some(first.key.clone())
    );
    // The refused creation consumed no key.
    let other = store
        .create_issue(new_issue("Something else", at(2)))
        .await
        .expect("create");
    assert_eq!(
        other.key.as_str(),
        "MESA-2",
        "a refused create gives its key back"
    );

    // Renaming another issue onto the title is refused too.
    let mut renamed = other.clone();
    renamed.title = title("Fix Login");
    let err = store
        .update_issue(IssueWrite {
            issue: renamed,
            expected: other.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect_err("rename onto an open title");
    assert!(
        matches!(err, StoreError::DuplicateTitle { ref existing_key } if *existing_key == first.key),
        "{err:?}"
    );

    let mut done = first.clone();
    done.status = IssueStatus::Done;
    done.completed_at = Some(at(3));
    done.status_changed_at = at(3);
    let done = store
        .update_issue(IssueWrite {
            issue: done,
            expected: first.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("close the first");
    assert_eq!(
        store
            .open_issue_with_title("fix login")
            .await
            .expect("lookup"),
        None
    );
    let second = store
        .create_issue(new_issue("Fix login", at(4)))
        .await
        .expect("the title is free once the first is terminal");
    assert_ne!(second.key, first.key);

    let mut reopened = done.clone();
    reopened.status = IssueStatus::Todo;
    reopened.completed_at = None;
    let err = store
        .update_issue(IssueWrite {
            issue: reopened,
            expected: done.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect_err("reopening onto a held title");
    match err {
        StoreError::DuplicateTitle { existing_key } => assert_eq!(existing_key, second.key),
        other => panic!("expected DuplicateTitle, got {other:?}"),
    }
}

/// Checkout details of SPEC §2.2: a repeat by the holder is idempotent (`changed: false`, no
/// audit row); a status outside the expected set is a conflict; started_at is kept from the
/// first checkout; a released issue can be claimed by someone else; unknown keys are NotFound.
pub async fn checkout_rules<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + SystemStore + ?Sized,
{
    assert!(agents.len() >= 2, "checkout_rules needs 2 agents");
    let (a, b) = (agents[0], agents[1]);
    let issue = store
        .create_issue(new_issue("Checkout rules", at(0)))
        .await
        .expect("create");
    let req = |agent: AgentId, expected: Vec<IssueStatus>, when: Timestamp| CheckoutRequest {
        key: issue.key.clone(),
        agent_id: agent,
        run_id: None,
        expected,
        now: when,
        activity: vec![activity(
            "issue.checkout",
            "issue",
            issue.key.as_str(),
            when,
        )],
    };
    let todo = vec![IssueStatus::Todo];

    let err = store
        .checkout_issue(req(a, vec![IssueStatus::Blocked], at(1)))
        .await
        .expect_err("todo is not in the expected set");
    assert!(
        matches!(
            err,
            StoreError::CheckoutConflict {
                status: IssueStatus::Todo,
                assignee: None,
                ..
            }
        ),
        "{err:?}"
    );

    let first = store
        .checkout_issue(req(a, todo.clone(), at(2)))
        .await
        .expect("claim");
    assert!(first.changed);
    assert_eq!(first.issue.started_at, Some(at(2)));
    assert_eq!(first.issue.status_changed_at, at(2));
    let log_len = all_activity(&*store).await.len();

    let again = store
        .checkout_issue(req(a, todo.clone(), at(3)))
        .await
        .expect("a repeat by the holder is idempotent");
    assert!(!again.changed);
    assert_eq!(
        again.issue, first.issue,
        "an idempotent repeat changes nothing"
    );
    assert_eq!(
        all_activity(&*store).await.len(),
        log_len,
        "and writes no audit row"
    );

    let err = store
        .checkout_issue(req(
            b,
            vec![IssueStatus::Todo, IssueStatus::InProgress],
            at(4),
        ))
        .await
        .expect_err("someone else holds it");
    assert!(
        matches!(err, StoreError::CheckoutConflict { status: IssueStatus::InProgress, assignee: Some(h), .. } if h == a),
        "{err:?}"
    );

    // Release: back to todo, unassigned; then b claims it and started_at stays the first one.
    let mut released = first.issue.clone();
    released.status = IssueStatus::Todo;
    released.assignee_id = None;
    released.status_changed_at = at(5);
    let released = store
        .update_issue(IssueWrite {
            issue: released,
            expected: first.issue.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("release");
    let by_b = store
        .checkout_issue(req(b, todo, at(6)))
        .await
        .expect("b claims the released issue");
    assert!(by_b.changed);
    assert_eq!(by_b.issue.assignee_id, Some(b));
    assert_eq!(
        by_b.issue.started_at,
        Some(at(2)),
        "started_at is the first checkout"
    );
    assert_eq!(by_b.issue.version, released.version.next());

    let err = store
        .checkout_issue(CheckoutRequest {
            key: IssueKey::parse("MESA-999").expect("valid"),
            ..req(a, vec![IssueStatus::Todo], at(7))
        })
        .await
        .expect_err("unknown issue");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// The issue list's filters, counts, full-text search, children, labels and comments.
pub async fn issue_queries<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + LabelStore + ?Sized,
{
    assert!(!agents.is_empty(), "issue_queries needs 1 agent");
    let agent = agents[0];
    let label = store
        .create_label(Created::new(
            Label {
                id: LabelId::from_uuid(uuid()),
                name: Name::parse("Backend").expect("valid"),
                color: Color::parse("#336699").expect("valid"),
                created_at: at(0),
                updated_at: at(0),
                version: Version::FIRST,
            },
            Vec::new(),
        ))
        .await
        .expect("label");
    let dup = store
        .create_label(Created::new(
            Label {
                id: LabelId::from_uuid(uuid()),
                name: Name::parse("backend").expect("valid"),
                color: Color::parse("#000000").expect("valid"),
                created_at: at(0),
                updated_at: at(0),
                version: Version::FIRST,
            },
            Vec::new(),
        ))
        .await
        .expect_err("label names are unique, case-insensitively");
    assert!(matches!(dup, StoreError::Conflict { .. }), "{dup:?}");

    let parent = store
        .create_issue(new_issue("Authentication epic", at(1)))
        .await
        .expect("parent");
    let mut child = new_issue("Password reset emails", at(2));
    child.parent_key = Some(parent.key.clone());
    child.labels = vec![label.id];
    child.assignee_id = Some(agent);
    child.description = Markdown::parse("Send a signed link by email").expect("valid");
    let child = store.create_issue(child).await.expect("child");
    assert_eq!(child.labels, vec![label.id]);
    let mut other = new_issue("Dashboard colors", at(3));
    other.labels = vec![LabelId::from_uuid(uuid())];
    let err = store.create_issue(other).await.expect_err("unknown label");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let mut orphan = new_issue("Orphan", at(3));
    orphan.parent_key = Some(IssueKey::parse("MESA-4242").expect("valid"));
    let err = store
        .create_issue(orphan)
        .await
        .expect_err("unknown parent");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let other = store
        .create_issue(new_issue("Dashboard colors", at(3)))
        .await
        .expect("other");

    let list = |filter: IssueFilter| {
        let store = &store;
        async move {
            let page = store
                .list_issues(&filter, &PageRequest::all())
                .await
                .expect("list");
            let count = store.count_issues(&filter).await.expect("count");
            assert_eq!(count, page.items.len() as u64, "count agrees with the list");
            page.items.into_iter().map(|i| i.key).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(IssueFilter::default()).await,
        vec![other.key.clone(), child.key.clone(), parent.key.clone()]
    );
    assert_eq!(
        list(IssueFilter {
            label: Some(label.id),
            ..IssueFilter::default()
        })
        .await,
        vec![child.key.clone()]
    );
    assert_eq!(
        list(IssueFilter {
            assignee: Some(agent),
            ..IssueFilter::default()
        })
        .await,
        vec![child.key.clone()]
    );
    assert_eq!(
        list(IssueFilter {
            parent: Some(parent.key.clone()),
            ..IssueFilter::default()
        })
        .await,
        vec![child.key.clone()]
    );
    assert_eq!(
        list(IssueFilter {
            text: Some("EMAIL".to_owned()),
            ..IssueFilter::default()
        })
        .await,
        vec![child.key.clone()],
        "text search matches word prefixes, case-insensitively, in the description too"
    );
    assert_eq!(
        list(IssueFilter {
            text: Some(r#""dash* (:^"#.to_owned()),
            ..IssueFilter::default()
        })
        .await,
        vec![other.key.clone()],
        "FTS syntax in the text is treated as words"
    );
    assert!(
        list(IssueFilter {
            text: Some("***".to_owned()),
            ..IssueFilter::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        list(IssueFilter {
            statuses: vec![IssueStatus::Done, IssueStatus::Todo],
            ..IssueFilter::default()
        })
        .await
        .len(),
        3
    );
    let children = store.children(&parent.key).await.expect("children");
    assert_eq!(
        children.iter().map(|c| &c.key).collect::<Vec<_>>(),
        [&child.key]
    );

    // Soft-deleted issues leave lists unless asked for.
    let mut deleted = other.clone();
    deleted.deleted = true;
    store
        .update_issue(IssueWrite {
            issue: deleted,
            expected: other.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("soft delete");
    assert_eq!(list(IssueFilter::default()).await.len(), 2);
    assert_eq!(
        list(IssueFilter {
            include_deleted: true,
            ..IssueFilter::default()
        })
        .await
        .len(),
        3
    );

    let found = store.search_issues("passw", 10).await.expect("search");
    assert_eq!(
        found.first().map(|i| &i.key),
        Some(&child.key),
        "prefix search"
    );
    let found = store
        .search_issues("authentication reset", 10)
        .await
        .expect("search");
    assert_eq!(found.len(), 2, "any word matches for near-duplicate search");
    assert!(
        store
            .search_issues("\"", 10)
            .await
            .expect("search")
            .is_empty()
    );

    // Comments: oldest first with a cursor; recent_comments returns the newest, oldest first.
    for i in 0..7 {
        store
            .add_comment(
                comment(&child.key, &format!("comment {i}"), at(10 + i)),
                Vec::new(),
            )
            .await
            .expect("comment");
    }
    let first_page = store
        .comments(&child.key, &PageRequest::new(Some(4), None))
        .await
        .expect("comments");
    assert_eq!(first_page.items.len(), 4);
    let second_page = store
        .comments(
            &child.key,
            &PageRequest::new(Some(4), first_page.next_cursor),
        )
        .await
        .expect("comments");
    assert_eq!(second_page.items.len(), 3);
    assert!(second_page.next_cursor.is_none());
    let bodies: Vec<_> = first_page
        .items
        .iter()
        .chain(&second_page.items)
        .map(|c| c.body.clone())
        .collect();
    assert_eq!(
        bodies,
        (0..7).map(|i| format!("comment {i}")).collect::<Vec<_>>()
    );
    let recent = store.recent_comments(&child.key, 3).await.expect("recent");
    assert_eq!(
        recent.iter().map(|c| c.body.as_str()).collect::<Vec<_>>(),
        ["comment 4", "comment 5", "comment 6"]
    );
    let err = store
        .add_comment(
            comment(&IssueKey::parse("MESA-4242").expect("valid"), "x", at(20)),
            Vec::new(),
        )
        .await
        .expect_err("comment on a missing issue");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    // Deleting a label detaches it.
    store
        .delete_label(label.id, Vec::new())
        .await
        .expect("delete label");
    let child_after = store.issue(&child.key).await.expect("read");
    assert!(child_after.labels.is_empty());
    assert!(
        child_after.version > child.version,
        "detaching moves the version"
    );

    // A parent link may not form a cycle.
    let mut loop_parent = store.issue(&parent.key).await.expect("read");
    loop_parent.parent_key = Some(child.key.clone());
    let err = store
        .update_issue(IssueWrite {
            expected: loop_parent.version,
            issue: loop_parent,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect_err("cycle");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    store
        .purge_issue(&child.key, Vec::new())
        .await
        .expect("purge");
    assert!(matches!(
        store.issue(&child.key).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .comments(&child.key, &PageRequest::all())
            .await
            .expect("comments")
            .items
            .is_empty(),
        "purging removes the comments"
    );
}

// ---------------------------------------------------------------------------------------------
// Runs and budgets
// ---------------------------------------------------------------------------------------------

fn new_run(
    agent: AgentId,
    issue: Option<&IssueKey>,
    mode: RunMode,
    trigger: RunTrigger,
) -> NewRunRecord {
    NewRunRecord {
        id: uuid().into(),
        agent_id: agent,
        issue_key: issue.cloned(),
        mode,
        trigger,
        runner: RunnerKind::Noop,
        model: String::new(),
        priority: 0,
        not_before: None,
        queued_at: at(0),
        activity: vec![activity("run.queued", "run", "", at(0))],
    }
}

fn start(run: RunId, reserve: MicroUsd, tokens: i64) -> StartRunRequest {
    StartRunRequest {
        run_id: run,
        node_id: "node-a".to_owned(),
        now: at(HOUR),
        lease_expires_at: at(HOUR + MINUTE),
        reserve_usd: reserve,
        reserve_tokens: tokens,
        day_start: BASE.day_start(0),
        prompt: Some("do the work".to_owned()),
        activity: vec![activity("run.started", "run", &run.to_string(), at(HOUR))],
    }
}

fn finish(run: RunId, cost: MicroUsd, tokens: i64) -> FinishRunRecord {
    FinishRunRecord {
        run_id: run,
        status: RunStatus::Succeeded,
        exit_code: Some(0),
        failure_reason: None,
        stdout: Some("ok".to_owned()),
        diff: None,
        diff_stat: None,
        usage: TokenUsage {
            input_tokens: tokens,
            ..TokenUsage::default()
        },
        cost_usd: cost,
        cost_source: CostSource::Parsed,
        num_turns: Some(3),
        finished_at: at(2 * HOUR),
        cost_event_id: CostEventId::from_uuid(uuid()),
        activity: vec![activity(
            "run.finished",
            "run",
            &run.to_string(),
            at(2 * HOUR),
        )],
    }
}

fn policy(scope: BudgetScope, cost: MicroUsd, tokens: i64) -> BudgetPolicy {
    BudgetPolicy {
        id: BudgetPolicyId::from_uuid(uuid()),
        scope,
        daily_token_limit: tokens,
        daily_cost_limit_usd: cost,
        per_run_reserve_usd: None,
        active: true,
        updated_at: at(0),
        version: Version::FIRST,
    }
}

/// Starts every run concurrently; returns the started ones and the budget refusals.
async fn start_all<S>(
    store: &Arc<S>,
    runs: Vec<RunId>,
    reserve: MicroUsd,
) -> (Vec<RunId>, Vec<BudgetScopeKind>)
where
    S: RunStore + ?Sized + 'static,
{
    let mut handles = Vec::new();
    for run in runs {
        let store = Arc::clone(store);
        handles.push(tokio::spawn(async move {
            (run, store.start_run(start(run, reserve, 0)).await)
        }));
    }
    let mut started = Vec::new();
    let mut refused = Vec::new();
    for handle in handles {
        match handle.await.expect("start task panicked") {
            (run, Ok(r)) => {
                assert_eq!(r.status, RunStatus::Running);
                assert_eq!(r.cost_reserved_usd, reserve);
                started.push(run);
            }
            (_, Err(StoreError::BudgetExceeded { scope })) => refused.push(scope),
            (run, Err(other)) => panic!("start of {run} failed unexpectedly: {other:?}"),
        }
    }
    (started, refused)
}

/// SPEC §6.2: 32 concurrent starts against an agent's daily cost limit that fits exactly five
/// reservations (after today's spend; yesterday's does not count): five start, 27 are refused
/// with `BudgetExceeded { Agent }` and stay queued. Finishing one releases its reservation.
pub async fn budget_agent_limit<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + ?Sized + 'static,
{
    assert!(!agents.is_empty(), "budget_agent_limit needs 1 agent");
    let agent = agents[0];
    let day_start = BASE.day_start(0);
    store
        .put_budget_policy(policy(BudgetScope::Agent(agent), usd(5.5), 0), Vec::new())
        .await
        .expect("policy");
    for (when, cost) in [
        (day_start.as_millis() - HOUR, 100.0),
        (BASE.as_millis(), 0.5),
    ] {
        store
            .record_usage(UsageRecord {
                event_id: CostEventId::from_uuid(uuid()),
                agent_id: agent,
                run_id: None,
                usage: TokenUsage::default(),
                cost_usd: usd(cost),
                source: CostSource::Reported,
                at: Timestamp::from_millis(when),
                activity: Vec::new(),
            })
            .await
            .expect("usage");
    }
    let issues = create_issues(&*store, 32, "Budgeted").await;
    let mut runs = Vec::new();
    for issue in &issues {
        let queued = store
            .enqueue_run(new_run(
                agent,
                Some(&issue.key),
                RunMode::Task,
                RunTrigger::Assigned,
            ))
            .await
            .expect("enqueue");
        assert!(!queued.merged);
        runs.push(queued.run.id);
    }

    let (started, refused) = start_all(&store, runs.clone(), usd(1.0)).await;
    assert_eq!(started.len(), 5, "exactly five reservations fit");
    assert_eq!(refused.len(), 27);
    assert!(refused.iter().all(|s| *s == BudgetScopeKind::Agent));
    let spend = store
        .spend(BudgetScope::Agent(agent), day_start)
        .await
        .expect("spend");
    assert_eq!(spend.cost_usd, usd(0.5), "only today's spend counts");
    assert_eq!(spend.reserved_usd, usd(5.0));
    for run in runs.iter().filter(|r| !started.contains(r)) {
        assert_eq!(
            store.run(*run).await.expect("run").status,
            RunStatus::Queued,
            "a refused start changes nothing"
        );
    }
    let started_issue = store
        .run(started[0])
        .await
        .expect("run")
        .issue_key
        .expect("task runs have an issue");
    assert_eq!(
        store.issue(&started_issue).await.expect("issue").run_count,
        1,
        "starting a run counts it on its issue"
    );

    // Finishing one (tokens used, no cost) releases its reservation: exactly one more fits,
    // landing on the limit itself (0.5 spent + 4 reserved + 1 = 5.5).
    let done = store
        .finish_run(finish(started[0], MicroUsd::ZERO, 100))
        .await
        .expect("finish");
    assert_eq!(done.cost_reserved_usd, MicroUsd::ZERO);
    let waiting: Vec<RunId> = runs
        .iter()
        .copied()
        .filter(|r| !started.contains(r))
        .collect();
    let (again, refused) = start_all(&store, waiting, usd(1.0)).await;
    assert_eq!(again.len(), 1, "a released reservation makes room for one");
    assert_eq!(refused.len(), 26);
    let spend = store
        .spend(BudgetScope::Agent(agent), day_start)
        .await
        .expect("spend");
    assert_eq!(spend.tokens, 100);
    assert_eq!(spend.reserved_usd, usd(5.0));
}

/// SPEC §6.2: the same race against the org-wide limit, with 32 different agents.
pub async fn budget_org_limit<S>(store: Arc<S>, agents: &[AgentId])
where
    S: RunStore + ?Sized + 'static,
{
    assert!(agents.len() >= 32, "budget_org_limit needs 32 agents");
    store
        .put_budget_policy(policy(BudgetScope::Org, usd(5.0), 0), Vec::new())
        .await
        .expect("org policy");
    let mut runs = Vec::new();
    for agent in agents.iter().take(32) {
        let queued = store
            .enqueue_run(new_run(
                *agent,
                None,
                RunMode::Heartbeat,
                RunTrigger::Heartbeat,
            ))
            .await
            .expect("enqueue");
        runs.push(queued.run.id);
    }
    let (started, refused) = start_all(&store, runs, usd(1.0)).await;
    assert_eq!(
        started.len(),
        5,
        "exactly five reservations fit the org limit"
    );
    assert_eq!(refused.len(), 27);
    assert!(refused.iter().all(|s| *s == BudgetScopeKind::Org));
    let spend = store
        .spend(BudgetScope::Org, BASE.day_start(0))
        .await
        .expect("spend");
    assert_eq!(spend.reserved_usd, usd(5.0));
    let (running, _) = store.running_counts(agents[0]).await.expect("counts");
    assert_eq!(running, 5);
}

/// Token limits, unlimited (zero) limits, inactive policies, and replacing a policy.
pub async fn budget_tokens_and_policies<S>(store: Arc<S>, agents: &[AgentId])
where
    S: RunStore + ?Sized + 'static,
{
    assert!(
        agents.len() >= 4,
        "budget_tokens_and_policies needs 4 agents"
    );
    let org = store
        .put_budget_policy(policy(BudgetScope::Org, MicroUsd::ZERO, 10_000), Vec::new())
        .await
        .expect("org policy");
    assert_eq!(org.version, Version::FIRST);
    let inactive = BudgetPolicy {
        active: false,
        ..policy(BudgetScope::Agent(agents[0]), usd(0.01), 1)
    };
    store
        .put_budget_policy(inactive, Vec::new())
        .await
        .expect("agent policy");
    let mut results = Vec::new();
    for agent in agents.iter().take(3) {
        let run = store
            .enqueue_run(new_run(*agent, None, RunMode::Cron, RunTrigger::Cron))
            .await
            .expect("enqueue")
            .run
            .id;
        // A huge cost reservation is fine: the cost limit is zero (unlimited).
        results.push(store.start_run(start(run, usd(1000.0), 4_000)).await);
    }
    assert!(
        results[0].is_ok(),
        "the inactive agent policy is ignored: {:?}",
        results[0]
    );
    assert!(results[1].is_ok(), "{:?}", results[1]);
    assert!(
        matches!(
            results[2],
            Err(StoreError::BudgetExceeded {
                scope: BudgetScopeKind::Org
            })
        ),
        "the third 4,000-token reservation passes 10,000: {:?}",
        results[2]
    );

    // Replacing the org policy keeps one row per scope and moves its version.
    let replaced = store
        .put_budget_policy(policy(BudgetScope::Org, MicroUsd::ZERO, 0), Vec::new())
        .await
        .expect("replace");
    assert_eq!(replaced.id, org.id, "one policy per scope");
    assert_eq!(replaced.version, Version(2));
    assert_eq!(
        store.budget_policy(BudgetScope::Org).await.expect("read"),
        Some(replaced)
    );
    assert_eq!(
        store
            .budget_policy(BudgetScope::Agent(agents[3]))
            .await
            .expect("read"),
        None
    );
}

/// SPEC §6.1: a wake-up for an (agent, issue, mode) that already has a queued run merges into
/// it (the trigger list grows without repeats, the higher priority wins), also when 20 wake-ups
/// race; other pairs get their own run. Queue order is priority, trigger rank, age.
/// A new issue's wake-up is queued by the creation itself, under the allocated key, with its
/// audit row filed under the issue — for concurrent creations (group commits) too.
pub async fn creation_queues_its_wake_up<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + SystemStore + ?Sized + 'static,
{
    assert!(
        !agents.is_empty(),
        "creation_queues_its_wake_up needs 1 agent"
    );
    let agent = agents[0];
    let mut handles = Vec::new();
    for i in 0..12 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut new = new_issue(&format!("Wake on creation {i}"), at(i));
            new.assignee_id = Some(agent);
            let mut wake = new_run(agent, None, RunMode::Task, RunTrigger::Assigned);
            wake.activity = vec![activity("run.queued", "issue", "", at(i))];
            new.wake = Some(wake.clone());
            let issue = store.create_issue(new).await.expect("create");
            (issue, wake.id)
        }));
    }
    for handle in handles {
        let (issue, run_id) = handle.await.expect("create task panicked");
        let run = store.run(run_id).await.expect("the wake-up is stored");
        assert_eq!(run.status, RunStatus::Queued);
        assert_eq!(run.issue_key.as_ref(), Some(&issue.key));
        assert_eq!(run.agent_id, agent);
        let rows = all_activity(&*store).await;
        assert!(
            rows.iter()
                .any(|r| r.action == "run.queued" && r.entity_id == issue.key.as_str()),
            "the wake-up's audit row is filed under {}",
            issue.key
        );
    }
}

pub async fn run_dedup_merges_triggers<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + ?Sized + 'static,
{
    assert!(
        agents.len() >= 2,
        "run_dedup_merges_triggers needs 2 agents"
    );
    let (a, b) = (agents[0], agents[1]);
    let issues = create_issues(&*store, 3, "Wake me").await;
    let key = &issues[0].key;

    let first = store
        .enqueue_run(new_run(a, Some(key), RunMode::Task, RunTrigger::Assigned))
        .await
        .expect("enqueue");
    assert!(!first.merged);
    assert_eq!(first.run.triggers, [RunTrigger::Assigned]);
    let mut urgent = new_run(a, Some(key), RunMode::Task, RunTrigger::Comment);
    urgent.priority = 4;
    let merged = store.enqueue_run(urgent).await.expect("enqueue");
    assert!(merged.merged);
    assert_eq!(merged.run.id, first.run.id);
    assert_eq!(
        merged.run.triggers,
        [RunTrigger::Assigned, RunTrigger::Comment]
    );
    assert_eq!(merged.run.priority, 4, "the higher priority is kept");
    let lower = store
        .enqueue_run(new_run(a, Some(key), RunMode::Task, RunTrigger::Assigned))
        .await
        .expect("enqueue");
    assert!(lower.merged);
    assert_eq!(lower.run.triggers.len(), 2, "no repeated trigger");
    assert_eq!(lower.run.priority, 4);

    // Concurrent wake-ups for one pair: one run.
    let mut handles = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        let key = issues[1].key.clone();
        handles.push(tokio::spawn(async move {
            let trigger = if i % 2 == 0 {
                RunTrigger::Assigned
            } else {
                RunTrigger::Manual
            };
            store
                .enqueue_run(new_run(b, Some(&key), RunMode::Task, trigger))
                .await
                .expect("enqueue")
        }));
    }
    let mut ids = BTreeSet::new();
    let mut merges = 0;
    for handle in handles {
        let outcome = handle.await.expect("enqueue task panicked");
        ids.insert(outcome.run.id);
        merges += usize::from(outcome.merged);
    }
    assert_eq!(ids.len(), 1, "one queued run per (agent, issue, mode)");
    assert_eq!(merges, 19);
    let run = store.run(*ids.first().expect("one")).await.expect("run");
    assert_eq!(run.triggers.len(), 2);

    // Other pairs are separate runs; the queue is ordered priority, rank, age.
    let review = store
        .enqueue_run(new_run(
            b,
            Some(&issues[2].key),
            RunMode::Review,
            RunTrigger::ReviewRequested,
        ))
        .await
        .expect("enqueue");
    assert!(!review.merged);
    let mut later = new_run(a, None, RunMode::Heartbeat, RunTrigger::Heartbeat);
    later.not_before = Some(at(10 * HOUR));
    store.enqueue_run(later).await.expect("enqueue");
    let queue = store.queued_runs(at(HOUR), 100).await.expect("queue");
    assert_eq!(
        queue.iter().map(|r| r.id).collect::<Vec<_>>(),
        [first.run.id, review.run.id, run.id],
        "priority first, then reviews before new work; not_before in the future waits"
    );
    assert_eq!(
        store
            .queued_runs(at(11 * HOUR), 100)
            .await
            .expect("queue")
            .len(),
        4
    );
    let listed = store
        .list_runs(
            &RunFilter {
                agent: Some(b),
                ..RunFilter::default()
            },
            &PageRequest::all(),
        )
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 2);

    // Once started, a new wake-up queues a fresh run (one follow-up).
    store
        .start_run(start(first.run.id, usd(0.1), 0))
        .await
        .expect("start");
    let follow_up = store
        .enqueue_run(new_run(a, Some(key), RunMode::Task, RunTrigger::Comment))
        .await
        .expect("enqueue");
    assert!(!follow_up.merged);
    assert_ne!(follow_up.run.id, first.run.id);
}

/// A run's life: start refuses a non-queued run, finish records the figures and a cost event,
/// releases the reservation and revokes the run's keys, and refuses a second finish; leases
/// renew and expire; usage reported during a run adds to it.
pub async fn run_lifecycle<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + KeyStore + ?Sized + 'static,
{
    assert!(!agents.is_empty(), "run_lifecycle needs 1 agent");
    let agent = agents[0];
    let issue = store
        .create_issue(new_issue("Run lifecycle", at(0)))
        .await
        .expect("create");
    let run = store
        .enqueue_run(new_run(
            agent,
            Some(&issue.key),
            RunMode::Task,
            RunTrigger::Assigned,
        ))
        .await
        .expect("enqueue")
        .run;
    let started = store
        .start_run(start(run.id, usd(2.0), 500))
        .await
        .expect("start");
    assert_eq!(started.node_id.as_deref(), Some("node-a"));
    assert_eq!(started.prompt.as_deref(), Some("do the work"));
    assert_eq!(started.tokens_reserved, 500);
    let err = store
        .start_run(start(run.id, usd(2.0), 0))
        .await
        .expect_err("a running run cannot start again");
    assert!(matches!(err, StoreError::RunState { .. }), "{err:?}");

    store
        .set_run_process(run.id, Some(4242), Some(4242))
        .await
        .expect("process");
    store
        .set_run_workspace(
            run.id,
            Some("/tmp/wt".to_owned()),
            Some("mesa/MESA-1".to_owned()),
            Some("abc123".to_owned()),
            Some("the prompt for this worktree".to_owned()),
        )
        .await
        .expect("workspace");
    let stored = store.run(run.id).await.expect("run");
    assert_eq!(
        stored.prompt.as_deref(),
        Some("the prompt for this worktree")
    );
    assert_eq!(stored.worktree_path.as_deref(), Some("/tmp/wt"));
    assert_eq!(stored.base_commit.as_deref(), Some("abc123"));
    assert_eq!(
        store
            .issue(&issue.key)
            .await
            .expect("issue")
            .branch
            .as_deref(),
        Some("mesa/MESA-1"),
        "the issue records its branch"
    );

    // Leases.
    assert_eq!(
        store
            .renew_leases("node-a", at(3 * HOUR))
            .await
            .expect("renew"),
        1
    );
    assert_eq!(
        store
            .renew_leases("node-b", at(3 * HOUR))
            .await
            .expect("renew"),
        0
    );
    assert!(
        store
            .stale_runs(at(2 * HOUR), None)
            .await
            .expect("stale")
            .is_empty()
    );
    assert_eq!(
        store
            .stale_runs(at(3 * HOUR), None)
            .await
            .expect("stale")
            .len(),
        1
    );
    assert_eq!(
        store
            .stale_runs(at(2 * HOUR), Some("node-a"))
            .await
            .expect("stale")
            .len(),
        1,
        "all running runs of a restarted node"
    );

    // A run key, and usage reported during the run.
    let key = store
        .create_key(NewApiKey {
            key: api_key(ApiKeyKind::Run, Some(agent), Some(run.id), "run key"),
            activity: Vec::new(),
        })
        .await
        .expect("run key");
    store
        .record_usage(UsageRecord {
            event_id: CostEventId::from_uuid(uuid()),
            agent_id: agent,
            run_id: Some(run.id),
            usage: TokenUsage {
                output_tokens: 10,
                ..TokenUsage::default()
            },
            cost_usd: usd(0.25),
            source: CostSource::Reported,
            at: at(HOUR + 1),
            activity: Vec::new(),
        })
        .await
        .expect("usage");

    let done = store
        .finish_run(finish(run.id, usd(0.5), 1000))
        .await
        .expect("finish");
    assert_eq!(done.status, RunStatus::Succeeded);
    assert_eq!(
        done.cost_usd,
        usd(0.75),
        "reported and final figures add up"
    );
    assert_eq!(done.usage.total(), 1010);
    assert_eq!(done.cost_reserved_usd, MicroUsd::ZERO);
    assert_eq!(done.tokens_reserved, 0);
    assert_eq!(done.pid, None);
    assert_eq!(done.worktree_path.as_deref(), Some("/tmp/wt"));
    let revoked = store
        .key_by_hash(&key.hash)
        .await
        .expect("key")
        .expect("exists");
    assert_eq!(
        revoked.revoked_at,
        Some(at(2 * HOUR)),
        "a run key dies with its run"
    );
    let spend = store
        .spend(BudgetScope::Agent(agent), BASE.day_start(0))
        .await
        .expect("spend");
    assert_eq!(spend.cost_usd, usd(0.75));
    assert_eq!(spend.tokens, 1010);
    assert_eq!(spend.reserved_usd, MicroUsd::ZERO);
    assert_eq!(
        store.recent_run_costs(agent, 20).await.expect("costs"),
        [usd(0.75)]
    );
    let err = store
        .finish_run(finish(run.id, usd(0.5), 0))
        .await
        .expect_err("finishing twice");
    assert!(matches!(err, StoreError::RunState { .. }), "{err:?}");
    assert_eq!(
        store.run(run.id).await.expect("run").cost_usd,
        usd(0.75),
        "a refused finish changes nothing"
    );

    // A queued run may be finished directly (cancelled before it started), with no cost event.
    let queued = store
        .enqueue_run(new_run(
            agent,
            None,
            RunMode::Heartbeat,
            RunTrigger::Heartbeat,
        ))
        .await
        .expect("enqueue")
        .run;
    let cancelled = store
        .finish_run(FinishRunRecord {
            status: RunStatus::Cancelled,
            ..finish(queued.id, MicroUsd::ZERO, 0)
        })
        .await
        .expect("cancel a queued run");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!(
        store
            .spend(BudgetScope::Agent(agent), BASE.day_start(0))
            .await
            .expect("spend")
            .cost_usd,
        usd(0.75)
    );
    assert!(matches!(
        store.run(RunId::from_uuid(uuid())).await,
        Err(StoreError::NotFound { .. })
    ));

    // Purging issues takes their queued runs along (runs that ran stay, without the issue).
    let doomed = create_issues(&*store, 2, "Purged").await;
    let mut queued = Vec::new();
    for issue in &doomed {
        queued.push(
            store
                .enqueue_run(new_run(
                    agent,
                    Some(&issue.key),
                    RunMode::Task,
                    RunTrigger::Assigned,
                ))
                .await
                .expect("enqueue")
                .run
                .id,
        );
    }
    store
        .purge_issue(&issue.key, Vec::new())
        .await
        .expect("purge the issue whose run finished");
    for issue in &doomed {
        store
            .purge_issue(&issue.key, Vec::new())
            .await
            .expect("purge an issue with a queued run");
    }
    for run in queued {
        assert!(matches!(
            store.run(run).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    let kept = store.run(run.id).await.expect("a finished run stays");
    assert_eq!(kept.issue_key, None);
}

fn api_key(kind: ApiKeyKind, agent: Option<AgentId>, run: Option<RunId>, name: &str) -> ApiKey {
    let id = ApiKeyId::from_uuid(uuid());
    ApiKey {
        id,
        kind,
        prefix: "mesa_1234567".to_owned(),
        hash: format!("{:0>64}", id.as_uuid().simple()),
        agent_id: agent,
        run_id: run,
        name: name.to_owned(),
        scopes: Vec::new(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        created_at: at(0),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, settings, the audit log, maintenance
// ---------------------------------------------------------------------------------------------

/// Run output is appended (head and tail kept past the cap) while a run is queued or running,
/// kept when the run finishes without new output, and refused after; cancelling queued runs
/// touches only runs still queued and revokes their keys.
pub async fn run_output_and_queued_cancel<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + KeyStore + ?Sized + 'static,
{
    let (a, b) = (agents[0], agents[1]);
    let issues = create_issues(&*store, 1, "Output").await;
    let key = &issues[0].key;
    let queued = store
        .enqueue_run(new_run(a, Some(key), RunMode::Task, RunTrigger::Assigned))
        .await
        .expect("enqueue")
        .run;
    let running = store
        .enqueue_run(new_run(
            b,
            Some(key),
            RunMode::Review,
            RunTrigger::ReviewRequested,
        ))
        .await
        .expect("enqueue")
        .run;
    store
        .start_run(start(running.id, MicroUsd::ZERO, 0))
        .await
        .expect("start");

    assert_eq!(
        store
            .append_run_output(running.id, "line 1\n", 1000)
            .await
            .expect("append"),
        7
    );
    store
        .append_run_output(running.id, "line 2\n", 1000)
        .await
        .expect("append");
    assert_eq!(
        store.run(running.id).await.expect("run").stdout.as_deref(),
        Some("line 1\nline 2\n")
    );
    // Past the cap: the head and the tail stay.
    store
        .append_run_output(queued.id, "0123456789", 10)
        .await
        .expect("append");
    store
        .append_run_output(queued.id, "abcdef", 10)
        .await
        .expect("append");
    let capped = store
        .run(queued.id)
        .await
        .expect("run")
        .stdout
        .expect("output");
    assert!(
        capped.starts_with("01234") && capped.ends_with("bcdef"),
        "{capped:?}"
    );
    assert!(
        !capped.contains("56789a"),
        "the middle is elided: {capped:?}"
    );

    let run_key = store
        .create_key(crate::NewApiKey {
            key: api_key(ApiKeyKind::Run, Some(a), Some(queued.id), "run key"),
            activity: Vec::new(),
        })
        .await
        .expect("run key");

    // Cancel the issue's queued runs: the running one is left to the scheduler.
    let cancel = |runs: crate::QueuedRuns| crate::CancelQueuedRuns {
        runs,
        reason: "issue finished".to_owned(),
        at: at(HOUR),
        activity: vec![activity("run.cancelled", "issue", key.as_str(), at(HOUR))],
    };
    let cancelled = store
        .cancel_queued_runs(cancel(crate::QueuedRuns::Issue(key.clone())))
        .await
        .expect("cancel");
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].id, queued.id);
    assert_eq!(cancelled[0].status, RunStatus::Cancelled);
    assert_eq!(cancelled[0].finished_at, Some(at(HOUR)));
    assert_eq!(
        cancelled[0].failure_reason.as_deref(),
        Some("issue finished")
    );
    let revoked = store
        .key_by_hash(&run_key.hash)
        .await
        .expect("key")
        .expect("stored");
    assert_eq!(
        revoked.revoked_at,
        Some(at(HOUR)),
        "its run key dies with it"
    );
    assert!(
        store
            .cancel_queued_runs(cancel(crate::QueuedRuns::Issue(key.clone())))
            .await
            .expect("cancel")
            .is_empty()
    );
    assert!(
        store
            .cancel_queued_runs(cancel(crate::QueuedRuns::Run(running.id)))
            .await
            .expect("cancel")
            .is_empty(),
        "a running run is not cancelled here"
    );
    assert_eq!(
        store.run(running.id).await.expect("run").status,
        RunStatus::Running
    );
    assert!(matches!(
        store.append_run_output(queued.id, "late", 1000).await,
        Err(StoreError::RunState { .. })
    ));
    assert!(matches!(
        store
            .append_run_output(RunId::from_uuid(uuid()), "x", 1000)
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // Finishing without new output keeps what was appended.
    let mut done = finish(running.id, MicroUsd::ZERO, 0);
    done.stdout = None;
    let finished = store.finish_run(done).await.expect("finish");
    assert_eq!(finished.stdout.as_deref(), Some("line 1\nline 2\n"));
}

/// Keys are found by hash, touched, revoked and listed without run keys.
pub async fn keys<S>(store: Arc<S>, agents: &[AgentId])
where
    S: KeyStore + ?Sized,
{
    assert!(!agents.is_empty(), "keys needs 1 agent");
    let board = store
        .create_key(NewApiKey {
            key: api_key(ApiKeyKind::Board, None, None, "ops"),
            activity: Vec::new(),
        })
        .await
        .expect("board token");
    let agent_key = store
        .create_key(NewApiKey {
            key: api_key(ApiKeyKind::Agent, Some(agents[0]), None, "cli"),
            activity: Vec::new(),
        })
        .await
        .expect("agent key");
    let mut same_hash = api_key(ApiKeyKind::Board, None, None, "copy");
    same_hash.hash = board.hash.clone();
    let err = store
        .create_key(NewApiKey {
            key: same_hash,
            activity: Vec::new(),
        })
        .await
        .expect_err("hashes are unique");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    assert_eq!(
        store.key_by_hash(&board.hash).await.expect("lookup"),
        Some(board.clone())
    );
    assert_eq!(store.key_by_hash("nope").await.expect("lookup"), None);
    assert_eq!(
        store.key(board.id).await.expect("lookup by id"),
        Some(board.clone())
    );
    assert_eq!(
        store
            .key(ApiKeyId::from_uuid(uuid()))
            .await
            .expect("lookup by id"),
        None
    );
    store.touch_key(board.id, at(HOUR)).await.expect("touch");
    let touched = store
        .key_by_hash(&board.hash)
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(touched.last_used_at, Some(at(HOUR)));
    store
        .revoke_key(agent_key.id, at(2 * HOUR), Vec::new())
        .await
        .expect("revoke");
    let revoked = store
        .key_by_hash(&agent_key.hash)
        .await
        .expect("lookup")
        .expect("exists");
    assert!(!revoked.is_live(at(3 * HOUR)));
    assert!(matches!(
        store
            .revoke_key(ApiKeyId::from_uuid(uuid()), at(0), Vec::new())
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let all = store.list_keys(None).await.expect("list");
    assert_eq!(all.len(), 2);
    let mine = store.list_keys(Some(agents[0])).await.expect("list");
    assert_eq!(
        mine.iter().map(|k| k.id).collect::<Vec<_>>(),
        [agent_key.id]
    );
}

/// Sessions: stored by hash, touched, taken exactly once under concurrency, purged when
/// expired, and gone with the board token they belong to.
pub async fn sessions<S>(store: Arc<S>)
where
    S: KeyStore + SessionStore + ?Sized + 'static,
{
    let board = store
        .create_key(NewApiKey {
            key: api_key(ApiKeyKind::Board, None, None, "owner"),
            activity: Vec::new(),
        })
        .await
        .expect("board token");
    let session = |hash: &str, one_time: bool, expires: Timestamp| Session {
        hash: hash.to_owned(),
        one_time,
        key_id: board.id,
        csrf: format!("csrf-{hash}"),
        created_at: at(0),
        expires_at: expires,
        last_seen_at: at(0),
    };
    let open = session("s1", false, at(HOUR));
    store.create_session(open.clone()).await.expect("create");
    assert_eq!(
        store.session_by_hash("s1").await.expect("lookup"),
        Some(open.clone())
    );
    assert_eq!(store.session_by_hash("s2").await.expect("lookup"), None);
    assert!(
        store.create_session(open.clone()).await.is_err(),
        "a hash is stored once"
    );
    store
        .touch_session("s1", at(MINUTE), at(2 * HOUR))
        .await
        .expect("touch");
    let touched = store
        .session_by_hash("s1")
        .await
        .expect("lookup")
        .expect("exists");
    assert_eq!(
        (touched.last_seen_at, touched.expires_at),
        (at(MINUTE), at(2 * HOUR))
    );

    // A login link opens one session, however many tabs race for it.
    store
        .create_session(session("link", true, at(HOUR)))
        .await
        .expect("link");
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_session("link").await.expect("take") })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        if let Some(taken) = racer.await.expect("task") {
            assert!(taken.one_time);
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one caller takes a link");

    store
        .create_session(session("old", false, at(MINUTE)))
        .await
        .expect("old");
    assert_eq!(
        store.purge_sessions(at(30 * MINUTE)).await.expect("purge"),
        1
    );
    assert_eq!(store.session_by_hash("old").await.expect("lookup"), None);
    assert!(store.session_by_hash("s1").await.expect("lookup").is_some());
}

/// Dashboard aggregates: issue counts per status, and spend per agent and day in the budget
/// day's offset.
pub async fn dashboard_stats<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + RunStore + StatsStore + ?Sized + 'static,
{
    assert!(agents.len() >= 2, "dashboard_stats needs 2 agents");
    assert!(
        store
            .issue_status_counts()
            .await
            .expect("counts")
            .is_empty(),
        "no issues, no counts"
    );
    create_issues(&*store, 3, "Counted").await;
    assert_eq!(
        store.issue_status_counts().await.expect("counts"),
        vec![(IssueStatus::Todo, 3)]
    );
    // Days start at 06:00 UTC (offset 360 minutes): 05:00 belongs to the day before.
    let spend = [
        (agents[0], at(7 * HOUR), 1.0, 100),
        (agents[0], at(20 * HOUR), 0.5, 50),
        (agents[1], at(9 * HOUR), 2.0, 10),
        (agents[0], at(5 * HOUR), 4.0, 1),
        (agents[1], at(31 * HOUR), 0.25, 5),
    ];
    for (agent, when, cost, tokens) in spend {
        store
            .record_usage(UsageRecord {
                event_id: CostEventId::from_uuid(uuid()),
                agent_id: agent,
                run_id: None,
                usage: TokenUsage {
                    input_tokens: tokens,
                    ..TokenUsage::default()
                },
                cost_usd: usd(cost),
                source: CostSource::Reported,
                at: when,
                activity: Vec::new(),
            })
            .await
            .expect("usage");
    }
    let days = store
        .daily_costs(at(0), 360, None)
        .await
        .expect("daily costs");
    let seen: Vec<(AgentId, i64, i64, i64)> = days
        .iter()
        .map(|d| (d.agent_id, d.day.as_millis(), d.cost_usd.0, d.tokens))
        .collect();
    let day = |n: i64| at(n * 24 * HOUR + 6 * HOUR - 24 * HOUR).as_millis();
    let mut want = vec![
        (agents[0], day(0), usd(4.0).0, 1),
        (agents[0], day(1), usd(1.5).0, 150),
        (agents[1], day(1), usd(2.0).0, 10),
        (agents[1], day(2), usd(0.25).0, 5),
    ];
    want.sort_by_key(|(a, d, _, _)| (*d, a.to_string()));
    assert_eq!(seen, want);
    let one = store
        .daily_costs(at(6 * HOUR), 360, Some(agents[1]))
        .await
        .expect("one agent");
    assert_eq!(one.len(), 2, "{one:?}");
    assert!(one.iter().all(|d| d.agent_id == agents[1]));
}

/// Settings upsert in one transaction; webhook deliveries are deduplicated; the migration state
/// is ready and the database passes its integrity check.
pub async fn settings_and_maintenance<S>(store: Arc<S>)
where
    S: SystemStore + ?Sized,
{
    let setting = |key: &str, value: &str, when: Timestamp| Setting {
        key: key.to_owned(),
        value: value.to_owned(),
        secret: false,
        updated_at: when,
    };
    store
        .put_settings(
            vec![
                setting("issue_prefix", "OPS", at(0)),
                setting("instance_name", "Mesa", at(0)),
            ],
            vec![activity("settings.updated", "settings", "", at(0))],
        )
        .await
        .expect("put");
    store
        .put_settings(vec![setting("issue_prefix", "MESA", at(1))], Vec::new())
        .await
        .expect("put");
    assert_eq!(
        store.setting("issue_prefix").await.expect("get"),
        Some(setting("issue_prefix", "MESA", at(1)))
    );
    assert_eq!(store.setting("missing").await.expect("get"), None);
    assert_eq!(
        store
            .settings()
            .await
            .expect("all")
            .iter()
            .map(|s| s.key.as_str())
            .collect::<Vec<_>>(),
        ["instance_name", "issue_prefix"]
    );

    let delivery = |id: &str| WebhookDelivery {
        id: WebhookDeliveryId::from_uuid(uuid()),
        source: "github".to_owned(),
        event: "issues".to_owned(),
        delivery_id: id.to_owned(),
        status: WebhookStatus::Received,
        note: None,
        payload: "{}".to_owned(),
        created_at: at(0),
    };
    store
        .record_delivery(delivery("d-1"))
        .await
        .expect("first delivery");
    let err = store
        .record_delivery(delivery("d-1"))
        .await
        .expect_err("a repeated delivery");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    store
        .record_delivery(delivery("d-2"))
        .await
        .expect("another delivery");

    let health = store.health().await.expect("health");
    assert!(health.is_ready(), "{health:?}");
    assert!(health.migrations_known >= 1);
    assert_eq!(store.integrity_check().await.expect("check"), ["ok"]);
}

/// The audit log stays one verifiable chain under concurrent writers (issue creations with
/// their audit rows, plus direct appends); ids are dense and ascending; filters and the cursor
/// page through it.
pub async fn activity_chain_survives_concurrency<S>(store: Arc<S>)
where
    S: IssueStore + SystemStore + ?Sized + 'static,
{
    const TASKS: usize = 16;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for i in 0..10 {
                let when = at(i64::try_from(t * 100 + i).expect("small"));
                store
                    .create_issue(new_issue(&format!("Chained {t}/{i}"), when))
                    .await
                    .expect("create");
                let actor = if t % 2 == 0 {
                    format!("board:token-{t}")
                } else {
                    format!("agent-{t}")
                };
                store
                    .append_activity(
                        (0..3)
                            .map(|n| NewActivity {
                                actor: actor.clone(),
                                ..activity("note", "task", &format!("{t}-{i}-{n}"), when)
                            })
                            .collect(),
                    )
                    .await
                    .expect("append");
            }
        }));
    }
    for handle in handles {
        handle.await.expect("writer task panicked");
    }
    let total = TASKS * 10 * 4;
    let report = store.verify_activity_chain().await.expect("verify");
    assert!(report.is_ok(), "the chain verifies: {report:?}");
    assert_eq!(report.checked, total as u64);
    let rows = all_activity(&*store).await;
    assert_eq!(rows.len(), total);
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r.id.0 == i64::try_from(i).expect("small") + 1),
        "ids are dense and ascending"
    );
    assert!(
        rows.windows(2).all(|w| w[1].prev_hash == w[0].hash),
        "each row links to the one before"
    );
    let created: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "issue.created")
        .collect();
    assert_eq!(created.len(), TASKS * 10);
    assert!(
        created.iter().all(|r| r.entity_id.starts_with("MESA-")),
        "an empty entity id is filled with the allocated key"
    );

    // Filters, newest first, paged by cursor.
    let by_board = collect_activity(
        &*store,
        &ActivityFilter {
            actor: Some("board".to_owned()),
            ..ActivityFilter::default()
        },
        7,
    )
    .await;
    assert_eq!(
        by_board.len(),
        TASKS / 2 * 10 * 3 + TASKS * 10,
        "every board:* row"
    );
    assert!(by_board.iter().all(|r| r.actor.starts_with("board:")));
    assert!(
        by_board.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    let exact = collect_activity(
        &*store,
        &ActivityFilter {
            actor: Some("agent-1".to_owned()),
            ..ActivityFilter::default()
        },
        500,
    )
    .await;
    assert_eq!(exact.len(), 30);
    let one = collect_activity(
        &*store,
        &ActivityFilter {
            entity: Some(("task".to_owned(), "3-4-2".to_owned())),
            ..ActivityFilter::default()
        },
        500,
    )
    .await;
    assert_eq!(one.len(), 1);
}

async fn collect_activity<S: SystemStore + ?Sized>(
    store: &S,
    filter: &ActivityFilter,
    limit: u32,
) -> Vec<mesa_domain::entity::ActivityEvent> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_activity(filter, &PageRequest::new(Some(limit), cursor))
            .await
            .expect("list activity");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Work blocks
// ---------------------------------------------------------------------------------------------

fn work_block(name: &str) -> WorkBlock {
    WorkBlock {
        id: WorkBlockId::from_uuid(uuid()),
        title: title(name),
        goal: Markdown::parse("ship it").expect("valid"),
        acceptance_criteria: Markdown::parse("").expect("valid"),
        status: WorkBlockStatus::Proposed,
        north_star_metric: None,
        north_star_target: None,
        north_star_current: None,
        apex_block_id: None,
        activated_at: None,
        ready_at: None,
        shipped_at: None,
        cancelled_at: None,
        created_by: "board".to_owned(),
        created_at: at(0),
        updated_at: at(0),
        version: Version::FIRST,
    }
}

/// SPEC §3.1: ten proposed blocks activated concurrently: exactly one becomes active, the
/// other nine are refused with `SecondActiveBlock` naming it, and stay proposed.
pub async fn one_active_work_block<S>(store: Arc<S>)
where
    S: BlockStore + ?Sized + 'static,
{
    let mut blocks = Vec::new();
    for i in 0..10 {
        blocks.push(
            store
                .create_work_block(Created::new(work_block(&format!("Block {i}")), Vec::new()))
                .await
                .expect("create block"),
        );
    }
    let mut handles = Vec::new();
    for block in blocks.clone() {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut active = block.clone();
            active.status = WorkBlockStatus::Active;
            active.activated_at = Some(at(HOUR));
            active.updated_at = at(HOUR);
            let result = store
                .update_work_block(Versioned {
                    row: active,
                    expected: block.version,
                    activity: vec![activity(
                        "work_block.activated",
                        "work_block",
                        &block.id.to_string(),
                        at(HOUR),
                    )],
                })
                .await;
            (block.id, result)
        }));
    }
    let mut winners = Vec::new();
    let mut refused = Vec::new();
    for handle in handles {
        match handle.await.expect("activation task panicked") {
            (id, Ok(block)) => {
                assert_eq!(block.status, WorkBlockStatus::Active);
                winners.push(id);
            }
            (id, Err(StoreError::SecondActiveBlock { active })) => refused.push((id, active)),
            (id, Err(other)) => panic!("activating {id} failed unexpectedly: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one block is active");
    assert_eq!(refused.len(), 9);
    assert!(refused.iter().all(|(_, active)| *active == winners[0]));
    let active = store
        .active_work_block()
        .await
        .expect("active")
        .expect("one is active");
    assert_eq!(active.id, winners[0]);
    for (id, _) in refused {
        let block = store.work_block(id).await.expect("block");
        assert_eq!(
            block.status,
            WorkBlockStatus::Proposed,
            "a refused block is unchanged"
        );
        assert_eq!(block.version, Version::FIRST);
    }
}

/// Every scenario that needs only issue, label, run, key and system storage, in order, each
/// against a fresh store from `fresh` (which also makes [`AGENTS_NEEDED`] agents).
/// The inbox: an agent sees its open issues and the reviews routed to it, in inbox order
/// (priority, then most recently updated, then key, all descending), page by page without gaps
/// or repeats; finished, deleted and other agents' issues stay out; the board sees
/// `board_review`. Re-routing a review moves it to the new reviewer's inbox.
pub async fn inbox_order_and_paging<S>(store: Arc<S>, agents: &[AgentId])
where
    S: IssueStore + ?Sized,
{
    assert!(agents.len() >= 3, "inbox_order_and_paging needs 3 agents");
    let (me, other, third) = (agents[0], agents[1], agents[2]);
    let mut expected = Vec::new();
    // Mine, with priorities and times that exercise every tie-break.
    for i in 0..12_i64 {
        let mut new = new_issue(&format!("Inbox item {i}"), at(i));
        new.assignee_id = Some(me);
        new.priority = Priority::new(i % 3).expect("valid");
        let issue = store.create_issue(new).await.expect("create");
        expected.push(issue);
    }
    // Same priority and time as another item: the key decides.
    let mut twin = new_issue("Inbox twin", at(11));
    twin.assignee_id = Some(me);
    twin.priority = Priority::new(11 % 3).expect("valid");
    expected.push(store.create_issue(twin).await.expect("create"));
    // Someone else's, unassigned, and a finished one of mine: not in my inbox.
    let mut theirs = new_issue("Not mine", at(3));
    theirs.assignee_id = Some(other);
    let theirs = store.create_issue(theirs).await.expect("create");
    store
        .create_issue(new_issue("Nobody's", at(3)))
        .await
        .expect("create");
    let mut finished = new_issue("Finished", at(4));
    finished.assignee_id = Some(me);
    let mut finished = store.create_issue(finished).await.expect("create");
    let version = finished.version;
    finished.status = IssueStatus::Done;
    store
        .update_issue(IssueWrite {
            issue: finished,
            expected: version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("finish");
    // Another agent's issue under review, routed to me.
    let mut review = theirs.clone();
    review.status = IssueStatus::InReview;
    review.submitted_by = Some(other);
    review.reviewer_id = Some(me);
    review.priority = Priority::URGENT;
    review.updated_at = at(20);
    let review = store
        .update_issue(IssueWrite {
            issue: review,
            expected: theirs.version,
            comments: Vec::new(),
            activity: Vec::new(),
        })
        .await
        .expect("submit");
    assert_eq!(review.reviewer_id, Some(me), "the reviewer is stored");
    expected.push(review.clone());
    expected.sort_by(|a, b| {
        (b.priority.get(), b.updated_at, b.key.as_str()).cmp(&(
            a.priority.get(),
            a.updated_at,
            a.key.as_str(),
        ))
    });

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .inbox(InboxOwner::Agent(me), &PageRequest::new(Some(4), cursor))
            .await
            .expect("inbox");
        assert!(page.items.len() <= 4);
        seen.extend(page.items.into_iter().map(|i| i.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<IssueKey> = expected.iter().map(|i| i.key.clone()).collect();
    assert_eq!(seen, want, "the whole inbox, in order, once");
    let bad = store
        .inbox(
            InboxOwner::Agent(me),
            &PageRequest::new(None, Some("nonsense".into())),
        )
        .await
        .expect_err("a foreign cursor");
    assert!(matches!(bad, StoreError::Invalid(_)), "{bad:?}");

    // The chart changed: the review goes to the third agent.
    store
        .set_reviewers(&[(review.id, Some(third))])
        .await
        .expect("re-route");
    let mine = store
        .inbox(InboxOwner::Agent(me), &PageRequest::all())
        .await
        .expect("inbox");
    assert!(mine.items.iter().all(|i| i.key != review.key));
    let theirs_now = store
        .inbox(InboxOwner::Agent(third), &PageRequest::all())
        .await
        .expect("inbox");
    assert_eq!(
        theirs_now.items.iter().map(|i| &i.key).collect::<Vec<_>>(),
        vec![&review.key]
    );
    let rerouted = store.issue(&review.key).await.expect("issue");
    assert_eq!(
        rerouted.version, review.version,
        "re-routing is not an edit"
    );
    let board = store
        .inbox(InboxOwner::Board, &PageRequest::all())
        .await
        .expect("board inbox");
    assert!(board.items.is_empty(), "nothing awaits the board");
}

pub async fn run_core_scenarios<S, F, Fut>(fresh: F)
where
    S: IssueStore + LabelStore + RunStore + KeyStore + SystemStore + ?Sized + 'static,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (Arc<S>, Vec<AgentId>)>,
{
    let (s, a) = fresh().await;
    checkout_is_exclusive(s, &a).await;
    let (s, _) = fresh().await;
    issue_keys_are_dense(s).await;
    let (s, _) = fresh().await;
    stale_update_writes_nothing(s).await;
    let (s, _) = fresh().await;
    duplicate_open_title(s).await;
    let (s, a) = fresh().await;
    checkout_rules(s, &a).await;
    let (s, a) = fresh().await;
    issue_queries(s, &a).await;
    let (s, a) = fresh().await;
    inbox_order_and_paging(s, &a).await;
    let (s, a) = fresh().await;
    budget_agent_limit(s, &a).await;
    let (s, a) = fresh().await;
    budget_org_limit(s, &a).await;
    let (s, a) = fresh().await;
    budget_tokens_and_policies(s, &a).await;
    let (s, a) = fresh().await;
    run_dedup_merges_triggers(s, &a).await;
    let (s, a) = fresh().await;
    creation_queues_its_wake_up(s, &a).await;
    let (s, a) = fresh().await;
    run_lifecycle(s, &a).await;
    let (s, a) = fresh().await;
    run_output_and_queued_cancel(s, &a).await;
    let (s, a) = fresh().await;
    keys(s, &a).await;
    let (s, _) = fresh().await;
    settings_and_maintenance(s).await;
    let (s, _) = fresh().await;
    activity_chain_survives_concurrency(s).await;
    let (s, _) = fresh().await;
    delivery_log_and_external_links(s).await;
}

/// A recorded delivery is settled in place and listed newest first; an external link finds its
/// issue, is unique per (source, url), needs an existing issue and goes with its issue.
pub async fn delivery_log_and_external_links<S>(store: Arc<S>)
where
    S: IssueStore + SystemStore + ?Sized,
{
    use mesa_domain::entity::ExternalLink;
    let delivery = |id: &str, when: i64| WebhookDelivery {
        id: WebhookDeliveryId::from_uuid(uuid()),
        source: "ci".to_owned(),
        event: "issues".to_owned(),
        delivery_id: id.to_owned(),
        status: WebhookStatus::Received,
        note: None,
        payload: "{}".to_owned(),
        created_at: at(when),
    };
    let first = store.record_delivery(delivery("a", 0)).await.expect("a");
    store.record_delivery(delivery("b", 1)).await.expect("b");
    store
        .settle_delivery(first.id, WebhookStatus::Failed, Some("bad".to_owned()))
        .await
        .expect("settle");
    let missing = WebhookDeliveryId::from_uuid(uuid());
    let err = store
        .settle_delivery(missing, WebhookStatus::Processed, None)
        .await
        .expect_err("no such delivery");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let recent = store.recent_deliveries(10).await.expect("recent");
    let ids: Vec<&str> = recent.iter().map(|d| d.delivery_id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(recent[1].status, WebhookStatus::Failed);
    assert_eq!(recent[1].note.as_deref(), Some("bad"));
    assert_eq!(store.recent_deliveries(1).await.expect("one").len(), 1);
    // A settled delivery is never forgotten; a received one is, and may then come again.
    store
        .forget_delivery(first.id)
        .await
        .expect("forget settled");
    assert_eq!(store.recent_deliveries(10).await.expect("recent").len(), 2);
    let retried = store.record_delivery(delivery("c", 4)).await.expect("c");
    store.forget_delivery(retried.id).await.expect("forget");
    assert_eq!(store.recent_deliveries(10).await.expect("recent").len(), 2);
    store
        .record_delivery(delivery("c", 5))
        .await
        .expect("the same delivery id again");

    let issue = store
        .create_issue(new_issue("Linked from elsewhere", at(2)))
        .await
        .expect("issue");
    let link = |url: &str, key: IssueKey| ExternalLink {
        source: "ci".to_owned(),
        url: url.to_owned(),
        issue_key: key,
        created_at: at(3),
    };
    let url = "https://example.test/issues/1";
    store
        .link_external(link(url, issue.key.clone()))
        .await
        .expect("link");
    assert_eq!(
        store.external_link("ci", url).await.expect("find"),
        Some(issue.key.clone())
    );
    assert_eq!(store.external_link("other", url).await.expect("find"), None);
    let again = store
        .link_external(link(url, issue.key.clone()))
        .await
        .expect_err("linked already");
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");
    let nowhere = IssueKey::parse("MESA-9999").expect("key");
    let err = store
        .link_external(link("https://example.test/issues/2", nowhere))
        .await
        .expect_err("no such issue");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    store
        .purge_issue(&issue.key, Vec::new())
        .await
        .expect("purge");
    assert_eq!(store.external_link("ci", url).await.expect("find"), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffle_permutes() {
        let mut v: Vec<u32> = (0..200).collect();
        shuffle(&mut v, 7);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..200).collect::<Vec<_>>());
        assert_ne!(v, sorted);
        let mut w: Vec<u32> = (0..200).collect();
        shuffle(&mut w, 8);
        assert_ne!(v, w, "seeds give different orders");
    }
}
