//! Connections: one writer, a pool of readers, and the write-transaction helper.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use mesa_store::{Result, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::error::backend;

/// `PRAGMA synchronous` for the writer. `Full` (the default) makes every commit durable across
/// power loss; `Normal` is durable across process crashes only, and faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// fsync the WAL on every commit.
    #[default]
    Full,
    /// fsync at checkpoints only.
    Normal,
}

impl FromStr for Synchronous {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            other => Err(format!("synchronous must be full or normal, got {other:?}")),
        }
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created if missing.
    pub path: PathBuf,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock before failing.
    pub busy_timeout: Duration,
    /// Read connections.
    pub readers: u32,
}

impl SqliteOptions {
    /// Defaults for a file: `synchronous=FULL`, 5 s busy timeout, 4 readers.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteOptions {
            path: path.into(),
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }
}

/// The SQLite store. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    /// Issue creations waiting for the next group commit ([`crate::create`]).
    pub(crate) creates: std::sync::Arc<crate::create::CreateQueue>,
    /// Checkouts waiting for their group commit.
    pub(crate) checkouts: std::sync::Arc<crate::checkout::CheckoutQueue>,
    /// Wake-ups waiting for their group commit ([`crate::runs`]).
    pub(crate) enqueues: std::sync::Arc<crate::runs::EnqueueQueue>,
    /// The background checkpoint task, once started: its stop signal and handle.
    checkpointer: std::sync::Arc<tokio::sync::Mutex<Option<Checkpointer>>>,
    /// How connections are made (the checkpoint task opens its own).
    connect: SqliteConnectOptions,
    path: PathBuf,
    /// The WAL-index file (`<path>-shm`), read by [`SqliteStore::data_version`].
    pub(crate) shm: Option<std::sync::Arc<std::fs::File>>,
    /// What this store's recorded commits changed ([`crate::version`]).
    pub(crate) commits: std::sync::Arc<std::sync::Mutex<crate::version::CommitLog>>,
    /// Tracked writes between their `COMMIT` and the recording of their link.
    pub(crate) committing: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

type Checkpointer = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

/// How often the checkpoint task runs (see [`SqliteStore::start_checkpoints`]).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// WAL pages left uncheckpointed after which the task waits for readers and restarts the WAL
/// (about 64 MiB of 4 KiB pages).
pub const WAL_LIMIT_PAGES: i64 = 16_384;

/// `PRAGMA mmap_size`: 64 GiB of address space, more than any Mesa database needs.
const MMAP_SIZE: &str = "68719476736";

impl SqliteStore {
    /// Opens (creating if missing) the database at `options.path` and applies pending
    /// migrations. WAL mode, foreign keys on, busy timeout, the chosen `synchronous`.
    pub async fn open(options: SqliteOptions) -> Result<Self> {
        let sync = match options.synchronous {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        };
        let base = SqliteConnectOptions::new()
            .filename(&options.path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000")
            // Reads map the file instead of copying pages through read(2) into each
            // connection's cache: a page another connection's commit did not touch stays
            // valid, and a million-issue database serves inbox pages without syscalls.
            // Address space only; the kernel's page cache holds the data either way.
            .pragma("mmap_size", MMAP_SIZE);

        // One writer: every write transaction queues for this connection, then takes the
        // database lock with BEGIN IMMEDIATE. The pool's acquire timeout bounds the wait.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // A local file connection does not go stale; pinging it before every use would
            // double the round trips of every transaction.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        crate::MIGRATOR
            .run(&writer)
            .await
            .map_err(StoreError::backend)?;

        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .min_connections(0)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(backend)?;
        // The writer connection stays open for the store's life, so the WAL-index file it
        // created stays the one every connection (and every other process) uses.
        let shm = std::fs::File::open(crate::version::shm_path(&options.path))
            .ok()
            .map(std::sync::Arc::new);
        Ok(SqliteStore {
            writer,
            reader,
            creates: std::sync::Arc::default(),
            checkouts: std::sync::Arc::default(),
            enqueues: std::sync::Arc::default(),
            checkpointer: std::sync::Arc::default(),
            connect: base,
            path: options.path,
            shm,
            commits: std::sync::Arc::default(),
            committing: std::sync::Arc::default(),
        })
    }

    /// Opens with the default options.
    pub async fn open_path(path: impl AsRef<Path>) -> Result<Self> {
        Self::open(SqliteOptions::new(path.as_ref())).await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves WAL checkpoints off the writer. By default SQLite checkpoints inside the commit
    /// that crosses 1,000 WAL pages, so that commit — and every caller queued behind the one
    /// writer — waits for pages to be copied into a large file and fsynced (hundreds of
    /// milliseconds at a million issues). After this call the writer never checkpoints; a task
    /// with a connection of its own runs a `PASSIVE` checkpoint every [`CHECKPOINT_EVERY`]
    /// (which never blocks the writer or readers), and a `RESTART` one when the WAL has grown
    /// past [`WAL_LIMIT_PAGES`] because readers kept PASSIVE from finishing. Stops on
    /// [`SqliteStore::close`]. Idempotent.
    pub async fn start_checkpoints(&self) -> Result<()> {
        let mut running = self.checkpointer.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .connect_with(self.connect.clone())
            .await
            .map_err(backend)?;
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let pool = checkpointer.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let passive: Result<(i64, i64, i64)> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&pool)
                        .await
                        .map_err(backend);
                match passive {
                    // (busy, frames in the WAL, frames checkpointed)
                    Ok((_, log, done)) if log - done > WAL_LIMIT_PAGES => {
                        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                            .execute(&pool)
                            .await
                        {
                            tracing::warn!(error = %err, "WAL restart checkpoint failed");
                        }
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed"),
                }
            }
            pool.close().await;
        });
        *running = Some((stop, task));
        Ok(())
    }

    /// Closes both pools, checkpointing the WAL.
    pub async fn close(&self) {
        if let Some((stop, task)) = self.checkpointer.lock().await.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE` on the writer connection.
    pub(crate) async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }
}
