//! Issue creation with group commit (see [`crate::group`]).
//!
//! Inside a batch, plain issues (no parent, work block or labels) share a few multi-row
//! statements: one duplicate-title query, one key allocation, one insert, one audit append.
//! Issues with references, and any batch whose shared statements fail, go one by one inside
//! savepoints, so one bad record never fails the others. A caller is answered only after the
//! commit: an acknowledged issue is durable.

use std::collections::HashMap;

use mesa_domain::entity::Issue;
use mesa_domain::{IssueKey, IssueStatus, Version};
use mesa_store::{Changes, NewIssueRecord, Result, StoreError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::SqliteStore;
use crate::error::backend;
use crate::group::{self, copy_err, fail_all};
use crate::rows::{parse, to_json};

type Reply = group::Reply<Issue>;

/// Pending creations.
pub(crate) type CreateQueue = group::Group<(NewIssueRecord, Reply)>;

/// Creates one issue, possibly committed together with concurrent ones.
pub(crate) async fn create_issue(store: &SqliteStore, new: NewIssueRecord) -> Result<Issue> {
    group::submit(
        store,
        &store.creates,
        new,
        "issue creation",
        |store, batch| async move {
            run_batch(&store, batch).await;
        },
    )
    .await
}

async fn run_batch(store: &SqliteStore, batch: Vec<(NewIssueRecord, Reply)>) {
    let mut tracked = match store.tracked_write_tx().await {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, &err),
    };
    let changes = changes(&batch);
    let tx = &mut tracked.tx;
    let mut results: Vec<(Reply, Result<Issue>)> = Vec::with_capacity(batch.len());
    let (plain, other): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(r, _)| {
        r.parent_key.is_none() && r.work_block_id.is_none() && r.labels.is_empty()
    });

    let mut one_by_one = other;
    if !plain.is_empty() {
        match fast_path(tx, plain).await {
            Ok((done, rest)) => {
                results.extend(done);
                one_by_one.extend(rest);
            }
            Err((err_items, err)) => {
                tracing::debug!(error = ?err, "batched issue creation fell back to one by one");
                one_by_one.extend(err_items);
            }
        }
    }
    for (record, reply) in one_by_one {
        let outcome = in_savepoint(tx, record).await;
        results.push((reply, outcome));
    }
    match store.commit_tracked(tracked, changes).await {
        Ok(()) => {
            for (reply, outcome) in results {
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            for (reply, _) in results {
                let _ = reply.send(Err(copy_err(&err)));
            }
        }
    }
}

/// What a batch may have changed, for read caches: it only inserts issues (with their labels,
/// their assignees' wake-up runs and audit rows), so at most the inboxes of their assignees and
/// the runs. (The board's inbox holds only issues in `board_review`, where no issue starts;
/// it is named anyway, as it costs nothing.)
fn changes(batch: &[(NewIssueRecord, Reply)]) -> Changes {
    let mut changes = Changes {
        runs: true,
        board_inbox: true,
        ..Changes::default()
    };
    for agent in batch.iter().filter_map(|(r, _)| r.assignee_id) {
        changes.inboxes.add(agent);
    }
    changes
}

async fn in_savepoint(tx: &mut SqliteConnection, record: NewIssueRecord) -> Result<Issue> {
    sqlx::query("SAVEPOINT create_one")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    match crate::issues::create_one(tx, record).await {
        Ok(issue) => {
            sqlx::query("RELEASE create_one")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            Ok(issue)
        }
        Err(err) => {
            sqlx::query("ROLLBACK TO create_one")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("RELEASE create_one")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            Err(err)
        }
    }
}

type Done = Vec<(Reply, Result<Issue>)>;
type Items = Vec<(NewIssueRecord, Reply)>;

/// Plain issues with shared statements. Returns the answered items and those to retry one by
/// one; on a statement failure everything is rolled back to the savepoint and handed back.
async fn fast_path(
    tx: &mut SqliteConnection,
    items: Items,
) -> Result<(Done, Items), (Items, StoreError)> {
    if let Err(e) = sqlx::query("SAVEPOINT create_batch")
        .execute(&mut *tx)
        .await
    {
        return Err((items, backend(e)));
    }
    // Titles already held by open issues, and duplicates within the batch.
    let norms: Vec<String> = items.iter().map(|(r, _)| r.title.normalized()).collect();
    let held = match held_titles(tx, &norms).await {
        Ok(h) => h,
        Err(e) => return Err((items, rollback(tx, e).await)),
    };
    let mut done: Done = Vec::new();
    let mut rest: Items = Vec::new();
    let mut accepted: Vec<(NewIssueRecord, Reply, String)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for ((record, reply), norm) in items.into_iter().zip(norms) {
        if let Some(existing_key) = held.get(&norm) {
            done.push((
                reply,
                Err(StoreError::DuplicateTitle {
                    existing_key: existing_key.clone(),
                }),
            ));
        } else if seen.contains_key(&norm)
            || accepted.iter().any(|(r, _, _)| r.prefix != record.prefix)
        {
            // A duplicate within the batch (its key is not known yet) or another prefix: the
            // one-by-one path reports it exactly.
            rest.push((record, reply));
        } else {
            seen.insert(norm.clone(), accepted.len());
            accepted.push((record, reply, norm));
        }
    }
    if accepted.is_empty() {
        let _ = sqlx::query("RELEASE create_batch").execute(&mut *tx).await;
        return Ok((done, rest));
    }
    match insert_plain(tx, &accepted).await {
        Ok(issues) => {
            if let Err(e) = sqlx::query("RELEASE create_batch").execute(&mut *tx).await {
                let back = accepted
                    .into_iter()
                    .map(|(r, reply, _)| (r, reply))
                    .chain(rest)
                    .collect();
                return Err((back, backend(e)));
            }
            for ((_, reply, _), issue) in accepted.into_iter().zip(issues) {
                done.push((reply, Ok(issue)));
            }
            Ok((done, rest))
        }
        Err(e) => {
            let err = rollback(tx, e).await;
            // The duplicate-title answers stay valid: nothing was written for them.
            let back = accepted
                .into_iter()
                .map(|(r, reply, _)| (r, reply))
                .chain(rest)
                .collect();
            let _ = done;
            Err((back, err))
        }
    }
}

