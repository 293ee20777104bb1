//! Snapshot tests of whole prompts, unit tests of trimming and section omission, and properties
//! over arbitrary input.

use std::path::PathBuf;

use mesa_domain::{
    ApprovalKind, CommentKind, IssueKey, IssueStatus, IssueType, Priority, ReflectionOutcome,
    RunMode, RunTrigger, RunnerKind, Stage, StageStatus, Timestamp, WorkBlockStatus,
};
use proptest::prelude::*;

use super::text::{self, Budget};
use super::*;

fn key(text: &str) -> IssueKey {
    IssueKey::parse(text).expect("test keys are valid")
}

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339("at", text).expect("test times are valid")
}

fn priority(p: i64) -> Priority {
    Priority::new(p).expect("test priorities are valid")
}

/// Snapshots the system prompt and the prompt together as `src/snapshots/prompt__<name>.snap`.
fn check(name: &str, built: &BuiltPrompt) {
    let system = built.system.as_deref().unwrap_or("(none)");
    let text = format!("=== system ===\n{system}\n=== prompt ===\n{}", built.prompt);
    insta::with_settings!({
        snapshot_path => "../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(format!("prompt__{name}"), text);
    });
}

const BACKEND_BODY: &str = "# Backend Engineer\n\nYou build server-side behaviour with tests \
                            that prove it.\n\n## You must not\n- Push to the main branch.";

fn agent(name: &str, slug: &str, role: &str, archetype: &str) -> AgentCard {
    AgentCard {
        name: name.to_owned(),
        slug: slug.to_owned(),
        role: role.to_owned(),
        archetype: archetype.to_owned(),
        archetype_body: format!("# {role}\n\nYou are the {role} of this team."),
    }
}

fn comment(author: &str, kind: CommentKind, time: &str, body: &str) -> CommentLine {
    CommentLine {
        author: author.to_owned(),
        kind,
        at: at(time),
        body: body.to_owned(),
    }
}

fn member(k: &str, title: &str, status: IssueStatus, assignee: Option<&str>) -> MemberIssue {
    MemberIssue {
        key: key(k),
        title: title.to_owned(),
        status,
        assignee: assignee.map(str::to_owned),
    }
}

fn health_issue() -> IssueCard {
    IssueCard {
        key: key("MESA-12"),
        title: "Add a /health endpoint".to_owned(),
        issue_type: IssueType::Api,
        priority: priority(3),
        status: IssueStatus::Todo,
        assignee: Some("ada".to_owned()),
        labels: vec!["api".to_owned(), "ops".to_owned()],
        description: "Load balancers need a cheap liveness probe.\n\n## Acceptance Criteria\n\
                      - `GET /health` answers 200 with `{\"status\":\"ok\"}`\n- no \
                      authentication"
            .to_owned(),
        stages: vec![
            Stage {
                id: 1,
                title: "Design the response".to_owned(),
                status: StageStatus::Done,
            },
            Stage {
                id: 2,
                title: "Implement the handler".to_owned(),
                status: StageStatus::Todo,
            },
            Stage {
                id: 3,
                title: "Tests".to_owned(),
                status: StageStatus::Todo,
            },
        ],
        warnings: vec!["the acceptance criteria name no error status codes".to_owned()],
        parent: Some(ParentSummary {
            key: key("MESA-10"),
            title: "Observability for the launch".to_owned(),
            status: IssueStatus::InProgress,
            summary: "Everything operations needs to watch the service on launch day.".to_owned(),
        }),
        comments: vec![
            comment(
                "ceo",
                CommentKind::Comment,
                "2026-11-25T09:00:00Z",
                "Keep it dependency-free: no database call in the probe.",
            ),
            comment(
                "board",
                CommentKind::Comment,
                "2026-11-25T10:30:00Z",
                "Also expose the build version if it is cheap.",
            ),
        ],
        earlier_comments: 0,
    }
}

