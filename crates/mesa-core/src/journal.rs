//! The event journal: the most recent committed events with monotonically increasing ids, so a
//! client that reconnects (SSE `Last-Event-ID`, SPEC §9.4) receives exactly what it missed.
//!
//! The journal is fed synchronously by [`crate::EventBus::publish`] (no background task): under
//! one short lock each event gets the next id, enters the ring buffer and is broadcast to live
//! subscribers, so ids are delivered in order and a subscription taken under the same lock has
//! neither gaps nor duplicates between what it replays and what it then receives live.
//! `run_output` chunks are not journaled: they belong to the run-log stream, and would flood
//! the buffer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use mesa_domain::DomainEvent;
use tokio::sync::broadcast;

/// How many events the journal keeps for reconnecting clients (SPEC §9.4).
pub const JOURNAL_CAPACITY: usize = 10_000;

/// How far one live subscriber may fall behind before it is told it lagged (its bounded
/// buffer). Publishing never waits for a subscriber.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// One journaled event.
#[derive(Debug)]
pub struct JournalEntry {
    /// Its id: consecutive within this process, starting after the boot's base (see
    /// [`EventJournal::start_boot`]), so ids keep growing across restarts.
    pub id: u64,
    /// The event.
    pub event: Arc<DomainEvent>,
}

/// What a subscriber that gave the last id it saw must be sent before the live events.
#[derive(Debug)]
pub enum Replay {
    /// The events after that id, in order (empty when it missed nothing).
    Missed(Vec<Arc<JournalEntry>>),
    /// Some of what it missed is no longer kept (or the id is not one this journal gave): it
    /// must refetch its state. `last_id` is the id of the newest event, which the live events
    /// follow.
    Resync {
        /// The newest id at the time of subscription.
        last_id: u64,
    },
}

/// A subscription: what to replay, then the live events.
#[derive(Debug)]
pub struct JournalSubscription {
    /// Events to send first.
    pub replay: Replay,
    /// Live events with ids after the replay's (a lagging receiver gets `Lagged`).
    pub live: broadcast::Receiver<Arc<JournalEntry>>,
}

#[derive(Debug)]
struct Ring {
    last_id: u64,
    entries: VecDeque<Arc<JournalEntry>>,
}

/// The ring buffer of recent events and their live broadcast.
#[derive(Debug)]
pub struct EventJournal {
    ring: Mutex<Ring>,
    sender: broadcast::Sender<Arc<JournalEntry>>,
    capacity: usize,
}

impl EventJournal {
    /// A journal keeping [`JOURNAL_CAPACITY`] events, with [`SUBSCRIBER_BUFFER`] per subscriber.
    pub fn new() -> Self {
        Self::with_capacity(JOURNAL_CAPACITY, SUBSCRIBER_BUFFER)
    }

    /// A journal keeping `capacity` events, with `buffer` per live subscriber.
    pub fn with_capacity(capacity: usize, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        EventJournal {
            ring: Mutex::new(Ring {
                last_id: 0,
                entries: VecDeque::with_capacity(capacity.min(1024)),
            }),
            sender,
            capacity: capacity.max(1),
        }
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // The lock guards plain data that every step leaves consistent.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Journals one committed event (not `run_output`) and broadcasts it. Never blocks on
    /// subscribers.
    pub(crate) fn append(&self, event: &Arc<DomainEvent>) {
        if matches!(**event, DomainEvent::RunOutput { .. }) {
            return;
        }
        let mut ring = self.ring();
        ring.last_id += 1;
        let entry = Arc::new(JournalEntry {
            id: ring.last_id,
            event: Arc::clone(event),
        });
        if ring.entries.len() == self.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Arc::clone(&entry));
        // Sent under the lock so that live receivers see ids in order. An error only means
        // nobody listens right now.
        let _ = self.sender.send(entry);
    }

    /// Starts the ids of this process after `boot << 32` (a boot number that grows with every
    /// start of the server), so that an id from before a restart is always older than every
    /// id of this process, and a client presenting one is told to resync instead of being sent
    /// unrelated events. Ids stay below 2^53 for two million boots, so JavaScript clients read
    /// them exactly. Only the first events' ids move: call it before publishing.
    pub fn start_boot(&self, boot: u64) {
        let mut ring = self.ring();
        let base = boot.min((1 << 21) - 1) << 32;
        if ring.last_id < base {
            ring.last_id = base;
        }
    }

