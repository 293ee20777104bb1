use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"It's a Secret to Everybody";

#[test]
fn signs_like_github_documents() {
    // The example of GitHub's "Validating webhook deliveries" page.
    assert_eq!(
        sign(SECRET, b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[test]
fn verify_accepts_only_the_exact_signature() {
    let body = br#"{"title":"x"}"#;
    let good = sign(SECRET, body);
    assert!(verify(SECRET, body, &good));
    assert!(verify(SECRET, body, &format!(" {good} ")));
    assert!(!verify(b"another secret", body, &good));
    assert!(!verify(SECRET, br#"{"title":"y"}"#, &good));
    assert!(!verify(SECRET, body, good.trim_start_matches("sha256=")));
    assert!(!verify(SECRET, body, &good.replacen("sha256=", "sha1=", 1)));
    assert!(!verify(SECRET, body, "sha256=zz"));
    assert!(!verify(SECRET, body, "sha256="));
    assert!(!verify(SECRET, body, &good[..good.len() - 2]));
    assert!(!verify(SECRET, body, ""));
}

proptest! {
    #[test]
    fn verify_never_panics(secret in proptest::collection::vec(any::<u8>(), 0..80),
                           body in proptest::collection::vec(any::<u8>(), 0..300),
                           header in ".{0,90}") {
        let _ = verify(&secret, &body, &header);
    }

    #[test]
    fn a_one_byte_change_fails(secret in proptest::collection::vec(any::<u8>(), 1..64),
                               body in proptest::collection::vec(any::<u8>(), 1..300),
                               at in any::<prop::sample::Index>(),
                               flip in 1u8..=255) {
        let header = sign(&secret, &body);
        prop_assert!(verify(&secret, &body, &header));
        let mut changed = body.clone();
        let i = at.index(changed.len());
        changed[i] ^= flip;
        prop_assert!(!verify(&secret, &changed, &header));
        let mut key = secret.clone();
        let k = at.index(key.len());
        key[k] ^= flip;
        prop_assert!(!verify(&key, &body, &header));
    }

    #[test]
    fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200),
                           event in "[a-z_]{0,14}") {
        let _ = parse_generic_issue(&body);
        let _ = parse_generic_comment(&body);
        let _ = parse_github(&event, &body);
    }
}

#[test]
fn the_limiter_allows_a_burst_then_refills() {
    let mut l = SourceLimiter::default();
    let t0 = Instant::now();
    for _ in 0..3 {
        assert_eq!(l.take("ci", 3, t0), Ok(()));
    }
    assert_eq!(l.take("ci", 3, t0), Err(20), "one token per 20 s at 3/min");
    assert_eq!(l.take("other", 3, t0), Ok(()), "buckets are per source");
    assert_eq!(l.take("ci", 3, t0 + Duration::from_secs(20)), Ok(()));
    assert!(l.take("ci", 3, t0 + Duration::from_secs(20)).is_err());
    assert_eq!(l.take("ci", 0, t0), Ok(()), "0 = no limit");
}

fn bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn field_of(e: ShapeError) -> String {
    match e {
        ShapeError::Invalid { field, .. } => field,
        ShapeError::NotJson(m) => panic!("not JSON: {m}"),
    }
}

#[test]
fn generic_issue_shape() {
    let issue = parse_generic_issue(&bytes(&json!({
        "title": "Login fails", "description": "Steps...", "type": "bug", "priority": 3
    })))
    .unwrap();
    assert_eq!(issue.title.as_str(), "Login fails");
    assert_eq!(issue.description.as_str(), "Steps...");
    assert_eq!(issue.issue_type, IssueType::Bug);
    assert_eq!(issue.priority.get(), 3);
    assert_eq!(issue.assignee, None, "no assignee: the CEO gets it");

    let minimal = parse_generic_issue(br#"{"title":"Just a title"}"#).unwrap();
    assert_eq!(minimal.issue_type, IssueType::Task);

    assert!(matches!(
        parse_generic_issue(b"not json"),
        Err(ShapeError::NotJson(_))
    ));
    let cases = [
        (json!({"description": "no title"}), "title"),
        (json!({"title": 5}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"title": "t", "titel": "typo"}), "titel"),
        (json!({"title": "t", "type": "epic"}), "type"),
        (json!({"title": "t", "priority": 9}), "priority"),
        (json!({"title": "t", "priority": "high"}), "priority"),
        (json!(["title"]), "body"),
    ];
    for (v, field) in cases {
        assert_eq!(
            field_of(parse_generic_issue(&bytes(&v)).unwrap_err()),
            field,
            "{v}"
        );
    }
}

#[test]
fn generic_comment_shape() {
    let c = parse_generic_comment(&bytes(
        &json!({"issue_key": "MESA-4", "author": "Ann", "body": "Still broken"}),
    ))
    .unwrap();
    assert_eq!(c.issue_key.as_str(), "MESA-4");
    assert_eq!(c.body, "_Ann wrote:_\n\nStill broken");
    let bare = parse_generic_comment(br#"{"issue_key":"MESA-4","body":"Hi"}"#).unwrap();
    assert_eq!(bare.body, "Hi");
    let cases = [
        (json!({"body": "x"}), "issue_key"),
        (json!({"issue_key": "nope", "body": "x"}), "issue_key"),
        (json!({"issue_key": "MESA-4"}), "body"),
        (json!({"issue_key": "MESA-4", "body": "  "}), "body"),
        (
            json!({"issue_key": "MESA-4", "body": "x", "extra": 1}),
            "extra",
        ),
    ];
    for (v, field) in cases {
        assert_eq!(
            field_of(parse_generic_comment(&bytes(&v)).unwrap_err()),
            field,
            "{v}"
        );
    }
}

fn opened(title: &str) -> serde_json::Value {
    json!({
        "action": "opened",
        "issue": {
            "html_url": "https://github.com/acme/app/issues/7",
            "title": title,
            "body": "It crashes.",
            "user": {"login": "octocat"},
            "labels": [{"name": "bug"}]
        },
        "repository": {"full_name": "acme/app"}
    })
}

#[test]
fn github_issue_opened() {
    let GithubEvent::IssueOpened { url, issue } =
        parse_github("issues", &bytes(&opened("App crashes"))).unwrap()
    else {
        panic!("an issue");
    };
    assert_eq!(url, "https://github.com/acme/app/issues/7");
    assert_eq!(issue.title.as_str(), "App crashes");
    assert_eq!(issue.issue_type, IssueType::Bug);
    assert_eq!(
        issue.description.as_str(),
        "It crashes.\n\n---\nOpened on GitHub by @octocat: https://github.com/acme/app/issues/7"
    );
    // GitHub allows 256 characters; Mesa keeps 200.
    let long = "x".repeat(256);
    let GithubEvent::IssueOpened { issue, .. } =
        parse_github("issues", &bytes(&opened(&long))).unwrap()
    else {
        panic!("an issue");
    };
    assert_eq!(issue.title.as_str().chars().count(), 200);
}

#[test]
fn github_other_events() {
    assert_eq!(
        parse_github("ping", br#"{"zen":"Keep it simple."}"#),
        Ok(GithubEvent::Ping)
    );
    let closed = json!({"action": "closed", "issue": {}});
    assert_eq!(
        parse_github("issues", &bytes(&closed)),
        Ok(GithubEvent::Ignored("issues action \"closed\"".into()))
    );
    assert!(matches!(
        parse_github("push", br#"{"ref":"main"}"#),
        Ok(GithubEvent::Ignored(_))
    ));
    let comment = json!({
        "action": "created",
        "issue": {"html_url": "https://github.com/acme/app/issues/7"},
        "comment": {"body": "Me too", "user": {"login": "hubot"},
                    "html_url": "https://github.com/acme/app/issues/7#issuecomment-1"}
    });
    assert_eq!(
        parse_github("issue_comment", &bytes(&comment)),
        Ok(GithubEvent::Comment {
            issue_url: "https://github.com/acme/app/issues/7".into(),
            body: "_@hubot commented on GitHub (https://github.com/acme/app/issues/7#issuecomment-1):_\n\nMe too".into(),
        })
    );
    let no_title = json!({"action": "opened", "issue": {"html_url": "https://x.test/1"}});
    assert_eq!(
        field_of(parse_github("issues", &bytes(&no_title)).unwrap_err()),
        "issue.title"
    );
    let no_body =
        json!({"action": "created", "issue": {"html_url": "https://x.test/1"}, "comment": {}});
    assert_eq!(
        field_of(parse_github("issue_comment", &bytes(&no_body)).unwrap_err()),
        "comment.body"
    );
    assert!(matches!(
        parse_github("issues", b"<xml/>"),
        Err(ShapeError::NotJson(_))
    ));
}
