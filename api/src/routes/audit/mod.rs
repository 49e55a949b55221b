//! `/v1/audit/events` (the tenant's log in commit order) and
//! `/v1/requests/{request_id}` (everything one request caused).

pub mod dto;

use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dto::{AuditPageResponse, AuditQuery, TraceResponse};
use hookline_application::RequestId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/events", get(events))
        .route("/requests/{request_id}", get(trace))
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
    Path(request_id): Path<String>,
) -> ApiResult<Response> {
    let request_id = RequestId::lookup("request_id", &request_id)
        .map_err(hookline_application::AppError::from)?;
    let trace = state.audit.trace(caller.tenant_id, &request_id).await?;
    Ok(Json(TraceResponse::from(trace)).into_response())
}