fn worker_input() -> PromptInput {
    PromptInput {
        mode: RunMode::Task,
        runner: RunnerKind::ClaudeCode,
        now: at("2026-11-25T14:00:00Z"),
        triggers: vec![RunTrigger::Assigned],
        agent: AgentCard {
            archetype_body: BACKEND_BODY.to_owned(),
            ..agent("Ada", "ada", "Backend Engineer", "backend")
        },
        issue: Some(health_issue()),
        workspace: Workspace::Worktree {
            path: PathBuf::from("/var/lib/mesa/worktrees/0193-run"),
            branch: "mesa/MESA-12".to_owned(),
        },
        work_block: Some(WorkBlockCard {
            title: "Launch readiness".to_owned(),
            status: WorkBlockStatus::Active,
            goal: "The service can be operated by someone who did not build it.".to_owned(),
            north_star: Some(NorthStar {
                metric: "runbook coverage".to_owned(),
                target: Some(100.0),
                current: Some(35.5),
            }),
            issues: vec![
                member(
                    "MESA-10",
                    "Observability for the launch",
                    IssueStatus::InProgress,
                    Some("ceo"),
                ),
                member(
                    "MESA-12",
                    "Add a /health endpoint",
                    IssueStatus::Todo,
                    Some("ada"),
                ),
                member(
                    "MESA-13",
                    "Write the on-call runbook",
                    IssueStatus::InReview,
                    None,
                ),
            ],
        }),
        directives: vec![
            "Never commit secrets.".to_owned(),
            "Prefer small pull requests.".to_owned(),
        ],
        skills: vec![
            SkillRef {
                slug: "axum-handlers".to_owned(),
                title: "Writing axum handlers".to_owned(),
                path: Some(".claude/skills/axum-handlers/SKILL.md".to_owned()),
            },
            SkillRef {
                slug: "release-notes".to_owned(),
                title: "Release notes that people read".to_owned(),
                path: None,
            },
        ],
        reflections: vec![ReflectionNote {
            issue_key: Some(key("MESA-7")),
            outcome: ReflectionOutcome::ChangesRequested,
            at: at("2026-11-24T16:00:00Z"),
            body: "I forgot the 404 case; list error cases before coding.".to_owned(),
        }],
        org: None,
        review: None,
        heartbeat: None,
        job: None,
        client_installed: true,
    }
}

fn minimal_input() -> PromptInput {
    PromptInput {
        mode: RunMode::Task,
        runner: RunnerKind::Noop,
        now: at("2026-11-25T14:00:00Z"),
        triggers: Vec::new(),
        agent: AgentCard {
            name: "Min".to_owned(),
            slug: "min".to_owned(),
            ..AgentCard::default()
        },
        issue: Some(IssueCard {
            key: key("MESA-1"),
            title: "Do the thing".to_owned(),
            issue_type: IssueType::Task,
            priority: Priority::NONE,
            status: IssueStatus::Todo,
            assignee: None,
            labels: Vec::new(),
            description: String::new(),
            stages: Vec::new(),
            warnings: Vec::new(),
            parent: None,
            comments: Vec::new(),
            earlier_comments: 0,
        }),
        workspace: Workspace::InPlace {
            path: PathBuf::from("/srv/project"),
        },
        work_block: None,
        directives: Vec::new(),
        skills: Vec::new(),
        reflections: Vec::new(),
        org: None,
        review: None,
        heartbeat: None,
        job: None,
        client_installed: false,
    }
}

