//! [`ArchetypeStore`]: archetypes (the current version), their version history, and proposed
//! patches.
//!
//! Writing a version and approving the patch behind it is one transaction: the patch becomes
//! `approved`, and every other pending patch of the archetype written against an older version
//! becomes `superseded` (SPEC §1 ArchetypePatch).

use async_trait::async_trait;
use mesa_domain::entity::{Archetype, ArchetypePatch, ArchetypeSource, ArchetypeVersion};
use mesa_domain::{
    AgentId, ArchetypePatchId, AuditId, Markdown, PatchStatus, Slug, Title, ValidationError,
    Version,
};
use mesa_store::{ArchetypeStore, ArchetypeVersionWrite, Created, PatchWrite, Result, StoreError};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::activity;
use crate::agents::{stale_or_missing, write_time};
use crate::error::{backend, map_err};
use crate::rows::{parse, ts};

#[derive(sqlx::FromRow)]
struct ArchetypeRow {
    slug: String,
    title: String,
    body: String,
    version: i64,
    created_at: i64,
}

fn decode_archetype(row: &ArchetypeRow) -> Result<Archetype> {
    Ok(Archetype {
        slug: parse("archetype", Slug::parse(&row.slug))?,
        title: parse("archetype", Title::parse(&row.title))?,
        body: parse("archetype", Markdown::parse(&row.body))?,
        version: row.version,
        created_at: ts(row.created_at),
    })
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    slug: String,
    version: i64,
    title: String,
    body: String,
    source: String,
    created_at: i64,
}

fn decode_version(row: &VersionRow) -> Result<ArchetypeVersion> {
    let source = ArchetypeSource::from_storage(&row.source).ok_or_else(|| StoreError::Corrupt {
        entity: "archetype_version",
        source: ValidationError::new("source", format!("unknown source {:?}", row.source)),
    })?;
    Ok(ArchetypeVersion {
        slug: parse("archetype_version", Slug::parse(&row.slug))?,
        version: row.version,
        title: parse("archetype_version", Title::parse(&row.title))?,
        body: parse("archetype_version", Markdown::parse(&row.body))?,
        source,
        created_at: ts(row.created_at),
    })
}

#[derive(sqlx::FromRow)]
struct PatchRow {
    id: String,
    archetype_slug: String,
    base_version: i64,
    proposed_body: String,
    rationale: String,
    proposed_by: Option<String>,
    audit_id: Option<String>,
    status: String,
    approval_id: Option<String>,
    created_at: i64,
}

macro_rules! patch_columns {
    () => {
        "id, archetype_slug, base_version, proposed_body, rationale, proposed_by, audit_id, \
         status, approval_id, created_at"
    };
}

fn decode_patch(row: &PatchRow) -> Result<ArchetypePatch> {
    const E: &str = "archetype_patch";
    Ok(ArchetypePatch {
        id: parse(E, ArchetypePatchId::parse(&row.id))?,
        archetype_slug: parse(E, Slug::parse(&row.archetype_slug))?,
        base_version: row.base_version,
        proposed_body: parse(E, Markdown::parse(&row.proposed_body))?,
        rationale: parse(E, Markdown::parse(&row.rationale))?,
        proposed_by: row
            .proposed_by
            .as_deref()
            .map(AgentId::parse)
            .transpose()
            .map_err(|source| StoreError::Corrupt { entity: E, source })?,
        audit_id: row
            .audit_id
            .as_deref()
            .map(AuditId::parse)
            .transpose()
            .map_err(|source| StoreError::Corrupt { entity: E, source })?,
        status: parse(E, PatchStatus::parse(&row.status))?,
        approval_id: row
            .approval_id
            .as_deref()
            .map(mesa_domain::ApprovalId::parse)
            .transpose()
            .map_err(|source| StoreError::Corrupt { entity: E, source })?,
        created_at: ts(row.created_at),
    })
}

