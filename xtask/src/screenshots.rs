//! `cargo xtask screenshots`: PNG screenshots of every dashboard page at 1280 px and 390 px
//! widths, under `target/screenshots/<page>-<width>.png` (issue 5).
//!
//! All the browser code lives in the `mesa` package's browser tests
//! (`bin/mesa/tests/browser/screenshots.rs`): this command runs that ignored test, which builds
//! the debug binary, starts `mesa serve` on a fresh database with a little data, signs a
//! headless Chromium in and saves the pages. Pages that do not exist yet are skipped with a
//! notice. Needs Debian's `chromium` and `chromium-driver`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let dir = root.join("target").join("screenshots");
    // Start clean, so a page that was removed leaves no stale picture behind.
    if dir.is_dir() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(&path)
                    .with_context(|| format!("remove {}", path.display()))?;
            }
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    println!(
        "screenshots: running the browser test `screenshots` (cargo test -p mesa --test browser)"
    );
    let status = Command::new("cargo")
        .args([
            "test",
            "--package",
            "mesa",
            "--test",
            "browser",
            "--",
            "--ignored",
            "--exact",
            "screenshots::screenshots",
            "--nocapture",
        ])
        .env("MESA_SCREENSHOTS_DIR", &dir)
        .current_dir(root)
        .status()
        .context("could not run cargo test")?;
    if !status.success() {
        bail!("the screenshots test failed ({status})");
    }
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no screenshot was written to {}", dir.display());
    }
    println!("screenshots: {} files in {}", files.len(), dir.display());
    Ok(())
}