fn ceo_input() -> PromptInput {
    let mut input = worker_input();
    input.agent = agent("Grace", "ceo", "Chief Executive Officer", "ceo");
    input.triggers = vec![RunTrigger::IssueCreated];
    input.issue = Some(IssueCard {
        key: key("MESA-10"),
        title: "Observability for the launch".to_owned(),
        issue_type: IssueType::Feature,
        priority: priority(4),
        status: IssueStatus::Todo,
        assignee: Some("ceo".to_owned()),
        labels: Vec::new(),
        description: "Everything operations needs to watch the service on launch day.".to_owned(),
        stages: Vec::new(),
        warnings: Vec::new(),
        parent: None,
        comments: Vec::new(),
        earlier_comments: 0,
    });
    input.workspace = Workspace::Worktree {
        path: PathBuf::from("/var/lib/mesa/worktrees/0195-run"),
        branch: "mesa/MESA-10".to_owned(),
    };
    input.skills = Vec::new();
    input.reflections = Vec::new();
    input.org = Some(OrgContext {
        roster: vec![
            RosterEntry {
                slug: "ceo".to_owned(),
                name: "Grace".to_owned(),
                role: "Chief Executive Officer".to_owned(),
                reports_to: None,
                open_issues: 1,
                runs_in_flight: 1,
                unavailable: None,
            },
            RosterEntry {
                slug: "ada".to_owned(),
                name: "Ada".to_owned(),
                role: "Backend Engineer".to_owned(),
                reports_to: Some("ceo".to_owned()),
                open_issues: 2,
                runs_in_flight: 0,
                unavailable: None,
            },
            RosterEntry {
                slug: "quinn".to_owned(),
                name: "Quinn".to_owned(),
                role: "QA Engineer".to_owned(),
                reports_to: Some("ceo".to_owned()),
                open_issues: 0,
                runs_in_flight: 0,
                unavailable: Some("paused until 2026-11-26 00:00 UTC (budget)".to_owned()),
            },
        ],
        needs_decision: vec![DecisionItem {
            issue: member(
                "MESA-9",
                "Pick a metrics backend",
                IssueStatus::Blocked,
                Some("ada"),
            ),
            reason: "blocked: Prometheus or OpenTelemetry?".to_owned(),
        }],
        approvals: vec![ApprovalLine {
            id: "0193a6b2-7c1d-7000-8000-000000000001".to_owned(),
            kind: ApprovalKind::AgentHire,
            title: "Hire a devops engineer".to_owned(),
            requested_by: "ceo".to_owned(),
            addressed_to_you: false,
            created_at: at("2026-11-25T08:00:00Z"),
        }],
        backlog: Some("## New\n- Status page for customers\n- Alert on error rate".to_owned()),
    });
    input
}

fn review_input() -> PromptInput {
    let mut input = worker_input();
    input.mode = RunMode::Review;
    input.triggers = vec![RunTrigger::ReviewRequested];
    input.agent = AgentCard {
        archetype_body: "# QA Engineer\n\nYou gate merges on green checks.".to_owned(),
        ..agent("Quinn", "quinn", "QA Engineer", "qa")
    };
    let mut issue = health_issue();
    issue.status = IssueStatus::InReview;
    issue
        .stages
        .iter_mut()
        .for_each(|s| s.status = StageStatus::Done);
    issue.warnings = Vec::new();
    input.issue = Some(issue);
    input.workspace = Workspace::ReviewCheckout {
        path: PathBuf::from("/var/lib/mesa/worktrees/0194-run"),
        branch: "mesa/MESA-12".to_owned(),
    };
    input.work_block = None;
    input.skills = Vec::new();
    input.reflections = Vec::new();
    input.review = Some(ReviewContext {
        submitted_by: Some("ada".to_owned()),
        base_commit: Some("4f2c9e1".to_owned()),
        diff_stat: " src/health.rs | 24 ++++++++++++++++++++++++\n src/main.rs   |  1 +\n \
                    2 files changed, 25 insertions(+)"
            .to_owned(),
        diff: "--- a/src/main.rs\n+++ b/src/main.rs\n@@ -10,3 +10,4 @@\n     .route(\"/\", \
               get(index))\n+    .route(\"/health\", get(health::probe))"
            .to_owned(),
        evidence: vec![comment(
            "ada",
            CommentKind::Evidence,
            "2026-11-25T13:10:00Z",
            "```\n$ cargo test health\ntest health::answers_ok ... ok\n```",
        )],
    });
    input
}

