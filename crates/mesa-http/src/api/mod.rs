//! The JSON API under `/api/v1` (SPEC §9) and its OpenAPI document at `/api/openapi.json`.

mod agents;
mod approvals;
mod archetypes;
mod blocks;
pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
mod inbox;
mod issues;
mod issues_extra;
mod keys;
mod labels;
mod learning;
mod ops;
pub mod rights;
mod usage;
mod wiki;

use axum::Router;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Mesa API", description = "The REST API of Mesa (SPEC §9)."),
    components(schemas(dto::IssueDto, dto::CommentDto)),
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
        .nest("/api/v1", ops::routes())
        .nest("/api/v1", events::routes())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
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
