//! Near-duplicate search (`POST /issues/similar`, SPEC §2) and deleting issues (soft delete and
//! purge, `DELETE /issues/{key}`).

use std::collections::HashMap;

use mesa_domain::entity::Issue;
use mesa_domain::{Actor, DomainEvent, IssueKey, IssueStatus, Title};
use mesa_store::{IssueTitle, StoreError};
use mesa_workflow::issue::{self as flow, IssueCommand};

use crate::error::Result;
use crate::mesa::Mesa;

/// Titles at least this similar (normalized Levenshtein) are near-duplicates.
pub const SIMILARITY_THRESHOLD: f64 = 0.7;

/// At most this many near-duplicates are returned.
pub const MAX_SIMILAR: usize = 20;

/// The reason recorded on an issue the board deletes.
pub const DELETED_REASON: &str = "deleted by the board";

/// How many full-text candidates are considered.
pub(crate) const FTS_CANDIDATES: u32 = 100;

/// How many open issues, at most, have their titles scored against the wanted title (the
/// store's trigram candidates, best first). Bounds the work of one search at any scale.
pub(crate) const TITLE_CANDIDATES: u32 = 500;

/// Words too common to say two issues are about the same thing.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "of",
    "on", "or", "the", "to", "with",
];

/// A near-duplicate of a title.
#[derive(Debug, Clone, PartialEq)]
pub struct SimilarIssue {
    /// Its key.
    pub key: IssueKey,
    /// Its title.
    pub title: Title,
    /// Its status.
    pub status: IssueStatus,
    /// Normalized Levenshtein similarity of the normalized titles, 0..1.
    pub score: f64,
    /// Whether the full-text search found it.
    pub text_match: bool,
}