fn heartbeat_input() -> PromptInput {
    let mut input = minimal_input();
    input.mode = RunMode::Heartbeat;
    input.runner = RunnerKind::Gemini;
    input.triggers = vec![RunTrigger::Heartbeat];
    input.agent = AgentCard {
        archetype_body: "# Product Lead\n\nYou own the roadmap.".to_owned(),
        ..agent("Pat", "pat", "Product Lead", "product")
    };
    input.issue = None;
    input.heartbeat = Some(HeartbeatContext {
        last_run_at: Some(at("2026-11-25T12:00:00Z")),
        inbox: vec![
            InboxItem {
                issue: member(
                    "MESA-20",
                    "Pricing page copy",
                    IssueStatus::InProgress,
                    Some("pat"),
                ),
                priority: priority(2),
                awaiting_your_review: false,
            },
            InboxItem {
                issue: member(
                    "MESA-21",
                    "Onboarding emails",
                    IssueStatus::InReview,
                    Some("mia"),
                ),
                priority: priority(1),
                awaiting_your_review: true,
            },
        ],
        changes: vec![
            ChangeLine {
                at: at("2026-11-25T12:30:00Z"),
                summary: "board commented on MESA-20: \"shorter, please\"".to_owned(),
            },
            ChangeLine {
                at: at("2026-11-25T13:00:00Z"),
                summary: "mia submitted MESA-21 for review".to_owned(),
            },
        ],
        approvals: vec![ApprovalLine {
            id: "0193a6b2-7c1d-7000-8000-000000000002".to_owned(),
            kind: ApprovalKind::Other,
            title: "Drop the legacy plan".to_owned(),
            requested_by: "mia".to_owned(),
            addressed_to_you: true,
            created_at: at("2026-11-25T11:00:00Z"),
        }],
    });
    input
}

fn audit_input() -> PromptInput {
    let mut input = minimal_input();
    input.mode = RunMode::Audit;
    input.runner = RunnerKind::ClaudeCode;
    input.triggers = vec![RunTrigger::Audit];
    input.agent = agent("Otto", "auditor", "Auditor", "auditor");
    input.issue = None;
    input.directives = vec!["Never commit secrets.".to_owned()];
    input.job = Some(JobContext {
        instructions: "Focus: why reviews of backend work bounce.".to_owned(),
        figures: "Window: 2026-11-11 to 2026-11-25\n\n| agent | runs | success | rejections |\n\
                  |---|---|---|---|\n| ada | 14 | 79% | 3 |"
            .to_owned(),
    });
    input
}

#[test]
fn worker_task_run() {
    check("worker_task", &build(&worker_input()));
}

#[test]
fn ceo_run_with_roster_approvals_and_backlog() {
    check("ceo_task", &build(&ceo_input()));
}

#[test]
fn review_run() {
    check("review", &build(&review_input()));
}

#[test]
fn heartbeat_run() {
    check("heartbeat", &build(&heartbeat_input()));
}

#[test]
fn audit_run() {
    check("audit", &build(&audit_input()));
}

#[test]
fn non_claude_runner_gets_the_archetype_first_in_the_prompt() {
    let mut input = worker_input();
    input.runner = RunnerKind::Codex;
    input.work_block = None;
    input.skills = Vec::new();
    input.reflections = Vec::new();
    input.directives = Vec::new();
    let built = build(&input);
    assert_eq!(built.system, None);
    assert!(
        built
            .prompt
            .starts_with("# Your role\n\n## Backend Engineer\n"),
        "{}",
        built.prompt
    );
    check("codex_task", &built);
}

#[test]
fn minimal_run() {
    check("minimal", &build(&minimal_input()));
}

#[test]
fn claude_gets_the_archetype_as_system_prompt_only() {
    let built = build(&worker_input());
    assert_eq!(built.system.as_deref(), Some(BACKEND_BODY));
    assert!(!built.prompt.contains("You build server-side behaviour"));
    assert!(
        built
            .prompt
            .starts_with("You are Ada (`ada`), the Backend Engineer")
    );
}

#[test]
fn empty_archetype_gives_no_system_prompt_and_no_role_heading() {
    let mut input = minimal_input();
    input.runner = RunnerKind::ClaudeCode;
    let built = build(&input);
    assert_eq!(built.system, None);
    assert!(!built.prompt.contains("# Your role"));
}

