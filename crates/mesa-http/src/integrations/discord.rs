//! Discord (SPEC §11.2): the sink of the `discord` channel, a `POST` of each notification to
//! the webhook URL of the secret setting `discord_webhook_url`, while `feature_discord` is on.
//!
//! The body is `{"content", "embeds": [{"title", "description", "url", "footer"}]}` within
//! Discord's limits: content ≤ 2000 characters, an embed's title ≤ 256, description ≤ 4096, and
//! an embed's title, description and footer together ≤ 6000; longer text is cut on a character
//! boundary and ends with `…`. A 2xx answer is delivered. A 429 is retried exactly after the
//! `retry_after` Discord sends (seconds, possibly fractional, in the JSON body; else the
//! `Retry-After` header). 5xx, 408 and network errors are retried with the loop's back-off; any
//! other 4xx (the webhook was deleted, the URL is wrong) is a dead letter.

use std::time::Duration;

use mesa_core::Mesa;
use mesa_core::domain::entity::OutboxItem;
use serde::Serialize;

use super::{Attempted, DISCORD, Delivery, Notification, Sink};

/// The longest a request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Discord's limit on `content`.
pub const MAX_CONTENT: usize = 2000;
/// Discord's limit on an embed's title.
pub const MAX_TITLE: usize = 256;
/// Discord's limit on an embed's description.
pub const MAX_DESCRIPTION: usize = 4096;
/// Discord's limit on the text of all embeds of a message.
pub const MAX_TOTAL: usize = 6000;
/// The longest wait a 429 may impose (a broken value must not park the channel for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The JSON body of a Discord webhook execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The plain message.
    pub content: String,
    /// Rich embeds (one).
    pub embeds: Vec<Embed>,
}

/// One embed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Embed {
    /// Its title.
    pub title: String,
    /// Its text.
    pub description: String,
    /// Where the title links to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A footer naming the kind of notification.
    pub footer: Footer,
}

/// An embed's footer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Footer {
    /// Its text.
    pub text: String,
}

/// `text` cut to at most `max` characters on a character boundary, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Renders a notification within Discord's limits.
pub fn render(n: &Notification) -> Message {
    let title = truncate(n.title.trim(), MAX_TITLE);
    let footer = Footer {
        text: format!("Mesa · {}", n.kind.as_str()),
    };
    let mut description = n.text.trim().to_owned();
    if let Some(link) = &n.link {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(link);
    }
    let room = MAX_TOTAL
        .saturating_sub(title.chars().count())
        .saturating_sub(footer.text.chars().count());
    let description = truncate(&description, MAX_DESCRIPTION.min(room));
    Message {
        content: truncate(n.title.trim(), MAX_CONTENT),
        embeds: vec![Embed {
            title,
            description,
            url: n.link.clone(),
            footer,
        }],
    }
}

/// The wait a 429 asks for: `retry_after` of the JSON body (seconds, may be fractional), else
/// the `Retry-After` header (seconds); `None` if neither says.
pub fn retry_after(body: &str, header: Option<&str>) -> Option<Duration> {
    let from_body = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64));
    let seconds = from_body.or_else(|| header.and_then(|h| h.trim().parse::<f64>().ok()))?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(seconds).min(MAX_RETRY_AFTER))
}

/// The verdict on an answer other than 429.
pub fn verdict(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Delivered,
        408 | 500..=599 => Delivery::Retry(format!("Discord answered HTTP {status}")),
        other => Delivery::Dead(format!("Discord answered HTTP {other}")),
    }
}

/// Delivers `discord` items.
pub struct DiscordSink {
    mesa: Mesa,
    http: Option<reqwest::Client>,
}

impl DiscordSink {
    /// A sink reading its URL from `mesa`'s settings on every delivery.
    pub fn new(mesa: Mesa) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "discord: no HTTP client"))
            .ok();
        DiscordSink { mesa, http }
    }
}

impl Sink for DiscordSink {
    fn channel(&self) -> &str {
        DISCORD
    }