    /// The id of the newest event (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.ring().last_id
    }

    /// Subscribes. With `after = Some(n)` (the last id the client saw), the replay holds every
    /// kept event with an id above `n`, or is a [`Replay::Resync`] when some of them are no
    /// longer kept or `n` is newer than any id given. Live events follow the replay without a
    /// gap or a duplicate.
    pub fn subscribe(&self, after: Option<u64>) -> JournalSubscription {
        let ring = self.ring();
        let live = self.sender.subscribe();
        let replay = match after {
            None => Replay::Missed(Vec::new()),
            Some(n) if n > ring.last_id => Replay::Resync {
                last_id: ring.last_id,
            },
            Some(n) => {
                let oldest = ring.entries.front().map_or(ring.last_id + 1, |e| e.id);
                if n.saturating_add(1) < oldest {
                    Replay::Resync {
                        last_id: ring.last_id,
                    }
                } else {
                    // Ids are consecutive, so the first missed event sits at `n + 1 - oldest`.
                    let skip = usize::try_from(n + 1 - oldest).unwrap_or(usize::MAX);
                    Replay::Missed(ring.entries.iter().skip(skip).cloned().collect())
                }
            }
        };
        JournalSubscription { replay, live }
    }

    /// A fresh live receiver and the newest id, for a subscriber that lagged and resyncs.
    pub fn resubscribe(&self) -> (u64, broadcast::Receiver<Arc<JournalEntry>>) {
        let ring = self.ring();
        (ring.last_id, self.sender.subscribe())
    }
}

impl Default for EventJournal {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(j: &EventJournal, n: usize) {
        for _ in 0..n {
            j.append(&Arc::new(DomainEvent::SchedulerPaused));
        }
    }

    fn ids(replay: &Replay) -> Vec<u64> {
        match replay {
            Replay::Missed(v) => v.iter().map(|e| e.id).collect(),
            Replay::Resync { .. } => panic!("unexpected resync"),
        }
    }

    #[test]
    fn replays_exactly_what_was_missed() {
        let j = EventJournal::with_capacity(5, 16);
        publish(&j, 3);
        assert_eq!(ids(&j.subscribe(Some(1)).replay), vec![2, 3]);
        assert_eq!(ids(&j.subscribe(Some(3)).replay), Vec::<u64>::new());
        assert_eq!(ids(&j.subscribe(Some(0)).replay), vec![1, 2, 3]);
        publish(&j, 4); // ids 1..=7, kept 3..=7
        assert_eq!(ids(&j.subscribe(Some(2)).replay), vec![3, 4, 5, 6, 7]);
        assert!(matches!(
            j.subscribe(Some(1)).replay,
            Replay::Resync { last_id: 7 }
        ));
        assert!(matches!(
            j.subscribe(Some(99)).replay,
            Replay::Resync { last_id: 7 }
        ));
    }

    #[test]
    fn a_restart_never_reuses_ids() {
        // Boot 1 published 40 events; boot 2 starts above every id boot 1 could have given.
        let before = EventJournal::with_capacity(100, 16);
        before.start_boot(1);
        publish(&before, 40);
        let seen = before.last_id();
        assert_eq!(seen, (1 << 32) + 40);

        let after = EventJournal::with_capacity(100, 16);
        after.start_boot(2);
        assert!(
            matches!(after.subscribe(Some(seen)).replay, Replay::Resync { last_id } if last_id == 2 << 32),
            "an id of the previous boot asks for a resync, before any event"
        );
        publish(&after, 50);
        assert!(after.last_id() > seen);
        assert!(
            matches!(after.subscribe(Some(seen)).replay, Replay::Resync { .. }),
            "and after this boot's ids have passed its number"
        );
        assert_eq!(
            ids(&after.subscribe(Some((2 << 32) + 48)).replay),
            vec![(2 << 32) + 49, (2 << 32) + 50]
        );
        assert!(after.last_id() < 1 << 53, "ids stay exact in JavaScript");
    }

    #[test]
    fn live_follows_replay_and_run_output_is_not_journaled() {
        let j = EventJournal::with_capacity(5, 16);
        publish(&j, 2);
        let mut sub = j.subscribe(Some(1));
        j.append(&Arc::new(DomainEvent::RunOutput {
            run_id: mesa_domain::RunId::from(uuid::Uuid::now_v7()),
            text: "x".into(),
        }));
        publish(&j, 1);
        assert_eq!(ids(&sub.replay), vec![2]);
        assert_eq!(sub.live.try_recv().unwrap().id, 3);
        assert!(sub.live.try_recv().is_err());
    }

    #[test]
    fn a_slow_subscriber_lags_instead_of_blocking() {
        let j = EventJournal::with_capacity(100, 4);
        let mut sub = j.subscribe(None);
        publish(&j, 10);
        assert!(matches!(
            sub.live.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        let (last, _rx) = j.resubscribe();
        assert_eq!(last, 10);
    }
}
