//! The Telegram bot (issue 7, SPEC §11.1) against a fake Bot API on 127.0.0.1: Mesa's router
//! and integrations run in this process (the same `mesa_http::serve` and
//! `mesa_http::integrations::start` that `mesa serve` runs), the fake answers `getUpdates` from
//! a scripted queue and records what the bot sends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::{Actor, IssueKey, Name, OutboxStatus, WorkingDir};
use mesa_core::store::{ActivityFilter, OutboxFilter, PageRequest};
use mesa_core::{CoreConfig, Mesa};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::flows::call;

const TOKEN: &str = "123456:test-token";
/// The allowed group chat and user (`@boss`, id 42).
const CHAT: i64 = -100_500;
const BOSS: i64 = 42;

/// What the fake Bot API was asked, and what it will answer.
#[derive(Default)]
struct Fake {
    /// Updates not yet confirmed by an offset.
    updates: Mutex<VecDeque<Value>>,
    next_update: Mutex<i64>,
    /// Every `getUpdates` call, in order.
    polls: Mutex<u32>,
    /// `getUpdates` calls to answer with a 502, and how many were.
    poll_failures: Mutex<u32>,
    failed_polls: Mutex<u32>,
    /// Successful `sendMessage` bodies.
    sent: Mutex<Vec<Value>>,
    /// `sendMessage` calls refused with a failure.
    failed_sends: Mutex<u32>,
    /// Failures to answer the next `sendMessage` calls with (HTTP status, body).
    send_failures: Mutex<VecDeque<(u16, Value)>>,
    answers: Mutex<Vec<Value>>,
    edits: Mutex<Vec<Value>>,
}

impl Fake {
    fn push(&self, mut update: Value) -> i64 {
        let mut next = self.next_update.lock().unwrap();
        *next += 1;
        update["update_id"] = json!(*next);
        self.updates.lock().unwrap().push_back(update);
        *next
    }

    fn sent(&self) -> Vec<Value> {
        self.sent.lock().unwrap().clone()
    }

    fn polls(&self) -> u32 {
        *self.polls.lock().unwrap()
    }
}

async fn bot_api(
    State(fake): State<Arc<Fake>>,
    Path((bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        let refusal = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, Json(refusal)).into_response();
    }
    let result = match method.as_str() {
        "getMe" => json!({"id": 1, "is_bot": true, "username": "MesaBot"}),
        "getUpdates" => return get_updates(&fake, &body).await,
        "sendMessage" => {
            if let Some((status, refusal)) = fake.send_failures.lock().unwrap().pop_front() {
                *fake.failed_sends.lock().unwrap() += 1;
                let code = StatusCode::from_u16(status).unwrap();
                return (code, Json(refusal)).into_response();
            }
            let mut sent = fake.sent.lock().unwrap();
            sent.push(body.clone());
            json!({"message_id": sent.len(), "chat": {"id": body["chat_id"]}, "text": body["text"]})
        }
        "answerCallbackQuery" => {
            fake.answers.lock().unwrap().push(body);
            json!(true)
        }
        "editMessageText" => {
            fake.edits.lock().unwrap().push(body.clone());
            json!({"message_id": body["message_id"], "chat": {"id": body["chat_id"]}})
        }
        _ => json!(true),
    };
    Json(json!({"ok": true, "result": result})).into_response()
}

