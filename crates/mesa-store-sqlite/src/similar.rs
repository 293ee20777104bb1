//! Near-duplicate search (SPEC §2 `POST /issues/similar`): bounded candidate queries for
//! [`IssueStore::similar_title_candidates`](mesa_store::IssueStore::similar_title_candidates)
//! over the title trigram index (`issues_title_trigrams`, migration 0003) and for
//! [`IssueStore::search_issues`](mesa_store::IssueStore::search_issues) over the full-text index
//! (`issues_fts`).
//!
//! Both find candidates through the posting lists of the query's distinctive trigrams or words:
//! those in fewer than [`DISTINCTIVE_BELOW`] documents, rarest first, at most
//! [`DISTINCTIVE_BUDGET`] postings in all. Ranking a term that matches most of a million rows
//! is what makes a naive query slow, so common terms are never ranked: a common trigram adds
//! only its newest [`COMMON_SAMPLE`] titles, and when every word of a text query is common the
//! newest issues containing all of them are returned. Counting a term's documents (the probe)
//! stops at [`DISTINCTIVE_BELOW`]; FTS5 reads single terms lazily, so that bounds its cost.
//! Prefix queries are the exception (FTS5 merges a prefix's posting lists up front), hence
//! [`word_forms`].

use mesa_domain::entity::Issue;
use mesa_domain::{IssueKey, IssueStatus, Title};
use mesa_store::{IssueTitle, Result};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::error::backend;
use crate::issues::{IssueRow, decode_issue, issue_select};
use crate::rows::parse;

/// At most this many distinct trigrams of a title are looked up, spread evenly over a longer
/// title (a 34-character title has 32).
pub(crate) const MAX_TRIGRAMS: usize = 32;

/// At most this many words of a text query are looked up.
const MAX_WORDS: usize = 16;

/// A trigram or word found in fewer documents than this is distinctive: every document with it
/// is a candidate. Counting stops here, so one probe reads at most this many postings.
pub(crate) const DISTINCTIVE_BELOW: i64 = 8192;

/// At most this many postings of distinctive terms are ranked per query (rarest terms first;
/// a distinctive term past the budget is treated as common).
pub(crate) const DISTINCTIVE_BUDGET: i64 = 32_768;

/// A common trigram contributes only the newest this many open titles containing it.
pub(crate) const COMMON_SAMPLE: i64 = 256;

/// The distinct character trigrams of a text, in order of first appearance, at most
/// [`MAX_TRIGRAMS`] (evenly spread over the text when it has more). Texts are first reduced to
/// lowercase words of letters and digits separated by single spaces, so every trigram is safe
/// to quote in an FTS5 query.
pub(crate) fn trigrams(text: &str) -> Vec<String> {
    let clean: Vec<char> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .collect();
    let mut all: Vec<String> = Vec::new();
    for window in clean.windows(3) {
        let gram: String = window.iter().collect();
        if !all.contains(&gram) {
            all.push(gram);
        }
    }
    if all.len() <= MAX_TRIGRAMS {
        return all;
    }
    let n = all.len();
    (0..MAX_TRIGRAMS)
        .map(|i| all[i * n / MAX_TRIGRAMS].clone())
        .collect()
}

/// How one term takes part in a candidate query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arm {
    /// Index of the term in the probed list.
    pub term: usize,
    /// `Some(n)`: only its newest `n` documents (a common term); `None`: all of them.
    pub sample: Option<i64>,
    /// What a shared occurrence adds to a candidate's rank.
    pub weight: f64,
}

/// Plans a candidate query from each term's document count (capped at
/// [`DISTINCTIVE_BELOW`]): distinctive terms, rarest first within [`DISTINCTIVE_BUDGET`], read
/// in full with weight `1 + ln(DISTINCTIVE_BELOW / count)` (always above 1); the others
/// sampled, their weights summing to at most 0.5 so that sharing any distinctive term outranks
/// sharing every common one. Terms found nowhere are left out.
pub(crate) fn plan(counts: &[i64]) -> Vec<Arm> {
    let mut order: Vec<usize> = (0..counts.len()).filter(|&i| counts[i] > 0).collect();
    order.sort_by_key(|&i| (counts[i], i));
    let mut budget = DISTINCTIVE_BUDGET;
    let mut distinctive = Vec::new();
    let mut common = Vec::new();
    for i in order {
        let count = counts[i];
        if count < DISTINCTIVE_BELOW && count <= budget {
            budget -= count;
            distinctive.push(Arm {
                term: i,
                sample: None,
                weight: 1.0 + (DISTINCTIVE_BELOW as f64 / count as f64).ln(),
            });
        } else {
            common.push(i);
        }
    }
    let share = 0.5 / common.len().max(1) as f64;
    distinctive.extend(common.into_iter().map(|term| Arm {
        term,
        sample: Some(COMMON_SAMPLE),
        weight: share,
    }));
    distinctive
}

