//! The auditor loop end to end (issue 6, SPEC §4.3), with the real Claude Code CLI against the
//! scripted fake model: the board requests an audit through the API; the auditor's prompt
//! holds the figures Mesa computed (the fake model answers only if it finds them); its run
//! proposes an archetype patch with `$MESA_API_KEY`; the audit ends with the findings; the
//! board approves the patch's approval; the next run of an agent with that archetype gets
//! version 2; after a rollback the run after that gets version 1 again.
//!
//! The agent whose archetype is patched runs `dry_run`: its stored prompt holds the archetype
//! body (Claude Code would get the body as a system prompt file, which runs do not store).

use std::time::Duration;

use mesa_core::domain::entity::Run;
use mesa_core::domain::{RunStatus, RunnerKind};
use mesa_testkit::{Matcher, Turn, Usage};
use serde_json::json;

use crate::flows::Flow;

/// The line only version 2 of the QA archetype has.
const V2_LINE: &str = "Run the whole test suite twice before you approve anything.";

/// The auditor's final message.
const FINDINGS: &str = "QA approves work after a single test run; proposed a QA patch.";

/// The auditor's Bash command: propose a new QA body through the API.
fn propose_patch() -> String {
    let body = json!({
        "archetype_slug": "qa",
        "proposed_body": format!("# QA\n\nYou are QA. {V2_LINE}"),
        "rationale": "Flaky suites pass once; the figures show QA never re-runs them.",
    });
    format!(
        "curl -sf -X POST \"$MESA_API_URL/api/v1/archetype-patches\" \
         -H \"Authorization: Bearer $MESA_API_KEY\" -H 'Content-Type: application/json' \
         -d '{body}'"
    )
}

/// The fake model: it answers the auditor only when the prompt carries the figures of the
/// window (qa's one successful run and the auditor's own run in flight, the archetypes in
/// use), then ends with the findings once the tool call has run.
fn script() -> Vec<Turn> {
    let with_figures = Matcher::new("the auditor's first request, with the figures", |r| {
        r.body_contains("## Audit")
            && r.body_contains("Why does QA let flaky work through?")
            && r.body_contains("### Figures")
            && r.body_contains("(7 days)")
            && r.body_contains("| qa | qa | 1 | 100% (1/1) | 0 | 0 |")
            && r.body_contains("| auditor | auditor | 1 | n/a (0/0) |")
            && r.body_contains("### Archetypes in use")
            && r.body_contains("### Drift")
            && !r.ends_with_tool_result()
    });
    vec![
        Turn::tool_call("Bash", json!({ "command": propose_patch() }))
            .with_usage(Usage::new(1000, 50))
            .when(with_figures),
        Turn::text(FINDINGS)
            .with_usage(Usage::new(2000, 30))
            .when(Matcher::ends_with_tool_result()),
    ]
}

/// Wakes `slug` by hand and returns its run once every run finished.
async fn wake_and_wait(flow: &Flow, slug: &str) -> Run {
    let (status, body) = flow
        .api("POST", &format!("/agents/{slug}/wake"), Some(json!({})))
        .await;
    assert!(
        status == 200 || status == 201 || status == 202,
        "{status} {body}"
    );
    flow.wait_idle(Duration::from_secs(60)).await;
    latest_run_of(flow, slug).await
}

/// The newest run of `slug`, with its stored prompt.
async fn latest_run_of(flow: &Flow, slug: &str) -> Run {
    let agent = flow.mesa.find_agent(slug).await.unwrap();
    flow.all_runs()
        .await
        .into_iter()
        .find(|r| r.agent_id == agent.id)
        .unwrap_or_else(|| panic!("{slug} has no run"))
}

/// The longest line of an archetype body that is not a heading (prompts demote headings).
fn role_line(body: &str) -> &str {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .max_by_key(|l| l.len())
        .unwrap_or_default()
        .trim()
}

