//! The real Codex CLI against the fake server (Responses API).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesa_testkit::{FakeModelServer, Turn, Usage};
use serde_json::Value;

fn codex_binary() -> Option<PathBuf> {
    std::env::var_os("MESA_CODEX_BIN").map(PathBuf::from)
}

async fn run_codex(binary: &Path, server: &FakeModelServer, workdir: &Path, prompt: &str) -> (Option<i32>, Vec<Value>, String) {
    let home = tempfile::tempdir().unwrap();
    let codex_home = home.path().join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(codex_home.join("config.toml"), server.codex_config_toml("gpt-5-codex")).unwrap();
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["exec", "--json", "--sandbox", "workspace-write", "--skip-git-repo-check", prompt])
        .current_dir(workdir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("CODEX_HOME", &codex_home)
        .env("MESA_FAKE_MODEL_KEY", "test")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("codex finished within 120 s")
        .expect("codex started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let events = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    (output.status.code(), events, String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn codex_probe() {
    let Some(binary) = codex_binary() else { return; };
    let server = FakeModelServer::start([Turn::text("hello from fake").with_usage(Usage::new(100, 20))]).await.unwrap();
    let workdir = tempfile::tempdir().unwrap();
    let (code, events, stderr) = run_codex(&binary, &server, workdir.path(), "say hi").await;
    eprintln!("code {code:?}\nstderr {stderr}\nevents {events:#?}");
    for r in server.requests() {
        eprintln!("{} {} {:?} tools={:?} body_keys={:?}", r.method, r.path, r.outcome, r.tool_names(), r.body.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()));
        eprintln!("tool0 {}", r.body["tools"][0]);
        eprintln!("model {:?} reasoning {} include {}", r.model(), r.body["reasoning"], r.body["include"]);
    }
    panic!("probe");
}
