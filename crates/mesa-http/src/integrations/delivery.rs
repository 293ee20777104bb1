//! The generic delivery loop of one channel: what is due in the outbox goes to the channel's
//! [`Sink`], each attempt is recorded, failures back off exponentially, and an item that failed
//! [`max_attempts`] times becomes a dead letter.
//!
//! The schedule: the n-th failed attempt (n = 1, 2, ...) waits `base × 2^(n-1)`, at most
//! [`MAX_RETRY_DELAY`]; `base` is the setting `outbox_retry_base_ms` (default
//! [`DEFAULT_RETRY_BASE`]). A receiver that names its own delay ([`Delivery::RetryAfter`]) is
//! retried exactly then instead. The number of attempts is the setting `outbox_max_attempts`
//! (default [`DEFAULT_MAX_ATTEMPTS`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesa_core::domain::Timestamp;
use mesa_core::domain::entity::OutboxItem;
use mesa_core::{AttemptOutcome, Mesa, Settings};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Attempted, Delivery, Sink};

/// The first retry's delay unless `outbox_retry_base_ms` says otherwise.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5 * 60);
/// Attempts before a dead letter unless `outbox_max_attempts` says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Items handed out per look at the outbox.
const BATCH: u32 = 20;
/// How often a loop looks again while its flag is off, or when nothing is due (it is also
/// woken at once when something is queued).
const IDLE_CHECK: Duration = Duration::from_millis(250);
/// The longest sleep until the next due item (items may be queued by another process).
const MAX_IDLE: Duration = Duration::from_secs(5);

/// The delay after the `failures`-th failed attempt in a row (1-based): `base × 2^(failures-1)`,
/// at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(base: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(31);
    base.saturating_mul(1u32 << exp).min(MAX_RETRY_DELAY)
}

/// The retry base of the settings (`outbox_retry_base_ms`).
pub fn retry_base(settings: &Settings) -> Duration {
    settings
        .get("outbox_retry_base_ms")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_RETRY_BASE, Duration::from_millis)
}

