//! Approvals (SPEC §4.2): routing, resolving, escalating, expiring and cancelling.
//!
//! Structural kinds (`archetype_patch`, `agent_hire`, `budget_change`, `work_block_activation`,
//! `work_block_ship`) are addressed to the board; `destructive_action` and `other` go to the
//! requester's reviewer, who may decide or escalate to the board. Only a `pending` approval
//! moves; every other status is final ([`WorkflowError::NotPending`]). A pending approval past
//! its `expires_at` counts as expired.
//!
//! Resolving emits [`ApprovalEffect::Apply`] (approve) or [`ApprovalEffect::Discard`] (reject):
//! the caller carries the kind's effect out in the same transaction (activates the block, applies
//! the patch, creates the agent, changes the budget), and wakes the requester.

use std::time::Duration;

use mesa_domain::entity::{APPROVAL_TTL, Approver, Requester};
use mesa_domain::{
    Actor, AgentId, ApprovalDecision, ApprovalKind, ApprovalStatus, RunTrigger, Timestamp,
};

use crate::{Activity, Result, Transition, WorkflowError, text_of};

/// A decided approval transition.
pub type ApprovalTransition = Transition<ApprovalStatus, ApprovalEffect>;

/// Who decides an approval of `kind`: the board for structural kinds; otherwise the first agent
/// of the requester's review chain ([`crate::review_chain::reviewer_chain`]), or the board when
/// the chain is empty (and for the board's own requests, whose chain is empty).
pub fn route(kind: ApprovalKind, requester_chain: &[AgentId]) -> Approver {
    match requester_chain.first() {
        Some(reviewer) if !kind.is_structural() => Approver::Agent(*reviewer),
        _ => Approver::Board,
    }
}

/// The approval transitions as (from, to, command, who may), for the rendered table; [`decide`]
/// and [`expire_due`] enforce them.
pub const APPROVAL_TABLE: &[(ApprovalStatus, ApprovalStatus, &str, &str)] = &[
    (
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        "resolve approve",
        "the approver, the board",
    ),
    (
        ApprovalStatus::Pending,
        ApprovalStatus::Rejected,
        "resolve reject",
        "the approver, the board",
    ),
    (
        ApprovalStatus::Pending,
        ApprovalStatus::Pending,
        "escalate (approver becomes the board)",
        "the agent approver",
    ),
    (
        ApprovalStatus::Pending,
        ApprovalStatus::Cancelled,
        "cancel",
        "the requester, the board; Mesa when a move makes it moot",
    ),
    (
        ApprovalStatus::Pending,
        ApprovalStatus::Expired,
        "expire (at `expires_at`, default 72 h)",
        "Mesa itself",
    ),
];

/// A new approval, as decided: whom it is addressed to, when it expires, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// Who decides.
    pub approver: Approver,
    /// When it lapses if undecided.
    pub expires_at: Timestamp,
    /// Effects of the request.
    pub effects: Vec<ApprovalEffect>,
    /// The audit-log row.
    pub activity: Activity,
}

/// Decides a new approval request. `ttl` defaults to 72 hours ([`APPROVAL_TTL`]).
pub fn request(
    kind: ApprovalKind,
    title: &str,
    requester_chain: &[AgentId],
    now: Timestamp,
    ttl: Option<Duration>,
) -> ApprovalRequest {
    let approver = route(kind, requester_chain);
    let mut effects = Vec::new();
    if approver == Approver::Board {
        effects.push(ApprovalEffect::NotifyBoard {
            message: format!("Approval requested ({kind}): {title}"),
        });
    }
    ApprovalRequest {
        approver,
        expires_at: now + ttl.unwrap_or(APPROVAL_TTL),
        effects,
        activity: Activity {
            action: "approval.request",
            summary: format!(
                "approval \"{title}\" ({kind}) requested, addressed to {}",
                name(approver)
            ),
        },
    }
}

/// What the approval machine needs to know about an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSnapshot {
    /// What it decides.
    pub kind: ApprovalKind,
    /// Title, for summaries.
    pub title: String,
    /// Current status.
    pub status: ApprovalStatus,
    /// Who decides.
    pub approver: Approver,
    /// Who asked.
    pub requested_by: Requester,
    /// When it lapses.
    pub expires_at: Option<Timestamp>,
}

impl ApprovalSnapshot {
    /// The status as of `now`: a pending approval past its expiry is `expired`.
    pub fn status_at(&self, now: Timestamp) -> ApprovalStatus {
        match self.expires_at {
            Some(at) if self.status == ApprovalStatus::Pending && at <= now => {
                ApprovalStatus::Expired
            }
            _ => self.status,
        }
    }
}

/// A command on a pending approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalCommand {
    /// Approve or reject (the approver, or the board).
    Resolve {
        /// The decision.
        decision: ApprovalDecision,
        /// Optional comment, kept as `decision_comment`.
        comment: Option<String>,
    },
    /// Hand it to the board (the agent approver only).
    Escalate {
        /// Optional note for the board.
        comment: Option<String>,
    },
    /// Withdraw it (the requester, or the board).
    Cancel,
}

