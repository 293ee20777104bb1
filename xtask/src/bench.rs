//! `cargo xtask bench`: builds release binaries, runs `mesa-bench`, and writes the results into
//! `docs/benchmarks.md` between markers, with the command and the machine it ran on.
//!
//! Benchmarks are never timed tests: they run here, on demand, and their figures are recorded.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

const BEGIN: &str = "<!-- bench:foundation:begin -->";
const END: &str = "<!-- bench:foundation:end -->";

/// Options of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    /// Issues seeded before the cold starts.
    pub(crate) issues: usize,
    /// Cold starts measured.
    pub(crate) starts: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            issues: 100_000,
            starts: 11,
        }
    }
}

pub(crate) fn run(root: &Path, options: Options) -> anyhow::Result<()> {
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
        .args(["--bin", "mesa", "--bin", "mesa-bench"])
        .status()
        .context("cargo build")?;
    if !status.success() {
        bail!("release build failed");
    }
    let target = root.join("target").join("release");
    let command = format!(
        "cargo xtask bench --issues {} --starts {}",
        options.issues, options.starts
    );
    println!(
        "bench: running mesa-bench with {} issues ({command})",
        options.issues
    );
    let output = Command::new(target.join("mesa-bench"))
        .current_dir(root)
        .arg("--mesa")
        .arg(target.join("mesa"))
        .args([
            "--issues",
            &options.issues.to_string(),
            "--starts",
            &options.starts.to_string(),
        ])
        .output()
        .context("run mesa-bench")?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        bail!("mesa-bench failed");
    }
    let table = String::from_utf8(output.stdout).context("mesa-bench output")?;
    print!("{table}");

    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(
                |c| c.lines().find(|l| l.starts_with("model name")).map(|l| l
                    .split(':')
                    .nth(1)
                    .unwrap_or("")
                    .trim()
                    .to_owned())
            )
            .unwrap_or_else(|| "unknown CPU".to_owned())
    );
    let section =
        format!("{BEGIN}\nCommand: `{command}` (release build), on {machine}.\n\n{table}{END}");
    let path = root.join("docs").join("benchmarks.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let updated = match (doc.find(BEGIN), doc.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &doc[..a], &doc[b + END.len()..]),
        _ => format!("{doc}\n## Foundation\n\n{section}\n"),
    };
    std::fs::write(&path, updated).with_context(|| format!("write {}", path.display()))?;
    println!("bench: results written to {}", path.display());
    Ok(())
}
