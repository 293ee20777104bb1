//! [`ApprovalStore`]: requests for decisions (SPEC §4.2).
//!
//! Resolving is a versioned update: of two concurrent resolutions of one approval, the second
//! finds the version moved and gets `StaleVersion`. `requested_by` and `approver` are stored as
//! `board` or the agent id.

use async_trait::async_trait;
use mesa_domain::entity::{Approval, Approver, Requester, Subject};
use mesa_domain::{
    AgentId, ApprovalId, ApprovalKind, ApprovalStatus, Markdown, Timestamp, Title, Version,
};
use mesa_store::{ApprovalStore, ApprovalWrite, Created, Page, PageRequest, Result, StoreError};

use crate::SqliteStore;
use crate::activity;
use crate::agents::{stale_or_missing, write_time};
use crate::error::{backend, map_err};
use crate::rows::{decode_cursor, encode_cursor, json, ms_opt, parse, to_json, ts, ts_opt};

const BOARD: &str = "board";

#[derive(sqlx::FromRow)]
struct ApprovalRow {
    id: String,
    kind: String,
    title: String,
    body: String,
    requested_by: String,
    approver: String,
    subject_type: Option<String>,
    subject_id: Option<String>,
    payload: String,
    status: String,
    decision_comment: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    expires_at: Option<i64>,
    created_at: i64,
    version: i64,
    /// The list order (see [`approval_columns`]).
    sort_key: i64,
}

/// The columns of [`ApprovalRow`]. `sort_key` adds 2^50 ms (about 35,000 years) to a pending
/// approval's creation time so that, sorting descending, every pending approval comes before
/// every decided one, newest first within each group.
macro_rules! approval_columns {
    () => {
        "id, kind, title, body, requested_by, approver, subject_type, subject_id, payload, \
         status, decision_comment, decided_by, decided_at, expires_at, created_at, version, \
         CASE WHEN status = 'pending' THEN created_at + 1125899906842624 ELSE created_at END \
         AS sort_key"
    };
}

fn agent_or_board(text: &str) -> Result<Option<AgentId>> {
    if text == BOARD {
        Ok(None)
    } else {
        parse("approval", AgentId::parse(text)).map(Some)
    }
}

fn requester_text(r: Requester) -> String {
    match r {
        Requester::Board => BOARD.to_owned(),
        Requester::Agent(id) => id.to_string(),
    }
}

fn approver_text(a: Approver) -> String {
    match a {
        Approver::Board => BOARD.to_owned(),
        Approver::Agent(id) => id.to_string(),
    }
}

