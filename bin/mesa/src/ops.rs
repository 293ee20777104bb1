//! The operational commands: init, migrate, doctor, backup, restore, audit verify.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use mesa_core::domain::{RunnerKind, WorkingDir};
use mesa_core::store_sqlite::SqliteOptions;
use mesa_core::{CoreConfig, Mesa};

use crate::config::Config;

/// An exclusive lock on `<db>.lock`, held while a server uses the database, so two servers
/// never share one file and `mesa restore` never replaces a live database.
pub(crate) struct DbLock {
    _file: File,
}

impl DbLock {
    pub(crate) fn acquire(db: &Path) -> anyhow::Result<DbLock> {
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let path = lock_path(db);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DbLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!(
                    "another Mesa process is using {}; stop it first",
                    db.display()
                )
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

/// Agent CLIs found on PATH.
pub(crate) fn runners_on_path() -> Vec<(RunnerKind, Option<PathBuf>)> {
    RunnerKind::CLI_PREFERENCE
        .iter()
        .map(|r| (*r, r.binary().and_then(find_on_path)))
        .collect()
}

fn find_on_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Opens the configured database (creating it and its directory) and builds the core.
pub(crate) async fn open_mesa(config: &Config) -> anyhow::Result<Mesa> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    if let Some(dir) = config.db.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let workspace = WorkingDir::parse(&config.workspace.to_string_lossy())
        .map_err(|e| anyhow::anyhow!("workspace: {e}"))?;
    let mut core = CoreConfig::new(&config.data_dir, workspace);
    core.template = config.template.clone();
    core.archetypes_dir = config.archetypes.clone();
    core.available_runners = runners_on_path()
        .into_iter()
        .filter(|(_, p)| p.is_some())
        .map(|(r, _)| r)
        .collect();
    let mut options = SqliteOptions::new(&config.db);
    options.synchronous = config.synchronous;
    Mesa::builder()
        .sqlite_options(options)
        .config(core)
        .build()
        .await
        .with_context(|| format!("cannot open database {}", config.db.display()))
}

pub(crate) async fn init(config: &Config) -> anyhow::Result<ExitCode> {
    let _lock = DbLock::acquire(&config.db)?;
    let mesa = open_mesa(config).await?;
    let report = mesa.bootstrap(&config.template).await?;
    println!(
        "Initialized {} with the {} org: {} agents ({}) on the {} runner, {} archetypes.",
        config.db.display(),
        report.template,
        report.agents.len(),
        report
            .agents
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        report.runner,
        report.archetypes
    );
    mesa.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    let mesa = open_mesa(config).await?;
    println!(
        "{} is up to date (ready: {}).",
        config.db.display(),
        mesa.ready().await?
    );
    mesa.close().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn doctor(config: &Config) -> anyhow::Result<ExitCode> {
    let mut broken = false;
    match find_on_path("git") {
        Some(path) => println!("ok      git: {}", path.display()),
        None => {
            broken = true;
            println!("FAIL    git: not found on PATH (needed for worktrees)");
        }
    }
    let mut any_cli = false;
    for (runner, path) in runners_on_path() {
        let binary = runner.binary().unwrap_or_default();
        match path {
            Some(p) => {
                any_cli = true;
                println!("ok      {runner}: {}", p.display());
            }
            None => println!("missing {runner}: `{binary}` not on PATH"),
        }
    }
    if !any_cli {
        println!("warning no agent CLI found: agents run with dry_run until one is installed");
    }
    match open_mesa(config).await {
        Ok(mesa) => {
            let ready = mesa.ready().await.unwrap_or(false);
            let integrity = mesa
                .integrity_check()
                .await
                .unwrap_or_else(|e| vec![e.to_string()]);
            let ok = ready && integrity == ["ok"];
            broken |= !ok;
            println!(
                "{}database {}: migrations {}, integrity {}",
                if ok { "ok      " } else { "FAIL    " },
                config.db.display(),
                if ready { "applied" } else { "pending" },
                integrity.join("; ")
            );
            mesa.close().await;
        }
        Err(e) => {
            broken = true;
            println!("FAIL    database {}: {e:#}", config.db.display());
        }
    }
    println!("mesa {}", env!("CARGO_PKG_VERSION"));
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) async fn backup(config: &Config, file: &Path) -> anyhow::Result<ExitCode> {
    if !config.db.exists() {
        bail!("no database at {}", config.db.display());
    }
    let mesa = open_mesa(config).await?;
    let target = absolute(file)?;
    mesa.backup(&target)
        .await
        .with_context(|| format!("backup to {} failed", target.display()))?;
    mesa.close().await;
    println!("Backed up {} to {}.", config.db.display(), target.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn restore(config: &Config, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let source = absolute(file)?;
    if !source.is_file() {
        bail!("{} is not a file", source.display());
    }
    let _lock = DbLock::acquire(&config.db)?;
    if config.db.exists() && !force {
        bail!("{} exists; pass --force to replace it", config.db.display());
    }
    // Check the backup before touching anything: it must open as a Mesa database and pass the
    // integrity check. Work on a copy so the backup itself is never modified.
    let staging = config.db.with_extension("restore");
    remove_db_files(&staging)?;
    std::fs::copy(&source, &staging)
        .with_context(|| format!("cannot copy {}", source.display()))?;
    {
        let mut probe = config.clone();
        probe.db = staging.clone();
        let mesa = open_mesa(&probe)
            .await
            .context("the backup does not open as a Mesa database")?;
        let integrity = mesa.integrity_check().await?;
        mesa.close().await;
        if integrity != ["ok"] {
            remove_db_files(&staging)?;
            bail!(
                "the backup fails the integrity check: {}",
                integrity.join("; ")
            );
        }
    }
    remove_db_files(&config.db)?;
    std::fs::rename(&staging, &config.db)
        .context("cannot move the restored database into place")?;
    println!(
        "Restored {} from {}.",
        config.db.display(),
        source.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn audit_verify(config: &Config) -> anyhow::Result<ExitCode> {
    let mesa = open_mesa(config).await?;
    let report = mesa.verify_activity().await?;
    mesa.close().await;
    match report.first_bad {
        None => {
            println!(
                "activity log verified: {} rows, hash chain intact",
                report.checked
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(id) => {
            println!(
                "activity log BROKEN at row {id} ({} rows verified before it)",
                report.checked
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// Removes a database file and its WAL and shared-memory companions.
fn remove_db_files(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", db.display())),
        }
    }
    Ok(())
}

pub(crate) async fn token_create(
    config: &Config,
    name: &str,
    expires_at: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use mesa_core::domain::{Actor, Name, Timestamp};
    let mesa = open_mesa(config).await?;
    let name = Name::parse(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let expires_at = expires_at
        .map(|t| Timestamp::parse_rfc3339("expires_at", t))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--expires-at: {e}"))?;
    let minted = mesa
        .create_board_token(&Actor::board("cli"), name, expires_at)
        .await?;
    mesa.close().await;
    println!("{}", minted.raw);
    eprintln!(
        "Board token {} ({}) created; it is shown only once.",
        minted.key.id, minted.key.prefix
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn token_list(config: &Config) -> anyhow::Result<ExitCode> {
    let mesa = open_mesa(config).await?;
    let keys = mesa.keys(None).await?;
    mesa.close().await;
    println!(
        "{:<36}  {:<6}  {:<12}  {:<20}  STATE",
        "ID", "KIND", "PREFIX", "NAME"
    );
    for k in keys {
        let state = if k.revoked_at.is_some() {
            "revoked".to_owned()
        } else if let Some(t) = k.expires_at {
            format!("expires {t}")
        } else {
            "active".to_owned()
        };
        println!(
            "{:<36}  {:<6}  {:<12}  {:<20}  {state}",
            k.id, k.kind, k.prefix, k.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn token_revoke(config: &Config, id: &str) -> anyhow::Result<ExitCode> {
    use mesa_core::domain::{Actor, ApiKeyId};
    let id = ApiKeyId::parse(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mesa = open_mesa(config).await?;
    mesa.revoke_key(&Actor::board("cli"), id).await?;
    mesa.close().await;
    println!("Revoked {id}.");
    Ok(ExitCode::SUCCESS)
}
