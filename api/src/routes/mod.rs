//! The router: health, admin, and the authenticated `/v1` API. Each
//! resource has its routes in `mod.rs` and its request and response types
//! in `dto.rs`; handlers turn a request into a typed command or query, call
//! the application, and turn the result into a response.

pub mod audit;
pub mod common;
pub mod deliveries;
pub mod event_types;
pub mod health;
pub mod operators;
pub mod subscriptions;
pub mod svix;
pub mod tenants;

use crate::error::{ApiError, ApiResult};
use crate::middleware::{authenticate, request_context, Caller, CurrentRequestId, RequestLimits};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hookline_application::commands::Written;
use hookline_application::{Actor, CommandContext};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;

/// Set on write responses when the read models had not caught up within the
/// wait (the write itself is durable).
pub const CONSISTENCY_HEADER: &str = "x-hookline-consistency";

pub fn router(state: AppState, limits: RequestLimits) -> Router {
    let v1 = Router::new()
        .merge(subscriptions::router())
        .merge(deliveries::router())
        .merge(event_types::router())
        .merge(audit::router())
        .merge(tenants::own_router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .nest("/v1", v1)
        .merge(
            tenants::admin_router()
                .merge(operators::admin_router())
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    tenants::admin_only,
                )),
        )
        .merge(health::router())
        .merge(svix::router(&state))
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            request_context,
        ))
        .with_state(state)
}

/// The command context of an authenticated request.
#[derive(Debug, Clone)]
pub struct Ctx(pub CommandContext);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Caller(principal) = Caller::from_request_parts(parts, state).await?;
        let CurrentRequestId(request_id) =
            CurrentRequestId::from_request_parts(parts, state).await?;
        Ok(Self(CommandContext {
            request_id,
            tenant_id: principal.tenant_id,
            actor: Actor::ApiKey(principal.key_id),
        }))
    }
}

/// A write's response: the value as JSON, and the consistency header when
/// the read models lag.
pub fn written<T: Serialize>(status: StatusCode, written: Written<T>) -> ApiResult<Response> {
    let mut response = (status, axum::Json(written.value)).into_response();
    if !written.consistent {
        mark_pending(&mut response);
    }
    Ok(response)
}

/// A write answered without a body (204), with the consistency header
/// when the read models lag.
pub fn no_content(written: Written<()>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if !written.consistent {
        mark_pending(&mut response);
    }
    response
}

fn mark_pending(response: &mut Response) {
    response
        .headers_mut()
        .insert(CONSISTENCY_HEADER, HeaderValue::from_static("pending"));
}