/// How many documents of `table` match each FTS5 query, each count capped at
/// [`DISTINCTIVE_BELOW`]. One statement.
async fn probe(reader: &SqlitePool, table: &str, queries: &[String]) -> Result<Vec<i64>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("");
    for (i, query) in queries.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push("SELECT ")
            .push_bind(i64::try_from(i).unwrap_or(i64::MAX))
            .push(", count(*) FROM (SELECT 1 FROM ")
            .push(table)
            .push(" WHERE ")
            .push(table)
            .push(" MATCH ")
            .push_bind(query.clone())
            .push(" LIMIT (SELECT ")
            .push_bind(DISTINCTIVE_BELOW)
            .push("))");
    }
    let rows: Vec<(i64, i64)> = qb
        .build_query_as()
        .fetch_all(reader)
        .await
        .map_err(backend)?;
    let mut counts = vec![0; queries.len()];
    for (i, n) in rows {
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| counts.get_mut(i)) {
            *slot = n;
        }
    }
    Ok(counts)
}

fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

const ISSUE: &str = "issue";

fn decode_title(row: (String, String, String)) -> Result<IssueTitle> {
    let (key, title, status) = row;
    Ok(IssueTitle {
        key: parse(ISSUE, IssueKey::parse(&key))?,
        title: parse(ISSUE, Title::parse(&title))?,
        status: parse(ISSUE, IssueStatus::parse(&status))?,
    })
}

/// See [`IssueStore::similar_title_candidates`](mesa_store::IssueStore::similar_title_candidates).
pub(crate) async fn title_candidates(
    reader: &SqlitePool,
    normalized_title: &str,
    limit: u32,
) -> Result<Vec<IssueTitle>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let exact: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT key, title, status FROM issues \
         WHERE title_norm = ? AND open = 1 AND deleted = 0",
    )
    .bind(normalized_title)
    .fetch_all(reader)
    .await
    .map_err(backend)?;
    let mut found = exact
        .into_iter()
        .map(decode_title)
        .collect::<Result<Vec<_>>>()?;
    let grams: Vec<String> = trigrams(normalized_title)
        .iter()
        .map(|g| quoted(g))
        .collect();
    if grams.is_empty() {
        return Ok(found);
    }
    let arms = plan(&probe(reader, "issues_title_trigrams", &grams).await?);
    if arms.is_empty() {
        return Ok(found);
    }
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT issues.key, issues.title, issues.status FROM (SELECT hit, sum(w) AS score FROM (",
    );
    for (i, arm) in arms.iter().enumerate() {
        if i > 0 {
            qb.push(" UNION ALL ");
        }
        qb.push("SELECT hit, w FROM (SELECT rowid AS hit, ")
            .push_bind(arm.weight)
            .push(" AS w FROM issues_title_trigrams WHERE issues_title_trigrams MATCH ")
            .push_bind(grams[arm.term].clone());
        if let Some(n) = arm.sample {
            qb.push(" ORDER BY rowid DESC LIMIT (SELECT ")
                .push_bind(n)
                .push(")");
        }
        qb.push(")");
    }
    qb.push(") GROUP BY hit ORDER BY score DESC, hit DESC LIMIT (SELECT ")
        .push_bind(i64::from(limit))
        .push(")")
        .push(
            ") AS c JOIN issues ON issues.rowid = c.hit \
             WHERE issues.open = 1 AND issues.deleted = 0 ORDER BY c.score DESC, c.hit DESC",
        );
    let rows: Vec<(String, String, String)> = qb
        .build_query_as()
        .fetch_all(reader)
        .await
        .map_err(backend)?;
    for row in rows {
        let candidate = decode_title(row)?;
        if !found.iter().any(|f| f.key == candidate.key) {
            found.push(candidate);
        }
    }
    found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(found)
}

/// How each word of a text query is looked up: `(form, count)`, from its exact form's
/// count and the count of its first three letters as a prefix (both capped). A word matches as
/// a prefix (`passw` finds `password`) when the documents with its first three letters are
/// few: FTS5 merges every posting list of a prefix up front, so a prefix that expands to a
/// common word would read all of it. Otherwise it matches exactly. Single letters always match
/// exactly (the prefix index starts at two letters).
pub(crate) fn word_forms(
    terms: &[String],
    exact: &[i64],
    short_prefix: &[i64],
) -> Vec<(String, i64)> {
    terms
        .iter()
        .enumerate()
        .map(|(i, term)| {
            let prefix = short_prefix.get(i).copied().unwrap_or(DISTINCTIVE_BELOW);
            if term.chars().count() > 1 && prefix < DISTINCTIVE_BELOW {
                (format!("{}*", quoted(term)), prefix)
            } else {
                (quoted(term), exact.get(i).copied().unwrap_or(0))
            }
        })
        .collect()
}

