use std::time::Duration;

use mesa_domain::entity::{Approver, Requester};
use mesa_domain::{Actor, ApprovalDecision, ApprovalKind, ApprovalStatus, RunTrigger, Timestamp};

use super::*;
use crate::fixtures::{agent, agent_id};

const NOW: Timestamp = Timestamp::from_millis(10_000_000);
const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn routing() {
    let chain = [agent_id(4), agent_id(1)];
    for kind in ApprovalKind::ALL {
        let expected = if kind.is_structural() {
            Approver::Board
        } else {
            Approver::Agent(agent_id(4))
        };
        assert_eq!(route(*kind, &chain), expected, "{kind}");
        // No chain (the CEO, the board): the board decides.
        assert_eq!(route(*kind, &[]), Approver::Board, "{kind}");
    }
}

#[test]
fn a_request_expires_after_72_hours_by_default() {
    let r = request(
        ApprovalKind::AgentHire,
        "Hire a designer",
        &[agent_id(1)],
        NOW,
        None,
    );
    assert_eq!(r.approver, Approver::Board);
    assert_eq!(r.expires_at, NOW + Duration::from_secs(72 * 3600));
    assert_eq!(
        r.effects,
        [ApprovalEffect::NotifyBoard {
            message: "Approval requested (agent_hire): Hire a designer".into()
        }]
    );
    let r = request(
        ApprovalKind::DestructiveAction,
        "Drop the table",
        &[agent_id(1)],
        NOW,
        Some(HOUR),
    );
    assert_eq!(r.approver, Approver::Agent(agent_id(1)));
    assert_eq!(r.expires_at, NOW + HOUR);
    assert!(r.effects.is_empty());
    assert_eq!(r.activity.action, "approval.request");
}

fn pending(kind: ApprovalKind, approver: Approver) -> ApprovalSnapshot {
    ApprovalSnapshot {
        kind,
        title: "Ship it".into(),
        status: ApprovalStatus::Pending,
        approver,
        requested_by: Requester::Agent(agent_id(3)),
        expires_at: Some(NOW + HOUR),
    }
}

fn resolve(decision: ApprovalDecision) -> ApprovalCommand {
    ApprovalCommand::Resolve {
        decision,
        comment: Some(" fine ".into()),
    }
}

