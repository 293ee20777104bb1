//! The event bus: domain events, published only after the change they describe has committed.

use std::sync::Arc;

use mesa_domain::DomainEvent;
use tokio::sync::broadcast;

use crate::journal::EventJournal;

/// How many events a subscriber may fall behind before it is told it lagged.
const CAPACITY: usize = 4096;

/// A broadcast of committed changes. Publishing never blocks: a subscriber that falls more than
/// the channel capacity behind receives `RecvError::Lagged` and should resynchronize.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<DomainEvent>>,
    journal: Arc<EventJournal>,
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        EventBus {
            sender,
            journal: Arc::new(EventJournal::new()),
        }
    }

    /// Publishes committed events in order, journaling each (see [`EventJournal`]). Having no
    /// subscriber is not an error.
    pub fn publish(&self, events: impl IntoIterator<Item = DomainEvent>) {
        for event in events {
            let event = Arc::new(event);
            self.journal.append(&event);
            // An error only means nobody listens right now.
            let _ = self.sender.send(event);
        }
    }

    /// The journal of recent events with their ids (SSE replay, SPEC §9.4).
    pub fn journal(&self) -> &EventJournal {
        &self.journal
    }

    /// A new receiver that sees every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<DomainEvent>> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
