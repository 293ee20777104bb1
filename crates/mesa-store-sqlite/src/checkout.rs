//! Atomic checkout (SPEC §2.2) with group commit (see [`crate::group`]).
//!
//! Each claim is a conditional `UPDATE` that matches only while the issue is in an expected
//! status and free (or already the caller's), so of any number of concurrent callers exactly one
//! wins. A batch keeps the outcome of running its requests one after the other in one
//! transaction, in fewer statements:
//!
//! 1. the first request for each issue is tried by one `UPDATE ... FROM json_each(?)` for the
//!    whole batch (requests for different issues touch different rows, so their order does not
//!    matter);
//! 2. the issues of the first requests that did not match are read once, so every issue the
//!    batch names has a known row;
//! 3. the remaining requests (a later request for an issue already tried in this batch) are
//!    decided against that row in order: one that would match runs its own `UPDATE`, exactly as
//!    alone; one that would not gets the answer the failed `UPDATE` would have led to.
//!
//! What the claims have in common is shared: one audit append for the batch's claims (in request
//! order), one read of the claimed issues, one commit. Any storage failure rolls the whole batch
//! back and answers every caller with it.

use std::collections::HashMap;

use mesa_domain::entity::{Issue, NewActivity};
use mesa_domain::{AgentId, IssueId, IssueKey, IssueStatus};
use mesa_store::{Changes, CheckoutOutcome, CheckoutRequest, Result, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::group::{self, copy_err, fail_all};
use crate::issues::{IssueRow, decode_issue};
use crate::rows::{parse, to_json};

type Reply = group::Reply<CheckoutOutcome>;

/// Pending checkouts.
pub(crate) type CheckoutQueue = group::Group<(CheckoutRequest, Reply)>;

const ISSUE: &str = "issue";

/// Checks one issue out, possibly committed together with concurrent checkouts.
pub(crate) async fn checkout_issue(
    store: &SqliteStore,
    req: CheckoutRequest,
) -> Result<CheckoutOutcome> {
    group::submit(
        store,
        &store.checkouts,
        req,
        "checkout",
        |store, batch| async move {
            run_batch(&store, batch).await;
        },
    )
    .await
}

/// What one request came to, before the commit.
enum Claim {
    /// Claimed now (`changed`), or already held by the caller.
    Held { id: IssueId, changed: bool },
    /// Lost, or no such issue: the answer is this error.
    Refused(StoreError),
}

async fn run_batch(store: &SqliteStore, batch: Vec<(CheckoutRequest, Reply)>) {
    let mut tracked = match store.tracked_write_tx().await {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, &err),
    };
    let (requests, replies): (Vec<CheckoutRequest>, Vec<Reply>) = batch.into_iter().unzip();
    let callers: Vec<AgentId> = requests.iter().map(|r| r.agent_id).collect();
    let (claims, audit) = match claim_all(&mut tracked.tx, requests).await {
        Ok(done) => done,
        // Dropping the transaction rolls back every claim of the batch.
        Err(err) => return fail_replies(replies, &err),
    };
    let issues = match finish(&mut tracked.tx, audit, &claims).await {
        Ok(issues) => issues,
        Err(err) => return fail_replies(replies, &err),
    };
    if let Err(err) = store
        .commit_tracked(tracked, changes(&callers, &issues))
        .await
    {
        return fail_replies(replies, &err);
    }
    for (reply, claim) in replies.into_iter().zip(claims) {
        let answer = match claim {
            Claim::Held { id, changed } => issues
                .get(&id)
                .cloned()
                .map(|issue| CheckoutOutcome { issue, changed })
                .ok_or_else(|| StoreError::not_found(ISSUE, &id)),
            Claim::Refused(err) => Err(err),
        };
        let _ = reply.send(answer);
    }
}

/// What a batch may have changed, for read caches: only issue rows (and the audit log), each
/// now assigned to its claimer, who was its assignee before or none; the reviewer is kept, so
/// an issue leaving review leaves its reviewer's inbox; and the board's inbox, should an issue
/// leave `board_review`.
fn changes(callers: &[AgentId], issues: &HashMap<IssueId, Issue>) -> Changes {
    let mut changes = Changes {
        board_inbox: true,
        ..Changes::default()
    };
    for agent in callers {
        changes.inboxes.add(*agent);
    }
    for reviewer in issues.values().filter_map(|i| i.reviewer_id) {
        changes.inboxes.add(reviewer);
    }
    changes
}

/// An issue's row as far as a checkout is concerned.
#[derive(Debug, Clone)]
struct Row {
    id: IssueId,
    status: IssueStatus,
    assignee: Option<AgentId>,
    deleted: bool,
}

