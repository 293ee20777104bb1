use mesa_domain::{Actor, CommentKind, IssueStatus, RunTrigger, Timestamp};

use super::*;
use crate::fixtures::{agent, agent_id, key};
use crate::review_chain::{Org, OrgMember, resolve_reviewer, reviewer_chain};
use crate::{Result, WorkflowError};

const T0: Timestamp = Timestamp::from_millis(1_000_000);
const NOW: Timestamp = Timestamp::from_millis(2_000_000);

// The cast: the CEO (1); a manager (2) reporting to the CEO; the worker (3), assignee of the
// issue, reporting to the manager and reviewed by the reviewer (4); the creator of the issue (5);
// an unrelated agent (6); an agent that claims unassigned issues (7).
const CEO: u32 = 1;
const MANAGER: u32 = 2;
const WORKER: u32 = 3;
const REVIEWER: u32 = 4;
const CREATOR: u32 = 5;
const OTHER: u32 = 6;
const CLAIMER: u32 = 7;

fn org() -> Org {
    let ceo = Some(agent_id(CEO));
    Org::new()
        .with(agent_id(CEO), OrgMember::new(None, None).ceo())
        .with(agent_id(MANAGER), OrgMember::new(ceo, None))
        .with(
            agent_id(WORKER),
            OrgMember::new(Some(agent_id(MANAGER)), Some(agent_id(REVIEWER))),
        )
        .with(agent_id(REVIEWER), OrgMember::new(ceo, None))
        .with(agent_id(CREATOR), OrgMember::new(ceo, None))
        .with(agent_id(OTHER), OrgMember::new(ceo, None))
        .with(agent_id(CLAIMER), OrgMember::new(ceo, None))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Board,
    Assignee,
    Reviewer,
    Manager,
    Ceo,
    Creator,
    Other,
    Claimer,
}

const ROLES: [Role; 8] = [
    Role::Board,
    Role::Assignee,
    Role::Reviewer,
    Role::Manager,
    Role::Ceo,
    Role::Creator,
    Role::Other,
    Role::Claimer,
];

/// The issue in `status`, assigned to the worker (unassigned for the claimer), and the context
/// of `role` as the caller would fill it from the org.
fn setup(status: IssueStatus, role: Role) -> (IssueSnapshot, ActorContext) {
    let mut issue = IssueSnapshot::new(key(1), status, T0);
    let actor = match role {
        Role::Board => Actor::board("ops"),
        Role::Assignee => agent(WORKER),
        Role::Reviewer => agent(REVIEWER),
        Role::Manager => agent(MANAGER),
        Role::Ceo => agent(CEO),
        Role::Creator => agent(CREATOR),
        Role::Other => agent(OTHER),
        Role::Claimer => agent(CLAIMER),
    };
    let mut ctx = ActorContext::new(actor);
    ctx.is_ceo = role == Role::Ceo;
    ctx.creator = Some(agent_id(CREATOR));
    if role != Role::Claimer {
        let org = org();
        issue.assignee = Some(agent_id(WORKER));
        ctx.reviewer = resolve_reviewer(&org, agent_id(WORKER), &[agent_id(WORKER)]);
        ctx.reviewer_chain = reviewer_chain(&org, agent_id(WORKER));
    }
    (issue, ctx)
}

/// A valid instance of each command: comments and reasons given, no force.
fn command(kind: CommandKind) -> IssueCommand {
    IssueCommand::from_kind(kind, Some("because".to_owned()), false).expect("not create")
}

fn short(status: IssueStatus) -> &'static str {
    match status {
        IssueStatus::Todo => "todo",
        IssueStatus::InProgress => "prog",
        IssueStatus::Blocked => "blkd",
        IssueStatus::InReview => "rvw",
        IssueStatus::BoardReview => "brd",
        IssueStatus::Done => "done",
        IssueStatus::WontDo => "wont",
        IssueStatus::Cancelled => "canc",
    }
}

fn outcome(result: &Result<IssueTransition>) -> String {
    match result {
        Ok(t) => short(t.to).to_owned(),
        Err(WorkflowError::IllegalTransition { .. }) => "ILL".to_owned(),
        Err(WorkflowError::Forbidden { .. }) => "403".to_owned(),
        Err(WorkflowError::CheckoutConflict { .. }) => "CC".to_owned(),
        Err(WorkflowError::Missing { .. }) => "422".to_owned(),
        Err(other) => format!("{other:?}"),
    }
}

