//! `/approvals`: list, read, request, resolve (SPEC §4.2, §9.3).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesa_core::domain::entity::{Approval, Approver, Requester, Subject};
use mesa_core::domain::{
    AgentId, ApprovalDecision, ApprovalId, ApprovalKind, ApprovalStatus, Markdown, Title,
};
use mesa_core::store::PageRequest;
use mesa_core::{Mesa, NewApproval, Principal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{Page, time};
use super::error::ApiError;
use super::extract::{Auth, Json, Query};
use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(resolve))
}

/// Agent ids to slugs, for responses that give slugs alongside ids.
pub(crate) struct Slugs(HashMap<AgentId, String>);

impl Slugs {
    /// The current roster's slugs.
    pub(crate) async fn load(mesa: &Mesa) -> Result<Self, ApiError> {
        Ok(Slugs(
            mesa.agents()
                .await?
                .into_iter()
                .map(|a| (a.id, a.slug.to_string()))
                .collect(),
        ))
    }

    /// The slug of `id` (its id text if the agent is gone).
    pub(crate) fn of(&self, id: AgentId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }
}

/// An approval (SPEC §1 Approval).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ApprovalDto {
    /// UUID.
    pub(crate) id: String,
    /// work_block_activation, work_block_ship, archetype_patch, agent_hire, budget_change,
    /// destructive_action, other.
    pub(crate) kind: String,
    /// Title.
    pub(crate) title: String,
    /// Markdown.
    pub(crate) body: String,
    /// The requesting agent's slug, or `board`.
    pub(crate) requested_by: String,
    /// The requesting agent's id (null for the board).
    pub(crate) requested_by_id: Option<String>,
    /// The deciding agent's slug, or `board`.
    pub(crate) approver: String,
    /// The deciding agent's id (null for the board).
    pub(crate) approver_id: Option<String>,
    /// Subject entity type (`work_block`, `archetype_patch`, ...).
    pub(crate) subject_type: Option<String>,
    /// Subject id or key.
    pub(crate) subject_id: Option<String>,
    /// Kind-specific data.
    #[schema(value_type = Object)]
    pub(crate) payload: serde_json::Value,
    /// pending, approved, rejected, expired, cancelled.
    pub(crate) status: String,
    /// The decider's comment.
    pub(crate) decision_comment: Option<String>,
    /// Actor string of the decider.
    pub(crate) decided_by: Option<String>,
    /// When decided.
    pub(crate) decided_at: Option<String>,
    /// When it lapses if undecided.
    pub(crate) expires_at: Option<String>,
    /// Creation time.
    pub(crate) created_at: String,
    /// Optimistic-concurrency version.
    pub(crate) version: i64,
}

impl ApprovalDto {
    pub(crate) fn new(a: &Approval, slugs: &Slugs) -> Self {
        let (requested_by, requested_by_id) = match a.requested_by {
            Requester::Board => ("board".to_owned(), None),
            Requester::Agent(id) => (slugs.of(id), Some(id.to_string())),
        };
        let (approver, approver_id) = match a.approver {
            Approver::Board => ("board".to_owned(), None),
            Approver::Agent(id) => (slugs.of(id), Some(id.to_string())),
        };
        ApprovalDto {
            id: a.id.to_string(),
            kind: a.kind.as_str().to_owned(),
            title: a.title.to_string(),
            body: a.body.to_string(),
            requested_by,
            requested_by_id,
            approver,
            approver_id,
            subject_type: a.subject.as_ref().map(|s| s.entity_type.clone()),
            subject_id: a.subject.as_ref().map(|s| s.entity_id.clone()),
            payload: a.payload.clone(),
            status: a.status.as_str().to_owned(),
            decision_comment: a.decision_comment.clone(),
            decided_by: a.decided_by.clone(),
            decided_at: a.decided_at.map(time),
            expires_at: a.expires_at.map(time),
            created_at: time(a.created_at),
            version: a.version.0,
        }
    }
}

/// One approval as a JSON response.
pub(crate) async fn approval_json(mesa: &Mesa, a: &Approval) -> Result<ApprovalDto, ApiError> {
    Ok(ApprovalDto::new(a, &Slugs::load(mesa).await?))
}

fn approval_id(text: &str) -> Result<ApprovalId, ApiError> {
    ApprovalId::parse(text).map_err(|e| ApiError::invalid("id", e.message))
}

/// Filters of `GET /approvals`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// pending, approved, rejected, expired or cancelled.
    status: Option<String>,
    /// `me`, `board`, or an agent's slug or id.
    approver: Option<String>,
    /// Page size (default 50, at most 500).
    limit: Option<u32>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

async fn approver_of(mesa: &Mesa, p: &Principal, text: &str) -> Result<Approver, ApiError> {
    Ok(match text {
        "me" => match p.actor.agent_id() {
            Some(id) => Approver::Agent(id),
            None => Approver::Board,
        },
        "board" => Approver::Board,
        other => Approver::Agent(mesa.resolve_agent("approver", other).await?.id),
    })
}

