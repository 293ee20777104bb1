//! `cargo xtask bench [api]`: builds release binaries, runs a benchmark binary of `mesa-tests`,
//! and writes its table into `docs/benchmarks.md` between the suite's markers, with the command
//! and the machine it ran on.
//!
//! - `foundation` (the default): `mesa-bench`: issue creation, cold start, idle memory.
//! - `api`: `mesa-api-bench`: the REST API under load from a second process (`wrk`), with a
//!   million issues and a thousand agents.
//! - `dispatch`: `mesa-dispatch-bench`: the scheduler's latency from a wake-up's commit to the
//!   runner's process.
//! - `pages`: `mesa-pages-bench`: the server time of every dashboard page with 100,000 issues,
//!   1,000 agents and 1,000,000 audit rows.
//!
//! Benchmarks are never timed tests: they run here, on demand, and their figures are recorded.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// Which benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suite {
    /// Creation, cold start and memory (`mesa-bench`).
    Foundation,
    /// The REST API under load (`mesa-api-bench`).
    Api,
    /// Scheduler dispatch latency (`mesa-dispatch-bench`).
    Dispatch,
    /// Server time of the dashboard's pages (`mesa-pages-bench`).
    Pages,
}

/// Options of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Which benchmarks.
    pub(crate) suite: Suite,
    /// Issues seeded.
    pub(crate) issues: usize,
    /// Cold starts measured (foundation).
    pub(crate) starts: usize,
    /// Agents seeded (api).
    pub(crate) agents: usize,
    /// Seconds per load phase (api).
    pub(crate) seconds: usize,
    /// Audit rows seeded (pages).
    pub(crate) activity: usize,
    /// Measured requests per page (pages).
    pub(crate) samples: usize,
}

impl Options {
    /// The defaults of a suite.
    pub(crate) fn of(suite: Suite) -> Self {
        match suite {
            Suite::Foundation => Options {
                suite,
                issues: 100_000,
                starts: 11,
                agents: 0,
                seconds: 0,
                activity: 0,
                samples: 0,
            },
            Suite::Api => Options {
                suite,
                issues: 1_000_000,
                starts: 0,
                agents: 1_000,
                seconds: 10,
                activity: 0,
                samples: 0,
            },
            Suite::Dispatch => Options {
                suite,
                issues: 200,
                starts: 0,
                agents: 0,
                seconds: 0,
                activity: 0,
                samples: 0,
            },
            Suite::Pages => Options {
                suite,
                issues: 100_000,
                starts: 0,
                agents: 1_000,
                seconds: 0,
                activity: 1_000_000,
                samples: 40,
            },
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::of(Suite::Foundation)
    }
}

pub(crate) fn run(root: &Path, options: Options) -> anyhow::Result<()> {
    let (binary, marker, heading) = match options.suite {
        Suite::Foundation => ("mesa-bench", "foundation", "Foundation"),
        Suite::Api => ("mesa-api-bench", "api", "REST API"),
        Suite::Dispatch => ("mesa-dispatch-bench", "dispatch", "Scheduler"),
        Suite::Pages => ("mesa-pages-bench", "pages", "Dashboard pages"),
    };
    println!("bench: building release binaries");
    let status = Command::new("cargo")
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "mesa",
            "-p",
            "mesa-tests",
        ])
        .args(["--bin", "mesa", "--bin", binary])
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("release build failed");
    }
    let target = root.join("target").join("release");
    let (command, args) = match options.suite {
        Suite::Foundation => (
            format!(
                "cargo xtask bench --issues {} --starts {}",
                options.issues, options.starts
            ),
            vec![
                "--issues".to_owned(),
                options.issues.to_string(),
                "--starts".to_owned(),
                options.starts.to_string(),
            ],
        ),
        Suite::Api => (
            format!(
                "cargo xtask bench api --issues {} --agents {} --seconds {}",
                options.issues, options.agents, options.seconds
            ),
            vec![
                "--issues".to_owned(),
                options.issues.to_string(),
                "--agents".to_owned(),
                options.agents.to_string(),
                "--seconds".to_owned(),
                options.seconds.to_string(),
                "--cache".to_owned(),
                root.join("target").join("bench").display().to_string(),
            ],
        ),
        Suite::Dispatch => (
            format!("cargo xtask bench dispatch --runs {}", options.issues),
            vec!["--runs".to_owned(), options.issues.to_string()],
        ),
        Suite::Pages => (
            format!(
                "cargo xtask bench pages --issues {} --agents {} --activity {} --samples {}",
                options.issues, options.agents, options.activity, options.samples
            ),
            vec![
                "--issues".to_owned(),
                options.issues.to_string(),
                "--agents".to_owned(),
                options.agents.to_string(),
                "--activity".to_owned(),
                options.activity.to_string(),
                "--samples".to_owned(),
                options.samples.to_string(),
                "--cache".to_owned(),
                root.join("target").join("bench").display().to_string(),
            ],
        ),
    };
    println!("bench: running {binary} ({command})");
    let output = Command::new(target.join(binary))
        .current_dir(root)
        .arg("--mesa")
        .arg(target.join("mesa"))
        .args(&args)
        .output()
        .with_context(|| format!("run {binary}"))?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("{binary} failed");
    }
    let table = String::from_utf8(output.stdout).context("benchmark output")?;
    print!("{table}");

    let section = format!(
        "<!-- bench:{marker}:begin -->\nCommand: `{command}` (release build), on {}.\n\n{table}<!-- bench:{marker}:end -->",
        machine()
    );
    let path = root.join("docs").join("benchmarks.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, replace_section(&doc, marker, heading, &section))
        .with_context(|| format!("write {}", path.display()))?;
    println!("bench: results written to {}", path.display());
    Ok(())
}

/// `doc` with the section between the suite's markers replaced by `section` (which carries the
/// markers), or with `## heading` and the section appended when the markers are missing.
fn replace_section(doc: &str, marker: &str, heading: &str, section: &str) -> String {
    let begin = format!("<!-- bench:{marker}:begin -->");
    let end = format!("<!-- bench:{marker}:end -->");
    match (doc.find(&begin), doc.find(&end)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{section}{}", &doc[..a], &doc[b + end.len()..])
        }
        _ => format!("{}\n\n## {heading}\n\n{section}\n", doc.trim_end()),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!(
        "{} cores, {cpu}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    )
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn sections_are_replaced_in_place_or_appended() {
        let doc = "# B\n\nintro\n\n<!-- bench:api:begin -->\nold\n<!-- bench:api:end -->\n\ntail\n";
        let new = "<!-- bench:api:begin -->\nnew\n<!-- bench:api:end -->";
        assert_eq!(
            replace_section(doc, "api", "REST API", new),
            "# B\n\nintro\n\n<!-- bench:api:begin -->\nnew\n<!-- bench:api:end -->\n\ntail\n"
        );
        let appended = replace_section("# B\n\nintro\n", "api", "REST API", new);
        assert_eq!(
            appended,
            "# B\n\nintro\n\n## REST API\n\n<!-- bench:api:begin -->\nnew\n<!-- bench:api:end -->\n"
        );
    }
}
