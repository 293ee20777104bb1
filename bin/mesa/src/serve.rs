//! `mesa serve`: open, bootstrap if new, serve until SIGINT/SIGTERM, then shut down cleanly.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use mesa_http::AppState;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::ops::{DbLock, open_mesa};

pub(crate) async fn serve(config: Config) -> anyhow::Result<std::process::ExitCode> {
    // reqwest (the openai_compat and simulated runners) needs a crypto provider even for
    // plain http; Err means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _lock = DbLock::acquire(&config.db)?;
    // Listening for signals from now on: one that arrives while the server is still starting
    // (after it printed its address) shuts it down cleanly instead of killing it.
    let signal = shutdown_signal();
    let mesa = open_mesa(&config).await?;
    let boot = mesa.start_boot().await?;
    tracing::debug!(boot, "recorded this start");
    if let Some(token) = &config.board_token {
        mesa.ensure_env_board_token(&token.0)
            .await
            .context("MESA_BOARD_TOKEN")?;
    }
    if let Some(report) = mesa.bootstrap_if_empty().await? {
        tracing::info!(
            template = %report.template,
            agents = report.agents.len(),
            archetypes = report.archetypes,
            runner = %report.runner,
            "bootstrapped a new org"
        );
        if report.runner == mesa_core::domain::RunnerKind::DryRun {
            tracing::warn!(
                "no agent CLI (claude, codex, gemini, opencode, copilot) found on PATH: agents use \
                 the dry_run runner until one is installed (see `mesa doctor`)"
            );
        }
    }

    let ip: IpAddr = config
        .bind
        .parse()
        .with_context(|| format!("bind address {:?} is not an IP address", config.bind))?;
    let addr = SocketAddr::new(ip, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if !ip.is_loopback() {
        tracing::warn!(%local, "listening beyond loopback: put a TLS-terminating proxy in front and set public_url");
    }
    tracing::info!(db = %config.db.display(), "database ready");
    // Whoever started us may have stopped reading stdout (a closed pipe): that is no reason
    // to fail, so write errors are ignored.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Mesa is running at http://{local}/  (database {})",
        config.db.display()
    );
    // The first start has no board token yet: mint the owner's and print a one-time link
    // that signs the browser in (later, sign in with a token: `mesa token create --name <name>`).
    if let Some(code) = mesa.first_start_login_code().await? {
        let _ = writeln!(
            out,
            "First start: open http://{local}/login/link?code={code} to sign in (works once, within 24 hours)"
        );
    }
    let _ = out.flush();

    let scheduler = mesa.start_scheduler(engine_config(&config, local));
    let integrations = mesa_http::integrations::start(
        mesa.clone(),
        mesa_http::integrations::CancellationToken::new(),
    );
    let mut state = AppState::new(mesa.clone());
    if let Some(dir) = std::env::var_os("MESA_DEV_TEMPLATES").filter(|d| !d.is_empty()) {
        tracing::info!(dir = %std::path::Path::new(&dir).display(), "templates are read from disk");
        state.ui = std::sync::Arc::new(mesa_http::ui::Ui::new(mesa_http::ui::Templates::from_dir(
            dir,
        )));
    }
    // On a signal the scheduler stops first, while the API still answers the runs it gives
    // their grace period to; then the server stops.
    let shutdown = async move {
        signal.await;
        tracing::info!("stopping the scheduler");
        scheduler.shutdown().await;
        integrations.shutdown().await;
    };
    mesa_http::serve(listener, state, shutdown)
        .await
        .context("server failed")?;
    tracing::info!("shutting down");
    mesa.close().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The scheduler's configuration: runners call the API on loopback at the bound port, get an
/// allow-listed part of this process's environment, and never see the board token.
fn engine_config(config: &Config, local: SocketAddr) -> mesa_core::EngineConfig {
    let host = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
    } else {
        local
    };
    let mut engine = mesa_core::EngineConfig::new(format!("http://{host}"));
    engine.max_runs = config.max_runs.max(1);
    engine.server_env = std::env::vars().collect();
    engine.secrets = config.board_token.iter().map(|t| t.0.clone()).collect();
    engine
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let terminate = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(terminate) => {},
                () = received(interrupt) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
