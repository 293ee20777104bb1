//! GitHub pull requests (SPEC §11.4): the pull request of an issue's branch, with its reviews
//! and checks, for the issue page's panel.
//!
//! It uses the REST API (not the `gh` CLI: no subprocess, and tests point it at a local fake)
//! with the settings `github_repo` (`owner/name`; the panel is shown only when set),
//! `github_api_url` (default [`DEFAULT_API_URL`]) and the secret `github_token` (sent as
//! `Authorization: Bearer`; public repositories work without one). Three calls per lookup:
//! the pulls of the branch (`GET /repos/{repo}/pulls?head={owner}:{branch}&state=all`, the
//! newest wins), its reviews, and the check runs of its head commit. Answers are cached for
//! [`CACHE_TTL`] per (API URL, repository, branch), failures included, so the issue page never
//! waits on GitHub twice a minute; every call has a [`TIMEOUT`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mesa_core::Mesa;
use serde::{Deserialize, Serialize};

/// The GitHub API when `github_api_url` is not set.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// How long an answer (or a failure) is reused.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// The longest one call to GitHub may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The API version asked for (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// Cached lookups kept before the expired ones are dropped.
const MAX_CACHED: usize = 500;

/// Where to look: read from the settings. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct GithubConfig {
    /// Base URL of the REST API, without a trailing slash.
    pub api_url: String,
    /// `owner/name`.
    pub repo: String,
    /// The token, if any.
    pub token: Option<String>,
}

impl GithubConfig {
    /// The configuration, or `None` when `github_repo` is not set (no panel).
    pub async fn from_settings(mesa: &Mesa) -> Option<Self> {
        let repo = mesa
            .setting_value("github_repo")
            .await
            .filter(|r| r.contains('/'))?;
        let api_url = mesa
            .setting_value("github_api_url")
            .await
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let token = mesa
            .setting_value("github_token")
            .await
            .filter(|t| !t.is_empty());
        Some(GithubConfig {
            api_url: api_url.trim_end_matches('/').to_owned(),
            repo,
            token,
        })
    }

    fn owner(&self) -> &str {
        self.repo.split('/').next().unwrap_or_default()
    }
}

impl std::fmt::Debug for GithubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubConfig")
            .field("api_url", &self.api_url)
            .field("repo", &self.repo)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A pull request as the panel shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its page on GitHub.
    pub url: String,
    /// `open`, `draft`, `merged` or `closed`.
    pub state: String,
    /// Each reviewer's latest decision, by reviewer.
    pub reviews: Vec<Review>,
    /// The head commit's check runs, by name.
    pub checks: Vec<Check>,
}

/// A reviewer's latest decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// GitHub login.
    pub reviewer: String,
    /// `approved`, `changes_requested`, `commented` or `dismissed`.
    pub state: String,
}

/// One check run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Its name.
    pub name: String,
    /// The conclusion (`success`, `failure`, `neutral`, `cancelled`, `skipped`, `timed_out`,
    /// `action_required`, `stale`) or, while it runs, its status (`queued`, `in_progress`).
    pub conclusion: String,
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Lookup {
    /// The branch's pull request.
    Found(PullRequest),
    /// The branch has no pull request.
    None,
    /// GitHub failed or could not be reached: a quiet note.
    Failed {
        /// What went wrong, for the note.
        note: String,
    },
}

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// GitHub answered with an error status.
    #[error("GitHub answered {status} to {what}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Which call.
        what: &'static str,
    },
    /// No answer (network, timeout).
    #[error("GitHub could not be reached: {0}")]
    Network(String),
    /// An answer that is not what the API documents.
    #[error("GitHub's answer to {what} was not understood: {message}")]
    Decode {
        /// Which call.
        what: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// reqwest needs a TLS provider installed by the program; none was.
    #[error("no TLS provider is installed, so GitHub cannot be called")]
    NoTls,
}

type CacheKey = (GithubConfig, String);

/// The client with its short cache; one per router.
#[derive(Debug, Default)]
pub struct GithubClient {
    http: OnceLock<reqwest::Client>,
    cache: Mutex<HashMap<CacheKey, (Instant, Lookup)>>,
}

