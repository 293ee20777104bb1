//! Property tests for the state-machine invariants, over random orgs, random command sequences
//! and random actors.

use std::collections::BTreeSet;

use mesa_domain::{Actor, AgentId, IssueStatus, Timestamp, WorkBlockStatus};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use crate::fixtures::{agent, agent_id, block_id, key};
use crate::issue::{
    self, ActorContext, ChildIssue, CommandKind, IssueCommand, IssueEffect, IssueSnapshot,
};
use crate::review_chain::{
    Org, OrgMember, Reviewer, resolve_reviewer, reviewer_chain, validate_reports_to,
};
use crate::work_block::{self, BlockCommand, BlockContext, BlockEffect, WorkBlockSnapshot};

/// Agents 1..=AGENTS; agent 1 is the CEO, agent 5 created the issue.
const AGENTS: u32 = 6;

/// An org where agent n > 1 reports to a lower-numbered agent (or nobody) and has any reviewer
/// (possibly itself, or nobody).
fn org_strategy() -> impl Strategy<Value = Org> {
    proptest::collection::vec((0..AGENTS, 0..=AGENTS), (AGENTS - 1) as usize).prop_map(|edges| {
        let mut org = Org::new().with(agent_id(1), OrgMember::new(None, None).ceo());
        for (i, (manager, reviewer)) in edges.into_iter().enumerate() {
            let n = u32::try_from(i).unwrap() + 2;
            let reports_to = (manager > 0 && manager < n).then(|| agent_id(manager));
            let reviewer_id = (reviewer > 0).then(|| agent_id(reviewer));
            org.insert(agent_id(n), OrgMember::new(reports_to, reviewer_id));
        }
        org
    })
}

/// Who acts, relative to the issue at the time (so that random runs reach the interesting
/// cases: the assignee approving its own work, the submitter reviewing after a reassignment).
#[derive(Debug, Clone, Copy)]
enum Who {
    Board,
    Assignee,
    Submitter,
    Reviewer,
    /// The n-th member of the assignee's chain (wrapping).
    Chain(usize),
    Ceo,
    Creator,
    /// Agent n.
    Agent(u32),
    Mesa,
}

fn who_strategy() -> impl Strategy<Value = Who> {
    prop_oneof![
        2 => Just(Who::Board),
        3 => Just(Who::Assignee),
        2 => Just(Who::Submitter),
        3 => Just(Who::Reviewer),
        1 => (0..4usize).prop_map(Who::Chain),
        1 => Just(Who::Ceo),
        1 => Just(Who::Creator),
        1 => (1..=AGENTS).prop_map(Who::Agent),
        1 => Just(Who::Mesa),
    ]
}

/// Commands, weighted toward the path that moves work forward so deep statuses are reached.
fn kind_strategy() -> impl Strategy<Value = CommandKind> {
    use CommandKind as C;
    prop_oneof![
        3 => Just(C::Checkout),
        1 => Just(C::Start),
        1 => Just(C::Block),
        1 => Just(C::Unblock),
        1 => Just(C::Requeue),
        3 => Just(C::Submit),
        1 => Just(C::Release),
        3 => Just(C::Approve),
        1 => Just(C::RequestChanges),
        1 => Just(C::Escalate),
        1 => Just(C::Reject),
        1 => Just(C::Cancel),
        2 => Just(C::Reopen),
    ]
}

fn resolve_who(
    who: Who,
    issue: &IssueSnapshot,
    ctx_reviewer: Reviewer,
    chain: &[AgentId],
) -> Actor {
    let as_agent = |id: Option<AgentId>| {
        id.and_then(|id| (1..=AGENTS).find(|n| agent_id(*n) == id))
            .map_or_else(|| Actor::board("ops"), agent)
    };
    match who {
        Who::Board => Actor::board("ops"),
        Who::Assignee => as_agent(issue.assignee),
        Who::Submitter => as_agent(issue.submitted_by.or(issue.assignee)),
        Who::Reviewer => as_agent(ctx_reviewer.agent()),
        Who::Chain(_) if chain.is_empty() => as_agent(issue.assignee),
        Who::Chain(i) => as_agent(Some(chain[i % chain.len()])),
        Who::Ceo => agent(1),
        Who::Creator => agent(5),
        Who::Agent(n) => agent(n),
        Who::Mesa => Actor::System,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A command by an actor. `care` is how the caller resolves the reviewer: 0 correctly
    /// (excluding assignee and submitter), 1 forgetting the submitter, 2 naming the assignee
    /// itself. The machine must keep its promises whatever the caller gets wrong.
    Command {
        kind: CommandKind,
        who: Who,
        text: bool,
        force: bool,
        care: u8,
    },
    /// PATCH `assignee_slug` (outside the state machine).
    Reassign(Option<u32>),
    /// The assignee posts evidence.
    Evidence,
    /// The sub-issues change.
    Children(Vec<usize>),
    /// The `board_reviews_top_level` setting flips.
    ToggleTopLevel,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (kind_strategy(), who_strategy(), any::<bool>(), any::<bool>(), 0..3u8)
            .prop_map(|(kind, who, text, force, care)| Op::Command { kind, who, text, force, care }),
        2 => proptest::option::of(1..=AGENTS).prop_map(Op::Reassign),
        1 => Just(Op::Evidence),
        1 => proptest::collection::vec(0..IssueStatus::ALL.len(), 0..3).prop_map(Op::Children),
        1 => Just(Op::ToggleTopLevel),
    ]
}

