//! `cargo xtask check-layers`: enforces the dependency arrows of STYLE §2.2.
//!
//! The check reads `cargo metadata --format-version 1 --no-deps` and looks at the normal
//! dependencies (`kind == null`) of every workspace package.
//! Dev- and build-dependencies are not checked: tests may reach anywhere.
//! Two kinds of rule apply:
//!
//! - [`LAYERS`]: the workspace crates each workspace package may depend on.
//!   A package missing from the table is itself a violation, so adding a crate forces a decision.
//! - [`EXTERNAL`]: external crates that only their owners may use (`sqlx` only in the store
//!   backends, `axum` only in `mesa-http`, ...), or that some crates must not use (`tokio` in the
//!   pure crates).
//!
//! The checking logic ([`check`]) is a pure function of the metadata JSON, so it is unit-tested
//! against hand-written metadata, and a test runs it against the real workspace so that a plain
//! `cargo test --workspace` catches a wrong arrow too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

#[cfg(test)]
mod tests;

/// The workspace crates a package may have as normal dependencies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Allowed {
    /// Exactly these workspace crates (possibly none).
    Only(&'static [&'static str]),
    /// Any workspace crate.
    /// Only for test-only packages, which nothing depends on normally.
    Any,
}

/// One row of the layer table: a package, what it may depend on, and the invariant behind it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layer {
    pub(crate) package: &'static str,
    pub(crate) allowed: Allowed,
    pub(crate) invariant: &'static str,
}

const fn layer(package: &'static str, allowed: Allowed, invariant: &'static str) -> Layer {
    Layer {
        package,
        allowed,
        invariant,
    }
}

/// Copy of STYLE §2.2: allowed normal-dependency arrows between workspace crates.
/// Anything not listed is forbidden.
pub(crate) const LAYERS: &[Layer] = &[
    layer(
        "mesa",
        Allowed::Only(&["mesa-http", "mesa-core"]),
        "bin/mesa is thin composition over mesa-http and mesa-core",
    ),
    layer(
        "mesa-http",
        Allowed::Only(&["mesa-core"]),
        "mesa-http reaches storage, the scheduler and the runner only through mesa-core",
    ),
    layer(
        "mesa-core",
        Allowed::Only(&[
            "mesa-scheduler",
            "mesa-runner",
            "mesa-workflow",
            "mesa-store",
            "mesa-domain",
            "mesa-store-sqlite",
            "mesa-store-postgres",
        ]),
        "mesa-core is the embedding API boundary and knows nothing of HTTP or the CLI",
    ),
    layer(
        "mesa-scheduler",
        Allowed::Only(&["mesa-runner", "mesa-workflow", "mesa-store", "mesa-domain"]),
        "the scheduler talks to storage through the Store port, never to a backend",
    ),
    layer(
        "mesa-store-sqlite",
        Allowed::Only(&["mesa-store", "mesa-domain"]),
        "a store backend implements the Store port over domain types and nothing else",
    ),
    layer(
        "mesa-store-postgres",
        Allowed::Only(&["mesa-store", "mesa-domain"]),
        "a store backend implements the Store port over domain types and nothing else",
    ),
    layer(
        "mesa-workflow",
        Allowed::Only(&["mesa-domain"]),
        "state machines are pure functions over domain types",
    ),
    layer(
        "mesa-store",
        Allowed::Only(&["mesa-domain"]),
        "the storage port speaks domain types only",
    ),
    layer(
        "mesa-runner",
        Allowed::Only(&["mesa-domain"]),
        "the runner touches the OS for a run and knows nothing of storage or workflow",
    ),
    layer(
        "mesa-domain",
        Allowed::Only(&[]),
        "mesa-domain is the bottom layer: pure vocabulary",
    ),
    layer(
        "mesa-test-support",
        Allowed::Any,
        "mesa-test-support is dev-only and may use any crate",
    ),
    layer(
        "mesa-testkit",
        Allowed::Only(&[]),
        "mesa-testkit (the scripted fake model server) is leaf test support: no workspace crate, \
         and only ever a dev-dependency",
    ),
    layer(
        "mesa-tests",
        Allowed::Only(&["mesa-core", "mesa-http", "mesa-test-support"]),
        "end-to-end tests go through the public front doors: mesa-http and mesa-core",
    ),
    layer(
        "xtask",
        Allowed::Only(&[]),
        "xtask depends on no workspace crate; it shells out to cargo",
    ),
];

/// Workspace crates that must never be a normal dependency, except where [`LAYERS`] lists them
/// explicitly (only `mesa-tests`, itself a test-only package).
const DEV_ONLY: &[&str] = &["mesa-test-support", "mesa-testkit"];

