//! The self-improvement loop end to end (issue 6, SPEC §4.3): a reflection posted in one run of
//! an agent appears in the stored prompt of its next relevant run; a skill promoted by the
//! board is listed in the prompts of matching issues only and, for Claude Code, written as
//! `.claude/skills/<slug>/SKILL.md` into the run's worktree (read there by the real CLI) while
//! staying out of git; a final `REFLECTION:` block of a run's output becomes its reflection.

use std::time::Duration;

use mesa_core::domain::entity::{AgentConfig, Run};
use mesa_core::domain::{Actor, RunStatus, RunnerKind};
use mesa_testkit::{FakeModelServer, Matcher, Turn};
use serde_json::json;

use crate::flows::Flow;

const ENGINEER: &str = "founding-engineer";

/// The promoted skill; its body carries a marker the test looks for in the CLI's tool result.
const SKILL_SLUG: &str = "sql-migrations";
const SKILL_MARKER: &str = "Never edit an applied migration (marker K9X)";

/// The reflection of the first run.
const LESSON: &str = "Run the migration tests against a copy of the database (lesson L7Q).";

/// What the engineer's first run does in its worktree: reads the native skill, shows what git
/// sees, and reflects through the API with its run key.
const FIRST_RUN_COMMANDS: &str = r#"cat .claude/skills/sql-migrations/SKILL.md
echo "git status: [$(git status --porcelain)]"
curl -sf -X POST "$MESA_API_URL/api/v1/reflections" \
  -H "Authorization: Bearer $MESA_API_KEY" -H 'Content-Type: application/json' \
  -d '{"body":"Run the migration tests against a copy of the database (lesson L7Q)."}'"#;

/// A matcher for the first request of the engineer's run about `text`.
fn run_about(text: &'static str) -> Matcher {
    Matcher::new(format!("the engineer's run about {text:?}"), move |r| {
        r.body_contains(ENGINEER) && r.body_contains(text) && !r.ends_with_tool_result()
    })
}

fn script() -> Vec<Turn> {
    vec![
        // Run 1, issue about invoices: read the skill, reflect.
        Turn::tool_call("Bash", json!({ "command": FIRST_RUN_COMMANDS }))
            .when(run_about("invoices table")),
        Turn::text("Added the migration.").when(Matcher::ends_with_tool_result()),
        // Run 2, a related issue: nothing to do but be prompted.
        Turn::text("Looked at the ordering.").when(run_about("runner ordering")),
        // Run 3, an unrelated issue: a final REFLECTION block instead of the API.
        Turn::text("Drafted the hero.\n\nREFLECTION: Landing pages load faster without carousels.")
            .when(run_about("landing page hero")),
    ]
}

