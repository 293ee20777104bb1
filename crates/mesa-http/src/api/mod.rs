//! The JSON API under `/api/v1` (SPEC §9) and its OpenAPI document at `/api/openapi.json`.

pub(crate) mod agents;
pub(crate) mod approvals;
pub(crate) mod archetypes;
pub(crate) mod blocks;
pub mod dto;
pub mod error;
pub(crate) mod evaluation;
pub mod events;
pub mod extract;
pub(crate) mod inbox;
pub(crate) mod issues;
pub(crate) mod issues_extra;
pub(crate) mod keys;
pub(crate) mod labels;
pub(crate) mod learning;
pub(crate) mod ops;
pub mod rights;
pub(crate) mod runs;
pub(crate) mod usage;
pub(crate) mod webhooks_in;
pub(crate) mod webhooks_out;
pub(crate) mod wiki;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Mesa API", description = "The REST API of Mesa (SPEC §9)."),
    components(schemas(dto::IssueDto, dto::CommentDto, dto::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The API routes (nested under `/api/v1`, behind the rights middleware) and
/// `/api/openapi.json`.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let (v1, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Merged, not nested apart: `/issues/{key}` has methods in both, and only a merge
        // keeps every operation of a path in the OpenAPI document.
        .nest("/api/v1", issues::routes().merge(issues_extra::routes()))
        .nest("/api/v1", blocks::routes())
        .nest("/api/v1", approvals::routes())
        .nest("/api/v1", archetypes::routes())
        .nest("/api/v1", inbox::routes())
        .nest("/api/v1", agents::routes())
        .nest("/api/v1", keys::routes())
        .nest("/api/v1", labels::routes())
        .nest("/api/v1", usage::routes())
        .nest("/api/v1", wiki::routes())
        .nest("/api/v1", learning::routes())
        // `/audits`: GET in ops, POST in runs (one path, so merged).
        .nest("/api/v1", ops::routes().merge(runs::routes()))
        .nest("/api/v1", evaluation::routes())
        .nest("/api/v1", events::routes())
        .nest("/api/v1", webhooks_in::routes())
        .nest("/api/v1", webhooks_out::routes())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    declare_errors(&mut doc);
    let json = std::sync::Arc::new(doc.to_json().unwrap_or_else(|_| "{}".to_owned()));
    let guard = rights::Guard::new(state.mesa.clone());
    v1.route_layer(axum::middleware::from_fn_with_state(guard, rights::enforce))
        .route(
            "/api/openapi.json",
            get(move || {
                let json = std::sync::Arc::clone(&json);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        json.as_ref().clone(),
                    )
                }
            }),
        )
}

/// Completes what every operation under `/api/v1` shares, so a handler's annotation lists only
/// its own outcomes: 401 (every route needs a bearer token), 400 `malformed_json` where a JSON
/// body is taken, and [`dto::ErrorBody`] as the body of every 4xx and 5xx response.
fn declare_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Content, Ref, RefOr, Response};
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let takes_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            responses
                .entry("401".to_owned())
                .or_insert_with(|| RefOr::T(Response::new("")));
            if takes_body {
                responses
                    .entry("400".to_owned())
                    .or_insert_with(|| RefOr::T(Response::new("")));
            }
            for (status, response) in responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                if response.description.is_empty() {
                    response.description = error_description(status).to_owned();
                }
                if response.content.is_empty() {
                    response.content.insert(
                        "application/json".to_owned(),
                        RefOr::T(Content::new(Some(Ref::from_schema_name("ErrorBody")))),
                    );
                }
            }
        }
    }
}

/// What an error status means across the API (SPEC §9.1, §9.2).
fn error_description(status: &str) -> &'static str {
    match status {
        "400" => "`malformed_json`: the body is not valid JSON",
        "401" => "`unauthenticated` (no bearer token) or `invalid_token`",
        "403" => "`forbidden`: the caller may not do this",
        "404" => "`not_found`",
        "409" => "`conflict`, `duplicate`, `checkout_conflict` or `illegal_transition`",
        "412" => "`version_conflict`: `If-Match` or `version` is not the current version",
        "413" => "`payload_too_large`",
        "422" => "`validation_failed`, naming the `field`",
        "429" => "`rate_limited`",
        _ => "an error",
    }
}
