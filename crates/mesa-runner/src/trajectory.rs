//! The trajectory signature of a run (SPEC §4.3, run evaluation): how the agent went about its
//! task, read from its output as it streams. Tool calls and their distinct names, how many reads
//! came before the first write, failed tool calls, and the time from the start to the first
//! edit.
//!
//! Understood output: Claude Code `stream-json` (`tool_use` parts of `assistant` messages,
//! `tool_result` parts with `is_error`), Codex `--json` (`item.completed` events: commands,
//! MCP tool calls, file changes; a command with a non-zero exit code failed), and the lines of
//! the `openai_compat` runner (`tool call NAME: …`, `tool result NAME: error…`). Other output
//! has no tool calls, and its signature is all zeros.
//!
//! A *read* is a tool that only looks (Read, Grep, Glob, LS, web fetches, or a shell command
//! whose program only looks: `cat`, `ls`, `grep`, `rg`, `find`, `git diff|log|show|status`…);
//! a *write* is a file edit (Edit, Write, MultiEdit, NotebookEdit, Codex file changes,
//! `write_file`) — the first one is the "first edit".

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The signature of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Tool calls made.
    pub tool_calls: u32,
    /// Distinct tools among them, sorted.
    pub tools: Vec<String>,
    /// Reads before the first write (all reads when nothing was written).
    pub reads_before_first_write: u32,
    /// Tool calls that failed.
    pub tool_errors: u32,
    /// Milliseconds from the start of the run to the first edit, if any.
    pub time_to_first_edit_ms: Option<u64>,
}

impl Trajectory {
    /// How many distinct tools were used.
    pub fn distinct_tools(&self) -> usize {
        self.tools.len()
    }
}

/// What a tool call does, as far as the signature cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Read,
    Write,
    Other,
}

/// Builds a [`Trajectory`] from output lines as they come.
#[derive(Debug, Default)]
pub struct TrajectoryTracker {
    calls: u32,
    tools: BTreeSet<String>,
    reads: u32,
    wrote: bool,
    errors: u32,
    first_edit: Option<Duration>,
}

const READ_TOOLS: &[&str] = &[
    "read",
    "grep",
    "glob",
    "ls",
    "notebookread",
    "webfetch",
    "websearch",
    "read_file",
    "list_files",
    "search",
];
const WRITE_TOOLS: &[&str] = &[
    "edit",
    "write",
    "multiedit",
    "notebookedit",
    "write_file",
    "file change",
    "apply_patch",
];
const READ_PROGRAMS: &[&str] = &[
    "cat", "ls", "grep", "rg", "find", "head", "tail", "wc", "tree", "less", "sed", "awk", "pwd",
];

/// Classifies a tool by name (and its shell command, for shells).
fn effect(tool: &str, command: Option<&str>) -> Effect {
    let name = tool.to_ascii_lowercase();
    if READ_TOOLS.contains(&name.as_str()) {
        return Effect::Read;
    }
    if WRITE_TOOLS.contains(&name.as_str()) {
        return Effect::Write;
    }
    match command {
        Some(cmd) if matches!(name.as_str(), "bash" | "shell" | "run_command") => {
            command_effect(cmd)
        }
        _ => Effect::Other,
    }
}