async fn rollback(tx: &mut SqliteConnection, err: StoreError) -> StoreError {
    let _ = sqlx::query("ROLLBACK TO create_batch")
        .execute(&mut *tx)
        .await;
    let _ = sqlx::query("RELEASE create_batch").execute(&mut *tx).await;
    err
}

async fn held_titles(
    tx: &mut SqliteConnection,
    norms: &[String],
) -> Result<HashMap<String, IssueKey>> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT title_norm, key FROM issues WHERE open = 1 AND deleted = 0 AND title_norm IN (",
    );
    let mut sep = qb.separated(", ");
    for n in norms {
        sep.push_bind(n);
    }
    qb.push(")");
    let rows: Vec<(String, String)> = qb
        .build_query_as()
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
    rows.into_iter()
        .map(|(n, k)| Ok((n, parse("issue", IssueKey::parse(&k))?)))
        .collect()
}

/// Allocates keys, inserts the issues and appends their audit rows: four statements.
async fn insert_plain(
    tx: &mut SqliteConnection,
    accepted: &[(NewIssueRecord, Reply, String)],
) -> Result<Vec<Issue>> {
    let prefix = accepted[0].0.prefix.clone();
    let n = i64::try_from(accepted.len()).expect("a batch is small");
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO issue_counters (prefix, last) VALUES (?1, ?2) \
         ON CONFLICT (prefix) DO UPDATE SET last = last + ?2 RETURNING last",
    )
    .bind(prefix.as_str())
    .bind(n)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    let first = last - n + 1;

    let mut issues = Vec::with_capacity(accepted.len());
    let mut activity = Vec::new();
    for (i, (r, _, _)) in accepted.iter().enumerate() {
        let number = first + i64::try_from(i).expect("a batch is small");
        let key = IssueKey::new(
            &prefix,
            u64::try_from(number)
                .ok()
                .and_then(std::num::NonZeroU64::new)
                .expect("counters start at 1"),
        );
        for row in &r.activity {
            let mut row = row.clone();
            if row.entity_id.is_empty() {
                row.entity_id = key.to_string();
            }
            activity.push(row);
        }
        issues.push(Issue {
            id: r.id,
            key,
            title: r.title.clone(),
            description: r.description.clone(),
            issue_type: r.issue_type,
            status: IssueStatus::Todo,
            priority: r.priority,
            assignee_id: r.assignee_id,
            submitted_by: None,
            reviewer_id: None,
            parent_key: None,
            work_block_id: None,
            labels: Vec::new(),
            stages: r.stages.clone(),
            current_stage: r.stages.current(),
            branch: None,
            started_at: None,
            completed_at: None,
            cancellation_reason: None,
            created_by: r.created_by.clone(),
            run_count: 0,
            status_changed_at: r.created_at,
            deleted: false,
            created_at: r.created_at,
            updated_at: r.created_at,
            version: Version::FIRST,
        });
    }

    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO issues (id, key, number, title, title_norm, description, type, status, open, \
         priority, assignee_id, stages, current_stage, created_by, run_count, status_changed_at, \
         deleted, created_at, updated_at, version) ",
    );
    qb.push_values(
        accepted.iter().zip(&issues),
        |mut b, ((_, _, norm), issue)| {
            b.push_bind(issue.id.to_string())
                .push_bind(issue.key.to_string())
                .push_bind(i64::try_from(issue.key.number()).expect("keys fit i64"))
                .push_bind(issue.title.to_string())
                .push_bind(norm.clone())
                .push_bind(issue.description.to_string())
                .push_bind(issue.issue_type.as_str())
                .push("'todo'")
                .push("1")
                .push_bind(i64::from(issue.priority.get()))
                .push_bind(issue.assignee_id.map(|a| a.to_string()))
                .push_bind(to_json(issue.stages.as_slice()))
                .push_bind(issue.current_stage.map(i64::from))
                .push_bind(issue.created_by.clone())
                .push("0")
                .push_bind(issue.created_at.as_millis())
                .push("0")
                .push_bind(issue.created_at.as_millis())
                .push_bind(issue.created_at.as_millis())
                .push("1");
        },
    );
    qb.build()
        .execute(&mut *tx)
        .await
        .map_err(crate::error::map_err("issue", &"batch"))?;
    // The assignees' wake-ups: a new issue has no queued run yet, so they are plain inserts,
    // one statement for the batch.
    let mut wakes = Vec::new();
    for ((r, _, _), issue) in accepted.iter().zip(&issues) {
        if let Some(wake) = &r.wake {
            let mut run = wake.clone();
            run.issue_key = Some(issue.key.clone());
            activity.extend(run.activity.drain(..).map(|mut row| {
                if row.entity_id.is_empty() {
                    row.entity_id = issue.key.to_string();
                }
                row
            }));
            wakes.push(run);
        }
    }
    crate::runs::insert_queued_runs(&mut *tx, &wakes).await?;
    crate::activity::append(&mut *tx, activity).await?;
    Ok(issues)
}
