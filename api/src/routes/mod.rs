//! The router: health, admin, and the authenticated `/v1` API. Each
//! resource has its routes in `mod.rs` and its request and response types
//! in `dto.rs`; handlers turn a request into a typed command or query, call
//! the application, and turn the result into a response.

pub mod audit;
pub mod common;
pub mod connectors;
pub mod deliveries;
pub mod docs_ui;
pub mod event_types;
pub mod health;
pub mod idempotent;
pub mod inbound;
pub mod inflow;
pub mod metrics;
pub mod openapi;
pub mod operators;
pub mod portal_sessions;
pub mod shapes;
pub mod sources;
pub mod subscriptions;
pub mod svix;
pub mod tenants;

use crate::error::{ApiError, ApiResult};
use crate::middleware::{
    authenticate, request_context, Caller, CurrentRequestId, RequestLimits, RequestScope,
};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use hookline_application::commands::Written;
use hookline_application::{Actor, CommandContext};
use openapi::Guard;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Set on write responses when the read models had not caught up within the
/// wait (the write itself is durable).
pub const CONSISTENCY_HEADER: &str = "x-hookline-consistency";

type Layered = fn(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>;

/// Every route with its documentation: `/v1` behind `guard_v1`, `/admin`
/// behind `guard_admin`, the health routes and the document public. The
/// returned document is the one the routes describe, before [`openapi::finish`].
fn routes(
    guard_v1: impl Fn(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
    guard_admin: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut v1 = OpenApiRouter::new()
        .merge(subscriptions::router())
        .merge(deliveries::router())
        .merge(event_types::router())
        .merge(audit::router())
        .merge(tenants::own_router())
        .merge(portal_sessions::router())
        .merge(sources::router())
        .merge(connectors::router());
    openapi::guard(v1.get_openapi_mut(), Guard::TenantKey);
    // InFlow's subscription API: the tenant's key, outside `/v1`.
    let mut inflow = inflow::router();
    openapi::guard(inflow.get_openapi_mut(), Guard::TenantKey);
    let mut admin = tenants::admin_router().merge(operators::admin_router());
    openapi::guard(admin.get_openapi_mut(), Guard::AdminToken);
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/v1", guard_v1(v1))
        .merge(guard_v1(inflow))
        .merge(guard_admin(admin))
        .merge(health::router())
        .merge(inbound::router())
        .merge(docs_ui::router())
        .merge(metrics::router())
        .routes(routes!(openapi::serve))
        .split_for_parts()
}

/// The OpenAPI document of [`router`], complete.
pub fn document() -> utoipa::openapi::OpenApi {
    let unguarded: Layered = |r| r;
    let (_, mut api) = routes(unguarded, unguarded);
    openapi::finish(&mut api);
    api
}

/// The whole HTTP surface.
///
/// # Errors
/// When the OpenAPI document cannot be serialised.
pub fn router(state: AppState, limits: RequestLimits) -> Result<Router, serde_json::Error> {
    let (router, mut api) = routes(
        |v1| {
            v1.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                idempotent::remember_v1,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                authenticate,
            ))
        },
        |admin| {
            admin.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                tenants::admin_only,
            ))
        },
    );
    let router = router.route_layer(axum::middleware::from_fn_with_state(
        shapes::Shapes::of(&api),
        shapes::refuse_unexpected,
    ));
    openapi::finish(&mut api);
    let document = openapi::Document(openapi::to_json(&api)?);
    let svix = svix::router(&state)?;
    let scope = RequestScope {
        limits,
        metrics: state.metrics.clone(),
        finishing: state.finishing.clone(),
    };
    let app = router
        .merge(svix)
        .layer(Extension(document))
        .merge(crate::console::router())
        .fallback(|uri: axum::http::Uri| async move {
            if uri.path().starts_with(svix::BASE) {
                ApiError::not_found(
                    "no such route; see docs/svix-compatibility.md for the Svix-compatible API's routes",
                )
            } else {
                ApiError::from_status(StatusCode::NOT_FOUND)
            }
        })
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(scope, request_context))
        .with_state(state);
    // Rewrites before routing (a layer of `app` runs after it).
    Ok(Router::new().fallback_service(tower::util::MapRequest::new(
        app,
        svix::without_trailing_slash,
    )))
}

/// The metrics-only listener's routes: `GET /metrics` (answering every
/// client that reaches it; still asking for HOOKLINE_METRICS_TOKEN when it
/// is set), and 404 for anything else.
pub fn metrics_router(state: AppState, limits: RequestLimits) -> Router {
    let (router, _) = OpenApiRouter::new()
        .merge(metrics::router())
        .split_for_parts();
    let scope = RequestScope {
        limits,
        metrics: state.metrics.clone(),
        finishing: state.finishing.clone(),
    };
    router
        .layer(Extension(metrics::MetricsListener))
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a handler panicked");
            ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(scope, request_context))
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
/// The pauses of a request that lost the race to create a new id or uid
/// and looks the winner's object up again: it can take a moment to be
/// found under load (read models and the log's commit horizon trail
/// commits), so the loser looks again, a little later each time, for up
/// to 5 s in all.
#[derive(Debug)]
pub struct LostRace {
    started: std::time::Instant,
    tries: u64,
}

impl LostRace {
    pub fn new() -> Self {
        Self {
            started: std::time::Instant::now(),
            tries: 0,
        }
    }

    /// Waits a little and says whether to look again (false once 5 s
    /// have passed).
    pub async fn again(&mut self) -> bool {
        if self.started.elapsed() >= std::time::Duration::from_secs(5) {
            return false;
        }
        self.tries += 1;
        tokio::time::sleep(std::time::Duration::from_millis((25 * self.tries).min(200))).await;
        true
    }
}

impl Default for LostRace {
    fn default() -> Self {
        Self::new()
    }
}

/// What a client past its failed-credential limit is told, and in how
/// many seconds it may try again.
pub fn guesses_wait(wait: std::time::Duration) -> (String, u64) {
    let seconds = wait.as_secs().max(1);
    (
        format!("too many failed attempts from this address; retry in {seconds} s"),
        seconds,
    )
}

/// `response` with `Retry-After: seconds`.
pub fn retry_after(mut response: Response, seconds: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&seconds.to_string()) {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    response
}

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