/// Long polling as Telegram does it: confirms what is before `offset`, then answers at once if
/// something is queued, else holds the call for a while and answers an empty list.
async fn get_updates(fake: &Fake, body: &Value) -> Response {
    *fake.polls.lock().unwrap() += 1;
    {
        let mut failures = fake.poll_failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            *fake.failed_polls.lock().unwrap() += 1;
            let gateway = json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
            return (StatusCode::BAD_GATEWAY, Json(gateway)).into_response();
        }
    }
    let offset = body["offset"].as_i64();
    for _ in 0..25 {
        let ready: Vec<Value> = {
            let mut queue = fake.updates.lock().unwrap();
            if let Some(offset) = offset {
                queue.retain(|u| u["update_id"].as_i64() >= Some(offset));
            }
            queue.iter().cloned().collect()
        };
        if !ready.is_empty() {
            return Json(json!({"ok": true, "result": ready})).into_response();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Json(json!({"ok": true, "result": []})).into_response()
}

/// What the bot logs, captured for the assertions on ignored input (one process per test
/// under nextest; under `cargo test` the first test's subscriber serves all).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("mesa_http=warn")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Mesa served with its integrations, and the fake Bot API it talks to.
struct Bot {
    mesa: Mesa,
    url: String,
    board: String,
    fake: Arc<Fake>,
    cancel: CancellationToken,
    integrations: Option<mesa_http::integrations::Integrations>,
    _dir: tempfile::TempDir,
}

impl Bot {
    async fn start() -> Bot {
        let _ = rustls::crypto::ring::default_provider().install_default();
        logs();
        let fake = Arc::new(Fake::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake_url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(bot_api))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let config = CoreConfig::new(
            dir.path().join("data"),
            WorkingDir::parse(&dir.path().to_string_lossy()).unwrap(),
        );
        let mesa = Mesa::builder()
            .sqlite(dir.path().join("mesa.db"))
            .config(config)
            .build()
            .await
            .unwrap();
        mesa.bootstrap_if_empty().await.unwrap();
        let board = mesa
            .create_board_token(&Actor::board("test"), Name::parse("tg").unwrap(), None)
            .await
            .unwrap()
            .raw;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = mesa_http::AppState::new(mesa.clone());
        tokio::spawn(mesa_http::serve(listener, state, std::future::pending()));

        let bot = Bot {
            mesa: mesa.clone(),
            url,
            board,
            fake,
            cancel: CancellationToken::new(),
            integrations: None,
            _dir: dir,
        };
        let (status, body) = bot
            .api(
                "PATCH",
                "/settings",
                Some(json!({
                    "feature_telegram": true,
                    "telegram_bot_token": TOKEN,
                    "telegram_base_url": fake_url,
                    "telegram_chat_ids": CHAT.to_string(),
                    "telegram_user_ids": "@boss",
                    "outbox_retry_base_ms": "100",
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        Bot {
            integrations: Some(mesa_http::integrations::start(mesa, bot.cancel.clone())),
            ..bot
        }
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.url, &self.board, method, path, body).await
    }

    /// The CEO asks for a new work block's activation (an approval for the board).
    async fn request_activation(&self, title: &str) -> (String, String) {
        let key = self
            .mesa
            .create_agent_key(&Actor::board("test"), "ceo", None, None)
            .await
            .unwrap()
            .raw;
        let (status, block) = call(
            &self.url,
            &key,
            "POST",
            "/work-blocks",
            Some(json!({"title": title})),
        )
        .await;
        assert_eq!(status, 201, "{block}");
        let id = block["id"].as_str().unwrap().to_owned();
        let (status, r) = call(
            &self.url,
            &key,
            "PATCH",
            &format!("/work-blocks/{id}"),
            Some(json!({"status": "active"})),
        )
        .await;
        assert_eq!(status, 202, "{r}");
        (id, r["approval"]["id"].as_str().unwrap().to_owned())
    }

    async fn block_status(&self, id: &str) -> Value {
        let (_, r) = self.api("GET", &format!("/work-blocks/{id}"), None).await;
        r["work_block"]["status"].clone()
    }

    async fn approval(&self, id: &str) -> Value {
        self.api("GET", &format!("/approvals/{id}"), None).await.1
    }

    /// A button press on `message` by user `from` in `chat`.
    fn press(&self, chat: i64, from: &Value, message: &Value, data: &str) -> String {
        let query = format!("q{}", *self.fake.next_update.lock().unwrap() + 1);
        self.fake.push(json!({"callback_query": {
            "id": query,
            "from": from,
            "message": {"message_id": 1, "chat": {"id": chat}, "text": message["text"]},
            "data": data,
        }}));
        query
    }

    /// A text message from `from` in `chat`.
    fn say(&self, chat: i64, from: &Value, text: &str) {
        self.fake.push(json!({"message": {
            "message_id": 9, "chat": {"id": chat}, "from": from, "text": text,
        }}));
    }

    async fn stop(mut self) {
        if let Some(i) = self.integrations.take() {
            i.shutdown().await;
        }
    }
}

fn boss() -> Value {
    json!({"id": BOSS, "is_bot": false, "username": "boss"})
}

/// Evaluates `check` (an expression that may `.await`) every 20 ms until it is `Some`,
/// failing after `within`.
macro_rules! eventually {
    ($within:expr, $what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + $within;
        loop {
            if let Some(v) = $check {
                break v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }};
}

/// The message the bot sent with a button whose data is `data`.
fn with_button(sent: &[Value], data: &str) -> Option<Value> {
    sent.iter()
        .find(|m| {
            m["reply_markup"]["inline_keyboard"][0]
                .as_array()
                .is_some_and(|row| row.iter().any(|b| b["callback_data"] == data))
        })
        .cloned()
}

#[tokio::test]
async fn an_approval_reaches_the_chat_and_only_the_allowed_user_decides_it() {
    let bot = Bot::start().await;
    let (block, approval) = bot.request_activation("Sprint 1").await;
    let approve = format!("approve:{approval}");

    let message = eventually!(Duration::from_secs(10), "the approval message", {
        with_button(&bot.fake.sent(), &approve)
    });
    assert_eq!(message["chat_id"], CHAT);
    assert!(
        message["text"].as_str().unwrap().contains("Sprint 1"),
        "{message}"
    );
    let row = &message["reply_markup"]["inline_keyboard"][0];
    assert_eq!(row[0]["text"], "Approve");
    assert_eq!(row[1]["text"], "Reject");
    assert_eq!(row[1]["callback_data"], format!("reject:{approval}"));

    // Another user in the allowed chat, and the allowed user in another chat: nothing changes.
    let stranger = json!({"id": 99, "is_bot": false, "username": "mallory"});
    let before = bot
        .mesa
        .activity_log(&ActivityFilter::default(), &PageRequest::all())
        .await
        .unwrap()
        .items
        .len();
    let q1 = bot.press(CHAT, &stranger, &message, &approve);
    let q2 = bot.press(-100_999, &boss(), &message, &approve);
    for q in [q1, q2] {
        let answer = eventually!(Duration::from_secs(10), "the refusal", {
            let answers = bot.fake.answers.lock().unwrap().clone();
            answers
                .into_iter()
                .find(|a| a["callback_query_id"] == q.as_str())
        });
        assert_eq!(answer["text"], "Not allowed.");
    }
    assert_eq!(bot.approval(&approval).await["status"], "pending");
    assert_eq!(bot.block_status(&block).await, "proposed");
    let after = bot
        .mesa
        .activity_log(&ActivityFilter::default(), &PageRequest::all())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(after, before, "ignored presses write nothing");
    let log = logged();
    assert!(log.contains("user_id=99"), "{log}");
    assert!(log.contains("chat_id=Some(-100999)"), "{log}");
    assert!(bot.fake.edits.lock().unwrap().is_empty());

    // The allowed user in the allowed chat: approved, and the block activates.
    let q3 = bot.press(CHAT, &boss(), &message, &approve);
    eventually!(Duration::from_secs(10), "the block activates", {
        (bot.block_status(&block).await == "active").then_some(())
    });
    let decided = bot.approval(&approval).await;
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "telegram:boss");
    let rows = bot
        .mesa
        .activity_log(
            &ActivityFilter {
                actor: Some("telegram:boss".to_owned()),
                ..ActivityFilter::default()
            },
            &PageRequest::all(),
        )
        .await
        .unwrap()
        .items;
    assert!(rows.iter().any(|r| r.entity_id == approval), "{rows:#?}");
    let answer = eventually!(Duration::from_secs(10), "the answer", {
        let answers = bot.fake.answers.lock().unwrap().clone();
        answers
            .into_iter()
            .find(|a| a["callback_query_id"] == q3.as_str())
    });
    assert_eq!(answer["text"], "Approved by telegram:boss.");
    let edit = eventually!(Duration::from_secs(10), "the edited message", {
        bot.fake.edits.lock().unwrap().first().cloned()
    });
    assert_eq!(edit["chat_id"], CHAT);
    let text = edit["text"].as_str().unwrap();
    assert!(
        text.contains("Sprint 1") && text.ends_with("Approved by telegram:boss."),
        "{text}"
    );
    bot.stop().await;
}

#[tokio::test]
async fn new_creates_an_issue_for_the_ceo_and_commands_answer() {
    let bot = Bot::start().await;
    // Not obeyed: another user.
    bot.say(
        CHAT,
        &json!({"id": 7, "username": "eve"}),
        "/new Hack the planet",
    );
    bot.say(CHAT, &boss(), "/new@MesaBot Fix login");
    let reply = eventually!(Duration::from_secs(10), "the reply to /new", {
        bot.fake.sent().into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Created "))
        })
    });
    assert_eq!(reply["chat_id"], CHAT);
    let text = reply["text"].as_str().unwrap();
    assert!(text.ends_with(": Fix login (assigned to ceo)"), "{text}");
    let key = text["Created ".len()..].split(':').next().unwrap();
    let issue = bot
        .mesa
        .issue(&IssueKey::parse(key).unwrap())
        .await
        .unwrap();
    assert_eq!(issue.issue.title.as_str(), "Fix login");
    let ceo = bot.mesa.ceo().await.unwrap().unwrap();
    assert_eq!(issue.issue.assignee_id, Some(ceo.id));
    let rows = bot
        .mesa
        .activity_log(
            &ActivityFilter {
                actor: Some("telegram:boss".to_owned()),
                ..ActivityFilter::default()
            },
            &PageRequest::all(),
        )
        .await
        .unwrap()
        .items;
    assert!(
        rows.iter()
            .any(|r| r.action == "issue.create" && r.entity_id == key),
        "{rows:#?}"
    );
    let (_, list) = bot.api("GET", "/issues", None).await;
    let titles: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["title"].as_str())
        .collect();
    assert_eq!(titles, vec!["Fix login"], "eve's command created nothing");
    assert!(logged().contains("user_id=Some(7)"), "{}", logged());

    // /issue (any case) and /approvals.
    bot.say(CHAT, &boss(), &format!("/issue {}", key.to_lowercase()));
    let shown = eventually!(Duration::from_secs(10), "the issue", {
        bot.fake.sent().into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{key}: Fix login")))
        })
    });
    let text = shown["text"].as_str().unwrap();
    assert!(
        text.contains("Status: todo") && text.contains("Assignee: ceo"),
        "{text}"
    );
    bot.say(CHAT, &boss(), "/approvals");
    eventually!(Duration::from_secs(10), "the approvals", {
        bot.fake
            .sent()
            .into_iter()
            .find(|m| m["text"] == "No pending approvals.")
    });

    // /pause and /status, as the board.
    bot.say(CHAT, &boss(), "/pause");
    eventually!(Duration::from_secs(10), "the pause", {
        bot.mesa.scheduler_paused().await.then_some(())
    });
    bot.say(CHAT, &boss(), "/status");
    let status = eventually!(Duration::from_secs(10), "the status", {
        bot.fake.sent().into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("Scheduler: paused"))
        })
    });
    let text = status["text"].as_str().unwrap();
    assert!(
        text.contains(" queued") && text.contains("Pending approvals: 0"),
        "{text}"
    );
    bot.stop().await;
}

