use mesa_domain::{StageStatus, Stages};

use super::*;

fn three() -> Stages {
    Stages::from_titles(["Design", "Build", "Ship"]).unwrap()
}

fn done(stages: &Stages) -> Vec<bool> {
    stages
        .as_slice()
        .iter()
        .map(|s| s.status == StageStatus::Done)
        .collect()
}

#[test]
fn plain_comments_change_nothing() {
    for body in [
        "Looks good to me.",
        "Stages: we still need to talk about them",
        "Stage 2 is harder than it looks",
        "Stage 2: half done",
        "",
    ] {
        assert_eq!(apply(&three(), body), Ok(None), "{body:?}");
    }
}

#[test]
fn a_stages_line_replaces_the_checklist() {
    let update = apply(
        &three(),
        "New plan.\nStages: [Spec], [Code] , [Test],[Release]\n",
    )
    .unwrap()
    .unwrap();
    let titles: Vec<_> = update
        .stages
        .as_slice()
        .iter()
        .map(|s| s.title.as_str())
        .collect();
    assert_eq!(titles, ["Spec", "Code", "Test", "Release"]);
    assert_eq!(done(&update.stages), [false; 4]);
    assert_eq!(update.current_stage, Some(1));
    assert_eq!(
        update.system_comment,
        "Stages set: 4 stages. Progress: 0 of 4 stages done (0%)."
    );
    // Works on an issue without stages too, and with list markers and any case.
    let update = apply(&Stages::empty(), "- stages: [One]").unwrap().unwrap();
    assert_eq!(update.stages.len(), 1);
}

#[test]
fn a_stage_complete_line_ticks_1_to_n() {
    let update = apply(&three(), "Stage 2: Build - Complete")
        .unwrap()
        .unwrap();
    assert_eq!(done(&update.stages), [true, true, false]);
    assert_eq!(update.current_stage, Some(3));
    assert_eq!(
        update.system_comment,
        "Stage 2 complete: Build. Progress: 2 of 3 stages done (66%)."
    );
    let update = apply(&three(), "* stage 3: shipped it -complete.")
        .unwrap()
        .unwrap();
    assert_eq!(done(&update.stages), [true; 3]);
    assert_eq!(update.current_stage, Some(3));
    assert!(update.system_comment.ends_with("(100%)."));
}

#[test]
fn lines_apply_in_order() {
    let body = "Stages: [A], [B]\nStage 1: A - Complete";
    let update = apply(&three(), body).unwrap().unwrap();
    assert_eq!(update.stages.len(), 2);
    assert_eq!(done(&update.stages), [true, false]);
    assert_eq!(
        update.system_comment,
        "Stages set: 2 stages. Stage 1 complete: A. Progress: 1 of 2 stages done (50%)."
    );
}

#[test]
fn out_of_range_stages_are_422_on_body() {
    for (stages, body) in [
        (three(), "Stage 0: nothing - Complete"),
        (three(), "Stage 4: beyond - Complete"),
        (three(), "Stage 99999999999999999999999: huge - Complete"),
        (Stages::empty(), "Stage 1: first - Complete"),
        (three(), "Stages: [A], [], [C]"),
        (three(), "Stages: [A], B"),
        (three(), "Stages: [A],"),
        (three(), "Stages: [A"),
    ] {
        let err = apply(&stages, body).unwrap_err();
        assert_eq!(err.field, "body", "{body}");
    }
    let err = apply(&three(), "Stage 4: beyond - Complete").unwrap_err();
    assert_eq!(
        err.message,
        "stage 4 does not exist: the issue has stages 1 to 3"
    );
    let err = apply(&three(), "Stages: [A], [ ]").unwrap_err();
    assert_eq!(
        err.message,
        "in the Stages: line, stages[1].title must not be empty"
    );
}
