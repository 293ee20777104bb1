//! [`BlockStore`]: work blocks, their north-star history, issue membership, and apex blocks.
//!
//! "At most one active work block" (SPEC §3.1) is the partial unique index
//! `work_blocks_one_active`; a write that would make a second block active fails on it, and is
//! reported as [`StoreError::SecondActiveBlock`] naming the block that is active.

use async_trait::async_trait;
use mesa_domain::entity::{ApexBlock, Issue, NewActivity, NorthStarValue, WorkBlock};
use mesa_domain::{
    ApexBlockId, ApexStatus, IssueId, IssueKey, Markdown, Title, Version, WorkBlockId,
    WorkBlockStatus,
};
use mesa_store::{ApexBlockWrite, BlockStore, Created, Result, StoreError, WorkBlockWrite};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::agents::{stale_or_missing, write_time};
use crate::error::{backend, map_err};
use crate::issues;
use crate::rows::{ms_opt, parse, ts, ts_opt};

#[derive(sqlx::FromRow)]
struct WorkBlockRow {
    id: String,
    title: String,
    goal: String,
    acceptance_criteria: String,
    status: String,
    north_star_metric: Option<String>,
    north_star_target: Option<f64>,
    north_star_current: Option<f64>,
    apex_block_id: Option<String>,
    activated_at: Option<i64>,
    ready_at: Option<i64>,
    shipped_at: Option<i64>,
    cancelled_at: Option<i64>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

macro_rules! block_columns {
    () => {
        "id, title, goal, acceptance_criteria, status, north_star_metric, north_star_target, \
         north_star_current, apex_block_id, activated_at, ready_at, shipped_at, cancelled_at, \
         created_by, created_at, updated_at, version"
    };
}

fn decode_block(row: WorkBlockRow) -> Result<WorkBlock> {
    const E: &str = "work_block";
    Ok(WorkBlock {
        id: parse(E, WorkBlockId::parse(&row.id))?,
        title: parse(E, Title::parse(&row.title))?,
        goal: parse(E, Markdown::parse(&row.goal))?,
        acceptance_criteria: parse(E, Markdown::parse(&row.acceptance_criteria))?,
        status: parse(E, WorkBlockStatus::parse(&row.status))?,
        north_star_metric: row.north_star_metric,
        north_star_target: row.north_star_target,
        north_star_current: row.north_star_current,
        apex_block_id: parse(
            E,
            row.apex_block_id
                .as_deref()
                .map(ApexBlockId::parse)
                .transpose(),
        )?,
        activated_at: ts_opt(row.activated_at),
        ready_at: ts_opt(row.ready_at),
        shipped_at: ts_opt(row.shipped_at),
        cancelled_at: ts_opt(row.cancelled_at),
        created_by: row.created_by,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

#[derive(sqlx::FromRow)]
struct ApexRow {
    id: String,
    title: String,
    goal: String,
    status: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

fn decode_apex(row: &ApexRow) -> Result<ApexBlock> {
    const E: &str = "apex_block";
    Ok(ApexBlock {
        id: parse(E, ApexBlockId::parse(&row.id))?,
        title: parse(E, Title::parse(&row.title))?,
        goal: parse(E, Markdown::parse(&row.goal))?,
        status: parse(E, ApexStatus::parse(&row.status))?,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

/// Maps the failure of a work-block write: a violation of `work_blocks_one_active` becomes
/// `SecondActiveBlock` naming the active block (looked up in the same transaction); anything
/// else goes through [`map_err`].
async fn block_write_error(
    conn: &mut SqliteConnection,
    err: sqlx::Error,
    id: &WorkBlockId,
) -> StoreError {
    let second_active = err
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation() && db.message().contains("work_blocks.status"));
    if second_active {
        let active: std::result::Result<Option<String>, _> =
            sqlx::query_scalar("SELECT id FROM work_blocks WHERE status = 'active'")
                .fetch_optional(&mut *conn)
                .await;
        return match active {
            Ok(Some(active)) => match WorkBlockId::parse(&active) {
                Ok(active) => StoreError::SecondActiveBlock { active },
                Err(source) => StoreError::Corrupt {
                    entity: "work_block",
                    source,
                },
            },
            Ok(None) => map_err("work_block", id)(err),
            Err(e) => backend(e),
        };
    }
    map_err("work_block", id)(err)
}

async fn load_block(conn: &mut SqliteConnection, id: &WorkBlockId) -> Result<WorkBlock> {
    let row: Option<WorkBlockRow> = sqlx::query_as(concat!(
        "SELECT ",
        block_columns!(),
        " FROM work_blocks WHERE id = $1"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    decode_block(row.ok_or_else(|| StoreError::not_found("work_block", id))?)
}

/// The membership change of [`BlockStore::set_issue_block`], inside the caller's transaction.
/// Returns the issue's id, and false when it is already where it should be (nothing written).
async fn move_issue(
    conn: &mut SqliteConnection,
    key: &IssueKey,
    block: Option<WorkBlockId>,
    at: i64,
) -> Result<(IssueId, bool)> {
    let current: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT id, work_block_id FROM issues WHERE key = $1")
            .bind(key.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let Some((issue_id, current)) = current else {
        return Err(StoreError::not_found("issue", key));
    };
    let issue_id = parse("issue", IssueId::parse(&issue_id))?;
    let target = block.map(|b| b.to_string());
    if current == target {
        return Ok((issue_id, false));
    }
    if let Some(block) = &block {
        if let Some(other) = &current {
            return Err(StoreError::Conflict {
                what: format!(
                    "issue {key} is in work block {other}; take it out of that block first"
                ),
            });
        }
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM work_blocks WHERE id = $1")
                .bind(block.to_string())
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
        let status = status.ok_or_else(|| StoreError::not_found("work_block", block))?;
        let status = parse("work_block", WorkBlockStatus::parse(&status))?;
        if !status.accepts_issues() {
            return Err(StoreError::Conflict {
                what: format!("work block {block} is {status} and accepts no issues"),
            });
        }
    }
    sqlx::query(
        "UPDATE issues SET work_block_id = $1, updated_at = $2, version = version + 1 \
         WHERE key = $3",
    )
    .bind(target)
    .bind(at)
    .bind(key.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err("issue", key))?;
    Ok((issue_id, true))
}

#[async_trait]
impl BlockStore for SqliteStore {
    async fn create_work_block(&self, block: Created<WorkBlock>) -> Result<WorkBlock> {
        let Created {
            row: mut b,
            activity,
        } = block;
        b.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO work_blocks (id, title, goal, acceptance_criteria, status, \
             north_star_metric, north_star_target, north_star_current, apex_block_id, \
             activated_at, ready_at, shipped_at, cancelled_at, created_by, created_at, \
             updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1)",
        )
        .bind(b.id.to_string())
        .bind(b.title.as_str())
        .bind(b.goal.as_str())
        .bind(b.acceptance_criteria.as_str())
        .bind(b.status.as_str())
        .bind(&b.north_star_metric)
        .bind(b.north_star_target)
        .bind(b.north_star_current)
        .bind(b.apex_block_id.map(|a| a.to_string()))
        .bind(ms_opt(b.activated_at))
        .bind(ms_opt(b.ready_at))
        .bind(ms_opt(b.shipped_at))
        .bind(ms_opt(b.cancelled_at))
        .bind(&b.created_by)
        .bind(b.created_at.as_millis())
        .bind(b.updated_at.as_millis())
        .execute(&mut *tx)
        .await;
        if let Err(err) = inserted {
            return Err(block_write_error(&mut tx, err, &b.id).await);
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(b)
    }

    async fn update_work_block(&self, write: WorkBlockWrite) -> Result<WorkBlock> {
        let WorkBlockWrite {
            row: mut b,
            expected,
            activity,
        } = write;
        let id = b.id.to_string();
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query_scalar::<_, i64>(
            "UPDATE work_blocks SET title = $1, goal = $2, acceptance_criteria = $3, status = $4, \
             north_star_metric = $5, north_star_target = $6, north_star_current = $7, \
             apex_block_id = $8, activated_at = $9, ready_at = $10, shipped_at = $11, \
             cancelled_at = $12, updated_at = $13, version = version + 1 \
             WHERE id = $14 AND version = $15 RETURNING version",
        )
        .bind(b.title.as_str())
        .bind(b.goal.as_str())
        .bind(b.acceptance_criteria.as_str())
        .bind(b.status.as_str())
        .bind(&b.north_star_metric)
        .bind(b.north_star_target)
        .bind(b.north_star_current)
        .bind(b.apex_block_id.map(|a| a.to_string()))
        .bind(ms_opt(b.activated_at))
        .bind(ms_opt(b.ready_at))
        .bind(ms_opt(b.shipped_at))
        .bind(ms_opt(b.cancelled_at))
        .bind(b.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await;
        let version = match updated {
            Ok(Some(version)) => version,
            Ok(None) => {
                return Err(stale_or_missing(
                    &mut tx,
                    "SELECT version FROM work_blocks WHERE id = $1",
                    "work_block",
                    &id,
                    expected,
                )
                .await);
            }
            Err(err) => return Err(block_write_error(&mut tx, err, &b.id).await),
        };
        b.version = Version(version);
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(b)
    }

    async fn work_block(&self, id: WorkBlockId) -> Result<WorkBlock> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        load_block(&mut conn, &id).await
    }

    async fn list_work_blocks(&self, status: Option<WorkBlockStatus>) -> Result<Vec<WorkBlock>> {
        let rows: Vec<WorkBlockRow> = sqlx::query_as(concat!(
            "SELECT ",
            block_columns!(),
            " FROM work_blocks WHERE ($1 IS NULL OR status = $1) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(status.map(WorkBlockStatus::as_str))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_block).collect()
    }

    async fn active_work_block(&self) -> Result<Option<WorkBlock>> {
        let row: Option<WorkBlockRow> = sqlx::query_as(concat!(
            "SELECT ",
            block_columns!(),
            " FROM work_blocks WHERE status = 'active'"
        ))
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(decode_block).transpose()
    }

    async fn set_issue_block(
        &self,
        key: &IssueKey,
        block: Option<WorkBlockId>,
        activity: Vec<NewActivity>,
    ) -> Result<Issue> {
        let at = write_time(&activity, None);
        let mut tx = self.write_tx().await?;
        let (issue_id, changed) = move_issue(&mut tx, key, block, at).await?;
        let issue = issues::issue_in_tx(&mut tx, issue_id).await?;
        if changed {
            activity::append(&mut tx, activity).await?;
            tx.commit().await.map_err(backend)?;
        } else {
            // Already there: nothing was written, and no audit rows are.
            tx.rollback().await.map_err(backend)?;
        }
        Ok(issue)
    }

    async fn record_north_star(
        &self,
        value: NorthStarValue,
        activity: Vec<NewActivity>,
    ) -> Result<WorkBlock> {
        let id = value.work_block_id.to_string();
        let at = value.recorded_at.as_millis();
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE work_blocks SET north_star_current = $1, updated_at = $2, \
             version = version + 1 WHERE id = $3",
        )
        .bind(value.value)
        .bind(at)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(map_err("work_block", &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("work_block", &id));
        }
        sqlx::query(
            "INSERT INTO north_star_values (work_block_id, value, recorded_by, recorded_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(value.value)
        .bind(&value.recorded_by)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map_err("north_star_value", &id))?;
        let block = load_block(&mut tx, &value.work_block_id).await?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(block)
    }

    async fn north_star_history(&self, id: WorkBlockId) -> Result<Vec<NorthStarValue>> {
        let rows: Vec<(f64, String, i64)> = sqlx::query_as(
            "SELECT value, recorded_by, recorded_at FROM north_star_values \
             WHERE work_block_id = $1 ORDER BY recorded_at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        Ok(rows
            .into_iter()
            .map(|(value, recorded_by, at)| NorthStarValue {
                work_block_id: id,
                value,
                recorded_by,
                recorded_at: ts(at),
            })
            .collect())
    }

    async fn create_apex_block(&self, block: Created<ApexBlock>) -> Result<ApexBlock> {
        let Created {
            row: mut a,
            activity,
        } = block;
        a.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO apex_blocks (id, title, goal, status, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(a.id.to_string())
        .bind(a.title.as_str())
        .bind(a.goal.as_str())
        .bind(a.status.as_str())
        .bind(a.created_at.as_millis())
        .bind(a.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("apex_block", &a.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(a)
    }

    async fn update_apex_block(&self, write: ApexBlockWrite) -> Result<ApexBlock> {
        let ApexBlockWrite {
            row: mut a,
            expected,
            activity,
        } = write;
        let id = a.id.to_string();
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE apex_blocks SET title = $1, goal = $2, status = $3, updated_at = $4, \
             version = version + 1 WHERE id = $5 AND version = $6 RETURNING version",
        )
        .bind(a.title.as_str())
        .bind(a.goal.as_str())
        .bind(a.status.as_str())
        .bind(a.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("apex_block", &id))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM apex_blocks WHERE id = $1",
                "apex_block",
                &id,
                expected,
            )
            .await);
        };
        a.version = Version(version);
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(a)
    }

    async fn apex_block(&self, id: ApexBlockId) -> Result<ApexBlock> {
        let row: Option<ApexRow> = sqlx::query_as(
            "SELECT id, title, goal, status, created_at, updated_at, version FROM apex_blocks \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_apex(&row.ok_or_else(|| StoreError::not_found("apex_block", &id))?)
    }

    async fn list_apex_blocks(&self) -> Result<Vec<ApexBlock>> {
        let rows: Vec<ApexRow> = sqlx::query_as(
            "SELECT id, title, goal, status, created_at, updated_at, version FROM apex_blocks \
             ORDER BY created_at DESC, id DESC",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_apex).collect()
    }
}
