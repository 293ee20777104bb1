//! Settings (SPEC §1 Setting, §11.5): a typed view over the key/value rows, cached in memory.

use std::collections::BTreeMap;

use mesa_domain::entity::Setting;
use mesa_domain::{Actor, IssuePrefix, ValidationError, parse_setting_key};
use mesa_store::Store;

use crate::error::Result;
use crate::mesa::Mesa;

/// The feature flags of SPEC §11.5.
pub const FEATURE_FLAGS: &[&str] = &[
    "telegram",
    "discord",
    "webhooks_out",
    "run_evaluation",
    "memory",
    "mcp",
];

/// Keys whose values are secrets: write-only through the API (SPEC §14).
const SECRET_KEYS: &[&str] = &[
    "telegram_bot_token",
    "discord_webhook_url",
    "github_token",
    "judge_api_key",
];

/// Prefix of the secret of an incoming-webhook source (`webhook_secret_<source>`, SPEC §11.3).
pub const WEBHOOK_SECRET_PREFIX: &str = "webhook_secret_";

/// Whether `key` holds a secret: one of [`SECRET_KEYS`] or an incoming webhook's secret.
fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key) || key.starts_with(WEBHOOK_SECRET_PREFIX)
}

/// Whether `name` may name an incoming-webhook source: `[a-z0-9_]{1,40}` (no `-`: the name is
/// part of the setting key `webhook_secret_<source>`, and setting keys are `[a-z0-9_]`).
pub fn is_webhook_source(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every setting, with typed accessors for the ones the core uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, Setting>,
}

impl Settings {
    pub(crate) async fn load(store: &dyn Store) -> Result<Self> {
        let values = store
            .settings()
            .await?
            .into_iter()
            .map(|s| (s.key.clone(), s))
            .collect();
        Ok(Settings { values })
    }

    /// A raw value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|s| s.value.as_str())
    }

    /// Every setting row (secret values included: front ends must hide them).
    pub fn all(&self) -> impl Iterator<Item = &Setting> {
        self.values.values()
    }

    /// The issue key prefix (default `MESA`).
    pub fn issue_prefix(&self) -> IssuePrefix {
        self.get("issue_prefix")
            .and_then(|p| IssuePrefix::parse(p).ok())
            .unwrap_or_else(IssuePrefix::default_prefix)
    }

    /// The instance's display name.
    pub fn instance_name(&self) -> &str {
        self.get("instance_name").unwrap_or("Mesa")
    }

    /// Whether top-level results always go to the board (SPEC §2), default off.
    pub fn board_reviews_top_level(&self) -> bool {
        self.flag("board_reviews_top_level")
    }

    /// A boolean setting; anything but `true` is false.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("true")
    }

    /// Whether feature `name` is on (`feature_<name>`).
    pub fn feature(&self, name: &str) -> bool {
        self.flag(&format!("feature_{name}"))
    }

    /// Minutes east of UTC where the budget day starts (`budget_timezone` as `+02:00`), 0 = UTC.
    pub fn budget_offset_minutes(&self) -> i32 {
        self.get("budget_timezone")
            .and_then(parse_offset)
            .unwrap_or(0)
    }

    /// The runaway guard limit (SPEC §2), default 8.
    pub fn max_runs_per_issue(&self, default: u32) -> u32 {
        self.get("max_runs_per_issue")
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

fn parse_offset(text: &str) -> Option<i32> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Some(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=14).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

/// Checks a setting before it is stored, naming the key on error.
fn validate(key: &str, value: &str) -> Result<(), ValidationError> {
    let bad = |msg: String| ValidationError::new(key.to_owned(), msg);
    match key {
        "issue_prefix" => IssuePrefix::parse(value)
            .map(|_| ())
            .map_err(|e| bad(e.message)),
        "budget_timezone" => parse_offset(value)
            .map(|_| ())
            .ok_or_else(|| bad(format!("{key} must be UTC or an offset such as +02:00"))),
        "judge_base_url" | "telegram_base_url" => {
            let v = value.trim();
            if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
                Ok(())
            } else {
                Err(bad(format!(
                    "{key} must be an http:// or https:// URL (or empty)"
                )))
            }
        }
        "notify_daily_hour" => match value.trim() {
            "" => Ok(()),
            v => v
                .parse::<u32>()
                .ok()
                .filter(|h| *h < 24)
                .map(|_| ())
                .ok_or_else(|| bad(format!("{key} must be an hour from 0 to 23 (or empty)"))),
        },
        "outbox_retry_base_ms" | "outbox_max_attempts" => value
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=3_600_000).contains(n))
            .map(|_| ())
            .ok_or_else(|| bad(format!("{key} must be a whole number from 1 to 3600000"))),
        "discord_webhook_url" => {
            let v = value.trim();
            if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
                Ok(())
            } else {
                Err(bad(format!(
                    "{key} must be an http:// or https:// URL (or empty)"
                )))
            }
        }
        "max_runs_per_issue"
        | "rate_limit_per_minute"
        | "max_runs_per_hour"
        | "webhook_rate_limit_per_minute" => value
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| bad(format!("{key} must be a whole number"))),
        k if k.starts_with("feature_") || k == "board_reviews_top_level" => {
            if k.starts_with("feature_") && !FEATURE_FLAGS.contains(&&k["feature_".len()..]) {
                return Err(bad(format!(
                    "{key} is not a feature flag; flags are {}",
                    FEATURE_FLAGS.join(", ")
                )));
            }
            match value {
                "true" | "false" => Ok(()),
                _ => Err(bad(format!("{key} must be true or false"))),
            }
        }
        k if k.starts_with(WEBHOOK_SECRET_PREFIX) || k.starts_with("webhook_shape_") => {
            validate_webhook_source(key, value)
        }
        "github_api_url" => {
            let v = value.trim();
            if v.is_empty() || v.starts_with("http://") || v.starts_with("https://") {
                Ok(())
            } else {
                Err(bad(format!(
                    "{key} must be an http:// or https:// URL (or empty)"
                )))
            }
        }
        "github_repo" => {
            let v = value.trim();
            let ok = v.is_empty()
                || v.split_once('/').is_some_and(|(owner, name)| {
                    let part = |p: &str| {
                        !p.is_empty()
                            && p.len() <= 100
                            && p.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                            })
                    };
                    part(owner) && part(name)
                });
            if ok {
                Ok(())
            } else {
                Err(bad(format!("{key} must be owner/name (or empty)")))
            }
        }
        "telegram_chat_ids" | "telegram_chat_id" | "telegram_user_ids" => {
            validate_telegram_list(key, value)
        }
        _ if value.len() > 8192 => Err(bad(format!("{key} must be at most 8 KiB"))),
        _ => Ok(()),
    }
}