/// One accepted command, with what was true when it was decided.
#[derive(Debug, Clone)]
struct Step {
    from: IssueStatus,
    kind: CommandKind,
    to: IssueStatus,
    actor: Actor,
    is_ceo: bool,
    /// The agent that last submitted the issue, as the model (not the snapshot) remembers it.
    submitter: Option<AgentId>,
    assignee: Option<AgentId>,
    reviewed_below: bool,
    top_level_gate: bool,
    effects: Vec<IssueEffect>,
}

/// Plays `ops` on a fresh issue, carrying out every effect, and returns the accepted steps.
/// Checks the field invariants after every step.
fn play(org: &Org, first_assignee: Option<u32>, ops: Vec<Op>) -> Vec<Step> {
    let mut now = Timestamp::from_millis(1_000);
    let created = issue::create(
        &key(1),
        first_assignee.map(agent_id),
        org.ceo(),
        &Actor::board("ops"),
    );
    let mut issue = IssueSnapshot::new(key(1), created.to, now);
    let mut completed_at = None;
    let mut cancellation_reason = None;
    for effect in &created.effects {
        if let IssueEffect::SetAssignee(a) = effect {
            issue.assignee = Some(*a);
        }
    }
    let mut steps = Vec::new();
    for op in ops {
        now = Timestamp::from_millis(now.as_millis() + 1_000);
        let (kind, who, text, force, care) = match op {
            Op::Command {
                kind,
                who,
                text,
                force,
                care,
            } => (kind, who, text, force, care),
            Op::Reassign(to) => {
                if !issue.status.is_terminal() {
                    issue.assignee = to.map(agent_id);
                }
                continue;
            }
            Op::Evidence => {
                issue.latest_evidence_at = Some(now);
                issue.evidence_since_checkout = true;
                continue;
            }
            Op::Children(statuses) => {
                issue.children = statuses
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| ChildIssue {
                        key: key(i as u64 + 2),
                        status: IssueStatus::ALL[s],
                    })
                    .collect();
                continue;
            }
            Op::ToggleTopLevel => {
                issue.board_reviews_top_level = !issue.board_reviews_top_level;
                continue;
            }
        };
        let text = text.then(|| "some words".to_owned());
        let mut command = IssueCommand::from_kind(kind, text, force).expect("not create");
        if let IssueCommand::Checkout { expected_statuses } = &mut command
            && force
        {
            *expected_statuses = Some(vec![IssueStatus::Todo]);
        }
        let (reviewer, chain) = match issue.assignee {
            Some(assignee) => {
                let exclude: Vec<_> = match care {
                    0 => [Some(assignee), issue.submitted_by]
                        .into_iter()
                        .flatten()
                        .collect(),
                    _ => vec![assignee],
                };
                let reviewer = match care {
                    2 => Reviewer::Agent(assignee),
                    _ => resolve_reviewer(org, assignee, &exclude),
                };
                (reviewer, reviewer_chain(org, assignee))
            }
            None => (Reviewer::Board, Vec::new()),
        };
        let actor = resolve_who(who, &issue, reviewer, &chain);
        let mut ctx = ActorContext::new(actor.clone());
        ctx.is_ceo = actor.agent_id() == Some(agent_id(1));
        ctx.creator = Some(agent_id(5));
        ctx.reviewer = reviewer;
        ctx.reviewer_chain = chain;

        let Ok(t) = issue::decide(&issue, command, &ctx, now) else {
            continue;
        };
        steps.push(Step {
            from: issue.status,
            kind,
            to: t.to,
            actor: actor.clone(),
            is_ceo: ctx.is_ceo,
            submitter: issue.submitted_by,
            assignee: issue.assignee,
            reviewed_below: issue.children_reviewed_below(),
            top_level_gate: issue.board_reviews_top_level,
            effects: t.effects.clone(),
        });
        for effect in &t.effects {
            match effect {
                IssueEffect::SetAssignee(a) => issue.assignee = Some(*a),
                IssueEffect::ClearAssignee => issue.assignee = None,
                IssueEffect::SetStartedAt(at) => {
                    assert!(issue.started_at.is_none(), "started_at set twice");
                    issue.started_at = Some(*at);
                }
                IssueEffect::SetCompletedAt(at) => completed_at = Some(*at),
                IssueEffect::ClearCompletedAt => completed_at = None,
                IssueEffect::SetCancellationReason(r) => cancellation_reason = Some(r.clone()),
                IssueEffect::ClearCancellationReason => cancellation_reason = None,
                IssueEffect::BindRun
                | IssueEffect::AddComment { .. }
                | IssueEffect::Wake { .. }
                | IssueEffect::NotifyBoard { .. }
                | IssueEffect::DropQueuedRuns => {}
            }
        }
        if kind == CommandKind::Submit {
            issue.submitted_by = actor.agent_id();
        }
        if kind == CommandKind::Checkout && t.changes_status() {
            issue.evidence_since_checkout = false;
        }
        if t.changes_status() {
            issue.status = t.to;
            issue.status_changed_at = now;
        }
        assert_eq!(
            completed_at.is_some(),
            issue.status.is_terminal(),
            "completed_at out of step: {issue:?}"
        );
        assert_eq!(
            cancellation_reason.is_some(),
            issue.status == IssueStatus::Cancelled,
            "cancellation_reason out of step"
        );
    }
    steps
}

