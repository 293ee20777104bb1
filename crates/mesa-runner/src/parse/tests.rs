//! The parsers on sample outputs (`tests/samples/<name>.stdout` and optional `.stderr`),
//! hand-written from each CLI's documented format, plus property tests.

use std::path::PathBuf;
use std::time::Duration;

use mesa_domain::entity::TokenUsage;
use mesa_domain::{MicroUsd, RunnerKind, Timestamp};
use proptest::prelude::*;

use super::*;

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("now", "2026-11-25T10:00:00Z").expect("time")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339("t", text).expect("time")
}

fn sample(name: &str, stream: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(format!("{name}.{stream}"));
    if stream == "stderr" && !path.exists() {
        return String::new();
    }
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Feeds a sample to the parser of `kind` line by line: stdout, then stderr.
fn parse_sample(kind: RunnerKind, name: &str) -> Parsed {
    let mut parser = parser_for(kind);
    for line in sample(name, "stdout").lines() {
        parser.line(Stream::Stdout, line);
    }
    for line in sample(name, "stderr").lines() {
        parser.line(Stream::Stderr, line);
    }
    parser.finish(now())
}

fn usage(input: i64, output: i64, cache_read: i64, cache_write: i64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
    }
}

fn quota_at(text: &str) -> Option<QuotaHit> {
    Some(QuotaHit {
        retry_at: Some(at(text)),
    })
}

#[test]
fn claude_success_takes_the_result_totals() {
    let text = "Checked out MESA-7, fixed the login redirect and posted the evidence. The rate \
                limit handling in auth.rs was left unchanged.";
    assert_eq!(
        parse_sample(RunnerKind::ClaudeCode, "claude_success"),
        Parsed {
            usage: usage(3000, 80, 1000, 500),
            cost_usd: Some(MicroUsd(12_375)),
            is_error: false,
            subtype: Some("success".to_owned()),
            error_message: None,
            num_turns: Some(2),
            result_text: Some(text.to_owned()),
            quota: None,
            model: Some("claude-sonnet-4-5".to_owned()),
        }
    );
}

#[test]
fn claude_provider_error_is_an_error_despite_subtype_success() {
    let text = "API Error: Request rejected (429) · Number of request tokens has exceeded your \
                per-minute rate limit. Please try again in 20s.";
    assert_eq!(
        parse_sample(RunnerKind::ClaudeCode, "claude_rate_limit"),
        Parsed {
            usage: TokenUsage::default(),
            cost_usd: Some(MicroUsd::ZERO),
            is_error: true,
            subtype: Some("success".to_owned()),
            error_message: Some(text.to_owned()),
            num_turns: Some(1),
            result_text: Some(text.to_owned()),
            quota: quota_at("2026-11-25T10:00:20Z"),
            model: Some("claude-sonnet-4-5".to_owned()),
        }
    );
}

#[test]
fn claude_usage_limit_carries_its_reset_epoch() {
    let parsed = parse_sample(RunnerKind::ClaudeCode, "claude_usage_limit");
    assert!(parsed.is_error);
    assert_eq!(parsed.quota, quota_at("2026-11-25T12:00:00Z"));
    assert_eq!(parsed.model.as_deref(), Some("claude-opus-4-5"));
}

#[test]
fn claude_max_turns_prefers_model_usage_and_ignores_recovered_retries() {
    // `usage` under-counts (sub-agents); `modelUsage` has every model. The 529 that was
    // retried is not why the run failed, and tool output mentioning 429 is not an error text.
    assert_eq!(
        parse_sample(RunnerKind::ClaudeCode, "claude_max_turns"),
        Parsed {
            usage: usage(5420, 1150, 0, 0),
            cost_usd: Some(MicroUsd(29_170)),
            is_error: true,
            subtype: Some("error_max_turns".to_owned()),
            error_message: None,
            num_turns: Some(4),
            result_text: None,
            quota: None,
            model: Some("claude-sonnet-4-5".to_owned()),
        }
    );
}

