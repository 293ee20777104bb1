//! The work-block lifecycle (SPEC §3.1).
//!
//! `proposed → active → ready → shipped`, `ready → active` (reopen), and `cancelled` from any
//! non-terminal status; `shipped` and `cancelled` are terminal and immutable. At most one block
//! is active: the caller passes the id of the active block, if any, and activating another is
//! [`WorkflowError::SecondActiveBlock`] (the database enforces it too).
//!
//! Activation and shipping are board decisions. When an agent asks for them, the decision is not
//! a status change but a [`BlockEffect::RequestApproval`] (`work_block_activation` /
//! `work_block_ship`); the block moves when the board approves and the caller carries the
//! approval out with [`command_for_approval`]. `active → ready` is made by the CEO, the board, or
//! Mesa itself when [`auto_ready`] holds ([`auto_transition`]).

use mesa_domain::WorkBlockStatus::{Active, Cancelled, Proposed, Ready, Shipped};
use mesa_domain::{
    Actor, ApprovalKind, IssueKey, IssueStatus, Timestamp, WorkBlockId, WorkBlockStatus,
};

use crate::{Result, Transition, WorkflowError};

command_names! {
    /// The work-block commands of SPEC §3.1.
    BlockCommandKind, "command" {
        /// (new) → proposed.
        Propose => "propose",
        /// proposed → active.
        Activate => "activate",
        /// ready → active.
        Reopen => "reopen",
        /// active → ready.
        MarkReady => "mark_ready",
        /// ready → shipped.
        Ship => "ship",
        /// any non-terminal → cancelled.
        Cancel => "cancel",
        /// Add an issue to a proposed or active block.
        AddIssue => "add_issue",
        /// Remove an issue from a proposed or active block.
        RemoveIssue => "remove_issue",
    }
}

/// Someone a work-block row lets act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockParty {
    /// The board.
    Board,
    /// The CEO agent.
    Ceo,
    /// Any agent.
    AnyAgent,
    /// Mesa itself (the automatic `active → ready`).
    Mesa,
}

impl BlockParty {
    /// How the party reads in the rendered table.
    pub const fn describe(self) -> &'static str {
        match self {
            BlockParty::Board => "the board",
            BlockParty::Ceo => "the CEO",
            BlockParty::AnyAgent => "any agent",
            BlockParty::Mesa => "Mesa itself",
        }
    }
}

/// One row of the work-block table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRow {
    /// The status the command starts from; `None` for creation.
    pub from: Option<WorkBlockStatus>,
    /// The status it leads to.
    pub to: WorkBlockStatus,
    /// The command.
    pub command: BlockCommandKind,
    /// Who may make it directly.
    pub who: &'static [BlockParty],
    /// An agent outside `who` asking for it gets an approval of this kind instead.
    pub agent_request: Option<ApprovalKind>,
    /// When the row applies.
    pub note: &'static str,
}

const fn row(
    from: WorkBlockStatus,
    to: WorkBlockStatus,
    command: BlockCommandKind,
    who: &'static [BlockParty],
    agent_request: Option<ApprovalKind>,
    note: &'static str,
) -> BlockRow {
    BlockRow {
        from: Some(from),
        to,
        command,
        who,
        agent_request,
        note,
    }
}

use BlockCommandKind as C;
use BlockParty as P;

const BOARD: &[BlockParty] = &[P::Board];
const MEMBERS: &[BlockParty] = &[P::Board, P::AnyAgent];
const ACTIVATION: Option<ApprovalKind> = Some(ApprovalKind::WorkBlockActivation);
const SHIP: Option<ApprovalKind> = Some(ApprovalKind::WorkBlockShip);

