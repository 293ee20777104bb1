//! The rendering of audit figures: one complete example, the empty case, and the table
//! invariants under arbitrary text.

use mesa_domain::{AgentId, IssueKey, MicroUsd, Timestamp};
use mesa_store::AgentWindowFigures;
use proptest::prelude::*;

use super::*;

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339("at", text).unwrap()
}

fn example() -> AuditFigures {
    AuditFigures {
        since: at("2026-11-11T09:30:00Z"),
        until: at("2026-11-25T09:30:00Z"),
        days: 14,
        agents: vec![
            AgentRow {
                slug: "ada".to_owned(),
                archetype: "backend".to_owned(),
                figures: AgentWindowFigures {
                    agent_id: Some(AgentId::from_uuid(uuid::Uuid::nil())),
                    runs: 14,
                    succeeded: 10,
                    failed: 3,
                    cancelled: 0,
                    unfinished: 1,
                    cost: MicroUsd(1_234_500),
                    tokens: 52_000,
                    issue_runs: 9,
                    issues: 6,
                    changes_requested: 2,
                    failure_reasons: vec![
                        ("quota".to_owned(), 2),
                        ("exit 1: cargo | test".to_owned(), 1),
                    ],
                },
            },
            AgentRow {
                slug: "qa".to_owned(),
                archetype: "qa".to_owned(),
                figures: AgentWindowFigures {
                    changes_requested: 1,
                    ..AgentWindowFigures::default()
                },
            },
        ],
        blocked_total: 3,
        blocked: vec![BlockedRow {
            key: IssueKey::parse("MESA-7").unwrap(),
            title: "Flaky\nlogin test".to_owned(),
            assignee: Some("ada".to_owned()),
            since: at("2026-11-20T08:00:00Z"),
        }],
        drift: Drift {
            open: 10,
            aligned: 6,
            unaligned: vec![
                IssueKey::parse("MESA-9").unwrap(),
                IssueKey::parse("MESA-8").unwrap(),
            ],
            spend: MicroUsd(5_000_000),
            aligned_spend: MicroUsd(2_000_000),
        },
        archetypes: vec![ArchetypeRow {
            slug: "backend".to_owned(),
            title: "Backend engineer".to_owned(),
            version: 2,
            agents: vec!["ada".to_owned()],
        }],
        directives: vec!["Never commit secrets.".to_owned()],
        skills: vec![SkillRow {
            slug: "tdd".to_owned(),
            title: "Write the test first".to_owned(),
            uses: 4,
            successes: 3,
        }],
    }
}

#[test]
fn a_full_example_renders_as_compact_tables() {
    let expected = "\
Window: 2026-11-11 09:30 UTC to 2026-11-25 09:30 UTC (14 days).

### Agents

| agent | archetype | runs | success | failed | changes requested | retries per issue | cost | tokens | common failure reasons |
|---|---|--:|--:|--:|--:|--:|--:|--:|---|
| ada | backend | 14 | 77% (10/13) | 3 | 2 | 0.50 (6 issues) | $1.2345 | 52000 | quota ×2; exit 1: cargo \\| test ×1 |
| qa | qa | 0 | n/a (0/0) | 0 | 1 | n/a (0 issues) | $0.0000 | 0 | – |

Success counts finished runs (failed includes timed out). Changes requested are review rejections of the issues assigned to the agent. Retries per issue are task runs beyond the first on each issue worked.

### Blocked issues (3)

| issue | title | assignee | blocked since |
|---|---|---|---|
| MESA-7 | Flaky login test | ada | 2026-11-20 |

2 more blocked issues are not listed.

### Drift

- Work alignment: 60% of 10 open issues roll up to an active apex block; 4 drift: MESA-9, MESA-8 and 2 more.
- Spend alignment: 40% of $5.0000 spent in the window; $3.0000 unaligned.

### Archetypes in use

| archetype | title | version | agents |
|---|---|--:|---|
| backend | Backend engineer | 2 | ada |

### Active directives

- Never commit secrets.

### Active skills

| skill | title | uses | successes |
|---|---|--:|--:|
| tdd | Write the test first | 4 | 3 |";
    assert_eq!(render(&example()), expected);
}

#[test]
fn an_idle_organization_says_so_in_every_section() {
    let idle = AuditFigures {
        agents: Vec::new(),
        blocked_total: 0,
        blocked: Vec::new(),
        drift: Drift::default(),
        archetypes: Vec::new(),
        directives: Vec::new(),
        skills: Vec::new(),
        ..example()
    };
    let text = render(&idle);
    assert!(text.contains("No runs and no review rejections in the window."));
    assert!(text.contains("### Blocked issues\n\nNone."));
    assert!(text.contains("n/a of 0 open issues"), "{text}");
    assert!(text.contains("n/a of $0.0000 spent"), "{text}");
    assert!(!text.contains('|'), "no empty tables: {text}");
}

#[test]
fn money_is_exact_and_cells_are_one_escaped_line() {
    assert_eq!(usd(MicroUsd(10_200)), "$0.0102");
    assert_eq!(usd(MicroUsd(12_000_000)), "$12.0000");
    assert_eq!(cell("a | b\nc"), "a \\| b c");
    assert_eq!(cell("back\\slash|"), "back\\\\slash\\|");
    let long = "word ".repeat(40);
    let cut = cell(&long);
    assert_eq!(cut.chars().count(), CELL_CHARS);
    assert!(cut.ends_with('…'));
}

/// The pipes of a table line that separate cells (not escaped with a backslash).
fn separators(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => n += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    n
}

proptest! {
    /// Whatever text agents, issues, reasons and skills carry, every table row has exactly
    /// the cells of its header, and nothing adds a line to a table.
    #[test]
    fn tables_keep_their_shape_whatever_the_text(
        slug in "\\PC{0,30}",
        archetype in "[\\PC\\n|\\\\]{0,30}",
        reason in "[\\PC\\n|\\\\]{0,200}",
        title in "[\\PC\\n|\\\\]{0,200}",
        skill in "[\\PC\\n|\\\\]{0,100}",
    ) {
        let mut f = example();
        f.agents[0].slug = slug.clone();
        f.agents[0].archetype = archetype;
        f.agents[0].figures.failure_reasons = vec![(reason, 1)];
        f.blocked[0].title = title.clone();
        f.archetypes[0].title = title;
        f.skills[0].title = skill;
        let text = render(&f);
        let mut header = None;
        let mut rows = 0;
        for line in text.lines() {
            if line.starts_with('|') {
                let n = separators(line);
                match header {
                    None => header = Some(n),
                    Some(h) => prop_assert_eq!(n, h, "{}", line),
                }
                rows += 1;
            } else {
                header = None;
            }
        }
        // Agents (2 rows), blocked (1), archetypes (1), skills (1): header and rule each.
        prop_assert_eq!(rows, 4 + 3 + 3 + 3);
        prop_assert!(text.contains(&cell(&slug)));
    }
}
