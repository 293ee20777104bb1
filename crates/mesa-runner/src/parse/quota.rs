//! Recognizing provider quota and rate-limit errors and their reset times (SPEC §6.5).
//!
//! Parsers feed only error-bearing text here (error events, error results, stderr), never the
//! agent's own output: an agent that greps code for "rate limit" is not rate-limited.

use std::sync::LazyLock;
use std::time::Duration;

use mesa_domain::Timestamp;
use regex::Regex;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, Time};

use crate::QuotaHit;

/// Words providers and CLIs use for quota, rate-limit and overload errors.
static WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)usage limit|limit reached|rate[ _-]?limit|too many requests|overloaded|quota|resource[ _]exhausted|(?:status|error|code|http|rejected)[^0-9\n]{0,24}\b(?:429|529)\b|\((?:429|529)\)",
    )
    .expect("valid regex")
});

/// Claude Code's `Claude AI usage limit reached|<epoch seconds>`.
static EPOCH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)limit reached\|(\d{9,13})").expect("valid regex"));

/// `resets at 2026-11-25T14:00:00Z`, `try again at 2026-11-25 14:00 UTC`.
static AT_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:resets?|try again|retry)\s*(?:at|on|after)?\s*:?\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|UTC|[+-]\d{2}:?\d{2})?",
    )
    .expect("valid regex")
});

/// `resets at 3pm (UTC)`, `try again at 14:30 UTC`: a time of day is only trusted in UTC.
static AT_CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:resets?|try again|retry)\s*(?:at)?\s*(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\s*\(?UTC\b",
    )
    .expect("valid regex")
});

/// `try again in 20s`, `retry after 30 seconds`, `reset after 2h30m15s`, `try again in 1 hour
/// and 5 minutes`.
static AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:try again|retry|retrying|wait|resets?)\s*(?:after|in)\s*:?\s*((?:\d+(?:\.\d+)?\s*(?:milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)(?:\s*,?\s*(?:and\s+)?)?)+)",
    )
    .expect("valid regex")
});

/// One amount and unit of a relative time.
static PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\d+(?:\.\d+)?)\s*(milliseconds?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d)")
        .expect("valid regex")
});

/// `Retry-After: 30` echoed from a response, or Google's `"retryDelay": "21s"`.
static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)retry[-_ ]?after"?\s*[:=]\s*"?(\d+(?:\.\d+)?)\b|"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s""#)
        .expect("valid regex")
});

/// When the provider said the limit resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    At(Timestamp),
    After(Duration),
    /// A time of day in UTC, resolved to its next occurrence.
    Clock {
        hour: u8,
        minute: u8,
    },
}

/// Accumulates quota evidence from a run's error texts; resolved once the run ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuotaScan {
    hit: bool,
    reset: Option<Reset>,
}

impl QuotaScan {
    /// Looks at one error-bearing text. Returns whether it names a quota or rate limit.
    pub(crate) fn text(&mut self, text: &str) -> bool {
        let found = WORDS.is_match(text);
        self.hit |= found;
        if let Some(reset) = find_reset(text) {
            self.reset = Some(reset);
        }
        found
    }

    /// An HTTP status the CLI reported for a provider error.
    pub(crate) fn status(&mut self, code: i64) {
        if code == 429 || code == 529 {
            self.hit = true;
        }
    }

    /// Adds what `other` found; its reset time applies when this scan has none.
    pub(crate) fn merge(&mut self, other: &QuotaScan) {
        self.hit |= other.hit;
        if self.reset.is_none() {
            self.reset = other.reset;
        }
    }

    /// The hit, with its reset time resolved against `now`.
    pub(crate) fn resolve(&self, now: Timestamp) -> Option<QuotaHit> {
        self.hit.then(|| QuotaHit {
            retry_at: self.reset.map(|r| resolve(r, now)),
        })
    }
}

/// The quota or rate limit `text` names, if any, with the reset time it gives. For error texts
/// from outside the parsers (an HTTP error body, a message).
pub fn detect_quota(text: &str, now: Timestamp) -> Option<QuotaHit> {
    let mut scan = QuotaScan::default();
    scan.text(text);
    scan.resolve(now)
}

fn find_reset(text: &str) -> Option<Reset> {
    if let Some(c) = EPOCH.captures(text) {
        let n: i64 = c[1].parse().ok()?;
        let ms = if n >= 100_000_000_000 { n } else { n * 1000 };
        return Some(Reset::At(Timestamp::from_millis(ms)));
    }
    if let Some(at) = AT_DATE.captures(text).and_then(|c| date_time(&c)) {
        return Some(Reset::At(at));
    }
    if let Some(c) = AFTER.captures(text) {
        let total = PART
            .captures_iter(&c[1])
            .filter_map(|p| amount(&p[1], &p[2]))
            .fold(Duration::ZERO, |a, b| a.saturating_add(b));
        if !total.is_zero() {
            return Some(Reset::After(total));
        }
    }
    if let Some(c) = HEADER.captures(text) {
        let secs = c.get(1).or_else(|| c.get(2))?.as_str();
        return amount(secs, "s").map(Reset::After);
    }
    if let Some(c) = AT_CLOCK.captures(text) {
        return clock(&c);
    }
    None
}