#[test]
fn claude_without_a_result_keeps_one_snapshot_per_message() {
    assert_eq!(
        parse_sample(RunnerKind::ClaudeCode, "claude_killed"),
        Parsed {
            usage: usage(1200, 42, 0, 100),
            result_text: Some("Running the slow suite.".to_owned()),
            model: Some("claude-sonnet-4-5".to_owned()),
            ..Parsed::default()
        }
    );
}

#[test]
fn codex_sums_every_turn_and_separates_cached_input() {
    assert_eq!(
        parse_sample(RunnerKind::Codex, "codex_success"),
        Parsed {
            usage: usage(1315, 1022, 54_448, 0),
            cost_usd: None,
            is_error: false,
            subtype: None,
            error_message: None,
            num_turns: Some(2),
            result_text: Some(
                "Implemented the parser; all 12 tests pass. Evidence posted on MESA-9.".to_owned()
            ),
            quota: None,
            model: None,
        }
    );
}

#[test]
fn codex_failed_turns_and_quotas() {
    let quota = parse_sample(RunnerKind::Codex, "codex_quota");
    assert!(quota.is_error);
    assert_eq!(
        quota.error_message.as_deref(),
        Some("Quota exceeded. Check your plan and billing details.")
    );
    assert_eq!(quota.quota, Some(QuotaHit { retry_at: None }));
    assert_eq!(quota.usage, TokenUsage::default());

    let limit = parse_sample(RunnerKind::Codex, "codex_usage_limit");
    assert!(limit.is_error);
    assert_eq!(limit.quota, quota_at("2026-11-25T11:30:00Z"));
}

#[test]
fn codex_errors_retried_away_are_forgotten() {
    assert_eq!(
        parse_sample(RunnerKind::Codex, "codex_recovered"),
        Parsed {
            usage: usage(5000, 50, 0, 0),
            num_turns: Some(1),
            result_text: Some("Done after a retry.".to_owned()),
            ..Parsed::default()
        }
    );
}

#[test]
fn gemini_takes_the_result_stats_and_the_text_after_the_last_tool() {
    assert_eq!(
        parse_sample(RunnerKind::Gemini, "gemini_success"),
        Parsed {
            // 16000 prompt tokens of which 12000 cached; 400 thinking tokens beyond the 760.
            usage: usage(4000, 1160, 12_000, 0),
            result_text: Some("Fixed the throttle test and posted evidence on MESA-11.".to_owned()),
            model: Some("gemini-2.5-pro".to_owned()),
            ..Parsed::default()
        }
    );
}

#[test]
fn gemini_error_result_with_a_quota() {
    let parsed = parse_sample(RunnerKind::Gemini, "gemini_quota");
    assert!(parsed.is_error);
    assert_eq!(
        parsed.error_message.as_deref(),
        Some(
            "[API Error: You have exhausted your capacity on this model. Your quota will reset \
             after 2h30m15s.]"
        )
    );
    assert_eq!(parsed.quota, quota_at("2026-11-25T12:30:15Z"));
}

#[test]
fn opencode_sums_step_tokens_and_cost() {
    assert_eq!(
        parse_sample(RunnerKind::Opencode, "opencode_success"),
        Parsed {
            usage: usage(3200, 290, 3200, 200),
            cost_usd: Some(MicroUsd(15_060)),
            num_turns: Some(2),
            result_text: Some("The project has a Cargo.toml and src/; MESA-13 is done.".to_owned()),
            ..Parsed::default()
        }
    );
}

#[test]
fn opencode_error_events_fail_the_run() {
    let parsed = parse_sample(RunnerKind::Opencode, "opencode_error");
    assert!(parsed.is_error);
    assert_eq!(
        parsed.error_message.as_deref(),
        Some("Rate limit exceeded: retry after 45 seconds")
    );
    assert_eq!(parsed.quota, quota_at("2026-11-25T10:00:45Z"));
}