async fn qa_body(flow: &Flow) -> (i64, String) {
    let (status, qa) = flow.api("GET", "/archetypes/qa", None).await;
    assert_eq!(status, 200, "{qa}");
    let version = qa["version"].as_i64().unwrap_or_else(|| panic!("{qa}"));
    (version, qa["body"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_proposes_a_patch_that_the_board_approves_and_rolls_back() {
    let Some(claude) =
        mesa_testkit::agent_cli("MESA_CLAUDE_BIN", "claude", "@anthropic-ai/claude-code")
    else {
        return;
    };
    let flow = Flow::start(claude.parent()).await;
    let server = mesa_testkit::FakeModelServer::start(script())
        .await
        .unwrap();
    // The startup template has no auditor: the board hires one through the API.
    let (status, hired) = flow
        .api(
            "POST",
            "/agents",
            Some(json!({
                "name": "Auditor",
                "slug": "auditor",
                "archetype": "auditor",
                "runner": "claude_code",
                "model": "claude-sonnet-4-5",
            })),
        )
        .await;
    assert_eq!(status, 201, "{hired}");
    let mut env = server.claude_code_env();
    // Root in a container: Claude Code needs this to skip its permission prompts (SPEC §8).
    env.push(("IS_SANDBOX".to_owned(), "1".to_owned()));
    flow.configure("auditor", RunnerKind::ClaudeCode, &env, &[], None)
        .await;
    flow.configure("qa", RunnerKind::DryRun, &[], &[], None)
        .await;
    // Nothing else may talk to the scripted model.
    flow.configure("ceo", RunnerKind::Noop, &[], &[], None)
        .await;

    // Run 1 of QA, before the audit: version 1, and a run for the figures to count.
    let (v1, v1_body) = qa_body(&flow).await;
    assert_eq!(v1, 1);
    let first = wake_and_wait(&flow, "qa").await;
    assert_eq!(first.status, RunStatus::Succeeded, "{first:#?}");
    assert!(
        first
            .prompt
            .as_deref()
            .unwrap()
            .contains(role_line(&v1_body))
    );

    // The audit: requested by the board, run by the auditor against the fake model.
    let (status, audit) = flow
        .api(
            "POST",
            "/audits",
            Some(json!({"focus": "Why does QA let flaky work through?", "window_days": 7})),
        )
        .await;
    assert_eq!(status, 201, "{audit}");
    assert_eq!(audit["status"], "queued");
    assert_eq!(audit["window_days"], 7);
    let audit_id = audit["id"].as_str().unwrap().to_owned();
    flow.wait_idle(Duration::from_secs(150)).await;
    let run = latest_run_of(&flow, "auditor").await;
    assert_eq!(
        run.status,
        RunStatus::Succeeded,
        "{run:#?}\nunexpected requests: {:#?}",
        server.unexpected()
    );
    assert_eq!(
        server.model_requests().len(),
        2,
        "{:#?}",
        server.unexpected()
    );

    // The audit ended with what the auditor saw and what it proposed.
    let (_, audits) = flow.api("GET", "/audits", None).await;
    let audit = audits["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == audit_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{audits}"));
    assert_eq!(audit["status"], "finished", "{audit}");
    assert_eq!(audit["patches_proposed"], 1, "{audit}");
    assert_eq!(audit["issues_created"], 0, "{audit}");
    let figures = audit["figures"].as_str().unwrap();
    assert!(
        figures.contains("| qa | qa | 1 | 100% (1/1) |"),
        "{figures}"
    );
    // The prompt holds the stored figures (their headings demoted under the audit's).
    let prompt = run.prompt.as_deref().unwrap();
    for line in figures.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            prompt.contains(line),
            "{line:?} is not in the prompt:\n{prompt}"
        );
    }
    let findings = audit["findings"].as_str().unwrap();
    assert!(findings.starts_with(FINDINGS), "{findings}");
    assert!(
        findings.contains("Archetype patches (1): `qa` on version 1"),
        "{findings}"
    );

    // The patch, linked to the audit, waits for the board.
    let (_, patches) = flow
        .api("GET", "/archetype-patches?status=pending", None)
        .await;
    let patch = patches["items"][0].clone();
    assert_eq!(patch["archetype_slug"], "qa", "{patches}");
    assert_eq!(patch["audit_id"], audit_id.as_str(), "{patch}");
    assert_eq!(patch["proposed_by_slug"], "auditor", "{patch}");
    let approval = patch["approval_id"].as_str().unwrap().to_owned();

    // Approving wakes the requester: it has nothing left to say to the model.
    flow.configure("auditor", RunnerKind::Noop, &[], &[], None)
        .await;
    let (status, resolved) = flow
        .api(
            "POST",
            &format!("/approvals/{approval}/resolve"),
            Some(json!({"decision": "approve", "comment": "Agreed."})),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");
    let (v2, v2_body) = qa_body(&flow).await;
    assert_eq!(v2, 2);
    assert!(v2_body.contains(V2_LINE));
    flow.wait_idle(Duration::from_secs(60)).await;

    // The next run of QA uses version 2.
    let second = wake_and_wait(&flow, "qa").await;
    assert_ne!(second.id, first.id);
    let prompt = second.prompt.as_deref().unwrap();
    assert!(prompt.contains(V2_LINE), "{prompt}");

    // The board rolls back: version 3 restores version 1's body for the run after.
    let (status, rolled) = flow
        .api(
            "POST",
            "/archetypes/qa/rollback",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{rolled}");
    let (v3, v3_body) = qa_body(&flow).await;
    assert_eq!((v3, v3_body.as_str()), (3, v1_body.as_str()));
    let third = wake_and_wait(&flow, "qa").await;
    assert_ne!(third.id, second.id);
    let prompt = third.prompt.as_deref().unwrap();
    assert!(prompt.contains(role_line(&v1_body)), "{prompt}");
    assert!(!prompt.contains(V2_LINE), "{prompt}");

    // The auditor's usage is what the model reported for its two turns.
    assert_eq!(run.usage.input_tokens, 3000, "{run:#?}");
    assert_eq!(run.usage.output_tokens, 80, "{run:#?}");
    flow.stop().await;
}
