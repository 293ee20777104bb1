//! The `mesa` client commands (SPEC §9.6) against a real `mesa serve`: a board token from
//! `mesa token create`, an agent key from the API, and every client command in text and JSON.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mesa(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesa"));
    cmd.current_dir(dir)
        .env_remove("DB")
        .env_remove("PORT")
        .env_remove("TEMPLATE")
        .env_remove("MESA_DATA_DIR")
        .env_remove("MESA_API_URL")
        .env_remove("MESA_API_KEY")
        .env_remove("MESA_BOARD_TOKEN")
        .env("PATH", "/usr/bin:/bin")
        .env("RUST_LOG", "warn");
    cmd
}

fn start(dir: &Path, db: &str) -> Server {
    let mut child = mesa(dir)
        .args(["serve", "--port", "0", "--db", db])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, port }
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A raw `POST` with a JSON body; the status and the body.
    fn post(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// A client: `mesa` with `MESA_API_URL` and `MESA_API_KEY` set.
struct Client<'a> {
    dir: &'a Path,
    url: String,
    key: String,
}

impl Client<'_> {
    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = mesa(self.dir)
            .env("MESA_API_URL", &self.url)
            .env("MESA_API_KEY", &self.key)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stdin(args, None)
    }

    fn ok_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with_stdin(args, stdin);
        assert!(
            out.status.success(),
            "mesa {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command with `--json` that must succeed; its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// Runs a command that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run_with_stdin(args, None);
        assert!(!out.status.success(), "mesa {args:?} should fail");
        assert!(out.stdout.is_empty(), "errors go to stderr");
        String::from_utf8(out.stderr).unwrap()
    }
}

#[test]
fn the_client_commands_drive_an_issue_from_creation_to_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesa.db").display().to_string();
    let server = start(dir.path(), &db);
    let out = mesa(dir.path())
        .args(["token", "create", "--name", "ci", "--db", &db])
        .output()
        .unwrap();
    assert!(out.status.success());
    let board_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let board = Client {
        dir: dir.path(),
        url: server.url(),
        key: board_token.clone(),
    };

    // The board creates and reads an issue.
    let text = board.ok(&[
        "issue",
        "create",
        "Add a health endpoint",
        "--assignee",
        "founding-engineer",
        "--priority",
        "2",
        "--description",
        "GET /health answers 200.",
    ]);
    assert_eq!(
        text.trim(),
        "Created MESA-1: Add a health endpoint (todo, assigned to founding-engineer)"
    );
    let text = board.ok(&["issue", "show", "MESA-1"]);
    assert!(
        text.starts_with("MESA-1: Add a health endpoint\n"),
        "{text}"
    );
    assert!(text.contains("status: todo"), "{text}");
    assert!(text.contains("assignee: founding-engineer"), "{text}");
    assert!(text.contains("GET /health answers 200."), "{text}");
    let text = board.ok(&["issue", "comment", "MESA-1", "Please add a test."]);
    assert_eq!(text.trim(), "Commented on MESA-1 (comment).");

    // The agent, with a key the board made through the API.
    let (status, key) = server.post(
        "/api/v1/agents/founding-engineer/keys",
        &board_token,
        r#"{"name": "laptop"}"#,
    );
    assert_eq!(status, 201, "{key}");
    let agent = Client {
        dir: dir.path(),
        url: format!("{}/", server.url()),
        key: key["key"].as_str().unwrap().to_owned(),
    };
    let inbox = agent.ok(&["inbox"]);
    assert!(inbox.contains("MESA-1"), "{inbox}");
    assert!(inbox.contains("Add a health endpoint"), "{inbox}");
    let inbox = agent.json(&["inbox"]);
    assert_eq!(inbox["items"][0]["key"], "MESA-1");
    assert_eq!(inbox["next_cursor"], Value::Null);

    let text = agent.ok(&["issue", "checkout", "MESA-1"]);
    assert_eq!(
        text.trim(),
        "Checked out MESA-1: Add a health endpoint (in_progress)"
    );
    let text = agent.ok_with_stdin(
        &["issue", "comment", "MESA-1", "-", "--evidence"],
        Some("cargo test: 3 passed\n"),
    );
    assert_eq!(text.trim(), "Commented on MESA-1 (evidence).");
    let text = agent.ok(&["issue", "submit", "MESA-1", "Added /health with a test."]);
    assert_eq!(text.trim(), "Submitted MESA-1: now in_review.");

    // The agent may not review its own work; the API's error is printed as code and message.
    let err = agent.fails(&["issue", "review", "MESA-1", "approve"]);
    assert!(err.starts_with("error: forbidden: "), "{err}");
    let text = board.ok(&["issue", "review", "MESA-1", "approve", "Looks good."]);
    assert_eq!(text.trim(), "Reviewed MESA-1 (approve): now done.");

    let shown = board.json(&["issue", "show", "MESA-1"]);
    assert_eq!(shown["issue"]["status"], "done");
    let bodies: Vec<&str> = shown["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert!(bodies.contains(&"Please add a test."), "{bodies:?}");
    assert!(bodies.contains(&"cargo test: 3 passed\n"), "{bodies:?}");

    // Block: the assignee says why.
    let created = board.json(&[
        "issue",
        "create",
        "Rotate the signing keys",
        "--assignee",
        "founding-engineer",
    ]);
    let key2 = created["key"].as_str().unwrap().to_owned();
    let text = agent.ok(&["issue", "block", &key2, "Waiting for the new HSM."]);
    assert_eq!(text.trim(), format!("Blocked {key2}."));
    assert_eq!(
        board.json(&["issue", "show", &key2])["issue"]["status"],
        "blocked"
    );

    // Errors: unknown issue, a conflict, bad input.
    let err = board.fails(&["issue", "show", "MESA-99"]);
    assert!(err.starts_with("error: not_found: "), "{err}");
    let err = board.fails(&["issue", "create", " "]);
    assert!(err.starts_with("error: validation_failed: "), "{err}");
    let other = board.json(&[
        "issue",
        "create",
        "Someone else's",
        "--assignee",
        "designer",
    ]);
    let err = agent.fails(&["issue", "checkout", other["key"].as_str().unwrap()]);
    assert!(err.starts_with("error: checkout_conflict: "), "{err}");

    // Reflections and usage.
    let text = agent.ok(&[
        "reflect",
        "Write the test first next time.",
        "--outcome",
        "succeeded",
    ]);
    assert_eq!(text.trim(), "Reflection recorded (succeeded).");
    let text = agent.ok(&["usage"]);
    assert!(
        text.starts_with("Usage of agent founding-engineer:"),
        "{text}"
    );
    assert!(text.contains("today"), "{text}");
    let usage = board.json(&["usage"]);
    assert_eq!(usage["scope"], "org");
    assert!(usage["total"]["tokens"].is_i64(), "{usage}");
}

