//! Agents, archetypes, work blocks, approvals, knowledge and governance on a real SQLite file.
//!
//! Issues needed by the work-block tests are inserted with raw SQL through a second pool, so
//! these tests do not depend on the issue store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mesa_domain::entity::{
    Agent, AgentConfig, ApexBlock, Approval, Approver, ArchetypePatch, ArchetypeSource, Audit,
    Cron, Directive, MemoryItem, NewActivity, NorthStarValue, Reflection, Requester, Skill,
    Subject, WikiPage, WorkBlock,
};
use mesa_domain::{
    AgentId, ApexBlockId, ApexStatus, ApprovalId, ApprovalKind, ApprovalStatus, ArchetypePatchId,
    AuditId, AuditStatus, CronId, DirectiveId, IssueKey, Markdown, MemoryItemId, Name, PatchStatus,
    ReflectionId, ReflectionOutcome, RunnerKind, Slug, Timestamp, Title, Version, WikiSlug,
    WorkBlockId, WorkBlockStatus, WorkingDir,
};
use mesa_store::{
    AgentStore, AgentWrite, ApprovalStore, ArchetypeStore, ArchetypeVersionWrite, BlockStore,
    Created, GovernanceStore, KnowledgeStore, NewAgentRecord, PageRequest, StoreError, Versioned,
};
use mesa_store_sqlite::SqliteStore;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

// ---------------------------------------------------------------------------------------------
// Harness

struct Db {
    store: SqliteStore,
    raw: SqlitePool,
    _dir: tempfile::TempDir,
}

async fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mesa.db");
    let store = SqliteStore::open_path(&path).await.unwrap();
    let raw = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(&path)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5)),
    )
    .await
    .unwrap();
    Db {
        store,
        raw,
        _dir: dir,
    }
}

impl Db {
    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.raw).await.unwrap()
    }

    /// Inserts an open `todo` issue with raw SQL and returns its key.
    async fn issue(&self, n: u64) -> IssueKey {
        let key = format!("MESA-{n}");
        sqlx::query(
            "INSERT INTO issues (id, key, number, title, title_norm, type, status, open, \
             created_by, status_changed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'task', 'todo', 1, 'board', 1000, 1000, 1000)",
        )
        .bind(uuid())
        .bind(&key)
        .bind(i64::try_from(n).unwrap())
        .bind(format!("Issue {n}"))
        .bind(format!("issue {n}"))
        .execute(&self.raw)
        .await
        .unwrap();
        IssueKey::parse(&key).unwrap()
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A fresh UUID-shaped id (version 7 layout, counter in the node field).
fn uuid() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("01900000-0000-7000-8000-{n:012x}")
}

fn id<T: std::str::FromStr>() -> T
where
    T::Err: std::fmt::Debug,
{
    uuid().parse().unwrap()
}

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn act(action: &str, entity_id: &str) -> Vec<NewActivity> {
    vec![NewActivity {
        at: t(0),
        actor: "board:test".to_owned(),
        action: action.to_owned(),
        entity_type: action.split('.').next().unwrap_or("x").to_owned(),
        entity_id: entity_id.to_owned(),
        summary: action.to_owned(),
        data: serde_json::json!({}),
    }]
}

fn title(s: &str) -> Title {
    Title::parse(s).unwrap()
}

fn md(s: &str) -> Markdown {
    Markdown::parse(s).unwrap()
}

fn slug(s: &str) -> Slug {
    Slug::parse(s).unwrap()
}

fn agent(slug_text: &str) -> Agent {
    Agent {
        id: id(),
        slug: slug(slug_text),
        config: AgentConfig::new(
            Name::parse(slug_text).unwrap(),
            slug("backend"),
            RunnerKind::Noop,
            WorkingDir::parse("/srv/project").unwrap(),
        ),
        paused_until: None,
        pause_reason: None,
        created_at: t(1),
        updated_at: t(1),
        version: Version::FIRST,
    }
}

async fn create_agent(db: &Db, slug_text: &str) -> Agent {
    let a = agent(slug_text);
    db.store
        .create_agent(NewAgentRecord {
            activity: act("agent.created", &a.id.to_string()),
            agent: a,
            changed_by: "board:test".to_owned(),
            reason: "hired".to_owned(),
        })
        .await
        .unwrap()
}

fn work_block(name: &str, status: WorkBlockStatus) -> WorkBlock {
    WorkBlock {
        id: id(),
        title: title(name),
        goal: md("ship it"),
        acceptance_criteria: md("- works"),
        status,
        north_star_metric: Some("signups".to_owned()),
        north_star_target: Some(100.0),
        north_star_current: None,
        apex_block_id: None,
        activated_at: None,
        ready_at: None,
        shipped_at: None,
        cancelled_at: None,
        created_by: "board".to_owned(),
        created_at: t(2),
        updated_at: t(2),
        version: Version::FIRST,
    }
}

