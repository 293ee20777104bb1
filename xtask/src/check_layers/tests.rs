//! Tests of the layer check: hand-written metadata with good and bad arrows, the table's own
//! consistency, and the real workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use super::{Allowed, EXTERNAL, LAYERS, Scope, Violation, cargo_metadata, check};

/// A dependency in the shape `cargo metadata` prints.
fn dependency(name: &str, kind: Option<&str>, workspace: bool) -> Value {
    let mut dependency = json!({
        "name": name,
        "source": if workspace { Value::Null } else {
            json!("registry+https://github.com/rust-lang/crates.io-index")
        },
        "req": if workspace { "*" } else { "^1" },
        "kind": kind,
        "rename": null,
        "optional": false,
        "uses_default_features": true,
        "features": [],
        "target": null,
        "registry": null,
    });
    if workspace {
        dependency["path"] = json!(format!("/repo/crates/{name}"));
    }
    dependency
}

fn normal(name: &str) -> Value {
    dependency(name, None, true)
}

fn dev(name: &str) -> Value {
    dependency(name, Some("dev"), true)
}

fn external(name: &str) -> Value {
    dependency(name, None, false)
}

fn external_dev(name: &str) -> Value {
    dependency(name, Some("dev"), false)
}

/// Metadata for a workspace of `packages`, each with its dependencies.
fn metadata(packages: &[(&str, Vec<Value>)]) -> Value {
    let packages: Vec<Value> = packages
        .iter()
        .map(|(name, dependencies)| {
            json!({
                "name": name,
                "version": "0.1.0",
                "id": format!("path+file:///repo/crates/{name}#0.1.0"),
                "source": null,
                "dependencies": dependencies,
                "manifest_path": format!("/repo/crates/{name}/Cargo.toml"),
            })
        })
        .collect();
    let members: Vec<Value> = packages.iter().map(|p| p["id"].clone()).collect();
    json!({ "packages": packages, "workspace_members": members, "version": 1 })
}

/// A workspace that follows every rule.
fn good_workspace() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        (
            "mesa-domain",
            vec![external("serde"), external_dev("tokio")],
        ),
        (
            "mesa-workflow",
            vec![normal("mesa-domain"), external("thiserror")],
        ),
        ("mesa-store", vec![normal("mesa-domain"), external("tokio")]),
        (
            "mesa-store-sqlite",
            vec![
                normal("mesa-domain"),
                normal("mesa-store"),
                external("sqlx"),
                dev("mesa-store"),
            ],
        ),
        (
            "mesa-core",
            vec![
                normal("mesa-domain"),
                normal("mesa-workflow"),
                normal("mesa-store"),
                normal("mesa-store-sqlite"),
                dev("mesa-test-support"),
                external_dev("anyhow"),
            ],
        ),
        (
            "mesa-http",
            vec![normal("mesa-core"), external("axum"), external("minijinja")],
        ),
        (
            "mesa",
            vec![
                normal("mesa-core"),
                normal("mesa-http"),
                external("anyhow"),
                external("clap"),
                external("tracing-subscriber"),
            ],
        ),
        (
            "mesa-test-support",
            vec![
                normal("mesa-core"),
                normal("mesa-store-sqlite"),
                external("sqlx"),
            ],
        ),
        (
            "mesa-tests",
            vec![
                normal("mesa-core"),
                dev("mesa-test-support"),
                external_dev("axum"),
            ],
        ),
        ("xtask", vec![external("anyhow"), external("serde_json")]),
    ]
}

fn violations(packages: &[(&str, Vec<Value>)]) -> Vec<String> {
    let report = check(&metadata(packages)).expect("well-formed metadata");
    report.violations.iter().map(Violation::to_string).collect()
}