/// Runs one cell and checks the invariants every accepted transition keeps.
fn check(status: IssueStatus, kind: CommandKind, role: Role) -> String {
    let (issue, ctx) = setup(status, role);
    let result = decide(&issue, command(kind), &ctx, NOW);
    if let Ok(t) = &result {
        assert!(
            is_row(Some(status), kind, t.to),
            "{status} {kind} → {} is no row",
            t.to
        );
        assert_eq!(t.from, Some(status));
        for effect in &t.effects {
            if let IssueEffect::Wake { agent, .. } = effect {
                assert_ne!(
                    Some(*agent),
                    ctx.agent(),
                    "an agent woke itself: {status} {kind}"
                );
            }
        }
    } else {
        assert!(result.is_err());
    }
    outcome(&result)
}

/// Every (status × command × role) cell of SPEC §2. Columns: board, assignee, reviewer, manager
/// (in the reviewer chain), CEO, creator agent, other agent, claimer (the issue is unassigned).
/// Tokens: a status reached, ILL (409 illegal_transition), 403 (forbidden), CC (409
/// checkout_conflict).
const EXPECTED: &str = "
todo checkout:             403  prog CC   CC   CC   CC   CC   prog
todo start:                prog prog 403  403  403  403  403  prog
todo block:                blkd blkd 403  403  403  403  403  403
todo unblock:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo requeue:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo submit:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo release:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo approve:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo request_changes:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo escalate:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo reject:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
todo cancel:               canc 403  403  403  canc canc 403  403
todo reopen:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress checkout:      403  prog CC   CC   CC   CC   CC   CC
in_progress start:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress block:         blkd blkd 403  403  403  403  403  403
in_progress unblock:       ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress requeue:       ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress submit:        403  rvw  403  403  403  403  403  403
in_progress release:       todo todo 403  403  403  403  403  403
in_progress approve:       ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress request_changes: ILL ILL ILL  ILL  ILL  ILL  ILL  ILL
in_progress escalate:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress reject:        ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_progress cancel:        canc 403  403  403  canc canc 403  403
in_progress reopen:        ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked checkout:          403  prog CC   CC   CC   CC   CC   prog
blocked start:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked block:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked unblock:           prog prog 403  403  403  403  403  403
blocked requeue:           todo 403  todo todo todo 403  403  403
blocked submit:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked release:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked approve:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked request_changes:   ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked escalate:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked reject:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
blocked cancel:            canc 403  403  403  canc canc 403  403
blocked reopen:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review checkout:        403  CC   CC   CC   CC   CC   CC   CC
in_review start:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review block:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review unblock:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review requeue:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review submit:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review release:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
in_review approve:         done 403  done 403  403  403  403  403
in_review request_changes: todo 403  todo 403  403  403  403  403
in_review escalate:        brd  403  brd  403  403  403  403  403
in_review reject:          wont 403  wont 403  403  403  403  403
in_review cancel:          canc 403  403  403  canc canc 403  403
in_review reopen:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review checkout:     403  CC   CC   CC   CC   CC   CC   CC
board_review start:        ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review block:        ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review unblock:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review requeue:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review submit:       ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review release:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review approve:      done 403  403  403  403  403  403  403
board_review request_changes: todo 403 403 403  403  403  403  403
board_review escalate:     ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
board_review reject:       wont 403  403  403  403  403  403  403
board_review cancel:       canc 403  403  403  canc canc 403  403
board_review reopen:       ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done checkout:             403  CC   CC   CC   CC   CC   CC   CC
done start:                ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done block:                ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done unblock:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done requeue:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done submit:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done release:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done approve:              ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done request_changes:      ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done escalate:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done reject:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done cancel:               ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
done reopen:               todo 403  403  403  todo 403  403  403
wont_do checkout:          403  CC   CC   CC   CC   CC   CC   CC
wont_do start:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do block:             ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do unblock:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do requeue:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do submit:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do release:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do approve:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do request_changes:   ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do escalate:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do reject:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do cancel:            ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
wont_do reopen:            todo 403  403  403  todo 403  403  403
cancelled checkout:        403  CC   CC   CC   CC   CC   CC   CC
cancelled start:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled block:           ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled unblock:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled requeue:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled submit:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled release:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled approve:         ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled request_changes: ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled escalate:        ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled reject:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled cancel:          ILL  ILL  ILL  ILL  ILL  ILL  ILL  ILL
cancelled reopen:          todo 403  403  403  todo 403  403  403
";