/// List approvals, pending first.
#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ListQuery),
    responses((status = 200, body = Page<ApprovalDto>), (status = 401), (status = 422)))]
async fn list(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| ApprovalStatus::parse(s).map_err(|e| ApiError::invalid("status", e.message)))
        .transpose()?;
    let approver = match q.approver.as_deref() {
        Some(a) => Some(approver_of(&mesa, &p, a).await?),
        None => None,
    };
    let page = mesa
        .approvals_for(status, approver, &PageRequest::new(q.limit, q.cursor))
        .await?;
    let slugs = Slugs::load(&mesa).await?;
    Ok(axum::Json(Page {
        items: page
            .items
            .iter()
            .map(|a| ApprovalDto::new(a, &slugs))
            .collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// Read an approval.
#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, body = ApprovalDto), (status = 401), (status = 404), (status = 422)))]
async fn show(
    State(mesa): State<Mesa>,
    Auth(_p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let a = mesa.approval(approval_id(&id)?).await?;
    Ok(axum::Json(approval_json(&mesa, &a).await?).into_response())
}

/// `POST /approvals` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApprovalBody {
    /// The kind of decision.
    kind: String,
    /// 1..200 characters.
    title: String,
    /// Markdown explanation.
    body: String,
    /// Subject entity type (with `subject_id`).
    subject_type: Option<String>,
    /// Subject id or key (with `subject_type`).
    subject_id: Option<String>,
    /// Kind-specific data; required for agent_hire and budget_change.
    #[schema(value_type = Option<Object>)]
    payload: Option<serde_json::Value>,
}

/// Request an approval. Structural kinds go to the board; others up the requester's chain.
#[utoipa::path(post, path = "/approvals", tag = "approvals", request_body = CreateApprovalBody,
    responses((status = 201, body = ApprovalDto), (status = 401), (status = 422)))]
async fn create(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Json(b): Json<CreateApprovalBody>,
) -> Result<Response, ApiError> {
    let invalid = |e: mesa_core::domain::ValidationError| ApiError::invalid(&e.field, e.message);
    let kind = ApprovalKind::parse(&b.kind).map_err(invalid)?;
    let title = Title::parse(&b.title).map_err(invalid)?;
    let body = Markdown::parse_field("body", &b.body).map_err(invalid)?;
    let subject = match (b.subject_type, b.subject_id) {
        (None, None) => None,
        (Some(t), Some(i)) if !t.trim().is_empty() && !i.trim().is_empty() => Some(Subject {
            entity_type: t.trim().to_owned(),
            entity_id: i.trim().to_owned(),
        }),
        (Some(_), _) => {
            return Err(ApiError::invalid(
                "subject_id",
                "subject_id is required with subject_type",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
                "subject_type",
                "subject_type is required with subject_id",
            ));
        }
    };
    let payload = b.payload.unwrap_or_else(|| serde_json::json!({}));
    if !payload.is_object() {
        return Err(ApiError::invalid(
            "payload",
            "payload must be a JSON object",
        ));
    }
    let approval = mesa
        .request_approval(
            &p.actor,
            NewApproval {
                kind,
                title,
                body,
                subject,
                payload,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(approval_json(&mesa, &approval).await?),
    )
        .into_response())
}

/// `POST /approvals/{id}/resolve` body; `{"status": "approved"|"rejected"}` is accepted as an
/// alias of `decision` (SPEC §9.5).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveApprovalBody {
    /// approve or reject.
    decision: Option<String>,
    /// Alias: approved or rejected.
    status: Option<String>,
    /// The decider's comment.
    comment: Option<String>,
}

/// Resolve an approval and carry out its effect. Resolving one that is not pending is 409.
#[utoipa::path(post, path = "/approvals/{id}/resolve", tag = "approvals", params(("id" = String, Path)), request_body = ResolveApprovalBody,
    responses((status = 200, body = ApprovalDto), (status = 403), (status = 404), (status = 409), (status = 422)))]
async fn resolve(
    State(mesa): State<Mesa>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Json(b): Json<ResolveApprovalBody>,
) -> Result<Response, ApiError> {
    let id = approval_id(&id)?;
    let decision = match (b.decision.as_deref(), b.status.as_deref()) {
        (Some(d), None) => {
            ApprovalDecision::parse(d).map_err(|e| ApiError::invalid("decision", e.message))?
        }
        (None, Some("approved")) => ApprovalDecision::Approve,
        (None, Some("rejected")) => ApprovalDecision::Reject,
        (None, Some(other)) => {
            return Err(ApiError::invalid(
                "status",
                format!("status must be approved or rejected, got {other:?}"),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "status",
                "give decision or status, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "decision",
                "decision is required (approve or reject)",
            ));
        }
    };
    let a = mesa
        .resolve_approval(&p.actor, id, decision, b.comment)
        .await?;
    Ok(axum::Json(approval_json(&mesa, &a).await?).into_response())
}
