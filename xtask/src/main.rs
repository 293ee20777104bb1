//! Mesa's development workflows, following the cargo-xtask convention
//! (<https://github.com/matklad/cargo-xtask>): `cargo xtask <command>`, where the `xtask` alias
//! in `.cargo/config.toml` runs this binary.
//!
//! Commands (one module each):
//!
//! - `ci [--skip-fmt]`: runs exactly what CI runs, in order, failing fast ([`ci`]).
//! - `check-layers`: checks the dependency arrows of STYLE §2.2 ([`check_layers`]).
//! - `screenshots`: PNGs of every dashboard page at two widths ([`screenshots`]).
//! - `help`: prints the usage.
//!
//! xtask depends on no workspace crate and shells out to cargo instead.
//! Arguments are parsed by hand to keep dependencies few.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "xtask is a CLI")]
#![expect(
    clippy::disallowed_methods,
    reason = "xtask runs cargo and other commands and may read the environment"
)]

mod bench;
mod check_layers;
mod ci;
mod schemathesis;
mod screenshots;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;

const USAGE: &str = "\
Usage: cargo xtask <command>

Commands:
  ci [--skip-fmt]   Run what CI runs, in order, stopping at the first failure:
                    fmt, clippy, tests (nextest + doctests, or cargo test), doc, check-layers.
                    --skip-fmt leaves out `cargo fmt --check`.
  check-layers      Check workspace dependency arrows against STYLE §2.2.
  bench [--issues N] [--starts N]
                    Build release binaries, run the foundation benchmarks and record the
                    figures in docs/benchmarks.md (defaults: 100000 issues, 11 starts).
  bench dispatch [--runs N]
                    The scheduler's dispatch latency (default 200 runs).
  bench api [--issues N] [--agents N] [--seconds S]
                    The REST API under load from wrk (apt-get install wrk), recorded the same
                    way (defaults: 1000000 issues, 1000 agents, 10 s per phase; the seeded
                    database is kept under target/bench and reused).
  bench pages [--issues N] [--agents N] [--activity N] [--samples N]
                    Server time (p50, p95) of every dashboard page, one request at a time
                    (defaults: 100000 issues, 1000 agents, 1000000 audit rows, 40 samples per
                    page; the seeded database is kept under target/bench and reused).
  schemathesis      Run schemathesis against a fresh `mesa serve` (the last CI step).
  screenshots       Save every dashboard page at 1280 px and 390 px widths as
                    target/screenshots/<page>-<width>.png (headless Chromium; needs
                    apt-get install chromium chromium-driver).
  help              Print this message.";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cmd {
    Ci(ci::Options),
    CheckLayers,
    Bench(bench::Options),
    Schemathesis,
    Screenshots,
    Help,
}

impl Cmd {
    /// Parses the arguments after `cargo xtask`.
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let Some((command, rest)) = args.split_first() else {
            return Ok(Self::Help);
        };
        match command.as_str() {
            "ci" => {
                let mut options = ci::Options::default();
                for arg in rest {
                    match arg.as_str() {
                        "--skip-fmt" => options.skip_fmt = true,
                        other => bail!("unknown option for `ci`: {other}"),
                    }
                }
                Ok(Self::Ci(options))
            }
            "check-layers" => {
                if let Some(extra) = rest.first() {
                    bail!("`check-layers` takes no arguments, got: {extra}");
                }
                Ok(Self::CheckLayers)
            }
            "bench" => {
                let (suite, rest) = match rest.split_first() {
                    Some((s, tail)) if s == "api" => (bench::Suite::Api, tail),
                    Some((s, tail)) if s == "dispatch" => (bench::Suite::Dispatch, tail),
                    Some((s, tail)) if s == "pages" => (bench::Suite::Pages, tail),
                    _ => (bench::Suite::Foundation, rest),
                };
                let mut options = bench::Options::of(suite);
                let mut it = rest.iter();
                while let Some(arg) = it.next() {
                    let mut value = || -> anyhow::Result<usize> {
                        let v = it
                            .next()
                            .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))?;
                        v.parse()
                            .map_err(|_| anyhow::anyhow!("{arg} needs a number, got {v}"))
                    };
                    match arg.as_str() {
                        "--issues" => options.issues = value()?,
                        "--starts" if suite == bench::Suite::Foundation => {
                            options.starts = value()?.max(1);
                        }
                        "--agents" if matches!(suite, bench::Suite::Api | bench::Suite::Pages) => {
                            options.agents = value()?;
                        }
                        "--activity" if suite == bench::Suite::Pages => {
                            options.activity = value()?;
                        }
                        "--samples" if suite == bench::Suite::Pages => {
                            options.samples = value()?.max(1);
                        }
                        "--runs" if suite == bench::Suite::Dispatch => options.issues = value()?,
                        "--seconds" if suite == bench::Suite::Api => {
                            options.seconds = value()?.max(1);
                        }
                        other => bail!("unknown option for `bench`: {other}"),
                    }
                }
                Ok(Self::Bench(options))
            }
            "schemathesis" => Ok(Self::Schemathesis),
            "screenshots" => {
                if let Some(extra) = rest.first() {
                    bail!("`screenshots` takes no arguments, got: {extra}");
                }
                Ok(Self::Screenshots)
            }
            "help" | "--help" | "-h" => Ok(Self::Help),
            other => bail!("unknown command: {other}"),
        }
    }

    fn run(&self, root: &Path) -> anyhow::Result<()> {
        match self {
            Self::Ci(options) => ci::run(root, *options),
            Self::CheckLayers => check_layers::run(root),
            Self::Bench(options) => bench::run(root, *options),
            Self::Schemathesis => schemathesis::run(root),
            Self::Screenshots => screenshots::run(root),
            Self::Help => {
                println!("{USAGE}");
                Ok(())
            }
        }
    }
}