/// Where an external crate may appear as a normal dependency.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    /// Only in these workspace packages.
    OnlyIn(&'static [&'static str]),
    /// Anywhere except these workspace packages.
    NotIn(&'static [&'static str]),
}

/// A rule on an external crate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExternalRule {
    pub(crate) krate: &'static str,
    pub(crate) scope: Scope,
    pub(crate) invariant: &'static str,
}

const BINARIES_AND_TESTS: &[&str] = &["mesa", "xtask", "mesa-tests"];

/// External crates restricted to their owners.
/// `mesa-test-support` is exempt: it is dev-only, which [`DEV_ONLY`] enforces.
pub(crate) const EXTERNAL: &[ExternalRule] = &[
    ExternalRule {
        krate: "sqlx",
        scope: Scope::OnlyIn(&["mesa-store-sqlite", "mesa-store-postgres"]),
        invariant: "only mesa-store-* know SQL",
    },
    ExternalRule {
        krate: "axum",
        scope: Scope::OnlyIn(&["mesa-http", "mesa-testkit"]),
        invariant: "only mesa-http knows HTTP (mesa-testkit, dev-only, serves the fake model API; \
                    mesa-tests may use it as a dev-dependency)",
    },
    ExternalRule {
        krate: "minijinja",
        scope: Scope::OnlyIn(&["mesa-http"]),
        invariant: "only mesa-http renders HTML (mesa-tests may use it as a dev-dependency)",
    },
    ExternalRule {
        krate: "git2",
        scope: Scope::OnlyIn(&["mesa-runner"]),
        invariant: "only mesa-runner touches git",
    },
    ExternalRule {
        krate: "clap",
        scope: Scope::OnlyIn(BINARIES_AND_TESTS),
        invariant: "only binaries parse command lines",
    },
    ExternalRule {
        krate: "tracing-subscriber",
        scope: Scope::OnlyIn(BINARIES_AND_TESTS),
        invariant: "only bin/mesa installs a tracing subscriber; libraries only emit events",
    },
    ExternalRule {
        krate: "anyhow",
        scope: Scope::OnlyIn(BINARIES_AND_TESTS),
        invariant: "libraries have one named thiserror enum; anyhow is for binaries and tests",
    },
    ExternalRule {
        krate: "tokio",
        scope: Scope::NotIn(&["mesa-domain", "mesa-workflow"]),
        invariant: "mesa-domain and mesa-workflow do no IO and are not async",
    },
];

/// Packages exempt from [`EXTERNAL`], because they are only ever dev-dependencies.
const EXTERNAL_EXEMPT: &[&str] = &["mesa-test-support"];

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// The workspace package whose manifest breaks the rule.
    pub(crate) package: String,
    /// The offending dependency, if the violation is about one.
    pub(crate) dependency: Option<String>,
    /// What is wrong and which rule it breaks.
    pub(crate) message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dependency {
            Some(dependency) => write!(f, "{} -> {}: {}", self.package, dependency, self.message),
            None => write!(f, "{}: {}", self.package, self.message),
        }
    }
}

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// Number of workspace packages checked.
    pub(crate) packages: usize,
    /// Number of normal dependency edges between workspace packages.
    pub(crate) edges: usize,
    /// Every broken rule, in package order.
    pub(crate) violations: Vec<Violation>,
}

/// A workspace package as far as this check cares.
struct Package {
    name: String,
    /// Normal dependencies on other workspace packages.
    workspace: BTreeSet<String>,
    /// Normal dependencies on anything else.
    external: BTreeSet<String>,
}

/// Runs `cargo metadata` in `root`, checks it, prints the result, and fails on any violation.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let metadata = cargo_metadata(root)?;
    let report = check(&metadata)?;
    if report.violations.is_empty() {
        println!(
            "check-layers: {} packages, {} edges, ok",
            report.packages, report.edges
        );
        return Ok(());
    }
    for violation in &report.violations {
        eprintln!("check-layers: {violation}");
    }
    bail!(
        "check-layers: {} violation(s) of the layer table (STYLE §2.2, xtask/src/check_layers.rs)",
        report.violations.len()
    )
}