#[test]
fn copilot_result_is_the_stdout_text() {
    let parsed = parse_sample(RunnerKind::Copilot, "copilot_success");
    assert_eq!(
        parsed,
        Parsed {
            result_text: Some(sample("copilot_success", "stdout").trim().to_owned()),
            ..Parsed::default()
        }
    );
    let quota = parse_sample(RunnerKind::Copilot, "copilot_quota");
    assert_eq!(quota.quota, quota_at("2026-12-01T00:00:00Z"));
    assert_eq!(quota.result_text, None);
}

#[test]
fn copilot_keeps_only_a_bounded_tail() {
    let mut parser = parser_for(RunnerKind::Copilot);
    for i in 0..10_000 {
        parser.line(Stream::Stdout, &format!("line {i}"));
    }
    let text = parser.finish(now()).result_text.expect("text");
    assert!(text.len() <= MAX_TEXT, "{}", text.len());
    assert!(text.ends_with("line 9999"));
    assert!(!text.contains("line 0\n"));
}

#[test]
fn command_protocol_adds_up_usage_and_sets_the_result() {
    assert_eq!(
        parse_sample(RunnerKind::Command, "command_protocol"),
        Parsed {
            usage: usage(2000, 500, 100, 0),
            cost_usd: Some(MicroUsd(7_000)),
            result_text: Some("done: 3 files changed".to_owned()),
            model: Some("my-model-v1".to_owned()),
            ..Parsed::default()
        }
    );
    assert_eq!(
        parse_sample(RunnerKind::Command, "command_failure"),
        Parsed {
            usage: usage(50, 5, 0, 0),
            is_error: true,
            error_message: Some("could not reach the build server".to_owned()),
            result_text: Some("could not reach the build server".to_owned()),
            model: Some("gpt-4o-mini".to_owned()),
            ..Parsed::default()
        }
    );
}

#[test]
fn garbage_types_are_ignored_not_fatal() {
    let mut parser = parser_for(RunnerKind::ClaudeCode);
    for line in [
        r#"{"type":"result","is_error":"yes","num_turns":-3,"total_cost_usd":"NaN","usage":[]}"#,
        r#"{"type":"assistant","message":{"content":"not a list","usage":null}}"#,
        r#"{"type":"system","subtype":"init","model":42}"#,
    ] {
        parser.line(Stream::Stdout, line);
    }
    let parsed = parser.finish(now());
    assert!(!parsed.is_error);
    assert_eq!(parsed.num_turns, Some(0));
    assert_eq!(parsed.cost_usd, None);
    assert_eq!(parsed.usage, TokenUsage::default());
}

/// The sample transcripts of the JSON parsers, and their runner.
const JSON_SAMPLES: &[(RunnerKind, &str)] = &[
    (RunnerKind::ClaudeCode, "claude_success"),
    (RunnerKind::ClaudeCode, "claude_rate_limit"),
    (RunnerKind::ClaudeCode, "claude_max_turns"),
    (RunnerKind::ClaudeCode, "claude_killed"),
    (RunnerKind::Codex, "codex_success"),
    (RunnerKind::Codex, "codex_usage_limit"),
    (RunnerKind::Codex, "codex_recovered"),
    (RunnerKind::Gemini, "gemini_success"),
    (RunnerKind::Gemini, "gemini_quota"),
    (RunnerKind::Opencode, "opencode_success"),
    (RunnerKind::Opencode, "opencode_error"),
    (RunnerKind::Command, "command_protocol"),
];

const KINDS: &[RunnerKind] = &[
    RunnerKind::ClaudeCode,
    RunnerKind::Codex,
    RunnerKind::Gemini,
    RunnerKind::Opencode,
    RunnerKind::Copilot,
    RunnerKind::Command,
];

/// Event types the parsers know, so random JSON reaches their code paths.
const TYPES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "result",
    "turn.completed",
    "turn.failed",
    "item.completed",
    "error",
    "init",
    "message",
    "tool_use",
    "tool_result",
    "step_finish",
    "text",
    "mesa.usage",
    "mesa.result",
];

