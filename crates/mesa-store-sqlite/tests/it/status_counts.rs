//! The per-status counts of issues and runs (migration 0014: counter tables kept in step by
//! triggers) agree with counting the rows, after a long pseudo-random mix of inserts, status
//! changes, soft deletes and restores, hard deletes and an agent removal that cascades to its
//! runs.

use std::collections::BTreeMap;

use mesa_domain::RunId;
use mesa_store::{RunStore, StatsStore};
use sqlx::SqlitePool;

use crate::support::{TestDb, raw_pool};

const ISSUE_STATUSES: &[&str] = &[
    "todo",
    "in_progress",
    "blocked",
    "in_review",
    "board_review",
    "done",
    "wont_do",
    "cancelled",
];
/// Not `queued`: one queued run per agent and issue is all the schema allows; the two queued
/// runs are inserted first.
const RUN_STATUSES: &[&str] = &["running", "succeeded", "failed", "cancelled", "timed_out"];

const INSERT_RUN: &str = "INSERT INTO runs (id, agent_id, mode, status, triggers, runner, \
                          queued_at) VALUES (?, ?, 'task', ?, '[\"manual\"]', 'noop', 1)";

/// A small deterministic generator (xorshift), so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap()
    }
}

async fn exec(raw: &SqlitePool, sql: &'static str, binds: &[&str]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(raw).await.unwrap();
}

async fn counted(raw: &SqlitePool, sql: &'static str) -> BTreeMap<String, u64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(raw).await.unwrap();
    rows.into_iter()
        .map(|(s, n)| (s, u64::try_from(n).unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_counts_follow_every_kind_of_write() {
    let db = TestDb::new().await;
    let raw = raw_pool(&db.path()).await;
    let agents: Vec<String> = db.agents.iter().map(ToString::to_string).collect();
    assert!(agents.len() >= 2, "the harness has at least two agents");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut issues: Vec<String> = Vec::new();
    let mut runs: Vec<String> = Vec::new();
    let mut numbers = 0usize;

    for agent in &agents[..2] {
        let id = RunId::from_uuid(uuid::Uuid::now_v7()).to_string();
        exec(&raw, INSERT_RUN, &[&id, agent, "queued"]).await;
        runs.push(id);
    }
    for step in 0..600u32 {
        match rng.below(8) {
            0 | 1 => {
                numbers += 1;
                let n = numbers;
                let key = format!("MESA-{n}");
                let status = ISSUE_STATUSES[rng.below(ISSUE_STATUSES.len())];
                exec(
                    &raw,
                    "INSERT INTO issues (id, key, number, title, title_norm, type, status, open, \
                     created_by, status_changed_at, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, 'task', ?, 0, 'board', 1, 1, 1)",
                    &[
                        &uuid::Uuid::now_v7().to_string(),
                        &key,
                        &n.to_string(),
                        &format!("Issue {n}"),
                        &format!("issue {n}"),
                        status,
                    ],
                )
                .await;
                issues.push(key);
            }
            2 if !issues.is_empty() => {
                let key = &issues[rng.below(issues.len())];
                let status = ISSUE_STATUSES[rng.below(ISSUE_STATUSES.len())];
                exec(
                    &raw,
                    "UPDATE issues SET status = ? WHERE key = ?",
                    &[status, key],
                )
                .await;
            }
            3 if !issues.is_empty() => {
                let key = &issues[rng.below(issues.len())];
                let deleted = if rng.below(2) == 0 { "0" } else { "1" };
                exec(
                    &raw,
                    "UPDATE issues SET deleted = ? WHERE key = ?",
                    &[deleted, key],
                )
                .await;
            }
            4 if !issues.is_empty() && step % 5 == 0 => {
                let key = issues.swap_remove(rng.below(issues.len()));
                exec(&raw, "DELETE FROM issues WHERE key = ?", &[&key]).await;
            }
            5 => {
                let id = RunId::from_uuid(uuid::Uuid::now_v7()).to_string();
                let status = RUN_STATUSES[rng.below(RUN_STATUSES.len())];
                // Every run of the first agent is removed with it at the end.
                let agent = &agents[rng.below(2)];
                exec(&raw, INSERT_RUN, &[&id, agent, status]).await;
                runs.push(id);
            }
            6 if !runs.is_empty() => {
                let id = &runs[rng.below(runs.len())];
                let status = RUN_STATUSES[rng.below(RUN_STATUSES.len())];
                exec(
                    &raw,
                    "UPDATE runs SET status = ? WHERE id = ?",
                    &[status, id],
                )
                .await;
            }
            _ => {}
        }
    }
    exec(&raw, "PRAGMA foreign_keys = ON", &[]).await;
    let before: u64 = counted(&raw, "SELECT 'runs', COUNT(*) FROM runs").await["runs"];
    exec(&raw, "DELETE FROM agents WHERE id = ?", &[&agents[0]]).await;
    let after: u64 = counted(&raw, "SELECT 'runs', COUNT(*) FROM runs").await["runs"];
    assert!(
        after < before,
        "the agent's runs went with it ({before} → {after})"
    );

    let want_issues = counted(
        &raw,
        "SELECT status, COUNT(*) FROM issues WHERE deleted = 0 GROUP BY status",
    )
    .await;
    let got_issues: BTreeMap<String, u64> = db
        .store
        .issue_status_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    assert_eq!(got_issues, want_issues);
    assert!(
        want_issues.len() >= 4,
        "the mix reached most statuses: {want_issues:?}"
    );

    let want_runs = counted(&raw, "SELECT status, COUNT(*) FROM runs GROUP BY status").await;
    let got_runs: BTreeMap<String, u64> = db
        .store
        .run_status_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), n))
        .collect();
    assert_eq!(got_runs, want_runs);
}
