//! Outgoing webhooks (SPEC §11.2): the sink of the `webhook:<uuid>` channels.
//!
//! Each delivery is a `POST` of the envelope JSON to the subscription's URL with
//! `Content-Type: application/json`, `X-Mesa-Event: <event>`, `X-Mesa-Delivery: <outbox id>`
//! (the same on every retry, so receivers can deduplicate) and
//! `X-Mesa-Signature-256: sha256=<hex HMAC-SHA256 of the body under the secret>`, within
//! [`TIMEOUT`]. A 2xx answer is delivered; 410 Gone is final (a dead letter); anything else,
//! and network errors, are retried with the loop's back-off. A delivery whose subscription was
//! deleted or switched off is not sent (a dead letter saying so).

use std::time::Duration;

use mesa_core::Mesa;
use mesa_core::domain::WebhookId;
use mesa_core::domain::entity::{OutboxItem, OutgoingWebhook};

use super::{Attempted, Delivery, Sink, WEBHOOK_PREFIX};

/// The longest a receiver may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The signature header value of `body` under `secret`: `sha256=<lowercase hex>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    super::incoming::sign(secret.as_bytes(), body)
}

/// The verdict on a receiver's HTTP status.
pub fn verdict(status: u16) -> Delivery {
    match status {
        200..=299 => Delivery::Delivered,
        410 => Delivery::Dead("the receiver answered 410 Gone".to_owned()),
        other => Delivery::Retry(format!("the receiver answered HTTP {other}")),
    }
}

/// Delivers outgoing-webhook items.
pub struct WebhookSink {
    mesa: Mesa,
    http: Option<reqwest::Client>,
}

impl WebhookSink {
    /// A sink over `mesa`'s subscriptions.
    pub fn new(mesa: Mesa) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("Mesa-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "outgoing webhooks: no HTTP client"))
            .ok();
        WebhookSink { mesa, http }
    }

    async fn subscription(&self, item: &OutboxItem) -> Result<OutgoingWebhook, Delivery> {
        let id = item
            .channel
            .strip_prefix(WEBHOOK_PREFIX)
            .and_then(|id| WebhookId::parse(id).ok())
            .ok_or_else(|| Delivery::Dead(format!("{} is not a webhook channel", item.channel)))?;
        match self.mesa.webhook_for_delivery(id).await {
            Ok(hook) if hook.active => Ok(hook),
            Ok(_) => Err(Delivery::Dead(
                "the subscription is switched off".to_owned(),
            )),
            Err(e) if e.kind() == mesa_core::ErrorKind::NotFound => {
                Err(Delivery::Dead("the subscription was deleted".to_owned()))
            }
            Err(e) => Err(Delivery::Retry(format!(
                "cannot read the subscription: {e}"
            ))),
        }
    }
}

impl Sink for WebhookSink {
    fn channel(&self) -> &str {
        WEBHOOK_PREFIX
    }

    fn feature(&self) -> &'static str {
        "webhooks_out"
    }

    async fn deliver(&self, item: &OutboxItem) -> Attempted {
        let Some(http) = &self.http else {
            return Attempted::without_status(Delivery::Retry("no HTTP client".to_owned()));
        };
        let hook = match self.subscription(item).await {
            Ok(h) => h,
            Err(d) => return Attempted::without_status(d),
        };
        let body = item.payload.clone().into_bytes();
        let sent = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-mesa-event", &item.event)
            .header("x-mesa-delivery", item.id.to_string())
            .header("x-mesa-signature-256", signature(&hook.secret, &body))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                Attempted {
                    status_code: Some(status),
                    delivery: verdict(status),
                }
            }
            Err(e) => Attempted::without_status(Delivery::Retry(network_error(e))),
        }
    }
}

/// A network error in one line, without the URL (it may hold a token).
pub(crate) fn network_error(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{what}: {}", e.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_xx_is_delivered_410_is_dead_the_rest_is_retried() {
        assert_eq!(verdict(200), Delivery::Delivered);
        assert_eq!(verdict(204), Delivery::Delivered);
        assert!(matches!(verdict(410), Delivery::Dead(_)));
        for code in [301, 400, 404, 429, 500, 503] {
            assert!(matches!(verdict(code), Delivery::Retry(_)), "{code}");
        }
    }

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