/// Replaces the dependencies of `package` in `workspace` after applying `edit`.
fn with(
    mut workspace: Vec<(&'static str, Vec<Value>)>,
    package: &str,
    edit: impl FnOnce(&mut Vec<Value>),
) -> Vec<(&'static str, Vec<Value>)> {
    let entry = workspace
        .iter_mut()
        .find(|(name, _)| *name == package)
        .expect("package exists");
    edit(&mut entry.1);
    workspace
}

#[test]
fn good_workspace_has_no_violation() {
    let report = check(&metadata(&good_workspace())).unwrap();
    assert_eq!(report.violations, vec![]);
    assert_eq!(report.packages, 10);
    assert_eq!(report.edges, 14);
}

#[test]
fn hand_written_metadata_with_a_wrong_arrow_is_reported() {
    // Trimmed `cargo metadata --format-version 1 --no-deps` output: mesa-http reaches past
    // mesa-core to a store backend.
    let metadata: Value = serde_json::from_str(
        r#"{
          "packages": [
            {
              "name": "mesa-http",
              "version": "0.1.0",
              "id": "path+file:///repo/crates/mesa-http#0.1.0",
              "source": null,
              "dependencies": [
                { "name": "axum", "source": "registry+https://github.com/rust-lang/crates.io-index",
                  "req": "^0.8", "kind": null, "rename": null, "optional": false,
                  "uses_default_features": false, "features": [], "target": null,
                  "registry": null },
                { "name": "mesa-core", "source": null, "req": "*", "kind": null,
                  "rename": null, "optional": false, "uses_default_features": true,
                  "features": [], "target": null, "registry": null,
                  "path": "/repo/crates/mesa-core" },
                { "name": "mesa-store-sqlite", "source": null, "req": "*", "kind": null,
                  "rename": null, "optional": false, "uses_default_features": true,
                  "features": [], "target": null, "registry": null,
                  "path": "/repo/crates/mesa-store-sqlite" }
              ],
              "manifest_path": "/repo/crates/mesa-http/Cargo.toml"
            },
            {
              "name": "mesa-core",
              "version": "0.1.0",
              "id": "path+file:///repo/crates/mesa-core#0.1.0",
              "source": null,
              "dependencies": [
                { "name": "mesa-store-sqlite", "source": null, "req": "*", "kind": null,
                  "rename": null, "optional": true, "uses_default_features": true,
                  "features": [], "target": null, "registry": null,
                  "path": "/repo/crates/mesa-store-sqlite" }
              ],
              "manifest_path": "/repo/crates/mesa-core/Cargo.toml"
            },
            {
              "name": "mesa-store-sqlite",
              "version": "0.1.0",
              "id": "path+file:///repo/crates/mesa-store-sqlite#0.1.0",
              "source": null,
              "dependencies": [],
              "manifest_path": "/repo/crates/mesa-store-sqlite/Cargo.toml"
            }
          ],
          "workspace_members": [
            "path+file:///repo/crates/mesa-http#0.1.0",
            "path+file:///repo/crates/mesa-core#0.1.0",
            "path+file:///repo/crates/mesa-store-sqlite#0.1.0"
          ],
          "version": 1
        }"#,
    )
    .unwrap();

    let report = check(&metadata).unwrap();
    assert_eq!(report.packages, 3);
    assert_eq!(report.edges, 3);
    assert_eq!(report.violations.len(), 1, "{:#?}", report.violations);
    let violation = &report.violations[0];
    assert_eq!(violation.package, "mesa-http");
    assert_eq!(violation.dependency.as_deref(), Some("mesa-store-sqlite"));
    let shown = violation.to_string();
    assert!(
        shown.starts_with("mesa-http -> mesa-store-sqlite: "),
        "{shown}"
    );
    assert!(
        shown.contains("mesa-http may depend on mesa-core"),
        "{shown}"
    );
}

#[test]
fn upward_arrow_is_reported() {
    let workspace = with(good_workspace(), "mesa-domain", |deps| {
        deps.push(normal("mesa-store"))
    });
    assert_eq!(
        violations(&workspace),
        vec![
            "mesa-domain -> mesa-store: arrow not in the layer table; mesa-domain may depend on \
             no workspace crate (mesa-domain is the bottom layer: pure vocabulary)"
        ]
    );
}

#[test]
fn package_missing_from_the_table_is_reported() {
    let mut workspace = good_workspace();
    workspace.push(("mesa-gizmo", vec![normal("mesa-domain")]));
    let found = violations(&workspace);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("mesa-gizmo: "), "{}", found[0]);
    assert!(
        found[0].contains("add it to the layer table"),
        "{}",
        found[0]
    );
}

#[test]
fn test_support_as_a_normal_dependency_is_reported() {
    let workspace = with(good_workspace(), "mesa-http", |deps| {
        deps.push(normal("mesa-test-support"))
    });
    let found = violations(&workspace);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("mesa-http -> mesa-test-support: "),
        "{}",
        found[0]
    );
    assert!(
        found[0].contains("must never be a normal dependency"),
        "{}",
        found[0]
    );
}

#[test]
fn testkit_is_a_dev_only_leaf_that_may_serve_http() {
    let mut workspace = good_workspace();
    workspace.push((
        "mesa-testkit",
        vec![external("axum"), external("tokio"), external("thiserror")],
    ));
    let workspace = with(workspace, "mesa-core", |deps| {
        deps.push(dev("mesa-testkit"))
    });
    assert_eq!(violations(&workspace), Vec::<String>::new());

    let as_normal = with(workspace.clone(), "mesa-core", |deps| {
        deps.push(normal("mesa-testkit"))
    });
    let found = violations(&as_normal);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("mesa-core -> mesa-testkit: ")
            && found[0].contains("must never be a normal dependency"),
        "{}",
        found[0]
    );

    let reaching_up = with(workspace, "mesa-testkit", |deps| {
        deps.push(normal("mesa-domain"));
        deps.push(external("anyhow"));
    });
    let found = violations(&reaching_up);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("mesa-testkit -> mesa-domain: ")
            && found[0].contains("no workspace crate"),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with("mesa-testkit -> anyhow: "),
        "{}",
        found[1]
    );
}

