//! The Anthropic Messages API (`POST /v1/messages`), streaming and not.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::script::{Fault, Reply, Usage};
use crate::server::{chunks, fault_response, json_response, sse_response};

const DEFAULT_MODEL: &str = "claude-sonnet-4-5";

fn model(request: &Value) -> String {
    request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL)
        .to_owned()
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
        "service_tier": "standard",
    })
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.has_tool_calls() {
        "tool_use"
    } else {
        "end_turn"
    }
}

/// The reply to a messages request: SSE when the body says `"stream": true`, JSON otherwise.
pub(crate) fn respond(request: &Value, reply: &Reply) -> Response {
    let model = model(request);
    let id = format!("msg_fake_{}", reply.serial);
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut content = Vec::new();
        if let Some(text) = &reply.text {
            content.push(json!({"type": "text", "text": text}));
        }
        for (call_id, name, input) in &reply.tool_calls {
            content.push(json!({"type": "tool_use", "id": call_id, "name": name, "input": input}));
        }
        return json_response(
            StatusCode::OK,
            &json!({
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason(reply),
                "stop_sequence": null,
                "usage": usage_json(reply.usage),
            }),
        );
    }

    let mut frames = Vec::new();
    let mut event = |name: &str, data: Value| {
        frames.push(format!("event: {name}\ndata: {data}\n\n"));
    };
    // Like the real API: input figures up front, output 1 until the end.
    let mut start_usage = usage_json(reply.usage);
    start_usage["output_tokens"] = json!(1);
    event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
    );
    event("ping", json!({"type": "ping"}));
    let mut index = 0;
    if let Some(text) = &reply.text {
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}}),
        );
        for piece in chunks(text) {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    for (call_id, name, input) in &reply.tool_calls {
        event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index,
                   "content_block": {"type": "tool_use", "id": call_id, "name": name,
                                     "input": {}}}),
        );
        for piece in chunks(&input.to_string()) {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
        index += 1;
    }
    // The final usage is cumulative for the whole message.
    event(
        "message_delta",
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason(reply), "stop_sequence": null},
               "usage": usage_json(reply.usage)}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    sse_response(frames)
}

/// An Anthropic error body: `{"type":"error","error":{"type","message"}}`.
pub(crate) fn fault(fault: &Fault) -> Response {
    let kind = fault.kind.clone().unwrap_or_else(|| {
        match fault.status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        }
        .to_owned()
    });
    let message = fault
        .message
        .clone()
        .unwrap_or_else(|| format!("mesa-testkit scripted {kind} ({})", fault.status));
    fault_response(
        fault,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}
