//! Incoming webhooks (SPEC §11.3), the pure parts: the HMAC-SHA256 signature, the per-source
//! rate limit, and the payload shapes (generic and GitHub).
//!
//! The handler (`api/webhooks_in.rs`) calls these in the documented order: body size, then
//! [`verify`] over the raw bytes, then [`SourceLimiter::take`], then the delivery id, and only
//! then one of the parsers. Nothing here does IO or reads the clock.

use std::collections::HashMap;
use std::time::Instant;

use hmac::{Hmac, KeyInit, Mac};
use mesa_core::NewIssue;
use mesa_core::domain::{IssueKey, IssueType, Markdown, Priority, Stages, Title, ValidationError};
use serde_json::{Map, Value};
use sha2::Sha256;

/// The largest body accepted: 1 MiB.
pub const MAX_BODY: usize = 1024 * 1024;
/// Headers that may carry the signature `sha256=<hex>`, in the order they are looked at.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-hub-signature-256", "x-mesa-signature-256"];
/// Headers that may carry the sender's delivery id, in the order they are looked at.
pub const DELIVERY_HEADERS: [&str; 2] = ["x-github-delivery", "x-mesa-delivery"];
/// The header naming a GitHub event.
pub const GITHUB_EVENT_HEADER: &str = "x-github-event";
/// The default of the setting `webhook_rate_limit_per_minute` (per source; 0 = off).
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;
/// The longest delivery id accepted.
pub const MAX_DELIVERY_ID: usize = 200;
/// The longest title kept from a GitHub issue (Mesa titles are 1..200 characters).
const MAX_TITLE_CHARS: usize = 200;

type HmacSha256 = Hmac<Sha256>;

/// The signature header value of `body` under `secret`: `sha256=<lowercase hex>`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (`sha256=<hex>`) is the signature of `body` under `secret`. The comparison
/// of the MACs is constant-time (`verify_slice`); a malformed header is simply not valid.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_mac) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A token bucket per source: `limit` deliveries at once, refilled at `limit` per minute.
#[derive(Debug, Default)]
pub struct SourceLimiter {
    buckets: HashMap<String, (f64, Instant)>,
}

/// Buckets kept before the full (idle) ones are dropped.
const MAX_BUCKETS: usize = 1_000;

impl SourceLimiter {
    /// Takes one delivery from `source`'s bucket, or says in how many whole seconds (at least
    /// 1) to retry. A `limit` of 0 means no limit.
    pub fn take(&mut self, source: &str, limit: u32, now: Instant) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let capacity = f64::from(limit);
        let per_sec = capacity / 60.0;
        if self.buckets.len() >= MAX_BUCKETS && !self.buckets.contains_key(source) {
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < capacity
            });
        }
        let (tokens, at) = self
            .buckets
            .entry(source.to_owned())
            .or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - *tokens) / per_sec;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "whole seconds, at least 1 and at most a minute (Retry-After has no fractions)"
        )]
        let secs = wait.ceil().max(1.0) as u64;
        Err(secs)
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Not JSON at all (400).
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not the expected shape (422 naming the field).
    #[error("{message}")]
    Invalid {
        /// The offending field (a dotted path for nested ones).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ShapeError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        ShapeError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<ValidationError> for ShapeError {
    fn from(e: ValidationError) -> Self {
        ShapeError::Invalid {
            field: e.field.to_string(),
            message: e.message,
        }
    }
}

/// A comment to post on a Mesa issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentInput {
    /// The issue.
    pub issue_key: IssueKey,
    /// The comment's Markdown (with a line naming the author at the sender).
    pub body: String,
}

/// What a GitHub delivery asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum GithubEvent {
    /// `ping` (sent when the webhook is created): answered 200, nothing else.
    Ping,
    /// `issues` with action `opened`: a new Mesa issue, linked to `url`.
    IssueOpened {
        /// The GitHub issue's `html_url` (the link back).
        url: String,
        /// The issue to create.
        issue: Box<NewIssue>,
    },
    /// `issue_comment` with action `created`: a comment on the Mesa issue linked to `issue_url`.
    Comment {
        /// The GitHub issue's `html_url`.
        issue_url: String,
        /// The comment's Markdown.
        body: String,
    },
    /// Anything else: acknowledged (202) and recorded with this reason.
    Ignored(String),
}

fn parse_json(body: &[u8]) -> Result<Value, ShapeError> {
    serde_json::from_slice(body).map_err(|e| ShapeError::NotJson(e.to_string()))
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ShapeError> {
    v.as_object()
        .ok_or_else(|| ShapeError::invalid(field, format!("{field} must be a JSON object")))
}

/// Refuses keys outside `allowed`, naming the first.
fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ShapeError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ShapeError::invalid(
            k,
            format!("unknown field {k:?}; expected {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The string at `pointer` (`/a/b`), named `field` (`a.b`) in errors; `None` if absent or null.
fn opt_str<'a>(v: &'a Value, pointer: &str, field: &str) -> Result<Option<&'a str>, ShapeError> {
    match v.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ShapeError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

fn req_str<'a>(v: &'a Value, pointer: &str, field: &str) -> Result<&'a str, ShapeError> {
    opt_str(v, pointer, field)?
        .ok_or_else(|| ShapeError::invalid(field, format!("{field} is required")))
}

