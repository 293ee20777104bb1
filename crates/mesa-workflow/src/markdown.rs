//! Renders the transition tables as Markdown, for `docs/workflow.md`.
//!
//! The text comes from the same tables `decide` enforces, so the document cannot drift from
//! the code; a test fails when the committed file differs (run the tests with
//! `UPDATE_EXPECT=1` to regenerate it).

use std::fmt::Write as _;

use crate::approval::APPROVAL_TABLE;
use crate::issue::TABLE;
use crate::run::RUN_TABLE;
use crate::work_block::BLOCK_TABLE;

/// The issue, work-block, approval and run transition tables as Markdown.
pub fn transition_table_markdown() -> String {
    let mut out = String::new();
    out.push_str("### Issues (SPEC §2)\n\n");
    out.push_str("| from | to | command | who may | notes |\n|---|---|---|---|---|\n");
    for row in TABLE {
        let from = row.from.map_or("(new)", |s| s.as_str());
        line(
            &mut out,
            &[
                from,
                row.to.as_str(),
                row.command.as_str(),
                &join(row.who.iter().map(|p| p.describe())),
                row.note,
            ],
        );
    }

    out.push_str("\n### Work blocks (SPEC §3.1)\n\n");
    out.push_str("| from | to | command | who may | an agent asking gets | notes |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for row in BLOCK_TABLE {
        let from = row.from.map_or("(new)", |s| s.as_str());
        let request = row
            .agent_request
            .map_or_else(String::new, |k| format!("a `{k}` approval"));
        line(
            &mut out,
            &[
                from,
                row.to.as_str(),
                row.command.as_str(),
                &join(row.who.iter().map(|p| p.describe())),
                &request,
                row.note,
            ],
        );
    }

    out.push_str("\n### Approvals (SPEC §4.2)\n\n");
    out.push_str("| from | to | command | who may |\n|---|---|---|---|\n");
    for (from, to, command, who) in APPROVAL_TABLE {
        line(&mut out, &[from.as_str(), to.as_str(), command, who]);
    }

    out.push_str("\n### Runs (SPEC §1, §6)\n\n");
    out.push_str("| from | to | command | who may |\n|---|---|---|---|\n");
    for row in RUN_TABLE {
        let who = if row.board {
            "Mesa itself, the board"
        } else {
            "Mesa itself"
        };
        line(
            &mut out,
            &[
                row.from.as_str(),
                row.to.as_str(),
                row.command.as_str(),
                who,
            ],
        );
    }
    out
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

fn line(out: &mut String, cells: &[&str]) {
    out.push('|');
    for cell in cells {
        write!(out, " {} |", cell.replace('|', "\\|")).expect("writing to a String cannot fail");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests;
