//! The OpenAI chat-completions API (`POST /v1/chat/completions`) and Responses API
//! (`POST /v1/responses`), streaming and not.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::script::{Fault, Reply, Usage};
use crate::server::{chunks, fault_response, json_response, sse_response};

/// The fixed `created` timestamp of every object, so recorded output is stable.
pub(crate) const CREATED: u64 = 1_750_000_000;

const DEFAULT_MODEL: &str = "gpt-5";

fn model(request: &Value) -> String {
    request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL)
        .to_owned()
}

fn is_stream(request: &Value) -> bool {
    request.get("stream").and_then(Value::as_bool) == Some(true)
}

/// OpenAI counts cached tokens inside the prompt tokens.
fn prompt_tokens(usage: Usage) -> u64 {
    usage.input_tokens + usage.cache_read_input_tokens
}

fn chat_usage(usage: Usage) -> Value {
    json!({
        "prompt_tokens": prompt_tokens(usage),
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt_tokens(usage) + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.has_tool_calls() {
        "tool_calls"
    } else {
        "stop"
    }
}

/// A chat-completions reply. Streaming sends `chat.completion.chunk`s, a usage chunk when the
/// request asked for it (`stream_options.include_usage`, as OpenAI does), and `data: [DONE]`.
pub(crate) fn chat(request: &Value, reply: &Reply) -> Response {
    let model = model(request);
    let id = format!("chatcmpl-fake-{}", reply.serial);
    if !is_stream(request) {
        let tool_calls: Vec<Value> = reply
            .tool_calls
            .iter()
            .map(|(call_id, name, input)| {
                json!({"id": call_id, "type": "function",
                       "function": {"name": name, "arguments": input.to_string()}})
            })
            .collect();
        let mut message = json!({"role": "assistant", "content": reply.text, "refusal": null});
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        return json_response(
            StatusCode::OK,
            &json!({
                "id": id, "object": "chat.completion", "created": CREATED, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null,
                             "finish_reason": finish_reason(reply)}],
                "usage": chat_usage(reply.usage),
            }),
        );
    }

    let mut frames = Vec::new();
    let mut chunk = |delta: Value, finish: Option<&str>| {
        let data = json!({
            "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        frames.push(format!("data: {data}\n\n"));
    };
    chunk(json!({"role": "assistant", "content": ""}), None);
    if let Some(text) = &reply.text {
        for piece in chunks(text) {
            chunk(json!({"content": piece}), None);
        }
    }
    for (index, (call_id, name, input)) in reply.tool_calls.iter().enumerate() {
        chunk(
            json!({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            None,
        );
        for piece in chunks(&input.to_string()) {
            chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            );
        }
    }
    chunk(json!({}), Some(finish_reason(reply)));
    if request.pointer("/stream_options/include_usage") == Some(&json!(true)) {
        let data = json!({
            "id": id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
            "choices": [], "usage": chat_usage(reply.usage),
        });
        frames.push(format!("data: {data}\n\n"));
    }
    frames.push("data: [DONE]\n\n".to_owned());
    sse_response(frames)
}

fn responses_usage(usage: Usage) -> Value {
    json!({
        "input_tokens": prompt_tokens(usage),
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt_tokens(usage) + usage.output_tokens,
    })
}

/// The output items of a reply, completed: one `message` then one `function_call` per call.
fn output_items(reply: &Reply) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(text) = &reply.text {
        items.push(json!({
            "id": format!("msg_fake_{}", reply.serial), "type": "message",
            "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }));
    }
    for (index, (call_id, name, input)) in reply.tool_calls.iter().enumerate() {
        items.push(json!({
            "id": format!("fc_fake_{}_{index}", reply.serial), "type": "function_call",
            "status": "completed", "call_id": call_id, "name": name,
            "arguments": input.to_string(),
        }));
    }
    items
}

fn response_object(request: &Value, reply: &Reply, status: &str, output: &[Value]) -> Value {
    let mut object = json!({
        "id": format!("resp_fake_{}", reply.serial), "object": "response",
        "created_at": CREATED, "status": status, "model": model(request), "output": output,
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null,
        "incomplete_details": null,
        "usage": null,
    });
    if status == "completed" {
        object["usage"] = responses_usage(reply.usage);
    }
    object
}

/// A Responses-API reply. Streaming sends the events Codex consumes: `response.created`,
/// `response.in_progress`, per item `response.output_item.added`, the text or argument deltas
/// and their `.done`, `response.output_item.done`, then `response.completed` with usage.
pub(crate) fn responses(request: &Value, reply: &Reply) -> Response {
    let items = output_items(reply);
    if !is_stream(request) {
        return json_response(
            StatusCode::OK,
            &response_object(request, reply, "completed", &items),
        );
    }

    let mut frames = Vec::new();
    let mut sequence = 0_u64;
    let mut event = |mut data: Value| {
        let kind = data["type"].as_str().unwrap_or("unknown").to_owned();
        data["sequence_number"] = json!(sequence);
        sequence += 1;
        frames.push(format!("event: {kind}\ndata: {data}\n\n"));
    };
    let in_progress = response_object(request, reply, "in_progress", &[]);
    event(json!({"type": "response.created", "response": in_progress}));
    event(json!({"type": "response.in_progress", "response": in_progress}));
    for (output_index, item) in items.iter().enumerate() {
        let item_id = item["id"].clone();
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        if item["type"] == "message" {
            added["content"] = json!([]);
            event(
                json!({"type": "response.output_item.added", "output_index": output_index,
                         "item": added}),
            );
            event(
                json!({"type": "response.content_part.added", "item_id": item_id,
                         "output_index": output_index, "content_index": 0,
                         "part": {"type": "output_text", "text": "", "annotations": []}}),
            );
            let text = item["content"][0]["text"].as_str().unwrap_or_default();
            for piece in chunks(text) {
                event(
                    json!({"type": "response.output_text.delta", "item_id": item_id,
                             "output_index": output_index, "content_index": 0,
                             "delta": piece}),
                );
            }
            event(
                json!({"type": "response.output_text.done", "item_id": item_id,
                         "output_index": output_index, "content_index": 0, "text": text}),
            );
            event(
                json!({"type": "response.content_part.done", "item_id": item_id,
                         "output_index": output_index, "content_index": 0,
                         "part": item["content"][0]}),
            );
        } else {
            added["arguments"] = json!("");
            event(
                json!({"type": "response.output_item.added", "output_index": output_index,
                         "item": added}),
            );
            let arguments = item["arguments"].as_str().unwrap_or_default();
            for piece in chunks(arguments) {
                event(json!({"type": "response.function_call_arguments.delta",
                             "item_id": item_id, "output_index": output_index,
                             "delta": piece}));
            }
            event(
                json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                         "output_index": output_index, "arguments": arguments}),
            );
        }
        event(
            json!({"type": "response.output_item.done", "output_index": output_index,
                     "item": item}),
        );
    }
    event(json!({"type": "response.completed",
                 "response": response_object(request, reply, "completed", &items)}));
    sse_response(frames)
}

/// An OpenAI error body: `{"error":{"message","type","param","code"}}`.
pub(crate) fn fault(fault: &Fault) -> Response {
    let (kind, code) = match (&fault.kind, fault.status) {
        (Some(kind), _) => (kind.clone(), json!(kind)),
        (None, 400) => ("invalid_request_error".to_owned(), Value::Null),
        (None, 401) => ("invalid_request_error".to_owned(), json!("invalid_api_key")),
        (None, 429) => ("requests".to_owned(), json!("rate_limit_exceeded")),
        (None, _) => ("server_error".to_owned(), Value::Null),
    };
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| format!("mesa-testkit scripted {kind} ({})", fault.status));
    fault_response(
        fault,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}