#[test]
fn dev_and_build_dependencies_are_not_layer_checked() {
    let workspace = with(good_workspace(), "mesa-domain", |deps| {
        deps.push(dev("mesa-core"));
        deps.push(dependency("mesa-store", Some("build"), true));
        deps.push(external_dev("sqlx"));
    });
    assert_eq!(violations(&workspace), Vec::<String>::new());
}

#[test]
fn external_crate_outside_its_owners_is_reported() {
    let workspace = with(good_workspace(), "mesa-core", |deps| {
        deps.push(external("sqlx"));
        deps.push(external("axum"));
        deps.push(external("anyhow"));
    });
    let found = violations(&workspace);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("mesa-core -> sqlx: ") && v.contains("SQL"))
    );
    assert!(found.iter().any(|v| v.starts_with("mesa-core -> axum: ")));
    assert!(found.iter().any(|v| v.starts_with("mesa-core -> anyhow: ")));
}

#[test]
fn tokio_in_a_pure_crate_is_reported() {
    let workspace = with(good_workspace(), "mesa-workflow", |deps| {
        deps.push(external("tokio"))
    });
    assert_eq!(
        violations(&workspace),
        vec![
            "mesa-workflow -> tokio: external crate tokio is forbidden in mesa-domain, \
             mesa-workflow (mesa-domain and mesa-workflow do no IO and are not async)"
        ]
    );
}

#[test]
fn axum_as_a_normal_dependency_of_mesa_tests_is_reported() {
    let workspace = with(good_workspace(), "mesa-tests", |deps| {
        deps.push(external("axum"))
    });
    let found = violations(&workspace);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].starts_with("mesa-tests -> axum: "), "{}", found[0]);
}

#[test]
fn non_members_are_ignored() {
    let mut metadata = metadata(&good_workspace());
    metadata["packages"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "outsider", "id": "registry+x#outsider@1.0.0", "dependencies": [] }));
    let report = check(&metadata).unwrap();
    assert_eq!(report.packages, 10);
    assert_eq!(report.violations, vec![]);
}

#[test]
fn malformed_metadata_is_an_error() {
    assert!(check(&json!({ "packages": [] })).is_err());
    assert!(check(&json!({ "workspace_members": [] })).is_err());
}

#[test]
fn layer_table_is_consistent() {
    let names: BTreeSet<&str> = LAYERS.iter().map(|l| l.package).collect();
    assert_eq!(names.len(), LAYERS.len(), "duplicate package in LAYERS");

    let mut graph: BTreeMap<&str, &[&str]> = BTreeMap::new();
    for layer in LAYERS {
        if let Allowed::Only(allowed) = layer.allowed {
            for target in allowed {
                assert!(
                    names.contains(target),
                    "{} -> {target}: unknown package",
                    layer.package
                );
                assert_ne!(
                    *target, layer.package,
                    "{} depends on itself",
                    layer.package
                );
            }
            graph.insert(layer.package, allowed);
        }
    }
    // The allowed arrows form a DAG: repeatedly remove packages with no remaining arrows.
    let mut remaining = graph.clone();
    while !remaining.is_empty() {
        let leaves: Vec<&str> = remaining
            .iter()
            .filter(|(_, targets)| targets.iter().all(|t| !remaining.contains_key(t)))
            .map(|(name, _)| *name)
            .collect();
        assert!(!leaves.is_empty(), "cycle among {:?}", remaining.keys());
        for leaf in leaves {
            remaining.remove(leaf);
        }
    }

    for rule in EXTERNAL {
        let (Scope::OnlyIn(packages) | Scope::NotIn(packages)) = rule.scope;
        for package in packages {
            assert!(
                names.contains(package),
                "{}: unknown package {package}",
                rule.krate
            );
        }
    }
}

#[test]
fn real_workspace_follows_the_layer_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let report = check(&cargo_metadata(root).unwrap()).unwrap();
    let found: Vec<String> = report.violations.iter().map(Violation::to_string).collect();
    assert!(
        found.is_empty(),
        "check-layers violations:\n{}",
        found.join("\n")
    );
    assert!(report.packages >= 2, "{report:?}");
}
