use std::time::Duration;

use mesa_domain::{CommentKind, IssueStatus, Timestamp};

use super::*;
use crate::fixtures::key;
use crate::issue::IssueEffect;

const NOW: Timestamp = Timestamp::from_millis(100_000_000);

fn issue(status: IssueStatus, run_count: i64) -> IssueSnapshot {
    IssueSnapshot {
        run_count,
        ..IssueSnapshot::new(key(3), status, Timestamp::EPOCH)
    }
}

#[test]
fn runs_below_the_limit_proceed_and_free_runs_do_not_count() {
    assert_eq!(
        runaway_guard(&issue(IssueStatus::Todo, 7), 8, false, NOW),
        WakeGuard::Proceed { counts: true }
    );
    assert_eq!(
        runaway_guard(&issue(IssueStatus::Todo, 80), 8, true, NOW),
        WakeGuard::Proceed { counts: false }
    );
    assert_eq!(
        runaway_guard(&issue(IssueStatus::Todo, 80), 0, false, NOW),
        WakeGuard::Proceed { counts: true }
    );
    assert_eq!(
        runaway_guard(&issue(IssueStatus::Done, 0), 8, false, NOW),
        WakeGuard::Suppress(vec![])
    );
}

#[test]
fn the_next_wake_at_the_limit_blocks_the_issue() {
    for status in [IssueStatus::Todo, IssueStatus::InProgress] {
        let WakeGuard::Block(t) =
            runaway_guard(&issue(status, 8), DEFAULT_MAX_RUNS_PER_ISSUE, false, NOW)
        else {
            panic!("{status} was not blocked");
        };
        assert_eq!((t.from, t.to), (Some(status), IssueStatus::Blocked));
        let message = "Runaway guard: MESA-3 has had 8 runs (the limit is 8), so no further run was \
                       started. The board can unblock or requeue it.";
        assert_eq!(
            t.effects,
            [
                IssueEffect::AddComment {
                    kind: CommentKind::System,
                    body: message.into()
                },
                IssueEffect::NotifyBoard {
                    message: message.into()
                },
                IssueEffect::DropQueuedRuns,
            ]
        );
        assert_eq!(
            t.activity.summary,
            format!("MESA-3: {status} → blocked (block by system)")
        );
    }
    // Already blocked: nothing more to say.
    assert_eq!(
        runaway_guard(&issue(IssueStatus::Blocked, 9), 8, false, NOW),
        WakeGuard::Suppress(vec![])
    );
    // In review there is no blocked row: no run, and the board hears of it.
    let WakeGuard::Suppress(effects) =
        runaway_guard(&issue(IssueStatus::InReview, 8), 8, false, NOW)
    else {
        panic!("in_review was not suppressed");
    };
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, IssueEffect::NotifyBoard { .. }))
    );
}

fn minutes_ago(m: u64) -> Timestamp {
    NOW - Duration::from_secs(m * 60)
}

#[test]
fn loop_guard_allows_at_most_the_limit_per_hour() {
    let starts: Vec<_> = (0..30).map(|i| minutes_ago(59 - i)).collect();
    assert_eq!(loop_guard(&starts[1..], 30, false, NOW), LoopGuard::Proceed);
    // The 31st run in an hour pauses the agent until the oldest leaves the window.
    assert_eq!(
        loop_guard(&starts, 30, false, NOW),
        LoopGuard::Pause {
            until: minutes_ago(59) + LOOP_WINDOW,
            message: format!(
                "Loop guard: 30 runs in the last hour (the limit is 30); the agent is paused until {}",
                minutes_ago(59) + LOOP_WINDOW
            ),
        }
    );
    // Runs older than an hour and free runners do not count; 0 is off.
    let old: Vec<_> = (0..100).map(|i| minutes_ago(61 + i)).collect();
    assert_eq!(loop_guard(&old, 30, false, NOW), LoopGuard::Proceed);
    assert_eq!(loop_guard(&starts, 30, true, NOW), LoopGuard::Proceed);
    assert_eq!(loop_guard(&starts, 0, false, NOW), LoopGuard::Proceed);
    // Far over the limit: paused until enough runs have left the window.
    let LoopGuard::Pause { until, .. } = loop_guard(&starts, 10, false, NOW) else {
        panic!()
    };
    assert_eq!(until, minutes_ago(59 - 20) + LOOP_WINDOW);
}
