use mesa_domain::{Actor, RunStatus, Timestamp};

use super::*;
use crate::fixtures::{agent, agent_id, key};

const NOW: Timestamp = Timestamp::from_millis(77);

fn run(status: RunStatus) -> RunSnapshot {
    RunSnapshot {
        status,
        agent_id: agent_id(3),
        issue_key: Some(key(4)),
    }
}

fn command(kind: RunCommandKind) -> RunCommand {
    match kind {
        RunCommandKind::Start => RunCommand::Start,
        RunCommandKind::Succeed => RunCommand::Succeed,
        RunCommandKind::Fail => RunCommand::Fail {
            reason: "quota".into(),
        },
        RunCommandKind::TimeOut => RunCommand::TimeOut,
        RunCommandKind::Cancel => RunCommand::Cancel {
            reason: "shutdown".into(),
        },
    }
}

/// Every (status × command) for Mesa itself and for the board.
#[test]
fn every_cell_of_the_run_table() {
    use RunCommandKind as C;
    use RunStatus::*;
    let expected = |from: RunStatus, kind: C| match (from, kind) {
        (Queued, C::Start) => Some(Running),
        (Running, C::Succeed) => Some(Succeeded),
        (Running, C::Fail) => Some(Failed),
        (Running, C::TimeOut) => Some(TimedOut),
        (Queued | Running, C::Cancel) => Some(Cancelled),
        _ => None,
    };
    for from in RunStatus::ALL {
        for kind in RunCommandKind::ALL {
            let system = decide(&run(*from), command(*kind), &Actor::System, NOW);
            match expected(*from, *kind) {
                Some(to) => assert_eq!(system.unwrap().to, to, "{from} {kind}"),
                None => {
                    let err = system.unwrap_err();
                    assert!(
                        matches!(err, WorkflowError::IllegalRunTransition { .. }),
                        "{from} {kind}: {err:?}"
                    );
                    assert_eq!(err.code(), "illegal_transition");
                }
            }
            let board = decide(&run(*from), command(*kind), &Actor::board("ops"), NOW);
            match (expected(*from, *kind), kind) {
                (Some(to), C::Cancel) => assert_eq!(board.unwrap().to, to),
                (Some(_), _) => assert_eq!(board.unwrap_err().code(), "forbidden", "{from} {kind}"),
                (None, _) => assert_eq!(board.unwrap_err().code(), "illegal_transition"),
            }
            assert!(decide(&run(*from), command(*kind), &agent(3), NOW).is_err());
        }
        if from.is_finished() {
            assert!(
                allowed_run_commands(*from).is_empty(),
                "{from} is not immutable"
            );
        }
    }
}

#[test]
fn finishing_effects() {
    let t = decide(
        &run(RunStatus::Queued),
        RunCommand::Start,
        &Actor::System,
        NOW,
    )
    .unwrap();
    assert_eq!(t.effects, [RunEffect::SetStartedAt(NOW)]);
    let t = decide(
        &run(RunStatus::Running),
        command(RunCommandKind::Fail),
        &Actor::System,
        NOW,
    )
    .unwrap();
    assert_eq!(
        t.effects,
        [
            RunEffect::SetFinishedAt(NOW),
            RunEffect::SetFailureReason("quota".into()),
            RunEffect::ReleaseReservation,
            RunEffect::RevokeRunKey,
            RunEffect::IssueComment {
                issue: key(4),
                body: "The run failed: quota".into()
            },
        ]
    );
    let t = decide(
        &run(RunStatus::Running),
        RunCommand::Succeed,
        &Actor::System,
        NOW,
    )
    .unwrap();
    assert_eq!(
        t.effects,
        [
            RunEffect::SetFinishedAt(NOW),
            RunEffect::ReleaseReservation,
            RunEffect::RevokeRunKey
        ]
    );
    let t = decide(
        &run(RunStatus::Running),
        command(RunCommandKind::Cancel),
        &Actor::board("ops"),
        NOW,
    )
    .unwrap();
    assert_eq!(t.effects[0], RunEffect::KillProcess);
    assert!(
        !t.effects
            .iter()
            .any(|e| matches!(e, RunEffect::IssueComment { .. }))
    );
    let t = decide(
        &run(RunStatus::Queued),
        command(RunCommandKind::Cancel),
        &Actor::System,
        NOW,
    )
    .unwrap();
    assert!(!t.effects.contains(&RunEffect::KillProcess));
    // A heartbeat run has no issue to comment on.
    let heartbeat = RunSnapshot {
        issue_key: None,
        ..run(RunStatus::Running)
    };
    let t = decide(&heartbeat, RunCommand::TimeOut, &Actor::System, NOW).unwrap();
    assert!(
        t.effects
            .contains(&RunEffect::SetFailureReason("timeout".into()))
    );
    assert!(
        !t.effects
            .iter()
            .any(|e| matches!(e, RunEffect::IssueComment { .. }))
    );
}
