//! [`GovernanceStore`]: directives, crons and audit records (SPEC §4.3, §6.4).

use async_trait::async_trait;
use mesa_domain::entity::{Audit, Cron, Directive, NewActivity};
use mesa_domain::{AgentId, AuditId, AuditStatus, CronId, DirectiveId, RunId, Version};
use mesa_store::{Created, GovernanceStore, Result, StoreError, Versioned};

use crate::SqliteStore;
use crate::activity;
use crate::agents::stale_or_missing;
use crate::error::{backend, map_err};
use crate::rows::{ms_opt, parse, ts, ts_opt};

#[derive(sqlx::FromRow)]
struct DirectiveRow {
    id: String,
    text: String,
    active: bool,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

fn decode_directive(row: DirectiveRow) -> Result<Directive> {
    Ok(Directive {
        id: parse("directive", DirectiveId::parse(&row.id))?,
        text: row.text,
        active: row.active,
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

#[derive(sqlx::FromRow)]
struct CronRow {
    id: String,
    agent_id: String,
    task: String,
    schedule: String,
    active: bool,
    last_run_at: Option<i64>,
    next_run_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

fn decode_cron(row: CronRow) -> Result<Cron> {
    Ok(Cron {
        id: parse("cron", CronId::parse(&row.id))?,
        agent_id: parse("cron", AgentId::parse(&row.agent_id))?,
        task: row.task,
        schedule: row.schedule,
        active: row.active,
        last_run_at: ts_opt(row.last_run_at),
        next_run_at: ts_opt(row.next_run_at),
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

/// The columns [`AuditRow`] reads, in order.
macro_rules! audit_columns {
    () => {
        "id, run_id, focus, status, findings, figures, window_days, patches_proposed, \
         issues_created, created_at, finished_at"
    };
}
pub(crate) use audit_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: String,
    run_id: Option<String>,
    focus: Option<String>,
    status: String,
    findings: Option<String>,
    figures: Option<String>,
    window_days: i64,
    patches_proposed: i64,
    issues_created: i64,
    created_at: i64,
    finished_at: Option<i64>,
}

pub(crate) fn decode_audit(row: AuditRow) -> Result<Audit> {
    Ok(Audit {
        id: parse("audit", AuditId::parse(&row.id))?,
        run_id: parse("audit", row.run_id.as_deref().map(RunId::parse).transpose())?,
        focus: row.focus,
        status: parse("audit", AuditStatus::parse(&row.status))?,
        findings: row.findings,
        figures: row.figures,
        window_days: u32::try_from(row.window_days).unwrap_or(14),
        patches_proposed: row.patches_proposed,
        issues_created: row.issues_created,
        created_at: ts(row.created_at),
        finished_at: ts_opt(row.finished_at),
    })
}

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn create_directive(&self, d: Created<Directive>) -> Result<Directive> {
        let Created {
            row: mut d,
            activity,
        } = d;
        d.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO directives (id, text, active, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, 1)",
        )
        .bind(d.id.to_string())
        .bind(&d.text)
        .bind(d.active)
        .bind(d.created_at.as_millis())
        .bind(d.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("directive", &d.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(d)
    }

    async fn update_directive(&self, write: Versioned<Directive>) -> Result<Directive> {
        let Versioned {
            row: mut d,
            expected,
            activity,
        } = write;
        let id = d.id.to_string();
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE directives SET text = $1, active = $2, updated_at = $3, \
             version = version + 1 WHERE id = $4 AND version = $5 RETURNING version",
        )
        .bind(&d.text)
        .bind(d.active)
        .bind(d.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("directive", &id))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM directives WHERE id = $1",
                "directive",
                &id,
                expected,
            )
            .await);
        };
        d.version = Version(version);
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(d)
    }

    async fn delete_directive(&self, id: DirectiveId, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM directives WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err("directive", &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("directive", &id));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_directives(&self) -> Result<Vec<Directive>> {
        let rows: Vec<DirectiveRow> = sqlx::query_as(
            "SELECT id, text, active, created_at, updated_at, version FROM directives \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_directive).collect()
    }

    async fn create_cron(&self, c: Created<Cron>) -> Result<Cron> {
        let Created {
            row: mut c,
            activity,
        } = c;
        c.version = Version::FIRST;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO crons (id, agent_id, task, schedule, active, last_run_at, next_run_at, \
             created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)",
        )
        .bind(c.id.to_string())
        .bind(c.agent_id.to_string())
        .bind(&c.task)
        .bind(&c.schedule)
        .bind(c.active)
        .bind(ms_opt(c.last_run_at))
        .bind(ms_opt(c.next_run_at))
        .bind(c.created_at.as_millis())
        .bind(c.updated_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("cron", &c.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(c)
    }

    async fn update_cron(&self, write: Versioned<Cron>) -> Result<Cron> {
        let Versioned {
            row: mut c,
            expected,
            activity,
        } = write;
        let id = c.id.to_string();
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE crons SET agent_id = $1, task = $2, schedule = $3, active = $4, \
             last_run_at = $5, next_run_at = $6, updated_at = $7, version = version + 1 \
             WHERE id = $8 AND version = $9 RETURNING version",
        )
        .bind(c.agent_id.to_string())
        .bind(&c.task)
        .bind(&c.schedule)
        .bind(c.active)
        .bind(ms_opt(c.last_run_at))
        .bind(ms_opt(c.next_run_at))
        .bind(c.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("cron", &id))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM crons WHERE id = $1",
                "cron",
                &id,
                expected,
            )
            .await);
        };
        c.version = Version(version);
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(c)
    }

    async fn delete_cron(&self, id: CronId, activity: Vec<NewActivity>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM crons WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err("cron", &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("cron", &id));
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(())
    }

    async fn list_crons(&self) -> Result<Vec<Cron>> {
        let rows: Vec<CronRow> = sqlx::query_as(
            "SELECT id, agent_id, task, schedule, active, last_run_at, next_run_at, created_at, \
             updated_at, version FROM crons ORDER BY created_at, id",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_cron).collect()
    }

    async fn create_audit(&self, a: Created<Audit>) -> Result<Audit> {
        let Created { row: a, activity } = a;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO audits (id, run_id, focus, status, findings, figures, window_days, \
             patches_proposed, issues_created, created_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(a.id.to_string())
        .bind(a.run_id.map(|r| r.to_string()))
        .bind(&a.focus)
        .bind(a.status.as_str())
        .bind(&a.findings)
        .bind(&a.figures)
        .bind(i64::from(a.window_days))
        .bind(a.patches_proposed)
        .bind(a.issues_created)
        .bind(a.created_at.as_millis())
        .bind(ms_opt(a.finished_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err("audit", &a.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(a)
    }

    async fn update_audit(&self, a: Audit) -> Result<Audit> {
        let id = a.id.to_string();
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE audits SET run_id = $1, focus = $2, status = $3, findings = $4, \
             patches_proposed = $5, issues_created = $6, finished_at = $7, figures = $8, \
             window_days = $9 WHERE id = $10",
        )
        .bind(a.run_id.map(|r| r.to_string()))
        .bind(&a.focus)
        .bind(a.status.as_str())
        .bind(&a.findings)
        .bind(a.patches_proposed)
        .bind(a.issues_created)
        .bind(ms_opt(a.finished_at))
        .bind(&a.figures)
        .bind(i64::from(a.window_days))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(map_err("audit", &id))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("audit", &id));
        }
        tx.commit().await.map_err(backend)?;
        Ok(a)
    }

    async fn list_audits(&self) -> Result<Vec<Audit>> {
        let rows: Vec<AuditRow> = sqlx::query_as(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audits ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(decode_audit).collect()
    }
}
