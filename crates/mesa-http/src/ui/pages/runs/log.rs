//! The "Formatted" view of a run's log: stored output lines parsed into blocks. Claude Code
//! stream-json (`assistant` text and tool calls, `user` tool results, the final `result`) and
//! codex `--json` events (`item.*` agent messages, commands, tool calls) become typed blocks;
//! anything else is a plain text line. Blocks carry text only: the template escapes it.

use serde::Serialize;
use serde_json::Value;

/// The most blocks the formatted view shows (the newest); the raw view has everything.
const MAX_BLOCKS: usize = 3_000;
/// The longest text one block keeps, in characters.
const MAX_TEXT: usize = 4_000;
/// The longest tool-input summary, in characters.
const MAX_SUMMARY: usize = 200;

/// One block of the formatted log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Block {
    /// `text` (a plain line), `assistant`, `tool_call`, `tool_result`, `result`, `system`.
    pub(super) kind: &'static str,
    /// Tool name, result subtype or system subtype.
    pub(super) title: String,
    /// The text (tool input summary, result content, message).
    pub(super) body: String,
    /// A failed tool result or an error result.
    pub(super) error: bool,
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn block(kind: &'static str, title: impl Into<String>, body: &str, error: bool) -> Block {
    Block {
        kind,
        title: title.into(),
        body: clip(body, MAX_TEXT),
        error,
    }
}

