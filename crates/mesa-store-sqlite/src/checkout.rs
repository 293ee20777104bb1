//! Atomic checkout (SPEC §2.2) with group commit (see [`crate::group`]).
//!
//! Each claim is one conditional `UPDATE` that matches only while the issue is in an expected
//! status and free (or already the caller's), so of any number of concurrent callers exactly one
//! wins; inside a batch the requests run one after the other in the same transaction, so two
//! requests for one issue in one batch see each other too. What the claims have in common is
//! shared: one audit append for the batch's claims, one read of the claimed issues, one commit.
//! Any storage failure rolls the whole batch back and answers every caller with it.

use std::collections::HashMap;

use mesa_domain::entity::{Issue, NewActivity};
use mesa_domain::{AgentId, IssueId, IssueKey, IssueStatus};
use mesa_store::{CheckoutOutcome, CheckoutRequest, Result, StoreError};
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
    let mut tx = match store.write_tx().await {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, &err),
    };
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut claims: Vec<Claim> = Vec::with_capacity(batch.len());
    let mut audit: Vec<NewActivity> = Vec::new();
    let mut requests = batch.into_iter();
    while let Some((req, reply)) = requests.next() {
        replies.push(reply);
        match claim_one(&mut tx, req, &mut audit).await {
            Ok(claim) => claims.push(claim),
            // Dropping the transaction rolls back every claim of the batch.
            Err(err) => {
                replies.extend(requests.map(|(_, reply)| reply));
                return fail_replies(replies, &err);
            }
        }
    }
    let issues = match finish(&mut tx, audit, &claims).await {
        Ok(issues) => issues,
        Err(err) => return fail_replies(replies, &err),
    };
    if let Err(err) = tx.commit().await {
        return fail_replies(replies, &backend(err));
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

/// One request inside the batch's transaction. `Err` only for storage failures.
async fn claim_one(
    tx: &mut SqliteConnection,
    req: CheckoutRequest,
    audit: &mut Vec<NewActivity>,
) -> Result<Claim> {
    let CheckoutRequest {
        key,
        agent_id,
        run_id,
        expected,
        now,
        activity,
    } = req;
    let statuses: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
    let agent = agent_id.to_string();
    let run = run_id.map(|r| r.to_string());

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
    .bind(&agent)
    .bind(now.as_millis())
    .bind(run.as_deref())
    .bind(key.as_str())
    .bind(to_json(&statuses))
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err(ISSUE, &key))?;

    if let Some(id) = claimed {
        audit.extend(activity);
        return Ok(Claim::Held {
            id: parse(ISSUE, IssueId::parse(&id))?,
            changed: true,
        });
    }

    let current: Option<(String, String, Option<String>, bool)> =
        sqlx::query_as("SELECT id, status, assignee_id, deleted FROM issues WHERE key = ?")
            .bind(key.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let Some((id, status, assignee, deleted)) = current else {
        return Ok(Claim::Refused(StoreError::not_found(ISSUE, &key)));
    };
    if deleted {
        return Ok(Claim::Refused(StoreError::not_found(ISSUE, &key)));
    }
    let status = parse(ISSUE, IssueStatus::parse(&status))?;
    let assignee = assignee
        .map(|a| parse(ISSUE, AgentId::parse(&a)))
        .transpose()?;
    if status == IssueStatus::InProgress && assignee == Some(agent_id) {
        // The caller already holds it: idempotent. A later run of the same agent is bound to
        // the issue (not part of the entity, so the version does not move).
        if let Some(run) = &run {
            sqlx::query("UPDATE issues SET run_id = ?1 WHERE key = ?2 AND run_id IS NOT ?1")
                .bind(run)
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        return Ok(Claim::Held {
            id: parse(ISSUE, IssueId::parse(&id))?,
            changed: false,
        });
    }
    Ok(Claim::Refused(conflict(key, status, assignee)))
}

fn conflict(key: IssueKey, status: IssueStatus, assignee: Option<AgentId>) -> StoreError {
    StoreError::CheckoutConflict {
        key,
        status,
        assignee,
    }
}