fn issue_run() -> impl Strategy<Value = (Org, Option<u32>, Vec<Op>)> {
    (
        org_strategy(),
        proptest::option::of(1..=AGENTS),
        proptest::collection::vec(op_strategy(), 0..100),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every reached status is one of the eight, and every accepted transition is a table row.
    #[test]
    fn no_sequence_leaves_the_table((org, first, ops) in issue_run()) {
        for step in play(&org, first, ops) {
            prop_assert!(IssueStatus::ALL.contains(&step.to));
            prop_assert!(issue::is_row(Some(step.from), step.kind, step.to), "{step:?}");
            for effect in &step.effects {
                if let IssueEffect::Wake { agent, .. } = effect {
                    prop_assert_ne!(Some(*agent), step.actor.agent_id(), "an agent woke itself");
                }
            }
        }
    }

    /// A terminal issue only ever leaves by reopen, and reopen leads to todo.
    #[test]
    fn terminal_issues_only_leave_by_reopen((org, first, ops) in issue_run()) {
        for step in play(&org, first, ops) {
            if step.from.is_terminal() {
                prop_assert_eq!(step.kind, CommandKind::Reopen, "{:?}", step);
                prop_assert_eq!(step.to, IssueStatus::Todo);
            }
        }
    }

    /// No agent ever approves its own work: an approval to done is by the board or by an agent
    /// that is neither the submitter nor the assignee; the only other way to done is the CEO's
    /// submit of a parent reviewed below.
    #[test]
    fn no_agent_approves_its_own_work((org, first, ops) in issue_run()) {
        for step in play(&org, first, ops) {
            if step.to != IssueStatus::Done {
                continue;
            }
            match step.kind {
                CommandKind::Approve => {
                    if let Some(approver) = step.actor.agent_id() {
                        prop_assert_ne!(Some(approver), step.submitter, "{:?}", step);
                        prop_assert_ne!(Some(approver), step.assignee, "{:?}", step);
                    } else {
                        prop_assert!(step.actor.is_board());
                    }
                }
                CommandKind::Submit => {
                    prop_assert!(step.is_ceo && step.reviewed_below && !step.top_level_gate, "{:?}", step);
                }
                other => prop_assert!(false, "{other} reached done"),
            }
        }
    }
}

/// The generator reaches every row of the table, so the properties above are not vacuous.
#[test]
fn random_runs_reach_every_row() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = issue_run();
    let mut reached = BTreeSet::new();
    for _ in 0..400 {
        let (org, first, ops) = strategy.new_tree(&mut runner).expect("a value").current();
        for step in play(&org, first, ops) {
            reached.insert((step.from, step.kind, step.to));
        }
    }
    let missing: Vec<_> = issue::TABLE
        .iter()
        .filter_map(|r| Some((r.from?, r.command, r.to)))
        .filter(|row| !reached.contains(row))
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

const BLOCKS: u32 = 4;

fn block_command(kind: usize, issue: u64, current: Option<u32>) -> BlockCommand {
    match kind {
        0 => BlockCommand::Activate,
        1 => BlockCommand::Reopen,
        2 => BlockCommand::MarkReady,
        3 => BlockCommand::Ship,
        4 => BlockCommand::Cancel,
        5 => BlockCommand::AddIssue {
            issue: key(issue),
            current_block: current.map(block_id),
        },
        _ => BlockCommand::RemoveIssue { issue: key(issue) },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never more than one active work block, whatever the commands, actors and approvals; every
    /// move is a table row; terminal blocks never change.
    #[test]
    fn never_two_active_blocks(
        ops in proptest::collection::vec(
            (0..BLOCKS, 0..7usize, 0..4u32, any::<bool>(), 1..5u64, proptest::option::of(0..BLOCKS)),
            0..80,
        )
    ) {
        let mut statuses = vec![WorkBlockStatus::Proposed; BLOCKS as usize];
        let mut now = Timestamp::from_millis(0);
        for (index, kind, role, approve, issue, current) in ops {
            now = Timestamp::from_millis(now.as_millis() + 1);
            let active_block = statuses
                .iter()
                .position(|s| *s == WorkBlockStatus::Active)
                .map(|i| block_id(u32::try_from(i).unwrap()));
            let block = WorkBlockSnapshot {
                id: block_id(index),
                title: format!("block {index}"),
                status: statuses[index as usize],
                active_block,
            };
            let ctx = match role {
                0 => BlockContext::new(Actor::board("ops")),
                1 => BlockContext { actor: agent(1), is_ceo: true },
                2 => BlockContext::new(agent(3)),
                _ => BlockContext::new(Actor::System),
            };
            let Ok(mut t) = work_block::decide(&block, block_command(kind, issue, current), &ctx, now) else {
                continue;
            };
            // An agent's request: the board approves it at once, half of the time.
            if let [BlockEffect::RequestApproval { kind: approval, .. }] = t.effects.as_slice()
                && t.to == block.status
                && approve
            {
                let command = work_block::command_for_approval(*approval, block.status).expect("a block approval");
                match work_block::decide(&block, command, &BlockContext::new(Actor::board("ops")), now) {
                    Ok(carried) => t = carried,
                    Err(_) => continue,
                }
            }
            prop_assert!(!block.status.is_terminal(), "a terminal block moved: {t:?}");
            prop_assert!(
                t.to == block.status
                    || work_block::BLOCK_TABLE.iter().any(|r| r.from == Some(block.status) && r.to == t.to),
                "{t:?}"
            );
            statuses[index as usize] = t.to;
            let active = statuses.iter().filter(|s| **s == WorkBlockStatus::Active).count();
            prop_assert!(active <= 1, "{active} active blocks: {statuses:?}");
        }
    }

    /// The resolved reviewer is never the agent, an excluded agent or an inactive agent, and
    /// reporting-line edits that pass validation never create a cycle.
    #[test]
    fn review_chain_invariants(
        org in org_strategy(),
        inactive in proptest::collection::btree_set(1..=AGENTS, 0..3),
        exclude in proptest::collection::vec(1..=AGENTS, 0..3),
        edits in proptest::collection::vec((1..=AGENTS, proptest::option::of(1..=AGENTS + 1)), 0..12),
    ) {
        let mut org = org;
        for n in &inactive {
            let member = *org.get(agent_id(*n)).expect("a member");
            org.insert(agent_id(*n), member.inactive());
        }
        let exclude: Vec<_> = exclude.into_iter().map(agent_id).collect();
        for n in 1..=AGENTS {
            if let Reviewer::Agent(r) = resolve_reviewer(&org, agent_id(n), &exclude) {
                prop_assert_ne!(r, agent_id(n));
                prop_assert!(!exclude.contains(&r));
                prop_assert!(org.get(r).is_some_and(|m| m.active));
            }
        }
        for (n, manager) in edits {
            let manager = manager.map(agent_id);
            if validate_reports_to(&org, agent_id(n), manager).is_ok() {
                let member = *org.get(agent_id(n)).expect("a member");
                org.insert(agent_id(n), OrgMember { reports_to: manager, ..member });
            }
            for start in 1..=AGENTS {
                let mut seen = BTreeSet::new();
                let mut next = Some(agent_id(start));
                while let Some(current) = next {
                    prop_assert!(seen.insert(current), "a reporting cycle through {current}");
                    next = org.get(current).and_then(|m| m.reports_to);
                }
            }
        }
    }
}