/// A tool input as one short line: `key: value` pairs of its scalar fields, else its JSON.
fn summary(input: &Value) -> String {
    let text = match input {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    clip(&text.replace('\n', " "), MAX_SUMMARY)
}

/// A tool result's content: a string or a list of text parts.
fn content_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The blocks of a Claude Code `assistant` or `user` message.
fn message_blocks(event: &Value, out: &mut Vec<Block>) {
    let Some(parts) = event.pointer("/message/content").and_then(Value::as_array) else {
        return;
    };
    for p in parts {
        match str_at(p, "type") {
            "text" => out.push(block("assistant", "", str_at(p, "text"), false)),
            "thinking" => out.push(block("system", "thinking", str_at(p, "thinking"), false)),
            "tool_use" => out.push(block(
                "tool_call",
                str_at(p, "name"),
                &summary(p.get("input").unwrap_or(&Value::Null)),
                false,
            )),
            "tool_result" => out.push(block(
                "tool_result",
                "result",
                &content_text(p.get("content").unwrap_or(&Value::Null)),
                p.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            )),
            _ => {}
        }
    }
}

/// The blocks of a codex `item.*` event.
fn codex_item(item: &Value, out: &mut Vec<Block>) {
    match str_at(item, "type") {
        "agent_message" => out.push(block("assistant", "", str_at(item, "text"), false)),
        "reasoning" => out.push(block("system", "reasoning", str_at(item, "text"), false)),
        "command_execution" => {
            out.push(block("tool_call", "shell", str_at(item, "command"), false));
            let output = str_at(item, "aggregated_output");
            if !output.is_empty() {
                let failed = item
                    .get("exit_code")
                    .and_then(Value::as_i64)
                    .is_some_and(|c| c != 0);
                out.push(block("tool_result", "output", output, failed));
            }
        }
        "mcp_tool_call" => out.push(block(
            "tool_call",
            str_at(item, "tool"),
            &summary(item.get("arguments").unwrap_or(&Value::Null)),
            false,
        )),
        "file_change" => out.push(block(
            "tool_call",
            "file change",
            &summary(item.get("changes").unwrap_or(&Value::Null)),
            false,
        )),
        _ => {}
    }
}

/// The blocks of one output line.
fn line_blocks(line: &str, out: &mut Vec<Block>) {
    let parsed = line
        .trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str::<Value>(line).ok())
        .flatten();
    let Some(event) = parsed.filter(|v| v.get("type").is_some_and(Value::is_string)) else {
        out.push(block("text", "", line, false));
        return;
    };
    match str_at(&event, "type") {
        "assistant" | "user" => message_blocks(&event, out),
        "result" => {
            let error = event
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let body = event
                .get("result")
                .and_then(Value::as_str)
                .map_or_else(String::new, str::to_owned);
            out.push(block("result", str_at(&event, "subtype"), &body, error));
        }
        "system" => out.push(block("system", str_at(&event, "subtype"), "", false)),
        "item.completed" | "item.started" => {
            if str_at(&event, "type") == "item.completed"
                && let Some(item) = event.get("item")
            {
                codex_item(item, out);
            }
        }
        "turn.failed" | "error" => {
            let msg = event
                .pointer("/error/message")
                .or_else(|| event.get("message"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.push(block("result", "error", msg, true));
        }
        // Other JSON events (thread/turn bookkeeping) carry nothing to read.
        _ => {}
    }
}

/// The formatted log: its blocks (the newest [`MAX_BLOCKS`]) and how many were left out.
pub(super) fn format(stdout: &str) -> (Vec<Block>, usize) {
    let mut out = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        line_blocks(line, &mut out);
    }
    let elided = out.len().saturating_sub(MAX_BLOCKS);
    if elided > 0 {
        out.drain(..elided);
    }
    (out, elided)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_stream_json_becomes_text_tool_calls_results_and_the_result() {
        let log = concat!(
            r#"{"type":"system","subtype":"init","model":"m"}"#,
            "\n",
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"Reading it."},{"type":"tool_use","name":"Read","input":{"file_path":"/w/a.rs"}}]}}"#,
            "\n",
            r#"{"type":"user","message":{"content":[{"type":"tool_result","content":"fn main() {}","is_error":false}]}}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":false,"result":"Done."}"#,
            "\nplain <b>line</b>\n",
        );
        let (blocks, elided) = format(log);
        assert_eq!(elided, 0);
        let kinds: Vec<_> = blocks.iter().map(|b| b.kind).collect();
        assert_eq!(
            kinds,
            [
                "system",
                "assistant",
                "tool_call",
                "tool_result",
                "result",
                "text"
            ]
        );
        assert_eq!(blocks[1].body, "Reading it.");
        assert_eq!(blocks[2].title, "Read");
        assert_eq!(blocks[2].body, "file_path: /w/a.rs");
        assert_eq!(blocks[3].body, "fn main() {}");
        assert_eq!(blocks[4].body, "Done.");
        assert_eq!(blocks[5].body, "plain <b>line</b>");
    }

    #[test]
    fn codex_items_and_errors_are_blocks_and_bad_json_is_text() {
        let log = concat!(
            r#"{"type":"thread.started","thread_id":"t"}"#,
            "\n",
            r#"{"type":"item.completed","item":{"type":"command_execution","command":"ls","aggregated_output":"a\nb","exit_code":1}}"#,
            "\n",
            r#"{"type":"item.completed","item":{"type":"agent_message","text":"ok"}}"#,
            "\n",
            r#"{"type":"turn.failed","error":{"message":"quota"}}"#,
            "\n{not json\n",
        );
        let (blocks, _) = format(log);
        let kinds: Vec<_> = blocks.iter().map(|b| (b.kind, b.error)).collect();
        assert_eq!(
            kinds,
            [
                ("tool_call", false),
                ("tool_result", true),
                ("assistant", false),
                ("result", true),
                ("text", false)
            ]
        );
    }

    #[test]
    fn long_logs_keep_the_newest_blocks_and_long_texts_are_clipped() {
        let log: String = (0..MAX_BLOCKS + 5).map(|i| format!("line {i}\n")).collect();
        let (blocks, elided) = format(&log);
        assert_eq!(elided, 5);
        assert_eq!(blocks[0].body, "line 5");
        assert_eq!(clip("abcdef", 3), "abc…");
    }
}