/// What the caller does to carry out an approval transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalEffect {
    /// Record `decided_by` (the actor), `decided_at` and `decision_comment`.
    RecordDecision {
        /// When.
        decided_at: Timestamp,
        /// The decider's comment.
        comment: Option<String>,
    },
    /// Change the approver (escalation to the board).
    SetApprover(Approver),
    /// Carry out the kind's effect atomically (activate or ship the block, apply the patch,
    /// create the agent, change the budget; nothing for `destructive_action` and `other`, whose
    /// requester proceeds when woken).
    Apply(ApprovalKind),
    /// The request will not happen: settle its subject (e.g. an archetype patch is rejected).
    Discard(ApprovalKind),
    /// Wake the requester (trigger `approval_resolved`). Never the acting agent.
    Wake {
        /// The requester.
        agent: AgentId,
        /// Always `approval_resolved`.
        trigger: RunTrigger,
    },
    /// Tell the board.
    NotifyBoard {
        /// One human line.
        message: String,
    },
}

fn name(approver: Approver) -> String {
    match approver {
        Approver::Board => "the board".to_owned(),
        Approver::Agent(id) => format!("agent {id}"),
    }
}

/// Decides a command on an approval.
pub fn decide(
    approval: &ApprovalSnapshot,
    command: ApprovalCommand,
    actor: &Actor,
    now: Timestamp,
) -> Result<ApprovalTransition> {
    let status = approval.status_at(now);
    if status != ApprovalStatus::Pending {
        return Err(WorkflowError::NotPending { status });
    }
    let agent = actor.agent_id();
    let is_approver =
        actor.is_board() || matches!(approval.approver, Approver::Agent(a) if Some(a) == agent);
    let is_requester =
        agent.is_some() && matches!(approval.requested_by, Requester::Agent(a) if Some(a) == agent);
    let from = ApprovalStatus::Pending;
    let title = &approval.title;

    match command {
        ApprovalCommand::Resolve { decision, comment } => {
            if !is_approver {
                return Err(WorkflowError::forbidden(format!(
                    "only {} or the board may resolve this approval",
                    name(approval.approver)
                )));
            }
            if is_requester && !actor.is_board() {
                return Err(WorkflowError::forbidden(
                    "an agent cannot resolve its own request",
                ));
            }
            let (to, action, verb) = match decision {
                ApprovalDecision::Approve => {
                    (ApprovalStatus::Approved, "approval.approve", "approved")
                }
                ApprovalDecision::Reject => {
                    (ApprovalStatus::Rejected, "approval.reject", "rejected")
                }
            };
            let summary = format!("approval \"{title}\" ({}) {verb} by {actor}", approval.kind);
            let mut t = Transition::new(Some(from), to, action, summary);
            t.push(ApprovalEffect::RecordDecision {
                decided_at: now,
                comment: text_of(comment),
            });
            t.push(match decision {
                ApprovalDecision::Approve => ApprovalEffect::Apply(approval.kind),
                ApprovalDecision::Reject => ApprovalEffect::Discard(approval.kind),
            });
            if let Requester::Agent(requester) = approval.requested_by
                && Some(requester) != agent
            {
                t.push(ApprovalEffect::Wake {
                    agent: requester,
                    trigger: RunTrigger::ApprovalResolved,
                });
            }
            Ok(t)
        }
        ApprovalCommand::Escalate { comment } => {
            let Approver::Agent(approver) = approval.approver else {
                return Err(WorkflowError::forbidden(
                    "the approval is already addressed to the board",
                ));
            };
            if agent != Some(approver) {
                return Err(WorkflowError::forbidden(format!(
                    "only {} may escalate this approval",
                    name(approval.approver)
                )));
            }
            let summary = format!("approval \"{title}\" escalated to the board by {actor}");
            let mut t = Transition::new(Some(from), from, "approval.escalate", summary);
            t.push(ApprovalEffect::SetApprover(Approver::Board));
            let note = text_of(comment)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            t.push(ApprovalEffect::NotifyBoard {
                message: format!(
                    "Approval escalated to the board ({}): {title}{note}",
                    approval.kind
                ),
            });
            Ok(t)
        }
        ApprovalCommand::Cancel => {
            // Mesa itself withdraws approvals a move made moot (a shipped block's pending ship
            // approval, a cancelled block's activation request).
            if !actor.is_board() && !is_requester && !matches!(actor, Actor::System) {
                return Err(WorkflowError::forbidden(
                    "only the requester or the board may cancel an approval",
                ));
            }
            let summary = format!("approval \"{title}\" cancelled by {actor}");
            let mut t = Transition::new(
                Some(from),
                ApprovalStatus::Cancelled,
                "approval.cancel",
                summary,
            );
            t.push(ApprovalEffect::RecordDecision {
                decided_at: now,
                comment: None,
            });
            t.push(ApprovalEffect::Discard(approval.kind));
            Ok(t)
        }
    }
}

/// The expiry of a pending approval whose `expires_at` has passed, if due. The caller runs it
/// for every pending approval it finds expired (actor `system`).
pub fn expire_due(approval: &ApprovalSnapshot, now: Timestamp) -> Option<ApprovalTransition> {
    if approval.status != ApprovalStatus::Pending
        || approval.status_at(now) != ApprovalStatus::Expired
    {
        return None;
    }
    let summary = format!(
        "approval \"{}\" ({}) expired",
        approval.title, approval.kind
    );
    let mut t = Transition::new(
        Some(ApprovalStatus::Pending),
        ApprovalStatus::Expired,
        "approval.expire",
        summary,
    );
    t.push(ApprovalEffect::RecordDecision {
        decided_at: now,
        comment: None,
    });
    t.push(ApprovalEffect::Discard(approval.kind));
    // The requester learns that nobody decided in time.
    if let Requester::Agent(requester) = approval.requested_by {
        t.push(ApprovalEffect::Wake {
            agent: requester,
            trigger: RunTrigger::ApprovalResolved,
        });
    }
    Some(t)
}

#[cfg(test)]
mod tests;