/// Every transition of SPEC §3.1.
pub const BLOCK_TABLE: &[BlockRow] = &[
    BlockRow {
        from: None,
        to: Proposed,
        command: C::Propose,
        who: MEMBERS,
        agent_request: None,
        note: "several may be proposed",
    },
    row(
        Proposed,
        Active,
        C::Activate,
        BOARD,
        ACTIVATION,
        "no other block active",
    ),
    row(
        Ready,
        Active,
        C::Reopen,
        BOARD,
        ACTIVATION,
        "no other block active",
    ),
    row(
        Active,
        Ready,
        C::MarkReady,
        &[P::Board, P::Ceo, P::Mesa],
        None,
        "automatic when every member issue is terminal and ≥1 done; notifies the board with a ship approval",
    ),
    row(Ready, Shipped, C::Ship, BOARD, SHIP, "terminal"),
    row(Proposed, Cancelled, C::Cancel, BOARD, None, "terminal"),
    row(Active, Cancelled, C::Cancel, BOARD, None, "terminal"),
    row(Ready, Cancelled, C::Cancel, BOARD, None, "terminal"),
    row(
        Proposed,
        Proposed,
        C::AddIssue,
        MEMBERS,
        None,
        "an issue belongs to at most one block",
    ),
    row(
        Active,
        Active,
        C::AddIssue,
        MEMBERS,
        None,
        "an issue belongs to at most one block",
    ),
    row(Proposed, Proposed, C::RemoveIssue, MEMBERS, None, ""),
    row(Active, Active, C::RemoveIssue, MEMBERS, None, ""),
];

/// The commands the table allows from `from`, in [`BlockCommandKind::ALL`] order.
pub fn allowed_block_commands(from: WorkBlockStatus) -> Vec<BlockCommandKind> {
    BlockCommandKind::ALL
        .iter()
        .copied()
        .filter(|c| block_row(from, *c).is_some())
        .collect()
}

/// The row leaving `from` with `command`.
pub fn block_row(from: WorkBlockStatus, command: BlockCommandKind) -> Option<&'static BlockRow> {
    BLOCK_TABLE
        .iter()
        .find(|r| r.from == Some(from) && r.command == command)
}

/// The command a PATCH `{status: to}` means for a block in `from` (`active` from `ready` is
/// `reopen`). `None` for `proposed`, which no command returns to.
pub const fn command_for_target(
    from: WorkBlockStatus,
    to: WorkBlockStatus,
) -> Option<BlockCommandKind> {
    match to {
        Active if matches!(from, Ready) => Some(C::Reopen),
        Active => Some(C::Activate),
        Ready => Some(C::MarkReady),
        Shipped => Some(C::Ship),
        Cancelled => Some(C::Cancel),
        Proposed => None,
    }
}

/// A decided work-block transition.
pub type BlockTransition = Transition<WorkBlockStatus, BlockEffect>;

/// What the work-block machine needs to know about a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkBlockSnapshot {
    /// Identity.
    pub id: WorkBlockId,
    /// Title, for summaries and approval titles.
    pub title: String,
    /// Current status.
    pub status: WorkBlockStatus,
    /// The block that is active now, if any (possibly this one).
    pub active_block: Option<WorkBlockId>,
}

/// Who is acting on a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// The actor.
    pub actor: Actor,
    /// The actor is the CEO agent.
    pub is_ceo: bool,
}

impl BlockContext {
    /// A context for `actor`, not the CEO.
    pub const fn new(actor: Actor) -> Self {
        BlockContext {
            actor,
            is_ceo: false,
        }
    }

    fn is(&self, party: BlockParty) -> bool {
        match party {
            BlockParty::Board => self.actor.is_board(),
            BlockParty::Ceo => self.is_ceo && self.actor.agent_id().is_some(),
            BlockParty::AnyAgent => self.actor.agent_id().is_some(),
            BlockParty::Mesa => matches!(self.actor, Actor::System),
        }
    }
}

