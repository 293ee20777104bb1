//! The agents pages: the org chart and roster, one agent's tabs, and the board's actions.

use axum::http::StatusCode;
use mesa_core::domain::Actor;

use super::login;
use super::main_of;
use crate::support::TestApp;

/// Filters for what changes between runs: ids, times, temp paths, tokens.
pub(crate) fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uuid]",
        ),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]"),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d( UTC)?", "[datetime]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[tmp]"),
        (
            r#"name="_csrf" value="[^"]+""#,
            r#"name="_csrf" value="[csrf]""#,
        ),
        (r"mesa_agt_[A-Za-z0-9_]+", "[key]"),
        (r"\d{2}-\d{2}<", "[day]<"),
        (r"<title>\d{2}-\d{2}:", "<title>[day]:"),
    ]
}

fn board() -> Actor {
    Actor::board("test")
}

#[tokio::test]
async fn the_agents_page_shows_the_org_chart_and_the_roster() {
    let app = TestApp::new().await;
    app.mesa.wake_agent(&board(), "qa", None).await.unwrap();
    let b = login(&app).await;
    let page = b.get("/agents").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let main = main_of(&page.body);
    assert!(main.contains("<ul class=\"org\">"));
    // The CEO is a root and the founding engineer is nested under it.
    let ceo = main.find("href=\"/agents/ceo\"").unwrap();
    let nested = main[ceo..].find("<ul>").unwrap() + ceo;
    assert!(main[nested..].contains("href=\"/agents/founding-engineer\""));
    assert!(main.contains(">Runs today</th>"));
    assert!(main.contains("Idle"));
    let qa_row = &main[main
        .find("<span class=\"muted mono small\">@qa</span>")
        .unwrap()..];
    let qa_row = &qa_row[..qa_row.find("</tr>").unwrap()];
    assert!(
        qa_row.contains("<td class=\"num\">1</td>"),
        "one run today: {qa_row}"
    );
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });
}

#[tokio::test]
async fn the_scheduler_switch_pauses_and_resumes() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let r = b.post("/agents/scheduler", &[("paused", "1")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.mesa.scheduler_paused().await);
    let page = b.get(r.location()).await;
    assert!(page.body.contains("Scheduler paused"));
    assert!(page.body.contains("Resume scheduler"));
    let r = b.post("/agents/scheduler", &[("paused", "0")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!app.mesa.scheduler_paused().await);
}

#[tokio::test]
async fn the_htmx_refresh_of_the_roster_renders() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let page = b.get_htmx("/agents").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"agents\""));
}

#[tokio::test]
async fn every_agent_tab_renders() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    for tab in [
        "overview",
        "config",
        "revisions",
        "runs",
        "reflections",
        "keys",
    ] {
        let page = b.get(&format!("/agents/qa?tab={tab}")).await;
        assert_eq!(page.status, StatusCode::OK, "{tab}: {}", page.body);
        assert!(page.body.contains("aria-current=\"page\""), "{tab}");
    }
    let overview = b.get("/agents/qa").await;
    assert!(overview.body.contains("<svg"), "the 30-day chart");
    let main = main_of(&overview.body);
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });
    assert_eq!(b.get("/agents/nobody").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_config_form_saves_a_revision_and_a_bad_value_is_422_and_writes_nothing() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let before = app.mesa.find_agent("qa").await.unwrap();
    let page = b.get("/agents/qa?tab=config").await;
    let main = main_of(&page.body);
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });
    let wd = before.config.working_dir.as_str().to_owned();
    let version = before.version.0.to_string();
    let mut fields = vec![
        ("name", "Quality"),
        ("archetype", "qa"),
        ("runner", "noop"),
        ("model", "m-2"),
        ("working_dir", wd.as_str()),
        ("max_turns", "7"),
        ("timeout_sec", "60"),
        ("heartbeat_enabled", "false"),
        ("heartbeat_interval_sec", "300"),
        ("reports_to", "ceo"),
        ("reviewer", ""),
        ("active", "true"),
        ("chrome_enabled", "false"),
        ("max_concurrent_runs", "2"),
        ("version", version.as_str()),
        ("reason", "tuning"),
    ];
    let bad: Vec<_> = fields
        .iter()
        .map(|(k, v)| {
            if *k == "max_turns" {
                (*k, "zero")
            } else {
                (*k, *v)
            }
        })
        .collect();
    let r = b.post("/agents/qa/config", &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("max_turns must be a whole number"));
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(
        r.body.contains("value=\"Quality\""),
        "the submitted values are kept"
    );
    assert_eq!(app.mesa.find_agent("qa").await.unwrap(), before);

    let r = b.post("/agents/qa/config", &fields).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let after = app.mesa.find_agent("qa").await.unwrap();
    assert_eq!(after.config.name.as_str(), "Quality");
    assert_eq!(after.config.max_turns, 7);
    assert_eq!(after.config.max_concurrent_runs, 2);
    assert_eq!(after.config.model, "m-2");
    let revisions = app.mesa.agent_revisions("qa").await.unwrap();
    assert_eq!(revisions[0].reason, "tuning");
    assert!(
        b.get(r.location())
            .await
            .body
            .contains("Configuration saved")
    );

    // A stale version is refused and changes nothing.
    fields.retain(|(k, _)| *k != "name");
    fields.push(("name", "Stale"));
    let r = b.post("/agents/qa/config", &fields).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(
        app.mesa
            .find_agent("qa")
            .await
            .unwrap()
            .config
            .name
            .as_str(),
        "Quality"
    );
}