#[test]
fn sections_without_data_are_left_out() {
    let prompt = build(&minimal_input()).prompt;
    for heading in [
        "## Context",
        "## Organization",
        "### Description",
        "### Stages",
        "### Comments",
        "### Parent issue",
        "### Acceptance-criteria warnings",
        "### Skills",
        "### Directives",
        "### Active work block",
        "### What you learned",
        "mesa issue",
    ] {
        assert!(
            !prompt.contains(heading),
            "{heading} should be left out:\n{prompt}"
        );
    }
    for heading in [
        "## Task: MESA-1 — Do the thing",
        "### Workspace",
        "## Rules",
        "## API reference",
    ] {
        assert!(prompt.contains(heading), "{heading} missing:\n{prompt}");
    }
    assert!(prompt.contains("This run is not isolated"));
}

#[test]
fn organization_is_for_the_ceo_only_and_not_in_reviews() {
    let mut input = ceo_input();
    assert!(build(&input).prompt.contains("## Organization"));
    input.mode = RunMode::Review;
    assert!(!build(&input).prompt.contains("## Organization"));
    let mut input = ceo_input();
    input.agent = agent("Ada", "ada", "Backend Engineer", "backend");
    let prompt = build(&input).prompt;
    assert!(!prompt.contains("## Organization") && !prompt.contains("Hire a devops engineer"));
    assert!(
        !prompt.contains("/work-blocks"),
        "workers get no CEO endpoints"
    );
}

#[test]
fn only_the_last_ten_comments_are_shown_newest_last() {
    let mut input = minimal_input();
    let issue = input.issue.as_mut().expect("minimal input has an issue");
    issue.earlier_comments = 5;
    issue.comments = (1..=14)
        .map(|n| {
            comment(
                "ada",
                CommentKind::Comment,
                "2026-11-25T09:00:00Z",
                &format!("note number {n}."),
            )
        })
        .collect();
    let prompt = build(&input).prompt;
    assert!(
        prompt.contains("### Comments (the last 10 of 19, newest last)"),
        "{prompt}"
    );
    assert!(!prompt.contains("note number 4."));
    let fifth = prompt
        .find("note number 5.")
        .expect("the 5th is the oldest shown");
    let last = prompt.find("note number 14.").expect("the newest is shown");
    assert!(fifth < last);
}

#[test]
fn a_long_comment_is_trimmed_with_a_marker() {
    let mut input = minimal_input();
    let issue = input.issue.as_mut().expect("minimal input has an issue");
    let long = "word ".repeat(1_000);
    issue.comments = vec![comment(
        "board",
        CommentKind::Comment,
        "2026-11-25T09:00:00Z",
        &long,
    )];
    let prompt = build(&input).prompt;
    let marker = prompt
        .lines()
        .find(|l| l.contains("more characters trimmed"))
        .expect("a trim marker");
    assert!(
        marker.contains("GET /api/v1/issues/MESA-1/comments"),
        "{marker}"
    );
    let omitted: usize = marker
        .split_whitespace()
        .find_map(|w| w.replace(',', "").parse().ok())
        .expect("the marker counts what was left out");
    let quoted = prompt
        .lines()
        .find(|l| l.starts_with("> word"))
        .expect("the kept start of the comment, quoted");
    let kept = quoted.matches("word").count();
    assert!(kept > 100, "{quoted}");
    assert_eq!(kept * 5 + omitted, long.trim_end().len(), "{marker}");
}

#[test]
fn a_long_description_is_cut_and_says_where_the_rest_is() {
    let mut input = minimal_input();
    let issue = input.issue.as_mut().expect("minimal input has an issue");
    issue.description = "é".repeat(20_000);
    let prompt = build(&input).prompt;
    assert!(
        prompt.contains("more characters trimmed; read it in full with GET /api/v1/issues/MESA-1]")
    );
    let kept = prompt.matches('é').count();
    assert!(kept > 1_000 && kept < 20_000, "{kept}");
    assert!(prompt.contains(&format!("[… {} more", text::thousands(20_000 - kept))));
}