/// Runs `cargo metadata --format-version 1 --no-deps` in `root` and parses its output.
pub(crate) fn cargo_metadata(root: &Path) -> anyhow::Result<Value> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("failed to run `cargo metadata`")?;
    if !output.status.success() {
        bail!(
            "`cargo metadata` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("`cargo metadata` printed invalid JSON")
}

/// Checks `cargo metadata` output against [`LAYERS`] and [`EXTERNAL`].
///
/// Fails only if the JSON does not have the shape `cargo metadata --format-version 1` produces;
/// broken rules are reported in [`Report::violations`].
pub(crate) fn check(metadata: &Value) -> anyhow::Result<Report> {
    let packages = workspace_packages(metadata)?;
    let layers: BTreeMap<&str, &Layer> = LAYERS.iter().map(|l| (l.package, l)).collect();
    let mut violations = Vec::new();
    let mut edges = 0;

    for package in &packages {
        edges += package.workspace.len();
        let violation = |dependency: Option<&str>, message: String| Violation {
            package: package.name.clone(),
            dependency: dependency.map(str::to_owned),
            message,
        };

        match layers.get(package.name.as_str()) {
            None => violations.push(violation(
                None,
                "workspace package missing from the layer table: add it to the layer table \
                 (LAYERS in xtask/src/check_layers.rs and STYLE §2.2)"
                    .to_owned(),
            )),
            Some(Layer {
                allowed: Allowed::Any,
                ..
            }) => {}
            Some(Layer {
                allowed: Allowed::Only(allowed),
                invariant,
                ..
            }) => {
                for dependency in &package.workspace {
                    if allowed.contains(&dependency.as_str()) {
                        continue;
                    }
                    let message = if DEV_ONLY.contains(&dependency.as_str()) {
                        format!(
                            "{dependency} must never be a normal dependency; \
                             move it to [dev-dependencies]"
                        )
                    } else {
                        format!(
                            "arrow not in the layer table; {} may depend on {} ({invariant})",
                            package.name,
                            describe(allowed)
                        )
                    };
                    violations.push(violation(Some(dependency), message));
                }
            }
        }

        if EXTERNAL_EXEMPT.contains(&package.name.as_str()) {
            continue;
        }
        for rule in EXTERNAL {
            if !package.external.contains(rule.krate) {
                continue;
            }
            let message = match rule.scope {
                Scope::OnlyIn(owners) if !owners.contains(&package.name.as_str()) => format!(
                    "external crate {} is only allowed in {} ({})",
                    rule.krate,
                    owners.join(", "),
                    rule.invariant
                ),
                Scope::NotIn(forbidden) if forbidden.contains(&package.name.as_str()) => format!(
                    "external crate {} is forbidden in {} ({})",
                    rule.krate,
                    forbidden.join(", "),
                    rule.invariant
                ),
                Scope::OnlyIn(_) | Scope::NotIn(_) => continue,
            };
            violations.push(violation(Some(rule.krate), message));
        }
    }

    Ok(Report {
        packages: packages.len(),
        edges,
        violations,
    })
}

fn describe(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "no workspace crate".to_owned()
    } else {
        allowed.join(", ")
    }
}

/// Extracts the workspace packages and their normal dependencies, sorted by name.
fn workspace_packages(metadata: &Value) -> anyhow::Result<Vec<Package>> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("metadata has no `workspace_members` array")?
        .iter()
        .map(|id| id.as_str().context("a workspace member id is not a string"))
        .collect::<anyhow::Result<_>>()?;

    let mut raw = Vec::new();
    for package in metadata["packages"]
        .as_array()
        .context("metadata has no `packages` array")?
    {
        let id = package["id"].as_str().context("a package has no `id`")?;
        if !members.contains(id) {
            continue;
        }
        let name = package["name"]
            .as_str()
            .context("a package has no `name`")?;
        let dependencies = package["dependencies"]
            .as_array()
            .with_context(|| format!("package {name} has no `dependencies` array"))?;
        raw.push((name, dependencies));
    }
    let names: BTreeSet<&str> = raw.iter().map(|(name, _)| *name).collect();

    let mut packages = Vec::new();
    for (name, dependencies) in raw {
        let mut package = Package {
            name: name.to_owned(),
            workspace: BTreeSet::new(),
            external: BTreeSet::new(),
        };
        for dependency in dependencies {
            let dep_name = dependency["name"]
                .as_str()
                .with_context(|| format!("a dependency of {name} has no `name`"))?;
            // `kind` is null for normal dependencies, "dev" or "build" otherwise.
            if !dependency["kind"].is_null() {
                continue;
            }
            // Path dependencies carry a `path` and no `source`.
            let is_path = dependency.get("path").is_some_and(|p| !p.is_null());
            if is_path && names.contains(dep_name) {
                package.workspace.insert(dep_name.to_owned());
            } else {
                package.external.insert(dep_name.to_owned());
            }
        }
        packages.push(package);
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}
