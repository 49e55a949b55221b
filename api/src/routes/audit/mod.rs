//! `/v1/audit/events` (the tenant's log in commit order) and
//! `/v1/requests/{request_id}` (everything one request caused).

pub mod dto;

use super::common::PageResponse;
use super::deliveries::dto::{AttemptResponse, DeliveryResponse};
use super::openapi::examples as ex;
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{AuditPageResponse, AuditQuery, TracePageQuery, TraceResponse};
use hookline_application::RequestId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(trace))
        .routes(routes!(trace_events))
        .routes(routes!(trace_deliveries))
        .routes(routes!(trace_attempts))
}

fn request_id(raw: &str) -> ApiResult<RequestId> {
    Ok(RequestId::lookup("request_id", raw).map_err(hookline_application::AppError::from)?)
}

/// Read the audit log
///
/// The tenant's events in commit order, as stored (sealed values stay
/// sealed; webhook bodies left out unless `include_payload`).
#[utoipa::path(
    get,
    path = "/audit/events",
    operation_id = "list_audit_events",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the log.", body = AuditPageResponse,
            example = json!(ex::audit_page())),
        (status = 400, description = "- `validation_error`: `after`, `limit`, `aggregate_type` or `event_type` is malformed"),
    )
)]
async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let page = state
        .audit
        .page(caller.tenant_id, query.into_request()?)
        .await?;
    Ok(Json(AuditPageResponse::from(page)).into_response())
}

/// Trace a request
///
/// Everything one request id caused: how much, then the first page of its
/// events, deliveries and attempts (webhook bodies left out); `next` says
/// where each part continues.
#[utoipa::path(
    get,
    path = "/requests/{request_id}",
    operation_id = "get_request_trace",
    tag = "audit",
    params(
        ("request_id" = String, Path, pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$",
        description = "The request id (`X-Request-Id` of the request, given or generated): 1–128 characters from letters, digits and `-_.:/+=@` (`/` %-encoded)."),
    ),
    responses(
        (status = 200, description = "The trace.", body = TraceResponse, links(
                ("ListRequestEvents" = (operation_id = "list_request_events",
                    parameters(("request_id" = "$response.body#/request_id")))),
                ("ListRequestDeliveries" = (operation_id = "list_request_deliveries",
                    parameters(("request_id" = "$response.body#/request_id")))),
                ("ListRequestAttempts" = (operation_id = "list_request_attempts",
                    parameters(("request_id" = "$response.body#/request_id")))),
            ),
            example = json!(ex::trace())),
        (status = 400, description = "- `validation_error`: `request_id` is not a request id"),
        (status = 404, description = "- `not_found`: this tenant has no events of that request"),
    )
)]
async fn trace(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let trace = state
        .audit
        .trace(caller.tenant_id, &request_id(&raw)?)
        .await?;
    Ok(Json(TraceResponse::from(trace)).into_response())
}

/// A page of a request's events
#[utoipa::path(
    get,
    path = "/requests/{request_id}/events",
    operation_id = "list_request_events",
    tag = "audit",
    params(
        ("request_id" = String, Path, pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$",
        description = "The request id (`X-Request-Id` of the request, given or generated): 1–128 characters from letters, digits and `-_.:/+=@` (`/` %-encoded)."),
        TracePageQuery,
    ),
    responses(
        (status = 200, description = "A page of the events, in commit order.",
            body = AuditPageResponse, example = json!(ex::audit_page())),
        (status = 400, description = "- `validation_error`: `request_id` is not a request id, `after` is not a position, or `limit` is out of range"),
    )
)]
async fn trace_events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<TracePageQuery>,
) -> ApiResult<Response> {
    let page = state
        .audit
        .trace_events(caller.tenant_id, &request_id(&raw)?, &query.into_page()?)
        .await?;
    Ok(Json(AuditPageResponse::from(page)).into_response())
}

/// A page of a request's deliveries
#[utoipa::path(
    get,
    path = "/requests/{request_id}/deliveries",
    operation_id = "list_request_deliveries",
    tag = "audit",
    params(
        ("request_id" = String, Path, pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$",
        description = "The request id (`X-Request-Id` of the request, given or generated): 1–128 characters from letters, digits and `-_.:/+=@` (`/` %-encoded)."),
        TracePageQuery,
    ),
    responses(
        (status = 200, description = "A page of the deliveries its events touch, by id.",
            body = PageResponse<DeliveryResponse>, example = json!(ex::trace_deliveries())),
        (status = 400, description = "- `validation_error`: `request_id` is not a request id, `cursor` is malformed, or `limit` is out of range"),
    )
)]
async fn trace_deliveries(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<TracePageQuery>,
) -> ApiResult<Response> {
    let page = state
        .audit
        .trace_deliveries(caller.tenant_id, &request_id(&raw)?, &query.into_page()?)
        .await?;
    Ok(Json(PageResponse::from_page(page, DeliveryResponse::from)).into_response())
}

/// A page of a request's attempts
#[utoipa::path(
    get,
    path = "/requests/{request_id}/attempts",
    operation_id = "list_request_attempts",
    tag = "audit",
    params(
        ("request_id" = String, Path, pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$",
        description = "The request id (`X-Request-Id` of the request, given or generated): 1–128 characters from letters, digits and `-_.:/+=@` (`/` %-encoded)."),
        TracePageQuery,
    ),
    responses(
        (status = 200, description = "A page of the attempts it caused or triggered, by start time.",
            body = PageResponse<AttemptResponse>, example = json!(ex::trace_attempts())),
        (status = 400, description = "- `validation_error`: `request_id` is not a request id, `cursor` is malformed, or `limit` is out of range"),
    )
)]
async fn trace_attempts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<TracePageQuery>,
) -> ApiResult<Response> {
    let page = state
        .audit
        .trace_attempts(caller.tenant_id, &request_id(&raw)?, &query.into_page()?)
        .await?;
    Ok(Json(PageResponse::from_page(page, AttemptResponse::from)).into_response())
}
