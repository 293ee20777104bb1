//! `mesa`: the one binary. Serves Mesa (the default), and runs operations on its database.
//!
//! This is thin composition: parse the command line and configuration (flags > environment >
//! `mesa.toml` > defaults), install the tracing subscriber, build [`mesa_core::Mesa`], serve
//! [`mesa_http::router`], and handle signals. Everything else lives in the libraries.

#![expect(
    clippy::disallowed_methods,
    reason = "the binary is the one place that reads the environment and spawns helper commands"
)]
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program"
)]

mod client;
mod config;
mod demo;
mod ops;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Layer};

/// Mesa: a project-management server in which AI agents are the team.
#[derive(Debug, Parser)]
#[command(name = "mesa", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A bare port: `mesa 9090` serves on that port.
    port: Option<u16>,
    #[command(flatten)]
    common: Common,
}

/// Options every command shares.
#[derive(Debug, Clone, Args, Default)]
struct Common {
    /// SQLite database file (env DB; default DATA_DIR/mesa.db).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// Directory for Mesa's own files (env MESA_DATA_DIR; default ./.mesa).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Configuration file (default ./mesa.toml if it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format: human or json.
    #[arg(long, global = true)]
    log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and dashboard (the default).
    Serve(ServeArgs),
    /// Create the database and bootstrap an org from a template.
    Init {
        /// Org template: startup, dev-team, saas, agency, enterprise, media, blank.
        #[arg(long)]
        template: Option<String>,
        /// Directory the agents work on (env WORKSPACE; default: the current directory).
        #[arg(long)]
        workspace: Option<PathBuf>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Check git, the agent CLIs and the database.
    Doctor,
    /// Write a consistent copy of the (possibly live) database to FILE.
    Backup {
        /// Target file; must not exist.
        file: PathBuf,
    },
    /// Replace the database with a backup (the server must be stopped).
    Restore {
        /// A file made by `mesa backup`.
        file: PathBuf,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
    /// Board tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Audit-log operations.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A simulated company on a fresh temporary database (agents on the `simulated` runner).
    Demo(demo::DemoArgs),
    /// Client (MESA_API_URL, MESA_API_KEY): my actionable issues.
    Inbox(client::Output),
    /// Client: show, create, check out, comment on, submit, block or review an issue.
    Issue {
        #[command(subcommand)]
        command: client::IssueCommand,
        #[command(flatten)]
        out: client::Output,
    },
    /// Client: search, read or write wiki pages.
    Wiki {
        #[command(subcommand)]
        command: client::WikiCommand,
        #[command(flatten)]
        out: client::Output,
    },
    /// Client: post a reflection on my work (agents).
    Reflect {
        #[command(flatten)]
        args: client::ReflectArgs,
        #[command(flatten)]
        out: client::Output,
    },
    /// Client: my token usage and budget (the board: the org's).
    Usage(client::Output),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a board token; the raw token is printed once.
    Create {
        /// The token's name (shown as `board:NAME` in the activity log).
        #[arg(long)]
        name: String,
        /// Expiry, RFC 3339 (e.g. 2027-01-31T00:00:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List board tokens and agent keys (never their values).
    List,
    /// Revoke a token or key by id.
    Revoke {
        /// The token's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the activity log's hash chain.
    Verify,
}

#[derive(Debug, Clone, Args, Default)]
struct ServeArgs {
    /// Port to listen on (env PORT; default 3001).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (env BIND; default 127.0.0.1).
    #[arg(long)]
    bind: Option<String>,
    /// Org template for a new database (env TEMPLATE; default startup).
    #[arg(long)]
    template: Option<String>,
    /// Directory the bootstrapped agents work on (env WORKSPACE; default: the current directory).
    #[arg(long)]
    workspace: Option<PathBuf>,
    /// SQLite synchronous mode: full (default) or normal.
    #[arg(long)]
    synchronous: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The client commands talk to a running server: no configuration, database or logging.
    let command = match cli.command {
        Some(Command::Inbox(out)) => return Ok(client::main(client::Call::Inbox, out)),
        Some(Command::Issue { command, out }) => {
            return Ok(client::main(client::Call::Issue(command), out));
        }
        Some(Command::Wiki { command, out }) => {
            return Ok(client::main(client::Call::Wiki(command), out));
        }
        Some(Command::Reflect { args, out }) => {
            return Ok(client::main(client::Call::Reflect(args), out));
        }
        Some(Command::Usage(out)) => return Ok(client::main(client::Call::Usage, out)),
        other => other,
    };
    let cwd = std::env::current_dir()?;
    let common = cli.common.clone();
    let mut flags = Layer {
        db: common.db.clone(),
        data_dir: common.data_dir.clone(),
        log_format: common.log_format.clone(),
        ..Layer::default()
    };
    match &command {
        None => flags.port = cli.port,
        Some(Command::Serve(args)) => {
            flags.port = args.port;
            flags.bind = args.bind.clone();
            flags.template = args.template.clone();
            flags.workspace = args.workspace.clone();
            flags.synchronous = args.synchronous.clone();
        }
        Some(Command::Init {
            template,
            workspace,
        }) => {
            flags.template = template.clone();
            flags.workspace = workspace.clone();
        }
        Some(_) => {}
    }
    let env = Layer::from_env(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
    let file = match &common.config {
        Some(path) => Layer::from_file(path, true)?,
        None => Layer::from_file(&cwd.join("mesa.toml"), false)?,
    };
    let config = Config::resolve(flags, env, file, &cwd)?;
    init_tracing(config.log_json);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            None | Some(Command::Serve(_)) => serve::serve(config).await,
            Some(Command::Init { .. }) => ops::init(&config).await,
            Some(Command::Migrate) => ops::migrate(&config).await,
            Some(Command::Demo(args)) => demo::demo(config, args, common.data_dir, common.db).await,
            Some(Command::Doctor) => ops::doctor(&config).await,
            Some(Command::Backup { file }) => ops::backup(&config, &file).await,
            Some(Command::Restore { file, force }) => ops::restore(&config, &file, force).await,
            Some(Command::Audit {
                command: AuditCommand::Verify,
            }) => ops::audit_verify(&config).await,
            Some(Command::Token { command }) => match command {
                TokenCommand::Create { name, expires_at } => {
                    ops::token_create(&config, &name, expires_at.as_deref()).await
                }
                TokenCommand::List => ops::token_list(&config).await,
                TokenCommand::Revoke { id } => ops::token_revoke(&config, &id).await,
            },
            Some(
                Command::Inbox(_)
                | Command::Issue { .. }
                | Command::Wiki { .. }
                | Command::Reflect { .. }
                | Command::Usage(_),
            ) => unreachable!("client commands return above"),
        }
    })
}

fn init_tracing(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