/// A command on an existing block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockCommand {
    /// proposed → active.
    Activate,
    /// ready → active.
    Reopen,
    /// active → ready.
    MarkReady,
    /// ready → shipped.
    Ship,
    /// → cancelled.
    Cancel,
    /// Add an issue.
    AddIssue {
        /// The issue.
        issue: IssueKey,
        /// The block the issue belongs to now, if any.
        current_block: Option<WorkBlockId>,
    },
    /// Remove an issue.
    RemoveIssue {
        /// The issue.
        issue: IssueKey,
    },
}

impl BlockCommand {
    /// The command's name.
    pub const fn kind(&self) -> BlockCommandKind {
        match self {
            BlockCommand::Activate => C::Activate,
            BlockCommand::Reopen => C::Reopen,
            BlockCommand::MarkReady => C::MarkReady,
            BlockCommand::Ship => C::Ship,
            BlockCommand::Cancel => C::Cancel,
            BlockCommand::AddIssue { .. } => C::AddIssue,
            BlockCommand::RemoveIssue { .. } => C::RemoveIssue,
        }
    }
}

/// What the caller does to carry out a work-block transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockEffect {
    /// Set `activated_at` (the latest activation).
    SetActivatedAt(Timestamp),
    /// Set `ready_at`.
    SetReadyAt(Timestamp),
    /// Clear `ready_at` (reopen).
    ClearReadyAt,
    /// Set `shipped_at`.
    SetShippedAt(Timestamp),
    /// Set `cancelled_at`.
    SetCancelledAt(Timestamp),
    /// Create an approval about this block, requested by the actor and addressed to the board.
    RequestApproval {
        /// `work_block_activation` or `work_block_ship`.
        kind: ApprovalKind,
        /// The approval's title.
        title: String,
    },
    /// Cancel pending approvals about this block that the move makes moot (`None`: every kind).
    CancelPendingApprovals {
        /// Only this kind, or all.
        kind: Option<ApprovalKind>,
    },
    /// Tell the board (SSE, Telegram, Discord).
    NotifyBoard {
        /// One human line.
        message: String,
    },
    /// Set the issue's `work_block_id` to this block.
    AddIssue(IssueKey),
    /// Clear the issue's `work_block_id`.
    RemoveIssue(IssueKey),
}

/// Decides the proposal of a new block: the board and any agent may propose.
pub fn propose(title: &str, actor: &Actor) -> Result<BlockTransition> {
    let ctx = BlockContext::new(actor.clone());
    if !MEMBERS.iter().any(|p| ctx.is(*p)) {
        return Err(WorkflowError::forbidden(
            "only the board or an agent may propose a work block",
        ));
    }
    let summary = format!("work block \"{title}\": proposed (by {actor})");
    Ok(Transition::new(
        None,
        Proposed,
        "work_block.propose",
        summary,
    ))
}

/// True when an active block should become ready by itself: every member issue is terminal and
/// at least one is `done` (SPEC §3.1).
pub fn auto_ready(member_statuses: &[IssueStatus]) -> bool {
    member_statuses.iter().all(|s| s.is_terminal()) && member_statuses.contains(&IssueStatus::Done)
}

/// The automatic `active → ready` after a member issue changed, if it is due.
pub fn auto_transition(
    block: &WorkBlockSnapshot,
    member_statuses: &[IssueStatus],
    now: Timestamp,
) -> Option<BlockTransition> {
    (block.status == Active && auto_ready(member_statuses))
        .then(|| {
            decide(
                block,
                BlockCommand::MarkReady,
                &BlockContext::new(Actor::System),
                now,
            )
            .ok()
        })
        .flatten()
}

/// The command that carries out an approved `work_block_activation` / `work_block_ship` for a
/// block in `status` (an activation of a ready block is a reopen). `None` for other kinds.
pub const fn command_for_approval(
    kind: ApprovalKind,
    status: WorkBlockStatus,
) -> Option<BlockCommand> {
    match kind {
        ApprovalKind::WorkBlockActivation if matches!(status, Ready) => Some(BlockCommand::Reopen),
        ApprovalKind::WorkBlockActivation => Some(BlockCommand::Activate),
        ApprovalKind::WorkBlockShip => Some(BlockCommand::Ship),
        _ => None,
    }
}