/// The workspace root: the parent of xtask's own manifest directory.
fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match Cmd::parse(&args) {
        Ok(cmd) => cmd,
        Err(error) => {
            eprintln!("xtask: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match cmd.run(&project_root()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cmd, ci};

    fn parse(args: &[&str]) -> anyhow::Result<Cmd> {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        Cmd::parse(&args)
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse(&[]).unwrap(), Cmd::Help);
        assert_eq!(parse(&["help"]).unwrap(), Cmd::Help);
        assert_eq!(parse(&["--help"]).unwrap(), Cmd::Help);
        assert_eq!(parse(&["check-layers"]).unwrap(), Cmd::CheckLayers);
        assert_eq!(parse(&["screenshots"]).unwrap(), Cmd::Screenshots);
        assert_eq!(
            parse(&["ci"]).unwrap(),
            Cmd::Ci(ci::Options { skip_fmt: false })
        );
        assert_eq!(
            parse(&["ci", "--skip-fmt"]).unwrap(),
            Cmd::Ci(ci::Options { skip_fmt: true })
        );
    }

    #[test]
    fn parses_bench_options() {
        assert_eq!(
            parse(&["bench", "--issues", "10", "--starts", "3"]).unwrap(),
            Cmd::Bench(super::bench::Options {
                issues: 10,
                starts: 3,
                ..super::bench::Options::default()
            })
        );
        assert_eq!(
            parse(&["bench", "api", "--agents", "20", "--seconds", "2"]).unwrap(),
            Cmd::Bench(super::bench::Options {
                agents: 20,
                seconds: 2,
                ..super::bench::Options::of(super::bench::Suite::Api)
            })
        );
        assert!(parse(&["bench", "api", "--starts", "3"]).is_err());
        assert_eq!(
            parse(&[
                "bench",
                "pages",
                "--issues",
                "5000",
                "--agents",
                "50",
                "--activity",
                "20000",
                "--samples",
                "5"
            ])
            .unwrap(),
            Cmd::Bench(super::bench::Options {
                issues: 5_000,
                agents: 50,
                activity: 20_000,
                samples: 5,
                ..super::bench::Options::of(super::bench::Suite::Pages)
            })
        );
        assert_eq!(
            parse(&["bench", "pages"]).unwrap(),
            Cmd::Bench(super::bench::Options::of(super::bench::Suite::Pages))
        );
        assert!(parse(&["bench", "pages", "--seconds", "3"]).is_err());
        assert!(parse(&["bench", "api", "--activity", "3"]).is_err());
    }

    #[test]
    fn rejects_unknown_input() {
        assert!(parse(&["deploy"]).is_err());
        assert!(parse(&["bench", "--issues"]).is_err());
        assert!(parse(&["bench", "--issues", "many"]).is_err());
        assert!(parse(&["ci", "--fast"]).is_err());
        assert!(parse(&["check-layers", "extra"]).is_err());
        assert!(parse(&["screenshots", "extra"]).is_err());
    }
}
