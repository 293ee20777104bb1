//! The OpenAI chat-completions and Responses APIs, over a real socket.

use std::time::Duration;

use mesa_testkit::{Endpoint, FakeModelServer, Fault, Matcher, Outcome, ToolCall, Turn, Usage};
use serde_json::{Value, json};

use crate::support::{client, parse_sse};

fn chat_body(stream: bool, messages: &Value) -> Value {
    json!({"model": "gpt-5", "stream": stream, "stream_options": {"include_usage": true},
           "tools": [{"type": "function", "function": {"name": "run_command",
                      "parameters": {"type": "object"}}}],
           "messages": messages})
}

#[tokio::test]
async fn chat_completions_non_streaming_has_tool_calls_and_usage() {
    let server = FakeModelServer::start([
        Turn::tool_call("run_command", json!({"argv": ["ls"]}))
            .with_usage(Usage::new(300, 40).with_cache(0, 100)),
        Turn::text("Finished.").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let url = format!("{}/chat/completions", server.openai_base_url());
    let first: Value = client()
        .post(&url)
        .bearer_auth("sk-test")
        .json(&chat_body(
            false,
            &json!([{"role": "system", "content": "be brief"},
                   {"role": "user", "content": "list"}]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["object"], "chat.completion");
    assert_eq!(first["model"], "gpt-5");
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "run_command");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"argv": ["ls"]}));
    assert_eq!(
        first["usage"],
        json!({"prompt_tokens": 400, "completion_tokens": 40, "total_tokens": 440,
               "prompt_tokens_details": {"cached_tokens": 100},
               "completion_tokens_details": {"reasoning_tokens": 0}})
    );

    let call_id = call["id"].as_str().unwrap();
    let second: Value = client()
        .post(&url)
        .json(&chat_body(
            false,
            &json!([{"role": "user", "content": "list"},
                   {"role": "assistant", "content": null, "tool_calls": [call]},
                   {"role": "tool", "tool_call_id": call_id, "content": "a.txt\nb.txt"}]),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    assert_eq!(second["choices"][0]["message"]["content"], "Finished.");

    let requests = server.model_requests();
    assert_eq!(requests[0].endpoint, Endpoint::ChatCompletions);
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(requests[0].system_prompt(), "be brief");
    assert_eq!(requests[0].tool_names(), ["run_command"]);
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].call_id, call_id);
    assert_eq!(results[0].content, "a.txt\nb.txt");
    assert!(server.unexpected().is_empty());
}

