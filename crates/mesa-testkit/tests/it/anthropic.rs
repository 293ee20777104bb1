//! The Anthropic Messages API and the auxiliary endpoints, over a real socket.

use std::time::Duration;

use mesa_testkit::{
    Endpoint, FALLBACK_TEXT, FakeModelServer, Fault, Matcher, Outcome, ToolCall, Turn, Usage,
};
use serde_json::{Value, json};

use crate::support::{client, parse_sse};

fn messages_body(stream: bool, messages: &Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": stream,
           "system": [{"type": "text", "text": "You are a test."}],
           "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
           "messages": messages})
}

#[tokio::test]
async fn streaming_text_and_tool_use_have_the_claude_code_event_shapes() {
    let server = FakeModelServer::start([Turn::text("Let me look.")
        .with_tool_call(ToolCall::new("Bash", json!({"command": "ls -la"})).with_id("toolu_1"))
        .with_usage(Usage::new(1000, 50).with_cache(200, 300))])
    .await
    .unwrap();
    let response = client()
        .post(format!("{}/v1/messages?beta=true", server.base_url()))
        .header("x-api-key", "test")
        .header("anthropic-version", "2023-06-01")
        .json(&messages_body(
            true,
            &json!([{"role": "user", "content": "list files"}]),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(names[..3], ["message_start", "ping", "content_block_start"]);
    assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
    for event in &events {
        assert_eq!(event.json()["type"], event.event.as_deref().unwrap());
    }

    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["usage"]["input_tokens"], 1000);
    assert_eq!(start["message"]["usage"]["cache_read_input_tokens"], 300);

    // Reassemble the blocks the way a client does.
    let mut text = String::new();
    let mut partial_json = String::new();
    let mut tool_start = Value::Null;
    for event in events.iter().map(|e| e.json()) {
        match (event["type"].as_str().unwrap(), event["index"].as_u64()) {
            ("content_block_start", Some(1)) => tool_start = event["content_block"].clone(),
            ("content_block_delta", Some(0)) => {
                assert_eq!(event["delta"]["type"], "text_delta");
                text.push_str(event["delta"]["text"].as_str().unwrap());
            }
            ("content_block_delta", Some(1)) => {
                assert_eq!(event["delta"]["type"], "input_json_delta");
                partial_json.push_str(event["delta"]["partial_json"].as_str().unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(text, "Let me look.");
    assert_eq!(tool_start["type"], "tool_use");
    assert_eq!(tool_start["id"], "toolu_1");
    assert_eq!(tool_start["name"], "Bash");
    assert_eq!(
        serde_json::from_str::<Value>(&partial_json).unwrap(),
        json!({"command": "ls -la"})
    );

    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 50);
    assert_eq!(delta["usage"]["cache_creation_input_tokens"], 200);

    let recorded = server.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].endpoint, Endpoint::AnthropicMessages);
    assert_eq!(recorded[0].query.as_deref(), Some("beta=true"));
    assert_eq!(recorded[0].header("X-Api-Key"), Some("test"));
    assert_eq!(recorded[0].outcome, Outcome::Turn(0));
    assert_eq!(recorded[0].system_prompt(), "You are a test.");
    assert_eq!(recorded[0].user_texts(), ["list files"]);
    assert_eq!(recorded[0].tool_names(), ["Bash"]);
}

#[tokio::test]
async fn non_streaming_reply_and_tool_results_are_recorded() {
    let server = FakeModelServer::start([
        Turn::tool_call("Bash", json!({"command": "pwd"})),
        Turn::text("All done.").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let url = format!("{}/v1/messages", server.base_url());
    let first: Value = client()
        .post(&url)
        .json(&messages_body(
            false,
            &json!([{"role": "user", "content": "where?"}]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["type"], "message");
    assert_eq!(first["stop_reason"], "tool_use");
    assert_eq!(first["usage"]["input_tokens"], 100);
    assert_eq!(first["usage"]["output_tokens"], 20);
    let tool_use = &first["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["input"], json!({"command": "pwd"}));
    let id = tool_use["id"].as_str().unwrap();

    let second: Value = client()
        .post(&url)
        .json(&messages_body(
            false,
            &json!([
                {"role": "user", "content": "where?"},
                {"role": "assistant", "content": [tool_use]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
                  "content": [{"type": "text", "text": "/tmp/work"}]}]},
            ]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["stop_reason"], "end_turn");
    assert_eq!(
        second["content"],
        json!([{"type": "text", "text": "All done."}])
    );

    let requests = server.model_requests();
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].call_id, id);
    assert_eq!(results[0].content, "/tmp/work");
    assert!(requests[1].ends_with_tool_result());
    assert!(!requests[0].ends_with_tool_result());
    assert!(server.unexpected().is_empty());
    assert_eq!(server.remaining_turns(), 0);
}

#[tokio::test]
async fn faults_have_the_anthropic_error_shape_and_retry_after() {
    let server = FakeModelServer::start([
        Turn::fault(Fault::rate_limited(Duration::from_millis(1500))),
        Turn::fault(Fault::overloaded()),
        Turn::fault(Fault::server_error()),
        Turn::text("recovered"),
    ])
    .await
    .unwrap();
    let url = format!("{}/v1/messages", server.base_url());
    let body = messages_body(true, &json!([{"role": "user", "content": "hi"}]));
    for (status, kind, retry_after) in [
        (429, "rate_limit_error", Some("2")),
        (529, "overloaded_error", None),
        (500, "api_error", None),
    ] {
        let response = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            retry_after
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], kind);
    }
    let response = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        server
            .requests()
            .iter()
            .map(|r| r.outcome.clone())
            .collect::<Vec<_>>(),
        [0, 1, 2, 3].map(Outcome::Turn)
    );
}

#[tokio::test]
async fn an_exhausted_script_or_a_refusing_matcher_answers_with_the_fallback() {
    let server = FakeModelServer::start([
        Turn::text("needs a tool result").when(Matcher::ends_with_tool_result())
    ])
    .await
    .unwrap();
    let url = format!("{}/v1/messages", server.base_url());
    let reply: Value = client()
        .post(&url)
        .json(&messages_body(
            false,
            &json!([{"role": "user", "content": "hi"}]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["content"][0]["text"], FALLBACK_TEXT);
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(server.remaining_turns(), 1);
    let unexpected = server.unexpected();
    assert_eq!(unexpected.len(), 1);
    assert_eq!(
        unexpected[0].outcome,
        Outcome::Unexpected("turn 0 expects: the last input item is a tool result".to_owned())
    );

    let response = client().post(&url).body("not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(server.unexpected().len(), 2);
}

#[tokio::test]
async fn start_up_probes_models_and_token_counts_are_answered() {
    let server = FakeModelServer::start([]).await.unwrap();
    let base = server.base_url();
    let head = client().head(&base).send().await.unwrap();
    assert_eq!(head.status(), 200);

    let models: Value = client()
        .get(format!("{base}/v1/models"))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["type"], "model");
    assert_eq!(models["has_more"], false);
    let openai_models: Value = client()
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai_models["object"], "list");
    assert_eq!(openai_models["data"][0]["object"], "model");

    let count: Value = client()
        .post(format!("{base}/v1/messages/count_tokens"))
        .json(&json!({"model": "claude-sonnet-4-5",
                      "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0);

    let missing = client()
        .get(format!("{base}/nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| r.outcome == Outcome::Auxiliary));
    assert_eq!(requests[0].method, "HEAD");
    assert_eq!(requests[3].endpoint, Endpoint::AnthropicCountTokens);
    assert_eq!(server.remaining_turns(), 0);
    assert!(server.unexpected().is_empty());
    server.shutdown().await;
}
