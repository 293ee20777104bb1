//! Bootstrap, agents and their revisions, archetypes, settings, wiki.

use mesa_core::domain::{Actor, Markdown, Slug, Title, WikiSlug};
use mesa_core::{ErrorKind, NewAgent};

use crate::support::TestMesa;

#[tokio::test]
async fn startup_org_is_bootstrapped_once() {
    let t = TestMesa::new().await;
    let views = t.mesa.agent_views().await.unwrap();
    assert_eq!(views.len(), 6);
    let engineer = views
        .iter()
        .find(|v| v.agent.slug.as_str() == "founding-engineer")
        .unwrap();
    assert_eq!(engineer.reviewer.as_ref().map(Slug::as_str), Some("qa"));
    assert_eq!(engineer.reports_to.as_ref().map(Slug::as_str), Some("ceo"));
    assert_eq!(
        engineer.agent.config.runner.as_str(),
        "dry_run",
        "no CLI on PATH in tests"
    );
    assert!(t.mesa.bootstrap_if_empty().await.unwrap().is_none());
    assert_eq!(
        t.mesa.bootstrap("blank").await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        t.mesa
            .archetype(&Slug::parse("qa").unwrap())
            .await
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn agent_rollback_restores_the_exact_configuration() {
    let t = TestMesa::new().await;
    let before = t.agent("designer").await;
    let mut changed = before.config.clone();
    changed.model = "big-model".into();
    changed.max_turns = 7;
    changed.runner_args = vec!["--fast".into()];
    t.mesa
        .update_agent_config(
            &t.board,
            "designer",
            changed,
            Some(before.version),
            "try a bigger model",
        )
        .await
        .unwrap();
    let revisions = t.mesa.agent_revisions("designer").await.unwrap();
    assert_eq!(revisions.len(), 2);
    let restored = t
        .mesa
        .rollback_agent(&t.board, "designer", 1)
        .await
        .unwrap();
    assert_eq!(restored.config, before.config, "the revision diff is empty");
    let revisions = t.mesa.agent_revisions("designer").await.unwrap();
    assert_eq!(revisions.len(), 3);
    assert_eq!(revisions[0].reason, "rollback to revision 1");
    assert_eq!(revisions[0].config, revisions[2].config);
}

#[tokio::test]
async fn agent_changes_are_board_only_and_checked() {
    let t = TestMesa::new().await;
    let ceo = t.actor("ceo").await;
    let qa = t.agent("qa").await;
    let err = t
        .mesa
        .update_agent_config(&ceo, "qa", qa.config.clone(), None, "x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    // The CEO reporting to QA would make a cycle (QA reports to the CEO).
    let ceo_agent = t.agent("ceo").await;
    let mut cycle = ceo_agent.config.clone();
    cycle.reports_to = Some(qa.id);
    let err = t
        .mesa
        .update_agent_config(&t.board, "ceo", cycle, None, "x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");

    let mut bad_dir = qa.config.clone();
    bad_dir.working_dir = mesa_core::domain::WorkingDir::parse("/no/such/dir").unwrap();
    let err = t
        .mesa
        .update_agent_config(&t.board, "qa", bad_dir, None, "x")
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("working_dir"));

    let dup = NewAgent {
        slug: Slug::parse("qa").unwrap(),
        config: qa.config.clone(),
    };
    assert_eq!(
        t.mesa.create_agent(&t.board, dup).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let stale = t
        .mesa
        .update_agent_config(
            &t.board,
            "qa",
            qa.config.clone(),
            Some(mesa_core::domain::Version(99)),
            "x",
        )
        .await;
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::StaleVersion);
}

#[tokio::test]
async fn archetype_edit_and_rollback_make_versions() {
    let t = TestMesa::new().await;
    let slug = Slug::parse("backend").unwrap();
    let v1 = t.mesa.archetype(&slug).await.unwrap();
    let edited = t
        .mesa
        .edit_archetype(
            &t.board,
            &slug,
            None,
            Markdown::parse("New body").unwrap(),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(edited.version, 2);
    let stale = t
        .mesa
        .edit_archetype(
            &t.board,
            &slug,
            None,
            Markdown::parse("Other").unwrap(),
            Some(1),
        )
        .await;
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::StaleVersion);
    let back = t.mesa.rollback_archetype(&t.board, &slug, 1).await.unwrap();
    assert_eq!((back.version, back.body.clone()), (3, v1.body));
    assert_eq!(t.mesa.archetype_versions(&slug).await.unwrap().len(), 3);
}

#[tokio::test]
async fn settings_are_validated_and_board_only() {
    let t = TestMesa::new().await;
    let set = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    let s = t
        .mesa
        .put_settings(&t.board, &set("issue_prefix", "OPS"))
        .await
        .unwrap();
    assert_eq!(s.issue_prefix().as_str(), "OPS");
    let err = t
        .mesa
        .put_settings(&t.board, &set("issue_prefix", "ops-1"))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("issue_prefix"));
    let err = t
        .mesa
        .put_settings(&t.board, &set("feature_telegram", "maybe"))
        .await
        .unwrap_err();
    assert_eq!(err.field(), Some("feature_telegram"));
    let ceo = t.actor("ceo").await;
    assert_eq!(
        t.mesa
            .put_settings(&ceo, &set("instance_name", "x"))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    let issue = t
        .mesa
        .create_issue(&t.board, mesa_core::NewIssue::titled("Prefixed").unwrap())
        .await
        .unwrap();
    assert_eq!(issue.issue.key.as_str(), "OPS-1");
}

#[tokio::test]
async fn wiki_slugs_revisions_and_ownership() {
    let t = TestMesa::new().await;
    let title = Title::parse("Release Process").unwrap();
    let body = Markdown::parse("Ship on Fridays").unwrap();
    let a = t
        .mesa
        .create_wiki_page(&t.board, None, title.clone(), body.clone())
        .await
        .unwrap();
    let b = t
        .mesa
        .create_wiki_page(&t.board, None, title.clone(), body.clone())
        .await
        .unwrap();
    assert_eq!(
        (a.slug.as_str(), b.slug.as_str()),
        ("release-process", "release-process-2")
    );
    let explicit = t
        .mesa
        .create_wiki_page(
            &t.board,
            Some(WikiSlug::parse("release-process").unwrap()),
            title,
            body,
        )
        .await;
    assert_eq!(explicit.unwrap_err().kind(), ErrorKind::Conflict);
    let edited = t
        .mesa
        .update_wiki_page(
            &t.board,
            &a.slug,
            None,
            Some(Markdown::parse("Ship on Tuesdays").unwrap()),
            Some(a.version),
        )
        .await
        .unwrap();
    assert_eq!(edited.version.0, 2);
    assert_eq!(t.mesa.wiki_revisions(&a.slug).await.unwrap().len(), 2);
    let ceo = t.actor("ceo").await;
    assert_eq!(
        t.mesa
            .delete_wiki_page(&ceo, &a.slug)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Forbidden
    );
    let own = t
        .mesa
        .create_wiki_page(
            &ceo,
            None,
            Title::parse("CEO notes").unwrap(),
            Markdown::parse("x").unwrap(),
        )
        .await
        .unwrap();
    t.mesa.delete_wiki_page(&ceo, &own.slug).await.unwrap();
    let hits = t.mesa.search_wiki("tues", 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    let _ = Actor::System;
}
