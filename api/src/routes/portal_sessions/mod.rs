//! `/v1/portal-sessions`: signed, short-lived links to the console that a
//! tenant hands to its own customers; read one with its uses, revoke one.

pub mod dto;

use super::common::PageResponse;
use super::{no_content, written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::extract::OptionalJson;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{
    CreatePortalSessionRequest, ListPortalSessionsQuery, PortalSessionCreatedResponse,
    PortalSessionResponse, PortalSessionSummary,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, revoke))
}

fn link_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            "the portal session id is not valid (expected a UUID)",
        )
    })
}

/// Create a portal session
///
/// A signed link that opens the console for one of the tenant's own
/// customers, for `expires_in` seconds (default one hour), optionally
/// read-only and limited to some subscriptions. Every opening is recorded;
/// the link can be revoked. Its token is shown only in this answer.
#[utoipa::path(
    post,
    path = "/portal-sessions",
    operation_id = "create_portal_session",
    tag = "portal-sessions",
    request_body(content = Option<CreatePortalSessionRequest>, description = "Optional.",
        example = json!({"read_only": true, "expires_in": 900})),
    responses(
        (status = 201, description = "The link.", body = PortalSessionCreatedResponse,
            example = json!({"id": "01938f6e-5c1a-7b2e-9f00-3a1b2c3d4e5f",
                "url": "https://hooks.example.com/console/portal?token=hlp_AZOPblwaey6fADobLD1OX0sSxNgDT2a5rGh0mq0eyAJq6i3DdmB1nM4hNZ3ZwGkr",
                "expires_at": "2026-12-03T10:15:00Z", "read_only": true})),
        (status = 400, description = "- `validation_error`: `expires_in` is not 1–604800, or `subscription_filter` is empty, over 100, not UUIDs or names a subscription the tenant does not have"),
    )
)]
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

/// List portal sessions
///
/// The tenant's links that may still open, newest first: every link made
/// in the last 7 days (the longest a link lives), with its status. Older
/// links have all expired; each stays readable by its id.
#[utoipa::path(
    get,
    path = "/portal-sessions",
    operation_id = "list_portal_sessions",
    tag = "portal-sessions",
    params(ListPortalSessionsQuery),
    responses(
        (status = 200, description = "A page of links, newest first.", body = PageResponse<PortalSessionSummary>,
            example = json!({"data": [{"id": "01938f6e-5c1a-7b2e-9f00-3a1b2c3d4e5f", "status": "active",
                "read_only": true, "created_at": "2026-12-03T10:00:00Z",
                "expires_at": "2026-12-03T10:15:00Z", "uses": 1}]})),
        (status = 400, description = "- `validation_error`: `limit` or `cursor` is malformed\n- `invalid_query`: an unknown or malformed query parameter"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListPortalSessionsQuery>,
) -> ApiResult<Response> {
    let page = state
        .portal
        .list(caller.tenant_id, query.into_page()?)
        .await?;
    let now = state.clock.now();
    Ok(Json(PageResponse::from_page(page, |v| {
        PortalSessionSummary::of(v, now)
    }))
    .into_response())
}

/// Read a portal session
///
/// The link and every opening of it.
#[utoipa::path(
    get,
    path = "/portal-sessions/{id}",
    operation_id = "get_portal_session",
    tag = "portal-sessions",
    params(("id" = Uuid, Path, description = "The link's id.")),
    responses(
        (status = 200, description = "The link and its uses.", body = PortalSessionResponse,
            example = json!({"id": "01938f6e-5c1a-7b2e-9f00-3a1b2c3d4e5f", "status": "active", "read_only": true,
                "created_at": "2026-12-03T10:00:00Z", "expires_at": "2026-12-03T10:15:00Z",
                "uses": [{"opened_at": "2026-12-03T10:02:11Z", "request_id": "01938f70-1d2e-7c3f-8a4b-5c6d7e8f9a0b"}]})),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: the tenant has no such portal session"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = state.portal.get(caller.tenant_id, link_id(&id)?).await?;
    Ok(Json(PortalSessionResponse::of(view, state.clock.now())).into_response())
}

/// Revoke a portal session
///
/// The link stops opening, and console sessions opened with it end at
/// their next request. Revoking twice is the same as once.
#[utoipa::path(
    delete,
    path = "/portal-sessions/{id}",
    operation_id = "revoke_portal_session",
    tag = "portal-sessions",
    params(("id" = Uuid, Path, description = "The link's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: the tenant has no such portal session"),
        (status = 409, description = "- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(no_content(state.portal.revoke(&ctx, link_id(&id)?).await?))
}
