//! The run lifecycle (SPEC §1 Run, §6).
//!
//! `queued → running → succeeded | failed | cancelled | timed_out`, and `queued → cancelled`.
//! Finished runs are immutable. Runs are moved by Mesa itself (the scheduler); the board may
//! cancel one (`POST /runs/{id}/cancel`). A failed or timed-out run of an issue leaves a system
//! comment with the reason on the issue (§6.5).

use mesa_domain::RunStatus::{Cancelled, Failed, Queued, Running, Succeeded, TimedOut};
use mesa_domain::{Actor, AgentId, IssueKey, RunStatus, Timestamp};

use crate::{Result, Transition, WorkflowError};

command_names! {
    /// The run commands.
    RunCommandKind, "command" {
        /// queued → running.
        Start => "start",
        /// running → succeeded.
        Succeed => "succeed",
        /// running → failed.
        Fail => "fail",
        /// running → timed_out.
        TimeOut => "time_out",
        /// queued/running → cancelled.
        Cancel => "cancel",
    }
}

/// One row of the run table: (from, command, to, the board may make it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunRow {
    /// The status the command starts from.
    pub from: RunStatus,
    /// The command.
    pub command: RunCommandKind,
    /// The status it leads to.
    pub to: RunStatus,
    /// Besides Mesa itself, the board may make this transition.
    pub board: bool,
}

const fn row(from: RunStatus, command: RunCommandKind, to: RunStatus, board: bool) -> RunRow {
    RunRow {
        from,
        command,
        to,
        board,
    }
}

/// Every run transition.
pub const RUN_TABLE: &[RunRow] = &[
    row(Queued, RunCommandKind::Start, Running, false),
    row(Running, RunCommandKind::Succeed, Succeeded, false),
    row(Running, RunCommandKind::Fail, Failed, false),
    row(Running, RunCommandKind::TimeOut, TimedOut, false),
    row(Running, RunCommandKind::Cancel, Cancelled, true),
    row(Queued, RunCommandKind::Cancel, Cancelled, true),
];

/// The commands the table allows from `from`.
pub fn allowed_run_commands(from: RunStatus) -> Vec<RunCommandKind> {
    RunCommandKind::ALL
        .iter()
        .copied()
        .filter(|c| RUN_TABLE.iter().any(|r| r.from == from && r.command == *c))
        .collect()
}

/// A decided run transition.
pub type RunTransition = Transition<RunStatus, RunEffect>;

/// What the run machine needs to know about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSnapshot {
    /// Current status.
    pub status: RunStatus,
    /// The agent.
    pub agent_id: AgentId,
    /// The issue it works on, if any.
    pub issue_key: Option<IssueKey>,
}

/// A command on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// The process was spawned.
    Start,
    /// It ended well.
    Succeed,
    /// It ended badly (`quota`, `server_restart`, `lease_expired`, an exit code...).
    Fail {
        /// Why.
        reason: String,
    },
    /// It hit its timeout.
    TimeOut,
    /// It was stopped (`shutdown`, by the board...).
    Cancel {
        /// Why.
        reason: String,
    },
}

impl RunCommand {
    /// The command's name.
    pub const fn kind(&self) -> RunCommandKind {
        match self {
            RunCommand::Start => RunCommandKind::Start,
            RunCommand::Succeed => RunCommandKind::Succeed,
            RunCommand::Fail { .. } => RunCommandKind::Fail,
            RunCommand::TimeOut => RunCommandKind::TimeOut,
            RunCommand::Cancel { .. } => RunCommandKind::Cancel,
        }
    }
}

/// What the caller does to carry out a run transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEffect {
    /// Set `started_at`.
    SetStartedAt(Timestamp),
    /// Set `finished_at`.
    SetFinishedAt(Timestamp),
    /// Set `failure_reason`.
    SetFailureReason(String),
    /// Stop the process group (a running run being cancelled).
    KillProcess,
    /// Release the run's budget reservation (§6.2).
    ReleaseReservation,
    /// Revoke the run's key (§9.1: valid only while queued or running).
    RevokeRunKey,
    /// Add a system comment to the run's issue.
    IssueComment {
        /// The issue.
        issue: IssueKey,
        /// Markdown body.
        body: String,
    },
}

/// Decides a command on a run.
pub fn decide(
    run: &RunSnapshot,
    command: RunCommand,
    actor: &Actor,
    now: Timestamp,
) -> Result<RunTransition> {
    let kind = command.kind();
    let from = run.status;
    let row = RUN_TABLE
        .iter()
        .find(|r| r.from == from && r.command == kind)
        .ok_or_else(|| WorkflowError::IllegalRunTransition {
            from,
            command: kind,
            allowed: allowed_run_commands(from),
        })?;
    let allowed = matches!(actor, Actor::System) || (row.board && actor.is_board());
    if !allowed {
        return Err(WorkflowError::forbidden(if row.board {
            "only Mesa itself or the board may cancel a run"
        } else {
            "only Mesa itself moves runs"
        }));
    }
    let summary = format!(
        "run of agent {}: {from} → {} ({kind} by {actor})",
        run.agent_id, row.to
    );
    let action = match kind {
        RunCommandKind::Start => "run.start",
        RunCommandKind::Succeed => "run.succeed",
        RunCommandKind::Fail => "run.fail",
        RunCommandKind::TimeOut => "run.time_out",
        RunCommandKind::Cancel => "run.cancel",
    };
    let mut t = Transition::new(Some(from), row.to, action, summary);
    if kind == RunCommandKind::Start {
        t.push(RunEffect::SetStartedAt(now));
        return Ok(t);
    }
    if from == Running && kind == RunCommandKind::Cancel {
        t.push(RunEffect::KillProcess);
    }
    t.push(RunEffect::SetFinishedAt(now));
    let reason = match command {
        RunCommand::Fail { reason } | RunCommand::Cancel { reason } => Some(reason),
        RunCommand::TimeOut => Some("timeout".to_owned()),
        RunCommand::Start | RunCommand::Succeed => None,
    };
    if let Some(reason) = &reason {
        t.push(RunEffect::SetFailureReason(reason.clone()));
    }
    t.push(RunEffect::ReleaseReservation);
    t.push(RunEffect::RevokeRunKey);
    if let (Some(issue), Some(reason)) = (&run.issue_key, reason)
        && matches!(row.to, Failed | TimedOut)
    {
        t.push(RunEffect::IssueComment {
            issue: issue.clone(),
            body: if row.to == Failed {
                format!("The run failed: {reason}")
            } else {
                "The run timed out.".to_owned()
            },
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