    fn feature(&self) -> &'static str {
        "discord"
    }

    async fn deliver(&self, item: &OutboxItem) -> Attempted {
        let Some(http) = &self.http else {
            return Attempted::without_status(Delivery::Retry("no HTTP client".to_owned()));
        };
        let Some(url) = self
            .mesa
            .setting_value("discord_webhook_url")
            .await
            .filter(|u| !u.trim().is_empty())
        else {
            return Attempted::without_status(Delivery::Retry(
                "discord_webhook_url is not set".to_owned(),
            ));
        };
        let notification = match Notification::from_payload(&item.payload) {
            Ok(n) => n,
            Err(e) => {
                return Attempted::without_status(Delivery::Dead(format!(
                    "the payload is not a notification: {e}"
                )));
            }
        };
        let sent = http
            .post(url.trim())
            .json(&render(&notification))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                return Attempted::without_status(Delivery::Retry(super::webhooks::network_error(
                    e,
                )));
            }
        };
        let status = resp.status().as_u16();
        let delivery = if status == 429 {
            let header = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.text().await.unwrap_or_default();
            match retry_after(&body, header.as_deref()) {
                Some(wait) => Delivery::RetryAfter(wait),
                None => Delivery::Retry("Discord answered 429 without retry_after".to_owned()),
            }
        } else {
            verdict(status)
        };
        Attempted {
            status_code: Some(status),
            delivery,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::NotificationKind;
    use proptest::prelude::*;

    fn total(m: &Message) -> usize {
        m.embeds
            .iter()
            .map(|e| {
                e.title.chars().count()
                    + e.description.chars().count()
                    + e.footer.text.chars().count()
            })
            .sum()
    }

    #[test]
    fn truncation_cuts_on_characters_and_marks_the_cut() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 4), "hél…");
        assert_eq!(truncate("日本語のテキスト", 3), "日本…");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn retry_after_reads_the_body_then_the_header() {
        assert_eq!(
            retry_after(
                r#"{"message":"You are being rate limited.","retry_after":0.75,"global":false}"#,
                Some("9")
            ),
            Some(Duration::from_millis(750))
        );
        assert_eq!(
            retry_after("not json", Some("2")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_after("{}", None), None);
        assert_eq!(retry_after(r#"{"retry_after":-1}"#, None), None);
    }

    #[test]
    fn four_xx_is_dead_five_xx_is_retried() {
        assert_eq!(verdict(204), Delivery::Delivered);
        assert!(matches!(verdict(404), Delivery::Dead(_)));
        assert!(matches!(verdict(502), Delivery::Retry(_)));
        assert!(matches!(verdict(408), Delivery::Retry(_)));
    }

    #[test]
    fn a_link_ends_the_description_and_is_the_title_url() {
        let mut n = Notification::new(NotificationKind::Alert, "Blocked", "MESA-1 is blocked");
        n.link = Some("https://mesa.example/issues/MESA-1".into());
        let m = render(&n);
        assert_eq!(m.content, "Blocked");
        assert!(m.embeds[0].description.ends_with("/issues/MESA-1"));
        assert_eq!(m.embeds[0].url, n.link);
        assert_eq!(m.embeds[0].footer.text, "Mesa · alert");
    }

    proptest! {
        #[test]
        fn every_rendering_is_within_discords_limits(title in "\\PC{0,3000}", text in "\\PC{0,9000}") {
            let m = render(&Notification::new(NotificationKind::Alert, title.clone(), text.clone()));
            prop_assert!(m.content.chars().count() <= MAX_CONTENT);
            prop_assert!(m.embeds[0].title.chars().count() <= MAX_TITLE);
            prop_assert!(m.embeds[0].description.chars().count() <= MAX_DESCRIPTION);
            prop_assert!(total(&m) <= MAX_TOTAL);
            let kept = m.embeds[0].description.trim_end_matches('…');
            prop_assert!(text.trim().starts_with(kept));
        }
    }
}
