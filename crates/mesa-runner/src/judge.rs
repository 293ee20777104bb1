//! The run-evaluation judge (SPEC §4.3): after a task run, one chat completion to an
//! OpenAI-compatible endpoint asks a model to grade the run against its issue, and its answer is
//! read as a [`Rubric`]. The judge sees the issue (title and description with its acceptance
//! criteria), the run's trajectory signature, its final text and its diff, each clipped; it is
//! asked for one JSON object and nothing else, and an answer that is not a valid rubric is an
//! error (never a guessed grade).

use std::time::Duration;

use mesa_domain::entity::TokenUsage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::openai_compat::wire::{Reply, request_body};

/// The most characters of each input part the judge is shown.
const PART_CAP: usize = 12_000;
/// The longest answer read, in bytes.
const MAX_REPLY_BYTES: usize = 256 * 1024;
/// How many missed criteria or unrequested changes are kept, and their longest text.
const LIST_CAP: usize = 20;
const ITEM_CAP: usize = 300;

/// Where the judge is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeEndpoint {
    /// Base URL; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model to ask (may be empty for servers with one model).
    pub model: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
}

/// What the judge is shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JudgeInput {
    /// The issue's key.
    pub issue_key: String,
    /// Its title.
    pub title: String,
    /// Its description (with the acceptance criteria).
    pub description: String,
    /// The run's trajectory signature, as JSON text.
    pub signature: String,
    /// The run's final text (the runner's result), if any.
    pub result: String,
    /// The run's diff, if any.
    pub diff: String,
}

/// How far a run strayed from what the issue asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScopeDrift {
    /// Stayed on the task.
    Low,
    /// Some work the issue did not ask for.
    Med,
    /// Mostly elsewhere.
    High,
}

/// The judge's grade of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rubric {
    /// How faithfully the run did what the issue asked, 0–1.
    pub fidelity: f64,
    /// How far it strayed.
    pub scope_drift: ScopeDrift,
    /// Acceptance criteria the run did not meet.
    pub missed_criteria: Vec<String>,
    /// Changes nobody asked for.
    pub unrequested_changes: Vec<String>,
    /// The judge's confidence in its grade, 0–1.
    pub confidence: f64,
}

/// Why the judge gave no rubric.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JudgeError {
    /// The endpoint could not be reached or answered with an error status.
    #[error("the judge endpoint failed: {0}")]
    Endpoint(String),
    /// The answer was not a valid rubric.
    #[error("the judge's answer is not a valid rubric: {0}")]
    Answer(String),
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(PART_CAP) {
        Some((at, _)) => format!("{}\n[… clipped]", &text[..at]),
        None => text.to_owned(),
    }
}

/// The conversation sent to the judge.
pub fn messages(input: &JudgeInput) -> Vec<Value> {
    let system = "You grade the work of an AI agent on one issue of a software project. You \
        are shown the issue, how the agent went about it (its trajectory signature), its final \
        message and its diff. Answer with ONE JSON object and nothing else, with exactly these \
        fields: \"fidelity\" (number from 0 to 1: how faithfully the work does what the issue \
        asks), \"scope_drift\" (\"low\", \"med\" or \"high\": how much of the work is outside \
        the issue), \"missed_criteria\" (array of strings: acceptance criteria not met), \
        \"unrequested_changes\" (array of strings: changes nobody asked for), \"confidence\" \
        (number from 0 to 1: how sure you are).";
    let user = format!(
        "## Issue {key}: {title}\n\n{description}\n\n## Trajectory signature\n\n{signature}\n\n\
         ## The agent's final message\n\n{result}\n\n## The diff\n\n```diff\n{diff}\n```\n",
        key = input.issue_key,
        title = input.title,
        description = clip(&input.description),
        signature = input.signature,
        result = if input.result.trim().is_empty() {
            "(none)".to_owned()
        } else {
            clip(&input.result)
        },
        diff = if input.diff.trim().is_empty() {
            "(no changes)".to_owned()
        } else {
            clip(&input.diff)
        },
    );
    vec![
        json!({"role": "system", "content": system}),
        json!({"role": "user", "content": user}),
    ]
}

/// The first JSON object in `text` (the answer may wrap it in a code fence or a sentence).
fn first_object(text: &str) -> Option<Value> {
    let mut from = 0;
    while let Some(at) = text[from..].find('{') {
        let start = from + at;
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(v @ Value::Object(_))) = stream.next() {
            return Some(v);
        }
        from = start + 1;
    }
    None
}

fn unit(v: &Value, field: &str) -> Result<f64, JudgeError> {
    let x = v
        .get(field)
        .and_then(Value::as_f64)
        .ok_or_else(|| JudgeError::Answer(format!("{field} is missing or not a number")))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(JudgeError::Answer(format!(
            "{field} must be from 0 to 1, not {x}"
        )))
    }
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, JudgeError> {
    let list = match v.get(field) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(JudgeError::Answer(format!("{field} is not an array"))),
    };
    list.iter()
        .take(LIST_CAP)
        .map(|item| {
            item.as_str()
                .map(|s| s.chars().take(ITEM_CAP).collect())
                .ok_or_else(|| JudgeError::Answer(format!("{field} holds a non-string")))
        })
        .collect()
}

