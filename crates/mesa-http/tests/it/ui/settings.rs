//! Settings and costs pages: instance, feature flags, write-only secrets, the org budget,
//! board tokens, runners on PATH, backup; spend per agent, day, work block and apex block.

use axum::http::StatusCode;
use mesa_core::FakeClock;
use mesa_core::domain::{Actor, Timestamp};

use super::login;
use super::main_of;
use crate::support::TestApp;

/// 2026-03-02T10:00:00Z.
const START_MS: i64 = 1_772_445_600_000;

macro_rules! snapshot {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![
            (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "[uuid]"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "[time]"),
            (r#"name="_csrf" value="[^"]*""#, r#"name="_csrf" value="[csrf]""#),
            (r"mesa_(brd|bt|board)_[A-Za-z0-9_]+", "[token]"),
            (r"/tmp/[^<\s]*", "[path]"),
        ]}, {
            insta::assert_snapshot!($name, main_of($html));
        });
    };
}

async fn app() -> TestApp {
    TestApp::with_clock(FakeClock::new(Timestamp::from_millis(START_MS))).await
}

#[tokio::test]
async fn the_settings_page_shows_every_section() {
    let app = app().await;
    let browser = login(&app).await;
    let page = browser.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    for section in [
        "Instance",
        "Feature flags",
        "Integrations",
        "Org daily budget",
        "Board tokens",
        "Agent CLIs on PATH",
        "Backup",
    ] {
        assert!(page.body.contains(section), "{section}");
    }
    for flag in mesa_core::FEATURE_FLAGS {
        assert!(page.body.contains(&format!("value=\"{flag}\"")), "{flag}");
    }
    for cli in ["claude", "codex", "gemini", "opencode", "copilot"] {
        assert!(page.body.contains(cli), "{cli}");
    }
    assert!(page.body.contains("value=\"MESA\""), "issue prefix");
    snapshot!("settings", &page.body);
}

