//! Outgoing webhooks survive a restart of the real binary (issue 7, SPEC §11.2): a receiver
//! that is down (503) for the first three attempts gets the event on the fourth, with a valid
//! signature, although `mesa serve` was stopped after the first attempt and started again on
//! the same database.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "mesa_brd_hooks_test_token_0123456789abcdef0123";
const SECRET: &str = "receiver-secret";

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

fn start(dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mesa"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir)
        .env("RUST_LOG", "warn")
        .env("MESA_BOARD_TOKEN", TOKEN)
        .args(["serve", "--port", "0", "--db", "mesa.db"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep draining what the server prints later (a closed pipe must not bother it).
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, port }
}

impl Server {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} /api/v1{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {TOKEN}\r\n\
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

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    /// SIGTERM, and a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "mesa exited with {status}");
    }
}

/// One request the receiver got: lower-case headers, body, and the status it answered.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answered: u16,
}

/// A receiver on 127.0.0.1 answering from `script`, then 200.
fn receiver(script: &[u16]) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(
        script.iter().copied().collect::<VecDeque<u16>>(),
    ));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = script.lock().unwrap().pop_front().unwrap_or(200);
            if let Some(request) = serve_one(stream, answer) {
                seen.lock().unwrap().push(request);
            }
        }
    });
    (url, got)
}

fn serve_one(stream: TcpStream, answer: u16) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).ok()?; // request line
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {answer} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    Some(Received {
        headers,
        body,
        answered: answer,
    })
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_receiver_down_three_times_gets_the_event_on_the_fourth_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = receiver(&[503, 503, 503]);
    let server = start(dir.path());
    server.ok(
        "PATCH",
        "/settings",
        Some(json!({"feature_webhooks_out": true, "outbox_retry_base_ms": "200"})),
    );
    let hook = server.ok(
        "POST",
        "/outgoing-webhooks",
        Some(json!({"url": url, "secret": SECRET, "events": ["issue_created"]})),
    );
    let issue = server.ok(
        "POST",
        "/issues",
        Some(json!({"title": "Tell the receiver"})),
    );
    let key = issue["key"].as_str().unwrap().to_owned();
    let log = format!(
        "/outgoing-webhooks/{}/deliveries",
        hook["id"].as_str().unwrap()
    );
    // Stopped once the first (failed) attempt is recorded.
    wait_for("the first attempt", || {
        server.ok("GET", &log, None)["items"][0]["attempts"].as_u64() >= Some(1)
    });
    server.stop();
    assert!(
        got.lock().unwrap().len() < 4,
        "delivered before the restart"
    );

    let server = start(dir.path());
    wait_for("the delivery", || {
        server.ok("GET", &log, None)["items"][0]["status"] == "delivered"
    });
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        vec![503, 503, 503, 200]
    );
    let delivery = &got[0].headers["x-mesa-delivery"];
    assert!(
        got.iter()
            .all(|r| &r.headers["x-mesa-delivery"] == delivery)
    );
    let last = &got[3];
    let signature = &last.headers["x-mesa-signature-256"];
    assert!(mesa_http::integrations::incoming::verify(
        SECRET.as_bytes(),
        &last.body,
        signature
    ));
    let envelope: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(envelope["event"], "issue_created");
    assert_eq!(envelope["data"]["key"], key.as_str());
    let entry = server.ok("GET", &format!("/outbox/{delivery}"), None);
    assert_eq!(entry["attempts"], 4);
    server.stop();
}
