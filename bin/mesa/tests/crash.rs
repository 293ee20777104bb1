//! Crash recovery (SPEC §6.6) against the real binary: SIGKILL `mesa serve` while a `command`
//! run (which started a grandchild `sleep`) is running; on restart the whole process group is
//! gone, the run is `failed` with `server_restart`, its reservation released, and its wake-up
//! re-queued.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::{Server, start};

const TOKEN: &str = "mesa_brd_crash_test_token_0123456789abcdef0123";

/// The runs of `issue`, newest first.
fn runs(server: &Server, issue: &str) -> Vec<Value> {
    server.ok("GET", &format!("/runs?issue={issue}"), None)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kill -0 -- -pgid`: is any process of the group alive?
fn group_alive(pgid: &str) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_killed_server_kills_the_orphaned_group_fails_the_run_and_requeues_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // First run: record its process group, start a grandchild, and hang. After the restart
    // (marker present) the re-queued run succeeds at once.
    let script = format!(
        "if [ -f {d}/restarted ]; then echo recovered; exit 0; fi; \
         echo $$ > {d}/pgid; sleep 1000 & echo $! > {d}/grandchild; wait"
    );
    let server = start(dir.path(), TOKEN);
    server.ok(
        "PATCH",
        "/agents/founding-engineer",
        Some(json!({"runner": "command", "command": ["sh", "-c", script], "timeout_sec": 600})),
    );
    let issue = server.ok(
        "POST",
        "/issues",
        Some(json!({"title": "Long job", "assignee_slug": "founding-engineer"})),
    );
    let key = issue["key"].as_str().unwrap().to_owned();
    wait_for("the run to start its grandchild", || {
        dir.path().join("grandchild").exists()
            && runs(&server, &key).iter().any(|r| r["status"] == "running")
    });
    let pgid = std::fs::read_to_string(dir.path().join("pgid")).unwrap();
    let pgid = pgid.trim().to_owned();
    let run_id = runs(&server, &key)[0]["id"].as_str().unwrap().to_owned();

    // SIGKILL: the server gets no chance to stop its runs.
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    assert!(group_alive(&pgid), "the orphaned group outlives the server");

    std::fs::write(dir.path().join("restarted"), "").unwrap();
    let server = start(dir.path(), TOKEN);
    wait_for("the orphaned group to be killed", || !group_alive(&pgid));
    let run = server.ok("GET", &format!("/runs/{run_id}"), None);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["failure_reason"], "server_restart", "{run}");
    assert_eq!(
        run["cost_reserved_usd"].as_f64(),
        Some(0.0),
        "reservation released"
    );
    wait_for("the re-queued wake-up to run", || {
        runs(&server, &key).iter().any(|r| {
            r["triggers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "recovery"))
                && r["status"] == "succeeded"
        })
    });
}

#[test]
fn sigterm_stops_runs_gracefully_records_them_cancelled_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let script = format!(
        "if [ -f {d}/restarted ]; then exit 0; fi; \
         echo $$ > {d}/pgid; sleep 1000 & echo $! > {d}/grandchild; wait"
    );
    let mut server = start(dir.path(), TOKEN);
    server.ok(
        "PATCH",
        "/agents/founding-engineer",
        Some(json!({"runner": "command", "command": ["sh", "-c", script], "timeout_sec": 600})),
    );
    let issue = server.ok(
        "POST",
        "/issues",
        Some(json!({"title": "Long job", "assignee_slug": "founding-engineer"})),
    );
    let key = issue["key"].as_str().unwrap().to_owned();
    wait_for("the run to start its grandchild", || {
        dir.path().join("grandchild").exists()
            && runs(&server, &key).iter().any(|r| r["status"] == "running")
    });
    let pgid = std::fs::read_to_string(dir.path().join("pgid")).unwrap();
    let pgid = pgid.trim().to_owned();
    let run_id = runs(&server, &key)[0]["id"].as_str().unwrap().to_owned();

    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "a graceful shutdown exits 0");
    drop(server);
    // (Killed processes may linger as zombies until init reaps them.)
    wait_for("the run's process group to be gone", || !group_alive(&pgid));

    std::fs::write(dir.path().join("restarted"), "").unwrap();
    let server = start(dir.path(), TOKEN);
    let run = server.ok("GET", &format!("/runs/{run_id}"), None);
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["failure_reason"], "shutdown", "{run}");
    assert_eq!(run["cost_reserved_usd"].as_f64(), Some(0.0));
    wait_for("the interrupted work to resume", || {
        runs(&server, &key).iter().any(|r| {
            r["triggers"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "recovery"))
                && r["status"] == "succeeded"
        })
    });
}
