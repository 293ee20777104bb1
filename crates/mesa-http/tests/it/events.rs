//! `GET /api/v1/events` over a real listener: live events, `Last-Event-ID` replay, `resync`,
//! a stalled client that slows nobody, and who may subscribe. The client is raw HTTP/1.1 over
//! TCP (with a chunked-body decoder), so what is tested is exactly what goes over the wire.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mesa_core::domain::entity::Comment;
use mesa_core::domain::{CommentId, CommentKind, DomainEvent, IssueKey, Timestamp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::TestApp;

/// A server on a real port 0 listener, stopped when dropped.
pub(crate) struct Server {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    pub(crate) async fn start(app: &TestApp) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = mesa_http::AppState::new(app.mesa.clone());
        tokio::spawn(async move {
            mesa_http::serve(listener, state, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits a response into status, lower-cased head and the rest.
fn split_head(raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, raw[end + 4..].to_vec()))
}

/// Moves complete chunks of a chunked body from `raw` to `out`.
fn dechunk(raw: &mut Vec<u8>, out: &mut Vec<u8>) {
    loop {
        let Some(line_end) = find(raw, b"\r\n") else {
            return;
        };
        let size_text = String::from_utf8_lossy(&raw[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        if raw.len() < line_end + 2 + size + 2 {
            return;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw.drain(..line_end + 2 + size + 2);
    }
}

/// One request with `Connection: close`; returns the status and the body text.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(ToString::to_string).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let (status, head, mut rest) = split_head(&raw).expect("a response head");
    let body = if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        dechunk(&mut rest, &mut out);
        out
    } else {
        rest
    };
    (status, String::from_utf8(body).unwrap())
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) name: String,
    pub(crate) id: Option<u64>,
    pub(crate) data: Value,
}

/// A subscriber to `/api/v1/events`.
pub(crate) struct SseClient {
    stream: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
}

/// Sends the subscription request on `stream`.
async fn send_subscribe(stream: &mut TcpStream, token: Option<&str>, last_id: Option<&str>) {
    let mut req =
        "GET /api/v1/events HTTP/1.1\r\nHost: mesa\r\nAccept: text/event-stream\r\n".to_owned();
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(id) = last_id {
        req.push_str(&format!("Last-Event-ID: {id}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
}

impl SseClient {
    /// Subscribes; `Err((status, body))` when the server refuses.
    pub(crate) async fn connect(
        addr: SocketAddr,
        token: Option<&str>,
        last_id: Option<&str>,
    ) -> Result<SseClient, (u16, String)> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        send_subscribe(&mut stream, token, last_id).await;
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let (status, head, rest) = loop {
            if let Some(parts) = split_head(&raw) {
                break parts;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("a response head in time")
                .unwrap();
            assert!(n > 0, "connection closed before the head");
            raw.extend_from_slice(&buf[..n]);
        };
        if status != 200 {
            // Error bodies are small and complete with the head or soon after.
            let mut client = SseClient {
                stream,
                raw: rest,
                body: Vec::new(),
            };
            if head.contains("transfer-encoding: chunked") {
                let deadline = Instant::now() + Duration::from_secs(5);
                while !client.raw.ends_with(b"0\r\n\r\n") && Instant::now() < deadline {
                    let _ = client.fill(Duration::from_millis(200)).await;
                }
                let mut raw = std::mem::take(&mut client.raw);
                dechunk(&mut raw, &mut client.body);
            } else {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while client.raw.len() < len {
                    client.fill(Duration::from_secs(5)).await.expect("body");
                }
                client.body = std::mem::take(&mut client.raw);
            }
            return Err((status, String::from_utf8_lossy(&client.body).into_owned()));
        }
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        let mut client = SseClient {
            stream,
            raw: rest,
            body: Vec::new(),
        };
        dechunk(&mut client.raw, &mut client.body);
        Ok(client)
    }

    /// Reads more bytes; `None` on timeout or end of stream.
    async fn fill(&mut self, within: Duration) -> Option<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(within, self.stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        self.raw.extend_from_slice(&buf[..n]);
        dechunk(&mut self.raw, &mut self.body);
        Some(())
    }

    /// The next event (keep-alive comments skipped), or `None` if none comes within `within`.
    pub(crate) async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = find(&self.body, b"\n\n") {
                let block = String::from_utf8(self.body[..end].to_vec()).unwrap();
                self.body.drain(..end + 2);
                let (mut name, mut id, mut data) = (None, None, String::new());
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => name = Some(value.to_owned()),
                        "id" => id = Some(value.parse().expect("numeric id")),
                        "data" => data.push_str(value),
                        _ => {} // comments (keep-alive) and retry
                    }
                }
                if let Some(name) = name {
                    let data = serde_json::from_str(&data).expect("JSON data");
                    return Some(SseEvent { name, id, data });
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.fill(left).await?;
        }
    }

    /// Events until one named `name` (inclusive), within `within`.
    pub(crate) async fn until(&mut self, name: &str, within: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_default();
            let e = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no {name} event in time; saw {seen:?}"));
            let done = e.name == name;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }
}

async fn create_issue(addr: SocketAddr, token: &str, title: &str) -> Value {
    let (status, body) = request(
        addr,
        "POST",
        "/api/v1/issues",
        Some(token),
        Some(&json!({ "title": title })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str(&body).unwrap()
}

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_subscriber_sees_the_created_issue() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let mut sub = SseClient::connect(server.addr, Some(&app.board), None)
        .await
        .unwrap();
    let issue = create_issue(server.addr, &app.board, "Wire the event stream").await;
    let seen = sub.until("issue_created", WAIT).await;
    let event = seen.last().unwrap();
    assert_eq!(event.data["key"], issue["key"]);
    assert_eq!(event.data["title"], "Wire the event stream");
    assert_eq!(event.data["status"], issue["status"]);
    assert_eq!(event.data["id"], issue["id"]);
    assert!(event.id.is_some());

    // An update follows with the issue after it.
    let key = issue["key"].as_str().unwrap();
    let (status, body) = request(
        server.addr,
        "PATCH",
        &format!("/api/v1/issues/{key}"),
        Some(&app.board),
        Some(&json!({ "priority": 3 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let updated = sub.until("issue_updated", WAIT).await;
    let u = updated.last().unwrap();
    assert_eq!(u.data["key"], issue["key"]);
    assert_eq!(u.data["priority"], 3);
    assert_eq!(u.data["previous_status"], Value::Null);
    assert!(u.id > event.id);
}

#[tokio::test]
async fn a_reconnecting_client_gets_exactly_what_it_missed() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let mut first = SseClient::connect(server.addr, Some(&app.board), None)
        .await
        .unwrap();
    create_issue(server.addr, &app.board, "Seen live").await;
    let seen = first.until("issue_created", WAIT).await;
    let last_seen = seen.last().unwrap().id.unwrap();
    drop(first);

    let mut missed_keys = Vec::new();
    for i in 0..3 {
        let issue = create_issue(server.addr, &app.board, &format!("Missed {i}")).await;
        missed_keys.push(issue["key"].as_str().unwrap().to_owned());
    }
    let newest = app.mesa.events().journal().last_id();
    assert!(newest >= last_seen + 3);

    let mut again = SseClient::connect(server.addr, Some(&app.board), Some(&last_seen.to_string()))
        .await
        .unwrap();
    let mut replayed = Vec::new();
    while replayed
        .last()
        .is_none_or(|e: &SseEvent| e.id != Some(newest))
    {
        replayed.push(again.next(WAIT).await.expect("the replay"));
    }
    let ids: Vec<u64> = replayed.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, (last_seen + 1..=newest).collect::<Vec<_>>());
    let created: Vec<&str> = replayed
        .iter()
        .filter(|e| e.name == "issue_created")
        .map(|e| e.data["key"].as_str().unwrap())
        .collect();
    assert_eq!(created, missed_keys);
    assert!(replayed.iter().all(|e| e.name != "resync"));

    // Then live, with no duplicate of the replay.
    let live = create_issue(server.addr, &app.board, "Live again").await;
    let next = again.next(WAIT).await.unwrap();
    assert_eq!(next.id, Some(newest + 1));
    assert_eq!(next.name, "issue_created");
    assert_eq!(next.data["key"], live["key"]);
}

#[tokio::test]
async fn an_id_older_than_the_buffer_or_unknown_gets_resync() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let bus = app.mesa.events();
    bus.publish((0..mesa_core::JOURNAL_CAPACITY + 50).map(|_| DomainEvent::SchedulerPaused));

    // Too old, newer than any id given (another process), not a number.
    for last in ["1", "999999999", "not-a-number"] {
        let newest = bus.journal().last_id();
        let mut sub = SseClient::connect(server.addr, Some(&app.board), Some(last))
            .await
            .unwrap();
        let first = sub.next(WAIT).await.unwrap();
        assert_eq!(first.name, "resync", "Last-Event-ID {last}");
        assert_eq!(first.id, Some(newest));
        assert_eq!(first.data["last_id"], newest);
        bus.publish([DomainEvent::SchedulerResumed]);
        let live = sub.next(WAIT).await.unwrap();
        assert_eq!(live.name, "scheduler_resumed");
        assert_eq!(live.id, Some(newest + 1));
        assert_eq!(live.data, json!({ "paused": false }));
    }

    // The oldest kept id is still replayed.
    let newest = bus.journal().last_id();
    let oldest_kept = newest - mesa_core::JOURNAL_CAPACITY as u64 + 1;
    let mut sub = SseClient::connect(
        server.addr,
        Some(&app.board),
        Some(&(oldest_kept - 1).to_string()),
    )
    .await
    .unwrap();
    let first = sub.next(WAIT).await.unwrap();
    assert_eq!(first.id, Some(oldest_kept));
    assert_ne!(first.name, "resync");
}

/// A comment event with a large body, to fill a stalled client's socket.
fn big_comment(key: &IssueKey, n: u64) -> DomainEvent {
    DomainEvent::CommentCreated(Box::new(Comment {
        id: CommentId::parse(&format!("01900000-0000-7000-8000-{n:012x}")).unwrap(),
        issue_key: key.clone(),
        author_agent_id: None,
        author: "board:test".into(),
        kind: CommentKind::Comment,
        body: "x".repeat(256 * 1024),
        created_at: Timestamp::from_millis(0),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_client_delays_nobody_and_is_told_to_resync() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;

    // A client that subscribes and then reads nothing, with a tiny receive buffer.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    send_subscribe(&mut stalled, Some(&app.board), None).await;
    let mut reader = SseClient::connect(server.addr, Some(&app.board), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Issue creation over HTTP, 8 callers: completes, and the reading subscriber sees each
    // issue promptly.
    const N: usize = 200;
    let started = Instant::now();
    let mut callers = tokio::task::JoinSet::new();
    for c in 0..8 {
        let (addr, token) = (server.addr, app.board.clone());
        callers.spawn(async move {
            for i in 0..N / 8 {
                create_issue(addr, &token, &format!("Stall {c}-{i}")).await;
            }
        });
    }
    let mut created = 0;
    while created < N {
        let e = reader.next(WAIT).await.expect("events keep coming");
        if e.name == "issue_created" {
            created += 1;
        }
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = callers.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("publishing is never blocked by the stalled client");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");

    // Overflow the stalled client: ~10 MB it cannot take, then more events than its buffer.
    let key = IssueKey::parse("MESA-1").unwrap();
    for n in 0..40 {
        app.mesa.events().publish([big_comment(&key, n)]);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..(mesa_core::SUBSCRIBER_BUFFER + 100) {
        app.mesa.events().publish([DomainEvent::SchedulerPaused]);
    }
    // The reading subscriber is still served (it may itself be told to resync after this
    // burst, which is faster than any client).
    let e = reader.next(WAIT).await.expect("the reader still receives");
    assert!(!e.name.is_empty());

    // When the stalled client reads again it finds a `resync`, then live events.
    let mut stalled = SseClient {
        stream: stalled,
        raw: Vec::new(),
        body: Vec::new(),
    };
    let mut head = Vec::new();
    let (status, _, rest) = loop {
        if let Some(parts) = split_head(&head) {
            break parts;
        }
        let mut buf = vec![0u8; 4096];
        let n = stalled.stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
    };
    assert_eq!(status, 200);
    stalled.raw = rest;
    dechunk(&mut stalled.raw, &mut stalled.body);
    let seen = stalled.until("resync", Duration::from_secs(30)).await;
    let resync = seen.last().unwrap();
    app.mesa.events().publish([DomainEvent::SchedulerResumed]);
    let next = stalled.until("scheduler_resumed", WAIT).await;
    assert!(next.last().unwrap().id > resync.id);
}

#[tokio::test]
async fn only_board_tokens_may_subscribe() {
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let Err((status, body)) = SseClient::connect(server.addr, None, None).await else {
        panic!("anonymous subscription accepted");
    };
    assert_eq!(status, 401);
    assert!(body.contains("unauthenticated"), "{body}");
    let Err((status, _)) = SseClient::connect(server.addr, Some("mesa_brd_nope"), None).await
    else {
        panic!("unknown token accepted");
    };
    assert_eq!(status, 401);
    let agent = app.agent_key("ceo").await;
    let Err((status, body)) = SseClient::connect(server.addr, Some(&agent), None).await else {
        panic!("agent subscription accepted");
    };
    assert_eq!(status, 403);
    assert!(body.contains("forbidden"), "{body}");
}

#[tokio::test]
async fn open_streams_do_not_hold_up_shutdown() {
    let app = TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(mesa_http::serve(
        listener,
        mesa_http::AppState::new(app.mesa.clone()),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut sub = SseClient::connect(addr, Some(&app.board), None)
        .await
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(WAIT, serving)
        .await
        .expect("graceful shutdown ends the event streams")
        .unwrap()
        .unwrap();
    assert!(sub.next(Duration::from_secs(1)).await.is_none());
}

/// SPEC §15: 1,000 subscribers each receive an event within 100 ms. Measured here in a debug
/// build on a shared machine, so the bound asserted is looser; the figure is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_subscribers_each_receive_an_event_promptly() {
    const SUBSCRIBERS: usize = 1000;
    let app = TestApp::new().await;
    let server = Server::start(&app).await;
    let mut subs = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        subs.push(
            SseClient::connect(server.addr, Some(&app.board), None)
                .await
                .unwrap(),
        );
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(SUBSCRIBERS + 1));
    for mut sub in subs {
        let (tx, start) = (tx.clone(), std::sync::Arc::clone(&start));
        tokio::spawn(async move {
            start.wait().await;
            let e = sub.next(WAIT).await.expect("an event");
            let _ = tx.send((e.name, Instant::now()));
        });
    }
    drop(tx);
    start.wait().await;
    let published = Instant::now();
    app.mesa.events().publish([DomainEvent::SchedulerPaused]);
    let mut latencies = Vec::with_capacity(SUBSCRIBERS);
    while let Some((name, at)) = rx.recv().await {
        assert_eq!(name, "scheduler_paused");
        latencies.push(at - published);
    }
    assert_eq!(latencies.len(), SUBSCRIBERS);
    latencies.sort();
    let slowest = latencies[SUBSCRIBERS - 1];
    println!(
        "{SUBSCRIBERS} subscribers: first {:?}, median {:?}, slowest {slowest:?}",
        latencies[0],
        latencies[SUBSCRIBERS / 2]
    );
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
}
