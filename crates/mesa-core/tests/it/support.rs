//! The shared harness: a bootstrapped Mesa on a temporary SQLite file with a fake clock.

use std::sync::Arc;

use mesa_core::domain::entity::Agent;
use mesa_core::domain::{Actor, Timestamp, WorkingDir};
use mesa_core::{CoreConfig, FakeClock, Mesa};

pub(crate) struct TestMesa {
    pub(crate) mesa: Mesa,
    pub(crate) clock: FakeClock,
    pub(crate) board: Actor,
    _dir: tempfile::TempDir,
}

impl TestMesa {
    /// A `startup` org.
    pub(crate) async fn new() -> Self {
        Self::with_template("startup").await
    }

    pub(crate) async fn with_template(template: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = CoreConfig::new(
            dir.path(),
            WorkingDir::parse(&dir.path().to_string_lossy()).unwrap(),
        );
        config.template = template.to_owned();
        let clock = FakeClock::new(Timestamp::parse_rfc3339("at", "2026-11-25T09:00:00Z").unwrap());
        let mesa = Mesa::builder()
            .sqlite(dir.path().join("mesa.db"))
            .config(config)
            .clock(Arc::new(clock.clone()))
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty()
            .await
            .unwrap()
            .expect("a new database bootstraps");
        TestMesa {
            mesa,
            clock,
            board: Actor::board("test"),
            _dir: dir,
        }
    }

    pub(crate) async fn agent(&self, slug: &str) -> Agent {
        self.mesa.find_agent(slug).await.unwrap()
    }

    pub(crate) async fn actor(&self, slug: &str) -> Actor {
        let a = self.agent(slug).await;
        Actor::Agent {
            id: a.id,
            slug: a.slug,
        }
    }

    /// Rows in the activity log (a cheap "did anything get written" probe).
    pub(crate) async fn activity_count(&self) -> u64 {
        self.mesa.verify_activity().await.unwrap().checked
    }
}