/// The attempts before a dead letter (`outbox_max_attempts`).
pub fn max_attempts(settings: &Settings) -> u32 {
    settings
        .get("outbox_max_attempts")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

/// What to record of attempt number `attempt` (1-based) made at `at`.
pub fn outcome(
    attempted: Attempted,
    attempt: u32,
    max_attempts: u32,
    base: Duration,
    at: Timestamp,
) -> AttemptOutcome {
    let status_code = attempted.status_code;
    let (error, wait) = match attempted.delivery {
        Delivery::Delivered => return AttemptOutcome::Delivered { status_code },
        Delivery::Dead(error) => return AttemptOutcome::Dead { status_code, error },
        Delivery::RetryAfter(wait) => (
            format!("asked to retry after {:.3} s", wait.as_secs_f64()),
            wait,
        ),
        Delivery::Retry(error) => (error, retry_delay(base, attempt)),
    };
    if attempt >= max_attempts {
        return AttemptOutcome::Dead {
            status_code,
            error: format!("{error} (gave up after {attempt} attempts)"),
        };
    }
    AttemptOutcome::Retry {
        status_code,
        error,
        next_attempt_at: at + wait,
    }
}

/// Delivers the channel of `sink` until `cancel` fires. `wake` is notified when something is
/// queued. Errors of the store are logged and retried after a pause.
pub async fn run<S: Sink>(mesa: Mesa, sink: S, wake: Arc<Notify>, cancel: CancellationToken) {
    let channel = sink.channel().to_owned();
    tracing::debug!(%channel, "delivery loop started");
    while !cancel.is_cancelled() {
        let idle = match turn(&mesa, &sink, &cancel).await {
            Ok(Turn::Busy) => continue,
            Ok(Turn::Off) => IDLE_CHECK,
            Ok(Turn::Idle(until_due)) => until_due.min(MAX_IDLE),
            Err(e) => {
                tracing::warn!(%channel, error = %e, "delivery loop: the outbox failed");
                MAX_IDLE
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
    tracing::debug!(%channel, "delivery loop stopped");
}

/// What one look at the outbox found.
enum Turn {
    /// The feature flag is off.
    Off,
    /// Nothing due; the next item is due in this long (or [`MAX_IDLE`]).
    Idle(Duration),
    /// Delivered a batch; look again at once.
    Busy,
}

async fn turn<S: Sink>(
    mesa: &Mesa,
    sink: &S,
    cancel: &CancellationToken,
) -> mesa_core::Result<Turn> {
    let flag = format!("feature_{}", sink.feature());
    if mesa.setting_value(&flag).await.as_deref() != Some("true") {
        return Ok(Turn::Off);
    }
    let due = mesa.due_outbox(sink.channel(), BATCH).await?;
    if due.is_empty() {
        let next = mesa.next_outbox_due(sink.channel()).await?;
        let wait = next.map_or(MAX_IDLE, |at| {
            Duration::from_millis(
                u64::try_from(at.as_millis() - mesa.now().as_millis()).unwrap_or(0),
            )
        });
        return Ok(Turn::Idle(wait));
    }
    for item in due {
        // The flag is read before every attempt: turning it off stops deliveries at once.
        if cancel.is_cancelled() || mesa.setting_value(&flag).await.as_deref() != Some("true") {
            break;
        }
        attempt(mesa, sink, &item, cancel).await?;
    }
    Ok(Turn::Busy)
}

/// One attempt at `item`, recorded (unless shutdown interrupted it: then it stays as it was).
async fn attempt<S: Sink>(
    mesa: &Mesa,
    sink: &S,
    item: &OutboxItem,
    cancel: &CancellationToken,
) -> mesa_core::Result<()> {
    let at = mesa.now();
    let started = Instant::now();
    let attempted = tokio::select! {
        () = cancel.cancelled() => return Ok(()),
        a = sink.deliver(item) => a,
    };
    let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let settings = mesa.settings().await;
    let number = item.attempts + 1;
    let outcome = outcome(
        attempted,
        number,
        max_attempts(&settings),
        retry_base(&settings),
        mesa.now(),
    );
    match &outcome {
        AttemptOutcome::Delivered { .. } => {
            tracing::debug!(channel = %item.channel, id = %item.id, "delivered");
        }
        AttemptOutcome::Retry {
            error,
            next_attempt_at,
            ..
        } => tracing::info!(
            channel = %item.channel, id = %item.id, attempt = number, %error,
            next = %next_attempt_at.to_rfc3339(), "delivery failed, will retry"
        ),
        AttemptOutcome::Dead { error, .. } => tracing::warn!(
            channel = %item.channel, id = %item.id, attempt = number, %error,
            "delivery failed for good (dead letter)"
        ),
    }
    mesa.record_outbox_attempt(item.id, at, duration_ms, outcome)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: Duration = Duration::from_secs(1);

    fn failed(delivery: Delivery) -> Attempted {
        Attempted {
            status_code: Some(503),
            delivery,
        }
    }

    #[test]
    fn the_schedule_doubles_from_the_base_up_to_the_cap() {
        let secs: Vec<u64> = (1..=10).map(|n| retry_delay(BASE, n).as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(retry_delay(BASE, 0), BASE);
        assert_eq!(retry_delay(BASE, u32::MAX), MAX_RETRY_DELAY);
        assert_eq!(
            retry_delay(Duration::from_millis(50), 3),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn a_retry_is_scheduled_by_the_back_off_and_the_last_attempt_is_dead() {
        let at = Timestamp::from_millis(10_000);
        let retry = outcome(failed(Delivery::Retry("503".into())), 3, 5, BASE, at);
        assert_eq!(
            retry,
            AttemptOutcome::Retry {
                status_code: Some(503),
                error: "503".into(),
                next_attempt_at: Timestamp::from_millis(14_000),
            }
        );
        let dead = outcome(failed(Delivery::Retry("503".into())), 5, 5, BASE, at);
        assert!(matches!(
            dead,
            AttemptOutcome::Dead {
                status_code: Some(503),
                ..
            }
        ));
    }

    #[test]
    fn retry_after_is_honoured_exactly_and_dead_and_delivered_pass_through() {
        let at = Timestamp::from_millis(0);
        let later = outcome(
            failed(Delivery::RetryAfter(Duration::from_millis(1_500))),
            1,
            5,
            BASE,
            at,
        );
        assert!(matches!(
            later,
            AttemptOutcome::Retry { next_attempt_at, .. } if next_attempt_at == Timestamp::from_millis(1_500)
        ));
        assert!(matches!(
            outcome(failed(Delivery::Dead("gone".into())), 1, 5, BASE, at),
            AttemptOutcome::Dead { .. }
        ));
        assert_eq!(
            outcome(
                Attempted::without_status(Delivery::Delivered),
                1,
                5,
                BASE,
                at
            ),
            AttemptOutcome::Delivered { status_code: None }
        );
    }

    proptest! {
        #[test]
        fn delays_never_shrink_and_never_pass_the_cap(base_ms in 1u64..100_000, n in 1u32..64) {
            let base = Duration::from_millis(base_ms);
            let (a, b) = (retry_delay(base, n), retry_delay(base, n + 1));
            prop_assert!(a <= b);
            prop_assert!(b <= MAX_RETRY_DELAY);
            prop_assert!(a >= base.min(MAX_RETRY_DELAY));
        }
    }
}