impl GithubClient {
    /// The pull request of `branch`, from the cache when it is younger than [`CACHE_TTL`].
    pub async fn pull_request(&self, cfg: &GithubConfig, branch: &str) -> Lookup {
        let key = (cfg.clone(), branch.to_owned());
        let now = Instant::now();
        if let Some((at, hit)) = self.cached(&key)
            && now.duration_since(at) < CACHE_TTL
        {
            return hit;
        }
        let found = match self.fetch(cfg, branch).await {
            Ok(Some(pr)) => Lookup::Found(pr),
            Ok(None) => Lookup::None,
            Err(e) => {
                tracing::warn!(repo = %cfg.repo, branch, error = %e, "GitHub lookup failed");
                Lookup::Failed {
                    note: e.to_string(),
                }
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| now.duration_since(*at) < CACHE_TTL);
        }
        cache.insert(key, (now, found.clone()));
        found
    }

    fn cached(&self, key: &CacheKey) -> Option<(Instant, Lookup)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).cloned()
    }

    fn http(&self) -> Result<&reqwest::Client, GithubError> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        // Building without a provider would panic inside reqwest.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            return Err(GithubError::NoTls);
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("mesa/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GithubError::Network(e.to_string()))?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        cfg: &GithubConfig,
        path: &str,
        query: &[(&str, &str)],
        what: &'static str,
    ) -> Result<T, GithubError> {
        let mut req = self
            .http()?
            .get(format!("{}{path}", cfg.api_url))
            .query(query)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION);
        if let Some(token) = &cfg.token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GithubError::Network(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(GithubError::Status {
                status: status.as_u16(),
                what,
            });
        }
        resp.json().await.map_err(|e| GithubError::Decode {
            what,
            message: e.without_url().to_string(),
        })
    }

    async fn fetch(
        &self,
        cfg: &GithubConfig,
        branch: &str,
    ) -> Result<Option<PullRequest>, GithubError> {
        let repo = format!("/repos/{}", cfg.repo);
        let head = format!("{}:{branch}", cfg.owner());
        let pulls: Vec<RawPull> = self
            .get(
                cfg,
                &format!("{repo}/pulls"),
                &[("head", &head), ("state", "all"), ("per_page", "10")],
                "the pull request search",
            )
            .await?;
        let Some(pull) = pulls.into_iter().max_by_key(|p| p.number) else {
            return Ok(None);
        };
        let reviews: Vec<RawReview> = self
            .get(
                cfg,
                &format!("{repo}/pulls/{}/reviews", pull.number),
                &[("per_page", "100")],
                "the reviews",
            )
            .await?;
        let checks: RawChecks = self
            .get(
                cfg,
                &format!("{repo}/commits/{}/check-runs", pull.head.sha),
                &[("per_page", "100")],
                "the checks",
            )
            .await?;
        Ok(Some(PullRequest {
            number: pull.number,
            state: pull_state(&pull).to_owned(),
            title: pull.title,
            url: pull.html_url,
            reviews: latest_reviews(reviews),
            checks: summarize_checks(checks.check_runs),
        }))
    }
}

/// A pull request as the API returns it (the fields used).
#[derive(Debug, Deserialize)]
pub struct RawPull {
    /// Number.
    pub number: u64,
    /// Title.
    pub title: String,
    /// Page.
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// Draft?
    #[serde(default)]
    pub draft: bool,
    /// When merged, if it was.
    #[serde(default)]
    pub merged_at: Option<String>,
    /// The head commit.
    pub head: RawHead,
}

/// A pull request's head.
#[derive(Debug, Deserialize)]
pub struct RawHead {
    /// Commit SHA.
    pub sha: String,
}

