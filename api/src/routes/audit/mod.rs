//! `/v1/audit/events` (the tenant's log in commit order) and
//! `/v1/requests/{request_id}` (everything one request caused).

pub mod dto;

use super::common::PageResponse;
use super::deliveries::dto::{AttemptResponse, DeliveryResponse};
use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dto::{AuditPageResponse, AuditQuery, TracePageQuery, TraceResponse};
use hookline_application::RequestId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/events", get(events))
        .route("/requests/{request_id}", get(trace))
        .route("/requests/{request_id}/events", get(trace_events))
        .route("/requests/{request_id}/deliveries", get(trace_deliveries))
        .route("/requests/{request_id}/attempts", get(trace_attempts))
}

fn request_id(raw: &str) -> ApiResult<RequestId> {
    Ok(RequestId::lookup("request_id", raw).map_err(hookline_application::AppError::from)?)
}

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