#[test]
fn every_cell_of_the_issue_table() {
    let mut seen = 0;
    let mut mismatches = Vec::new();
    for line in EXPECTED.lines().filter(|l| !l.trim().is_empty()) {
        let (head, cells) = line.split_once(':').unwrap();
        let (status, kind) = head.split_once(' ').unwrap();
        let status = IssueStatus::parse(status).unwrap();
        let kind = CommandKind::parse(kind).unwrap();
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
    // Every status × every command but create × every role.
    assert_eq!(
        seen,
        IssueStatus::ALL.len() * (CommandKind::ALL.len() - 1) * ROLES.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn creation_by_anyone_assigns_and_wakes() {
    for actor in [
        Actor::board("ops"),
        agent(OTHER),
        Actor::System,
        Actor::Webhook {
            source: "github".into(),
        },
    ] {
        let t = create(&key(9), None, Some(agent_id(CEO)), &actor);
        assert_eq!((t.from, t.to), (None, IssueStatus::Todo));
        assert!(is_row(None, CommandKind::Create, t.to));
        assert_eq!(
            t.effects,
            [
                IssueEffect::SetAssignee(agent_id(CEO)),
                IssueEffect::Wake {
                    agent: agent_id(CEO),
                    trigger: RunTrigger::IssueCreated
                },
            ]
        );
    }
    let t = create(
        &key(9),
        Some(agent_id(WORKER)),
        Some(agent_id(CEO)),
        &agent(CEO),
    );
    assert_eq!(
        t.effects,
        [
            IssueEffect::SetAssignee(agent_id(WORKER)),
            IssueEffect::Wake {
                agent: agent_id(WORKER),
                trigger: RunTrigger::Assigned
            },
        ]
    );
    // The creator assigning itself is not woken by its own action; without a CEO nobody holds it.
    let t = create(&key(9), Some(agent_id(WORKER)), None, &agent(WORKER));
    assert_eq!(t.effects, [IssueEffect::SetAssignee(agent_id(WORKER))]);
    assert!(
        create(&key(9), None, None, &Actor::board("ops"))
            .effects
            .is_empty()
    );
    assert_eq!(t.activity.action, "issue.create");
}

fn error(
    status: IssueStatus,
    role: Role,
    cmd: IssueCommand,
    edit: impl FnOnce(&mut IssueSnapshot, &mut ActorContext),
) -> WorkflowError {
    let (mut issue, mut ctx) = setup(status, role);
    edit(&mut issue, &mut ctx);
    decide(&issue, cmd, &ctx, NOW).unwrap_err()
}

fn accept(
    status: IssueStatus,
    role: Role,
    cmd: IssueCommand,
    edit: impl FnOnce(&mut IssueSnapshot, &mut ActorContext),
) -> IssueTransition {
    let (mut issue, mut ctx) = setup(status, role);
    edit(&mut issue, &mut ctx);
    decide(&issue, cmd, &ctx, NOW).unwrap()
}

fn none(_: &mut IssueSnapshot, _: &mut ActorContext) {}

#[test]
fn required_comments_and_reasons_are_422_with_the_field() {
    use IssueStatus::*;
    let missing = |field| WorkflowError::Missing { field };
    for blank in [None, Some("   \n".to_owned())] {
        let cases = [
            (
                InProgress,
                Role::Assignee,
                IssueCommand::Block {
                    comment: blank.clone(),
                },
                "comment",
            ),
            (
                Todo,
                Role::Board,
                IssueCommand::Block {
                    comment: blank.clone(),
                },
                "comment",
            ),
            (
                InProgress,
                Role::Assignee,
                IssueCommand::Submit {
                    comment: blank.clone(),
                },
                "comment",
            ),
            (
                InReview,
                Role::Reviewer,
                IssueCommand::from_kind(CommandKind::RequestChanges, blank.clone(), false).unwrap(),
                "comment",
            ),
            (
                InReview,
                Role::Reviewer,
                IssueCommand::from_kind(CommandKind::Reject, blank.clone(), false).unwrap(),
                "comment",
            ),
            (
                BoardReview,
                Role::Board,
                IssueCommand::from_kind(CommandKind::Reject, blank.clone(), false).unwrap(),
                "comment",
            ),
            (
                Todo,
                Role::Creator,
                IssueCommand::Cancel {
                    reason: blank.clone(),
                    force: true,
                },
                "cancellation_reason",
            ),
        ];
        for (status, role, cmd, field) in cases {
            let err = error(status, role, cmd, none);
            assert_eq!(err, missing(field));
            assert_eq!(err.code(), "validation_failed");
            assert_eq!(err.field(), Some(field));
        }
    }
    // Approve, escalate, unblock, release and reopen take an optional comment.
    for (status, role, kind) in [
        (InReview, Role::Reviewer, CommandKind::Approve),
        (InReview, Role::Reviewer, CommandKind::Escalate),
        (Blocked, Role::Assignee, CommandKind::Unblock),
        (InProgress, Role::Assignee, CommandKind::Release),
        (Done, Role::Board, CommandKind::Reopen),
    ] {
        accept(
            status,
            role,
            IssueCommand::from_kind(kind, None, false).unwrap(),
            none,
        );
    }
}

#[test]
fn submit_without_a_comment_needs_evidence_since_checkout() {
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        IssueCommand::Submit { comment: None },
        |issue, _| {
            issue.evidence_since_checkout = true;
        },
    );
    assert_eq!(t.to, IssueStatus::InReview);
    assert!(
        !t.effects
            .iter()
            .any(|e| matches!(e, IssueEffect::AddComment { .. }))
    );
}

#[test]
fn submit_wakes_the_reviewer_and_records_the_comment() {
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        command(CommandKind::Submit),
        none,
    );
    assert_eq!(
        t.effects,
        [
            IssueEffect::AddComment {
                kind: CommentKind::Comment,
                body: "because".into()
            },
            IssueEffect::Wake {
                agent: agent_id(REVIEWER),
                trigger: RunTrigger::ReviewRequested
            },
        ]
    );
    assert_eq!(t.activity.action, "issue.submit");
    assert_eq!(
        t.activity.summary,
        "MESA-1: in_progress → in_review (submit by agent-3)"
    );
}

#[test]
fn agents_without_reviewer_or_manager_go_to_board_review() {
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        command(CommandKind::Submit),
        |_, ctx| {
            ctx.reviewer = Reviewer::Board;
            ctx.reviewer_chain.clear();
        },
    );
    assert_eq!(t.to, IssueStatus::BoardReview);
    assert!(
        t.effects
            .iter()
            .any(|e| matches!(e, IssueEffect::NotifyBoard { .. }))
    );
    assert!(
        !t.effects
            .iter()
            .any(|e| matches!(e, IssueEffect::Wake { .. }))
    );
}

