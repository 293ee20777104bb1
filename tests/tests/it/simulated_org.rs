//! Issue 6, the governed org end to end: a company of `simulated` agents (each a scripted agent
//! that really uses the REST API with its run key) is given three issues by the board and runs
//! unattended until all are `done`. The board only answers approvals, through the API.
//!
//! Checked on the outcome: the CEO delegated every issue as sub-issues for fitting roles; every
//! submission was decided by the submitter's reviewer (SPEC §4.1), never by the submitter; QA
//! asked for changes once on each issue it reviewed, and the rework was submitted and reviewed
//! again; the work block the CEO proposed became active and shipped only after the board
//! approved both through the API; the activity log tells the story in order and its hash chain
//! verifies.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mesa_core::domain::RunnerKind;
use serde_json::{Value, json};

use crate::flows::Flow;

/// How long the org may take (it needs about 20 s on a quiet 2-core machine).
const LIMIT: Duration = Duration::from_secs(240);

/// The roles that fit the kind of sub-issue named by the first word of its title (the
/// simulated CEO's plan table).
fn fitting_roles(title: &str) -> &'static [&'static str] {
    match title.split(':').next().unwrap_or_default() {
        "Build" => &["fullstack", "backend", "frontend", "architect"],
        "Spec" => &["product"],
        "Design" => &["designer"],
        "Test" => &["qa"],
        "Ship" => &["devops"],
        other => panic!("a sub-issue of an unknown kind: {other:?} ({title})"),
    }
}

/// Every item of a paginated board list.
async fn all(flow: &Flow, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = match &cursor {
            Some(c) => format!("{path}{sep}limit=500&cursor={c}"),
            None => format!("{path}{sep}limit=500"),
        };
        let (status, body) = flow.api("GET", &page, None).await;
        assert_eq!(status, 200, "GET {page}: {body}");
        out.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_owned()
}

/// The reviewer of `slug` by SPEC §4.1: its reviewer, else its manager, else the CEO; never
/// itself (one step further up); `None` is the board.
fn reviewer_of(slug: &str, agents: &HashMap<String, Value>) -> Option<String> {
    let me = &agents[slug];
    let ceo = agents
        .values()
        .find(|a| a["archetype"] == "ceo")
        .map(|a| text(a, "slug"));
    let first = [text(me, "reviewer"), text(me, "reports_to")]
        .into_iter()
        .find(|s| !s.is_empty())
        .or(ceo.clone());
    let mut next = first;
    let mut seen = HashSet::new();
    while let Some(candidate) = next {
        if candidate != slug {
            return Some(candidate);
        }
        if !seen.insert(candidate.clone()) {
            return None;
        }
        // Skip to the next one up the chain.
        next = Some(text(&agents[&candidate], "reports_to")).filter(|s| !s.is_empty());
    }
    None
}

