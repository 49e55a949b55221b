//! `idempotency-key` on every POST of `/api/v1` (the SDKs send one with
//! each POST and keep it across their retries), as on `/v1`
//! ([`crate::routes::idempotent`]), with refusals in Svix's shapes. Keys
//! are per credential and per path and query, as in Svix.

use super::error::SvixError;
use super::Organisation;
use crate::routes::idempotent::{self, Refusals};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hookline_application::AppError;
use hookline_domain::ValidationError;

struct Svix;

impl Refusals for Svix {
    /// Creating a message (`POST /api/v1/app/{app_id}/msg`) publishes with
    /// the key, which the log keeps.
    fn keeps_keys_in_the_log(path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        matches!(parts.as_slice(), ["", "api", "v1", "app", _, "msg"])
    }

    fn bad_key(_: ValidationError) -> Response {
        SvixError::bad_request(
            "invalid_idempotency_key",
            "the idempotency-key header must be 1–255 visible ASCII characters",
        )
        .into_response()
    }

    fn too_large() -> Response {
        SvixError::payload_too_large("Request payload is too large.").into_response()
    }

    fn unreadable() -> Response {
        SvixError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the answer could not be read",
        )
        .into_response()
    }

    fn failed(e: AppError) -> Response {
        SvixError::from(e).into_response()
    }
}

pub async fn remember(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(org) = req.extensions().get::<Organisation>().cloned() else {
        return SvixError::unauthorized("authentication required").into_response();
    };
    idempotent::run::<Svix>(
        &state,
        &org.credential,
        state.svix_max_body_bytes,
        req,
        next,
    )
    .await
}
