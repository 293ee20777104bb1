use mesa_domain::{Actor, ApprovalKind, IssueStatus, Timestamp, WorkBlockStatus};

use super::*;
use crate::fixtures::{agent, block_id, key};

const NOW: Timestamp = Timestamp::from_millis(5_000);

fn snapshot(status: WorkBlockStatus) -> WorkBlockSnapshot {
    WorkBlockSnapshot {
        id: block_id(1),
        title: "Onboarding".into(),
        status,
        active_block: (status == WorkBlockStatus::Active).then(|| block_id(1)),
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Board,
    Ceo,
    Agent,
    System,
}

const ROLES: [Role; 4] = [Role::Board, Role::Ceo, Role::Agent, Role::System];

fn context(role: Role) -> BlockContext {
    match role {
        Role::Board => BlockContext::new(Actor::board("ops")),
        Role::Ceo => BlockContext {
            actor: agent(1),
            is_ceo: true,
        },
        Role::Agent => BlockContext::new(agent(3)),
        Role::System => BlockContext::new(Actor::System),
    }
}

fn command(kind: BlockCommandKind) -> BlockCommand {
    match kind {
        BlockCommandKind::Propose => unreachable!("propose has no block yet"),
        BlockCommandKind::Activate => BlockCommand::Activate,
        BlockCommandKind::Reopen => BlockCommand::Reopen,
        BlockCommandKind::MarkReady => BlockCommand::MarkReady,
        BlockCommandKind::Ship => BlockCommand::Ship,
        BlockCommandKind::Cancel => BlockCommand::Cancel,
        BlockCommandKind::AddIssue => BlockCommand::AddIssue {
            issue: key(7),
            current_block: None,
        },
        BlockCommandKind::RemoveIssue => BlockCommand::RemoveIssue { issue: key(7) },
    }
}

fn short(status: WorkBlockStatus) -> &'static str {
    match status {
        WorkBlockStatus::Proposed => "prop",
        WorkBlockStatus::Active => "act",
        WorkBlockStatus::Ready => "rdy",
        WorkBlockStatus::Shipped => "ship",
        WorkBlockStatus::Cancelled => "canc",
    }
}

/// Runs one cell: a status reached, `APR:<kind>` for an approval request, or an error token.
fn check(status: WorkBlockStatus, kind: BlockCommandKind, role: Role) -> String {
    let block = snapshot(status);
    match decide(&block, command(kind), &context(role), NOW) {
        Ok(t) => {
            assert!(
                BLOCK_TABLE
                    .iter()
                    .any(|r| r.from == Some(status) && r.command == kind && r.to == t.to)
                    || t.to == status,
                "{status} {kind} → {} is no row",
                t.to
            );
            match t.effects.as_slice() {
                [BlockEffect::RequestApproval { kind, .. }] if t.to == status => match kind {
                    ApprovalKind::WorkBlockActivation => "APR:act".to_owned(),
                    ApprovalKind::WorkBlockShip => "APR:ship".to_owned(),
                    other => format!("APR:{other}"),
                },
                _ => short(t.to).to_owned(),
            }
        }
        Err(WorkflowError::IllegalBlockTransition { .. }) => "ILL".to_owned(),
        Err(WorkflowError::Forbidden { .. }) => "403".to_owned(),
        Err(other) => format!("{other:?}"),
    }
}

/// Every (status × command × role) cell of SPEC §3.1. Columns: board, CEO, another agent, Mesa
/// itself. `APR:act` / `APR:ship`: the agent's request becomes a work_block_activation /
/// work_block_ship approval and the block does not move.
const EXPECTED: &str = "
proposed activate:      act  APR:act  APR:act  403
proposed reopen:        ILL  ILL      ILL      ILL
proposed mark_ready:    ILL  ILL      ILL      ILL
proposed ship:          ILL  ILL      ILL      ILL
proposed cancel:        canc 403      403      403
proposed add_issue:     prop prop     prop     403
proposed remove_issue:  prop prop     prop     403
active activate:        ILL  ILL      ILL      ILL
active reopen:          ILL  ILL      ILL      ILL
active mark_ready:      rdy  rdy      403      rdy
active ship:            ILL  ILL      ILL      ILL
active cancel:          canc 403      403      403
active add_issue:       act  act      act      403
active remove_issue:    act  act      act      403
ready activate:         ILL  ILL      ILL      ILL
ready reopen:           act  APR:act  APR:act  403
ready mark_ready:       ILL  ILL      ILL      ILL
ready ship:             ship APR:ship APR:ship 403
ready cancel:           canc 403      403      403
ready add_issue:        ILL  ILL      ILL      ILL
ready remove_issue:     ILL  ILL      ILL      ILL
shipped activate:       ILL  ILL      ILL      ILL
shipped reopen:         ILL  ILL      ILL      ILL
shipped mark_ready:     ILL  ILL      ILL      ILL
shipped ship:           ILL  ILL      ILL      ILL
shipped cancel:         ILL  ILL      ILL      ILL
shipped add_issue:      ILL  ILL      ILL      ILL
shipped remove_issue:   ILL  ILL      ILL      ILL
cancelled activate:     ILL  ILL      ILL      ILL
cancelled reopen:       ILL  ILL      ILL      ILL
cancelled mark_ready:   ILL  ILL      ILL      ILL
cancelled ship:         ILL  ILL      ILL      ILL
cancelled cancel:       ILL  ILL      ILL      ILL
cancelled add_issue:    ILL  ILL      ILL      ILL
cancelled remove_issue: ILL  ILL      ILL      ILL
";