#[test]
fn a_reviewer_that_is_the_assignee_passes_review_up_the_chain() {
    // A careless caller resolved the worker as its own reviewer: the manager reviews instead.
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        command(CommandKind::Submit),
        |_, ctx| {
            ctx.reviewer = Reviewer::Agent(agent_id(WORKER));
            ctx.reviewer_chain = vec![agent_id(WORKER), agent_id(MANAGER), agent_id(CEO)];
        },
    );
    assert_eq!(t.to, IssueStatus::InReview);
    assert!(t.effects.contains(&IssueEffect::Wake {
        agent: agent_id(MANAGER),
        trigger: RunTrigger::ReviewRequested
    }));
    // With nobody else in the chain, the board reviews.
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        command(CommandKind::Submit),
        |_, ctx| {
            ctx.reviewer = Reviewer::Agent(agent_id(WORKER));
            ctx.reviewer_chain = vec![agent_id(WORKER)];
        },
    );
    assert_eq!(t.to, IssueStatus::BoardReview);
}

#[test]
fn no_self_review() {
    // The worker is (wrongly) named as reviewer of its own issue: it still may not approve.
    let err = error(
        IssueStatus::InReview,
        Role::Assignee,
        command(CommandKind::Approve),
        |_, ctx| {
            ctx.reviewer = Reviewer::Agent(agent_id(WORKER));
        },
    );
    assert_eq!(
        err,
        WorkflowError::Forbidden {
            reason: "no self-review: the assignee or submitter of an issue can never review it"
                .into()
        }
    );
    // The reviewer submitted the issue and it was then reassigned to the worker: the reviewer
    // may not approve its own submission; the next up the chain (the manager) may.
    let resubmitted = |issue: &mut IssueSnapshot, _: &mut ActorContext| {
        issue.submitted_by = Some(agent_id(REVIEWER))
    };
    let err = error(
        IssueStatus::InReview,
        Role::Reviewer,
        command(CommandKind::Approve),
        resubmitted,
    );
    assert_eq!(err.code(), "forbidden");
    let t = accept(
        IssueStatus::InReview,
        Role::Manager,
        command(CommandKind::Approve),
        resubmitted,
    );
    assert_eq!(t.to, IssueStatus::Done);
}

