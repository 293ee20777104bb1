//! The issue transition table of SPEC §2, as data.
//!
//! [`TABLE`] is the single source of truth: `decide` finds the row for (status, command) to know
//! whether the command is legal, checks the row's parties to know whether the actor may, and the
//! Markdown in `docs/workflow.md` is rendered from it.

use mesa_domain::IssueStatus;
use mesa_domain::IssueStatus::{
    Blocked, BoardReview, Cancelled, Done, InProgress, InReview, Todo, WontDo,
};

use crate::{Result, WorkflowError};

command_names! {
    /// The issue commands of SPEC §2.
    CommandKind, "command" {
        /// (new) → todo.
        Create => "create",
        /// The atomic claim of §2.2: todo/blocked → in_progress.
        Checkout => "checkout",
        /// todo → in_progress without the checkout protocol.
        Start => "start",
        /// todo/in_progress → blocked, with a reason.
        Block => "block",
        /// blocked → in_progress.
        Unblock => "unblock",
        /// blocked → todo.
        Requeue => "requeue",
        /// in_progress → in_review (or board_review, or done for the CEO's reviewed parent).
        Submit => "submit",
        /// in_progress → todo, unassigned.
        Release => "release",
        /// in_review/board_review → done.
        Approve => "approve",
        /// in_review/board_review → todo.
        RequestChanges => "request_changes",
        /// in_review → board_review.
        Escalate => "escalate",
        /// in_review/board_review → wont_do.
        Reject => "reject",
        /// any non-terminal → cancelled.
        Cancel => "cancel",
        /// terminal → todo.
        Reopen => "reopen",
    }
}

/// Someone a row lets act. An actor may make a transition when it is any of the row's parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// A board token or a board member on Telegram.
    Board,
    /// The agent the issue is assigned to.
    Assignee,
    /// Any agent, when the issue is unassigned (it claims the issue).
    Claimer,
    /// The resolved reviewer (§4.1) of the assignee, never the submitter or the assignee.
    Reviewer,
    /// Anyone in the assignee's reviewer chain (its reviewer and managers up to the CEO).
    ReviewerChain,
    /// The CEO agent.
    Ceo,
    /// The agent that created the issue.
    Creator,
    /// Any agent.
    AnyAgent,
    /// Mesa itself (the scheduler's guards).
    Mesa,
    /// An incoming webhook (§11.3).
    Webhook,
}

impl Party {
    /// How the party reads in a sentence and in the rendered table.
    pub const fn describe(self) -> &'static str {
        match self {
            Party::Board => "the board",
            Party::Assignee => "the assignee",
            Party::Claimer => "any agent if unassigned (claims it)",
            Party::Reviewer => "the reviewer (§4.1)",
            Party::ReviewerChain => "the assignee's reviewer chain",
            Party::Ceo => "the CEO",
            Party::Creator => "the creator agent",
            Party::AnyAgent => "any agent",
            Party::Mesa => "Mesa itself",
            Party::Webhook => "an incoming webhook",
        }
    }
}

