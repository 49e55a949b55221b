//! `/v1/audit/events` (the tenant's log in commit order) and
//! `/v1/requests/{request_id}` (everything one request caused).

use crate::error::ApiResult;
use crate::extract::ApiQuery;
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hookline_application::audit::AuditParams;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/events", get(events))
        .route("/requests/{request_id}", get(trace))
}

async fn events(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> ApiResult<Response> {
    Ok(Json(state.audit.page(caller.tenant_id, params).await?).into_response())
}

async fn trace(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(request_id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(state.audit.trace(caller.tenant_id, &request_id).await?).into_response())
}
