//! `mesa demo` against the real binary (SPEC §7.2 `simulated`, §12): a simulated company of six
//! agents takes 20 board issues to `done` through the real API, each sub-issue reviewed by
//! someone other than its assignee, with at least one round of requested changes, commits in
//! per-issue branches of the demo's git repository, and an intact activity chain.
//!
//! The demo prints its board token; the test uses it on the live server, then (after the demo
//! exits) on a `mesa serve` of the same data directory, to read what happened.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A failure guard only: the demo normally finishes in about half of this.
const DEMO_LIMIT: Duration = Duration::from_secs(120);

/// An HTTP/1.1 call with a bearer token; returns the status and the JSON body.
fn call(port: u16, token: &str, method: &str, path: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} /api/v1{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get(port: u16, token: &str, path: &str) -> Value {
    let (status, v) = call(port, token, "GET", path);
    assert_eq!(status, 200, "GET {path}: {v}");
    v
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

/// Every item of a list endpoint, following cursors.
fn all(port: u16, token: &str, path: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            None => get(port, token, &format!("{path}{sep}limit=500")),
            Some(c) => get(port, token, &format!("{path}{sep}limit=500&cursor={c}")),
        };
        out.extend(items(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn mesa(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesa"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("RUST_LOG", "warn");
    cmd
}

/// Kills the child if the test fails half-way.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port in a `... running at http://127.0.0.1:PORT/ ...` line.
fn port_in(line: &str) -> Option<u16> {
    line.split("http://127.0.0.1:")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Runs the demo to its end; returns its stdout lines, the board token it printed and what
/// the live API said about the agents while it ran.
fn run_demo(dir: &Path) -> (Vec<String>, String, Vec<Value>) {
    let mut child = mesa(dir)
        .args(["demo", "--issues", "20", "--until-done", "--port", "0"])
        .args(["--data-dir", "data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut guard = Guard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut lines = Vec::new();
    let (mut port, mut token, mut agents) = (None, None, Vec::new());
    loop {
        let left = DEMO_LIMIT.saturating_sub(started.elapsed());
        assert!(!left.is_zero(), "the demo did not finish: {lines:#?}");
        match rx.recv_timeout(left) {
            Ok(line) => {
                port = port.or_else(|| port_in(&line));
                if let Some(t) = line.strip_prefix("Board token: ") {
                    token = Some(t.trim().to_owned());
                }
                if agents.is_empty()
                    && let (Some(p), Some(t)) = (port, &token)
                {
                    agents = items(&get(p, t, "/agents"));
                }
                lines.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the demo did not finish: {lines:#?}"),
        }
    }
    let status = guard.0.wait().unwrap();
    assert!(status.success(), "the demo failed ({status}): {lines:#?}");
    (
        lines,
        token.expect("the demo prints its board token"),
        agents,
    )
}

/// `mesa serve` on the demo's data directory, to read the outcome through the API.
fn serve(dir: &Path) -> (Guard, u16) {
    let mut child = mesa(dir)
        .args(["serve", "--port", "0", "--data-dir", "data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = port_in(&line).unwrap_or_else(|| panic!("no address in {line:?}"));
    (Guard(child), port)
}

#[test]
fn the_demo_takes_twenty_issues_to_done_through_the_api() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let started = Instant::now();
    let (lines, token, agents) = run_demo(dir);
    let wall = started.elapsed();
    println!(
        "mesa demo --issues 20 --until-done: {:.1} s wall time",
        wall.as_secs_f64()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("All seeded issues are done")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("hash chain intact")),
        "{lines:#?}"
    );
    assert_eq!(agents.len(), 6, "the live API answered the printed token");
    assert!(
        agents.iter().all(|a| a["runner"] == "simulated"),
        "{agents:#?}"
    );

    let (_server, port) = serve(dir);
    let issues = all(port, &token, "/issues");
    let seeded: Vec<&Value> = issues
        .iter()
        .filter(|i| i["parent_key"].is_null())
        .collect();
    let subs: Vec<&Value> = issues
        .iter()
        .filter(|i| !i["parent_key"].is_null())
        .collect();
    assert_eq!(seeded.len(), 20);
    for issue in &issues {
        assert_eq!(issue["status"], "done", "{issue}");
    }
    let mut per_parent: HashMap<String, usize> = HashMap::new();
    for sub in &subs {
        *per_parent
            .entry(sub["parent_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_parent.len(), 20, "every seeded issue was delegated");
    assert!(
        per_parent.values().all(|n| (2..=3).contains(n)),
        "{per_parent:?}"
    );

    let slug_of: HashMap<String, String> = agents
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["slug"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut change_rounds = 0;
    for sub in &subs {
        let key = sub["key"].as_str().unwrap();
        let assignee = sub["assignee_id"].as_str().unwrap();
        let detail = get(port, &token, &format!("/issues/{key}"));
        let comments = detail["comments"].as_array().unwrap();
        let reviews: Vec<&Value> = comments.iter().filter(|c| c["kind"] == "review").collect();
        let approved_by_other = reviews.iter().any(|c| {
            c["body"].as_str().unwrap().starts_with("Approved")
                && !c["author_agent_id"].is_null()
                && c["author_agent_id"] != assignee
        });
        assert!(
            approved_by_other,
            "{key} was approved by another agent: {comments:#?}"
        );
        assert!(
            comments
                .iter()
                .any(|c| c["kind"] == "evidence" && c["author_agent_id"] == assignee),
            "{key} has its assignee's evidence"
        );
        let asked = reviews
            .iter()
            .filter(|c| c["body"].as_str().unwrap().starts_with("Changes requested"))
            .count();
        assert!(asked <= 1, "{key}: changes requested at most once");
        change_rounds += asked;
        let activity = all(port, &token, &format!("/activity?entity=issue:{key}"));
        let assignee_slug = &slug_of[assignee];
        assert!(
            activity
                .iter()
                .any(|a| a["action"] == "issue.approve" && a["actor"] != assignee_slug.as_str()),
            "{key}: the approval is in the activity log by someone else: {activity:#?}"
        );
    }
    println!("{} sub-issues, {change_rounds} change requests", subs.len());
    assert!(
        change_rounds >= 1,
        "at least one round of requested changes"
    );

    for approval in all(port, &token, "/approvals") {
        assert_eq!(approval["status"], "approved", "{approval}");
        assert_eq!(approval["decided_by"], "board:demo", "{approval}");
    }
    let failed = all(port, &token, "/runs?status=failed,timed_out");
    assert!(failed.is_empty(), "no run failed: {failed:#?}");
    let runs = all(port, &token, "/runs");
    assert!(
        runs.iter().all(|r| r["runner"] == "simulated"),
        "only simulated runs"
    );
    drop(_server);

    let log = mesa(dir)
        .args(["audit", "verify", "--data-dir", "data"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&log.stdout);
    assert!(
        log.status.success() && said.contains("hash chain intact"),
        "{said}"
    );

    let commits = mesa_git(
        &dir.join("data/workspace"),
        &["log", "--all", "--format=%an"],
    );
    let by_sim = commits.lines().filter(|a| *a == "Mesa Simulated").count();
    assert!(
        by_sim >= subs.len(),
        "{by_sim} simulated commits for {} sub-issues",
        subs.len()
    );
    let branches = mesa_git(&dir.join("data/workspace"), &["branch", "--list", "mesa/*"]);
    assert!(
        branches.lines().count() >= subs.len(),
        "a branch per sub-issue: {branches}"
    );
}

fn mesa_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