/// Reads a rubric from the judge's answer text.
pub fn parse_rubric(text: &str) -> Result<Rubric, JudgeError> {
    let v = first_object(text)
        .ok_or_else(|| JudgeError::Answer("no JSON object in the answer".to_owned()))?;
    let drift = match v.get("scope_drift").and_then(Value::as_str) {
        Some("low") => ScopeDrift::Low,
        Some("med" | "medium") => ScopeDrift::Med,
        Some("high") => ScopeDrift::High,
        _ => {
            return Err(JudgeError::Answer(
                "scope_drift must be low, med or high".to_owned(),
            ));
        }
    };
    Ok(Rubric {
        fidelity: unit(&v, "fidelity")?,
        scope_drift: drift,
        missed_criteria: strings(&v, "missed_criteria")?,
        unrequested_changes: strings(&v, "unrequested_changes")?,
        confidence: unit(&v, "confidence")?,
    })
}

/// Asks the judge; the rubric and the tokens the call used.
pub async fn ask(
    endpoint: &JudgeEndpoint,
    input: &JudgeInput,
    timeout: Duration,
) -> Result<(Rubric, TokenUsage), JudgeError> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| JudgeError::Endpoint(e.to_string()))?;
    let url = format!(
        "{}/chat/completions",
        endpoint.base_url.trim_end_matches('/')
    );
    let body = request_body(&endpoint.model, &messages(input), &[]);
    let mut request = client.post(&url).json(&body);
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| JudgeError::Endpoint(format!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| JudgeError::Endpoint(format!("reading the answer failed: {e}")))?
    {
        if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(JudgeError::Answer(format!(
                "the answer is larger than {MAX_REPLY_BYTES} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(JudgeError::Endpoint(format!("{url} answered {status}")));
    }
    let reply = Reply::parse(&bytes, 1).map_err(JudgeError::Answer)?;
    let text = reply
        .text
        .ok_or_else(|| JudgeError::Answer("the answer has no text".to_owned()))?;
    Ok((parse_rubric(&text)?, reply.usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_rubric_is_read_from_a_fenced_or_bare_answer() {
        let bare = r#"{"fidelity": 0.75, "scope_drift": "med", "missed_criteria": ["no test"],
                       "unrequested_changes": [], "confidence": 0.6}"#;
        let r = parse_rubric(bare).unwrap();
        assert_eq!(r.fidelity, 0.75);
        assert_eq!(r.scope_drift, ScopeDrift::Med);
        assert_eq!(r.missed_criteria, vec!["no test"]);
        assert!(r.unrequested_changes.is_empty());
        let fenced = format!("Here is my grade:\n```json\n{bare}\n```\nThanks.");
        assert_eq!(parse_rubric(&fenced).unwrap(), r);
        let braces_first = format!("A set {{like this}} then {bare}");
        assert_eq!(parse_rubric(&braces_first).unwrap(), r);
    }

    #[test]
    fn anything_but_a_valid_rubric_is_refused() {
        for (answer, why) in [
            ("I think it is fine.", "no JSON object"),
            (
                r#"{"fidelity": 1.5, "scope_drift": "low", "confidence": 1}"#,
                "fidelity must",
            ),
            (
                r#"{"fidelity": 0.5, "scope_drift": "sideways", "confidence": 1}"#,
                "scope_drift",
            ),
            (
                r#"{"fidelity": "high", "scope_drift": "low", "confidence": 1}"#,
                "fidelity is",
            ),
            (
                r#"{"fidelity": 0.5, "scope_drift": "low"}"#,
                "confidence is",
            ),
            (
                r#"{"fidelity": 0.5, "scope_drift": "low", "confidence": 1, "missed_criteria": "x"}"#,
                "not an array",
            ),
        ] {
            let err = parse_rubric(answer).unwrap_err().to_string();
            assert!(err.contains(why), "{answer}: {err}");
        }
    }

    #[test]
    fn the_judge_is_shown_the_issue_the_signature_the_result_and_the_diff() {
        let input = JudgeInput {
            issue_key: "MESA-7".into(),
            title: "Add login".into(),
            description: "## Acceptance Criteria\n- a login form".into(),
            signature: r#"{"tool_calls":3}"#.into(),
            result: "Done.".into(),
            diff: "+fn login() {}".into(),
        };
        let m = messages(&input);
        assert_eq!(m[0]["role"], "system");
        let user = m[1]["content"].as_str().unwrap();
        for part in [
            "MESA-7: Add login",
            "a login form",
            r#"{"tool_calls":3}"#,
            "Done.",
            "+fn login() {}",
        ] {
            assert!(user.contains(part), "{part} in {user}");
        }
        let long = JudgeInput {
            diff: "x".repeat(PART_CAP + 50),
            ..input
        };
        let user = messages(&long)[1]["content"].as_str().unwrap().to_owned();
        assert!(user.contains("[… clipped]"));
    }

    proptest! {
        /// Whatever the model answers, parsing never panics, and an accepted rubric is in range.
        #[test]
        fn parsing_any_answer_is_safe(answer in ".{0,200}", fidelity in -1.0f64..2.0) {
            if let Ok(r) = parse_rubric(&answer) {
                prop_assert!((0.0..=1.0).contains(&r.fidelity));
            }
            let text = format!(r#"{{"fidelity": {fidelity}, "scope_drift": "low", "confidence": 0.5}}"#);
            match parse_rubric(&text) {
                Ok(r) => prop_assert!((0.0..=1.0).contains(&r.fidelity)),
                Err(_) => prop_assert!(!(0.0..=1.0).contains(&fidelity)),
            }
        }
    }
}
