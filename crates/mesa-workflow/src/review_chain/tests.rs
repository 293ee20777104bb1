use mesa_domain::entity::Approver;

use super::*;
use crate::fixtures::agent_id;

// The CEO (1); a CTO (2) under the CEO; an engineer (3) under the CTO, reviewed by QA (4);
// QA under the CEO; an intern (5) under the engineer with no reviewer.
fn org() -> Org {
    let ceo = Some(agent_id(1));
    Org::new()
        .with(agent_id(1), OrgMember::new(None, None).ceo())
        .with(agent_id(2), OrgMember::new(ceo, None))
        .with(
            agent_id(3),
            OrgMember::new(Some(agent_id(2)), Some(agent_id(4))),
        )
        .with(agent_id(4), OrgMember::new(ceo, None))
        .with(agent_id(5), OrgMember::new(Some(agent_id(3)), None))
}

fn ids(ns: &[u32]) -> Vec<AgentId> {
    ns.iter().map(|n| agent_id(*n)).collect()
}

#[test]
fn reviewer_id_then_manager_then_ceo_then_board() {
    let org = org();
    assert_eq!(
        resolve_reviewer(&org, agent_id(3), &[]),
        Reviewer::Agent(agent_id(4))
    );
    assert_eq!(
        resolve_reviewer(&org, agent_id(5), &[]),
        Reviewer::Agent(agent_id(3))
    );
    assert_eq!(
        resolve_reviewer(&org, agent_id(2), &[]),
        Reviewer::Agent(agent_id(1))
    );
    // The CEO has no manager and never reviews itself: the board.
    assert_eq!(resolve_reviewer(&org, agent_id(1), &[]), Reviewer::Board);
    // An agent unknown to the org falls back to the CEO.
    assert_eq!(
        resolve_reviewer(&org, agent_id(42), &[]),
        Reviewer::Agent(agent_id(1))
    );

    assert_eq!(reviewer_chain(&org, agent_id(3)), ids(&[4, 2, 1]));
    assert_eq!(reviewer_chain(&org, agent_id(5)), ids(&[3, 2, 1]));
    assert!(reviewer_chain(&org, agent_id(1)).is_empty());
    // No CEO at all: the chain runs out at the top manager.
    let headless = Org::new()
        .with(agent_id(2), OrgMember::new(None, None))
        .with(agent_id(3), OrgMember::new(Some(agent_id(2)), None));
    assert_eq!(
        resolve_reviewer(&headless, agent_id(2), &[]),
        Reviewer::Board
    );
    assert_eq!(headless.ceo(), None);
}

#[test]
fn never_the_agent_itself_and_never_the_excluded() {
    // An agent named as its own reviewer is skipped to its manager.
    let org = org().with(
        agent_id(3),
        OrgMember::new(Some(agent_id(2)), Some(agent_id(3))),
    );
    assert_eq!(
        resolve_reviewer(&org, agent_id(3), &[]),
        Reviewer::Agent(agent_id(2))
    );
    // Excluding the submitter goes one step further up.
    let org = self::org();
    assert_eq!(
        resolve_reviewer(&org, agent_id(3), &ids(&[4])),
        Reviewer::Agent(agent_id(2))
    );
    assert_eq!(
        resolve_reviewer(&org, agent_id(3), &ids(&[4, 2, 1])),
        Reviewer::Board
    );
}

#[test]
fn inactive_agents_are_skipped() {
    let org = org()
        .with(
            agent_id(4),
            OrgMember::new(Some(agent_id(1)), None).inactive(),
        )
        .with(
            agent_id(2),
            OrgMember::new(Some(agent_id(1)), None).inactive(),
        );
    assert_eq!(
        resolve_reviewer(&org, agent_id(3), &[]),
        Reviewer::Agent(agent_id(1))
    );
    assert_eq!(reviewer_chain(&org, agent_id(3)), ids(&[1]));
    // An inactive CEO is still the CEO when it is the only one, but never a reviewer.
    let org = Org::new()
        .with(agent_id(1), OrgMember::new(None, None).ceo().inactive())
        .with(agent_id(2), OrgMember::new(Some(agent_id(1)), None));
    assert_eq!(org.ceo(), Some(agent_id(1)));
    assert_eq!(resolve_reviewer(&org, agent_id(2), &[]), Reviewer::Board);
}

#[test]
fn a_cycle_in_stored_data_does_not_loop() {
    let org = Org::new()
        .with(agent_id(2), OrgMember::new(Some(agent_id(3)), None))
        .with(agent_id(3), OrgMember::new(Some(agent_id(2)), None));
    assert_eq!(reviewer_chain(&org, agent_id(2)), ids(&[3]));
}

#[test]
fn reports_to_validation() {
    let org = org();
    assert_eq!(validate_reports_to(&org, agent_id(3), None), Ok(()));
    assert_eq!(
        validate_reports_to(&org, agent_id(3), Some(agent_id(4))),
        Ok(())
    );
    assert_eq!(
        validate_reports_to(&org, agent_id(2), Some(agent_id(4))),
        Ok(())
    );
    for (agent, manager, message) in [
        (3, 3, "reports_to must not be the agent itself".to_owned()),
        (
            3,
            42,
            format!("reports_to names an unknown agent {}", agent_id(42)),
        ),
        (
            2,
            5,
            format!(
                "reports_to would create a cycle: agent {} already reports, directly or not, to \
                 agent {}",
                agent_id(5),
                agent_id(2)
            ),
        ),
        (
            1,
            3,
            format!(
                "reports_to would create a cycle: agent {} already reports, directly or not, to \
                 agent {}",
                agent_id(3),
                agent_id(1)
            ),
        ),
    ] {
        let err = validate_reports_to(&org, agent_id(agent), Some(agent_id(manager))).unwrap_err();
        assert_eq!(err.field(), Some("reports_to"));
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn reviewers_become_approvers() {
    assert_eq!(Approver::from(Reviewer::Board), Approver::Board);
    assert_eq!(
        Approver::from(Reviewer::Agent(agent_id(4))),
        Approver::Agent(agent_id(4))
    );
    assert_eq!(Reviewer::Agent(agent_id(4)).agent(), Some(agent_id(4)));
    assert_eq!(Reviewer::Board.agent(), None);
}
