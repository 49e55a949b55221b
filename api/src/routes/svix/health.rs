//! `GET|HEAD /api/v1/health` (the database answers and the read models
//! are live) and `/api/v1/health/ping` (the process answers), without
//! authentication, as in Svix.

use super::error::SvixError;
use super::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

pub fn routes() -> Routes {
    vec![
        ("/api/v1/health", get(health)),
        ("/api/v1/health/ping", get(ping)),
    ]
}

async fn health(State(state): State<AppState>) -> Result<StatusCode, SvixError> {
    state
        .health
        .ready()
        .await
        .map(|_| StatusCode::NO_CONTENT)
        .map_err(|reason| SvixError::new(StatusCode::SERVICE_UNAVAILABLE, "unhealthy", reason))
}

async fn ping() -> StatusCode {
    StatusCode::NO_CONTENT
}