fn child(n: u64, status: IssueStatus) -> ChildIssue {
    ChildIssue {
        key: key(n),
        status,
    }
}

#[test]
fn the_ceo_closes_a_parent_reviewed_below() {
    let ceo_parent = |children: Vec<ChildIssue>, top_level: bool| {
        move |issue: &mut IssueSnapshot, ctx: &mut ActorContext| {
            issue.assignee = Some(agent_id(CEO));
            issue.children = children;
            issue.board_reviews_top_level = top_level;
            ctx.reviewer = Reviewer::Board;
            ctx.reviewer_chain.clear();
        }
    };
    let reviewed = vec![
        child(2, IssueStatus::Done),
        child(3, IssueStatus::Cancelled),
    ];
    let t = accept(
        IssueStatus::InProgress,
        Role::Ceo,
        command(CommandKind::Submit),
        ceo_parent(reviewed.clone(), false),
    );
    assert_eq!(t.to, IssueStatus::Done);
    assert!(t.effects.contains(&IssueEffect::SetCompletedAt(NOW)));
    assert!(t.effects.contains(&IssueEffect::DropQueuedRuns));

    for (children, top_level) in [
        (reviewed, true), // the setting
        (
            vec![child(2, IssueStatus::Done), child(3, IssueStatus::InReview)],
            false,
        ), // one open
        (
            vec![
                child(2, IssueStatus::WontDo),
                child(3, IssueStatus::Cancelled),
            ],
            false,
        ), // none done
        (vec![], false),  // no children
    ] {
        let t = accept(
            IssueStatus::InProgress,
            Role::Ceo,
            command(CommandKind::Submit),
            ceo_parent(children, top_level),
        );
        assert_eq!(t.to, IssueStatus::BoardReview);
    }
    // Anyone else with the same children goes to review as usual.
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        command(CommandKind::Submit),
        |issue, ctx| {
            issue.children = vec![child(2, IssueStatus::Done)];
            ctx.reviewer = Reviewer::Board;
        },
    );
    assert_eq!(t.to, IssueStatus::BoardReview);
}

#[test]
fn open_sub_issues_block_approval() {
    let with_children = |issue: &mut IssueSnapshot, _: &mut ActorContext| {
        issue.children = vec![
            child(2, IssueStatus::Done),
            child(3, IssueStatus::Blocked),
            child(4, IssueStatus::Todo),
        ];
    };
    for (status, role) in [
        (IssueStatus::InReview, Role::Reviewer),
        (IssueStatus::InReview, Role::Board),
        (IssueStatus::BoardReview, Role::Board),
    ] {
        let err = error(status, role, command(CommandKind::Approve), with_children);
        assert_eq!(
            err,
            WorkflowError::OpenChildren {
                keys: vec![key(3), key(4)]
            }
        );
        assert_eq!(err.code(), "conflict");
        assert_eq!(
            err.to_string(),
            "the issue has open sub-issues: MESA-3, MESA-4"
        );
    }
    // Rejecting or requesting changes is fine.
    accept(
        IssueStatus::InReview,
        Role::Reviewer,
        command(CommandKind::Reject),
        with_children,
    );
    accept(
        IssueStatus::InReview,
        Role::Reviewer,
        command(CommandKind::RequestChanges),
        with_children,
    );
}

#[test]
fn cancelling_finished_work_needs_force() {
    let evidence_after = |issue: &mut IssueSnapshot, _: &mut ActorContext| {
        issue.latest_evidence_at = Some(Timestamp::from_millis(T0.as_millis() + 1));
    };
    let err = error(
        IssueStatus::InProgress,
        Role::Board,
        command(CommandKind::Cancel),
        evidence_after,
    );
    assert_eq!(err, WorkflowError::RequiresForce);
    assert_eq!(err.code(), "conflict");
    let forced = IssueCommand::Cancel {
        reason: Some("scope cut".into()),
        force: true,
    };
    let t = accept(IssueStatus::InProgress, Role::Board, forced, evidence_after);
    assert_eq!(t.to, IssueStatus::Cancelled);
    assert_eq!(
        t.effects,
        [
            IssueEffect::SetCompletedAt(NOW),
            IssueEffect::SetCancellationReason("scope cut".into()),
            IssueEffect::AddComment {
                kind: CommentKind::System,
                body: "Cancelled by board:ops: scope cut".into()
            },
            IssueEffect::DropQueuedRuns,
        ]
    );
    // Evidence older than (or as old as) the last status change does not guard.
    accept(
        IssueStatus::InProgress,
        Role::Ceo,
        command(CommandKind::Cancel),
        |issue, _| {
            issue.latest_evidence_at = Some(T0);
        },
    );
}