#[test]
fn the_approver_or_the_board_resolves_and_the_requester_is_woken() {
    let approval = pending(
        ApprovalKind::DestructiveAction,
        Approver::Agent(agent_id(4)),
    );
    for actor in [agent(4), Actor::board("ops")] {
        let t = decide(&approval, resolve(ApprovalDecision::Approve), &actor, NOW).unwrap();
        assert_eq!(
            (t.from, t.to),
            (Some(ApprovalStatus::Pending), ApprovalStatus::Approved)
        );
        assert_eq!(
            t.effects,
            [
                ApprovalEffect::RecordDecision {
                    decided_at: NOW,
                    comment: Some("fine".into())
                },
                ApprovalEffect::Apply(ApprovalKind::DestructiveAction),
                ApprovalEffect::Wake {
                    agent: agent_id(3),
                    trigger: RunTrigger::ApprovalResolved
                },
            ]
        );
    }
    let t = decide(&approval, resolve(ApprovalDecision::Reject), &agent(4), NOW).unwrap();
    assert_eq!(t.to, ApprovalStatus::Rejected);
    assert!(
        t.effects
            .contains(&ApprovalEffect::Discard(ApprovalKind::DestructiveAction))
    );
    // Anyone else may not; nor the requester, even when (wrongly) addressed to itself.
    for actor in [agent(5), agent(3), Actor::System] {
        let err = decide(&approval, resolve(ApprovalDecision::Approve), &actor, NOW).unwrap_err();
        assert_eq!(err.code(), "forbidden", "{actor}");
    }
    let own = pending(ApprovalKind::Other, Approver::Agent(agent_id(3)));
    let err = decide(&own, resolve(ApprovalDecision::Approve), &agent(3), NOW).unwrap_err();
    assert_eq!(err.to_string(), "an agent cannot resolve its own request");
    // Approvals addressed to the board are the board's.
    let structural = pending(ApprovalKind::WorkBlockShip, Approver::Board);
    assert_eq!(
        decide(
            &structural,
            resolve(ApprovalDecision::Approve),
            &agent(1),
            NOW
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
    let t = decide(
        &structural,
        resolve(ApprovalDecision::Approve),
        &Actor::board("ops"),
        NOW,
    )
    .unwrap();
    assert!(
        t.effects
            .contains(&ApprovalEffect::Apply(ApprovalKind::WorkBlockShip))
    );
}

#[test]
fn only_pending_approvals_move() {
    for status in [
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
    ] {
        let approval = ApprovalSnapshot {
            status,
            ..pending(ApprovalKind::Other, Approver::Board)
        };
        for cmd in [
            resolve(ApprovalDecision::Approve),
            ApprovalCommand::Cancel,
            ApprovalCommand::Escalate { comment: None },
        ] {
            let err = decide(&approval, cmd, &Actor::board("ops"), NOW).unwrap_err();
            assert_eq!(err, WorkflowError::NotPending { status });
            assert_eq!(err.code(), "conflict");
        }
        assert!(expire_due(&approval, NOW + HOUR * 100).is_none());
    }
    // A pending approval past its expiry is expired, whatever the stored status says.
    let late = pending(ApprovalKind::Other, Approver::Board);
    let err = decide(
        &late,
        resolve(ApprovalDecision::Approve),
        &Actor::board("ops"),
        NOW + HOUR,
    )
    .unwrap_err();
    assert_eq!(
        err,
        WorkflowError::NotPending {
            status: ApprovalStatus::Expired
        }
    );
    assert_eq!(err.to_string(), "the approval is expired, not pending");
}

#[test]
fn expiry() {
    let approval = pending(ApprovalKind::BudgetChange, Approver::Board);
    assert!(expire_due(&approval, NOW).is_none());
    let t = expire_due(&approval, NOW + HOUR).unwrap();
    assert_eq!(t.to, ApprovalStatus::Expired);
    assert_eq!(
        t.effects,
        [
            ApprovalEffect::RecordDecision {
                decided_at: NOW + HOUR,
                comment: None
            },
            ApprovalEffect::Discard(ApprovalKind::BudgetChange),
            ApprovalEffect::Wake {
                agent: agent_id(3),
                trigger: RunTrigger::ApprovalResolved,
            },
        ]
    );
    let forever = ApprovalSnapshot {
        expires_at: None,
        ..approval
    };
    assert!(expire_due(&forever, NOW + HOUR * 10_000).is_none());
}

#[test]
fn escalation_hands_it_to_the_board() {
    let approval = pending(ApprovalKind::Other, Approver::Agent(agent_id(4)));
    let t = decide(
        &approval,
        ApprovalCommand::Escalate {
            comment: Some("above me".into()),
        },
        &agent(4),
        NOW,
    )
    .unwrap();
    assert_eq!(t.to, ApprovalStatus::Pending);
    assert_eq!(
        t.effects,
        [
            ApprovalEffect::SetApprover(Approver::Board),
            ApprovalEffect::NotifyBoard {
                message: "Approval escalated to the board (other): Ship it: above me".into()
            },
        ]
    );
    assert_eq!(
        decide(
            &approval,
            ApprovalCommand::Escalate { comment: None },
            &agent(5),
            NOW
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
    let board = pending(ApprovalKind::Other, Approver::Board);
    assert_eq!(
        decide(
            &board,
            ApprovalCommand::Escalate { comment: None },
            &Actor::board("ops"),
            NOW
        )
        .unwrap_err()
        .code(),
        "forbidden"
    );
}

#[test]
fn the_requester_or_the_board_cancels() {
    let approval = pending(ApprovalKind::ArchetypePatch, Approver::Board);
    for actor in [agent(3), Actor::board("ops"), Actor::System] {
        let t = decide(&approval, ApprovalCommand::Cancel, &actor, NOW).unwrap();
        assert_eq!(t.to, ApprovalStatus::Cancelled);
        assert!(
            t.effects
                .contains(&ApprovalEffect::Discard(ApprovalKind::ArchetypePatch))
        );
    }
    assert_eq!(
        decide(&approval, ApprovalCommand::Cancel, &agent(4), NOW)
            .unwrap_err()
            .code(),
        "forbidden"
    );
}

#[test]
fn the_table_matches_the_machine() {
    let to: Vec<_> = APPROVAL_TABLE
        .iter()
        .map(|(from, to, _, _)| (*from, *to))
        .collect();
    assert!(to.iter().all(|(from, _)| *from == ApprovalStatus::Pending));
    for status in [
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
        ApprovalStatus::Cancelled,
    ] {
        assert!(to.contains(&(ApprovalStatus::Pending, status)), "{status}");
    }
}