#[tokio::test]
async fn instance_settings_save_and_bad_ones_are_refused() {
    let app = app().await;
    let browser = login(&app).await;
    let saved = browser
        .post(
            "/settings/instance",
            &[
                ("instance_name", "Acme HQ"),
                ("issue_prefix", "ACME"),
                ("budget_timezone", "+02:00"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), "/settings");
    let s = app.mesa.settings().await;
    assert_eq!(s.instance_name(), "Acme HQ");
    assert_eq!(s.issue_prefix().to_string(), "ACME");
    assert_eq!(s.budget_offset_minutes(), 120);

    let bad = browser
        .post(
            "/settings/instance",
            &[
                ("instance_name", "Other"),
                ("issue_prefix", "not a prefix!"),
                ("budget_timezone", "UTC"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"err-issue_prefix\""), "{}", bad.body);
    assert!(bad.body.contains("value=\"not a prefix!\""), "input kept");
    let s = app.mesa.settings().await;
    assert_eq!(s.instance_name(), "Acme HQ", "nothing written");
    assert_eq!(s.issue_prefix().to_string(), "ACME");
}

#[tokio::test]
async fn toggling_a_feature_flag_applies_at_once() {
    let app = app().await;
    let browser = login(&app).await;
    assert!(!app.mesa.settings().await.feature("telegram"));
    let on = browser
        .post("/settings/flags", &[("flag", "telegram"), ("on", "true")])
        .await;
    assert_eq!(on.status, StatusCode::SEE_OTHER);
    assert!(app.mesa.settings().await.feature("telegram"));
    let page = browser.get("/settings").await;
    assert!(page.body.contains("Turn off telegram"), "{}", page.body);
    let off = browser
        .post("/settings/flags", &[("flag", "telegram"), ("on", "false")])
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert!(!app.mesa.settings().await.feature("telegram"));

    let bad = browser
        .post("/settings/flags", &[("flag", "teleport"), ("on", "true")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"err-flag\""), "{}", bad.body);
    assert!(app.mesa.settings().await.get("feature_teleport").is_none());
}

#[tokio::test]
async fn secrets_are_write_only_on_every_page() {
    let app = app().await;
    let browser = login(&app).await;
    let secret = "123456:SECRET-bot-token-value";
    let saved = browser
        .post(
            "/settings/integrations",
            &[
                ("telegram_bot_token", secret),
                ("telegram_chat_ids", "-1001"),
                ("discord_webhook_url", ""),
                ("github_token", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let s = app.mesa.settings().await;
    assert_eq!(s.get("telegram_bot_token"), Some(secret));
    assert_eq!(s.get("telegram_chat_ids"), Some("-1001"));
    assert!(s.get("github_token").is_none(), "empty secret left alone");

    for path in ["/settings", "/activity", "/", "/costs"] {
        let page = browser.get(path).await;
        assert!(
            !page.body.contains("SECRET-bot-token"),
            "{path} leaks the secret"
        );
    }
    let page = browser.get("/settings").await;
    assert!(page.body.contains("Telegram bot token (set)"));
    assert!(page.body.contains("GitHub token (not set)"));
    assert!(page.body.contains("value=\"-1001\""));

    // Saving again without the secret keeps it; the clear box removes it.
    browser
        .post(
            "/settings/integrations",
            &[("telegram_bot_token", ""), ("telegram_chat_ids", "-1002")],
        )
        .await;
    assert_eq!(
        app.mesa.settings().await.get("telegram_bot_token"),
        Some(secret)
    );
    browser
        .post(
            "/settings/integrations",
            &[
                ("telegram_bot_token", ""),
                ("clear_telegram_bot_token", "1"),
            ],
        )
        .await;
    assert_eq!(
        app.mesa.settings().await.get("telegram_bot_token"),
        Some("")
    );
}

#[tokio::test]
async fn the_org_budget_form_sets_limits_and_refuses_bad_amounts() {
    let app = app().await;
    let browser = login(&app).await;
    let saved = browser
        .post(
            "/settings/budget",
            &[
                ("daily_cost_limit_usd", "25.5"),
                ("daily_token_limit", "1000000"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let limits = app.mesa.org_budget(&Actor::board("t")).await.unwrap();
    assert_eq!(limits.daily_cost_limit_usd.0, 25_500_000);
    assert_eq!(limits.daily_token_limit, 1_000_000);
    let page = browser.get("/settings").await;
    assert!(page.body.contains("value=\"25.5\""), "{}", page.body);

    let bad = browser
        .post(
            "/settings/budget",
            &[("daily_cost_limit_usd", "lots"), ("daily_token_limit", "5")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"err-daily_cost_limit_usd\""));
    let negative = browser
        .post(
            "/settings/budget",
            &[("daily_cost_limit_usd", "1"), ("daily_token_limit", "-5")],
        )
        .await;
    assert_eq!(negative.status, StatusCode::UNPROCESSABLE_ENTITY);
    let limits = app.mesa.org_budget(&Actor::board("t")).await.unwrap();
    assert_eq!(limits.daily_token_limit, 1_000_000, "nothing written");
}

#[tokio::test]
async fn a_new_board_token_is_shown_once_and_can_be_revoked() {
    let app = app().await;
    let browser = login(&app).await;
    let made = browser
        .post(
            "/settings/tokens",
            &[("name", "laptop"), ("expires_days", "30")],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK);
    let keys = app.mesa.keys(None).await.unwrap();
    let key = keys.iter().find(|k| k.name == "laptop").expect("created");
    assert!(key.expires_at.is_some());
    let start = made.body.find("class=\"mono new-token\">").expect("shown") + 23;
    let raw = &made.body[start..start + made.body[start..].find('<').unwrap()];
    assert!(raw.starts_with(&key.prefix), "{raw}");
    assert!(made.body.contains("not shown again"));

    let later = browser.get("/settings").await;
    assert!(!later.body.contains(raw), "shown once only");
    assert!(later.body.contains(&key.prefix));

    let bad = browser
        .post("/settings/tokens", &[("name", ""), ("expires_days", "x")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.mesa.keys(None).await.unwrap().len(),
        keys.len(),
        "nothing written"
    );

    let revoked = browser
        .post(&format!("/settings/tokens/{}/revoke", key.id), &[])
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let now = app.mesa.now();
    let key = app
        .mesa
        .keys(None)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "laptop")
        .unwrap();
    assert!(!key.is_live(now));
    let missing = browser.post("/settings/tokens/not-an-id/revoke", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn backup_writes_a_file_in_the_data_directory_and_checks_integrity() {
    let app = app().await;
    let browser = login(&app).await;
    let done = browser.post("/settings/backup", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let to = done.location().to_owned();
    assert!(to.starts_with("/settings?backup=mesa-backup-"), "{to}");
    assert!(to.ends_with("&integrity=ok"), "{to}");
    let name = to
        .trim_start_matches("/settings?backup=")
        .trim_end_matches("&integrity=ok");
    let file = app.mesa.config().data_dir.join("backups").join(name);
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
    let page = browser.get(&to).await;
    assert!(page.body.contains(name), "{}", page.body);
    assert!(page.body.contains("Database integrity check: ok"));
    let forged = browser.get("/settings?backup=..%2F..%2Fetc%2Fpasswd").await;
    assert!(!forged.body.contains("passwd"));
}

#[tokio::test]
async fn the_costs_page_shows_spend_per_agent_day_and_block() {
    use mesa_core::domain::{Markdown, MicroUsd, Title};
    use mesa_core::{NewWorkBlock, ReportedUsage};

    let app = app().await;
    let ceo = app
        .mesa
        .agents()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.slug.as_str() == "ceo")
        .unwrap();
    let agent = Actor::Agent {
        id: ceo.id,
        slug: ceo.slug.clone(),
    };
    app.mesa
        .report_usage(
            &agent,
            None,
            ReportedUsage {
                input_tokens: 1200,
                output_tokens: 300,
                cost_usd: MicroUsd(2_500_000),
            },
            None,
        )
        .await
        .unwrap();
    app.mesa
        .put_budget(
            &Actor::board("t"),
            None,
            mesa_core::BudgetLimits {
                daily_token_limit: 0,
                daily_cost_limit_usd: MicroUsd(10_000_000),
                per_run_reserve_usd: None,
            },
        )
        .await
        .unwrap();
    app.mesa
        .create_work_block(
            &Actor::board("t"),
            NewWorkBlock {
                title: Title::parse("Payments").unwrap(),
                goal: Markdown::parse("Card payments.").unwrap(),
                acceptance_criteria: Markdown::parse("- works").unwrap(),
                north_star_metric: None,
                north_star_target: None,
                apex_block_id: None,
            },
        )
        .await
        .unwrap();
    let browser = login(&app).await;
    let page = browser.get("/costs").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("$2.50"), "spend today: {}", page.body);
    assert!(page.body.contains("of $10.00"), "org limit");
    assert!(page.body.contains("href=\"/agents/ceo\""), "agent row");
    assert!(page.body.contains("<svg"), "chart");
    assert!(page.body.contains("Payments"), "work block row");
    snapshot!("costs", &page.body);
    let fragment = browser.get_htmx("/costs").await;
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(fragment.body.contains("id=\"costs\""));
}
