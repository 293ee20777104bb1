//! Relevance of reflections and skills (SPEC §4.3) on a real SQLite file: the reflection
//! index of migration 0007, active-skill search, and skill uses counted from runs.

use mesa_domain::entity::{Reflection, Skill};
use mesa_domain::{
    AgentId, IssueKey, ReflectionId, ReflectionOutcome, RunId, SkillId, Slug, Timestamp, Title,
    Version,
};
use mesa_store::{Created, KnowledgeStore, StoreError};

use crate::support::{TestDb, raw_pool};

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn reflection(agent: AgentId, issue: Option<&str>, body: &str, at: i64) -> Reflection {
    Reflection {
        id: ReflectionId::from_uuid(uuid::Uuid::now_v7()),
        agent_id: agent,
        run_id: None,
        issue_key: issue.map(|k| IssueKey::parse(k).unwrap()),
        outcome: ReflectionOutcome::Succeeded,
        body: body.to_owned(),
        created_at: t(at),
    }
}

fn skill(slug: &str, title: &str, body: &str, tags: &[&str], active: bool) -> Skill {
    Skill {
        id: SkillId::from_uuid(uuid::Uuid::now_v7()),
        slug: Slug::parse(slug).unwrap(),
        title: Title::parse(title).unwrap(),
        body: body.to_owned(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        source: "board".to_owned(),
        promoted_by: "board:test".to_owned(),
        uses: 0,
        successes: 0,
        active,
        created_at: t(1),
        updated_at: t(1),
        version: Version::FIRST,
    }
}

async fn put(db: &TestDb, r: Reflection) -> Reflection {
    db.store
        .create_reflection(Created::new(r, vec![]))
        .await
        .unwrap()
}

fn bodies(rs: &[Reflection]) -> Vec<&str> {
    rs.iter().map(|r| r.body.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflections_are_found_by_issue_and_by_stemmed_words_of_one_agent() {
    let db = TestDb::new().await;
    let (ada, bob) = (db.agents[0], db.agents[1]);
    put(
        &db,
        reflection(
            ada,
            Some("MESA-1"),
            "Run the migrations before the tests.",
            1,
        ),
    )
    .await;
    put(
        &db,
        reflection(ada, Some("MESA-2"), "The login form needs a CSRF token.", 2),
    )
    .await;
    put(
        &db,
        reflection(
            ada,
            None,
            "Migration files are never edited once applied.",
            3,
        ),
    )
    .await;
    put(
        &db,
        reflection(ada, Some("MESA-1"), "Check the seed data too.", 4),
    )
    .await;
    put(
        &db,
        reflection(bob, Some("MESA-1"), "Migrations: bob's own lesson.", 5),
    )
    .await;

    let on_issue = db
        .store
        .reflections_on_issue(ada, &IssueKey::parse("MESA-1").unwrap(), 5)
        .await
        .unwrap();
    assert_eq!(
        bodies(&on_issue),
        [
            "Check the seed data too.",
            "Run the migrations before the tests."
        ]
    );

    // Stemming: "migration" finds "migrations" and "Migration"; bob's reflection is not ada's.
    let found = db
        .store
        .search_reflections(ada, "Add a database migration", 5)
        .await
        .unwrap();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found.iter().all(|r| r.agent_id == ada));
    assert!(bodies(&found).contains(&"Run the migrations before the tests."));
    // The better match (two shared words) comes first.
    let found = db
        .store
        .search_reflections(ada, "login token", 5)
        .await
        .unwrap();
    assert_eq!(bodies(&found), ["The login form needs a CSRF token."]);
    assert!(
        db.store
            .search_reflections(ada, "kubernetes", 5)
            .await
            .unwrap()
            .is_empty()
    );
    // Nothing in the query is FTS5 syntax.
    for nasty in [
        r#"" OR agent : *"#,
        "NEAR(a b)",
        "body:",
        "'; DROP TABLE reflections; --",
    ] {
        db.store.search_reflections(ada, nasty, 5).await.unwrap();
    }
    assert_eq!(
        db.store
            .search_reflections(ada, "migration", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        db.store
            .search_reflections(ada, "", 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_search_ranks_only_the_newest_window() {
    let db = TestDb::new().await;
    let ada = db.agents[0];
    put(
        &db,
        reflection(ada, None, "An ancient lesson about caching.", 0),
    )
    .await;
    // 500 newer reflections push it out of the ranked window.
    let pool = raw_pool(&db.path()).await;
    for i in 1..=500_i64 {
        sqlx::query(
            "INSERT INTO reflections (id, agent_id, run_id, issue_key, outcome, body, created_at) \
             VALUES (?, ?, NULL, NULL, 'succeeded', ?, ?)",
        )
        .bind(ReflectionId::from_uuid(uuid::Uuid::now_v7()).to_string())
        .bind(ada.to_string())
        .bind(format!("Lesson number {i} about testing."))
        .bind(t(i).as_millis())
        .execute(&pool)
        .await
        .unwrap();
    }
    assert!(
        db.store
            .search_reflections(ada, "caching", 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.store
            .search_reflections(ada, "testing", 5)
            .await
            .unwrap()
            .len(),
        5
    );
    // A new one about caching is found again.
    put(&db, reflection(ada, None, "Caching needs an expiry.", 1000)).await;
    let found = db
        .store
        .search_reflections(ada, "caching", 5)
        .await
        .unwrap();
    assert_eq!(bodies(&found), ["Caching needs an expiry."]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflections_by_id_and_by_run() {
    let db = TestDb::new().await;
    let ada = db.agents[0];
    let r = put(&db, reflection(ada, None, "x", 1)).await;
    assert_eq!(db.store.reflection(r.id).await.unwrap(), r);
    let missing = ReflectionId::from_uuid(uuid::Uuid::now_v7());
    assert!(matches!(
        db.store.reflection(missing).await,
        Err(StoreError::NotFound { .. })
    ));
    let run = insert_run(&db, ada, None, "succeeded").await;
    assert!(!db.store.run_has_reflection(run).await.unwrap());
    let mut bound = reflection(ada, None, "bound", 2);
    bound.run_id = Some(run);
    put(&db, bound).await;
    assert!(db.store.run_has_reflection(run).await.unwrap());
}

async fn insert_issue(db: &TestDb, key: &str, status: &str) {
    let pool = raw_pool(&db.path()).await;
    let open = i64::from(!matches!(status, "done" | "wont_do" | "cancelled"));
    sqlx::query(
        "INSERT INTO issues (id, key, number, title, title_norm, type, status, open, created_by, \
         status_changed_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, 'task', ?, ?, 'board', 0, 0, 0)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(key)
    .bind(key.rsplit('-').next().unwrap().parse::<i64>().unwrap())
    .bind(format!("Issue {key}"))
    .bind(format!("issue {key}").to_lowercase())
    .bind(status)
    .bind(open)
    .execute(&pool)
    .await
    .unwrap();
}

async fn insert_run(db: &TestDb, agent: AgentId, issue: Option<&str>, status: &str) -> RunId {
    let pool = raw_pool(&db.path()).await;
    let id = RunId::from_uuid(uuid::Uuid::now_v7());
    sqlx::query(
        "INSERT INTO runs (id, agent_id, issue_key, mode, status, triggers, runner, queued_at) \
         VALUES (?, ?, ?, 'task', ?, '[\"manual\"]', 'noop', 0)",
    )
    .bind(id.to_string())
    .bind(agent.to_string())
    .bind(issue)
    .bind(status)
    .execute(&pool)
    .await
    .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relevant_skills_are_active_matches_best_first() {
    let db = TestDb::new().await;
    for s in [
        skill(
            "sql-migrations",
            "Writing SQL migrations",
            "Never edit an applied one.",
            &["database"],
            true,
        ),
        skill(
            "flaky-tests",
            "Taming flaky tests",
            "Retry once, then quarantine.",
            &["ci"],
            true,
        ),
        skill(
            "old-migrations",
            "Migrations the old way",
            "Superseded.",
            &[],
            false,
        ),
    ] {
        db.store
            .create_skill(Created::new(s, vec![]))
            .await
            .unwrap();
    }
    let got = db
        .store
        .relevant_skills("Add a migration for the database index", 5)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|s| s.slug.as_str()).collect::<Vec<_>>(),
        ["sql-migrations"],
        "inactive skills are never offered"
    );
    assert!(
        db.store
            .relevant_skills("Design the landing page", 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.store
            .relevant_skills("tests database", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(db.store.relevant_skills("  ", 5).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skill_uses_and_successes_are_counted_from_runs() {
    let db = TestDb::new().await;
    let ada = db.agents[0];
    let s = db
        .store
        .create_skill(Created::new(
            skill("sql-migrations", "Writing SQL migrations", "b", &[], true),
            vec![],
        ))
        .await
        .unwrap();
    let other = db
        .store
        .create_skill(Created::new(
            skill("other", "Other", "b", &[], true),
            vec![],
        ))
        .await
        .unwrap();
    insert_issue(&db, "MESA-1", "done").await;
    insert_issue(&db, "MESA-2", "in_review").await;
    let done_ok = insert_run(&db, ada, Some("MESA-1"), "succeeded").await;
    let done_failed = insert_run(&db, ada, Some("MESA-1"), "failed").await;
    let open_ok = insert_run(&db, ada, Some("MESA-2"), "succeeded").await;
    for run in [done_ok, done_failed, open_ok] {
        db.store
            .record_skill_uses(run, &[s.id], t(5))
            .await
            .unwrap();
    }
    // Recording again is a no-op; no skills is nothing.
    db.store
        .record_skill_uses(done_ok, &[s.id, other.id], t(6))
        .await
        .unwrap();
    db.store
        .record_skill_uses(done_ok, &[], t(6))
        .await
        .unwrap();

    let got = db.store.skill(&s.slug).await.unwrap();
    assert_eq!((got.uses, got.successes), (3, 1));
    let got = db.store.skill(&other.slug).await.unwrap();
    assert_eq!((got.uses, got.successes), (1, 1));
    let listed = db.store.list_skills(None).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|s| (s.uses, s.successes))
            .collect::<Vec<_>>(),
        [(1, 1), (3, 1)]
    );
    // The issue of the open run is approved: its run counts as a success from then on.
    let pool = raw_pool(&db.path()).await;
    sqlx::query("UPDATE issues SET status = 'done', open = 0 WHERE key = 'MESA-2'")
        .execute(&pool)
        .await
        .unwrap();
    let got = db.store.skill(&s.slug).await.unwrap();
    assert_eq!((got.uses, got.successes), (3, 2));
    // A use names an existing run.
    let ghost = RunId::from_uuid(uuid::Uuid::now_v7());
    assert!(
        db.store
            .record_skill_uses(ghost, &[s.id], t(7))
            .await
            .is_err()
    );
}