/// The board's side of the run: approve every pending approval through the API until the
/// three issues are done and the block has shipped. Returns the approvals it resolved, in
/// order.
async fn board_approves_until_shipped(flow: &Flow, keys: &[String]) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut resolved = Vec::new();
    loop {
        for approval in all(flow, "/approvals?status=pending").await {
            let id = text(&approval, "id");
            let (status, body) = flow
                .api(
                    "POST",
                    &format!("/approvals/{id}/resolve"),
                    Some(json!({ "decision": "approve", "comment": "Go." })),
                )
                .await;
            assert_eq!(status, 200, "resolving {approval}: {body}");
            resolved.push(body);
        }
        let mut done = true;
        for key in keys {
            let (_, detail) = flow.api("GET", &format!("/issues/{key}"), None).await;
            done &= detail["issue"]["status"] == "done";
        }
        // Done when the issues are, and every block the CEO proposed for them has shipped.
        let blocks = all(flow, "/work-blocks").await;
        let settled = !blocks.is_empty()
            && blocks
                .iter()
                .all(|b| matches!(b["status"].as_str(), Some("shipped" | "cancelled")));
        if done && settled {
            return resolved;
        }
        if tokio::time::Instant::now() > deadline {
            let runs = flow.all_runs().await;
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| r.failure_reason.is_some())
                .map(|r| format!("{:?} {:?}: {:?}", r.mode, r.issue_key, r.failure_reason))
                .collect();
            let blocks: Vec<String> = all(flow, "/work-blocks")
                .await
                .iter()
                .map(|b| format!("{} {}", text(b, "title"), text(b, "status")))
                .collect();
            let issues: Vec<String> = all(flow, "/issues")
                .await
                .iter()
                .map(|i| {
                    format!(
                        "{} {} @{} parent {}",
                        text(i, "key"),
                        text(i, "status"),
                        text(i, "assignee_slug"),
                        text(i, "parent_key")
                    )
                })
                .collect();
            let recent: Vec<String> = runs
                .iter()
                .take(30)
                .map(|r| {
                    format!(
                        "{:?} {:?} {:?} {:?} {}",
                        r.mode,
                        r.issue_key,
                        r.status,
                        r.triggers,
                        r.stdout
                            .as_deref()
                            .unwrap_or("")
                            .lines()
                            .filter(|l| !l.starts_with('·'))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                })
                .collect();
            panic!(
                "the org did not finish within {LIMIT:?}; blocks: {blocks:#?}; issues: \
                 {issues:#?}; failed runs: {failed:#?}; newest runs: {recent:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Position of the first activity row matching, after `from`.
fn position(log: &[Value], from: usize, what: impl Fn(&Value) -> bool) -> Option<usize> {
    log.iter().skip(from).position(what).map(|i| i + from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_org_takes_three_board_issues_to_done_under_board_approvals() {
    let flow = Flow::start_with(None, 4).await;
    let agents: HashMap<String, Value> = all(&flow, "/agents")
        .await
        .into_iter()
        .map(|a| (text(&a, "slug"), a))
        .collect();
    assert_eq!(agents.len(), 6, "the startup org");
    for (slug, agent) in &agents {
        // QA asks for changes on every first review; nobody else does.
        let changes = if agent["archetype"] == "qa" {
            "100"
        } else {
            "0"
        };
        let env = [
            ("MESA_SIM_SPEED".to_owned(), "25".to_owned()),
            ("MESA_SIM_SEED".to_owned(), "6".to_owned()),
            ("MESA_SIM_CHANGES_PERCENT".to_owned(), changes.to_owned()),
        ];
        flow.configure(slug, RunnerKind::Simulated, &env, &[], None)
            .await;
    }

    let mut keys = Vec::new();
    for title in [
        "Let customers export their invoices",
        "Add a status page",
        "Sign-up with a magic link",
    ] {
        let (status, issue) = flow
            .api("POST", "/issues", Some(json!({ "title": title })))
            .await;
        assert_eq!(status, 201, "{issue}");
        assert_eq!(
            issue["assignee_slug"], "ceo",
            "unassigned work goes to the CEO"
        );
        keys.push(text(&issue, "key"));
    }

    let resolved = board_approves_until_shipped(&flow, &keys).await;
    flow.wait_idle(Duration::from_secs(60)).await;

    // The board decided every block's activation and shipping, through the API. The CEO keeps
    // delegated work in one block; if the first block finished before a later issue was
    // delegated, that issue went into a block of its own, run the same way.
    let kinds: Vec<String> = resolved.iter().map(|a| text(a, "kind")).collect();
    for a in &resolved {
        assert_eq!(a["status"], "approved", "{a}");
        assert_eq!(
            a["decided_by"], "board:flow",
            "decided through the API: {a}"
        );
    }
    let shipped = all(&flow, "/work-blocks?status=shipped").await;
    assert!(!shipped.is_empty(), "{kinds:?}");
    let mut members = HashSet::new();
    let mut blocks = Vec::new();
    for b in &shipped {
        let block_id = text(b, "id");
        let approval = |kind: &str| {
            resolved
                .iter()
                .find(|a| a["kind"] == kind && text(a, "subject_id") == block_id)
                .unwrap_or_else(|| panic!("a {kind} approval for {block_id}: {kinds:?}"))
                .clone()
        };
        let activation = approval("work_block_activation");
        assert_eq!(activation["requested_by"], "ceo", "{activation}");
        let ship = approval("work_block_ship");
        let (_, detail) = flow
            .api("GET", &format!("/work-blocks/{block_id}"), None)
            .await;
        for issue in detail["issues"].as_array().unwrap() {
            assert!(
                members.insert(text(issue, "key")),
                "an issue is in one block"
            );
        }
        blocks.push((block_id, activation, ship));
    }
    assert_eq!(
        members,
        keys.iter().cloned().collect::<HashSet<_>>(),
        "the three board issues are the blocks' plan"
    );

    // Delegation to fitting roles, and every review by the submitter's reviewer.
    let issues = all(&flow, "/issues").await;
    assert!(issues.iter().all(|i| i["status"] == "done"), "{issues:#?}");
    let subs: Vec<&Value> = issues
        .iter()
        .filter(|i| !i["parent_key"].is_null())
        .collect();
    let mut reworked = 0;
    for key in &keys {
        let children: Vec<&&Value> = subs.iter().filter(|s| s["parent_key"] == *key).collect();
        assert!((2..=3).contains(&children.len()), "{key}: {children:#?}");
    }
    for sub in &subs {
        let key = text(sub, "key");
        let assignee = text(sub, "assignee_slug");
        let role = text(&agents[&assignee], "archetype");
        assert!(
            fitting_roles(&text(sub, "title")).contains(&role.as_str()),
            "{key} went to {assignee} ({role})"
        );
        let reviewer = reviewer_of(&assignee, &agents).expect("a reviewer in the org");
        assert_ne!(reviewer, assignee);
        let trail = all(&flow, &format!("/activity?entity=issue:{key}")).await;
        let decisions: Vec<&Value> = trail
            .iter()
            .filter(|a| {
                matches!(
                    a["action"].as_str(),
                    Some("issue.approve" | "issue.request_changes")
                )
            })
            .collect();
        assert!(!decisions.is_empty(), "{key} was reviewed: {trail:#?}");
        for d in &decisions {
            assert_eq!(
                text(d, "actor"),
                reviewer,
                "{key} of {assignee} decided by its reviewer: {d}"
            );
        }
        let submits = trail
            .iter()
            .filter(|a| a["action"] == "issue.submit")
            .count();
        if decisions
            .iter()
            .any(|d| d["action"] == "issue.request_changes")
        {
            assert_eq!(submits, 2, "{key}: reworked and submitted again");
            assert_eq!(decisions.len(), 2, "{key}: reviewed again");
            reworked += 1;
        }
    }
    assert!(
        reworked >= 1,
        "at least one change request was made and re-reviewed"
    );
    println!(
        "{} board issues, {} sub-issues, {reworked} reworked after a change request, \
         approvals resolved by the board: {kinds:?}",
        keys.len(),
        subs.len()
    );

    // The story, in order, in the global log (oldest first).
    let mut log = all(&flow, "/activity").await;
    log.sort_by_key(|a| a["id"].as_i64());
    let of = |action: &'static str, entity: String| {
        move |a: &Value| a["action"] == action && text(a, "entity_id") == entity
    };
    let mut ready_of = std::collections::HashMap::new();
    for (block_id, activation, ship) in &blocks {
        let proposed = position(&log, 0, of("work_block.propose", block_id.clone()))
            .expect("the CEO proposed the block");
        assert_eq!(text(&log[proposed], "actor"), "ceo");
        let approved_activation = position(&log, proposed, |a| {
            a["action"] == "approval.approve" && text(a, "entity_id") == text(activation, "id")
        })
        .expect("the board approved the activation");
        assert_eq!(text(&log[approved_activation], "actor"), "board:flow");
        let activated = position(&log, 0, of("work_block.activate", block_id.clone()))
            .expect("the block was activated");
        assert!(
            activated > approved_activation,
            "activated only after the board approved"
        );
        let ready = position(&log, activated, of("work_block.ready", block_id.clone()))
            .expect("the block became ready");
        let approved_ship = position(&log, ready, |a| {
            a["action"] == "approval.approve" && text(a, "entity_id") == text(ship, "id")
        })
        .expect("the board approved shipping");
        let shipped_at =
            position(&log, 0, of("work_block.ship", block_id.clone())).expect("the block shipped");
        assert!(
            shipped_at > approved_ship,
            "shipped only after the board approved"
        );
        ready_of.insert(block_id.clone(), ready);
    }
    let block_of: std::collections::HashMap<String, String> = all(&flow, "/issues")
        .await
        .iter()
        .map(|i| (text(i, "key"), text(i, "work_block_id")))
        .collect();
    for key in &keys {
        let created = position(&log, 0, of("issue.create", key.clone())).unwrap();
        assert!(text(&log[created], "actor").starts_with("board:"));
        let delegated = position(&log, created, |a| {
            a["action"] == "issue.create" && text(a, "actor") == "ceo"
        })
        .unwrap_or_else(|| panic!("{key}: the CEO created sub-issues"));
        let closed = position(&log, delegated, |a| {
            text(a, "entity_id") == *key && a["data"]["to"] == "done"
        })
        .unwrap_or_else(|| panic!("{key}: closed after its sub-issues"));
        assert!(
            closed < ready_of[&block_of[key]],
            "{key} was done before its block was ready"
        );
        for sub in subs.iter().filter(|s| s["parent_key"] == *key) {
            let sub_key = text(sub, "key");
            let sub_done = position(&log, 0, |a| {
                text(a, "entity_id") == sub_key && a["action"] == "issue.approve"
            })
            .unwrap();
            assert!(
                sub_done < closed,
                "{sub_key} was approved before {key} closed"
            );
        }
    }

    let chain = flow.mesa.verify_activity().await.unwrap();
    assert!(chain.is_ok(), "the hash chain verifies: {chain:?}");
    println!(
        "{} activity rows, hash chain verified ({} checked)",
        log.len(),
        chain.checked
    );
    flow.stop().await;
}