async fn load_archetype(conn: &mut SqliteConnection, slug: &Slug) -> Result<Archetype> {
    let row: Option<ArchetypeRow> = sqlx::query_as(
        "SELECT slug, title, body, version, created_at FROM archetypes WHERE slug = $1",
    )
    .bind(slug.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    decode_archetype(&row.ok_or_else(|| StoreError::not_found("archetype", slug))?)
}

/// Marks `patch` approved (it must be a pending patch of `slug`) and supersedes the other
/// pending patches of `slug` written against versions older than `new_version`.
async fn approve_patch(
    conn: &mut SqliteConnection,
    patch: ArchetypePatchId,
    slug: &Slug,
    new_version: i64,
    at: i64,
) -> Result<()> {
    let id = patch.to_string();
    let done = sqlx::query(
        "UPDATE archetype_patches SET status = 'approved', updated_at = $1, version = version + 1 \
         WHERE id = $2 AND archetype_slug = $3 AND status = 'pending'",
    )
    .bind(at)
    .bind(&id)
    .bind(slug.as_str())
    .execute(&mut *conn)
    .await
    .map_err(map_err("archetype_patch", &id))?;
    if done.rows_affected() == 0 {
        let found: Option<(String, String)> =
            sqlx::query_as("SELECT archetype_slug, status FROM archetype_patches WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(backend)?;
        return Err(match found {
            None => StoreError::not_found("archetype_patch", &id),
            Some((other, _)) if other != slug.as_str() => StoreError::Conflict {
                what: format!("archetype patch {id} is for {other}, not {slug}"),
            },
            Some((_, status)) => StoreError::Conflict {
                what: format!("archetype patch {id} is {status}, not pending"),
            },
        });
    }
    sqlx::query(
        "UPDATE archetype_patches SET status = 'superseded', updated_at = $1, \
         version = version + 1 \
         WHERE archetype_slug = $2 AND status = 'pending' AND base_version < $3 AND id <> $4",
    )
    .bind(at)
    .bind(slug.as_str())
    .bind(new_version)
    .bind(&id)
    .execute(&mut *conn)
    .await
    .map_err(map_err("archetype_patch", &id))?;
    Ok(())
}

#[async_trait]
impl ArchetypeStore for SqliteStore {
    async fn write_archetype_version(&self, write: ArchetypeVersionWrite) -> Result<Archetype> {
        let ArchetypeVersionWrite {
            slug,
            title,
            body,
            source,
            expected_version,
            at,
            approve_patch: patch,
            activity,
        } = write;
        let at_ms = at.as_millis();
        let mut tx = self.write_tx().await?;
        let new_version = match expected_version {
            None => {
                sqlx::query(
                    "INSERT INTO archetypes (slug, title, body, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $4)",
                )
                .bind(slug.as_str())
                .bind(title.as_str())
                .bind(body.as_str())
                .bind(at_ms)
                .execute(&mut *tx)
                .await
                .map_err(map_err("archetype", &slug))?;
                1
            }
            Some(expected) => {
                let version: Option<i64> = sqlx::query_scalar(
                    "UPDATE archetypes SET title = $1, body = $2, version = version + 1, \
                     updated_at = $3 WHERE slug = $4 AND version = $5 RETURNING version",
                )
                .bind(title.as_str())
                .bind(body.as_str())
                .bind(at_ms)
                .bind(slug.as_str())
                .bind(expected)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err("archetype", &slug))?;
                match version {
                    Some(v) => v,
                    None => {
                        return Err(stale_or_missing(
                            &mut tx,
                            "SELECT version FROM archetypes WHERE slug = $1",
                            "archetype",
                            slug.as_str(),
                            Version(expected),
                        )
                        .await);
                    }
                }
            }
        };
        sqlx::query(
            "INSERT INTO archetype_versions (slug, version, title, body, source, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(slug.as_str())
        .bind(new_version)
        .bind(title.as_str())
        .bind(body.as_str())
        .bind(source.to_storage())
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err("archetype_version", &slug))?;
        if let Some(patch) = patch {
            approve_patch(&mut tx, patch, &slug, new_version, at_ms).await?;
        }
        let archetype = load_archetype(&mut tx, &slug).await?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(archetype)
    }

    async fn archetype(&self, slug: &Slug) -> Result<Archetype> {
        let mut conn = self.reader.acquire().await.map_err(backend)?;
        load_archetype(&mut conn, slug).await
    }

    async fn list_archetypes(&self) -> Result<Vec<Archetype>> {
        let rows: Vec<ArchetypeRow> = sqlx::query_as(
            "SELECT slug, title, body, version, created_at FROM archetypes ORDER BY slug",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_archetype).collect()
    }

    async fn archetype_versions(&self, slug: &Slug) -> Result<Vec<ArchetypeVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT slug, version, title, body, source, created_at FROM archetype_versions \
             WHERE slug = $1 ORDER BY version DESC",
        )
        .bind(slug.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        if rows.is_empty() {
            // Every archetype has version 1, so no versions means no archetype.
            return Err(StoreError::not_found("archetype", slug));
        }
        rows.iter().map(decode_version).collect()
    }

    async fn archetype_version(&self, slug: &Slug, version: i64) -> Result<ArchetypeVersion> {
        let row: Option<VersionRow> = sqlx::query_as(
            "SELECT slug, version, title, body, source, created_at FROM archetype_versions \
             WHERE slug = $1 AND version = $2",
        )
        .bind(slug.as_str())
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_version(&row.ok_or_else(|| StoreError::NotFound {
            entity: "archetype_version",
            id: format!("{slug}@{version}"),
        })?)
    }

    async fn create_patch(&self, patch: Created<ArchetypePatch>) -> Result<ArchetypePatch> {
        let Created { row: p, activity } = patch;
        let mut tx = self.write_tx().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT version FROM archetypes WHERE slug = $1")
                .bind(p.archetype_slug.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::not_found("archetype", &p.archetype_slug));
        }
        sqlx::query(
            "INSERT INTO archetype_patches (id, archetype_slug, base_version, proposed_body, \
             rationale, proposed_by, audit_id, status, approval_id, created_at, updated_at, \
             version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1)",
        )
        .bind(p.id.to_string())
        .bind(p.archetype_slug.as_str())
        .bind(p.base_version)
        .bind(p.proposed_body.as_str())
        .bind(p.rationale.as_str())
        .bind(p.proposed_by.map(|a| a.to_string()))
        .bind(p.audit_id.map(|a| a.to_string()))
        .bind(p.status.as_str())
        .bind(p.approval_id.map(|a| a.to_string()))
        .bind(p.created_at.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(map_err("archetype_patch", &p.id))?;
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(p)
    }

    async fn update_patch(&self, write: PatchWrite) -> Result<ArchetypePatch> {
        let PatchWrite {
            row: p,
            expected,
            activity,
        } = write;
        let id = p.id.to_string();
        let at = write_time(&activity, None);
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE archetype_patches SET base_version = $1, proposed_body = $2, rationale = $3, \
             proposed_by = $4, audit_id = $5, status = $6, approval_id = $7, updated_at = $8, \
             version = version + 1 WHERE id = $9 AND version = $10",
        )
        .bind(p.base_version)
        .bind(p.proposed_body.as_str())
        .bind(p.rationale.as_str())
        .bind(p.proposed_by.map(|a| a.to_string()))
        .bind(p.audit_id.map(|a| a.to_string()))
        .bind(p.status.as_str())
        .bind(p.approval_id.map(|a| a.to_string()))
        .bind(at)
        .bind(&id)
        .bind(expected.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err("archetype_patch", &id))?;
        if done.rows_affected() == 0 {
            return Err(stale_or_missing(
                &mut tx,
                "SELECT version FROM archetype_patches WHERE id = $1",
                "archetype_patch",
                &id,
                expected,
            )
            .await);
        }
        activity::append(&mut tx, activity).await?;
        tx.commit().await.map_err(backend)?;
        Ok(p)
    }

    async fn patch(&self, id: ArchetypePatchId) -> Result<ArchetypePatch> {
        let row: Option<PatchRow> = sqlx::query_as(concat!(
            "SELECT ",
            patch_columns!(),
            " FROM archetype_patches WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        decode_patch(&row.ok_or_else(|| StoreError::not_found("archetype_patch", &id))?)
    }

    async fn list_patches(&self, status: Option<PatchStatus>) -> Result<Vec<ArchetypePatch>> {
        let rows: Vec<PatchRow> = sqlx::query_as(concat!(
            "SELECT ",
            patch_columns!(),
            " FROM archetype_patches WHERE ($1 IS NULL OR status = $1) \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(status.map(PatchStatus::as_str))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter().map(decode_patch).collect()
    }
}