#[tokio::test]
async fn rollback_restores_an_earlier_revision_with_an_empty_diff() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let first = app.mesa.find_agent("qa").await.unwrap();
    let original = app.mesa.agent_revisions("qa").await.unwrap()[0].number;
    let mut changed = first.config.clone();
    changed.max_turns = 3;
    app.mesa
        .update_agent_config(&board(), "qa", changed, None, "fewer turns")
        .await
        .unwrap();
    let page = b.get("/agents/qa?tab=revisions").await;
    assert!(
        page.body
            .contains("class=\"diff-del\">  &quot;max_turns&quot;: 50,"),
        "{}",
        main_of(&page.body)
    );
    assert!(
        page.body
            .contains("class=\"diff-add\">  &quot;max_turns&quot;: 3,")
    );
    let r = b
        .post(
            "/agents/qa/rollback",
            &[("revision", &original.to_string())],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let now = app.mesa.find_agent("qa").await.unwrap();
    assert_eq!(now.config, first.config);
    let revisions = app.mesa.agent_revisions("qa").await.unwrap();
    assert_eq!(
        revisions[0].config,
        revisions
            .iter()
            .find(|r| r.number == original)
            .unwrap()
            .config
    );
    let page = b.get(r.location()).await;
    assert!(page.body.contains("Rolled back"));
    let main = main_of(&page.body);
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });
}

