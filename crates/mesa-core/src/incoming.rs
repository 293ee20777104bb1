//! Incoming webhooks (SPEC §11.3): the delivery log that deduplicates deliveries, and the links
//! from issues at a sender (a GitHub issue's URL) to the Mesa issues created from them.
//!
//! Verifying signatures and parsing payloads is the HTTP layer's job; the issues and comments
//! themselves are created with [`Mesa::create_issue`] and [`Mesa::add_comment`] as
//! `Actor::Webhook`.

use mesa_domain::entity::{ExternalLink, WebhookDelivery};
use mesa_domain::{IssueKey, WebhookDeliveryId, WebhookStatus};
use mesa_store::StoreError;

use crate::error::Result;
use crate::mesa::Mesa;

/// At most this many bytes of a delivery's payload are kept in the log.
pub const DELIVERY_PAYLOAD_CAP: usize = 16 * 1024;

/// What [`Mesa::claim_delivery`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryClaim {
    /// The first time this delivery id is seen from this source: recorded as `received`.
    New(WebhookDelivery),
    /// Seen before: nothing was recorded.
    Duplicate,
}

/// `payload` as text, cut to [`DELIVERY_PAYLOAD_CAP`] bytes at a character boundary.
fn capped(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    if text.len() <= DELIVERY_PAYLOAD_CAP {
        return text.into_owned();
    }
    let mut end = DELIVERY_PAYLOAD_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl Mesa {
    /// Records a delivery as `received`, or says it is a duplicate of one recorded before
    /// (same source and delivery id). The payload is kept capped.
    pub async fn claim_delivery(
        &self,
        source: &str,
        event: &str,
        delivery_id: &str,
        payload: &[u8],
    ) -> Result<DeliveryClaim> {
        let record = WebhookDelivery {
            id: Self::new_id(),
            source: source.to_owned(),
            event: event.to_owned(),
            delivery_id: delivery_id.to_owned(),
            status: WebhookStatus::Received,
            note: None,
            payload: capped(payload),
            created_at: self.now(),
        };
        match self.inner.store.record_delivery(record).await {
            Ok(stored) => Ok(DeliveryClaim::New(stored)),
            Err(StoreError::Conflict { .. }) => Ok(DeliveryClaim::Duplicate),
            Err(other) => Err(other.into()),
        }
    }

    /// Sets what became of a claimed delivery (`processed` or `failed`, with a note).
    pub async fn settle_delivery(
        &self,
        id: WebhookDeliveryId,
        status: WebhookStatus,
        note: Option<String>,
    ) -> Result<()> {
        Ok(self.inner.store.settle_delivery(id, status, note).await?)
    }

    /// Forgets a claimed delivery that Mesa failed to process (a server-side error, nothing was
    /// created), so that the sender's retry with the same delivery id is processed.
    pub async fn forget_delivery(&self, id: WebhookDeliveryId) -> Result<()> {
        Ok(self.inner.store.forget_delivery(id).await?)
    }

    /// The most recent incoming deliveries, newest first.
    pub async fn incoming_deliveries(&self, limit: u32) -> Result<Vec<WebhookDelivery>> {
        Ok(self.inner.store.recent_deliveries(limit).await?)
    }

    /// Links the issue at `url` of webhook `source` to the Mesa issue `key`.
    pub async fn link_external_issue(&self, source: &str, url: &str, key: &IssueKey) -> Result<()> {
        let link = ExternalLink {
            source: source.to_owned(),
            url: url.to_owned(),
            issue_key: key.clone(),
            created_at: self.now(),
        };
        Ok(self.inner.store.link_external(link).await?)
    }

    /// The Mesa issue linked to the issue at `url` of webhook `source`.
    pub async fn external_issue(&self, source: &str, url: &str) -> Result<Option<IssueKey>> {
        Ok(self.inner.store.external_link(source, url).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_capped_at_a_char_boundary() {
        assert_eq!(capped(b"{}"), "{}");
        let long = "é".repeat(DELIVERY_PAYLOAD_CAP);
        let kept = capped(long.as_bytes());
        assert!(kept.len() <= DELIVERY_PAYLOAD_CAP);
        assert!(kept.len() >= DELIVERY_PAYLOAD_CAP - 1);
        assert!(kept.chars().all(|c| c == 'é'));
    }
}