impl Row {
    /// Whether the claim `UPDATE` of `req` would match this row.
    fn admits(&self, req: &CheckoutRequest) -> bool {
        !self.deleted
            && req.expected.contains(&self.status)
            && self.assignee.is_none_or(|a| a == req.agent_id)
    }
}

/// Runs the batch's requests (see the module docs): their claims in request order, and the
/// audit rows of those that changed an issue, in the same order.
async fn claim_all(
    tx: &mut SqliteConnection,
    requests: Vec<CheckoutRequest>,
) -> Result<(Vec<Claim>, Vec<NewActivity>)> {
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(requests.len());
    for (i, req) in requests.iter().enumerate() {
        first.entry(req.key.as_str()).or_insert(i);
    }
    let leaders: Vec<&CheckoutRequest> = requests
        .iter()
        .enumerate()
        .filter(|(i, req)| first.get(req.key.as_str()) == Some(i))
        .map(|(_, req)| req)
        .collect();
    let won = claim_leaders(tx, &leaders).await?;
    let lost: Vec<&str> = leaders
        .iter()
        .map(|req| req.key.as_str())
        .filter(|key| !won.contains_key(*key))
        .collect();
    let mut rows = read_rows(tx, &lost).await?;
    for req in &leaders {
        if let Some(id) = won.get(req.key.as_str()) {
            rows.insert(req.key.to_string(), claimed_row(*id, req.agent_id));
        }
    }

    let mut claims = Vec::with_capacity(requests.len());
    let mut audit = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for req in requests {
        let leader = seen.insert(req.key.to_string());
        let row = rows.get(req.key.as_str()).cloned();
        let claim = match (leader, row) {
            (true, Some(row)) if won.contains_key(req.key.as_str()) => Claim::Held {
                id: row.id,
                changed: true,
            },
            // A later request that would match runs its own claim, as it would alone.
            (false, Some(row)) if row.admits(&req) => {
                let claim = claim_one(tx, &req).await?;
                if let Claim::Held { id, changed: true } = &claim {
                    rows.insert(req.key.to_string(), claimed_row(*id, req.agent_id));
                }
                claim
            }
            (_, row) => settle(tx, &req, row).await?,
        };
        if matches!(claim, Claim::Held { changed: true, .. }) {
            audit.extend(req.activity);
        }
        claims.push(claim);
    }
    Ok((claims, audit))
}

fn claimed_row(id: IssueId, agent: AgentId) -> Row {
    Row {
        id,
        status: IssueStatus::InProgress,
        assignee: Some(agent),
        deleted: false,
    }
}