/// `webhook_secret_<source>` and `webhook_shape_<source>` (SPEC §11.3): the source must be a
/// valid name; a shape is `generic` or `github` (or empty).
fn validate_webhook_source(key: &str, value: &str) -> Result<(), ValidationError> {
    let bad = |msg: String| ValidationError::new(key.to_owned(), msg);
    let (source, shape) = match key.strip_prefix(WEBHOOK_SECRET_PREFIX) {
        Some(source) => (source, false),
        None => (key.trim_start_matches("webhook_shape_"), true),
    };
    if !is_webhook_source(source) {
        return Err(bad(format!(
            "{key}: a webhook source is 1 to 40 of a-z, 0-9 and _"
        )));
    }
    if shape && !matches!(value.trim(), "" | "generic" | "github") {
        return Err(bad(format!("{key} must be generic or github")));
    }
    if value.len() > 1024 {
        return Err(bad(format!("{key} must be at most 1 KiB")));
    }
    Ok(())
}

/// `telegram_chat_ids` (integers, groups are negative) and `telegram_user_ids` (integers or
/// `@username`), separated by commas or spaces (SPEC §11.1).
fn validate_telegram_list(key: &str, value: &str) -> Result<(), ValidationError> {
    let users = key == "telegram_user_ids";
    let valid = |entry: &str| match entry.strip_prefix('@') {
        Some(name) => {
            users
                && (1..=32).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        None => entry.parse::<i64>().is_ok(),
    };
    let bad = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .find(|e| !valid(e));
    match bad {
        None if value.len() <= 8192 => Ok(()),
        None => Err(ValidationError::new(
            key.to_owned(),
            format!("{key} must be at most 8 KiB"),
        )),
        Some(entry) => Err(ValidationError::new(
            key.to_owned(),
            if users {
                format!("{key}: {entry:?} is neither a user id nor an @username")
            } else {
                format!("{key}: {entry:?} is not a chat id (an integer)")
            },
        )),
    }
}

impl Mesa {
    /// The current settings.
    pub async fn settings(&self) -> Settings {
        self.inner.settings.read().await.clone()
    }

    /// One setting's current value, without copying the others (for per-request reads).
    pub async fn setting_value(&self, key: &str) -> Option<String> {
        self.inner.settings.read().await.get(key).map(str::to_owned)
    }

    /// Sets several settings at once (board only), validated, in one transaction.
    pub async fn put_settings(
        &self,
        actor: &Actor,
        values: &[(String, String)],
    ) -> Result<Settings> {
        Self::require_board(actor, "change settings")?;
        let now = self.now();
        let mut rows = Vec::with_capacity(values.len());
        let mut keys = Vec::with_capacity(values.len());
        for (key, value) in values {
            let key = parse_setting_key(key)?;
            validate(&key, value)?;
            keys.push(key.clone());
            rows.push(Setting {
                secret: is_secret_key(&key),
                key,
                value: value.trim().to_owned(),
                updated_at: now,
            });
        }
        let shown: Vec<serde_json::Value> = rows
            .iter()
            .map(|s| {
                if s.secret {
                    serde_json::json!({"key": s.key, "value": "[secret]"})
                } else {
                    serde_json::json!({"key": s.key, "value": s.value})
                }
            })
            .collect();
        let activity = self.activity(
            actor,
            "settings.updated",
            "settings",
            keys.join(","),
            format!("settings changed: {}", keys.join(", ")),
            serde_json::json!({ "settings": shown }),
        );
        let mut cache = self.inner.settings.write().await;
        self.inner.store.put_settings(rows, vec![activity]).await?;
        *cache = Settings::load(self.inner.store.as_ref()).await?;
        Ok(cache.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+02:00"), Some(120));
        assert_eq!(parse_offset("-05:30"), Some(-330));
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("Europe/Paris"), None);
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(
            validate("issue_prefix", "mesa").unwrap_err().field,
            "issue_prefix"
        );
        assert_eq!(
            validate("feature_telegram", "yes").unwrap_err().field,
            "feature_telegram"
        );
        assert!(validate("feature_nope", "true").is_err());
        assert!(validate("feature_mcp", "true").is_ok());
        assert!(validate("notify_daily_hour", "8").is_ok());
        assert!(validate("notify_daily_hour", "").is_ok());
        assert_eq!(
            validate("notify_daily_hour", "24").unwrap_err().field,
            "notify_daily_hour"
        );
        assert!(validate("outbox_retry_base_ms", "0").is_err());
        assert!(validate("outbox_max_attempts", "5").is_ok());
        assert!(validate("discord_webhook_url", "ftp://x").is_err());
    }

    #[test]
    fn webhook_settings() {
        assert!(is_secret_key("webhook_secret_github"));
        assert!(is_secret_key("github_token"));
        assert!(!is_secret_key("webhook_shape_github"));
        assert!(validate("webhook_secret_gh", "s3cret").is_ok());
        assert!(validate(&format!("webhook_secret_{}", "a".repeat(41)), "x").is_err());
        assert!(validate("webhook_shape_gh", "github").is_ok());
        assert!(validate("webhook_shape_gh", "gitlab").is_err());
        assert!(validate("webhook_rate_limit_per_minute", "ten").is_err());
        assert!(validate("github_repo", "acme/widgets").is_ok());
        assert!(validate("github_repo", "acme").is_err());
        assert!(validate("github_api_url", "ftp://x").is_err());
        assert!(is_webhook_source("ci_2"));
        assert!(!is_webhook_source("Ci"));
        assert!(!is_webhook_source(""));
    }

    #[test]
    fn telegram_settings() {
        assert!(validate("telegram_chat_ids", "-100123, 42").is_ok());
        assert_eq!(
            validate("telegram_chat_ids", "42,@ana").unwrap_err().field,
            "telegram_chat_ids"
        );
        assert!(validate("telegram_user_ids", "42 @ana_b").is_ok());
        assert_eq!(
            validate("telegram_user_ids", "ana").unwrap_err().field,
            "telegram_user_ids"
        );
        assert!(validate("telegram_base_url", "http://127.0.0.1:9").is_ok());
        assert!(validate("telegram_base_url", "api.telegram.org").is_err());
    }
}