/// The generic issue shape `{title, description?, type?, priority?}` (unknown fields refused).
pub fn parse_generic_issue(body: &[u8]) -> Result<NewIssue, ShapeError> {
    let v = parse_json(body)?;
    only_keys(
        object(&v, "body")?,
        &["title", "description", "type", "priority"],
    )?;
    let mut issue = NewIssue::titled("x").map_err(ShapeError::from)?;
    issue.title = Title::parse(req_str(&v, "/title", "title")?)?;
    issue.description = Markdown::parse(opt_str(&v, "/description", "description")?.unwrap_or(""))?;
    if let Some(t) = opt_str(&v, "/type", "type")? {
        issue.issue_type = IssueType::parse(t)?;
    }
    match v.get("priority") {
        None | Some(Value::Null) => {}
        Some(p) => {
            let n = p.as_i64().ok_or_else(|| {
                ShapeError::invalid("priority", "priority must be a whole number 0 to 4")
            })?;
            issue.priority = Priority::new(n)?;
        }
    }
    Ok(issue)
}

/// The generic comment shape `{issue_key, author?, body}` (unknown fields refused). The author,
/// when given, is named on the comment's first line.
pub fn parse_generic_comment(body: &[u8]) -> Result<CommentInput, ShapeError> {
    let v = parse_json(body)?;
    only_keys(object(&v, "body")?, &["issue_key", "author", "body"])?;
    let issue_key = IssueKey::parse_field("issue_key", req_str(&v, "/issue_key", "issue_key")?)?;
    let text = req_str(&v, "/body", "body")?;
    if text.trim().is_empty() {
        return Err(ShapeError::invalid("body", "body must not be empty"));
    }
    let body = match opt_str(&v, "/author", "author")?.map(str::trim) {
        Some(author) if !author.is_empty() => {
            format!("_{} wrote:_\n\n{text}", one_line(author, 100))
        }
        _ => text.to_owned(),
    };
    Ok(CommentInput { issue_key, body })
}

/// A GitHub delivery of `event` (the `X-GitHub-Event` header). Only `issues`/`opened` and
/// `issue_comment`/`created` act; `ping` is acknowledged; the rest is [`GithubEvent::Ignored`].
pub fn parse_github(event: &str, body: &[u8]) -> Result<GithubEvent, ShapeError> {
    let v = parse_json(body)?;
    object(&v, "body")?;
    match event {
        "ping" => Ok(GithubEvent::Ping),
        "issues" => {
            let action = req_str(&v, "/action", "action")?;
            if action != "opened" {
                return Ok(GithubEvent::Ignored(format!("issues action {action:?}")));
            }
            github_issue(&v)
        }
        "issue_comment" => {
            let action = req_str(&v, "/action", "action")?;
            if action != "created" {
                return Ok(GithubEvent::Ignored(format!(
                    "issue_comment action {action:?}"
                )));
            }
            let issue_url = req_str(&v, "/issue/html_url", "issue.html_url")?.to_owned();
            let text = req_str(&v, "/comment/body", "comment.body")?;
            let login = opt_str(&v, "/comment/user/login", "comment.user.login")?.unwrap_or("?");
            let link = opt_str(&v, "/comment/html_url", "comment.html_url")?.unwrap_or(&issue_url);
            let body = format!(
                "_@{} commented on GitHub ({link}):_\n\n{text}",
                one_line(login, 100)
            );
            Ok(GithubEvent::Comment { issue_url, body })
        }
        other => Ok(GithubEvent::Ignored(format!("event {other:?}"))),
    }
}

/// `issues`/`opened`: title (cut to 200 characters), the body as description with a line
/// linking back, type `bug` when the issue carries a label named `bug`.
fn github_issue(v: &Value) -> Result<GithubEvent, ShapeError> {
    let url = req_str(v, "/issue/html_url", "issue.html_url")?.to_owned();
    if !url.starts_with("https://") && !url.starts_with("http://") {
        return Err(ShapeError::invalid(
            "issue.html_url",
            "issue.html_url must be an http(s) URL",
        ));
    }
    let title = one_line(req_str(v, "/issue/title", "issue.title")?, MAX_TITLE_CHARS);
    let text = opt_str(v, "/issue/body", "issue.body")?.unwrap_or("");
    let login = opt_str(v, "/issue/user/login", "issue.user.login")?.unwrap_or("?");
    let footer = format!(
        "\n\n---\nOpened on GitHub by @{}: {url}",
        one_line(login, 100)
    );
    let keep = mesa_core::domain::MAX_BODY_BYTES.saturating_sub(footer.len());
    let description = format!("{}{footer}", cut_bytes(text.trim(), keep));
    let is_bug = v
        .pointer("/issue/labels")
        .and_then(Value::as_array)
        .is_some_and(|labels| {
            labels
                .iter()
                .any(|l| l.get("name").and_then(Value::as_str) == Some("bug"))
        });
    let issue = NewIssue {
        title: Title::parse_field("issue.title", &title)?,
        description: Markdown::parse_field("issue.body", &description)?,
        issue_type: if is_bug {
            IssueType::Bug
        } else {
            IssueType::Task
        },
        priority: Priority::NONE,
        assignee: None,
        parent_key: None,
        labels: Vec::new(),
        work_block_id: None,
        stages: Stages::empty(),
    };
    Ok(GithubEvent::IssueOpened {
        url,
        issue: Box::new(issue),
    })
}

/// `text` on one line (line breaks become spaces), at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests;