/// Decides a command on an existing block.
pub fn decide(
    block: &WorkBlockSnapshot,
    command: BlockCommand,
    ctx: &BlockContext,
    now: Timestamp,
) -> Result<BlockTransition> {
    let kind = command.kind();
    let from = block.status;
    let row = block_row(from, kind).ok_or_else(|| WorkflowError::IllegalBlockTransition {
        from,
        command: kind,
        allowed: allowed_block_commands(from),
    })?;
    let summary = |to: WorkBlockStatus, what: &str| {
        format!(
            "work block \"{}\": {from} → {to} ({what} by {})",
            block.title, ctx.actor
        )
    };

    if !row.who.iter().any(|p| ctx.is(*p)) {
        return match row.agent_request {
            Some(approval) if ctx.actor.agent_id().is_some() => {
                let (action, title) = match approval {
                    ApprovalKind::WorkBlockShip => ("work_block.ship_requested", "Ship"),
                    _ => ("work_block.activation_requested", "Activate"),
                };
                let mut t = Transition::new(Some(from), from, action, summary(from, action));
                t.push(BlockEffect::RequestApproval {
                    kind: approval,
                    title: format!("{title} work block \"{}\"", block.title),
                });
                Ok(t)
            }
            _ => Err(WorkflowError::forbidden(format!(
                "only {} may {kind} a work block that is {from}",
                describe(row.who)
            ))),
        };
    }

    let action = match kind {
        C::Propose => "work_block.propose",
        C::Activate => "work_block.activate",
        C::Reopen => "work_block.reopen",
        C::MarkReady => "work_block.ready",
        C::Ship => "work_block.ship",
        C::Cancel => "work_block.cancel",
        C::AddIssue => "work_block.add_issue",
        C::RemoveIssue => "work_block.remove_issue",
    };
    let mut t = Transition::new(Some(from), row.to, action, summary(row.to, kind.as_str()));
    match command {
        BlockCommand::Activate | BlockCommand::Reopen => {
            if let Some(active) = block.active_block.filter(|a| *a != block.id) {
                return Err(WorkflowError::SecondActiveBlock { active });
            }
            t.push(BlockEffect::SetActivatedAt(now));
            if from == Ready {
                t.push(BlockEffect::ClearReadyAt);
                t.push(BlockEffect::CancelPendingApprovals { kind: None });
            } else {
                t.push(BlockEffect::CancelPendingApprovals { kind: ACTIVATION });
            }
        }
        BlockCommand::MarkReady => {
            t.push(BlockEffect::SetReadyAt(now));
            t.push(BlockEffect::NotifyBoard {
                message: format!("Work block \"{}\" is ready to ship", block.title),
            });
            t.push(BlockEffect::RequestApproval {
                kind: ApprovalKind::WorkBlockShip,
                title: format!("Ship work block \"{}\"", block.title),
            });
        }
        BlockCommand::Ship => {
            t.push(BlockEffect::SetShippedAt(now));
            t.push(BlockEffect::CancelPendingApprovals { kind: SHIP });
        }
        BlockCommand::Cancel => {
            t.push(BlockEffect::SetCancelledAt(now));
            t.push(BlockEffect::CancelPendingApprovals { kind: None });
        }
        BlockCommand::AddIssue {
            issue,
            current_block,
        } => match current_block {
            Some(other) if other != block.id => {
                return Err(WorkflowError::InOtherBlock { block: other });
            }
            Some(_) => {}
            None => t.push(BlockEffect::AddIssue(issue)),
        },
        BlockCommand::RemoveIssue { issue } => t.push(BlockEffect::RemoveIssue(issue)),
    }
    Ok(t)
}

pub(crate) fn describe(parties: &[BlockParty]) -> String {
    let names: Vec<_> = parties.iter().map(|p| p.describe()).collect();
    match names.split_last() {
        None => "nobody".to_owned(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests;
