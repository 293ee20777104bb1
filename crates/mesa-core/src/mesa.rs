//! [`Mesa`], the cheap-to-clone handle, and [`MesaBuilder`].

use std::path::PathBuf;
use std::sync::Arc;

use mesa_domain::entity::NewActivity;
use mesa_domain::{Actor, DomainEvent, Timestamp};
use mesa_store::Store;
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::config::CoreConfig;
use crate::error::{CoreError, Result};
use crate::events::EventBus;
use crate::settings::Settings;

/// The embeddable Mesa. Clones share everything.
#[derive(Clone)]
pub struct Mesa {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) events: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<CoreConfig>,
    /// Settings cached in memory; refreshed on every settings write.
    pub(crate) settings: RwLock<Settings>,
    /// The agent roster, cached between agent writes (see [`Mesa::roster`]).
    pub(crate) roster: RwLock<Option<Arc<Roster>>>,
    /// Bumped by every agent write, so a load that raced a write is not cached.
    pub(crate) roster_generation: std::sync::atomic::AtomicU64,
    /// Held while run output is appended and published, and while a log follower subscribes
    /// and reads the stored log, so a follower sees every chunk exactly once (`runs.rs`).
    pub(crate) run_log: tokio::sync::Mutex<()>,
    /// Read results kept while the store's data version stays the same (`read_cache.rs`).
    pub(crate) reads: crate::read_cache::ReadCache,
}

impl std::fmt::Debug for Mesa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesa")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Where the builder gets its store.
enum StoreSource {
    #[cfg(feature = "sqlite")]
    Sqlite(mesa_store_sqlite::SqliteOptions),
    Given(Arc<dyn Store>),
}

/// Builds a [`Mesa`]: choose a store, a configuration and (for tests) a clock.
#[must_use]
pub struct MesaBuilder {
    store: Option<StoreSource>,
    config: Option<CoreConfig>,
    clock: Arc<dyn Clock>,
}

impl Mesa {
    /// A new builder.
    pub fn builder() -> MesaBuilder {
        MesaBuilder {
            store: None,
            config: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The store (for front ends that need a query the core does not wrap yet, and tests).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.inner.config
    }

    /// The current time by this instance's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// A receiver of every committed change from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<DomainEvent>> {
        self.inner.events.subscribe()
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Publishes committed events.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = DomainEvent>) {
        self.inner.events.publish(events);
    }

    /// A new UUIDv7 for an entity id.
    pub(crate) fn new_id<T: From<Uuid>>() -> T {
        T::from(Uuid::now_v7())
    }

    /// An audit row by `actor` at now.
    pub(crate) fn activity(
        &self,
        actor: &Actor,
        action: &str,
        entity_type: &str,
        entity_id: impl Into<String>,
        summary: impl Into<String>,
        data: serde_json::Value,
    ) -> NewActivity {
        NewActivity {
            at: self.now(),
            actor: actor.to_string(),
            action: action.to_owned(),
            entity_type: entity_type.to_owned(),
            entity_id: entity_id.into(),
            summary: summary.into(),
            data,
        }
    }

    /// Publishes the activity rows a write produced (as `activity` events).
    pub(crate) fn publish_activity(&self, rows: Vec<mesa_domain::entity::ActivityEvent>) {
        self.publish(rows.into_iter().map(|r| DomainEvent::Activity(Box::new(r))));
    }

    /// Refuses anyone but the board.
    pub(crate) fn require_board(actor: &Actor, what: &str) -> Result<()> {
        if actor.is_board() || matches!(actor, Actor::System) {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!("only the board may {what}")))
        }
    }

    /// Whether the store answers and every migration is applied (for `/readyz`).
    pub async fn ready(&self) -> Result<bool> {
        Ok(self.inner.store.health().await?.is_ready())
    }

    /// Writes a consistent copy of the live database to `path` (which must not exist).
    pub async fn backup(&self, path: &std::path::Path) -> Result<()> {
        if tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Err(CoreError::Conflict(format!(
                "{} already exists",
                path.display()
            )));
        }
        self.inner.store.backup_to(path).await?;
        Ok(())
    }

    /// The database's own integrity check (`["ok"]` when healthy).
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        Ok(self.inner.store.integrity_check().await?)
    }
}

