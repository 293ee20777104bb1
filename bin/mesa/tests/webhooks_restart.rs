//! Outgoing webhooks survive a restart of the real binary (issue 7, SPEC §11.2): a receiver
//! that is down (503) for the first three attempts gets the event on the fourth, with a valid
//! signature, although `mesa serve` was stopped after the first attempt and started again on
//! the same database.

#![expect(clippy::disallowed_methods, reason = "these tests run the real binary")]

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod support;
use support::start;

const TOKEN: &str = "mesa_brd_hooks_test_token_0123456789abcdef0123";
const SECRET: &str = "receiver-secret";

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
    let server = start(dir.path(), TOKEN);
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

    let server = start(dir.path(), TOKEN);
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
