//! [`AgentStore`]: agents and their configuration revisions.
//!
//! The `agents` row keeps the hot columns (slug, name, archetype, runner, ...) for filters and
//! joins, denormalized from [`AgentConfig`]; the `config` column holds the whole configuration
//! as JSON and is what reads decode.
//!
//! This module also holds the small helpers the aggregate modules share
//! ([`stale_or_missing`], [`write_time`]).

use async_trait::async_trait;
use mesa_domain::entity::{Agent, AgentConfig, AgentRevision, NewActivity};
use mesa_domain::{AgentId, Slug, Timestamp, Version};
use mesa_store::{AgentStore, AgentWrite, NewAgentRecord, Result, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::error::{backend, map_err};
use crate::rows::{json, parse, to_json, ts, ts_opt};

/// The error for a versioned write that changed no row: `StaleVersion` with the stored
/// version when the row exists, `NotFound` when it does not. `version_sql` selects the
/// `version` column of the row with id `$1`.
pub(crate) async fn stale_or_missing(
    conn: &mut SqliteConnection,
    version_sql: &'static str,
    entity: &'static str,
    id: &str,
    expected: Version,
) -> StoreError {
    match sqlx::query_scalar::<_, i64>(version_sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
    {
        Ok(Some(actual)) => StoreError::StaleVersion {
            entity,
            id: id.to_owned(),
            expected,
            actual: Version(actual),
        },
        Ok(None) => StoreError::NotFound {
            entity,
            id: id.to_owned(),
        },
        Err(err) => backend(err),
    }
}

/// The time to record as `updated_at` for rows whose domain type carries none (approvals,
/// patches, issues moved between blocks): the first audit row's time, else `fallback`, else
/// the wall clock.
pub(crate) fn write_time(activity: &[NewActivity], fallback: Option<Timestamp>) -> i64 {
    activity
        .first()
        .map(|a| a.at)
        .or(fallback)
        .map_or_else(wall_clock_ms, Timestamp::as_millis)
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: String,
    slug: String,
    config: String,
    paused_until: Option<i64>,
    pause_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

macro_rules! agent_columns {
    () => {
        "id, slug, config, paused_until, pause_reason, created_at, updated_at, version"
    };
}

fn decode_agent(row: &AgentRow) -> Result<Agent> {
    Ok(Agent {
        id: parse("agent", AgentId::parse(&row.id))?,
        slug: parse("agent", Slug::parse(&row.slug))?,
        config: json::<AgentConfig>("agent", "config", &row.config)?,
        paused_until: ts_opt(row.paused_until),
        pause_reason: row.pause_reason.clone(),
        created_at: ts(row.created_at),
        updated_at: ts(row.updated_at),
        version: Version(row.version),
    })
}

#[derive(sqlx::FromRow)]
struct RevisionRow {
    agent_id: String,
    number: i64,
    config: String,
    changed_by: String,
    reason: String,
    created_at: i64,
}

fn decode_revision(row: RevisionRow) -> Result<AgentRevision> {
    Ok(AgentRevision {
        agent_id: parse("agent_revision", AgentId::parse(&row.agent_id))?,
        number: row.number,
        config: json("agent_revision", "config", &row.config)?,
        changed_by: row.changed_by,
        reason: row.reason,
        created_at: ts(row.created_at),
    })
}

/// Appends the next revision (max + 1) of an agent inside the caller's transaction.
async fn insert_revision(
    conn: &mut SqliteConnection,
    agent: &Agent,
    config: &str,
    changed_by: &str,
    reason: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO agent_revisions (agent_id, number, config, changed_by, reason, created_at) \
         SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, $4, $5 \
         FROM agent_revisions WHERE agent_id = $1",
    )
    .bind(agent.id.to_string())
    .bind(config)
    .bind(changed_by)
    .bind(reason)
    .bind(agent.updated_at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(map_err("agent_revision", &agent.id))?;
    Ok(())
}

#[async_trait]
impl AgentStore for SqliteStore {
    async fn create_agent(&self, new: NewAgentRecord) -> Result<Agent> {
        let NewAgentRecord {
            mut agent,
            changed_by,
            reason,
            activity,
        } = new;
        agent.version = Version::FIRST;
        let c = &agent.config;
        let config = to_json(c);
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO agents (id, slug, name, archetype, runner, model, working_dir, \
             reports_to, reviewer_id, active, config, paused_until, created_at, updated_at, \
             version, pause_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15)",
        )
        .bind(agent.id.to_string())
        .bind(agent.slug.as_str())
        .bind(c.name.as_str())
        .bind(c.archetype.as_str())
        .bind(c.runner.as_str())
        .bind(&c.model)
        .bind(c.working_dir.as_str())
        .bind(c.reports_to.map(|a| a.to_string()))
        .bind(c.reviewer_id.map(|a| a.to_string()))
        .bind(c.active)
        .bind(&config)
        .bind(agent.paused_until.map(Timestamp::as_millis))
        .bind(agent.created_at.as_millis())
        .bind(agent.updated_at.as_millis())
        .bind(agent.pause_reason.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(map_err("agent", &agent.slug))?;
        sqlx::query(
            "INSERT INTO agent_revisions (agent_id, number, config, changed_by, reason, \
             created_at) VALUES ($1, 1, $2, $3, $4, $5)",
        )
        .bind(agent.id.to_string())
        .bind(&config)
        .bind(&changed_by)
        .bind(&reason)
        .bind(agent.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("agent_revision", &agent.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(agent)
    }

    async fn update_agent(&self, write: AgentWrite) -> Result<Agent> {
        let AgentWrite {
            mut agent,
            expected,
            revision,
            activity,
        } = write;
        let id = agent.id.to_string();
        let c = &agent.config;
        let config = to_json(c);
        let mut tx = self.write_tx().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE agents SET slug = $1, name = $2, archetype = $3, runner = $4, model = $5, \
             working_dir = $6, reports_to = $7, reviewer_id = $8, active = $9, config = $10, \
             paused_until = $11, updated_at = $12, version = version + 1, pause_reason = $15 \
             WHERE id = $13 AND version = $14 RETURNING version",
        )
        .bind(agent.slug.as_str())
        .bind(c.name.as_str())
        .bind(c.archetype.as_str())
        .bind(c.runner.as_str())
        .bind(&c.model)
        .bind(c.working_dir.as_str())
        .bind(c.reports_to.map(|a| a.to_string()))
        .bind(c.reviewer_id.map(|a| a.to_string()))
        .bind(c.active)
        .bind(&config)
        .bind(agent.paused_until.map(Timestamp::as_millis))
        .bind(agent.updated_at.as_millis())
        .bind(&id)
        .bind(expected.0)
        .bind(agent.pause_reason.as_deref())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err("agent", &agent.slug))?;
        let Some(version) = version else {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM agents WHERE id = $1",
                "agent",
                &id,
                expected,
            )
            .await);
        };
        agent.version = Version(version);
        if let Some((changed_by, reason)) = &revision {
            insert_revision(&mut tx, &agent, &config, changed_by, reason).await?;
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(agent)
    }

    async fn agent(&self, id: AgentId) -> Result<Agent> {
        let row: Option<AgentRow> = sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_agent(&row.ok_or_else(|| StoreError::not_found("agent", &id))?)
    }

    async fn agent_by_slug(&self, slug: &Slug) -> Result<Agent> {
        let row: Option<AgentRow> = sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents WHERE slug = $1"
        ))
        .bind(slug.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_agent(&row.ok_or_else(|| StoreError::not_found("agent", slug))?)
    }

    async fn list_agents(&self) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = sqlx::query_as(concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents ORDER BY created_at, id"
        ))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_agent).collect()
    }

    async fn count_agents(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn agent_revisions(&self, id: AgentId) -> Result<Vec<AgentRevision>> {
        let rows: Vec<RevisionRow> = sqlx::query_as(
            "SELECT agent_id, number, config, changed_by, reason, created_at \
             FROM agent_revisions WHERE agent_id = $1 ORDER BY number DESC",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        if rows.is_empty() {
            // Every agent has revision 1, so no revisions means no agent.
            return Err(StoreError::not_found("agent", &id));
        }
        rows.into_iter().map(decode_revision).collect()
    }

    async fn agent_revision(&self, id: AgentId, number: i64) -> Result<AgentRevision> {
        let row: Option<RevisionRow> = sqlx::query_as(
            "SELECT agent_id, number, config, changed_by, reason, created_at \
             FROM agent_revisions WHERE agent_id = $1 AND number = $2",
        )
        .bind(id.to_string())
        .bind(number)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        let row = row.ok_or_else(|| StoreError::NotFound {
            entity: "agent_revision",
            id: format!("{id}#{number}"),
        })?;
        decode_revision(row)
    }
}