#[test]
fn wakes_follow_section_6_1_and_never_the_actor() {
    let wake = |agent: u32, trigger| IssueEffect::Wake {
        agent: agent_id(agent),
        trigger,
    };
    let wakes = |t: &IssueTransition| -> Vec<IssueEffect> {
        t.effects
            .iter()
            .filter(|e| matches!(e, IssueEffect::Wake { .. }))
            .cloned()
            .collect()
    };
    let cases = [
        (
            IssueStatus::InReview,
            Role::Reviewer,
            CommandKind::RequestChanges,
            vec![wake(WORKER, RunTrigger::ChangesRequested)],
        ),
        (
            IssueStatus::BoardReview,
            Role::Board,
            CommandKind::RequestChanges,
            vec![wake(WORKER, RunTrigger::ChangesRequested)],
        ),
        (
            IssueStatus::Blocked,
            Role::Board,
            CommandKind::Unblock,
            vec![wake(WORKER, RunTrigger::Unblocked)],
        ),
        (
            IssueStatus::Blocked,
            Role::Assignee,
            CommandKind::Unblock,
            vec![],
        ),
        (
            IssueStatus::Blocked,
            Role::Manager,
            CommandKind::Requeue,
            vec![wake(WORKER, RunTrigger::Unblocked)],
        ),
        (
            IssueStatus::Done,
            Role::Ceo,
            CommandKind::Reopen,
            vec![wake(WORKER, RunTrigger::Reopened)],
        ),
        (
            IssueStatus::Todo,
            Role::Board,
            CommandKind::Start,
            vec![wake(WORKER, RunTrigger::Manual)],
        ),
        (
            IssueStatus::Todo,
            Role::Assignee,
            CommandKind::Start,
            vec![],
        ),
        (
            IssueStatus::InReview,
            Role::Reviewer,
            CommandKind::Approve,
            vec![],
        ),
        (
            IssueStatus::InReview,
            Role::Reviewer,
            CommandKind::Escalate,
            vec![],
        ),
        (
            IssueStatus::InProgress,
            Role::Assignee,
            CommandKind::Block,
            vec![],
        ),
    ];
    for (status, role, kind, expected) in cases {
        let t = accept(status, role, command(kind), none);
        assert_eq!(wakes(&t), expected, "{status} {kind} as {role:?}");
    }
    // The CEO reopening its own issue does not wake itself.
    let t = accept(
        IssueStatus::Done,
        Role::Ceo,
        command(CommandKind::Reopen),
        |issue, _| {
            issue.assignee = Some(agent_id(CEO));
        },
    );
    assert!(wakes(&t).is_empty());
    // Escalation tells the board.
    let t = accept(
        IssueStatus::InReview,
        Role::Reviewer,
        command(CommandKind::Escalate),
        none,
    );
    assert!(
        t.effects
            .iter()
            .any(|e| matches!(e, IssueEffect::NotifyBoard { .. }))
    );
}

#[test]
fn field_effects_of_each_command() {
    let t = accept(
        IssueStatus::InProgress,
        Role::Board,
        IssueCommand::Release { comment: None },
        none,
    );
    assert_eq!(t.effects, [IssueEffect::ClearAssignee]);
    let t = accept(
        IssueStatus::InReview,
        Role::Reviewer,
        IssueCommand::from_kind(CommandKind::Approve, None, false).unwrap(),
        none,
    );
    assert_eq!(
        t.effects,
        [
            IssueEffect::AddComment {
                kind: CommentKind::Review,
                body: "Approved.".into()
            },
            IssueEffect::SetCompletedAt(NOW),
            IssueEffect::DropQueuedRuns,
        ]
    );
    let t = accept(
        IssueStatus::Cancelled,
        Role::Board,
        IssueCommand::Reopen { comment: None },
        none,
    );
    assert_eq!(
        t.effects[..2],
        [
            IssueEffect::ClearCompletedAt,
            IssueEffect::ClearCancellationReason
        ]
    );
    let t = accept(
        IssueStatus::WontDo,
        Role::Board,
        IssueCommand::Reopen { comment: None },
        none,
    );
    assert!(!t.effects.contains(&IssueEffect::ClearCancellationReason));
    // started_at is set by the first start only.
    let t = accept(
        IssueStatus::Blocked,
        Role::Board,
        IssueCommand::Unblock { comment: None },
        |issue, _| issue.started_at = Some(T0),
    );
    assert!(
        !t.effects
            .iter()
            .any(|e| matches!(e, IssueEffect::SetStartedAt(_)))
    );
    let t = accept(IssueStatus::Todo, Role::Claimer, IssueCommand::Start, none);
    assert_eq!(
        t.effects,
        [
            IssueEffect::SetAssignee(agent_id(CLAIMER)),
            IssueEffect::BindRun,
            IssueEffect::SetStartedAt(NOW)
        ]
    );
}