/// Renders a list of parties as `a, b or c`.
pub(crate) fn describe_parties(parties: &[Party]) -> String {
    let names: Vec<_> = parties.iter().map(|p| p.describe()).collect();
    match names.split_last() {
        None => "nobody".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The status the command starts from; `None` for creation.
    pub from: Option<IssueStatus>,
    /// The status it leads to.
    pub to: IssueStatus,
    /// The command.
    pub command: CommandKind,
    /// Who may make it.
    pub who: &'static [Party],
    /// When this row applies and what the command needs.
    pub note: &'static str,
}

const fn row(
    from: IssueStatus,
    to: IssueStatus,
    command: CommandKind,
    who: &'static [Party],
    note: &'static str,
) -> Row {
    Row {
        from: Some(from),
        to,
        command,
        who,
        note,
    }
}

use CommandKind as C;
use Party as P;

const WORKER: &[Party] = &[P::Assignee, P::Board];
const REVIEW: &[Party] = &[P::Reviewer, P::Board];
const BOARD: &[Party] = &[P::Board];
const CANCEL: &[Party] = &[P::Board, P::Ceo, P::Creator];
const CANCEL_NOTE: &str =
    "reason required; `force` when evidence is newer than the last status change";
const REOPEN: &[Party] = &[P::Board, P::Ceo];

/// Every transition of SPEC §2. Rows sharing (from, command) share their parties.
pub const TABLE: &[Row] = &[
    Row {
        from: None,
        to: Todo,
        command: C::Create,
        who: &[P::Board, P::AnyAgent, P::Mesa, P::Webhook],
        note: "no assignee: assigned to the CEO",
    },
    row(
        Todo,
        InProgress,
        C::Checkout,
        &[P::Assignee, P::Claimer],
        "§2.2; sets the assignee",
    ),
    row(
        Blocked,
        InProgress,
        C::Checkout,
        &[P::Assignee, P::Claimer],
        "§2.2; sets the assignee",
    ),
    row(
        InProgress,
        InProgress,
        C::Checkout,
        &[P::Assignee],
        "the holder again: idempotent",
    ),
    row(
        Todo,
        InProgress,
        C::Start,
        &[P::Assignee, P::Claimer, P::Board],
        "needs an assignee",
    ),
    row(
        Todo,
        Blocked,
        C::Block,
        &[P::Assignee, P::Board, P::Mesa],
        "reason comment required",
    ),
    row(
        InProgress,
        Blocked,
        C::Block,
        &[P::Assignee, P::Board, P::Mesa],
        "reason comment required",
    ),
    row(Blocked, InProgress, C::Unblock, WORKER, "needs an assignee"),
    row(Blocked, Todo, C::Requeue, &[P::ReviewerChain, P::Board], ""),
    row(
        InProgress,
        InReview,
        C::Submit,
        &[P::Assignee],
        "comment or evidence required; the reviewer is an agent",
    ),
    row(
        InProgress,
        BoardReview,
        C::Submit,
        &[P::Assignee],
        "no reviewer left up the chain",
    ),
    row(
        InProgress,
        Done,
        C::Submit,
        &[P::Assignee],
        "the CEO closing a parent whose sub-issues are terminal, ≥1 done",
    ),
    row(InProgress, Todo, C::Release, WORKER, "unassigns"),
    row(InReview, Done, C::Approve, REVIEW, "no open sub-issues"),
    row(
        InReview,
        Todo,
        C::RequestChanges,
        REVIEW,
        "comment required",
    ),
    row(InReview, BoardReview, C::Escalate, REVIEW, ""),
    row(InReview, WontDo, C::Reject, REVIEW, "comment required"),
    row(
        BoardReview,
        Done,
        C::Approve,
        BOARD,
        "board decision; no open sub-issues",
    ),
    row(
        BoardReview,
        Todo,
        C::RequestChanges,
        BOARD,
        "board decision; comment required",
    ),
    row(
        BoardReview,
        WontDo,
        C::Reject,
        BOARD,
        "board decision; comment required",
    ),
    row(Todo, Cancelled, C::Cancel, CANCEL, CANCEL_NOTE),
    row(InProgress, Cancelled, C::Cancel, CANCEL, CANCEL_NOTE),
    row(Blocked, Cancelled, C::Cancel, CANCEL, CANCEL_NOTE),
    row(InReview, Cancelled, C::Cancel, CANCEL, CANCEL_NOTE),
    row(BoardReview, Cancelled, C::Cancel, CANCEL, CANCEL_NOTE),
    row(Done, Todo, C::Reopen, REOPEN, "clears completed_at"),
    row(WontDo, Todo, C::Reopen, REOPEN, "clears completed_at"),
    row(
        Cancelled,
        Todo,
        C::Reopen,
        REOPEN,
        "clears completed_at and the cancellation reason",
    ),
];

/// The rows leaving `from` with `command`.
pub fn rows(from: IssueStatus, command: CommandKind) -> impl Iterator<Item = &'static Row> {
    TABLE
        .iter()
        .filter(move |r| r.from == Some(from) && r.command == command)
}

/// True when (from, command, to) is a row of the table.
pub fn is_row(from: Option<IssueStatus>, command: CommandKind, to: IssueStatus) -> bool {
    TABLE
        .iter()
        .any(|r| r.from == from && r.command == command && r.to == to)
}

/// The commands the table allows from `from`, in [`CommandKind::ALL`] order.
pub fn allowed_commands(from: IssueStatus) -> Vec<CommandKind> {
    CommandKind::ALL
        .iter()
        .copied()
        .filter(|c| rows(from, *c).next().is_some())
        .collect()
}

/// The command a PATCH with `status: to` means for an issue in `from`
/// (e.g. `in_progress` from `blocked` is `unblock`, `todo` from `in_review` is `request_changes`).
///
/// `Ok(None)` when `to == from` (nothing to do). Checkout has its own endpoint and is never the
/// answer; `start` is. Asking for `done`, `board_review` or `in_review` from `in_progress` means
/// `submit`, and the review chain decides where the issue lands.
pub fn command_for_target(from: IssueStatus, to: IssueStatus) -> Result<Option<CommandKind>> {
    if from == to {
        return Ok(None);
    }
    TABLE
        .iter()
        .find(|r| r.from == Some(from) && r.to == to && r.command != C::Checkout)
        .map(|r| Some(r.command))
        .ok_or_else(|| WorkflowError::IllegalTarget {
            from,
            to,
            allowed: allowed_commands(from),
        })
}

/// Reads PATCH's `status` field, which may name a status or a command (SPEC §9.3), and returns
/// the command it means for an issue in `from`. Unknown names are a 422 on `status`.
pub fn patch_command(from: IssueStatus, status: &str) -> Result<Option<CommandKind>> {
    if let Ok(to) = IssueStatus::parse(status) {
        return command_for_target(from, to);
    }
    match CommandKind::parse(status) {
        Ok(C::Create) | Err(_) => Err(WorkflowError::Invalid(mesa_domain::ValidationError::new(
            "status",
            format!(
                "status must name a status ({}) or a command ({})",
                IssueStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                CommandKind::ALL[1..]
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ))),
        Ok(command) => Ok(Some(command)),
    }
}
