//! A fresh database per test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mesa_domain::entity::AgentConfig;
use mesa_domain::{AgentId, Name, RunnerKind, Slug, WorkingDir};
use mesa_store::conformance::{AGENTS_NEEDED, BASE};
use mesa_store_sqlite::SqliteStore;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tempfile::TempDir;

/// A migrated database in a temp directory, with [`AGENTS_NEEDED`] agents.
pub(crate) struct TestDb {
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) agents: Vec<AgentId>,
    dir: TempDir,
}

impl TestDb {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mesa.db");
        let store = SqliteStore::open_path(&path).await.expect("open store");
        let agents = insert_agents(&path, AGENTS_NEEDED).await;
        TestDb {
            store: Arc::new(store),
            agents,
            dir,
        }
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().join("mesa.db")
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A plain connection pool to the database file, outside the store (as another process or
/// the `sqlite3` shell would be).
pub(crate) async fn raw_pool(path: &Path) -> SqlitePool {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5)),
        )
        .await
        .expect("raw connection")
}

/// Agents as foreign-key targets, inserted with SQL so these tests do not depend on the
/// `AgentStore` implementation.
async fn insert_agents(path: &Path, n: usize) -> Vec<AgentId> {
    let pool = raw_pool(path).await;
    let mut tx = pool.begin().await.expect("begin");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = AgentId::from_uuid(uuid::Uuid::now_v7());
        let config = AgentConfig::new(
            Name::parse(&format!("Agent {i}")).expect("name"),
            Slug::parse("backend").expect("slug"),
            RunnerKind::Noop,
            WorkingDir::parse("/tmp").expect("dir"),
        );
        sqlx::query(
            "INSERT INTO agents (id, slug, name, archetype, runner, model, working_dir, active, \
             config, created_at, updated_at, version) \
             VALUES (?, ?, ?, 'backend', 'noop', '', '/tmp', 1, ?, ?, ?, 1)",
        )
        .bind(id.to_string())
        .bind(format!("agent-{i}"))
        .bind(format!("Agent {i}"))
        .bind(serde_json::to_string(&config).expect("config json"))
        .bind(BASE.as_millis())
        .bind(BASE.as_millis())
        .execute(&mut *tx)
        .await
        .expect("insert agent");
        ids.push(id);
    }
    tx.commit().await.expect("commit");
    pool.close().await;
    ids
}