#[tokio::test]
async fn chat_completions_streaming_chunks_reassemble_and_end_with_done() {
    let server = FakeModelServer::start([Turn::text("Running two commands.")
        .with_tool_call(ToolCall::new("run_command", json!({"argv": ["pwd"]})).with_id("call_a"))
        .with_tool_call(ToolCall::new("run_command", json!({"argv": ["id"]})))
        .with_usage(Usage::new(10, 5))])
    .await
    .unwrap();
    let body = client()
        .post(format!("{}/chat/completions", server.openai_base_url()))
        .json(&chat_body(
            true,
            &json!([{"role": "user", "content": "go"}]),
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&body);
    assert!(events.iter().all(|e| e.event.is_none()));
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");

    let mut text = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for chunk in &chunks {
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(piece) = choice["delta"]["content"].as_str() {
            text.push_str(piece);
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
            if index == calls.len() {
                calls.push((
                    call["id"].as_str().unwrap().to_owned(),
                    call["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            }
            calls[index]
                .2
                .push_str(call["function"]["arguments"].as_str().unwrap());
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
    }
    assert_eq!(text, "Running two commands.");
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, "call_a");
    assert!(calls[1].0.starts_with("call_fake_"));
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].2).unwrap(),
        json!({"argv": ["id"]})
    );

    // The usage chunk comes last, with no choices, because the request asked for it.
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 10);
    assert_eq!(usage["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn responses_streaming_has_the_codex_event_sequence() {
    let server = FakeModelServer::start([
        Turn::tool_call("shell", json!({"command": ["bash", "-lc", "echo hi"]}))
            .with_usage(Usage::new(500, 60).with_cache(0, 250)),
        Turn::text("It printed hi.").when(Matcher::ends_with_tool_result()),
    ])
    .await
    .unwrap();
    let url = format!("{}/responses", server.openai_base_url());
    let body = json!({"model": "gpt-5-codex", "stream": true, "instructions": "You are Codex.",
                      "input": [{"type": "message", "role": "user",
                                 "content": [{"type": "input_text", "text": "say hi"}]}],
                      "tools": [{"type": "function", "name": "shell"}]});
    let text = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let data: Vec<Value> = events.iter().map(|e| e.json()).collect();
    for (n, event) in data.iter().enumerate() {
        assert_eq!(event["type"], kinds[n]);
        assert_eq!(event["sequence_number"], n);
    }
    let item = &data[7]["item"];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "shell");
    assert_eq!(item["status"], "completed");
    let arguments: String = data[3..6]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(arguments, item["arguments"].as_str().unwrap());
    let completed = &data[8]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["model"], "gpt-5-codex");
    assert_eq!(completed["output"][0], *item);
    assert_eq!(
        completed["usage"],
        json!({"input_tokens": 750, "input_tokens_details": {"cached_tokens": 250},
               "output_tokens": 60, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 810})
    );

    // Codex sends the whole conversation again, with the call's output.
    let call_id = item["call_id"].as_str().unwrap();
    let mut follow_up = body.clone();
    follow_up["input"].as_array_mut().unwrap().extend([
        item.clone(),
        json!({"type": "function_call_output", "call_id": call_id,
                                      "output": "hi\n"}),
    ]);
    let text = client()
        .post(&url)
        .json(&follow_up)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_deref().unwrap()).collect();
    assert_eq!(
        kinds[2..4],
        ["response.output_item.added", "response.content_part.added"]
    );
    assert_eq!(kinds[kinds.len() - 1], "response.completed");
    let deltas: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_text.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, "It printed hi.");
    let done = events
        .iter()
        .find(|e| e.event.as_deref() == Some("response.output_item.done"))
        .unwrap()
        .json();
    assert_eq!(done["item"]["content"][0]["text"], "It printed hi.");

    let requests = server.model_requests();
    assert_eq!(requests[1].endpoint, Endpoint::Responses);
    assert_eq!(requests[1].system_prompt(), "You are Codex.");
    assert_eq!(requests[1].user_texts(), ["say hi"]);
    assert_eq!(requests[1].tool_names(), ["shell"]);
    assert_eq!(requests[1].tool_results()[0].content, "hi\n");
    assert_eq!(requests[1].tool_results()[0].call_id, call_id);
    assert!(server.unexpected().is_empty());
}

#[tokio::test]
async fn responses_non_streaming_and_openai_faults() {
    let server = FakeModelServer::start([
        Turn::fault(Fault::rate_limited(Duration::from_secs(3))),
        Turn::fault(Fault::status(429).with_kind("insufficient_quota")),
    ])
    .await
    .unwrap();
    let url = format!("{}/responses", server.openai_base_url());
    let body = json!({"model": "gpt-5", "input": "hello"});

    let limited = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");

    let quota: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quota["error"]["type"], "insufficient_quota");
    assert_eq!(quota["error"]["code"], "insufficient_quota");

    server.push_turns([Turn::text("hello back").with_usage(Usage::new(7, 3))]);
    let reply: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["object"], "response");
    assert_eq!(reply["status"], "completed");
    assert_eq!(reply["output"][0]["type"], "message");
    assert_eq!(reply["output"][0]["content"][0]["text"], "hello back");
    assert_eq!(reply["usage"]["total_tokens"], 10);

    // The script is exhausted now: a plain final text, recorded as unexpected.
    let extra: Value = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(extra["status"], "completed");
    let unexpected = server.unexpected();
    assert_eq!(unexpected.len(), 1);
    assert_eq!(
        unexpected[0].outcome,
        Outcome::Unexpected("the script has no turn left".to_owned())
    );
    assert_eq!(unexpected[0].user_texts(), ["hello"]);
}
