//! `mesa demo`: a simulated company on a database of its own (SPEC §7.2 `simulated`, §12).
//!
//! It starts Mesa as `serve` does, bootstraps an org whose agents all use the `simulated`
//! runner on a fresh git repository, seeds board issues for the CEO, starts the scheduler and
//! plays the board: pending approvals and `board_review` issues are approved after a short
//! delay, as `board:demo`. A one-line summary is printed every few seconds. With
//! `--until-done` it exits 0 once every seeded issue is done and every issue is finished.
//! See `docs/demo.md`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use mesa_core::domain::entity::{Agent, Approver};
use mesa_core::domain::{
    Actor, ApprovalDecision, ApprovalStatus, IssueKey, IssueStatus, IssueType, Markdown, Name,
    Priority, ReviewDecision, RunStatus, RunnerKind, Title,
};
use mesa_core::store::{IssueFilter, PageRequest, RunFilter};
use mesa_core::workflow::issue::IssueCommand;
use mesa_core::{Mesa, NewIssue};
use mesa_http::AppState;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::ops::{DbLock, open_mesa};

/// The board's name in the activity log (`board:demo`).
const BOARD: &str = "demo";
/// How often the CEO's heartbeat looks for parents to close, seconds.
const CEO_HEARTBEAT_SEC: u32 = 2;
/// The setting that marks a database as a demo's.
const DEMO_SETTING: &str = "demo_org";

/// `mesa demo` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// How many board issues to seed for the CEO.
    #[arg(long, default_value_t = 20)]
    issues: u32,
    /// Exit 0 once every seeded issue is done (exit 1 if `--timeout` passes first).
    #[arg(long)]
    until_done: bool,
    /// With `--until-done`: give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Port to listen on (0 picks a free one; default 3001).
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind (default 127.0.0.1).
    #[arg(long)]
    bind: Option<String>,
    /// Speed factor of the simulated agents (2 = steps twice as fast).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Runs at once.
    #[arg(long, default_value_t = 4)]
    max_runs: u32,
    /// Seed of the agents' randomness.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Org template.
    #[arg(long, default_value = "startup")]
    template: String,
    /// Seconds the board waits before deciding an approval or a board review.
    #[arg(long, default_value_t = 1.0)]
    board_delay: f64,
    /// Seconds between two summary lines.
    #[arg(long, default_value_t = 3.0)]
    every: f64,
    /// Keep the temporary data directory at exit.
    #[arg(long)]
    keep: bool,
}

/// Where the demo keeps its files: the `--data-dir` given, or a fresh temporary directory.
struct Place {
    dir: PathBuf,
    temporary: bool,
}

impl Place {
    fn choose(given: Option<PathBuf>) -> anyhow::Result<Place> {
        if let Some(dir) = given {
            let dir = if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()?.join(dir)
            };
            return Ok(Place {
                dir,
                temporary: false,
            });
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("mesa-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Place {
            dir,
            temporary: true,
        })
    }
}

/// Runs the demo. `data_dir` and `db` are the flags given (the environment and `mesa.toml`
/// are ignored for them, so a demo never touches a real database by accident).
pub(crate) async fn demo(
    mut config: Config,
    args: DemoArgs,
    data_dir: Option<PathBuf>,
    db: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        bail!("--speed must be a positive number");
    }
    // reqwest (the simulated agents' HTTP client) has no crypto provider of its own.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let place = Place::choose(data_dir)?;
    config.data_dir = place.dir.clone();
    config.db = db.unwrap_or_else(|| place.dir.join("mesa.db"));
    config.workspace = place.dir.join("workspace");
    config.template = args.template.clone();
    config.port = args.port.unwrap_or(config.port);
    if let Some(bind) = &args.bind {
        config.bind = bind.clone();
    }
    let code = run_demo(&config, &args).await;
    if place.temporary && !args.keep {
        match std::fs::remove_dir_all(&place.dir) {
            Ok(()) => println!(
                "Removed the demo's temporary directory (--keep or --data-dir DIR keeps it)."
            ),
            Err(e) => {
                tracing::warn!(dir = %place.dir.display(), error = %e, "could not remove the demo's directory");
            }
        }
    } else {
        println!("The demo's data is in {}.", place.dir.display());
    }
    code
}