#[test]
fn in_progress_needs_an_assignee() {
    for (status, cmd) in [
        (IssueStatus::Todo, IssueCommand::Start),
        (
            IssueStatus::Blocked,
            IssueCommand::Unblock { comment: None },
        ),
    ] {
        let err = error(status, Role::Board, cmd, |issue, _| issue.assignee = None);
        assert_eq!(
            err,
            WorkflowError::Missing {
                field: "assignee_slug"
            }
        );
    }
}

#[test]
fn checkout_protocol() {
    let checkout = |expected: Option<Vec<IssueStatus>>| IssueCommand::Checkout {
        expected_statuses: expected,
    };
    // A first checkout claims the issue, stamps started_at and binds the run.
    let t = accept(IssueStatus::Todo, Role::Claimer, checkout(None), none);
    assert_eq!(
        t.effects,
        [
            IssueEffect::SetAssignee(agent_id(CLAIMER)),
            IssueEffect::SetStartedAt(NOW),
            IssueEffect::BindRun
        ]
    );
    // The holder checking out again is idempotent: same status, only the run binding.
    let t = accept(
        IssueStatus::InProgress,
        Role::Assignee,
        checkout(Some(vec![IssueStatus::Todo])),
        none,
    );
    assert_eq!(
        (t.from, t.to),
        (Some(IssueStatus::InProgress), IssueStatus::InProgress)
    );
    assert_eq!(t.effects, [IssueEffect::BindRun]);
    assert!(!t.changes_status());
    // Expected statuses narrow the claim.
    let err = error(
        IssueStatus::Blocked,
        Role::Assignee,
        checkout(Some(vec![IssueStatus::Todo])),
        none,
    );
    assert_eq!(
        err,
        WorkflowError::CheckoutConflict {
            status: IssueStatus::Blocked,
            assignee: Some(agent_id(WORKER))
        }
    );
    assert_eq!(err.code(), "checkout_conflict");
    // Someone else's issue is a conflict that names the holder.
    let err = error(IssueStatus::Todo, Role::Other, checkout(None), none);
    assert_eq!(
        err,
        WorkflowError::CheckoutConflict {
            status: IssueStatus::Todo,
            assignee: Some(agent_id(WORKER))
        }
    );
    // Statuses that a checkout can never leave are refused up front.
    let err = error(
        IssueStatus::InReview,
        Role::Assignee,
        checkout(Some(vec![IssueStatus::InReview])),
        none,
    );
    assert_eq!(err.field(), Some("expected_statuses"));
    // The board holds no issue.
    assert_eq!(
        error(IssueStatus::Todo, Role::Board, checkout(None), none).code(),
        "forbidden"
    );
}

#[test]
fn illegal_transitions_list_the_allowed_commands() {
    let err = error(
        IssueStatus::Done,
        Role::Assignee,
        command(CommandKind::Submit),
        none,
    );
    assert_eq!(
        err,
        WorkflowError::IllegalTransition {
            from: IssueStatus::Done,
            command: CommandKind::Submit,
            allowed: vec![CommandKind::Reopen]
        }
    );
    assert_eq!(
        err.to_string(),
        "cannot submit an issue that is done; allowed: reopen"
    );
    assert_eq!(
        allowed_commands(IssueStatus::InReview),
        [
            CommandKind::Approve,
            CommandKind::RequestChanges,
            CommandKind::Escalate,
            CommandKind::Reject,
            CommandKind::Cancel
        ]
    );
    let err = error(
        IssueStatus::Todo,
        Role::Other,
        command(CommandKind::Block),
        none,
    );
    assert_eq!(
        err.to_string(),
        "only the assignee, the board or Mesa itself may block an issue that is todo"
    );
}

