//! Guards that keep agents from running away: the per-issue runaway guard (SPEC §2) and the
//! per-agent loop guard (SPEC §6.5).
//!
//! Runs of free runners (`noop`, `dry_run`: they spend nothing) count toward neither guard.

use std::time::Duration;

use mesa_domain::{Actor, IssueStatus, Timestamp};

use crate::issue::{self, ActorContext, IssueCommand, IssueEffect, IssueSnapshot, IssueTransition};

/// The default `max_runs_per_issue` (SPEC §2).
pub const DEFAULT_MAX_RUNS_PER_ISSUE: u32 = 8;

/// The default `max_runs_per_hour` (SPEC §6.5).
pub const DEFAULT_MAX_RUNS_PER_HOUR: u32 = 30;

/// The loop guard's window.
pub const LOOP_WINDOW: Duration = Duration::from_secs(3600);

/// What to do with a wake-up for an issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeGuard {
    /// Start (or queue) the run. `counts` says whether it adds to the issue's `run_count`.
    Proceed {
        /// False for free runners.
        counts: bool,
    },
    /// The limit is reached: block the issue instead of running (a system comment, a board
    /// notification, queued runs dropped).
    Block(Box<IssueTransition>),
    /// Start nothing and change nothing else except these effects (the issue is terminal,
    /// already blocked, or in review and cannot be blocked; the board is told once).
    Suppress(Vec<IssueEffect>),
}

/// The runaway guard (SPEC §2): when an issue has had `max_runs_per_issue` runs, the next wake
/// blocks it instead, with a system comment, and notifies the board. `max_runs_per_issue == 0`
/// turns the guard off.
pub fn runaway_guard(
    issue: &IssueSnapshot,
    max_runs_per_issue: u32,
    runner_is_free: bool,
    now: Timestamp,
) -> WakeGuard {
    if issue.status.is_terminal() {
        return WakeGuard::Suppress(Vec::new());
    }
    if runner_is_free {
        return WakeGuard::Proceed { counts: false };
    }
    if max_runs_per_issue == 0 || issue.run_count < i64::from(max_runs_per_issue) {
        return WakeGuard::Proceed { counts: true };
    }
    let message = format!(
        "Runaway guard: {} has had {} runs (the limit is {max_runs_per_issue}), so no further run \
         was started. The board can unblock or requeue it.",
        issue.key, issue.run_count
    );
    match issue.status {
        IssueStatus::Todo | IssueStatus::InProgress => {
            let command = IssueCommand::Block {
                comment: Some(message.clone()),
            };
            let ctx = ActorContext::new(Actor::System);
            let mut transition = issue::decide(issue, command, &ctx, now)
                .expect("Mesa itself may block a todo or in_progress issue with a reason");
            transition.push(IssueEffect::NotifyBoard { message });
            transition.push(IssueEffect::DropQueuedRuns);
            WakeGuard::Block(Box::new(transition))
        }
        IssueStatus::InReview | IssueStatus::BoardReview => WakeGuard::Suppress(vec![
            IssueEffect::AddComment {
                kind: mesa_domain::CommentKind::System,
                body: message.clone(),
            },
            IssueEffect::NotifyBoard { message },
        ]),
        _ => WakeGuard::Suppress(Vec::new()),
    }
}

/// What the loop guard says about starting another run of an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopGuard {
    /// Go ahead.
    Proceed,
    /// Pause the agent until `until` (when the oldest counted run leaves the window) and notify
    /// the board with `message`.
    Pause {
        /// End of the pause.
        until: Timestamp,
        /// One human line for the board.
        message: String,
    },
}

/// The per-agent loop guard (SPEC §6.5): at most `max_runs_per_hour` counted runs in any hour.
/// `recent_run_starts` are the start (or queue) times of the agent's counted runs, in any order;
/// runs of free runners must be left out. `max_runs_per_hour == 0` turns the guard off.
pub fn loop_guard(
    recent_run_starts: &[Timestamp],
    max_runs_per_hour: u32,
    runner_is_free: bool,
    now: Timestamp,
) -> LoopGuard {
    if runner_is_free || max_runs_per_hour == 0 {
        return LoopGuard::Proceed;
    }
    let window_start = now - LOOP_WINDOW;
    let mut in_window: Vec<Timestamp> = recent_run_starts
        .iter()
        .copied()
        .filter(|t| *t > window_start && *t <= now)
        .collect();
    let max = usize::try_from(max_runs_per_hour).unwrap_or(usize::MAX);
    if in_window.len() < max {
        return LoopGuard::Proceed;
    }
    in_window.sort_unstable();
    // One more run is allowed once the window holds max - 1 runs.
    let until = in_window[in_window.len() - max] + LOOP_WINDOW;
    LoopGuard::Pause {
        until,
        message: format!(
            "Loop guard: {} runs in the last hour (the limit is {max_runs_per_hour}); the agent is \
             paused until {until}",
            in_window.len()
        ),
    }
}

#[cfg(test)]
mod tests;
