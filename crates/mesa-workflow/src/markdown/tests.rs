use std::fs;
use std::path::PathBuf;

use super::*;

const BEGIN: &str =
    "<!-- BEGIN GENERATED: transition tables (mesa_workflow::transition_table_markdown) -->";
const END: &str = "<!-- END GENERATED -->";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/workflow.md")
}

/// `current` with the generated region replaced by `tables`; `None` when the markers are missing.
fn splice(current: &str, tables: &str) -> Option<String> {
    let start = current.find(BEGIN)? + BEGIN.len();
    let end = start + current[start..].find(END)?;
    Some(format!(
        "{}\n\n{tables}\n{}",
        &current[..start],
        &current[end..]
    ))
}

#[test]
#[expect(
    clippy::disallowed_methods,
    reason = "tests may read UPDATE_EXPECT to regenerate the file"
)]
fn docs_workflow_md_is_up_to_date() {
    let path = doc_path();
    let current = fs::read_to_string(&path).unwrap_or_default();
    let tables = transition_table_markdown();
    let expected = splice(&current, &tables);
    if std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1") {
        let text = expected
            .unwrap_or_else(|| format!("# Workflow\n\n{current}\n{BEGIN}\n\n{tables}\n{END}\n"));
        fs::write(&path, text).expect("write docs/workflow.md");
        return;
    }
    let expected = expected.unwrap_or_else(|| {
        panic!("{} lacks the generated-region markers; run UPDATE_EXPECT=1 cargo test -p mesa-workflow", path.display())
    });
    assert!(
        current == expected,
        "docs/workflow.md is out of date with the transition tables; regenerate it with \
         UPDATE_EXPECT=1 cargo test -p mesa-workflow"
    );
}

#[test]
fn every_row_is_rendered() {
    let text = transition_table_markdown();
    let rows = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| from"))
        .count();
    let expected = crate::issue::TABLE.len()
        + crate::work_block::BLOCK_TABLE.len()
        + crate::approval::APPROVAL_TABLE.len()
        + crate::run::RUN_TABLE.len();
    assert_eq!(rows, expected);
    assert!(text.contains(
        "| in_review | done | approve | the reviewer (§4.1), the board | no open sub-issues |"
    ));
    assert!(
        text.contains("| blocked | todo | requeue | the assignee's reviewer chain, the board |  |")
    );
    assert!(text.contains(
        "| ready | shipped | ship | the board | a `work_block_ship` approval | terminal |"
    ));
}

#[test]
fn splicing_keeps_the_hand_written_text() {
    let doc = format!("# Title\n\nProse.\n\n{BEGIN}\nold\n{END}\n\nMore prose.\n");
    assert_eq!(
        splice(&doc, "NEW\n").unwrap(),
        format!("# Title\n\nProse.\n\n{BEGIN}\n\nNEW\n\n{END}\n\nMore prose.\n")
    );
    assert_eq!(splice("no markers", "x"), None);
}