/// A shell command looks only when its first program does (`bash -lc '…'` is unwrapped).
fn command_effect(command: &str) -> Effect {
    let mut words = command
        .split_whitespace()
        .map(|w| w.trim_matches(['\'', '"']));
    let mut first = words.next().unwrap_or_default();
    if matches!(first, "bash" | "sh" | "/bin/bash" | "/bin/sh" | "zsh") {
        // `bash -lc "cat x"`: skip the flags, look at the script's first word.
        first = words.find(|w| !w.starts_with('-')).unwrap_or_default();
    }
    let program = first.rsplit('/').next().unwrap_or(first);
    if READ_PROGRAMS.contains(&program) {
        return Effect::Read;
    }
    if program == "git" {
        let sub = command
            .split_whitespace()
            .skip_while(|w| !w.ends_with("git"))
            .nth(1)
            .unwrap_or_default();
        if matches!(sub, "diff" | "log" | "show" | "status" | "blame" | "grep") {
            return Effect::Read;
        }
    }
    Effect::Other
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl TrajectoryTracker {
    /// A tracker for a run that has just started.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one output line, `elapsed` after the run started.
    pub fn observe(&mut self, line: &str, elapsed: Duration) {
        let trimmed = line.trim_start();
        if trimmed.starts_with('{') {
            if let Ok(event) = serde_json::from_str::<Value>(trimmed) {
                self.event(&event, elapsed);
            }
            return;
        }
        if let Some(rest) = trimmed.strip_prefix("tool call ") {
            let (name, args) = rest.split_once(": ").unwrap_or((rest, ""));
            let command = serde_json::from_str::<Value>(args)
                .ok()
                .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_owned));
            self.call(name, command.as_deref(), elapsed);
        } else if let Some(rest) = trimmed.strip_prefix("tool result ") {
            let result = rest.split_once(": ").map_or("", |(_, r)| r);
            if result.to_ascii_lowercase().starts_with("error") {
                self.errors += 1;
            }
        }
    }

    /// The signature so far.
    pub fn finish(&self) -> Trajectory {
        Trajectory {
            tool_calls: self.calls,
            tools: self.tools.iter().cloned().collect(),
            reads_before_first_write: self.reads,
            tool_errors: self.errors,
            time_to_first_edit_ms: self
                .first_edit
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    fn call(&mut self, tool: &str, command: Option<&str>, elapsed: Duration) {
        if tool.is_empty() {
            return;
        }
        self.calls = self.calls.saturating_add(1);
        self.tools.insert(tool.to_owned());
        match effect(tool, command) {
            Effect::Read if !self.wrote => self.reads = self.reads.saturating_add(1),
            Effect::Write if !self.wrote => {
                self.wrote = true;
                self.first_edit = Some(elapsed);
            }
            _ => {}
        }
    }

    fn event(&mut self, event: &Value, elapsed: Duration) {
        match str_at(event, "type") {
            "assistant" | "user" => {
                let parts = event
                    .pointer("/message/content")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for part in parts {
                    match str_at(part, "type") {
                        "tool_use" => {
                            let input = part.get("input").unwrap_or(&Value::Null);
                            let command = input.get("command").and_then(Value::as_str);
                            self.call(str_at(part, "name"), command, elapsed);
                        }
                        "tool_result"
                            if part.get("is_error").and_then(Value::as_bool) == Some(true) =>
                        {
                            self.errors = self.errors.saturating_add(1);
                        }
                        _ => {}
                    }
                }
            }
            "item.completed" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                match str_at(item, "type") {
                    "command_execution" => {
                        self.call("shell", Some(str_at(item, "command")), elapsed);
                        let failed = item
                            .get("exit_code")
                            .and_then(Value::as_i64)
                            .is_some_and(|c| c != 0);
                        if failed {
                            self.errors = self.errors.saturating_add(1);
                        }
                    }
                    "mcp_tool_call" => {
                        self.call(str_at(item, "tool"), None, elapsed);
                        if str_at(item, "status") == "failed" {
                            self.errors = self.errors.saturating_add(1);
                        }
                    }
                    "file_change" => self.call("file change", None, elapsed),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn claude_tool(name: &str, input: &Value) -> String {
        json!({"type": "assistant", "message": {"content": [
            {"type": "tool_use", "id": "t", "name": name, "input": input}
        ]}})
        .to_string()
    }

    #[test]
    fn claude_code_tool_calls_reads_edits_and_errors() {
        let mut t = TrajectoryTracker::new();
        let ms = Duration::from_millis;
        t.observe(r#"{"type":"system","subtype":"init"}"#, ms(1));
        t.observe(&claude_tool("Read", &json!({"file_path": "a.rs"})), ms(100));
        t.observe(
            &claude_tool("Bash", &json!({"command": "git diff HEAD"})),
            ms(200),
        );
        t.observe(
            &claude_tool("Bash", &json!({"command": "cargo test"})),
            ms(300),
        );
        t.observe(
            &json!({"type": "user", "message": {"content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "1 failed", "is_error": true}
            ]}})
            .to_string(),
            ms(400),
        );
        t.observe(
            &claude_tool("Edit", &json!({"file_path": "a.rs"})),
            ms(1_500),
        );
        t.observe(
            &claude_tool("Read", &json!({"file_path": "b.rs"})),
            ms(1_600),
        );
        t.observe("plain text is ignored", ms(1_700));
        let sig = t.finish();
        assert_eq!(sig.tool_calls, 5);
        assert_eq!(sig.tools, vec!["Bash", "Edit", "Read"]);
        assert_eq!(sig.distinct_tools(), 3);
        assert_eq!(sig.reads_before_first_write, 2, "Read and git diff");
        assert_eq!(sig.tool_errors, 1);
        assert_eq!(sig.time_to_first_edit_ms, Some(1_500));
    }

    #[test]
    fn codex_items_and_openai_compat_lines() {
        let mut t = TrajectoryTracker::new();
        let ms = Duration::from_millis;
        let item = |item: Value| json!({"type": "item.completed", "item": item}).to_string();
        t.observe(
            &json!({"type": "item.started", "item": {"type": "command_execution", "command": "ls"}})
                .to_string(),
            ms(5),
        );
        t.observe(
            &item(json!({"type": "command_execution", "command": "bash -lc 'cat README.md'", "exit_code": 0})),
            ms(10),
        );
        t.observe(
            &item(json!({"type": "command_execution", "command": "make", "exit_code": 2})),
            ms(20),
        );
        t.observe(&item(json!({"type": "file_change", "changes": []})), ms(30));
        let sig = t.finish();
        assert_eq!(sig.tool_calls, 3, "started items are not counted twice");
        assert_eq!(sig.reads_before_first_write, 1);
        assert_eq!(sig.tool_errors, 1);
        assert_eq!(sig.time_to_first_edit_ms, Some(30));

        let mut t = TrajectoryTracker::new();
        t.observe(
            r#"tool call run_command: {"command":"grep -r login src"}"#,
            ms(1),
        );
        t.observe("tool result run_command: error: exit status 1", ms(2));
        t.observe(r#"tool call write_file: {"path":"x"}"#, ms(3));
        let sig = t.finish();
        assert_eq!(sig.tool_calls, 2);
        assert_eq!(sig.tools, vec!["run_command", "write_file"]);
        assert_eq!(sig.reads_before_first_write, 1);
        assert_eq!(sig.tool_errors, 1);
        assert_eq!(sig.time_to_first_edit_ms, Some(3));
    }

    #[test]
    fn output_without_tools_has_an_empty_signature() {
        let mut t = TrajectoryTracker::new();
        t.observe("simulated qa starts a task run", Duration::ZERO);
        t.observe("{not json", Duration::ZERO);
        assert_eq!(t.finish(), Trajectory::default());
    }

    proptest! {
        /// Whatever the lines, the counts stay consistent: distinct tools never exceed calls,
        /// reads before the first write never exceed calls, and a first edit implies a call.
        #[test]
        fn counts_are_consistent(lines in prop::collection::vec(
            prop_oneof![
                Just(claude_tool("Read", &json!({}))),
                Just(claude_tool("Edit", &json!({}))),
                Just(claude_tool("Bash", &json!({"command": "ls"}))),
                Just(r#"tool call run_command: {"command":"cat x"}"#.to_owned()),
                Just("tool result run_command: error".to_owned()),
                ".{0,30}",
            ],
            0..40,
        )) {
            let mut t = TrajectoryTracker::new();
            for (i, line) in lines.iter().enumerate() {
                t.observe(line, Duration::from_millis(i as u64));
            }
            let sig = t.finish();
            prop_assert!(sig.tools.len() as u32 <= sig.tool_calls);
            prop_assert!(sig.reads_before_first_write <= sig.tool_calls);
            prop_assert!(sig.time_to_first_edit_ms.is_none() || sig.tool_calls > 0);
        }
    }
}
