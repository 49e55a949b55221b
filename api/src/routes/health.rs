//! `/healthz` (the process answers) and `/readyz` (the database answers and
//! every projection has caught up since start).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::BTreeMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Debug, Serialize)]
struct Healthy {
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct Ready {
    status: &'static str,
    /// Each projection's position in this process.
    projections: BTreeMap<String, i64>,
}

async fn healthz() -> Json<Healthy> {
    Json(Healthy { status: "ok" })
}

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