impl Mesa {
    /// Issues whose title is close to `title` (normalized Levenshtein ≥ 0.7 among open issues)
    /// or that the full-text index matches on most of the title's words (any status), best
    /// score first, at most [`MAX_SIMILAR`]. Soft-deleted issues are never returned.
    /// Matching uses the title; `description` is accepted for callers that have one and is not
    /// used to rank.
    ///
    /// The work is bounded whatever the number of issues: titles are scored among at most
    /// `TITLE_CANDIDATES` (500) open issues the store finds through shared character
    /// trigrams (its distinctive ones in full, common ones only in recent titles, the equal
    /// title always), and full-text matches among `FTS_CANDIDATES` (100); see `docs/api.md`.
    pub async fn similar_issues(
        &self,
        title: &Title,
        _description: Option<&str>,
    ) -> Result<Vec<SimilarIssue>> {
        let store = &self.inner.store;
        let wanted = normalize(title.as_str());
        let terms = significant_terms(&wanted);
        // key -> (near-duplicate, full-text rank)
        let mut found: HashMap<IssueKey, (SimilarIssue, usize)> = HashMap::new();
        if !terms.is_empty() {
            let hits = store
                .search_issues(&terms.join(" "), FTS_CANDIDATES)
                .await?;
            for (rank, issue) in hits.into_iter().enumerate() {
                if issue.deleted {
                    continue;
                }
                let words = words_of(&issue);
                let matched = terms
                    .iter()
                    .filter(|t| words.iter().any(|w| w.starts_with(t.as_str())))
                    .count();
                // A hit on one common word of five is not a near-duplicate.
                if matched * 2 >= terms.len() {
                    let score = similarity(&wanted, &normalize(issue.title.as_str()));
                    let near = SimilarIssue {
                        key: issue.key.clone(),
                        title: issue.title,
                        status: issue.status,
                        score,
                        text_match: true,
                    };
                    found.insert(issue.key, (near, rank));
                }
            }
        }
        let mut candidates = store
            .similar_title_candidates(&wanted, TITLE_CANDIDATES)
            .await?;
        // The open issue holding this exact title (the one a create would be refused for),
        // whatever punctuation it has and however common its words.
        if let Some(key) = store.open_issue_with_title(&title.normalized()).await? {
            match store.issue(&key).await {
                Ok(issue) if !issue.deleted => candidates.push(IssueTitle {
                    key: issue.key,
                    title: issue.title,
                    status: issue.status,
                }),
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for candidate in candidates {
            if found.contains_key(&candidate.key) {
                continue;
            }
            let theirs = normalize(candidate.title.as_str());
            if !may_reach_threshold(&wanted, &theirs) {
                continue;
            }
            let score = similarity(&wanted, &theirs);
            if score >= SIMILARITY_THRESHOLD {
                let near = SimilarIssue {
                    key: candidate.key.clone(),
                    title: candidate.title,
                    status: candidate.status,
                    score,
                    text_match: false,
                };
                found.insert(candidate.key, (near, usize::MAX));
            }
        }
        let mut found: Vec<(SimilarIssue, usize)> = found.into_values().collect();
        found.sort_by(|(a, ra), (b, rb)| {
            b.score
                .total_cmp(&a.score)
                .then(ra.cmp(rb))
                .then_with(|| a.key.as_str().cmp(b.key.as_str()))
        });
        Ok(found
            .into_iter()
            .take(MAX_SIMILAR)
            .map(|(s, _)| s)
            .collect())
    }

    /// Deletes an issue (board only). Soft delete: a non-terminal issue is cancelled through
    /// the §2 table with the reason [`DELETED_REASON`] (forced: the board means it), and the
    /// issue is marked deleted, which hides it from lists and frees its title; a terminal
    /// issue keeps its status and is hidden. Deleting a deleted issue again changes nothing.
    /// `purge` removes the issue, its comments and queued runs for good (sub-issues lose
    /// their parent; runs that ran keep their record without the issue).
    pub async fn delete_issue(&self, actor: &Actor, key: &IssueKey, purge: bool) -> Result<()> {
        Self::require_board(actor, "delete issues")?;
        let store = &self.inner.store;
        let issue = store.issue(key).await?;
        if purge {
            let activity = self.activity(
                actor,
                "issue.purged",
                "issue",
                key.as_str(),
                format!("purged issue {key} \"{}\"", issue.title),
                serde_json::json!({ "status": issue.status }),
            );
            store.purge_issue(key, vec![activity]).await?;
            self.publish([DomainEvent::IssueDeleted { key: key.clone() }]);
            return Ok(());
        }
        if issue.deleted {
            return Ok(());
        }
        let now = self.now();
        let mut next = issue.clone();
        let mut comments = Vec::new();
        let mut activity = Vec::new();
        let mut effects = Vec::new();
        if !issue.status.is_terminal() {
            let (snapshot, ctx) = self.context(actor, &issue).await?;
            let transition = flow::decide(
                &snapshot,
                IssueCommand::Cancel {
                    reason: Some(DELETED_REASON.to_owned()),
                    force: true,
                },
                &ctx,
                now,
            )?;
            self.apply_effects(actor, &mut next, &transition.effects, &mut comments);
            effects = transition.effects.clone();
            if transition.changes_status() {
                next.status = transition.to;
                next.status_changed_at = now;
            }
            activity.push(self.activity(
                actor,
                transition.activity.action,
                "issue",
                key.as_str(),
                transition.activity.summary.clone(),
                serde_json::json!({ "from": issue.status, "to": transition.to }),
            ));
        }
        next.deleted = true;
        next.updated_at = now;
        activity.push(self.activity(
            actor,
            "issue.deleted",
            "issue",
            key.as_str(),
            format!("deleted issue {key} \"{}\"", issue.title),
            serde_json::json!({ "status": next.status }),
        ));
        let view = self.write_issue(issue, next, comments, activity).await?;
        self.publish([DomainEvent::IssueDeleted { key: key.clone() }]);
        self.carry_out_issue_effects(actor, &view.issue, &effects)
            .await;
        Ok(())
    }
}

/// Lowercase, punctuation as spaces, whitespace collapsed.
pub(crate) fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1 - levenshtein(a, b) / max(len a, len b)` over characters; 1.0 for two empty strings.
pub(crate) fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let distance = levenshtein(&a, &b);
    1.0 - (distance as f64) / (longest as f64)
}

/// Whether two normalized texts could be similar enough at all: their lengths alone bound the
/// distance from below, which spares the quadratic part for most pairs.
fn may_reach_threshold(a: &str, b: &str) -> bool {
    let (la, lb) = (a.chars().count(), b.chars().count());
    let longest = la.max(lb);
    longest == 0 || 1.0 - (la.abs_diff(lb) as f64) / (longest as f64) >= SIMILARITY_THRESHOLD
}

/// Edit distance (insertions, deletions, substitutions), two rows.
fn levenshtein(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The words of a normalized title worth searching for: no stop words, no single letters
/// (all of them when that leaves nothing).
fn significant_terms(normalized: &str) -> Vec<String> {
    let all: Vec<String> = normalized
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let some: Vec<String> = all
        .iter()
        .filter(|w| w.chars().count() > 1 && !STOP_WORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    if some.is_empty() { all } else { some }
}

/// The normalized words of an issue's title and description.
fn words_of(issue: &Issue) -> Vec<String> {
    normalize(&format!("{} {}", issue.title, issue.description))
        .split(' ')
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The length bound only skips pairs that could not reach the threshold.
        #[test]
        fn the_length_bound_never_excludes_a_near_duplicate(
            a in "[ab ]{0,16}",
            b in "[ab ]{0,16}",
        ) {
            if similarity(&a, &b) >= SIMILARITY_THRESHOLD {
                prop_assert!(may_reach_threshold(&a, &b), "{a:?} {b:?}");
            }
        }

        /// Same, for titles made from each other by a few edits (most pass the threshold).
        #[test]
        fn the_length_bound_keeps_edited_titles(
            a in "[a-z0-9 ]{1,40}",
            edits in proptest::collection::vec((any::<u16>(), 0u8..3, "[a-z ]"), 0..8),
        ) {
            let mut b: Vec<char> = a.chars().collect();
            for (at, kind, c) in edits {
                let c = c.chars().next().unwrap_or('x');
                let i = usize::from(at) % (b.len() + 1);
                match kind {
                    0 => b.insert(i, c),
                    1 if i < b.len() => {
                        b.remove(i);
                    }
                    _ if i < b.len() => b[i] = c,
                    _ => b.push(c),
                }
            }
            let b: String = b.into_iter().collect();
            if similarity(&a, &b) >= SIMILARITY_THRESHOLD {
                prop_assert!(may_reach_threshold(&a, &b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn similarity_is_normalized_levenshtein() {
        assert!((similarity("fix login", "fix login") - 1.0).abs() < 1e-9);
        assert!((similarity("", "") - 1.0).abs() < 1e-9);
        // kitten → sitting: 3 edits over 7 characters.
        assert!((similarity("kitten", "sitting") - (1.0 - 3.0 / 7.0)).abs() < 1e-9);
        assert!(similarity("fix the login page", "fix the login pages") >= SIMILARITY_THRESHOLD);
        assert!(similarity("fix login", "write the quarterly report") < SIMILARITY_THRESHOLD);
        assert!(similarity("ab", "abcdefghij") < SIMILARITY_THRESHOLD);
        assert!(!may_reach_threshold("ab", "abcdefghij"));
        assert!(may_reach_threshold("fix login", "fix logins"));
    }

    #[test]
    fn titles_are_normalized() {
        assert_eq!(normalize("  Fix: the LOGIN-page!! "), "fix the login page");
        assert_eq!(
            significant_terms("fix the login page"),
            ["fix", "login", "page"]
        );
        assert_eq!(significant_terms("a to"), ["a", "to"]);
    }
}