#[tokio::test]
async fn wake_pause_and_resume_change_the_agent() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let r = b.post("/agents/qa/wake", &[("issue_key", "")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let qa = app.mesa.find_agent("qa").await.unwrap();
    let runs = app
        .mesa
        .runs(
            &mesa_core::store::RunFilter {
                agent: Some(qa.id),
                ..Default::default()
            },
            &mesa_core::store::PageRequest::new(Some(10), None),
        )
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    assert!(b.get(r.location()).await.body.contains("Run queued."));
    let runs_tab = b.get("/agents/qa?tab=runs").await;
    assert!(
        runs_tab
            .body
            .contains(&format!("/runs/{}", runs.items[0].id))
    );

    let r = b.post("/agents/qa/pause", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!app.mesa.find_agent("qa").await.unwrap().config.active);
    assert!(b.get(r.location()).await.body.contains("Inactive."));
    let r = b.post("/agents/qa/resume", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(app.mesa.find_agent("qa").await.unwrap().config.active);

    let r = b
        .post("/agents/qa/wake", &[("issue_key", "not a key")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_new_key_is_shown_once_and_the_list_shows_only_its_prefix() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let r = b.post("/agents/qa/keys", &[("name", "ci bot")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let marker = "<code class=\"mono\" id=\"new-key\">";
    let at = r.body.find(marker).unwrap() + marker.len();
    let raw = &r.body[at..at + r.body[at..].find('<').unwrap()];
    assert!(raw.starts_with("mesa_agt_"), "{raw}");
    let keys = app.mesa.keys(Some("qa")).await.unwrap();
    let key = keys.iter().find(|k| k.name == "ci bot").unwrap();
    assert!(raw.starts_with(&key.prefix));
    let list = b.get("/agents/qa?tab=keys").await;
    assert!(list.body.contains(&key.prefix));
    assert!(!list.body.contains(raw), "the raw key is never shown again");

    let long = "x".repeat(300);
    let r = b.post("/agents/qa/keys", &[("name", &long)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.mesa.keys(Some("qa")).await.unwrap().len(), keys.len());

    let r = b
        .post(&format!("/agents/qa/keys/{}/revoke", key.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let keys = app.mesa.keys(Some("qa")).await.unwrap();
    assert!(
        keys.iter()
            .find(|k| k.id == key.id)
            .unwrap()
            .revoked_at
            .is_some()
    );
    let r = b
        .post(&format!("/agents/ceo/keys/{}/revoke", key.id), &[])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "another agent's key");
}

#[tokio::test]
async fn hiring_an_agent_creates_it_and_a_bad_form_is_422_and_writes_nothing() {
    let app = TestApp::new().await;
    let b = login(&app).await;
    let page = b.get("/agents/new").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let main = main_of(&page.body);
    insta::with_settings!({filters => filters()}, { insta::assert_snapshot!(main) });
    let before = app.mesa.agents().await.unwrap().len();
    let wd = app.mesa.config().workspace.as_str().to_owned();
    let r = b
        .post(
            "/agents",
            &[
                ("name", "Bea"),
                ("slug", "Not A Slug"),
                ("archetype", "backend"),
                ("runner", "noop"),
                ("working_dir", "relative/dir"),
                ("reports_to", "ceo"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("id=\"f-slug-err\""));
    assert!(r.body.contains("id=\"f-working_dir-err\""));
    assert_eq!(app.mesa.agents().await.unwrap().len(), before);
    let r = b
        .post(
            "/agents",
            &[
                ("name", "Bea"),
                ("slug", "bea"),
                ("archetype", "backend"),
                ("runner", "noop"),
                ("model", ""),
                ("working_dir", &wd),
                ("reports_to", "ceo"),
                ("reviewer", "qa"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/agents/bea");
    let bea = app.mesa.find_agent("bea").await.unwrap();
    let ceo = app.mesa.find_agent("ceo").await.unwrap();
    assert_eq!(bea.config.reports_to, Some(ceo.id));
    assert_eq!(bea.config.runner.as_str(), "noop");
    let again = b
        .post(
            "/agents",
            &[
                ("name", "Bea"),
                ("slug", "bea"),
                ("archetype", "backend"),
                ("runner", "noop"),
                ("working_dir", &wd),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already exists"));
}

/// Hires `n` workers reporting to the founding engineer (two levels under the CEO).
async fn hire_workers(app: &TestApp, n: usize) {
    use mesa_core::NewAgent;
    use mesa_core::domain::entity::AgentConfig;
    use mesa_core::domain::{Name, RunnerKind, Slug};

    let lead = app.mesa.find_agent("founding-engineer").await.unwrap();
    for i in 0..n {
        let mut config = AgentConfig::new(
            Name::parse(&format!("Worker {i:03}")).unwrap(),
            Slug::parse("fullstack").unwrap(),
            RunnerKind::Noop,
            app.mesa.config().workspace.clone(),
        );
        config.reports_to = Some(lead.id);
        let new = NewAgent {
            slug: Slug::parse(&format!("w-{i:03}")).unwrap(),
            config,
        };
        app.mesa.create_agent(&board(), new).await.unwrap();
    }
}

#[tokio::test]
async fn a_large_org_shows_its_top_levels_and_pages_its_roster() {
    let app = TestApp::new().await;
    hire_workers(&app, 120).await;
    let total = app.mesa.agents().await.unwrap().len();
    assert!(total > 120);
    let b = login(&app).await;
    let main = main_of(&b.get("/agents").await.body);

    // The org chart: the CEO and its reports; the founding engineer's 120 reports open on
    // demand (or, without JavaScript, in the roster).
    let chart =
        &main[main.find("<ul class=\"org\">").unwrap()..main.find("id=\"h-roster\"").unwrap()];
    assert!(chart.contains("href=\"/agents/founding-engineer\""));
    assert!(!chart.contains("href=\"/agents/w-000\""), "collapsed");
    assert!(chart.contains("hx-get=\"/agents/org/founding-engineer\""));
    assert!(chart.contains("<summary>120 reports</summary>"));
    assert!(
        chart.contains("href=\"/agents?reports_to=founding-engineer#h-roster\""),
        "{chart}"
    );

    // The roster, 50 at a time.
    assert!(main.contains(&format!("Agents 1–50 of {total}")), "{main}");
    assert!(main.contains("href=\"/agents?page=2#h-roster\""));
    assert_eq!(
        main.matches("<tr>").count(),
        50 + 1,
        "a page and the header"
    );
    let last = (total - 1) / 50 + 1;
    let page = main_of(&b.get(&format!("/agents?page={last}")).await.body);
    assert!(page.contains(&format!("of {total}")));
    assert!(!page.contains("rel=\"next\""), "the last page");
    assert!(page.contains(&format!("href=\"/agents?page={}#h-roster\"", last - 1)));

    // The reports of one manager, and the fragment that opens them in the chart.
    let theirs = main_of(&b.get("/agents?reports_to=founding-engineer").await.body);
    assert!(theirs.contains("Agents 1–50 of 120"));
    assert!(theirs.contains("href=\"/agents?page=2&amp;reports_to=founding-engineer#h-roster\""));
    let fragment = b.get_htmx("/agents/org/founding-engineer").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert_eq!(fragment.body.matches("class=\"org-node\"").count(), 120);
    assert!(fragment.body.contains("href=\"/agents/w-119\""));
    assert_eq!(
        b.get_htmx("/agents/org/nobody").await.status,
        StatusCode::NOT_FOUND
    );

    // The dashboard lists a few agents and links to the rest.
    let home = main_of(&b.get("/").await.body);
    let agents =
        &home[home.find("id=\"h-agents\"").unwrap()..home.find("id=\"h-budget\"").unwrap()];
    assert_eq!(agents.matches("<li class=\"row\">").count(), 10);
    assert!(agents.contains(&format!("All {total} agents")));
    assert!(
        agents.contains(&format!("0 running · {total} idle")),
        "{agents}"
    );
}