async fn run_demo(config: &Config, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let git = prepare_workspace(&config.workspace)?;
    let _lock = DbLock::acquire(&config.db)?;
    let mesa = open_mesa(config).await?;
    mesa.start_boot().await?;
    if let Some(token) = &config.board_token {
        mesa.ensure_env_board_token(&token.0)
            .await
            .context("MESA_BOARD_TOKEN")?;
    }
    let board = Actor::board(BOARD);
    let fresh = set_up_org(&mesa, &board, args).await?;
    if fresh {
        seed_issues(&mesa, &board, args).await?;
    }
    let token = mesa
        .create_board_token(
            &board,
            Name::parse(BOARD).map_err(|e| anyhow::anyhow!(e))?,
            None,
        )
        .await?;

    let ip: IpAddr = config
        .bind
        .parse()
        .with_context(|| format!("bind address {:?} is not an IP address", config.bind))?;
    let listener = TcpListener::bind(SocketAddr::new(ip, config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.bind, config.port))?;
    let local = listener.local_addr()?;
    let api_url = loopback_url(local);
    announce(&mesa, &api_url, &token.raw, config, git).await?;

    let mut engine = mesa_core::EngineConfig::new(api_url);
    engine.max_runs = args.max_runs.max(1);
    engine.max_runs_per_hour = 100_000;
    engine.server_env = std::env::vars().collect();
    engine.secrets = config.board_token.iter().map(|t| t.0.clone()).collect();
    engine.secrets.push(token.raw.clone());
    let scheduler = mesa.start_scheduler(engine);

    let (tx, rx) = tokio::sync::oneshot::channel();
    let player = Player::new(mesa.clone(), board, args);
    let until_done = args.until_done;
    let limit = Duration::from_secs(args.timeout);
    let shutdown = async move {
        let ending = tokio::select! {
            () = shutdown_signal() => Ending::Interrupted,
            ending = player.play(until_done, limit) => ending,
        };
        scheduler.shutdown().await;
        let _ = tx.send(ending);
    };
    mesa_http::serve(listener, AppState::new(mesa.clone()), shutdown)
        .await
        .context("server failed")?;
    let ending = rx.await.unwrap_or(Ending::Interrupted);
    let code = finish(&mesa, &ending).await;
    mesa.close().await;
    code
}

/// The URL the agents call: loopback at the bound port.
fn loopback_url(local: SocketAddr) -> String {
    let host = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
    } else {
        local
    };
    format!("http://{host}")
}