/// Field names the parsers read.
const KEYS: &[&str] = &[
    "subtype",
    "model",
    "is_error",
    "result",
    "usage",
    "modelUsage",
    "total_cost_usd",
    "num_turns",
    "api_error_status",
    "errors",
    "message",
    "content",
    "id",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "costUSD",
    "item",
    "type",
    "text",
    "error",
    "status",
    "stats",
    "total_tokens",
    "cached",
    "input",
    "role",
    "delta",
    "severity",
    "part",
    "tokens",
    "cost",
    "cache",
    "read",
    "write",
    "data",
    "statusCode",
    "cost_usd",
    "error_status",
];

fn leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,40}".prop_map(serde_json::Value::from),
        "(rate limit|quota|usage limit reached\\|[0-9]{1,14}|try again in [0-9]{1,20}(s|m|h|d)|resets at [0-9:T-]{0,25}Z?)"
            .prop_map(serde_json::Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| ((*k).to_owned(), v)).collect(),
                )
            }),
        ]
    })
}

/// A line: arbitrary text, or a JSON object of a known type with random known fields.
fn any_line() -> impl Strategy<Value = String> {
    let event = (
        prop::sample::select(TYPES),
        prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..6),
    )
        .prop_map(|(ty, fields)| {
            let mut map = serde_json::Map::new();
            for (k, v) in fields {
                map.insert((*k).to_owned(), v);
            }
            map.insert("type".to_owned(), ty.into());
            serde_json::Value::Object(map).to_string()
        });
    prop_oneof![".{0,200}", event]
}

/// A line no parser treats as an event: plain text, broken JSON, or an unknown event type.
fn garbage_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^{]{0,120}",
        "\\{[a-z\":, ]{0,40}",
        "[a-z_.]{1,12}"
            .prop_map(|t| format!(r#"{{"type":"x-{t}","usage":{{"input_tokens":999}}}}"#)),
        Just(r#"{"no_type":true,"total_cost_usd":9.0}"#.to_owned()),
        Just("[1,2,3]".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_sequence_of_lines_makes_a_parser_panic(
        lines in prop::collection::vec((any::<bool>(), any_line()), 0..40),
    ) {
        for kind in KINDS {
            let mut parser = parser_for(*kind);
            for (stderr, line) in &lines {
                let stream = if *stderr { Stream::Stderr } else { Stream::Stdout };
                parser.line(stream, line);
            }
            let parsed = parser.finish(now());
            prop_assert!(parsed.usage.input_tokens >= 0 && parsed.usage.output_tokens >= 0);
            prop_assert!(parsed.cost_usd.is_none_or(|c| c.0 >= 0));
        }
    }

    #[test]
    fn garbage_between_events_changes_nothing(
        which in 0..JSON_SAMPLES.len(),
        garbage in prop::collection::vec((0usize..64, garbage_line()), 0..24),
    ) {
        let (kind, name) = JSON_SAMPLES[which];
        let clean = parse_sample(kind, name);
        let mut lines: Vec<String> = sample(name, "stdout").lines().map(str::to_owned).collect();
        for (pos, line) in garbage {
            let at = pos % (lines.len() + 1);
            lines.insert(at, line);
        }
        let mut parser = parser_for(kind);
        for line in &lines {
            parser.line(Stream::Stdout, line);
        }
        for line in sample(name, "stderr").lines() {
            parser.line(Stream::Stderr, line);
        }
        prop_assert_eq!(parser.finish(now()), clean);
    }
}

#[test]
fn reset_times_resolve_against_finish_time() {
    let mut parser = parser_for(RunnerKind::Codex);
    parser.line(
        Stream::Stdout,
        r#"{"type":"turn.failed","error":{"message":"Rate limit reached. Please try again in 1m30s."}}"#,
    );
    let later = now() + Duration::from_secs(600);
    let parsed = parser.finish(later);
    assert_eq!(parsed.quota, quota_at("2026-11-25T10:11:30Z"));
}