#[test]
fn every_cell_of_the_work_block_table() {
    let mut seen = 0;
    let mut mismatches = Vec::new();
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let (head, cells) = line.split_once(':').unwrap();
        let (status, kind) = head.split_once(' ').unwrap();
        let status = WorkBlockStatus::parse(status).unwrap();
        let kind = BlockCommandKind::parse(kind).unwrap();
        let cells: Vec<&str> = cells.split_whitespace().collect();
        assert_eq!(cells.len(), ROLES.len(), "{line}");
        for (role, expected) in ROLES.iter().zip(cells) {
            let actual = check(status, kind, *role);
            if actual != expected {
                mismatches.push(format!(
                    "{status} {kind} as {role:?}: expected {expected}, got {actual}"
                ));
            }
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        WorkBlockStatus::ALL.len() * (BlockCommandKind::ALL.len() - 1) * ROLES.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn proposing() {
    for actor in [Actor::board("ops"), agent(3)] {
        let t = propose("Onboarding", &actor).unwrap();
        assert_eq!((t.from, t.to), (None, WorkBlockStatus::Proposed));
    }
    for actor in [
        Actor::System,
        Actor::Webhook {
            source: "gh".into(),
        },
    ] {
        assert_eq!(
            propose("Onboarding", &actor).unwrap_err().code(),
            "forbidden"
        );
    }
}

#[test]
fn at_most_one_active_block() {
    for (status, cmd) in [
        (WorkBlockStatus::Proposed, BlockCommand::Activate),
        (WorkBlockStatus::Ready, BlockCommand::Reopen),
    ] {
        let mut block = snapshot(status);
        block.active_block = Some(block_id(2));
        let err = decide(&block, cmd, &context(Role::Board), NOW).unwrap_err();
        assert_eq!(
            err,
            WorkflowError::SecondActiveBlock {
                active: block_id(2)
            }
        );
        assert_eq!(err.code(), "conflict");
    }
    // An agent may still ask; the board decides once the other block is done.
    let mut block = snapshot(WorkBlockStatus::Proposed);
    block.active_block = Some(block_id(2));
    let t = decide(&block, BlockCommand::Activate, &context(Role::Agent), NOW).unwrap();
    assert_eq!(t.to, WorkBlockStatus::Proposed);
    assert_eq!(t.activity.action, "work_block.activation_requested");
}

#[test]
fn effects_of_each_move() {
    let board = context(Role::Board);
    let t = decide(
        &snapshot(WorkBlockStatus::Proposed),
        BlockCommand::Activate,
        &board,
        NOW,
    )
    .unwrap();
    assert_eq!(
        t.effects,
        [
            BlockEffect::SetActivatedAt(NOW),
            BlockEffect::CancelPendingApprovals {
                kind: Some(ApprovalKind::WorkBlockActivation)
            },
        ]
    );
    let t = decide(
        &snapshot(WorkBlockStatus::Ready),
        BlockCommand::Reopen,
        &board,
        NOW,
    )
    .unwrap();
    assert_eq!(
        t.effects,
        [
            BlockEffect::SetActivatedAt(NOW),
            BlockEffect::ClearReadyAt,
            BlockEffect::CancelPendingApprovals { kind: None },
        ]
    );
    let t = decide(
        &snapshot(WorkBlockStatus::Active),
        BlockCommand::MarkReady,
        &context(Role::Ceo),
        NOW,
    )
    .unwrap();
    assert_eq!(
        t.effects,
        [
            BlockEffect::SetReadyAt(NOW),
            BlockEffect::NotifyBoard {
                message: "Work block \"Onboarding\" is ready to ship".into()
            },
            BlockEffect::RequestApproval {
                kind: ApprovalKind::WorkBlockShip,
                title: "Ship work block \"Onboarding\"".into()
            },
        ]
    );
    let t = decide(
        &snapshot(WorkBlockStatus::Ready),
        BlockCommand::Ship,
        &board,
        NOW,
    )
    .unwrap();
    assert_eq!(t.effects[0], BlockEffect::SetShippedAt(NOW));
    let t = decide(
        &snapshot(WorkBlockStatus::Active),
        BlockCommand::Cancel,
        &board,
        NOW,
    )
    .unwrap();
    assert_eq!(t.effects[0], BlockEffect::SetCancelledAt(NOW));
    assert_eq!(
        t.activity.summary,
        "work block \"Onboarding\": active → cancelled (cancel by board:ops)"
    );
}

#[test]
fn issues_belong_to_at_most_one_block() {
    let add = |current_block| BlockCommand::AddIssue {
        issue: key(7),
        current_block,
    };
    let block = snapshot(WorkBlockStatus::Active);
    let ctx = context(Role::Agent);
    let t = decide(&block, add(None), &ctx, NOW).unwrap();
    assert_eq!(t.effects, [BlockEffect::AddIssue(key(7))]);
    // Already here: nothing to do.
    assert!(
        decide(&block, add(Some(block_id(1))), &ctx, NOW)
            .unwrap()
            .is_noop()
    );
    let err = decide(&block, add(Some(block_id(9))), &ctx, NOW).unwrap_err();
    assert_eq!(err, WorkflowError::InOtherBlock { block: block_id(9) });
    assert_eq!(err.code(), "conflict");
    // Shipped and cancelled blocks take no issues.
    let err = decide(&snapshot(WorkBlockStatus::Shipped), add(None), &ctx, NOW).unwrap_err();
    assert_eq!(err.code(), "illegal_transition");
    assert_eq!(
        err.to_string(),
        "cannot add_issue a work block that is shipped; allowed: none"
    );
}

#[test]
fn automatic_ready() {
    use IssueStatus::*;
    assert!(auto_ready(&[Done, Cancelled, WontDo]));
    assert!(auto_ready(&[Done]));
    assert!(!auto_ready(&[Done, InReview]));
    assert!(!auto_ready(&[Cancelled, WontDo]));
    assert!(!auto_ready(&[]));

    let t = auto_transition(&snapshot(WorkBlockStatus::Active), &[Done, Cancelled], NOW).unwrap();
    assert_eq!(t.to, WorkBlockStatus::Ready);
    assert_eq!(
        t.activity.summary,
        "work block \"Onboarding\": active → ready (mark_ready by system)"
    );
    assert!(auto_transition(&snapshot(WorkBlockStatus::Active), &[Done, Todo], NOW).is_none());
    assert!(auto_transition(&snapshot(WorkBlockStatus::Proposed), &[Done], NOW).is_none());
}

#[test]
fn approvals_carry_out_as_commands() {
    use ApprovalKind as K;
    assert_eq!(
        command_for_approval(K::WorkBlockActivation, WorkBlockStatus::Proposed),
        Some(BlockCommand::Activate)
    );
    assert_eq!(
        command_for_approval(K::WorkBlockActivation, WorkBlockStatus::Ready),
        Some(BlockCommand::Reopen)
    );
    assert_eq!(
        command_for_approval(K::WorkBlockShip, WorkBlockStatus::Ready),
        Some(BlockCommand::Ship)
    );
    assert_eq!(
        command_for_approval(K::AgentHire, WorkBlockStatus::Ready),
        None
    );
}

#[test]
fn patch_targets() {
    use WorkBlockStatus::*;
    assert_eq!(
        command_for_target(Proposed, Active),
        Some(BlockCommandKind::Activate)
    );
    assert_eq!(
        command_for_target(Ready, Active),
        Some(BlockCommandKind::Reopen)
    );
    assert_eq!(
        command_for_target(Active, Ready),
        Some(BlockCommandKind::MarkReady)
    );
    assert_eq!(
        command_for_target(Ready, Shipped),
        Some(BlockCommandKind::Ship)
    );
    assert_eq!(
        command_for_target(Active, Cancelled),
        Some(BlockCommandKind::Cancel)
    );
    assert_eq!(command_for_target(Active, Proposed), None);
}
