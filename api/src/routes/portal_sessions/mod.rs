//! `/v1/portal-sessions`: signed, short-lived links to the console that a
//! tenant hands to its own customers; read one with its uses, revoke one.

pub mod dto;

use super::{no_content, written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::OptionalJson;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dto::{CreatePortalSessionRequest, PortalSessionCreatedResponse, PortalSessionResponse};
use uuid::Uuid;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal-sessions", post(create))
        .route("/portal-sessions/{id}", get(read).delete(revoke))
}

fn link_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            "the portal session id is not valid (expected a UUID)",
        )
    })
}

async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    OptionalJson(input): OptionalJson<CreatePortalSessionRequest>,
) -> ApiResult<Response> {
    let issued = state.portal.issue(&ctx, input.into_input()?).await?;
    let console = state.console.clone();
    written(
        StatusCode::CREATED,
        issued.map(|i| PortalSessionCreatedResponse {
            url: crate::console::portal_url(&console, &headers, &i.token),
            id: i.id,
            expires_at: i.expires_at,
            read_only: i.read_only,
            subscription_filter: i.subscription_filter,
        }),
    )
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = state.portal.get(caller.tenant_id, link_id(&id)?).await?;
    Ok(Json(PortalSessionResponse::from(view)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(no_content(state.portal.revoke(&ctx, link_id(&id)?).await?))
}
