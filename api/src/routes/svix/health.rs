//! `GET|HEAD /api/v1/health` (the database answers and the read models
//! are live) and `/api/v1/health/ping` (the process answers), without
//! authentication, as in Svix.

use super::error::SvixError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ping))
}

/// Health
///
/// 204 when the database answers and the read models are live.
#[utoipa::path(
    get,
    path = "/api/v1/health",
    operation_id = "v1.health.get",
    tag = "Health",
    responses(
        (status = 204, description = "Healthy."),
        (status = 503, description = "- `unhealthy`: the database or a read model is not ready"),
    )
)]
async fn health(State(state): State<AppState>) -> Result<StatusCode, SvixError> {
    state
        .health
        .ready()
        .await
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|reason| SvixError::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", reason))
}

/// Ping
///
/// 204 while the process answers.
#[utoipa::path(
    get,
    path = "/api/v1/health/ping",
    operation_id = "v1.health.ping",
    tag = "Health",
    responses((status = 204, description = "The process answers."))
)]
async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