impl MesaBuilder {
    /// Uses a SQLite database file (created if missing) with default options.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(self, path: impl Into<PathBuf>) -> Self {
        self.sqlite_options(mesa_store_sqlite::SqliteOptions::new(path))
    }

    /// Uses a SQLite database with explicit options.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_options(mut self, options: mesa_store_sqlite::SqliteOptions) -> Self {
        self.store = Some(StoreSource::Sqlite(options));
        self
    }

    /// Uses a store built elsewhere.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(StoreSource::Given(store));
        self
    }

    /// Sets the configuration (default: data dir and workspace `/tmp/mesa`).
    pub fn config(mut self, config: CoreConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Uses another clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the store (running migrations) and loads settings. Spawns nothing.
    pub async fn build(self) -> Result<Mesa> {
        let store: Arc<dyn Store> = match self.store {
            #[cfg(feature = "sqlite")]
            Some(StoreSource::Sqlite(options)) => {
                Arc::new(mesa_store_sqlite::SqliteStore::open(options).await?)
            }
            Some(StoreSource::Given(store)) => store,
            None => {
                return Err(CoreError::Conflict(
                    "no store configured: call .sqlite(path) or .store(..)".into(),
                ));
            }
        };
        let config = match self.config {
            Some(c) => c,
            None => CoreConfig::new(
                std::env::temp_dir().join("mesa"),
                mesa_domain::WorkingDir::parse("/tmp").expect("an absolute path"),
            ),
        };
        let settings = Settings::load(store.as_ref()).await?;
        let mesa = Mesa {
            inner: Arc::new(Inner {
                store,
                events: EventBus::new(),
                clock: self.clock,
                config: Arc::new(config),
                settings: RwLock::new(settings),
                roster: RwLock::new(None),
                roster_generation: std::sync::atomic::AtomicU64::new(0),
                run_log: tokio::sync::Mutex::new(()),
                reads: crate::read_cache::ReadCache::default(),
            }),
        };
        // Issues submitted before reviewers were stored on them (or while the chart had none).
        mesa.refresh_reviewers(true).await?;
        Ok(mesa)
    }
}

impl Mesa {
    /// Records this start of the server and returns its boot number. Live-event ids of this
    /// process start above every id a previous boot gave (SPEC §9.4 `Last-Event-ID`). The
    /// server calls it once, before anything is published.
    pub async fn start_boot(&self) -> Result<u64> {
        let boot = self.inner.store.record_boot(self.now()).await?;
        self.inner.events.journal().start_boot(boot);
        // A long-running server: the store's upkeep (WAL checkpoints) leaves the request path.
        self.inner.store.start_maintenance().await?;
        Ok(boot)
    }

    /// Closes the store's connections (checkpointing the SQLite WAL). Call once at shutdown.
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

impl Mesa {
    /// Every agent, in creation order. Agents change rarely and are read by most commands (the
    /// CEO for new issues, the org chart for reviews, slugs for views), so the list is cached and
    /// dropped whenever this handle writes an agent.
    pub(crate) async fn roster(&self) -> Result<Arc<Roster>> {
        use std::sync::atomic::Ordering;
        if let Some(roster) = self.inner.roster.read().await.as_ref() {
            return Ok(Arc::clone(roster));
        }
        let generation = self.inner.roster_generation.load(Ordering::SeqCst);
        let roster = Arc::new(Roster::new(self.inner.store.list_agents().await?));
        let mut cache = self.inner.roster.write().await;
        if self.inner.roster_generation.load(Ordering::SeqCst) == generation {
            *cache = Some(Arc::clone(&roster));
        }
        Ok(roster)
    }

    /// Drops the cached roster after an agent write, and routes the issues under review
    /// through the changed org chart. The agent write has committed by then, so a failure to
    /// re-route is logged, not returned; the next agent write or start-up tries again.
    pub(crate) async fn forget_roster(&self) {
        self.inner
            .roster_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *self.inner.roster.write().await = None;
        if let Err(err) = self.refresh_reviewers(false).await {
            tracing::warn!(error = %err, "could not re-route the issues under review");
        }
    }
}

/// The cached list of agents, in creation order, with an index by id (views look an agent up
/// for every issue they show).
#[derive(Debug)]
pub(crate) struct Roster {
    agents: Vec<mesa_domain::entity::Agent>,
    by_id: std::collections::HashMap<mesa_domain::AgentId, usize>,
}

impl Roster {
    fn new(agents: Vec<mesa_domain::entity::Agent>) -> Self {
        let by_id = agents.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
        Roster { agents, by_id }
    }

    /// The agent with this id.
    pub(crate) fn get(&self, id: mesa_domain::AgentId) -> Option<&mesa_domain::entity::Agent> {
        self.by_id.get(&id).map(|&i| &self.agents[i])
    }

    /// Every agent, in creation order.
    pub(crate) fn to_vec(&self) -> Vec<mesa_domain::entity::Agent> {
        self.agents.clone()
    }
}

impl std::ops::Deref for Roster {
    type Target = [mesa_domain::entity::Agent];

    fn deref(&self) -> &Self::Target {
        &self.agents
    }
}
