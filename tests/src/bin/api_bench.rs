//! Benchmarks of the REST API (run by `cargo xtask bench api`, never as timed tests).
//!
//! 1. Seeds (once, then reused from a cache directory) an org of 1,000 agents — a CEO, leads
//!    reporting to it, workers reporting to the leads — and 1,000,000 issues created through
//!    `mesa-core`: most assigned round-robin to the agents (each agent's inbox holds about a
//!    thousand open issues), two per agent submitted for review through the real workflow (so
//!    reviewers have review items), and a pool left unassigned for the checkout race.
//! 2. Starts the release `mesa serve` on a copy of that database, with the scheduler paused
//!    (the seed's million queued wake-ups would otherwise be worked through during the
//!    measurement), and drives it from a second
//!    process, `wrk` (Debian package `wrk`), with Lua scripts that rotate over the agents' keys:
//!    `GET /api/v1/inbox` with one connection (latency percentiles), then with 32 connections
//!    (throughput), then with 32 connections under a steady write load: first a second `wrk`
//!    creating issues through the API (agents' keys, one connection pausing 10 ms between
//!    requests), then this process committing issues straight to the database file every 10 ms
//!    (a write the server cannot account for, so every commit empties its read cache and the
//!    inbox takes the uncached path); then `POST /api/v1/issues/{key}/checkout` where two
//!    threads of 16 connections each race for every issue of the pool with different agents'
//!    keys.
//! 3. Checks the race: the claims reported by the 200 responses name each issue at most once,
//!    every loser got 409 `checkout_conflict`, and the database (reopened after the server
//!    stopped) holds exactly those claims.
//!
//! Usage: `mesa-api-bench --mesa <mesa binary> [--issues N] [--agents N] [--pool N]
//! [--seconds S] [--cache DIR]`. Prints a Markdown table on stdout.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark CLI")]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark spawns the server it measures and the load generator"
)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use mesa_core::domain::entity::AgentConfig;
use mesa_core::domain::{
    Actor, IssueKey, IssueStatus, Name, Priority, RunnerKind, Slug, WorkingDir,
};
use mesa_core::{CoreConfig, IssuePatch, Mesa, NewAgent, NewIssue};
use mesa_tests::served::Server;