fn date_time(c: &regex::Captures<'_>) -> Option<Timestamp> {
    let zone = match c.get(3).map(|m| m.as_str()) {
        None | Some("Z" | "z") => "Z".to_owned(),
        Some(z) if z.eq_ignore_ascii_case("utc") => "Z".to_owned(),
        Some(z) if z.len() == 5 => format!("{}:{}", &z[..3], &z[3..]),
        Some(z) => z.to_owned(),
    };
    let mut hms = c[2].to_owned();
    if hms.len() == 5 {
        hms.push_str(":00");
    }
    let text = format!("{}T{hms}{zone}", &c[1]);
    OffsetDateTime::parse(&text, &Rfc3339)
        .ok()
        .map(Timestamp::from_offset_datetime)
}

fn clock(c: &regex::Captures<'_>) -> Option<Reset> {
    let mut hour: u8 = c[1].parse().ok()?;
    let minute: u8 = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
    match c.get(3).map(|m| m.as_str().to_ascii_lowercase()).as_deref() {
        Some("pm") if hour < 12 => hour += 12,
        Some("am") if hour == 12 => hour = 0,
        _ => {}
    }
    (hour < 24 && minute < 60).then_some(Reset::Clock { hour, minute })
}

fn amount(number: &str, unit: &str) -> Option<Duration> {
    let n: f64 = number.parse().ok()?;
    let unit = unit.to_ascii_lowercase();
    let secs = if unit.starts_with("ms") || unit.starts_with("milli") {
        n / 1000.0
    } else if unit.starts_with('s') {
        n
    } else if unit.starts_with('m') {
        n * 60.0
    } else if unit.starts_with('h') {
        n * 3600.0
    } else {
        n * 86_400.0
    };
    // Nobody resets in more than a year; a bigger figure is not a reset time.
    (secs.is_finite() && secs > 0.0 && secs < 366.0 * 86_400.0)
        .then(|| Duration::from_secs_f64(secs))
}

fn resolve(reset: Reset, now: Timestamp) -> Timestamp {
    match reset {
        Reset::At(at) => at,
        Reset::After(d) => now + d,
        Reset::Clock { hour, minute } => {
            let now_t = now.to_offset_datetime();
            let time = Time::from_hms(hour, minute, 0).unwrap_or(Time::MIDNIGHT);
            let mut at = now_t.replace_time(time);
            if at <= now_t {
                at += time::Duration::DAY;
            }
            Timestamp::from_offset_datetime(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("now", "2026-11-25T10:00:00Z").expect("time")
    }

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339("t", text).expect("time")
    }

    fn check(text: &str, expected: Option<Option<&str>>) {
        let got = detect_quota(text, now());
        let expected = expected.map(|retry| QuotaHit {
            retry_at: retry.map(at),
        });
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn quota_texts_and_their_reset_times() {
        check(
            "Claude AI usage limit reached|1795608000",
            Some(Some("2026-11-25T12:00:00Z")),
        );
        check(
            "API Error: Request rejected (429) · rate limited",
            Some(None),
        );
        check(
            r#"API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Some(None),
        );
        check(
            "You've hit your usage limit. Try again in 2 hours 5 minutes.",
            Some(Some("2026-11-25T12:05:00Z")),
        );
        check(
            "Rate limit reached for gpt-5. Please try again in 20s.",
            Some(Some("2026-11-25T10:00:20Z")),
        );
        check(
            "429 Too Many Requests; retry after 90 seconds",
            Some(Some("2026-11-25T10:01:30Z")),
        );
        check(
            "Quota exceeded for quota metric 'Generate Content'. Please retry in 21.5s.",
            Some(Some("2026-11-25T10:00:21.500Z")),
        );
        check(
            "You have exhausted your capacity on this model. Your quota will reset after 2h30m15s.",
            Some(Some("2026-11-25T12:30:15Z")),
        );
        check(
            "5-hour usage limit reached, resets at 2026-11-25T15:00:00+01:00",
            Some(Some("2026-11-25T14:00:00Z")),
        );
        check(
            "usage limit reached; resets at 2026-11-26 09:30 UTC",
            Some(Some("2026-11-26T09:30:00Z")),
        );
        check(
            "weekly limit reached · resets 3pm (UTC)",
            Some(Some("2026-11-25T15:00:00Z")),
        );
        check(
            "limit reached · resets at 9am UTC",
            Some(Some("2026-11-26T09:00:00Z")),
        );
        check(
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"7s"}]}}"#,
            Some(Some("2026-11-25T10:00:07Z")),
        );
        check(
            "HTTP 429; Retry-After: 45",
            Some(Some("2026-11-25T10:00:45Z")),
        );
        check("insufficient_quota", Some(None));
    }

    #[test]
    fn ordinary_errors_are_not_quotas() {
        for text in [
            "error: file not found: src/main.rs",
            "thread 'main' panicked at src/lib.rs:429:5",
            "API Error: 500 Internal server error",
            "exit status 1",
            "the build failed with 3 errors",
        ] {
            check(text, None);
        }
    }

    #[test]
    fn a_reset_time_without_quota_words_is_not_a_hit() {
        let mut scan = QuotaScan::default();
        scan.text("connection reset; retrying in 5s");
        assert_eq!(scan.resolve(now()), None);
        // A later status makes it one, with the reset time seen.
        scan.status(429);
        assert_eq!(
            scan.resolve(now()),
            Some(QuotaHit {
                retry_at: Some(at("2026-11-25T10:00:05Z"))
            })
        );
    }

    #[test]
    fn absurd_durations_are_ignored() {
        check("rate limit: try again in 99999999 days", Some(None));
    }
}
