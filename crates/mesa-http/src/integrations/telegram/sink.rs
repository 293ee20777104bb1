//! The `telegram` channel's [`Sink`]: a queued [`Notification`] becomes one `sendMessage` per
//! allowed chat, with [Approve] [Reject] buttons when it names an approval.

use std::future::Future;

use mesa_core::Mesa;
use mesa_core::domain::ApprovalStatus;
use mesa_core::domain::entity::OutboxItem;

use super::api::{BotApi, BotError, OutgoingMessage};
use super::config::TelegramConfig;
use super::render;
use crate::integrations::{Attempted, Delivery, Notification, Sink, TELEGRAM};

/// Delivers `telegram` outbox items with the current settings.
#[derive(Clone)]
pub struct TelegramSink {
    mesa: Mesa,
    http: Option<reqwest::Client>,
}

impl TelegramSink {
    /// A sink reading its configuration from `mesa`'s settings at every attempt.
    pub fn new(mesa: Mesa) -> Self {
        let http = super::client()
            .inspect_err(|e| tracing::error!(error = %e, "telegram: no HTTP client"))
            .ok();
        TelegramSink { mesa, http }
    }

    async fn send(&self, item: &OutboxItem) -> Attempted {
        let notification = match Notification::from_payload(&item.payload) {
            Ok(n) => n,
            Err(e) => {
                return Attempted::without_status(Delivery::Dead(format!(
                    "unreadable notification: {e}"
                )));
            }
        };
        let Some(config) = TelegramConfig::from_settings(&self.mesa.settings().await) else {
            return Attempted::without_status(Delivery::Retry(
                "telegram_bot_token is not set".to_owned(),
            ));
        };
        if config.chats.is_empty() {
            return Attempted::without_status(Delivery::Retry(
                "telegram_chat_ids is empty".to_owned(),
            ));
        }
        let Some(http) = self.http.clone() else {
            return Attempted::without_status(Delivery::Retry("no HTTP client".to_owned()));
        };
        let api = BotApi::new(http, &config.base_url, &config.token);
        let message = self.render(&notification).await;
        for chat in &config.chats {
            if let Err(e) = api.send_message(*chat, &message).await {
                return verdict(&e);
            }
        }
        Attempted {
            status_code: Some(200),
            delivery: Delivery::Delivered,
        }
    }
}

impl TelegramSink {
    /// The message of `n`. Buttons only while the approval is pending: a notification delivered
    /// late (Telegram was down) says what became of it instead.
    async fn render(&self, n: &Notification) -> OutgoingMessage {
        let mut buttons = n.approval_id;
        let mut text = n.text.clone();
        if let Some(id) = n.approval_id
            && let Ok(approval) = self.mesa.approval(id).await
            && approval.status != ApprovalStatus::Pending
        {
            buttons = None;
            let by = approval
                .decided_by
                .map(|who| format!(" by {who}"))
                .unwrap_or_default();
            text.push_str(&format!("\n\n(Already {}{by}.)", approval.status.as_str()));
        }
        render::notification(&n.title, &text, n.link.as_deref(), buttons)
    }
}

/// What a failed `sendMessage` means for the item: wait as told (429), retry (network, 5xx,
/// a wrong token the board can fix), or give up (any other refusal: chat not found, bot blocked).
pub(super) fn verdict(error: &BotError) -> Attempted {
    let status_code = match error {
        BotError::Network(_) => None,
        BotError::RetryAfter(_) => Some(429),
        BotError::Server { status, .. } | BotError::Refused { status, .. } => Some(*status),
    };
    let delivery = match error {
        BotError::RetryAfter(after) => Delivery::RetryAfter(*after),
        BotError::Refused { .. } if !error.is_bad_token() => Delivery::Dead(error.to_string()),
        _ => Delivery::Retry(error.to_string()),
    };
    Attempted {
        status_code,
        delivery,
    }
}

impl Sink for TelegramSink {
    fn channel(&self) -> &str {
        TELEGRAM
    }

    fn feature(&self) -> &'static str {
        "telegram"
    }

    fn deliver(&self, item: &OutboxItem) -> impl Future<Output = Attempted> + Send {
        self.send(item)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn failures_map_to_delivery_verdicts() {
        let v = verdict(&BotError::RetryAfter(Duration::from_secs(3)));
        assert_eq!(v.status_code, Some(429));
        assert_eq!(v.delivery, Delivery::RetryAfter(Duration::from_secs(3)));
        let v = verdict(&BotError::Network("refused".into()));
        assert!(matches!(v.delivery, Delivery::Retry(_)) && v.status_code.is_none());
        let v = verdict(&BotError::Server {
            status: 502,
            description: "bad gateway".into(),
        });
        assert!(matches!(v.delivery, Delivery::Retry(_)));
        let v = verdict(&BotError::Refused {
            status: 401,
            description: "Unauthorized".into(),
        });
        assert!(
            matches!(v.delivery, Delivery::Retry(_)),
            "a token can be fixed"
        );
        let v = verdict(&BotError::Refused {
            status: 400,
            description: "chat not found".into(),
        });
        assert!(matches!(v.delivery, Delivery::Dead(_)));
    }
}