/// A review as the API returns it (the fields used).
#[derive(Debug, Deserialize)]
pub struct RawReview {
    /// The reviewer (absent for deleted accounts).
    #[serde(default)]
    pub user: Option<RawUser>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED`, `PENDING`.
    pub state: String,
}

/// A GitHub account.
#[derive(Debug, Deserialize)]
pub struct RawUser {
    /// Login.
    pub login: String,
}

#[derive(Debug, Deserialize)]
struct RawChecks {
    #[serde(default)]
    check_runs: Vec<RawCheck>,
}

/// A check run as the API returns it (the fields used).
#[derive(Debug, Deserialize)]
pub struct RawCheck {
    /// Name.
    pub name: String,
    /// `queued`, `in_progress`, `completed`...
    pub status: String,
    /// Set once completed.
    #[serde(default)]
    pub conclusion: Option<String>,
}

/// `merged` (closed with a merge), `closed`, `draft` (open as a draft) or `open`.
pub fn pull_state(p: &RawPull) -> &'static str {
    match (p.state.as_str(), p.merged_at.is_some(), p.draft) {
        (_, true, _) => "merged",
        ("closed", false, _) => "closed",
        (_, false, true) => "draft",
        _ => "open",
    }
}

/// Each reviewer's latest decision, in review order (oldest first) and sorted by reviewer. A
/// comment does not replace an earlier approval or change request (as on GitHub's page);
/// pending reviews are not decisions.
pub fn latest_reviews(reviews: Vec<RawReview>) -> Vec<Review> {
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for r in reviews {
        let state = r.state.to_ascii_lowercase();
        if state == "pending" {
            continue;
        }
        let reviewer = r.user.map_or_else(|| "ghost".to_owned(), |u| u.login);
        match latest.get(&reviewer) {
            Some(prev) if state == "commented" && prev != "commented" => {}
            _ => {
                latest.insert(reviewer, state);
            }
        }
    }
    latest
        .into_iter()
        .map(|(reviewer, state)| Review { reviewer, state })
        .collect()
}

/// Each check's conclusion (or its status while it runs), sorted by name.
pub fn summarize_checks(runs: Vec<RawCheck>) -> Vec<Check> {
    let mut checks: Vec<Check> = runs
        .into_iter()
        .map(|c| Check {
            conclusion: c.conclusion.unwrap_or(c.status).to_ascii_lowercase(),
            name: c.name,
        })
        .collect();
    checks.sort_by(|a, b| a.name.cmp(&b.name));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(login: &str, state: &str) -> RawReview {
        RawReview {
            user: Some(RawUser {
                login: login.to_owned(),
            }),
            state: state.to_owned(),
        }
    }

    #[test]
    fn the_latest_decision_per_reviewer() {
        let got = latest_reviews(vec![
            review("bob", "CHANGES_REQUESTED"),
            review("ann", "COMMENTED"),
            review("bob", "APPROVED"),
            review("bob", "COMMENTED"),
            review("cy", "PENDING"),
        ]);
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.reviewer.as_str(), r.state.as_str()))
            .collect();
        assert_eq!(pairs, [("ann", "commented"), ("bob", "approved")]);
    }

    #[test]
    fn pull_states() {
        let pull = |state: &str, draft: bool, merged: bool| RawPull {
            number: 1,
            title: "t".into(),
            html_url: "u".into(),
            state: state.into(),
            draft,
            merged_at: merged.then(|| "2026-01-01T00:00:00Z".into()),
            head: RawHead { sha: "s".into() },
        };
        assert_eq!(pull_state(&pull("open", false, false)), "open");
        assert_eq!(pull_state(&pull("open", true, false)), "draft");
        assert_eq!(pull_state(&pull("closed", false, true)), "merged");
        assert_eq!(pull_state(&pull("closed", false, false)), "closed");
    }

    #[test]
    fn checks_show_their_conclusion_or_status() {
        let got = summarize_checks(vec![
            RawCheck {
                name: "test".into(),
                status: "completed".into(),
                conclusion: Some("failure".into()),
            },
            RawCheck {
                name: "lint".into(),
                status: "in_progress".into(),
                conclusion: None,
            },
        ]);
        assert_eq!(
            got,
            [
                Check {
                    name: "lint".into(),
                    conclusion: "in_progress".into()
                },
                Check {
                    name: "test".into(),
                    conclusion: "failure".into()
                },
            ]
        );
    }
}
