//! `/healthz` (the process answers) and `/readyz` (the database answers and
//! every projection has caught up since start).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Healthy {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// The database answers and every projection has caught up since start.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    #[schema(value_type = String, pattern = "^ready$")]
    status: &'static str,
    /// Each projection's position in this process.
    projections: BTreeMap<String, i64>,
}

/// Liveness
///
/// The process answers (no dependency is checked).
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "check_health",
    tag = "service",
    responses(
        (status = 200, description = "Alive.", body = Healthy, example = json!({"status": "ok"})),
    )
)]
async fn healthz() -> Json<Healthy> {
    Json(Healthy { status: "ok" })
}

/// Readiness
///
/// The database answers and every projection of this process has caught
/// up with the log since start.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "check_readiness",
    tag = "service",
    responses(
        (status = 200, description = "Ready to serve.", body = Ready, example = json!({
            "status": "ready",
            "projections": {"deliveries": 1043, "subscriptions": 1042, "queue": 1043}
        })),
        (status = 503, description = "- `not_ready`: the database does not answer, or a projection has not caught up yet"),
    )
)]
async fn readyz(State(state): State<AppState>) -> ApiResult<Response> {
    let projections =
        state.health.ready().await.map_err(|reason| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason)
        })?;
    Ok(Json(Ready {
        status: "ready",
        projections,
    })
    .into_response())
}