/// See [`IssueStore::search_issues`](mesa_store::IssueStore::search_issues). `terms` are words
/// of letters and digits.
pub(crate) async fn text_candidates(
    reader: &SqlitePool,
    terms: &[String],
    limit: u32,
) -> Result<Vec<Issue>> {
    let mut distinct: Vec<String> = Vec::new();
    for term in terms {
        if !distinct.contains(term) {
            distinct.push(term.clone());
        }
    }
    let mut terms = distinct;
    terms.truncate(MAX_WORDS);
    if terms.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    // One probe: every word's exact form, then its first three letters as a prefix (served by
    // the `prefix = '2 3'` index, so it reads no more than the capped count either).
    let mut probes: Vec<String> = terms.iter().map(|t| quoted(t)).collect();
    probes.extend(terms.iter().map(|t| {
        let short: String = t.chars().take(3).collect();
        if short.chars().count() > 1 {
            format!("{}*", quoted(&short))
        } else {
            quoted(&short)
        }
    }));
    let counts = probe(reader, "issues_fts", &probes).await?;
    let (exact, short_prefix) = counts.split_at(terms.len());
    let forms = word_forms(&terms, exact, short_prefix);
    let counts: Vec<i64> = forms.iter().map(|(_, n)| *n).collect();
    let arms = plan(&counts);
    let ranked: Vec<&str> = arms
        .iter()
        .filter(|a| a.sample.is_none())
        .map(|a| forms[a.term].0.as_str())
        .collect();
    let all_words = arms
        .iter()
        .filter(|a| exact[a.term] > 0)
        .map(|a| quoted(&terms[a.term]))
        .collect::<Vec<_>>()
        .join(" AND ");
    let rows: Vec<IssueRow> = if ranked.is_empty() && all_words.is_empty() {
        return Ok(Vec::new());
    } else if ranked.is_empty() {
        // Every word found is common: the newest issues with all of them, unranked (exact
        // forms: FTS5 reads their posting lists lazily, newest first, and stops at the limit).
        sqlx::query_as(issue_select!(
            "JOIN (SELECT rowid AS hit FROM issues_fts WHERE issues_fts MATCH ? \
             ORDER BY rowid DESC LIMIT (SELECT ?)) AS f ON f.hit = issues.rowid \
             WHERE issues.deleted = 0 ORDER BY f.hit DESC"
        ))
        .bind(all_words)
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await
        .map_err(backend)?
    } else {
        // Title words weigh four times description words; the key column is not indexed.
        sqlx::query_as(issue_select!(
            "JOIN (SELECT rowid AS hit, bm25(issues_fts, 0.0, 4.0, 1.0) AS score FROM issues_fts \
             WHERE issues_fts MATCH ?) AS f ON f.hit = issues.rowid \
             WHERE issues.deleted = 0 ORDER BY f.score, issues.created_at DESC LIMIT (SELECT ?)"
        ))
        .bind(ranked.join(" OR "))
        .bind(i64::from(limit))
        .fetch_all(reader)
        .await
        .map_err(backend)?
    };
    rows.into_iter().map(decode_issue).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigrams_are_distinct_windows_of_the_clean_text() {
        assert_eq!(
            trigrams("Fix: the LOG!"),
            [
                "fix", "ix ", "x t", " th", "the", "he ", "e l", " lo", "log"
            ]
        );
        assert_eq!(trigrams("aaaa"), ["aaa"]);
        assert!(trigrams("ab").is_empty());
        assert!(trigrams("\"*").is_empty());
        let long = trigrams(&"abcdefghijklmnopqrstuvwxyz0123456789".repeat(3));
        assert_eq!(long.len(), MAX_TRIGRAMS);
        assert_eq!(long.first().map(String::as_str), Some("abc"));
    }

    #[test]
    fn words_match_as_prefixes_only_when_that_is_cheap() {
        let terms: Vec<String> = ["passw", "seeded", "x", "zebra"]
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
        let forms = word_forms(
            &terms,
            &[0, DISTINCTIVE_BELOW, 3, 0],
            &[12, DISTINCTIVE_BELOW, 3, DISTINCTIVE_BELOW],
        );
        assert_eq!(
            forms,
            [
                (r#""passw"*"#.to_owned(), 12),
                (r#""seeded""#.to_owned(), DISTINCTIVE_BELOW),
                (r#""x""#.to_owned(), 3),
                (r#""zebra""#.to_owned(), 0),
            ]
        );
    }

    #[test]
    fn plan_ranks_distinctive_terms_and_samples_common_ones() {
        let arms = plan(&[DISTINCTIVE_BELOW, 10, 0, 4000, DISTINCTIVE_BELOW]);
        let terms: Vec<usize> = arms.iter().map(|a| a.term).collect();
        assert_eq!(terms, [1, 3, 0, 4], "rarest first, absent terms left out");
        assert!(arms[0].weight > arms[1].weight && arms[1].weight > 1.0);
        assert_eq!(arms[0].sample, None);
        assert_eq!(arms[2].sample, Some(COMMON_SAMPLE));
        let common: f64 = arms[2..].iter().map(|a| a.weight).sum();
        assert!(common <= 0.5 + 1e-9);

        // Past the budget, distinctive terms are sampled like common ones.
        let many = vec![DISTINCTIVE_BELOW - 1; 8];
        let arms = plan(&many);
        let read: i64 = arms
            .iter()
            .filter(|a| a.sample.is_none())
            .map(|a| many[a.term])
            .sum();
        assert!(read <= DISTINCTIVE_BUDGET, "{read}");
        assert!(arms.iter().any(|a| a.sample.is_some()));
    }
}
