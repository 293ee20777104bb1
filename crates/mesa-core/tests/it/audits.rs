//! The auditor loop through the real scheduler (SPEC §4.3), with `command` runs: an audit's
//! start stores the figures of its window and hands them to the run's prompt; its end stores
//! the findings and what the run proposed; a failed run fails its audit; an auditor's cron run
//! is an audit too.

use std::time::Duration;

use mesa_core::domain::entity::Audit;
use mesa_core::domain::{AuditStatus, Body, RunMode, RunStatus};
use mesa_core::store::RunFilter;
use mesa_core::{NewCron, NewIssue};

use crate::engine::{command_agent, drain, engine_config};
use crate::support::TestMesa;

/// The one audit recorded.
async fn only_audit(t: &TestMesa) -> Audit {
    let audits = t.mesa.audits().await.unwrap();
    assert_eq!(audits.len(), 1, "{audits:#?}");
    audits.into_iter().next().unwrap()
}

#[tokio::test]
async fn an_audit_run_gets_its_figures_and_ends_with_its_findings() {
    let t = TestMesa::with_template("enterprise").await;
    let keep = tempfile::tempdir().unwrap();
    let prompt_copy = keep.path().join("prompt.md");
    // The auditor keeps a copy of its prompt.
    let script = format!(
        r#"cp "$MESA_PROMPT_FILE" {copy}
echo "audited""#,
        copy = prompt_copy.display()
    );
    command_agent(&t, "auditor", &script, 1).await;
    // Some work to count: a failing run of the architect on an issue, twice.
    command_agent(&t, "architect", "echo 'cargo test failed' >&2; exit 3", 1).await;
    let mut new = NewIssue::titled("Design the storage layer").unwrap();
    new.assignee = Some("architect".into());
    let key = t.mesa.create_issue(&t.board, new).await.unwrap().issue.key;
    let mut s = t.mesa.scheduler(engine_config());
    drain(&mut s).await;
    t.mesa
        .wake_agent(&t.board, "architect", Some(&key))
        .await
        .unwrap();
    drain(&mut s).await;

    t.clock.advance(Duration::from_secs(60));
    let (audit, run) = t
        .mesa
        .request_audit(&t.board, Some("Why does the architect fail?"), Some(3))
        .await
        .unwrap();
    assert_eq!(
        (audit.status, audit.window_days, audit.figures.as_deref()),
        (AuditStatus::Queued, 3, None)
    );
    drain(&mut s).await;

    let audit = only_audit(&t).await;
    assert_eq!(audit.status, AuditStatus::Finished, "{audit:#?}");
    assert!(audit.finished_at.is_some());
    let figures = audit.figures.clone().unwrap();
    assert!(
        figures.starts_with("Window: 2026-11-22 09:01 UTC to 2026-11-25 09:01 UTC (3 days)."),
        "{figures}"
    );
    assert!(
        figures.contains("| architect | architect | 2 | 0% (0/2) | 2 | 0 | 1.00 (1 issues) |"),
        "{figures}"
    );
    assert!(figures.contains("cargo test failed ×2"), "{figures}");
    // The run's prompt carried the focus and the figures (headings demoted under `## Audit`).
    let prompt = std::fs::read_to_string(&prompt_copy).unwrap();
    assert!(prompt.contains("Why does the architect fail?"), "{prompt}");
    assert!(prompt.contains("| architect | architect | 2 |"), "{prompt}");
    let stored = t
        .mesa
        .run_log(&mesa_core::domain::Actor::System, run.id)
        .await
        .unwrap();
    assert_eq!(stored.status, RunStatus::Succeeded);
    assert_eq!(stored.prompt.as_deref(), Some(prompt.as_str()));
    let findings = audit.findings.unwrap();
    assert!(
        findings.contains("### Proposed during the run"),
        "{findings}"
    );
    assert_eq!((audit.patches_proposed, audit.issues_created), (0, 0));
}

#[tokio::test]
async fn a_failed_audit_run_fails_its_audit_with_the_reason() {
    let t = TestMesa::with_template("enterprise").await;
    command_agent(&t, "auditor", "echo 'no model configured' >&2; exit 2", 1).await;
    t.mesa.request_audit(&t.board, None, None).await.unwrap();
    let mut s = t.mesa.scheduler(engine_config());
    drain(&mut s).await;
    let audit = only_audit(&t).await;
    assert_eq!(audit.status, AuditStatus::Failed, "{audit:#?}");
    assert_eq!(audit.window_days, 14);
    assert!(
        audit.figures.is_some(),
        "the figures were computed at the start"
    );
    let findings = audit.findings.unwrap();
    assert!(
        findings.starts_with("The audit run ended failed"),
        "{findings}"
    );
}

#[tokio::test]
async fn an_auditor_cron_run_is_an_audit_of_its_task() {
    let t = TestMesa::with_template("enterprise").await;
    command_agent(&t, "auditor", "echo weekly", 1).await;
    t.mesa
        .create_cron(
            &t.board,
            NewCron {
                agent: "auditor".to_owned(),
                task: Body::parse("Weekly audit: look at review rejections.").unwrap(),
                schedule: "1h".to_owned(),
                active: true,
            },
        )
        .await
        .unwrap();
    t.clock.advance(Duration::from_secs(2 * 3600));
    let mut s = t.mesa.scheduler(engine_config());
    drain(&mut s).await;
    let runs = t
        .mesa
        .runs(
            &RunFilter::default(),
            &mesa_core::store::PageRequest::new(Some(10), None),
        )
        .await
        .unwrap()
        .items;
    let cron = runs
        .iter()
        .find(|r| r.mode == RunMode::Cron)
        .unwrap_or_else(|| panic!("no cron run: {runs:#?}"));
    let audit = only_audit(&t).await;
    assert_eq!(audit.run_id, Some(cron.id));
    assert_eq!(
        audit.focus.as_deref(),
        Some("Weekly audit: look at review rejections.")
    );
    assert_eq!(audit.status, AuditStatus::Finished, "{audit:#?}");
    let prompt = t
        .mesa
        .run_log(&mesa_core::domain::Actor::System, cron.id)
        .await
        .unwrap()
        .prompt
        .unwrap();
    assert!(prompt.contains("#### Agents"), "{prompt}");
}