#[test]
fn wiki_commands_put_get_and_search_and_bad_configuration_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mesa.db").display().to_string();
    let server = start(dir.path(), &db);
    let out = mesa(dir.path())
        .args(["token", "create", "--name", "ci", "--db", &db])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let board = Client {
        dir: dir.path(),
        url: server.url(),
        key: token.clone(),
    };

    let text = board.ok_with_stdin(
        &["wiki", "put", "deploy-guide", "--title", "Deploy guide"],
        Some("Run `mesa backup` before every deploy.\n"),
    );
    assert_eq!(text.trim(), "Created wiki page deploy-guide (version 1).");
    let file = dir.path().join("guide.md");
    std::fs::write(&file, "Run `mesa backup`, then restart the service.\n").unwrap();
    let text = board.ok(&[
        "wiki",
        "put",
        "deploy-guide",
        "--file",
        &file.display().to_string(),
    ]);
    assert_eq!(text.trim(), "Updated wiki page deploy-guide (version 2).");
    let text = board.ok(&["wiki", "get", "deploy-guide"]);
    assert_eq!(
        text,
        "# Deploy guide\n\nRun `mesa backup`, then restart the service.\n"
    );
    let page = board.json(&["wiki", "put", "runbook", "--content", "Page the on-call."]);
    assert_eq!(page["slug"], "runbook");
    assert_eq!(page["title"], "runbook");
    assert_eq!(page["version"], 1);

    let text = board.ok(&["wiki", "search", "restart"]);
    assert!(text.starts_with("deploy-guide  Deploy guide\n"), "{text}");
    assert!(!text.contains("<mark>"), "snippets are plain text: {text}");
    let hits = board.json(&["wiki", "search", "on-call", "--limit", "5"]);
    assert_eq!(hits["items"][0]["slug"], "runbook");
    let text = board.ok(&["wiki", "search", "kubernetes"]);
    assert_eq!(text.trim(), "No wiki page matches.");
    let err = board.fails(&["wiki", "get", "nope"]);
    assert!(err.starts_with("error: not_found: "), "{err}");

    // A wrong key, a missing key, an unreachable server.
    let bad = Client {
        dir: dir.path(),
        url: server.url(),
        key: "mesa_brd_nope".to_owned(),
    };
    let err = bad.fails(&["inbox"]);
    assert!(err.starts_with("error: invalid_token: "), "{err}");
    let out = mesa(dir.path())
        .env("MESA_API_URL", server.url())
        .arg("inbox")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MESA_API_KEY is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);
    let err = board.fails(&["inbox"]);
    assert!(
        err.starts_with("error: cannot reach http://127.0.0.1:"),
        "{err}"
    );
}
