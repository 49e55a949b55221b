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
    /// How far behind first attempts are (absent when it could not be read
    /// just now).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_backlog: Option<DeliveryBacklogStatus>,
}

/// The delivery backlog against its bound: while `behind` is over `bound`,
/// publishing waits and then answers `503 backlog_full`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBacklogStatus {
    /// Log positions the first-attempt cursor is behind the log's head
    /// (about two per delivery of a one-subscription publish).
    behind: i64,
    /// `HOOKLINE_DELIVERY_BACKLOG_BOUND`.
    bound: i64,
    /// `behind` is over `bound`: publishing is being pushed back.
    full: bool,
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
            "projections": {"deliveries": 1043, "subscriptions": 1042, "tenants": 1040},
            "delivery_backlog": {"behind": 12, "bound": 10000, "full": false}
        })),
        (status = 503, description = "- `not_ready`: the database does not answer, or a projection has not caught up yet"),
    )
)]
async fn readyz(State(state): State<AppState>) -> ApiResult<Response> {
    let projections =
        state.health.ready().await.map_err(|reason| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", reason)
        })?;
    // Readiness does not depend on it: a full backlog is load, which
    // publishing pushes back on, not a reason to take the process out.
    let delivery_backlog = match state.publish.backlog().await {
        Ok(level) => level.map(|l| DeliveryBacklogStatus {
            behind: l.behind,
            bound: l.bound,
            full: l.behind > l.bound,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "the delivery backlog could not be read");
            None
        }
    };
    Ok(Json(Ready {
        status: "ready",
        projections,
        delivery_backlog,
    })
    .into_response())
}