/// A git repository with one commit, so every run gets its own worktree. Without git on PATH
/// the agents work in a plain directory (not isolated). Returns whether it is a repository.
fn prepare_workspace(dir: &Path) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if dir.join(".git").exists() {
        return Ok(true);
    }
    let readme = dir.join("README.md");
    std::fs::write(
        &readme,
        "# Demo project\n\nThe simulated agents of `mesa demo` commit their work under `sim/`.\n",
    )
    .with_context(|| format!("cannot write {}", readme.display()))?;
    let steps: [&[&str]; 3] = [
        &["init", "-q"],
        &["add", "README.md"],
        &[
            "-c",
            "user.name=Mesa Demo",
            "-c",
            "user.email=demo@mesa.local",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            "Initial commit",
        ],
    ];
    for step in steps {
        let ok = std::process::Command::new("git")
            .args(step)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!(
                dir = %dir.display(),
                "git is not usable: the simulated agents work in a plain directory, not in worktrees"
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// Bootstraps the org on a new database and puts every agent on the `simulated` runner.
/// Returns true for a new database; an existing one must be a demo's.
async fn set_up_org(mesa: &Mesa, board: &Actor, args: &DemoArgs) -> anyhow::Result<bool> {
    if !mesa.needs_bootstrap().await? {
        if mesa.setting_value(DEMO_SETTING).await.as_deref() != Some("true") {
            bail!(
                "this database holds an org that is not a demo's; give `mesa demo` an empty \
                 --data-dir (or none, for a temporary one)"
            );
        }
        return Ok(false);
    }
    let report = mesa.bootstrap(&args.template).await?;
    let settings = [
        (DEMO_SETTING.to_owned(), "true".to_owned()),
        ("instance_name".to_owned(), "Mesa demo".to_owned()),
    ];
    mesa.put_settings(board, &settings).await?;
    for agent in mesa.agents().await? {
        let config = simulated_config(&agent, args);
        mesa.update_agent_config(
            board,
            agent.slug.as_str(),
            config,
            None,
            "mesa demo: the simulated runner",
        )
        .await?;
    }
    tracing::info!(template = %report.template, agents = report.agents.len(), "bootstrapped the demo org");
    Ok(true)
}

/// An agent's configuration on the `simulated` runner at the demo's speed and seed.
fn simulated_config(agent: &Agent, args: &DemoArgs) -> mesa_core::domain::entity::AgentConfig {
    let mut c = agent.config.clone();
    c.runner = RunnerKind::Simulated;
    c.model = "claude-sonnet-4-5".to_owned();
    c.max_concurrent_runs = 3;
    c.timeout_sec = 120;
    c.env
        .insert("MESA_SIM_SPEED".to_owned(), args.speed.to_string());
    c.env
        .insert("MESA_SIM_SEED".to_owned(), args.seed.to_string());
    if agent.is_ceo() {
        c.heartbeat_enabled = true;
        c.heartbeat_interval_sec = CEO_HEARTBEAT_SEC;
    }
    c
}

/// What the seeded issues are about.
const TOPICS: &[(&str, IssueType)] = &[
    ("Password reset by email", IssueType::Feature),
    ("Usage charts on the billing page", IssueType::Feature),
    ("Export invoices as CSV", IssueType::Feature),
    ("Dark mode for the dashboard", IssueType::Frontend),
    ("Rate-limit the public API", IssueType::Feature),
    ("Onboarding checklist for new teams", IssueType::Feature),
    ("Search across projects", IssueType::Feature),
    ("Signup form accepts blank emails", IssueType::Bug),
    ("Two-factor authentication", IssueType::Feature),
    ("Audit trail for admin actions", IssueType::Feature),
    ("Faster cold start of the web app", IssueType::Chore),
    ("Bulk edit of tasks", IssueType::Feature),
    ("Settings page breaks on phones", IssueType::Bug),
    ("Webhook retries with back-off", IssueType::Feature),
    ("Single sign-on with Google", IssueType::Feature),
    ("Weekly digest email", IssueType::Feature),
    ("Keyboard shortcuts in the editor", IssueType::Frontend),
    ("Custom fields on tasks", IssueType::Feature),
    ("Import projects from CSV", IssueType::Feature),
    ("Public status page", IssueType::Feature),
    ("Per-seat pricing in checkout", IssueType::Feature),
    ("Archive idle projects automatically", IssueType::Chore),
    ("Mentions in comments notify people", IssueType::Feature),
    ("Offline mode for the mobile app", IssueType::Research),
    ("Scoped API tokens", IssueType::Feature),
    ("French and German translations", IssueType::Feature),
    ("Accessibility pass on forms", IssueType::Chore),
    ("Timezone shown wrong in reminders", IssueType::Bug),
    ("Upgrade the web framework", IssueType::Chore),
    ("Crash reports from the desktop app", IssueType::Feature),
];

/// The `i`-th seeded issue: a topic (numbered once the list is used up), a type, a priority.
fn seeded_issue(i: u32, seed: u64) -> anyhow::Result<NewIssue> {
    let n = TOPICS.len();
    let i = usize::try_from(i).unwrap_or(0);
    let (topic, issue_type) = TOPICS[i % n];
    let title = if i < n {
        topic.to_owned()
    } else {
        format!("{topic} (round {})", i / n + 1)
    };
    let description = format!(
        "{topic}: asked for by customers this quarter.\n\n## Acceptance Criteria\n- it works \
         end to end for a new account\n- covered by checks\n- documented for support"
    );
    let priority = (u64::try_from(i).unwrap_or(0) * 7 + seed) % 5;
    let err = |e: mesa_core::domain::ValidationError| anyhow::anyhow!(e);
    Ok(NewIssue {
        title: Title::parse(&title).map_err(err)?,
        description: Markdown::parse(&description).map_err(err)?,
        issue_type,
        priority: Priority::new(i64::try_from(priority).unwrap_or(0)).map_err(err)?,
        ..NewIssue::titled(&title).map_err(err)?
    })
}

/// Creates the board's issues; with no assignee they go to the CEO.
async fn seed_issues(mesa: &Mesa, board: &Actor, args: &DemoArgs) -> anyhow::Result<()> {
    for i in 0..args.issues {
        mesa.create_issue(board, seeded_issue(i, args.seed)?)
            .await?;
    }
    Ok(())
}

async fn announce(
    mesa: &Mesa,
    api_url: &str,
    token: &str,
    config: &Config,
    git: bool,
) -> anyhow::Result<()> {
    let agents = mesa.agents().await?;
    let names: Vec<String> = agents.iter().map(|a| a.slug.to_string()).collect();
    println!(
        "Mesa demo is running at {api_url}/  (database {})",
        config.db.display()
    );
    println!("Board token: {token}");
    println!("Try: curl -H 'Authorization: Bearer {token}' {api_url}/api/v1/issues?status=done");
    println!(
        "Agents on the simulated runner: {}; workspace {}{}",
        names.join(", "),
        config.workspace.display(),
        if git { "" } else { " (not a git repository)" }
    );
    Ok(())
}

/// Why the demo stopped.
#[derive(Debug)]
enum Ending {
    /// Every seeded issue is done.
    Done(Duration),
    /// `--timeout` passed first.
    TimedOut(Duration),
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// The board the demo plays, and its summary line.
struct Player {
    mesa: Mesa,
    board: Actor,
    delay: Duration,
    every: Duration,
    seen: HashMap<String, Instant>,
    started: Instant,
}

impl Player {
    fn new(mesa: Mesa, board: Actor, args: &DemoArgs) -> Player {
        Player {
            mesa,
            board,
            delay: Duration::from_secs_f64(args.board_delay.clamp(0.0, 3600.0)),
            every: Duration::from_secs_f64(args.every.clamp(0.2, 3600.0)),
            seen: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Plays the board until every seeded issue is done (with `until_done`), `limit` passes,
    /// or forever.
    async fn play(mut self, until_done: bool, limit: Duration) -> Ending {
        let mut last_summary: Option<Instant> = None;
        loop {
            if let Err(e) = self.decide().await {
                tracing::warn!(error = %e, "the demo board could not decide");
            }
            if last_summary.is_none_or(|t| t.elapsed() >= self.every) {
                last_summary = Some(Instant::now());
                match self.tally().await {
                    Ok(tally) => {
                        println!("{}", tally.line(self.started.elapsed()));
                        if until_done && tally.all_done() && self.nothing_pending().await {
                            return Ending::Done(self.started.elapsed());
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not count the demo's progress"),
                }
            }
            if until_done && self.started.elapsed() >= limit {
                return Ending::TimedOut(self.started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// True once `id` has waited the board's delay (the clock starts when it is first seen).
    fn due(&mut self, id: String) -> bool {
        let first = *self.seen.entry(id).or_insert_with(Instant::now);
        first.elapsed() >= self.delay
    }

    /// True when no approval waits for the board (the last block's ship approval comes as its
    /// last issue is done).
    async fn nothing_pending(&self) -> bool {
        self.mesa
            .approvals_for(
                Some(ApprovalStatus::Pending),
                Some(Approver::Board),
                &PageRequest::new(Some(1), None),
            )
            .await
            .is_ok_and(|page| page.items.is_empty())
    }

    /// Approves the approvals addressed to the board and the issues in `board_review`.
    async fn decide(&mut self) -> anyhow::Result<()> {
        let pending = self
            .mesa
            .approvals_for(
                Some(ApprovalStatus::Pending),
                Some(Approver::Board),
                &PageRequest::new(Some(500), None),
            )
            .await?;
        for approval in pending.items {
            if !self.due(approval.id.to_string()) {
                continue;
            }
            let comment = Some("Go ahead. (the demo board)".to_owned());
            match self
                .mesa
                .resolve_approval(&self.board, approval.id, ApprovalDecision::Approve, comment)
                .await
            {
                Ok(_) => println!("board: approved {} \"{}\"", approval.kind, approval.title),
                Err(e) => tracing::warn!(approval = %approval.id, error = %e, "could not approve"),
            }
        }
        let inbox = self
            .mesa
            .inbox(&self.board, &PageRequest::new(Some(500), None))
            .await?;
        for view in inbox.items {
            let key = view.issue.key.clone();
            if view.issue.status != IssueStatus::BoardReview || !self.due(key.to_string()) {
                continue;
            }
            self.approve(&key).await;
        }
        Ok(())
    }

    async fn approve(&self, key: &IssueKey) {
        let command = IssueCommand::Review {
            decision: ReviewDecision::Approve,
            comment: Some("Approved by the demo board.".to_owned()),
        };
        match self
            .mesa
            .issue_command(&self.board, key, command, None)
            .await
        {
            Ok(_) => println!("board: approved {key}"),
            Err(e) => tracing::warn!(issue = %key, error = %e, "could not approve"),
        }
    }

    /// Counts issues by status, runs and spend.
    async fn tally(&self) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        let mut cursor = None;
        loop {
            let page = self
                .mesa
                .issues(
                    &IssueFilter::default(),
                    &PageRequest::new(Some(500), cursor),
                )
                .await?;
            for view in &page.items {
                let issue = &view.issue;
                let top = issue.parent_key.is_none();
                tally.add(issue.status, top);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut cursor = None;
        loop {
            let page = self
                .mesa
                .store()
                .list_runs(&RunFilter::default(), &PageRequest::new(Some(500), cursor))
                .await?;
            for run in &page.items {
                tally.runs += 1;
                tally.running += usize::from(run.status == RunStatus::Running);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        tally.spend_usd = self.mesa.usage_summary(None).await?.total.cost_usd.as_usd();
        Ok(tally)
    }
}

/// The demo's progress at one moment.
#[derive(Debug, Default)]
struct Tally {
    /// Top-level issues by status.
    seeded: BTreeMap<&'static str, usize>,
    /// Sub-issues by status.
    subs: BTreeMap<&'static str, usize>,
    runs: usize,
    running: usize,
    spend_usd: f64,
}

impl Tally {
    fn add(&mut self, status: IssueStatus, top: bool) {
        let map = if top {
            &mut self.seeded
        } else {
            &mut self.subs
        };
        *map.entry(status.as_str()).or_default() += 1;
    }

    fn count(map: &BTreeMap<&'static str, usize>, status: &str) -> usize {
        map.get(status).copied().unwrap_or(0)
    }

    fn all(&self, status: &str) -> usize {
        Self::count(&self.seeded, status) + Self::count(&self.subs, status)
    }

    /// Every seeded issue is done and every sub-issue finished.
    fn all_done(&self) -> bool {
        let seeded: usize = self.seeded.values().sum();
        let open_subs: usize = self
            .subs
            .iter()
            .filter(|(s, _)| !matches!(**s, "done" | "wont_do" | "cancelled"))
            .map(|(_, n)| n)
            .sum();
        seeded > 0 && Self::count(&self.seeded, "done") == seeded && open_subs == 0
    }

    fn line(&self, elapsed: Duration) -> String {
        let seeded: usize = self.seeded.values().sum();
        let subs: usize = self.subs.values().sum();
        format!(
            "[{:>5.1}s] seeded {}/{seeded} done · sub-issues {}/{subs} done · in review {} · \
             in progress {} · todo {} · runs {} ({} running) · spend ${:.2}",
            elapsed.as_secs_f64(),
            Self::count(&self.seeded, "done"),
            Self::count(&self.subs, "done"),
            self.all("in_review") + self.all("board_review"),
            self.all("in_progress"),
            self.all("todo"),
            self.runs,
            self.running,
            self.spend_usd
        )
    }
}

/// Prints how the demo ended and checks the activity log's hash chain.
async fn finish(mesa: &Mesa, ending: &Ending) -> anyhow::Result<ExitCode> {
    let chain = mesa.verify_activity().await?;
    let intact = chain.first_bad.is_none();
    println!(
        "activity log: {} rows, hash chain {}",
        chain.checked,
        if intact { "intact" } else { "BROKEN" }
    );
    Ok(match ending {
        Ending::Done(t) => {
            println!("All seeded issues are done after {:.1}s.", t.as_secs_f64());
            if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ending::TimedOut(t) => {
            println!("Not done after {:.1}s: giving up.", t.as_secs_f64());
            ExitCode::FAILURE
        }
        Ending::Interrupted => {
            println!("Stopped.");
            ExitCode::SUCCESS
        }
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_titles_are_unique_beyond_the_topic_list() {
        let titles: Vec<String> = (0..75)
            .map(|i| seeded_issue(i, 3).unwrap().title.to_string())
            .collect();
        let mut unique = titles.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), titles.len());
        assert!(titles[31].ends_with("(round 2)"), "{}", titles[31]);
    }

    #[test]
    fn all_done_needs_every_seeded_issue_done_and_no_open_sub_issue() {
        let mut t = Tally::default();
        assert!(!t.all_done(), "nothing seeded is not done");
        t.add(IssueStatus::Done, true);
        t.add(IssueStatus::Done, false);
        t.add(IssueStatus::InReview, false);
        assert!(!t.all_done());
        let mut t = Tally::default();
        t.add(IssueStatus::Done, true);
        t.add(IssueStatus::Done, false);
        t.add(IssueStatus::WontDo, false);
        assert!(t.all_done());
        assert!(t.line(Duration::from_secs(2)).contains("seeded 1/1 done"));
    }

    #[test]
    fn the_workspace_is_a_repository_with_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        assert!(prepare_workspace(&ws).unwrap());
        let out = std::process::Command::new("git")
            .args(["rev-list", "--count", "HEAD"])
            .current_dir(&ws)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
        assert!(
            prepare_workspace(&ws).unwrap(),
            "an existing repository is reused"
        );
    }
}