#[test]
fn everything_huge_still_fits_well_under_100_kib() {
    let mut input = ceo_input();
    let big = "x".repeat(200_000);
    let issue = input.issue.as_mut().expect("ceo input has an issue");
    issue.description = big.clone();
    issue.title = big.clone();
    issue.comments = (0..50)
        .map(|_| comment(&big, CommentKind::Comment, "2026-11-25T09:00:00Z", &big))
        .collect();
    issue.stages = (1..=500)
        .map(|i| Stage {
            id: i,
            title: big.clone(),
            status: StageStatus::Todo,
        })
        .collect();
    issue.warnings = vec![big.clone(); 100];
    input.agent.archetype_body = big.clone();
    input.directives = vec![big.clone(); 1_000];
    input.skills = vec![
        SkillRef {
            slug: big.clone(),
            title: big.clone(),
            path: Some(big.clone())
        };
        100
    ];
    let org = input.org.as_mut().expect("ceo input has an org");
    org.backlog = Some(big.clone());
    org.roster = vec![
        RosterEntry {
            name: big.clone(),
            ..RosterEntry::default()
        };
        5_000
    ];
    let built = build(&input);
    let total = built.prompt.len() + built.system.as_ref().map_or(0, String::len);
    assert!(total < 100 * 1024, "{total} bytes");
    assert!(built.prompt.contains("more agents not shown"));
    assert!(built.prompt.contains("more characters trimmed"));
}

