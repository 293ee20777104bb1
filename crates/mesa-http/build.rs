//! Embeds `templates/` into the binary: every template (`*.html`) as text and every static file
//! under `templates/static/` as bytes, listed in `$OUT_DIR/embedded.rs`. A change to any file
//! there rebuilds the crate; template syntax is checked by the crate's tests, which render
//! every page.

#![allow(
    clippy::print_stdout,
    reason = "cargo reads a build script's instructions from stdout"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "a build script learns its paths from the environment cargo sets"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../templates");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut code = String::from(
        "/// Templates: (name, source).\npub(crate) const TEMPLATES: &[(&str, &str)] = &[\n",
    );
    let mut assets = String::from(
        "/// Static files: (path under static/, bytes).\npub(crate) const ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for path in &all {
        let rel = path
            .strip_prefix(&root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        let abs = path.canonicalize().expect("a listed file exists");
        if let Some(asset) = rel.strip_prefix("static/") {
            writeln!(assets, "    ({asset:?}, include_bytes!({abs:?})),").expect("string");
        } else if rel.ends_with(".html") {
            writeln!(code, "    ({rel:?}, include_str!({abs:?})),").expect("string");
        }
    }
    code.push_str("];\n");
    assets.push_str("];\n");
    code.push_str(&assets);
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}