fn decode_approval(row: ApprovalRow) -> Result<Approval> {
    const E: &str = "approval";
    let subject = match (row.subject_type, row.subject_id) {
        (Some(entity_type), Some(entity_id)) => Some(Subject {
            entity_type,
            entity_id,
        }),
        _ => None,
    };
    Ok(Approval {
        id: parse(E, ApprovalId::parse(&row.id))?,
        kind: parse(E, ApprovalKind::parse(&row.kind))?,
        title: parse(E, Title::parse(&row.title))?,
        body: parse(E, Markdown::parse(&row.body))?,
        requested_by: agent_or_board(&row.requested_by)?.map_or(Requester::Board, Requester::Agent),
        approver: agent_or_board(&row.approver)?.map_or(Approver::Board, Approver::Agent),
        subject,
        payload: json(E, "payload", &row.payload)?,
        status: parse(E, ApprovalStatus::parse(&row.status))?,
        decision_comment: row.decision_comment,
        decided_by: row.decided_by,
        decided_at: ts_opt(row.decided_at),
        expires_at: ts_opt(row.expires_at),
        created_at: ts(row.created_at),
        version: Version(row.version),
    })
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn create_approval(&self, approval: Created<Approval>) -> Result<Approval> {
        let Created {
            row: mut a,
            activity,
        } = approval;
        a.version = Version::FIRST;
        let (subject_type, subject_id) = match &a.subject {
            Some(s) => (Some(s.entity_type.as_str()), Some(s.entity_id.as_str())),
            None => (None, None),
        };
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO approvals (id, kind, title, body, requested_by, approver, subject_type, \
             subject_id, payload, status, decision_comment, decided_by, decided_at, expires_at, \
             created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, 1)",
        )
        .bind(a.id.to_string())
        .bind(a.kind.as_str())
        .bind(a.title.as_str())
        .bind(a.body.as_str())
        .bind(requester_text(a.requested_by))
        .bind(approver_text(a.approver))
        .bind(subject_type)
        .bind(subject_id)
        .bind(to_json(&a.payload))
        .bind(a.status.as_str())
        .bind(&a.decision_comment)
        .bind(&a.decided_by)
        .bind(ms_opt(a.decided_at))
        .bind(ms_opt(a.expires_at))
        .bind(a.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("approval", &a.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(a)
    }

    async fn update_approval(&self, write: ApprovalWrite) -> Result<Approval> {
        let ApprovalWrite {
            row: mut a,
            expected,
            activity,
        } = write;
        let id = a.id.to_string();
        let (subject_type, subject_id) = match &a.subject {
            Some(s) => (Some(s.entity_type.as_str()), Some(s.entity_id.as_str())),
            None => (None, None),
        };
        let at = write_time(&activity, a.decided_at);
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE approvals SET kind = $1, title = $2, body = $3, requested_by = $4, \
             approver = $5, subject_type = $6, subject_id = $7, payload = $8, status = $9, \
             decision_comment = $10, decided_by = $11, decided_at = $12, expires_at = $13, \
             updated_at = $14, version = version + 1 \
             WHERE id = $15 AND version = $16 RETURNING version",
        )
        .bind(a.kind.as_str())
        .bind(a.title.as_str())
        .bind(a.body.as_str())
        .bind(requester_text(a.requested_by))
        .bind(approver_text(a.approver))
        .bind(subject_type)
        .bind(subject_id)
        .bind(to_json(&a.payload))
        .bind(a.status.as_str())
        .bind(&a.decision_comment)
        .bind(&a.decided_by)
        .bind(ms_opt(a.decided_at))
        .bind(ms_opt(a.expires_at))
        .bind(at)
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("approval", &id))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM approvals WHERE id = $1",
                "approval",
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

    async fn approval(&self, id: ApprovalId) -> Result<Approval> {
        let row: Option<ApprovalRow> = sqlx::query_as(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_approval(row.ok_or_else(|| StoreError::not_found("approval", &id))?)
    }

    async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        page: &PageRequest,
    ) -> Result<Page<Approval>> {
        let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
        let (after_key, after_id) = match after {
            Some((key, id)) => (Some(key), Some(id)),
            None => (None, None),
        };
        let mut rows: Vec<ApprovalRow> = sqlx::query_as(concat!(
            "SELECT * FROM (SELECT ",
            approval_columns!(),
            " FROM approvals WHERE ($1 IS NULL OR status = $1)) \
             WHERE ($2 IS NULL OR sort_key < $2 OR (sort_key = $2 AND id < $3)) \
             ORDER BY sort_key DESC, id DESC LIMIT (SELECT $4)"
        ))
        .bind(status.map(ApprovalStatus::as_str))
        .bind(after_key)
        .bind(after_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| encode_cursor(r.sort_key, &r.id))
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(decode_approval)
            .collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }

    async fn expired_approvals(&self, now: Timestamp) -> Result<Vec<Approval>> {
        let rows: Vec<ApprovalRow> = sqlx::query_as(concat!(
            "SELECT ",
            approval_columns!(),
            " FROM approvals WHERE status = 'pending' AND expires_at IS NOT NULL \
             AND expires_at <= $1 ORDER BY expires_at, id"
        ))
        .bind(now.as_millis())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_approval).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pending_offset_is_two_to_the_fifty() {
        assert!(approval_columns!().contains(&(1_i64 << 50).to_string()));
    }
}