/// Creates an issue for the engineer and waits until its run is over; returns the issue key
/// and that run (with its stored prompt).
async fn run_issue(flow: &Flow, title: &str) -> (String, Run) {
    let (status, issue) = flow
        .api(
            "POST",
            "/issues",
            Some(json!({"title": title, "assignee_slug": ENGINEER})),
        )
        .await;
    assert_eq!(status, 201, "{issue}");
    let key = issue["key"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        flow.wait_idle(Duration::from_secs(150)).await;
        let runs = flow.runs_of(ENGINEER, &key).await;
        if let Some(run) = runs.into_iter().find(|r| r.finished_at.is_some()) {
            return (key, run);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no finished run on {key}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflections_and_skills_reach_the_next_claude_code_runs() {
    let Some(claude) =
        mesa_testkit::agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
    else {
        return;
    };
    let flow = Flow::start(claude.parent()).await;
    let server = FakeModelServer::start(script()).await.unwrap();
    let mut env = server.claude_code_env();
    // Root in a container: Claude Code needs this to skip its permission prompts (SPEC §8).
    env.push(("IS_SANDBOX".to_owned(), "1".to_owned()));
    let board = Actor::board("test");
    let agent = flow.mesa.find_agent(ENGINEER).await.unwrap();
    let config = AgentConfig {
        model: "claude-sonnet-4-5".to_owned(),
        ..agent.config.clone()
    };
    flow.mesa
        .update_agent_config(&board, ENGINEER, config, None, "model")
        .await
        .unwrap();
    flow.configure(ENGINEER, RunnerKind::ClaudeCode, &env, &[], None)
        .await;
    for slug in ["ceo", "qa", "designer"] {
        flow.configure(slug, RunnerKind::Noop, &[], &[], None).await;
    }

    // The board promotes a skill.
    let (status, skill) = flow
        .api(
            "POST",
            "/skills",
            Some(json!({
                "slug": SKILL_SLUG,
                "title": "Writing SQL migrations",
                "body": format!("{SKILL_MARKER}; add a new one instead."),
                "tags": ["database", "migration"],
            })),
        )
        .await;
    assert_eq!(status, 201, "{skill}");

    // Run 1: a matching issue. The skill is in the prompt, as a file the CLI reads.
    let (first_key, first) = run_issue(&flow, "Add a migration for the invoices table").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let prompt = first.prompt.as_deref().unwrap_or_default();
    assert!(
        prompt.contains("Writing SQL migrations")
            && prompt.contains(".claude/skills/sql-migrations/SKILL.md"),
        "{prompt}"
    );
    let results: Vec<String> = server
        .model_requests()
        .iter()
        .flat_map(|r| r.tool_results())
        .map(|t| t.content)
        .collect();
    let read = results
        .iter()
        .find(|c| c.contains(SKILL_MARKER))
        .unwrap_or_else(|| panic!("the CLI did not read the skill file: {results:#?}"));
    assert!(
        read.contains("name: sql-migrations") && read.contains("description:"),
        "{read}"
    );
    assert!(
        read.contains("git status: []"),
        "git sees the skill files: {read}"
    );
    // The CLI found it as a native skill: its description is offered to the model before any
    // tool ran.
    let offered = server.model_requests().iter().any(|r| {
        !r.ends_with_tool_result()
            && r.body_contains("sql-migrations")
            && r.body_contains("A practice this organization promoted")
    });
    assert!(
        offered,
        "the CLI did not offer the native skill to the model"
    );
    // Nothing of the skill in the run's diff; the worktree is gone.
    assert!(
        !first
            .diff
            .as_deref()
            .unwrap_or_default()
            .contains("SKILL.md"),
        "{:?}",
        first.diff
    );

    // Run 2: a related issue. Its stored prompt holds run 1's reflection and the skill.
    let (_, second) = run_issue(&flow, "Fix the migration runner ordering").await;
    let prompt = second.prompt.as_deref().unwrap_or_default();
    assert!(prompt.contains(LESSON), "{prompt}");
    assert!(prompt.contains(&format!("on {first_key}")), "{prompt}");
    assert!(prompt.contains("Writing SQL migrations"), "{prompt}");

    // Run 3: an unrelated issue: no skill. Its final REFLECTION block becomes its reflection.
    let (_, third) = run_issue(&flow, "Design the landing page hero").await;
    let prompt = third.prompt.as_deref().unwrap_or_default();
    assert!(
        !prompt.contains("Writing SQL migrations") && !prompt.contains(".claude/skills"),
        "{prompt}"
    );
    let reflections = flow.mesa.reflections(agent.id, 10).await.unwrap();
    let extracted = reflections
        .iter()
        .find(|r| r.run_id == Some(third.id))
        .unwrap_or_else(|| panic!("no reflection of run 3: {reflections:#?}"));
    assert_eq!(
        extracted.body,
        "Landing pages load faster without carousels."
    );
    let posted = reflections
        .iter()
        .find(|r| r.run_id == Some(first.id))
        .unwrap();
    assert_eq!(posted.body, LESSON);
    assert_eq!(
        reflections.len(),
        2,
        "run 1 posted its own, run 2 wrote no block"
    );

    // Two runs were given the skill.
    let (_, skill) = flow
        .api("GET", &format!("/skills/{SKILL_SLUG}"), None)
        .await;
    assert_eq!(skill["uses"], 2, "{skill}");
    assert!(server.unexpected().is_empty(), "{:#?}", server.unexpected());
    flow.stop().await;
}

/// The engineer's `command` runner: reflects through the API, then ends with a `REFLECTION:`
/// block too (which must not add a second reflection).
const COMMAND_SCRIPT: &str = r#"set -e
curl -sf -X POST "$MESA_API_URL/api/v1/reflections" \
  -H "Authorization: Bearer $MESA_API_KEY" -H 'Content-Type: application/json' \
  -d "{\"body\":\"Lesson from $MESA_ISSUE_KEY: check the migration order twice.\"}"
printf '%s\n' '{"type":"mesa.result","is_error":false,"result":"Done.\nREFLECTION: not stored twice"}'"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_runner_gets_reflections_and_skill_pointers() {
    let flow = Flow::start(None).await;
    flow.configure(
        ENGINEER,
        RunnerKind::Command,
        &[],
        &["sh", "-c", COMMAND_SCRIPT],
        None,
    )
    .await;
    for slug in ["ceo", "qa", "designer"] {
        flow.configure(slug, RunnerKind::Noop, &[], &[], None).await;
    }
    let (status, skill) = flow
        .api(
            "POST",
            "/skills",
            Some(
                json!({"slug": SKILL_SLUG, "title": "Writing SQL migrations",
                        "body": SKILL_MARKER, "tags": ["database"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{skill}");

    let (first_key, first) = run_issue(&flow, "Add a migration for the invoices table").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    let prompt = first.prompt.as_deref().unwrap_or_default();
    // Listed with the API pointer only: this runner has no native skills.
    assert!(
        prompt.contains("Writing SQL migrations")
            && prompt.contains("/api/v1/skills/sql-migrations")
            && !prompt.contains(".claude/skills"),
        "{prompt}"
    );
    let (_, second) = run_issue(&flow, "Fix the migration runner ordering").await;
    let prompt = second.prompt.as_deref().unwrap_or_default();
    assert!(
        prompt.contains(&format!(
            "Lesson from {first_key}: check the migration order twice."
        )),
        "{prompt}"
    );
    // One reflection per run: the posted one; the output's block was not stored as well.
    let agent = flow.mesa.find_agent(ENGINEER).await.unwrap();
    let reflections = flow.mesa.reflections(agent.id, 10).await.unwrap();
    assert_eq!(reflections.len(), 2, "{reflections:#?}");
    assert!(
        reflections
            .iter()
            .all(|r| r.body.starts_with("Lesson from"))
    );
    flow.stop().await;
}
