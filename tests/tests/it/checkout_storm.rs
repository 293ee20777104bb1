//! Over real HTTP: 64 concurrent agents check out the same 1,000 issues; every issue is claimed
//! exactly once and every loser gets 409 `checkout_conflict`.

use std::collections::HashMap;
use std::sync::Arc;

use mesa_core::domain::entity::AgentConfig;
use mesa_core::domain::{Actor, IssueKey, Name, RunnerKind, Slug, WorkingDir};
use mesa_core::{CoreConfig, IssuePatch, Mesa, NewAgent, NewIssue};

const AGENTS: usize = 64;
const ISSUES: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issue_is_claimed_exactly_once_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = WorkingDir::parse(&dir.path().to_string_lossy()).unwrap();
    let mut config = CoreConfig::new(dir.path(), workspace.clone());
    config.template = "blank".into();
    let mesa = Mesa::builder()
        .sqlite(dir.path().join("mesa.db"))
        .config(config)
        .build()
        .await
        .unwrap();
    mesa.bootstrap_if_empty().await.unwrap();
    let board = Actor::board("test");

    let mut keys = Vec::new();
    for i in 0..AGENTS {
        let slug = format!("worker-{i}");
        let config = AgentConfig::new(
            Name::parse(&slug).unwrap(),
            Slug::parse("backend").unwrap(),
            RunnerKind::Noop,
            workspace.clone(),
        );
        mesa.create_agent(
            &board,
            NewAgent {
                slug: Slug::parse(&slug).unwrap(),
                config,
            },
        )
        .await
        .unwrap();
        keys.push(
            mesa.create_agent_key(&board, &slug, None, None)
                .await
                .unwrap()
                .raw,
        );
    }
    let mut issue_keys = Vec::new();
    for i in 0..ISSUES {
        let view = mesa
            .create_issue(&board, NewIssue::titled(&format!("Storm {i}")).unwrap())
            .await
            .unwrap();
        // New issues go to the CEO; unassign them so any agent may claim them.
        let patch = IssuePatch {
            assignee: Some(None),
            ..IssuePatch::default()
        };
        mesa.update_issue(&board, &view.issue.key, patch)
            .await
            .unwrap();
        issue_keys.push(view.issue.key.to_string());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = mesa_http::AppState::new(mesa.clone());
    let server = tokio::spawn(mesa_http::serve(listener, state, async {
        let _ = stopped.await;
    }));

    // reqwest is built without a crypto provider of its own (ring is the one in the tree).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let issue_keys = Arc::new(issue_keys);
    let mut tasks = tokio::task::JoinSet::new();
    for (n, key) in keys.into_iter().enumerate() {
        let client = client.clone();
        let issue_keys = Arc::clone(&issue_keys);
        tasks.spawn(async move {
            let mut won = Vec::new();
            let mut lost = 0_usize;
            // Each agent walks every issue, starting at its own offset.
            for i in 0..ISSUES {
                let issue = &issue_keys[(i + n * 15) % ISSUES];
                let resp = client
                    .post(format!("http://{addr}/api/v1/issues/{issue}/checkout"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                match resp.status().as_u16() {
                    200 => won.push(issue.clone()),
                    409 => {
                        let body: serde_json::Value = resp.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "checkout_conflict");
                        lost += 1;
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
            (won, lost)
        });
    }
    let mut claims: HashMap<String, usize> = HashMap::new();
    let mut losses = 0;
    while let Some(result) = tasks.join_next().await {
        let (won, lost) = result.unwrap();
        losses += lost;
        for issue in won {
            *claims.entry(issue).or_default() += 1;
        }
    }
    assert_eq!(claims.len(), ISSUES, "every issue was claimed");
    assert!(
        claims.values().all(|c| *c == 1),
        "no issue was claimed twice"
    );
    assert_eq!(
        losses,
        AGENTS * ISSUES - ISSUES,
        "every other attempt lost with 409"
    );
    for (issue, _) in claims.iter().take(5) {
        let view = mesa.issue(&IssueKey::parse(issue).unwrap()).await.unwrap();
        assert_eq!(view.issue.status.as_str(), "in_progress");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