#[test]
fn api_reference_uses_the_real_routes_and_never_a_key_value() {
    let prompt = build(&worker_input()).prompt;
    for line in [
        r#"curl -sS -X POST "$MESA_API_URL/api/v1/issues/MESA-12/checkout" -H "Authorization: Bearer $MESA_API_KEY""#,
        r#"curl -sS -X PATCH "$MESA_API_URL/api/v1/issues/MESA-12" -H "Authorization: Bearer $MESA_API_KEY" -H "Content-Type: application/json" -d '{"status":"in_review","comment":"<what changed>"}'"#,
        r#"-d '{"body":"<commands run and the tail of their output, links>","kind":"evidence"}'"#,
        r#""assignee_slug":"<agent slug>","parent_key":"MESA-12"}'"#,
        r#"curl -sS "$MESA_API_URL/api/v1/wiki/search?q=<words>""#,
        "mesa issue submit MESA-12 \"<what changed>\"",
    ] {
        assert!(prompt.contains(line), "missing {line}");
    }
    let review = build(&review_input()).prompt;
    assert!(review.contains(r#"/api/v1/issues/MESA-12/review" -H "Authorization: Bearer $MESA_API_KEY" -H "Content-Type: application/json" -d '{"decision":"request_changes","comment":"<exactly what to fix>"}'"#));
    assert!(
        !review.contains("/checkout\""),
        "a reviewer never checks out"
    );
    let heartbeat = build(&heartbeat_input()).prompt;
    assert!(heartbeat.contains(r#""$MESA_API_URL/api/v1/inbox""#));
    assert!(heartbeat.contains("`KEY` stands for an issue key"));
}

#[test]
fn values_pasted_into_commands_are_made_safe() {
    let mut input = worker_input();
    input.skills = vec![SkillRef {
        slug: "x\"; rm -rf / #`$(id)`".to_owned(),
        title: "evil".to_owned(),
        path: None,
    }];
    let prompt = build(&input).prompt;
    assert!(prompt.contains("/api/v1/skills/xrm-rfid`"), "{prompt}");
    assert!(!prompt.contains("$(id)"));
}

#[test]
fn building_twice_gives_the_same_prompt() {
    assert_eq!(build(&ceo_input()), build(&ceo_input()));
}

#[test]
fn text_helpers() {
    assert_eq!(text::one_line("  a\n\tb   c ", 100), "a b c");
    assert_eq!(text::one_line("abcdef", 5), "ab…");
    assert_eq!(text::one_line("ééé", 4), "…");
    assert_eq!(text::floor_boundary("aé", 2), 1);
    assert_eq!(text::code("a`b\nc", 10), "`a'b c`");
    assert_eq!(text::thousands(0), "0");
    assert_eq!(text::thousands(1_234_567), "1,234,567");
    assert_eq!(text::fenced("", "a ```` b"), "`````\na ```` b\n`````");
    assert_eq!(text::number(100.0), "100");
    assert_eq!(text::number(35.5), "35.5");
    let mut budget = Budget::new(10);
    assert_eq!(
        text::block(&mut budget, "\n\n  x\ny  \n", 100, ""),
        "  x\ny"
    );
    assert_eq!(budget.left(), 5);
    let lines = text::bounded_lines(
        &mut budget,
        ["- a".to_owned(), "- b".to_owned()].into_iter(),
        5,
        "things",
    );
    assert_eq!(lines, ["- a", "- … and 1 more things not shown"]);
}

#[test]
fn headings_of_user_text_nest_under_the_prompt_sections() {
    let text = "# Top\n## AC\n```\n# not a heading\n```\n#hashtag\n###### deep";
    assert_eq!(
        text::demote_headings(text, 3),
        "#### Top\n##### AC\n```\n# not a heading\n```\n#hashtag\n###### deep"
    );
    let prompt = build(&worker_input()).prompt;
    assert!(prompt.contains("\n##### Acceptance Criteria\n"), "{prompt}");
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~\n]{0,3000}", Just(String::new())]
}

fn arb_input() -> impl Strategy<Value = PromptInput> {
    (
        (
            0..RunMode::ALL.len(),
            0..RunnerKind::ALL.len(),
            any::<bool>(),
            any::<bool>(),
        ),
        (arb_text(), arb_text(), arb_text(), arb_text()),
        (arb_text(), arb_text(), "[A-Z]{1,5}-[1-9][0-9]{0,5}"),
        (
            prop::collection::vec(arb_text(), 0..14),
            prop::collection::vec(arb_text(), 0..4),
        ),
    )
        .prop_map(
            |(
                (mode, runner, ceo, client),
                (name, slug, role, body),
                (title, description, k),
                (comments, extra),
            )| {
                let mut input = if ceo { ceo_input() } else { worker_input() };
                input.mode = RunMode::ALL[mode];
                input.runner = RunnerKind::ALL[runner];
                input.client_installed = client;
                input.agent.name = name;
                input.agent.slug = slug;
                input.agent.role = role;
                input.agent.archetype_body = body;
                let issue = input.issue.as_mut().expect("fixtures have an issue");
                issue.key = key(&k);
                issue.title = title;
                issue.description = description;
                issue.comments = comments
                    .iter()
                    .map(|c| comment(c, CommentKind::Comment, "2026-11-25T09:00:00Z", c))
                    .collect();
                input.directives = extra.clone();
                input.heartbeat = Some(HeartbeatContext {
                    changes: extra
                        .iter()
                        .map(|e| ChangeLine {
                            at: Timestamp::EPOCH,
                            summary: e.clone(),
                        })
                        .collect(),
                    ..HeartbeatContext::default()
                });
                input.job = Some(JobContext {
                    instructions: extra.concat(),
                    figures: extra.join("\n"),
                });
                if let Some(org) = input.org.as_mut() {
                    org.backlog = extra.first().cloned();
                }
                input
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_input_gives_a_bounded_prompt_with_identity_key_and_placeholder(input in arb_input()) {
        let built = build(&input);
        let p = &built.prompt;
        prop_assert!(p.contains("You are "));
        prop_assert!(p.contains("an AI agent of a team run by Mesa. This is a"));
        if matches!(input.mode, RunMode::Task | RunMode::Review) {
            let k = input.issue.as_ref().map(|i| i.key.to_string()).expect("fixtures have an issue");
            let heading = format!(": {k} — ");
            prop_assert!(p.contains(&heading));
        }
        prop_assert!(p.contains("$MESA_API_KEY"));
        prop_assert!(p.len() + built.system.as_ref().map_or(0, String::len) < 100 * 1024);
        for (i, _) in p.match_indices("Authorization: Bearer ") {
            prop_assert!(p[i..].starts_with("Authorization: Bearer $MESA_API_KEY\""));
        }
        prop_assert_eq!(built.system.is_some(), supports_system_prompt(input.runner) && !input.agent.archetype_body.trim().is_empty());
    }
}
