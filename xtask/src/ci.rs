//! `cargo xtask ci`: runs exactly what CI runs, in order, and stops at the first failing step.
//!
//! The steps are fmt, clippy, tests (nextest when available, plus doctests, which nextest
//! skips; plain `cargo test` otherwise), rustdoc with warnings denied, check-layers, and
//! schemathesis against the running server's OpenAPI document.
//! Every step prints a one-line summary with its duration, and a recap follows at the end.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::check_layers;

/// Options of `cargo xtask ci`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// Skip `cargo fmt --check` (useful while iterating locally).
    pub(crate) skip_fmt: bool,
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    /// `cargo <args>` with extra environment variables.
    Cargo {
        args: &'static [&'static str],
        env: &'static [(&'static str, &'static str)],
    },
    /// The layer check, in-process.
    CheckLayers,
    /// schemathesis against the OpenAPI document of a running `mesa`.
    Schemathesis,
}

/// One named CI step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: &'static str,
    action: Action,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Cargo { args, env } => {
                for (key, value) in *env {
                    write!(f, "{key}=\"{value}\" ")?;
                }
                write!(f, "cargo {}", args.join(" "))
            }
            Action::CheckLayers => f.write_str("cargo xtask check-layers (in-process)"),
            Action::Schemathesis => f.write_str("st run <mesa>/api/openapi.json (board token)"),
        }
    }
}

const fn cargo(name: &'static str, args: &'static [&'static str]) -> Step {
    Step {
        name,
        action: Action::Cargo { args, env: &[] },
    }
}

/// The steps CI runs, in order.
fn plan(options: Options, nextest: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    if !options.skip_fmt {
        steps.push(cargo("fmt", &["fmt", "--all", "--", "--check"]));
    }
    steps.push(cargo(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    ));
    if nextest {
        steps.push(cargo(
            "test (nextest)",
            &[
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ],
        ));
        steps.push(cargo(
            "doctest",
            &["test", "--doc", "--workspace", "--locked"],
        ));
    } else {
        steps.push(cargo("test", &["test", "--workspace", "--locked"]));
    }
    steps.push(Step {
        name: "doc",
        action: Action::Cargo {
            args: &["doc", "--workspace", "--no-deps", "--locked"],
            env: &[("RUSTDOCFLAGS", "-D warnings")],
        },
    });
    steps.push(Step {
        name: "check-layers",
        action: Action::CheckLayers,
    });
    steps.push(Step {
        name: "schemathesis",
        action: Action::Schemathesis,
    });
    steps
}

/// Whether `cargo nextest` is installed.
fn nextest_available(root: &Path) -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Runs every CI step in `root`, failing fast.
pub(crate) fn run(root: &Path, options: Options) -> anyhow::Result<()> {
    let nextest = nextest_available(root);
    if nextest {
        println!("ci: cargo nextest found: tests run with `cargo nextest`, doctests separately");
    } else {
        println!("ci: cargo nextest not found: tests run with `cargo test`");
    }
    if options.skip_fmt {
        println!("ci: --skip-fmt: not checking formatting");
    }

    let steps = plan(options, nextest);
    let total = steps.len();
    let started = Instant::now();
    let mut done: Vec<(&str, Duration)> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let number = index + 1;
        println!("ci: [{number}/{total}] {}: {}", step.name, step.action);
        let step_started = Instant::now();
        let result = run_step(root, step);
        let elapsed = step_started.elapsed();
        if let Err(error) = result {
            eprintln!(
                "ci: [{number}/{total}] {} FAILED after {}",
                step.name,
                seconds(elapsed)
            );
            recap(&done, Some((step.name, elapsed)), started.elapsed());
            return Err(error.context(format!("ci step `{}` failed", step.name)));
        }
        println!(
            "ci: [{number}/{total}] {} ok in {}",
            step.name,
            seconds(elapsed)
        );
        done.push((step.name, elapsed));
    }
    recap(&done, None, started.elapsed());
    Ok(())
}

fn run_step(root: &Path, step: &Step) -> anyhow::Result<()> {
    match &step.action {
        Action::Cargo { args, env } => {
            let mut command = Command::new("cargo");
            command.args(*args).current_dir(root);
            for (key, value) in *env {
                command.env(key, value);
            }
            let status = command
                .status()
                .with_context(|| format!("could not start `{}`", step.action))?;
            if !status.success() {
                match status.code() {
                    Some(code) => bail!("`{}` exited with code {code}", step.action),
                    None => bail!("`{}` was killed by a signal ({status})", step.action),
                }
            }
            Ok(())
        }
        Action::CheckLayers => check_layers::run(root),
        Action::Schemathesis => crate::schemathesis::run(root),
    }
}

/// Prints one line per step that ran, then the total.
fn recap(done: &[(&str, Duration)], failed: Option<(&str, Duration)>, total: Duration) {
    println!("ci: summary");
    for (name, elapsed) in done {
        println!("ci:   ok      {name:<16} {:>8}", seconds(*elapsed));
    }
    if let Some((name, elapsed)) = failed {
        println!("ci:   FAILED  {name:<16} {:>8}", seconds(elapsed));
    }
    let verdict = if failed.is_some() {
        "failed"
    } else {
        "all steps passed"
    };
    println!("ci: {verdict} in {}", seconds(total));
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::{Action, Options, plan};

    fn names(options: Options, nextest: bool) -> Vec<&'static str> {
        plan(options, nextest)
            .iter()
            .map(|step| step.name)
            .collect()
    }

    #[test]
    fn plan_with_nextest_runs_doctests_separately() {
        assert_eq!(
            names(Options::default(), true),
            [
                "fmt",
                "clippy",
                "test (nextest)",
                "doctest",
                "doc",
                "check-layers",
                "schemathesis"
            ]
        );
    }

    #[test]
    fn plan_without_nextest_uses_cargo_test() {
        assert_eq!(
            names(Options::default(), false),
            [
                "fmt",
                "clippy",
                "test",
                "doc",
                "check-layers",
                "schemathesis"
            ]
        );
    }

    #[test]
    fn skip_fmt_drops_the_fmt_step() {
        assert_eq!(
            names(Options { skip_fmt: true }, false),
            ["clippy", "test", "doc", "check-layers", "schemathesis"]
        );
    }

    #[test]
    fn commands_are_locked_and_deny_warnings() {
        let shown: Vec<String> = plan(Options::default(), true)
            .iter()
            .map(|step| step.action.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "cargo fmt --all -- --check",
                "cargo clippy --workspace --all-targets --locked -- -D warnings",
                "cargo nextest run --workspace --locked --no-fail-fast",
                "cargo test --doc --workspace --locked",
                "RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps --locked",
                "cargo xtask check-layers (in-process)",
                "st run <mesa>/api/openapi.json (board token)",
            ]
        );
        assert!(matches!(
            plan(Options::default(), true)[5].action,
            Action::CheckLayers
        ));
    }
}