#[tokio::test]
async fn turning_the_flag_off_stops_polling_within_a_second() {
    let bot = Bot::start().await;
    eventually!(Duration::from_secs(10), "polling", {
        (bot.fake.polls() >= 2).then_some(())
    });
    let (status, body) = bot
        .api(
            "PATCH",
            "/settings",
            Some(json!({"feature_telegram": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopped = bot.fake.polls();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bot.fake.polls(),
        stopped,
        "no getUpdates after the flag went off"
    );

    // And back on, without a restart.
    let (status, _) = bot
        .api(
            "PATCH",
            "/settings",
            Some(json!({"feature_telegram": true})),
        )
        .await;
    assert_eq!(status, 200);
    eventually!(Duration::from_secs(10), "polling again", {
        (bot.fake.polls() > stopped).then_some(())
    });
    bot.stop().await;
}

#[tokio::test]
async fn a_failing_bot_api_delays_a_notification_but_does_not_lose_it() {
    let bot = Bot::start().await;
    let gateway = json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
    let limited = json!({"ok": false, "error_code": 429, "description": "Too Many Requests",
        "parameters": {"retry_after": 1}});
    bot.fake.send_failures.lock().unwrap().extend([
        (502, gateway.clone()),
        (502, gateway),
        (429, limited),
    ]);
    let (_, approval) = bot.request_activation("Sprint 2").await;
    let approve = format!("approve:{approval}");
    eventually!(Duration::from_secs(20), "the delivery after failures", {
        with_button(&bot.fake.sent(), &approve)
    });
    assert_eq!(*bot.fake.failed_sends.lock().unwrap(), 3);
    let delivered = bot
        .fake
        .sent()
        .iter()
        .filter(|m| with_button(std::slice::from_ref(m), &approve).is_some())
        .count();
    assert_eq!(delivered, 1, "delivered once");

    // The delivery log has every attempt.
    let board = Actor::board("test");
    let entry = eventually!(Duration::from_secs(10), "the delivered outbox item", {
        let items = bot
            .mesa
            .outbox_log(
                &board,
                &OutboxFilter {
                    channel: Some("telegram".to_owned()),
                    status: Some(OutboxStatus::Delivered),
                },
                &PageRequest::all(),
            )
            .await
            .unwrap()
            .items;
        match items.first() {
            Some(item) => Some(bot.mesa.outbox_entry(&board, item.id).await.unwrap()),
            None => None,
        }
    });
    let codes: Vec<Option<u16>> = entry.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(502), Some(502), Some(429), Some(200)]);

    // Polling backs off after a failed getUpdates and carries on.
    *bot.fake.poll_failures.lock().unwrap() = 1;
    eventually!(Duration::from_secs(10), "a failed poll", {
        (*bot.fake.failed_polls.lock().unwrap() == 1).then_some(())
    });
    bot.say(CHAT, &boss(), "/blocks");
    eventually!(Duration::from_secs(10), "the answer after the failure", {
        bot.fake.sent().into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("No active or ready work blocks"))
        })
    });
    bot.stop().await;
}

#[tokio::test]
async fn a_notification_delivered_after_the_decision_has_no_buttons() {
    let bot = Bot::start().await;
    let gateway = json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
    bot.fake
        .send_failures
        .lock()
        .unwrap()
        .push_back((502, gateway));
    let (block, approval) = bot.request_activation("Sprint 3").await;
    // Decided on the dashboard while Telegram is failing.
    let (status, body) = bot
        .api(
            "POST",
            &format!("/approvals/{approval}/resolve"),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bot.block_status(&block).await, "active");
    let message = eventually!(Duration::from_secs(10), "the late notification", {
        bot.fake
            .sent()
            .into_iter()
            .find(|m| m["text"].as_str().is_some_and(|t| t.contains("Sprint 3")))
    });
    assert!(message.get("reply_markup").is_none(), "{message}");
    let text = message["text"].as_str().unwrap();
    assert!(text.ends_with("(Already approved by board:tg.)"), "{text}");
    bot.stop().await;
}