#[test]
fn patch_targets_map_to_commands() {
    use CommandKind as C;
    use IssueStatus::*;
    let cases = [
        (Todo, InProgress, Some(C::Start)),
        (Blocked, InProgress, Some(C::Unblock)),
        (Blocked, Todo, Some(C::Requeue)),
        (Todo, Blocked, Some(C::Block)),
        (InProgress, Blocked, Some(C::Block)),
        (InProgress, InReview, Some(C::Submit)),
        (InProgress, BoardReview, Some(C::Submit)),
        (InProgress, Done, Some(C::Submit)),
        (InProgress, Todo, Some(C::Release)),
        (InReview, Done, Some(C::Approve)),
        (InReview, Todo, Some(C::RequestChanges)),
        (InReview, BoardReview, Some(C::Escalate)),
        (InReview, WontDo, Some(C::Reject)),
        (BoardReview, Done, Some(C::Approve)),
        (BoardReview, Todo, Some(C::RequestChanges)),
        (BoardReview, WontDo, Some(C::Reject)),
        (Blocked, Cancelled, Some(C::Cancel)),
        (Done, Todo, Some(C::Reopen)),
        (Cancelled, Todo, Some(C::Reopen)),
        (InProgress, InProgress, None),
    ];
    for (from, to, expected) in cases {
        assert_eq!(
            command_for_target(from, to).unwrap(),
            expected,
            "{from} → {to}"
        );
    }
    let err = command_for_target(Todo, Done).unwrap_err();
    assert!(
        matches!(
            err,
            WorkflowError::IllegalTarget {
                from: Todo,
                to: Done,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "illegal_transition");
    assert_eq!(
        command_for_target(Done, Cancelled).unwrap_err().code(),
        "illegal_transition"
    );

    assert_eq!(
        patch_command(Blocked, "in_progress").unwrap(),
        Some(C::Unblock)
    );
    assert_eq!(
        patch_command(Blocked, " unblock ").unwrap(),
        Some(C::Unblock)
    );
    assert_eq!(patch_command(Todo, "checkout").unwrap(), Some(C::Checkout));
    for bad in ["finished", "create", ""] {
        assert_eq!(
            patch_command(Todo, bad).unwrap_err().field(),
            Some("status"),
            "{bad}"
        );
    }
}

#[test]
fn command_names_round_trip() {
    let names: Vec<_> = CommandKind::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        names,
        [
            "create",
            "checkout",
            "start",
            "block",
            "unblock",
            "requeue",
            "submit",
            "release",
            "approve",
            "request_changes",
            "escalate",
            "reject",
            "cancel",
            "reopen"
        ]
    );
    for kind in CommandKind::ALL {
        assert_eq!(CommandKind::parse(kind.as_str()).unwrap(), *kind);
        if let Some(cmd) = IssueCommand::from_kind(*kind, None, false) {
            assert_eq!(cmd.kind(), *kind);
        } else {
            assert_eq!(*kind, CommandKind::Create);
        }
    }
}

#[test]
fn the_table_is_well_formed() {
    for status in IssueStatus::ALL {
        for kind in CommandKind::ALL {
            let rows: Vec<_> = rows(*status, *kind).collect();
            assert!(
                rows.windows(2).all(|w| w[0].who == w[1].who),
                "{status} {kind}: parties differ"
            );
        }
        let allowed = allowed_commands(*status);
        if status.is_terminal() {
            assert_eq!(allowed, [CommandKind::Reopen], "{status}");
        } else {
            assert!(
                allowed.contains(&CommandKind::Cancel),
                "{status} cannot be cancelled"
            );
        }
    }
    assert_eq!(TABLE.iter().filter(|r| r.from.is_none()).count(), 1);
}

#[test]
fn mesa_may_block_but_webhooks_only_create() {
    let (issue, _) = setup(IssueStatus::InProgress, Role::Assignee);
    let block = || IssueCommand::Block {
        comment: Some("stuck".into()),
    };
    let t = decide(&issue, block(), &ActorContext::new(Actor::System), NOW).unwrap();
    assert_eq!(t.to, IssueStatus::Blocked);
    assert_eq!(
        t.effects,
        [IssueEffect::AddComment {
            kind: CommentKind::System,
            body: "stuck".into()
        }]
    );
    let webhook = ActorContext::new(Actor::Webhook {
        source: "github".into(),
    });
    assert_eq!(
        decide(&issue, block(), &webhook, NOW).unwrap_err().code(),
        "forbidden"
    );
    for kind in CommandKind::ALL.iter().skip(1) {
        let result = decide(&issue, command(*kind), &webhook, NOW);
        assert!(result.is_err(), "a webhook may {kind}");
    }
}
