//! Benchmarks of the foundation (run by `cargo xtask bench`, never as timed tests):
//!
//! 1. issue creation through `mesa-core` (issues per second, one writer, `synchronous=FULL`);
//! 2. cold start of the real `mesa` binary to `/readyz` answering 200 on a database holding
//!    the seeded issues (median of several starts);
//! 3. the idle resident memory of that server.
//!
//! Each seeded issue wakes the CEO (SPEC §6.1), so the database holds a queue of that many
//! wake-ups; the scheduler is paused on it after seeding (the persisted switch of SPEC §6.2),
//! so that the started server is idle rather than working through the queue.
//!
//! Usage: `mesa-bench --mesa <path to mesa binary> [--issues N] [--starts N] [--dir DIR]`.
//! Prints a Markdown table on stdout.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark CLI")]
#![expect(
    clippy::disallowed_methods,
    reason = "a benchmark spawns the server it measures"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mesa_core::domain::{Actor, WorkingDir};
use mesa_core::{CoreConfig, Mesa, NewIssue};

struct Args {
    mesa: PathBuf,
    issues: usize,
    starts: usize,
    dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mesa: PathBuf::new(),
        issues: 100_000,
        starts: 11,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().context("missing value");
        match a.as_str() {
            "--mesa" => args.mesa = PathBuf::from(value()?),
            "--issues" => args.issues = value()?.parse()?,
            "--starts" => args.starts = value()?.parse()?,
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    if args.mesa.as_os_str().is_empty() {
        bail!("--mesa <path to the mesa binary> is required");
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let mut args = parse_args()?;
    args.mesa = std::fs::canonicalize(&args.mesa).context("--mesa must name an existing file")?;
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // One caller at a time, then 32 concurrent callers (group commit), then the bulk.
    let serial_n = 2_000.min(args.issues);
    let serial = runtime.block_on(seed(&db, &dir, serial_n, 1, 0))?;
    let concurrent_n = 20_000.min(args.issues - serial_n);
    let concurrent = runtime.block_on(seed(&db, &dir, concurrent_n, 32, serial_n))?;
    let rest = args.issues - serial_n - concurrent_n;
    runtime.block_on(seed(&db, &dir, rest, 32, serial_n + concurrent_n))?;
    eprintln!(
        "created {} issues: serial {serial:.0}/s, 32 callers {concurrent:.0}/s",
        args.issues
    );
    runtime.block_on(pause_scheduler(&db, &dir))?;

    let mut starts = Vec::with_capacity(args.starts);
    let mut rss_kib = 0;
    for i in 0..args.starts {
        let (elapsed, rss) = cold_start(&args.mesa, &db, &dir, i + 1 == args.starts)?;
        starts.push(elapsed);
        if let Some(rss) = rss {
            rss_kib = rss;
        }
    }
    starts.sort();
    let median = starts[starts.len() / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    println!("| measure | result | target |");
    println!("|---|---|---|");
    println!(
        "| issue creation through mesa-core, 32 concurrent callers ({concurrent_n} issues, synchronous=FULL) | {concurrent:.0} issues/s | ≥ 2,000/s |"
    );
    println!(
        "| issue creation through mesa-core, one caller at a time ({serial_n} issues) | {serial:.0} issues/s | (reference) |"
    );
    println!(
        "| cold start to /readyz 200 with {} issues (median of {}; min {:.1} ms, max {:.1} ms) | {:.1} ms | ≤ 100 ms |",
        args.issues,
        starts.len(),
        ms(starts[0]),
        ms(starts[starts.len() - 1]),
        ms(median)
    );
    #[expect(clippy::cast_precision_loss, reason = "display")]
    let mib = rss_kib as f64 / 1024.0;
    println!("| idle RSS of `mesa serve` 3 s after ready | {mib:.1} MiB | ≤ 30 MB |");
    Ok(())
}

/// Creates `n` issues with `clients` concurrent callers; returns issues per second.
async fn seed(
    db: &Path,
    dir: &Path,
    n: usize,
    clients: usize,
    offset: usize,
) -> anyhow::Result<f64> {
    let mut config = CoreConfig::new(dir, WorkingDir::parse(&dir.to_string_lossy())?);
    config.template = "startup".into();
    let mesa = Mesa::builder().sqlite(db).config(config).build().await?;
    mesa.bootstrap_if_empty().await?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let mesa = mesa.clone();
        tasks.spawn(async move {
            let board = Actor::board("bench");
            let mut i = c;
            while i < n {
                let mut new = NewIssue::titled(&format!("Benchmark issue number {}", offset + i))?;
                new.description = mesa_core::domain::Markdown::parse(
                    "Seeded by mesa-bench to measure the foundation.",
                )?;
                mesa.create_issue(&board, new).await?;
                i += clients;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-9);
    mesa.close().await;
    Ok(rate)
}

/// Sets the persisted scheduler pause switch, so the measured server is idle.
async fn pause_scheduler(db: &Path, dir: &Path) -> anyhow::Result<()> {
    let config = CoreConfig::new(dir, WorkingDir::parse(&dir.to_string_lossy())?);
    let mesa = Mesa::builder().sqlite(db).config(config).build().await?;
    mesa.set_scheduler_paused(&Actor::board("bench"), true)
        .await?;
    mesa.close().await;
    Ok(())
}

/// Spawns `mesa serve` and measures the time until `/readyz` answers 200. Returns the RSS in KiB
/// after 3 idle seconds when `measure_rss`.
fn cold_start(
    mesa: &Path,
    db: &Path,
    dir: &Path,
    measure_rss: bool,
) -> anyhow::Result<(Duration, Option<u64>)> {
    let started = Instant::now();
    let mut child = Command::new(mesa)
        .args(["serve", "--port", "0", "--db"])
        .arg(db)
        .arg("--data-dir")
        .arg(dir)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn mesa")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no address in {line:?}"))?;
    let elapsed = loop {
        if readyz(port) == Some(200) {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("mesa did not become ready");
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let rss = if measure_rss {
        std::thread::sleep(Duration::from_secs(3));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    } else {
        None
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    Ok((elapsed, rss))
}

fn readyz(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.get(9..12)?.parse().ok()
}