/// The first request for each issue, in one statement: the keys that were claimed, with ids.
async fn claim_leaders(
    tx: &mut SqliteConnection,
    leaders: &[&CheckoutRequest],
) -> Result<HashMap<String, IssueId>> {
    if leaders.is_empty() {
        return Ok(HashMap::new());
    }
    let wanted: Vec<serde_json::Value> = leaders
        .iter()
        .map(|req| {
            serde_json::json!({
                "key": req.key.as_str(),
                "agent": req.agent_id.to_string(),
                "run": req.run_id.map(|r| r.to_string()),
                "now": req.now.as_millis(),
                "expected": req.expected.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    // Each request's claim is the single-issue `UPDATE` of `claim_one`, with its values taken
    // from its element of the array; `issues.key` is unique, so each element meets one row.
    let claimed: Vec<(String, String)> = sqlx::query_as(
        "UPDATE issues SET assignee_id = r.c_agent, status = 'in_progress', open = 1, \
         started_at = COALESCE(issues.started_at, r.c_now), run_id = r.c_run, \
         status_changed_at = CASE WHEN issues.status = 'in_progress' \
         THEN issues.status_changed_at ELSE r.c_now END, updated_at = r.c_now, \
         version = issues.version + 1 \
         FROM (SELECT value ->> '$.key' AS c_key, value ->> '$.agent' AS c_agent, \
         value ->> '$.run' AS c_run, value ->> '$.now' AS c_now, \
         value -> '$.expected' AS c_expected FROM json_each(?1)) AS r \
         WHERE issues.key = r.c_key AND issues.deleted = 0 \
         AND issues.status IN (SELECT value FROM json_each(r.c_expected)) \
         AND (issues.assignee_id IS NULL OR issues.assignee_id = r.c_agent) \
         RETURNING issues.key, issues.id",
    )
    .bind(to_json(&wanted))
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    claimed
        .into_iter()
        .map(|(key, id)| Ok((key, parse(ISSUE, IssueId::parse(&id))?)))
        .collect()
}

/// The rows of `keys` (those that exist), read in one statement.
async fn read_rows(tx: &mut SqliteConnection, keys: &[&str]) -> Result<HashMap<String, Row>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(String, String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT key, id, status, assignee_id, deleted FROM issues \
         WHERE key IN (SELECT value FROM json_each(?))",
    )
    .bind(to_json(keys))
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    found
        .into_iter()
        .map(|(key, id, status, assignee, deleted)| {
            let row = Row {
                id: parse(ISSUE, IssueId::parse(&id))?,
                status: parse(ISSUE, IssueStatus::parse(&status))?,
                assignee: assignee
                    .map(|a| parse(ISSUE, AgentId::parse(&a)))
                    .transpose()?,
                deleted,
            };
            Ok((key, row))
        })
        .collect()
}

/// The answer for a request whose claim did not match `row`: not found, already the caller's
/// (binding a later run of the same agent), or a conflict.
async fn settle(
    tx: &mut SqliteConnection,
    req: &CheckoutRequest,
    row: Option<Row>,
) -> Result<Claim> {
    let Some(row) = row.filter(|r| !r.deleted) else {
        return Ok(Claim::Refused(StoreError::not_found(ISSUE, &req.key)));
    };
    if row.status == IssueStatus::InProgress && row.assignee == Some(req.agent_id) {
        // The caller already holds it: idempotent. A later run of the same agent is bound to
        // the issue (not part of the entity, so the version does not move).
        if let Some(run) = req.run_id {
            sqlx::query("UPDATE issues SET run_id = ?1 WHERE key = ?2 AND run_id IS NOT ?1")
                .bind(run.to_string())
                .bind(req.key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        return Ok(Claim::Held {
            id: row.id,
            changed: false,
        });
    }
    Ok(Claim::Refused(conflict(
        req.key.clone(),
        row.status,
        row.assignee,
    )))
}

fn fail_replies(replies: Vec<Reply>, err: &StoreError) {
    for reply in replies {
        let _ = reply.send(Err(copy_err(err)));
    }
}
/// The batch's audit rows, then the issues it holds, read once.
async fn finish(
    tx: &mut SqliteConnection,
    audit: Vec<NewActivity>,
    claims: &[Claim],
) -> Result<HashMap<IssueId, Issue>> {
    activity::append(tx, audit).await?;
    let ids: Vec<String> = claims
        .iter()
        .filter_map(|c| match c {
            Claim::Held { id, .. } => Some(id.to_string()),
            Claim::Refused(_) => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<IssueRow> = sqlx::query_as(crate::issues::issue_select!(
        "WHERE issues.id IN (SELECT value FROM json_each(?))"
    ))
    .bind(to_json(&ids))
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    rows.into_iter()
        .map(|row| decode_issue(row).map(|issue| (issue.id, issue)))
        .collect()
}

/// One request on its own, inside the batch's transaction. `Err` only for storage failures.
async fn claim_one(tx: &mut SqliteConnection, req: &CheckoutRequest) -> Result<Claim> {
    let statuses: Vec<&str> = req.expected.iter().map(|s| s.as_str()).collect();
    // The whole claim is this one statement: it matches only if the issue is still in an
    // expected status and free (or already the caller's), so exactly one caller wins.
    let claimed: Option<String> = sqlx::query_scalar(
        "UPDATE issues SET assignee_id = ?1, status = 'in_progress', open = 1, \
         started_at = COALESCE(started_at, ?2), run_id = ?3, \
         status_changed_at = CASE WHEN status = 'in_progress' THEN status_changed_at \
         ELSE ?2 END, updated_at = ?2, version = version + 1 \
         WHERE key = ?4 AND deleted = 0 AND status IN (SELECT value FROM json_each(?5)) \
         AND (assignee_id IS NULL OR assignee_id = ?1) \
         RETURNING id",
    )
    .bind(req.agent_id.to_string())
    .bind(req.now.as_millis())
    .bind(req.run_id.map(|r| r.to_string()))
    .bind(req.key.as_str())
    .bind(to_json(&statuses))
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err(ISSUE, &req.key))?;
    if let Some(id) = claimed {
        return Ok(Claim::Held {
            id: parse(ISSUE, IssueId::parse(&id))?,
            changed: true,
        });
    }
    let rows = read_rows(tx, &[req.key.as_str()]).await?;
    settle(tx, req, rows.get(req.key.as_str()).cloned()).await
}

fn conflict(key: IssueKey, status: IssueStatus, assignee: Option<AgentId>) -> StoreError {
    StoreError::CheckoutConflict {
        key,
        status,
        assignee,
    }
}
