//! Group commit: concurrent writes of one kind share a transaction.
//!
//! Every statement through sqlx costs a round trip to the connection's worker thread (about
//! 50–80 µs on a 2-core machine), and every commit an fsync. One transaction per write would
//! cap the hot writes (issue creation, checkout) far below what concurrent clients ask for. So
//! concurrent calls are gathered into one write transaction:
//!
//! 1. each caller queues its request and waits for the leader lock;
//! 2. whoever gets the lock takes everything queued and runs it as one batch, in a task of its
//!    own so that a caller dropping its future cannot abandon the others mid-commit;
//! 3. callers whose requests were taken by an earlier leader stop waiting for the lock as soon
//!    as their answer arrives (sent only after the batch committed); were they to queue for the
//!    lock in turn, each would run a batch of whatever few requests arrived meanwhile, and
//!    batches would shrink to one.
//!
//! The batch function answers every request: with its result after the commit, or with an
//! error. A caller is answered only after the commit, so an acknowledged write is durable.

use std::future::Future;
use std::sync::Mutex;

use mesa_store::{Result, StoreError};
use tokio::sync::oneshot;

use crate::SqliteStore;

/// Where a batch sends one request's answer.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// The most requests one batch takes (keeps multi-row statements well under SQLite's variable
/// limit, and a batch's latency bounded).
pub(crate) const MAX_BATCH: usize = 256;

/// Pending requests of one kind and their leader lock.
#[derive(Debug)]
pub(crate) struct Group<R> {
    pending: Mutex<Vec<R>>,
    leader: tokio::sync::Mutex<()>,
}

impl<R> Default for Group<R> {
    fn default() -> Self {
        Group {
            pending: Mutex::new(Vec::new()),
            leader: tokio::sync::Mutex::new(()),
        }
    }
}

/// Queues `request` in `group` and waits for its answer, running batches with `run` while this
/// caller leads. `what` names the write in the error a caller gets if its batch dies.
pub(crate) async fn submit<Q, T, F, Fut>(
    store: &SqliteStore,
    group: &Group<(Q, Reply<T>)>,
    request: Q,
    what: &'static str,
    run: F,
) -> Result<T>
where
    Q: Send + 'static,
    T: Send + 'static,
    F: Fn(SqliteStore, Vec<(Q, Reply<T>)>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    group
        .pending
        .lock()
        .expect("the queue lock is never poisoned")
        .push((request, reply));
    let mut answer = answer;
    tokio::select! {
        biased;
        // An earlier leader already committed this request: no need to queue for the lock.
        done = &mut answer => return done.map_err(|_| interrupted(what))?,
        _leader = group.leader.lock() => {
            loop {
                let batch: Vec<_> = {
                    let mut pending = group.pending.lock().expect("never poisoned");
                    let n = pending.len().min(MAX_BATCH);
                    pending.drain(..n).collect()
                };
                if batch.is_empty() {
                    break;
                }
                // A panic or cancellation of the batch task drops the replies, which answers
                // every waiting caller with an error below; nothing half-written commits.
                let _ = tokio::spawn(run(store.clone(), batch)).await;
            }
        }
    }
    answer.await.map_err(|_| interrupted(what))?
}

fn interrupted(what: &str) -> StoreError {
    StoreError::backend(std::io::Error::other(format!(
        "the {what} batch was interrupted"
    )))
}

/// A batch-wide failure, copied to each caller.
pub(crate) fn copy_err(err: &StoreError) -> StoreError {
    let source = std::error::Error::source(err)
        .map(ToString::to_string)
        .unwrap_or_default();
    StoreError::backend(std::io::Error::other(format!("{err}: {source}")))
}

/// Answers every request of a batch that could not start with a copy of `err`.
pub(crate) fn fail_all<Q, T>(batch: Vec<(Q, Reply<T>)>, err: &StoreError) {
    for (_, reply) in batch {
        let _ = reply.send(Err(copy_err(err)));
    }
}