struct Args {
    mesa: PathBuf,
    issues: usize,
    agents: usize,
    pool: usize,
    seconds: u64,
    cache: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mesa: PathBuf::new(),
        issues: 1_000_000,
        agents: 1_000,
        pool: 60_000,
        seconds: 10,
        cache: PathBuf::from("target/bench"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--mesa" => args.mesa = PathBuf::from(value()?),
            "--issues" => args.issues = value()?.parse()?,
            "--agents" => args.agents = value()?.parse()?,
            "--pool" => args.pool = value()?.parse()?,
            "--seconds" => args.seconds = value()?.parse()?,
            "--cache" => args.cache = PathBuf::from(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    ensure!(
        !args.mesa.as_os_str().is_empty(),
        "--mesa <path to the mesa binary> is required"
    );
    ensure!(args.agents >= 10, "--agents must be at least 10");
    ensure!(
        args.pool < args.issues,
        "--pool must be smaller than --issues"
    );
    Ok(args)
}

/// Sets the persisted scheduler pause switch (SPEC §6.2) on the benchmark's copy of the
/// database. Seeding queued a wake-up run for every issue; a running scheduler would work
/// through that million-run backlog during the measurement, committing dozens of times a
/// second, and the figures would measure the backlog, not the API. Dispatch has its own
/// benchmark (`cargo xtask bench dispatch`).
async fn pause_scheduler(db: &Path, dir: &Path) -> anyhow::Result<()> {
    let workspace = WorkingDir::parse(&dir.to_string_lossy())?;
    let mesa = Mesa::builder()
        .sqlite(db)
        .config(CoreConfig::new(dir, workspace))
        .build()
        .await?;
    mesa.set_scheduler_paused(&Actor::board("bench"), true)
        .await?;
    mesa.close().await;
    Ok(())
}

/// What the seed leaves next to its database.
struct Seeded {
    db: PathBuf,
    /// Raw agent keys, one per non-CEO agent.
    agent_keys: PathBuf,
    /// Keys of the unassigned issues for the checkout race.
    pool_keys: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    args.mesa = std::fs::canonicalize(&args.mesa).context("--mesa must name an existing file")?;
    let wrk = which("wrk").context(
        "wrk is not installed: the load comes from a second process (apt-get install wrk)",
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let seeded = runtime.block_on(seed_cached(&args))?;

    let work = tempfile::tempdir()?;
    let db = work.path().join("mesa.db");
    std::fs::copy(&seeded.db, &db).context("copy the seeded database")?;
    runtime.block_on(pause_scheduler(&db, work.path()))?;
    let scripts = write_scripts(work.path(), &seeded)?;

    let server = Server::start(&args.mesa, &db, work.path())?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let seconds = args.seconds.to_string();
    // Warm the server's caches and the page cache once, unmeasured.
    run_wrk(&wrk, &["-t1", "-c4", "-d3s"], &scripts.inbox, &base, None)?;
    let sequential = run_wrk(
        &wrk,
        &["-t1", "-c1", &format!("-d{seconds}s"), "--latency"],
        &scripts.inbox,
        &base,
        None,
    )?;
    let parallel = run_wrk(
        &wrk,
        &["-t2", "-c32", &format!("-d{seconds}s"), "--latency"],
        &scripts.inbox,
        &base,
        None,
    )?;
    // The inbox under writes through the API: the server knows what each of them changed.
    let creator = start_wrk(
        &wrk,
        &["-t1", "-c1", &format!("-d{seconds}s")],
        &scripts.create,
        &base,
        None,
    )?;
    let under_api_writes = run_wrk(
        &wrk,
        &["-t2", "-c32", &format!("-d{seconds}s"), "--latency"],
        &scripts.inbox,
        &base,
        None,
    )?;
    let api_writes = finish_wrk(creator, false)?;
    // The inbox under writes by another process: every commit empties the read cache.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = runtime.spawn(write_at_pace(
        db.clone(),
        work.path().to_path_buf(),
        Duration::from_millis(10),
        std::sync::Arc::clone(&stop),
    ));
    let under_outside_writes = run_wrk(
        &wrk,
        &["-t2", "-c32", &format!("-d{seconds}s"), "--latency"],
        &scripts.inbox,
        &base,
        None,
    )?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let outside_writes = runtime.block_on(writer)??;

    let claims_dir = work.path().join("claims");
    std::fs::create_dir_all(&claims_dir)?;
    // A claim waits for its group commit, and now and then for a WAL checkpoint: allow 10 s
    // before wrk calls it a timeout (the figures show the tail).
    let checkout = run_wrk(
        &wrk,
        &[
            "-t2",
            "-c32",
            &format!("-d{seconds}s"),
            "--latency",
            "--timeout",
            "10s",
        ],
        &scripts.checkout,
        &base,
        Some(&claims_dir),
    )?;
    server.stop()?;

    let race = runtime.block_on(verify_race(&db, work.path(), &claims_dir, &seeded))?;
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let claims_per_s = race.claims as f64 / checkout.seconds;

    let mut out = String::new();
    writeln!(out, "| measure | result | target |")?;
    writeln!(out, "|---|---|---|")?;
    writeln!(
        out,
        "| `GET /api/v1/inbox`, one client, p99 latency (p50 {}, p90 {}; {} requests) | {} | ≤ 5 ms |",
        ms(sequential.p50),
        ms(sequential.p90),
        sequential.requests,
        ms(sequential.p99)
    )?;
    writeln!(
        out,
        "| `GET /api/v1/inbox`, 32 concurrent clients (p99 {}) | {:.0} requests/s | ≥ 5,000/s |",
        ms(parallel.p99),
        parallel.rate
    )?;
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let api_write_rate = api_writes.requests as f64 / api_writes.seconds;
    writeln!(
        out,
        "| `GET /api/v1/inbox`, 32 concurrent clients while agents create issues through the API ({api_write_rate:.0} commits/s; p99 {}) | {:.0} requests/s | ≥ 5,000/s |",
        ms(under_api_writes.p99),
        under_api_writes.rate
    )?;
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let outside_rate = outside_writes.count as f64 / outside_writes.seconds;
    writeln!(
        out,
        "| `GET /api/v1/inbox`, 32 concurrent clients while another process commits issues to the database file ({outside_rate:.0} commits/s, each emptying the read cache: the uncached path; p99 {}) | {:.0} requests/s | ≥ 5,000/s |",
        ms(under_outside_writes.p99),
        under_outside_writes.rate
    )?;
    writeln!(
        out,
        "| `POST /api/v1/issues/{{key}}/checkout`, 32 clients racing in pairs for each issue: successful claims (p50 {}, p99 {}) | {claims_per_s:.0} claims/s | ≥ 2,000/s |",
        ms(checkout.p50),
        ms(checkout.p99)
    )?;
    writeln!(
        out,
        "| the same race, all answers (200 and 409) | {:.0} requests/s | (reference) |",
        checkout.rate
    )?;
    writeln!(
        out,
        "| double claims among {} claims ({} losers, all 409 `checkout_conflict`; database agrees) | {} | 0 |",
        race.claims, race.losers, race.double_claims
    )?;
    print!("{out}");
    ensure!(
        race.double_claims == 0,
        "an issue was claimed twice: {race:?}"
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

// ---------------------------------------------------------------------------------------------
// Seeding

async fn seed_cached(args: &Args) -> anyhow::Result<Seeded> {
    let dir = std::path::absolute(&args.cache)?.join(format!(
        "api-{}-issues-{}-agents-{}-pool",
        args.issues, args.agents, args.pool
    ));
    let seeded = Seeded {
        db: dir.join("seed.db"),
        agent_keys: dir.join("agent-keys.txt"),
        pool_keys: dir.join("pool-keys.txt"),
    };
    let complete = dir.join("complete");
    if complete.exists() {
        eprintln!("using the seeded database in {}", dir.display());
        return Ok(seeded);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    seed(args, &dir, &seeded).await?;
    std::fs::write(&complete, b"")?;
    eprintln!(
        "seeded {} issues and {} agents in {:.0} s",
        args.issues,
        args.agents,
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

async fn seed(args: &Args, dir: &Path, seeded: &Seeded) -> anyhow::Result<()> {
    let workspace = WorkingDir::parse(&dir.to_string_lossy())?;
    let mut config = CoreConfig::new(dir, workspace.clone());
    config.template = "blank".into();
    let mesa = Mesa::builder()
        .sqlite(&seeded.db)
        .config(config)
        .build()
        .await?;
    mesa.bootstrap_if_empty().await?;
    let board = Actor::board("bench");

    // The org: the CEO, then leads reporting to it, then workers reporting to the leads.
    let leads = (args.agents / 50).max(2);
    let mut slugs = Vec::with_capacity(args.agents - 1);
    let mut keys = String::new();
    for i in 0..args.agents - 1 {
        let (slug, archetype, manager) = if i < leads {
            (format!("lead-{i:03}"), "architect", "ceo".to_owned())
        } else {
            (
                format!("worker-{i:04}"),
                "backend",
                format!("lead-{:03}", i % leads),
            )
        };
        let mut config = AgentConfig::new(
            Name::parse(&slug)?,
            Slug::parse(archetype)?,
            RunnerKind::Noop,
            workspace.clone(),
        );
        config.reports_to = Some(mesa.find_agent(&manager).await?.id);
        mesa.create_agent(
            &board,
            NewAgent {
                slug: Slug::parse(&slug)?,
                config,
            },
        )
        .await?;
        let key = mesa.create_agent_key(&board, &slug, None, None).await?;
        writeln!(keys, "{}", key.raw)?;
        slugs.push(slug);
    }
    std::fs::write(&seeded.agent_keys, keys)?;
    eprintln!("created {} agents", args.agents);

    // The assigned issues, 32 concurrent callers (the store commits them in groups).
    let assigned = args.issues - args.pool;
    let slugs = std::sync::Arc::new(slugs);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    const CLIENTS: usize = 32;
    for c in 0..CLIENTS {
        let mesa = mesa.clone();
        let slugs = std::sync::Arc::clone(&slugs);
        tasks.spawn(async move {
            let board = Actor::board("bench");
            let mut i = c;
            while i < assigned {
                let mut new = NewIssue::titled(&format!("Seeded work item {i}"))?;
                new.assignee = Some(slugs[i % slugs.len()].clone());
                new.priority = Priority::new(i64::try_from(i % 5)?)?;
                mesa.create_issue(&board, new).await?;
                i += CLIENTS;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    eprintln!(
        "created {assigned} assigned issues in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    // Two issues per agent go through checkout and submission, so reviewers have work.
    let mut submitted = 0;
    for (n, slug) in slugs.iter().enumerate() {
        let agent = mesa.find_agent(slug).await?;
        let actor = Actor::Agent {
            id: agent.id,
            slug: agent.slug.clone(),
        };
        let mine = mesa
            .issues(
                &mesa_core::store::IssueFilter {
                    assignee: Some(agent.id),
                    statuses: vec![IssueStatus::Todo],
                    ..mesa_core::store::IssueFilter::default()
                },
                &mesa_core::store::PageRequest::new(Some(2), None),
            )
            .await?;
        for view in mine.items {
            let key = view.issue.key.clone();
            mesa.checkout_issue(&actor, &key, None, None).await?;
            let patch = IssuePatch {
                status: Some("in_review".into()),
                comment: Some(format!(
                    "Finished {key}; tests pass (seeded by mesa-api-bench)."
                )),
                ..IssuePatch::default()
            };
            mesa.update_issue(&actor, &key, patch).await?;
            submitted += 1;
        }
        if n % 100 == 0 {
            eprintln!("submitted {submitted} issues for review");
        }
    }

    // The pool: new issues go to the CEO; unassign them so any agent may claim them.
    let started = Instant::now();
    let mut pool = Vec::with_capacity(args.pool);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let mesa = mesa.clone();
        let n = args.pool;
        tasks.spawn(async move {
            let board = Actor::board("bench");
            let mut keys = Vec::new();
            let mut i = c;
            while i < n {
                let view = mesa
                    .create_issue(&board, NewIssue::titled(&format!("Pool issue {i}"))?)
                    .await?;
                let patch = IssuePatch {
                    assignee: Some(None),
                    ..IssuePatch::default()
                };
                mesa.update_issue(&board, &view.issue.key, patch).await?;
                keys.push((i, view.issue.key.to_string()));
                i += CLIENTS;
            }
            anyhow::Ok(keys)
        });
    }
    while let Some(done) = tasks.join_next().await {
        pool.extend(done??);
    }
    pool.sort();
    let pool: Vec<String> = pool.into_iter().map(|(_, k)| k).collect();
    std::fs::write(&seeded.pool_keys, pool.join("\n") + "\n")?;
    eprintln!(
        "created the pool of {} unassigned issues in {:.0} s",
        args.pool,
        started.elapsed().as_secs_f64()
    );
    mesa.close().await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Load from wrk

struct Scripts {
    inbox: PathBuf,
    checkout: PathBuf,
    create: PathBuf,
}

/// Lua for wrk. Each thread starts at its own offset in the list of agent keys; the checkout
/// script walks the pool in the same order in every thread, so the two threads race for each
/// issue with different agents' keys, and writes the key of every issue it won to a file.
fn write_scripts(dir: &Path, seeded: &Seeded) -> anyhow::Result<Scripts> {
    let common = format!(
        r#"
local agent_keys = {{}}
for line in io.lines("{keys}") do agent_keys[#agent_keys + 1] = line end
-- A global: setup() sets it in each thread.
thread_no = 0
local counter = 0
local threads = {{}}
function setup(thread)
  thread:set("thread_no", #threads)
  threads[#threads + 1] = thread
end
local function next_key()
  counter = counter + 1
  return agent_keys[((counter * 7 + thread_no * 500) % #agent_keys) + 1]
end
"#,
        keys = seeded.agent_keys.display()
    );
    let inbox = dir.join("inbox.lua");
    std::fs::write(
        &inbox,
        format!(
            r#"{common}
function request()
  return wrk.format("GET", "/api/v1/inbox", {{ ["Authorization"] = "Bearer " .. next_key() }})
end
"#
        ),
    )?;
    let checkout = dir.join("checkout.lua");
    std::fs::write(
        &checkout,
        format!(
            r#"{common}
local pool = {{}}
for line in io.lines("{pool}") do pool[#pool + 1] = line end
local position = 0
-- Globals, so that done() can read them from each thread.
won, lost, other, exhausted = {{}}, 0, 0, 0
function request()
  position = position + 1
  if position > #pool then
    exhausted = exhausted + 1
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", "/api/v1/issues/" .. pool[position] .. "/checkout",
    {{ ["Authorization"] = "Bearer " .. next_key() }})
end
function response(status, headers, body)
  if status == 200 then
    won[#won + 1] = string.match(body, '"key":"([^"]+)"') or "?"
  elseif status == 409 and string.find(body, "checkout_conflict", 1, true) then
    lost = lost + 1
  else
    other = other + 1
  end
end
function done(summary, latency, requests)
  local dir = os.getenv("MESA_BENCH_CLAIMS")
  for i, thread in ipairs(threads) do
    local f = io.open(dir .. "/claims-" .. i .. ".txt", "w")
    for _, key in ipairs(thread:get("won")) do f:write(key .. "\n") end
    f:close()
    local c = io.open(dir .. "/counts-" .. i .. ".txt", "w")
    c:write(thread:get("lost") .. " " .. thread:get("other") .. " " .. thread:get("exhausted") .. "\n")
    c:close()
  end
end
"#,
            pool = seeded.pool_keys.display()
        ),
    )?;
    let create = dir.join("create.lua");
    std::fs::write(
        &create,
        format!(
            r#"{common}
local n = 0
function request()
  n = n + 1
  local body = '{{"title":"Created under load ' .. thread_no .. ' ' .. n .. '"}}'
  return wrk.format("POST", "/api/v1/issues",
    {{ ["Authorization"] = "Bearer " .. next_key(), ["Content-Type"] = "application/json" }}, body)
end
-- A steady pace: each request waits 10 ms after the previous answer.
function delay()
  return 10
end
"#
        ),
    )?;
    Ok(Scripts {
        inbox,
        checkout,
        create,
    })
}

#[derive(Debug)]
struct WrkResult {
    requests: u64,
    seconds: f64,
    rate: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
}

fn run_wrk(
    wrk: &Path,
    options: &[&str],
    script: &Path,
    base: &str,
    claims: Option<&Path>,
) -> anyhow::Result<WrkResult> {
    let child = start_wrk(wrk, options, script, base, claims)?;
    finish_wrk(child, claims.is_some())
}

/// Starts `wrk` in the background.
fn start_wrk(
    wrk: &Path,
    options: &[&str],
    script: &Path,
    base: &str,
    claims: Option<&Path>,
) -> anyhow::Result<Child> {
    let mut command = Command::new(wrk);
    command
        .args(options)
        .arg("-s")
        .arg(script)
        .arg(base)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = claims {
        command.env("MESA_BENCH_CLAIMS", dir);
    }
    command.spawn().context("run wrk")
}

/// Waits for `wrk` and reads its figures. `conflicts_expected`: 409 answers are part of the
/// load (the checkout race); anywhere else any non-2xx answer is a failure.
fn finish_wrk(child: Child, conflicts_expected: bool) -> anyhow::Result<WrkResult> {
    let output = child.wait_with_output().context("wait for wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("wrk:\n{text}");
    ensure!(
        output.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if !conflicts_expected && text.contains("Non-2xx or 3xx responses") {
        bail!("the server answered errors under load:\n{text}");
    }
    ensure!(
        !text.contains("Socket errors"),
        "socket errors under load:\n{text}"
    );
    let field = |label: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(str::trim)
    };
    let requests_line = text
        .lines()
        .find(|l| l.contains("requests in"))
        .context("wrk printed no request count")?;
    let requests: u64 = requests_line
        .split_whitespace()
        .next()
        .context("request count")?
        .parse()?;
    let seconds = requests_line
        .split("requests in")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .map(str::trim)
        .and_then(parse_duration)
        .context("run time")?
        .as_secs_f64();
    let rate: f64 = field("Requests/sec:")
        .context("wrk printed no rate")?
        .parse()?;
    let percentile = |p: &str| field(p).and_then(parse_duration).unwrap_or(Duration::ZERO);
    Ok(WrkResult {
        requests,
        seconds,
        rate,
        p50: percentile("50%"),
        p90: percentile("90%"),
        p99: percentile("99%"),
    })
}

/// Commits made by [`write_at_pace`].
struct Written {
    count: u64,
    seconds: f64,
}

/// Creates an issue in the database at `db` every `pace` until `stop`, from this process (as
/// another `mesa` process or a script on the same file would).
async fn write_at_pace(
    db: PathBuf,
    dir: PathBuf,
    pace: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Written> {
    let workspace = WorkingDir::parse(&dir.to_string_lossy())?;
    let mesa = Mesa::builder()
        .sqlite(&db)
        .config(CoreConfig::new(&dir, workspace))
        .build()
        .await?;
    let board = Actor::board("bench");
    let mut tick = tokio::time::interval(pace);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut count = 0_u64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        tick.tick().await;
        let title = format!("Written beside the server {count}");
        mesa.create_issue(&board, NewIssue::titled(&title)?).await?;
        count += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    mesa.close().await;
    Ok(Written { count, seconds })
}

/// wrk's durations: `812.00us`, `1.23ms`, `2.01s`, `1.00m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = text.split_at(split);
    let value: f64 = value.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

// ---------------------------------------------------------------------------------------------
// Checking the race

#[derive(Debug)]
struct Race {
    claims: usize,
    losers: u64,
    double_claims: usize,
}

async fn verify_race(
    db: &Path,
    dir: &Path,
    claims_dir: &Path,
    seeded: &Seeded,
) -> anyhow::Result<Race> {
    let mut won = Vec::new();
    let (mut losers, mut others, mut exhausted) = (0_u64, 0_u64, 0_u64);
    for entry in std::fs::read_dir(claims_dir)? {
        let path = entry?.path();
        let text = std::fs::read_to_string(&path)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("claims-") {
            won.extend(text.lines().map(str::to_owned));
        } else if name.starts_with("counts-") {
            let mut parts = text.split_whitespace().map(str::parse::<u64>);
            losers += parts.next().context("losers")??;
            others += parts.next().context("others")??;
            exhausted += parts.next().context("exhausted")??;
        }
    }
    ensure!(
        others == 0,
        "{others} checkout answers were neither 200 nor 409 checkout_conflict"
    );
    ensure!(
        exhausted == 0,
        "the pool ran out during the measurement; pass a larger --pool"
    );
    let distinct: HashSet<&String> = won.iter().collect();
    let double_claims = won.len() - distinct.len();

    // The database, reopened after the server stopped, holds exactly the claims answered (plus
    // at most the requests in flight when wrk stopped, whose answers it did not read).
    let workspace = WorkingDir::parse(&dir.to_string_lossy())?;
    let mesa = Mesa::builder()
        .sqlite(db)
        .config(CoreConfig::new(dir, workspace))
        .build()
        .await?;
    let pool = std::fs::read_to_string(&seeded.pool_keys)?;
    let mut claimed_in_db = 0;
    for key in pool.lines() {
        let view = mesa.issue(&IssueKey::parse(key)?).await?;
        let claimed = view.issue.status == IssueStatus::InProgress;
        ensure!(
            claimed == view.issue.assignee_id.is_some(),
            "{key} is {} with assignee {:?}",
            view.issue.status,
            view.issue.assignee_id
        );
        if claimed {
            claimed_in_db += 1;
        } else {
            ensure!(
                !distinct.contains(&key.to_owned()),
                "{key} was answered as claimed but is not"
            );
        }
    }
    mesa.close().await;
    ensure!(
        claimed_in_db >= distinct.len() && claimed_in_db <= distinct.len() + 32,
        "{claimed_in_db} pool issues are claimed in the database, {} were answered as claimed",
        distinct.len()
    );
    Ok(Race {
        claims: won.len(),
        losers,
        double_claims,
    })
}