async fn create_block(db: &Db, name: &str, status: WorkBlockStatus) -> WorkBlock {
    db.store
        .create_work_block(Created::new(work_block(name, status), vec![]))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Agents

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_create_update_revisions_and_conflicts() {
    let db = db().await;
    let a = create_agent(&db, "ada").await;
    assert_eq!(a.version, Version::FIRST);
    assert_eq!(db.store.agent(a.id).await.unwrap(), a);
    assert_eq!(db.store.agent_by_slug(&slug("ada")).await.unwrap(), a);
    assert_eq!(db.store.count_agents().await.unwrap(), 1);
    let revs = db.store.agent_revisions(a.id).await.unwrap();
    assert_eq!(revs.len(), 1);
    assert_eq!((revs[0].number, revs[0].reason.as_str()), (1, "hired"));
    assert_eq!(revs[0].config, a.config);

    // Duplicate slug.
    let err = db
        .store
        .create_agent(NewAgentRecord {
            agent: agent("ada"),
            changed_by: "board:test".to_owned(),
            reason: String::new(),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // A configuration change stores revision 2; the hot columns follow the config.
    let mut changed = a.clone();
    changed.config.model = "opus".to_owned();
    changed.config.max_turns = 10;
    changed.updated_at = t(5);
    let b = db
        .store
        .update_agent(AgentWrite {
            agent: changed,
            expected: Version(1),
            revision: Some(("board:test".to_owned(), "faster".to_owned())),
            activity: act("agent.updated", &a.id.to_string()),
        })
        .await
        .unwrap();
    assert_eq!(b.version, Version(2));
    assert_eq!(db.store.agent(a.id).await.unwrap(), b);
    let model: String = sqlx::query_scalar("SELECT model FROM agents WHERE id = $1")
        .bind(a.id.to_string())
        .fetch_one(&db.raw)
        .await
        .unwrap();
    assert_eq!(model, "opus");

    // A state-only change (pause) stores no revision.
    let mut paused = b.clone();
    paused.paused_until = Some(t(100));
    let c = db
        .store
        .update_agent(AgentWrite {
            agent: paused,
            expected: Version(2),
            revision: None,
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(c.version, Version(3));
    assert_eq!(c.paused_until, Some(t(100)));

    let revs = db.store.agent_revisions(a.id).await.unwrap();
    assert_eq!(
        revs.iter().map(|r| r.number).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert_eq!(revs[0].config.model, "opus");
    assert_eq!(
        db.store.agent_revision(a.id, 1).await.unwrap().config,
        a.config
    );
    assert!(matches!(
        db.store.agent_revision(a.id, 9).await,
        Err(StoreError::NotFound { .. })
    ));

    // Stale version: nothing written.
    let err = db
        .store
        .update_agent(AgentWrite {
            agent: a.clone(),
            expected: Version(1),
            revision: Some(("board:test".to_owned(), "late".to_owned())),
            activity: act("agent.updated", &a.id.to_string()),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::StaleVersion {
                expected: Version(1),
                actual: Version(3),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(db.store.agent_revisions(a.id).await.unwrap().len(), 2);

    // Missing agent.
    let ghost = agent("ghost");
    let err = db
        .store
        .update_agent(AgentWrite {
            agent: ghost.clone(),
            expected: Version(1),
            revision: None,
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(matches!(
        db.store.agent(ghost.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        db.store.agent_revisions(ghost.id).await,
        Err(StoreError::NotFound { .. })
    ));

    // Renaming to a taken slug conflicts.
    let other = create_agent(&db, "bob").await;
    let mut clash = other.clone();
    clash.slug = slug("ada");
    let err = db
        .store
        .update_agent(AgentWrite {
            agent: clash,
            expected: other.version,
            revision: None,
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    let slugs: Vec<_> = db
        .store
        .list_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.slug.into_string())
        .collect();
    assert_eq!(slugs, ["ada", "bob"]);
    // create ada, update ada, create bob: only the successful writes left audit rows.
    assert_eq!(db.count("SELECT COUNT(*) FROM activity").await, 3);
}

// ---------------------------------------------------------------------------------------------
// Archetypes

fn version_write(
    body: &str,
    source: ArchetypeSource,
    expected: Option<i64>,
    approve: Option<ArchetypePatchId>,
) -> ArchetypeVersionWrite {
    ArchetypeVersionWrite {
        slug: slug("backend"),
        title: title("Backend engineer"),
        body: md(body),
        source,
        expected_version: expected,
        at: t(10),
        approve_patch: approve,
        activity: act("archetype.version", "backend"),
    }
}

fn patch(base: i64, body: &str, at: i64) -> ArchetypePatch {
    ArchetypePatch {
        id: id(),
        archetype_slug: slug("backend"),
        base_version: base,
        proposed_body: md(body),
        rationale: md("fewer retries"),
        proposed_by: None,
        audit_id: None,
        status: PatchStatus::Pending,
        approval_id: None,
        created_at: t(at),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn archetype_versions_and_patch_approval() {
    let db = db().await;
    let a = db
        .store
        .write_archetype_version(version_write("v1", ArchetypeSource::Builtin, None, None))
        .await
        .unwrap();
    assert_eq!((a.version, a.body.as_str()), (1, "v1"));
    let err = db
        .store
        .write_archetype_version(version_write("again", ArchetypeSource::Builtin, None, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    let p1 = db
        .store
        .create_patch(Created::new(patch(1, "v2 from p1", 20), vec![]))
        .await
        .unwrap();
    let p2 = db
        .store
        .create_patch(Created::new(patch(1, "v2 from p2", 21), vec![]))
        .await
        .unwrap();
    let mut unknown = patch(1, "x", 22);
    unknown.archetype_slug = slug("nobody");
    assert!(matches!(
        db.store.create_patch(Created::new(unknown, vec![])).await,
        Err(StoreError::NotFound { .. })
    ));
    let pending = db
        .store
        .list_patches(Some(PatchStatus::Pending))
        .await
        .unwrap();
    assert_eq!(
        pending.iter().map(|p| p.id).collect::<Vec<_>>(),
        [p2.id, p1.id],
        "newest first"
    );

    // Approving p1 writes version 2, approves p1, supersedes p2.
    let a2 = db
        .store
        .write_archetype_version(version_write(
            "v2 from p1",
            ArchetypeSource::Patch(p1.id),
            Some(1),
            Some(p1.id),
        ))
        .await
        .unwrap();
    assert_eq!((a2.version, a2.body.as_str()), (2, "v2 from p1"));
    assert_eq!(a2.created_at, a.created_at);
    assert_eq!(
        db.store.patch(p1.id).await.unwrap().status,
        PatchStatus::Approved
    );
    assert_eq!(
        db.store.patch(p2.id).await.unwrap().status,
        PatchStatus::Superseded
    );
    let versions = db.store.archetype_versions(&slug("backend")).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(versions[0].source, ArchetypeSource::Patch(p1.id));
    assert_eq!(versions[1].source, ArchetypeSource::Builtin);

    // A write on an old version loses; approving a patch that is no longer pending conflicts,
    // and neither writes a version.
    let err = db
        .store
        .write_archetype_version(version_write("late", ArchetypeSource::Board, Some(1), None))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::StaleVersion {
                actual: Version(2),
                ..
            }
        ),
        "{err:?}"
    );
    let err = db
        .store
        .write_archetype_version(version_write(
            "v3 from p2",
            ArchetypeSource::Patch(p2.id),
            Some(2),
            Some(p2.id),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(
        db.store.archetype(&slug("backend")).await.unwrap().version,
        2
    );
    assert_eq!(
        db.store
            .archetype_versions(&slug("backend"))
            .await
            .unwrap()
            .len(),
        2
    );

    // Rollback = a new version with the old body.
    let v1 = db
        .store
        .archetype_version(&slug("backend"), 1)
        .await
        .unwrap();
    let a3 = db
        .store
        .write_archetype_version(version_write(
            v1.body.as_str(),
            ArchetypeSource::Rollback(1),
            Some(2),
            None,
        ))
        .await
        .unwrap();
    assert_eq!((a3.version, a3.body.as_str()), (3, "v1"));
    assert_eq!(
        db.store
            .archetype_version(&slug("backend"), 3)
            .await
            .unwrap()
            .source,
        ArchetypeSource::Rollback(1)
    );

    // Patch updates are versioned (a pending patch is at version 1).
    let p3 = db
        .store
        .create_patch(Created::new(patch(3, "v4", 30), vec![]))
        .await
        .unwrap();
    let mut rejected = p3.clone();
    rejected.status = PatchStatus::Rejected;
    let out = db
        .store
        .update_patch(Versioned {
            row: rejected.clone(),
            expected: Version(1),
            activity: act("archetype_patch.rejected", &p3.id.to_string()),
        })
        .await
        .unwrap();
    assert_eq!(out.status, PatchStatus::Rejected);
    let err = db
        .store
        .update_patch(Versioned {
            row: rejected,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleVersion { .. }), "{err:?}");
    assert_eq!(db.store.list_archetypes().await.unwrap().len(), 1);
    assert!(matches!(
        db.store.archetype(&slug("nobody")).await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Work blocks

/// The acceptance criterion of SPEC §3.1: activating 10 blocks at once leaves exactly one
/// active; every other activation is refused by the database with `SecondActiveBlock`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activation_of_ten_blocks_leaves_exactly_one_active() {
    let db = db().await;
    let store = Arc::new(db.store.clone());
    let mut blocks = Vec::new();
    for i in 0..10 {
        blocks.push(create_block(&db, &format!("Block {i}"), WorkBlockStatus::Proposed).await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(blocks.len()));
    let mut tasks = Vec::new();
    for block in blocks {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut active = block.clone();
            active.status = WorkBlockStatus::Active;
            active.activated_at = Some(t(50));
            active.updated_at = t(50);
            barrier.wait().await;
            store
                .update_work_block(Versioned {
                    row: active,
                    expected: block.version,
                    activity: act("work_block.activated", &block.id.to_string()),
                })
                .await
        }));
    }
    let mut winners = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(block) => winners.push(block),
            Err(StoreError::SecondActiveBlock { active }) => refused.push(active),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one activation wins");
    assert_eq!(refused.len(), 9);
    let winner = &winners[0];
    assert_eq!(winner.version, Version(2));
    assert!(
        refused.iter().all(|a| *a == winner.id),
        "each refusal names the active block"
    );
    assert_eq!(
        db.store.active_work_block().await.unwrap().map(|b| b.id),
        Some(winner.id)
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM work_blocks WHERE status = 'active'")
            .await,
        1
    );
    // Only the winner's audit row was written.
    assert_eq!(db.count("SELECT COUNT(*) FROM activity").await, 1);

    // Creating a block that is already active is refused the same way.
    let err = db
        .store
        .create_work_block(Created::new(
            work_block("Sneaky", WorkBlockStatus::Active),
            vec![],
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::SecondActiveBlock { active } if active == winner.id),
        "{err:?}"
    );

    // Once the winner is ready, another block may become active.
    let mut ready = winner.clone();
    ready.status = WorkBlockStatus::Ready;
    let ready = db
        .store
        .update_work_block(Versioned {
            row: ready,
            expected: winner.version,
            activity: vec![],
        })
        .await
        .unwrap();
    let proposed = db
        .store
        .list_work_blocks(Some(WorkBlockStatus::Proposed))
        .await
        .unwrap();
    assert_eq!(proposed.len(), 9);
    let mut next = proposed[0].clone();
    next.status = WorkBlockStatus::Active;
    db.store
        .update_work_block(Versioned {
            row: next,
            expected: proposed[0].version,
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        db.store.active_work_block().await.unwrap().map(|b| b.id),
        Some(proposed[0].id)
    );

    // A stale write changes nothing.
    let err = db
        .store
        .update_work_block(Versioned {
            row: ready.clone(),
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::StaleVersion {
                actual: Version(3),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_issue_block_rules() {
    let db = db().await;
    let first = create_block(&db, "First", WorkBlockStatus::Proposed).await;
    let second = create_block(&db, "Second", WorkBlockStatus::Active).await;
    let mut shipped = work_block("Shipped", WorkBlockStatus::Shipped);
    shipped.shipped_at = Some(t(3));
    let shipped = db
        .store
        .create_work_block(Created::new(shipped, vec![]))
        .await
        .unwrap();
    let key = db.issue(1).await;

    let issue = db
        .store
        .set_issue_block(&key, Some(first.id), act("issue.block", key.as_str()))
        .await
        .unwrap();
    assert_eq!(issue.work_block_id, Some(first.id));
    assert_eq!(issue.version, Version(2), "the issue's version is bumped");
    assert_eq!(issue.updated_at, t(0));

    // Same block again: nothing changes.
    let again = db
        .store
        .set_issue_block(&key, Some(first.id), act("issue.block", key.as_str()))
        .await
        .unwrap();
    assert_eq!(again.version, Version(2));
    assert_eq!(db.count("SELECT COUNT(*) FROM activity").await, 1);

    // In another block: take it out first.
    let err = db
        .store
        .set_issue_block(&key, Some(second.id), vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let out = db.store.set_issue_block(&key, None, vec![]).await.unwrap();
    assert_eq!((out.work_block_id, out.version), (None, Version(3)));
    let moved = db
        .store
        .set_issue_block(&key, Some(second.id), vec![])
        .await
        .unwrap();
    assert_eq!(moved.work_block_id, Some(second.id));

    // Shipped (and cancelled) blocks accept no issues; missing things are NotFound.
    let other = db.issue(2).await;
    let err = db
        .store
        .set_issue_block(&other, Some(shipped.id), vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = db
        .store
        .set_issue_block(&other, Some(id::<WorkBlockId>()), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "work_block",
                ..
            }
        ),
        "{err:?}"
    );
    let err = db
        .store
        .set_issue_block(&IssueKey::parse("MESA-99").unwrap(), Some(first.id), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                entity: "issue",
                ..
            }
        ),
        "{err:?}"
    );
    let stored: Option<String> =
        sqlx::query_scalar("SELECT work_block_id FROM issues WHERE key = 'MESA-2'")
            .fetch_one(&db.raw)
            .await
            .unwrap();
    assert_eq!(stored, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn north_star_history_and_apex_blocks() {
    let db = db().await;
    let apex = db
        .store
        .create_apex_block(Created::new(
            ApexBlock {
                id: id(),
                title: title("Grow"),
                goal: md("10x users"),
                status: ApexStatus::Active,
                created_at: t(1),
                updated_at: t(1),
                version: Version::FIRST,
            },
            act("apex_block.created", "a"),
        ))
        .await
        .unwrap();
    let mut block = work_block("Signup flow", WorkBlockStatus::Proposed);
    block.apex_block_id = Some(apex.id);
    let block = db
        .store
        .create_work_block(Created::new(block, vec![]))
        .await
        .unwrap();
    assert_eq!(db.store.work_block(block.id).await.unwrap(), block);

    for (i, v) in [10.0, 25.5].into_iter().enumerate() {
        db.store
            .record_north_star(
                NorthStarValue {
                    work_block_id: block.id,
                    value: v,
                    recorded_by: "board".to_owned(),
                    recorded_at: t(100 + i64::try_from(i).unwrap()),
                },
                vec![],
            )
            .await
            .unwrap();
    }
    let now = db.store.work_block(block.id).await.unwrap();
    assert_eq!(now.north_star_current, Some(25.5));
    assert_eq!(now.version, Version(3));
    let history = db.store.north_star_history(block.id).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.value).collect::<Vec<_>>(),
        [10.0, 25.5]
    );
    assert!(matches!(
        db.store
            .record_north_star(
                NorthStarValue {
                    work_block_id: id(),
                    value: 1.0,
                    recorded_by: "board".to_owned(),
                    recorded_at: t(1),
                },
                vec![],
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));

    let mut archived = apex.clone();
    archived.status = ApexStatus::Archived;
    let archived = db
        .store
        .update_apex_block(Versioned {
            row: archived,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(archived.version, Version(2));
    assert_eq!(db.store.apex_block(apex.id).await.unwrap(), archived);
    let err = db
        .store
        .update_apex_block(Versioned {
            row: apex.clone(),
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleVersion { .. }), "{err:?}");
    assert_eq!(db.store.list_apex_blocks().await.unwrap().len(), 1);
    assert!(matches!(
        db.store.apex_block(id::<ApexBlockId>()).await,
        Err(StoreError::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Approvals

fn approval(at: i64, requested_by: Requester) -> Approval {
    Approval {
        id: id(),
        kind: ApprovalKind::WorkBlockActivation,
        title: title(&format!("Activate block {at}")),
        body: md("please"),
        requested_by,
        approver: Approver::Board,
        subject: Some(Subject {
            entity_type: "work_block".to_owned(),
            entity_id: "b1".to_owned(),
        }),
        payload: serde_json::json!({"block": at}),
        status: ApprovalStatus::Pending,
        decision_comment: None,
        decided_by: None,
        decided_at: None,
        expires_at: Some(t(at + 1_000)),
        created_at: t(at),
        version: Version::FIRST,
    }
}

fn resolved(a: &Approval, status: ApprovalStatus) -> Approval {
    let mut r = a.clone();
    r.status = status;
    r.decided_by = Some("board:test".to_owned());
    r.decided_at = Some(t(500));
    r.decision_comment = Some("ok".to_owned());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_resolve_once_list_and_expire() {
    let db = db().await;
    let requester = create_agent(&db, "ceo").await;
    let a = db
        .store
        .create_approval(Created::new(
            approval(1, Requester::Agent(requester.id)),
            act("approval.created", "a"),
        ))
        .await
        .unwrap();
    assert_eq!(db.store.approval(a.id).await.unwrap(), a);

    // Two concurrent resolutions: exactly one wins, the other gets StaleVersion.
    let store = Arc::new(db.store.clone());
    let tasks: Vec<_> = [ApprovalStatus::Approved, ApprovalStatus::Rejected]
        .into_iter()
        .map(|status| {
            let store = Arc::clone(&store);
            let row = resolved(&a, status);
            tokio::spawn(async move {
                store
                    .update_approval(Versioned {
                        row,
                        expected: Version(1),
                        activity: act("approval.resolved", "a"),
                    })
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                ok += 1;
                assert_eq!(r.version, Version(2));
            }
            Err(StoreError::StaleVersion {
                expected, actual, ..
            }) => assert_eq!((expected, actual), (Version(1), Version(2))),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    let stored = db.store.approval(a.id).await.unwrap();
    assert_ne!(stored.status, ApprovalStatus::Pending);
    assert_eq!(stored.requested_by, Requester::Agent(requester.id));
    assert_eq!(stored.decided_at, Some(t(500)));

    // Resolving twice in a row: the second loses.
    let err = db
        .store
        .update_approval(Versioned {
            row: resolved(&a, ApprovalStatus::Approved),
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleVersion { .. }), "{err:?}");
    assert!(matches!(
        db.store.approval(id::<ApprovalId>()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Four more: two pending (created at 10 and 30), two decided (20, 40).
    let mut ids = std::collections::HashMap::new();
    for at in [10, 20, 30, 40] {
        let x = db
            .store
            .create_approval(Created::new(approval(at, Requester::Board), vec![]))
            .await
            .unwrap();
        if at % 20 == 0 {
            db.store
                .update_approval(Versioned {
                    row: resolved(&x, ApprovalStatus::Rejected),
                    expected: Version(1),
                    activity: vec![],
                })
                .await
                .unwrap();
        }
        ids.insert(x.id, at);
    }
    ids.insert(a.id, 1);

    // Pending first (newest first), then the decided ones newest first, two per page.
    let mut order = Vec::new();
    let mut cursor = None;
    loop {
        let page = db
            .store
            .list_approvals(None, &PageRequest::new(Some(2), cursor))
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        order.extend(page.items.iter().map(|x| ids[&x.id]));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(order, [30, 10, 40, 20, 1]);
    let pending = db
        .store
        .list_approvals(Some(ApprovalStatus::Pending), &PageRequest::first())
        .await
        .unwrap();
    assert_eq!(
        pending.items.iter().map(|x| ids[&x.id]).collect::<Vec<_>>(),
        [30, 10]
    );
    assert!(pending.next_cursor.is_none());
    assert!(matches!(
        db.store
            .list_approvals(None, &PageRequest::new(None, Some("zz".to_owned())))
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Expiry: pending ones whose expires_at (created + 1000) is at or before now.
    let expired = db.store.expired_approvals(t(1_010)).await.unwrap();
    assert_eq!(expired.iter().map(|x| ids[&x.id]).collect::<Vec<_>>(), [10]);
    assert_eq!(db.store.expired_approvals(t(5_000)).await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Knowledge

fn wiki(slug_text: &str, title_text: &str, content: &str) -> WikiPage {
    WikiPage {
        id: id(),
        slug: WikiSlug::parse(slug_text).unwrap(),
        title: title(title_text),
        content: content.to_owned(),
        created_by: "board:test".to_owned(),
        updated_by: "board:test".to_owned(),
        created_by_agent: None,
        created_at: t(1),
        updated_at: t(1),
        version: Version::FIRST,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiki_pages_revisions_and_search() {
    let db = db().await;
    let page = db
        .store
        .create_wiki_page(Created::new(
            wiki(
                "deployment-guide",
                "Deployment guide",
                "How we deploy: run the <script>release</script> pipeline, then watch the \
                 dashboards for errors.",
            ),
            act("wiki.created", "deployment-guide"),
        ))
        .await
        .unwrap();
    db.store
        .create_wiki_page(Created::new(
            wiki(
                "onboarding",
                "Onboarding",
                "Read the architecture notes first.",
            ),
            vec![],
        ))
        .await
        .unwrap();
    db.store
        .create_wiki_page(Created::new(wiki("zebra", "apple notes", "Fruit."), vec![]))
        .await
        .unwrap();
    let err = db
        .store
        .create_wiki_page(Created::new(wiki("onboarding", "Again", "x"), vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // Edit: version 2, revision 2 kept; stale edit refused.
    let mut edited = page.clone();
    edited
        .content
        .push_str(" Roll back with the rollback script.");
    edited.updated_by = "qa".to_owned();
    edited.updated_at = t(9);
    let v2 = db
        .store
        .update_wiki_page(Versioned {
            row: edited.clone(),
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(v2.version, Version(2));
    let err = db
        .store
        .update_wiki_page(Versioned {
            row: edited,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::StaleVersion { .. }), "{err:?}");
    let revs = db.store.wiki_revisions(&page.slug).await.unwrap();
    assert_eq!(
        revs.iter()
            .map(|r| (r.version.0, r.edited_by.as_str()))
            .collect::<Vec<_>>(),
        [(2, "qa"), (1, "board:test")]
    );
    assert_eq!(db.store.wiki_page(&page.slug).await.unwrap(), v2);

    // Prefix search with a highlighted, escaped snippet.
    let hits = db.store.search_wiki("deplo", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0.slug, page.slug);
    assert!(hits[0].1.contains("<mark>deploy</mark>"), "{}", hits[0].1);
    assert!(hits[0].1.contains("&lt;script&gt;"), "{}", hits[0].1);
    assert!(!hits[0].1.contains("<script>"), "{}", hits[0].1);
    // Words are ANDed; the new revision is indexed.
    let hits = db.store.search_wiki("rollb scri", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].1.contains("<mark>rollback</mark>"), "{}", hits[0].1);
    // Title matches rank above content matches.
    db.store
        .create_wiki_page(Created::new(
            wiki(
                "architecture",
                "Architecture",
                "Components and their boundaries.",
            ),
            vec![],
        ))
        .await
        .unwrap();
    let hits = db.store.search_wiki("architecture", 10).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.0.slug.as_str()).collect::<Vec<_>>(),
        ["architecture", "onboarding"]
    );
    // FTS syntax in the input is just text.
    for nasty in [
        "\"",
        "NEAR(a b)",
        "deploy OR",
        "*",
        "-deploy",
        "title:deploy",
        "a AND",
        "^x",
        "'; DROP TABLE wiki_pages; --",
    ] {
        db.store.search_wiki(nasty, 10).await.unwrap();
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM wiki_pages").await, 4);

    // Fuzzy fallback: no word matches, but the letters appear in order in a title or slug.
    let hits = db.store.search_wiki("dplgd", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].0.slug, page.slug);
    assert!(hits[0].1.starts_with("How we deploy"), "{}", hits[0].1);
    assert!(!hits[0].1.contains('<'), "{}", hits[0].1);
    let hits = db.store.search_wiki("onbrd", 10).await.unwrap();
    assert_eq!(hits[0].0.slug.as_str(), "onboarding");
    assert!(db.store.search_wiki("qqqzzz", 10).await.unwrap().is_empty());
    assert!(db.store.search_wiki("", 10).await.unwrap().is_empty());

    // List by title, case-insensitively, in pages.
    let first = db
        .store
        .list_wiki_pages(&PageRequest::new(Some(2), None))
        .await
        .unwrap();
    let second = db
        .store
        .list_wiki_pages(&PageRequest::new(Some(2), first.next_cursor.clone()))
        .await
        .unwrap();
    let titles: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|p| p.title.as_str().to_owned())
        .collect();
    assert_eq!(
        titles,
        [
            "apple notes",
            "Architecture",
            "Deployment guide",
            "Onboarding"
        ]
    );
    assert!(second.next_cursor.is_none());

    // Delete removes the page and its revisions.
    db.store
        .delete_wiki_page(&page.slug, act("wiki.deleted", "deployment-guide"))
        .await
        .unwrap();
    assert!(matches!(
        db.store.wiki_page(&page.slug).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM wiki_revisions WHERE page_id NOT IN (SELECT id FROM wiki_pages)"
        )
        .await,
        0
    );
    assert!(db.store.search_wiki("deplo", 10).await.unwrap().is_empty());
    assert!(matches!(
        db.store.delete_wiki_page(&page.slug, vec![]).await,
        Err(StoreError::NotFound { .. })
    ));
}

fn skill(slug_text: &str, title_text: &str, body: &str, tags: &[&str]) -> Skill {
    Skill {
        id: id(),
        slug: slug(slug_text),
        title: title(title_text),
        body: body.to_owned(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        source: "board".to_owned(),
        promoted_by: "board:test".to_owned(),
        uses: 0,
        successes: 0,
        active: true,
        created_at: t(1),
        updated_at: t(1),
        version: Version::FIRST,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn skills_and_reflections() {
    let db = db().await;
    let a = create_agent(&db, "ada").await;
    let s1 = db
        .store
        .create_skill(Created::new(
            skill(
                "flaky-tests",
                "Taming flaky tests",
                "Retry once, then quarantine.",
                &["testing", "ci"],
            ),
            act("skill.created", "flaky-tests"),
        ))
        .await
        .unwrap();
    db.store
        .create_skill(Created::new(
            skill(
                "sql-migrations",
                "Writing SQL migrations",
                "Never edit an applied migration; tests catch it.",
                &["database"],
            ),
            vec![],
        ))
        .await
        .unwrap();
    let err = db
        .store
        .create_skill(Created::new(skill("flaky-tests", "Dup", "x", &[]), vec![]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    assert_eq!(db.store.skill(&slug("flaky-tests")).await.unwrap(), s1);
    let all = db.store.list_skills(None).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(),
        ["flaky-tests", "sql-migrations"]
    );
    // Tags, title and body are searched, by prefix; the better match comes first.
    let by_tag = db.store.list_skills(Some("databa")).await.unwrap();
    assert_eq!(by_tag.len(), 1);
    assert_eq!(by_tag[0].slug.as_str(), "sql-migrations");
    let both = db.store.list_skills(Some("test")).await.unwrap();
    assert_eq!(
        both.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(),
        ["flaky-tests", "sql-migrations"]
    );
    assert!(
        db.store
            .list_skills(Some("kubernetes"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(db.store.list_skills(Some("  \" ")).await.unwrap().len(), 2);

    let mut used = s1.clone();
    used.uses = 3;
    used.successes = 2;
    used.tags.push("quarantine".to_owned());
    let used = db
        .store
        .update_skill(Versioned {
            row: used,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(used.version, Version(2));
    // Uses and successes are counted from the runs given the skill, never written.
    assert_eq!((used.uses, used.successes), (0, 0));
    assert_eq!(db.store.skill(&slug("flaky-tests")).await.unwrap(), used);
    assert_eq!(
        db.store.list_skills(Some("quarant")).await.unwrap()[0].id,
        s1.id
    );
    assert!(matches!(
        db.store
            .update_skill(Versioned {
                row: s1,
                expected: Version(1),
                activity: vec![],
            })
            .await,
        Err(StoreError::StaleVersion { .. })
    ));

    for (i, outcome) in [ReflectionOutcome::Succeeded, ReflectionOutcome::Failed]
        .into_iter()
        .enumerate()
    {
        db.store
            .create_reflection(Created::new(
                Reflection {
                    id: id::<ReflectionId>(),
                    agent_id: a.id,
                    run_id: None,
                    issue_key: Some(IssueKey::parse("MESA-1").unwrap()),
                    outcome,
                    body: format!("lesson {i}"),
                    created_at: t(10 + i64::try_from(i).unwrap()),
                },
                vec![],
            ))
            .await
            .unwrap();
    }
    let rs = db.store.reflections(a.id, 5).await.unwrap();
    assert_eq!(
        rs.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        ["lesson 1", "lesson 0"]
    );
    assert_eq!(db.store.reflections(a.id, 1).await.unwrap().len(), 1);
}

fn memory(agent: Option<AgentId>, content: &str, at: i64) -> MemoryItem {
    MemoryItem {
        id: id::<MemoryItemId>(),
        agent_id: agent,
        content: content.to_owned(),
        tags: vec!["ops".to_owned()],
        created_at: t(at),
        recalled_count: 0,
        last_recalled_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_recall_counts_and_scopes() {
    let db = db().await;
    let ada = create_agent(&db, "ada").await;
    let bob = create_agent(&db, "bob").await;
    for (owner, content, at) in [
        (Some(ada.id), "Staging deploys need the VPN", 1),
        (Some(ada.id), "The staging DB is slow on Mondays", 2),
        (Some(bob.id), "Staging password rotates weekly", 3),
        (None, "Shared: staging lives at staging.example", 4),
        (None, "100% of deploys go through CI", 5),
    ] {
        db.store
            .create_memory(Created::new(memory(owner, content, at), vec![]))
            .await
            .unwrap();
    }

    // Own and shared items, every word matching (case-insensitively), newest first.
    let got = db
        .store
        .recall_memory(Some(ada.id), "STAGING", 10, t(100))
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        [
            "Shared: staging lives at staging.example",
            "The staging DB is slow on Mondays",
            "Staging deploys need the VPN"
        ]
    );
    assert!(
        got.iter()
            .all(|m| m.recalled_count == 1 && m.last_recalled_at == Some(t(100)))
    );
    let got = db
        .store
        .recall_memory(Some(ada.id), "staging deploy", 10, t(200))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recalled_count, 2);
    assert_eq!(got[0].last_recalled_at, Some(t(200)));

    // LIMIT counts only the most recent; wildcards in the query are literal.
    let got = db
        .store
        .recall_memory(Some(ada.id), "staging", 1, t(300))
        .await
        .unwrap();
    assert_eq!(got[0].content, "Shared: staging lives at staging.example");
    let got = db
        .store
        .recall_memory(Some(ada.id), "100%", 10, t(300))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        db.store
            .recall_memory(Some(ada.id), "1_0", 10, t(300))
            .await
            .unwrap()
            .is_empty()
    );

    // Tags match too; without an agent only shared items are recalled.
    let shared = db
        .store
        .recall_memory(None, "ops", 10, t(400))
        .await
        .unwrap();
    assert_eq!(shared.len(), 2);
    assert!(shared.iter().all(|m| m.agent_id.is_none()));

    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT content, recalled_count FROM memory_items ORDER BY created_at")
            .fetch_all(&db.raw)
            .await
            .unwrap();
    assert_eq!(
        counts.iter().map(|c| c.1).collect::<Vec<_>>(),
        [2, 1, 0, 3, 2]
    );
}

// ---------------------------------------------------------------------------------------------
// Governance

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn directives_crons_and_audits() {
    let db = db().await;
    let ada = create_agent(&db, "ada").await;

    let d = db
        .store
        .create_directive(Created::new(
            Directive {
                id: id::<DirectiveId>(),
                text: "Write tests first.".to_owned(),
                active: true,
                created_at: t(1),
                updated_at: t(1),
                version: Version::FIRST,
            },
            act("directive.created", "d"),
        ))
        .await
        .unwrap();
    let mut off = d.clone();
    off.active = false;
    let off = db
        .store
        .update_directive(Versioned {
            row: off,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!((off.version, off.active), (Version(2), false));
    assert!(matches!(
        db.store
            .update_directive(Versioned {
                row: d.clone(),
                expected: Version(1),
                activity: vec![],
            })
            .await,
        Err(StoreError::StaleVersion { .. })
    ));
    assert_eq!(db.store.list_directives().await.unwrap(), [off]);
    db.store.delete_directive(d.id, vec![]).await.unwrap();
    assert!(db.store.list_directives().await.unwrap().is_empty());
    assert!(matches!(
        db.store.delete_directive(d.id, vec![]).await,
        Err(StoreError::NotFound { .. })
    ));

    let c = db
        .store
        .create_cron(Created::new(
            Cron {
                id: id::<CronId>(),
                agent_id: ada.id,
                task: "Check the error budget.".to_owned(),
                schedule: "1h".to_owned(),
                active: true,
                last_run_at: None,
                next_run_at: Some(t(3_600_000)),
                created_at: t(1),
                updated_at: t(1),
                version: Version::FIRST,
            },
            vec![],
        ))
        .await
        .unwrap();
    let mut fired = c.clone();
    fired.last_run_at = Some(t(3_600_000));
    fired.next_run_at = Some(t(7_200_000));
    let fired = db
        .store
        .update_cron(Versioned {
            row: fired,
            expected: Version(1),
            activity: vec![],
        })
        .await
        .unwrap();
    assert_eq!(fired.version, Version(2));
    assert_eq!(db.store.list_crons().await.unwrap(), [fired]);
    assert!(matches!(
        db.store
            .update_cron(Versioned {
                row: c.clone(),
                expected: Version(1),
                activity: vec![],
            })
            .await,
        Err(StoreError::StaleVersion { .. })
    ));
    let mut orphan = c.clone();
    orphan.id = id();
    orphan.agent_id = id();
    assert!(matches!(
        db.store.create_cron(Created::new(orphan, vec![])).await,
        Err(StoreError::Conflict { .. })
    ));
    db.store.delete_cron(c.id, vec![]).await.unwrap();
    assert!(db.store.list_crons().await.unwrap().is_empty());

    let mut audits = Vec::new();
    for at in [1, 2] {
        audits.push(
            db.store
                .create_audit(Created::new(
                    Audit {
                        id: id::<AuditId>(),
                        run_id: None,
                        focus: Some("reviews".to_owned()),
                        status: AuditStatus::Running,
                        findings: None,
                        figures: None,
                        window_days: 14,
                        patches_proposed: 0,
                        issues_created: 0,
                        created_at: t(at),
                        finished_at: None,
                    },
                    vec![],
                ))
                .await
                .unwrap(),
        );
    }
    let mut done = audits[0].clone();
    done.status = AuditStatus::Finished;
    done.findings = Some("QA rejects 40% of frontend work.".to_owned());
    done.patches_proposed = 1;
    done.finished_at = Some(t(50));
    db.store.update_audit(done.clone()).await.unwrap();
    let listed = db.store.list_audits().await.unwrap();
    assert_eq!(listed, [audits[1].clone(), done], "newest first");
    let mut ghost = audits[1].clone();
    ghost.id = id();
    assert!(matches!(
        db.store.update_audit(ghost).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        db.count("SELECT COUNT(*) FROM activity WHERE action = 'directive.created'")
            .await,
        1
    );
}
