//! The Svix-compatible API, `/api/v1`: Svix's routes, shapes and rules over
//! Hookline's application services, so the official Svix SDKs work against
//! Hookline with only the server URL changed. An application is a tenant,
//! an endpoint a subscription (delivering the raw payload, signed with the
//! `svix` scheme), a message a published event, an attempt an attempt, an
//! event type an organisation-wide catalogue entry. What is only Svix's
//! (prefixed ids, iterators, camelCase, the 422 shape) lives here; see
//! docs/svix-compatibility.md.

pub mod apps;
pub mod attempted;
pub mod attempts;
pub mod auth;
pub mod endpoints;
pub mod error;
pub mod event_types;
pub mod examples;
pub mod extract;
pub mod headers;
pub mod health;
pub mod idempotency;
pub mod ids;
pub mod messages;
pub mod openapi;
pub mod stats;

use crate::middleware::bearer_token;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use error::{SvixError, SvixResult};
use hookline_application::subscriptions::SubscriptionView;
use hookline_application::tenants::TenantView;
use hookline_application::{Actor, CommandContext, RequestId};
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{SubscriptionId, TenantId};
use ids::Ref;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes' prefix.
pub const BASE: &str = "/api/v1";

/// Every route with its documentation: the organisation's routes behind
/// `guard`, health and the document public.
fn parts(
    guard: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut authenticated = OpenApiRouter::new()
        .merge(apps::router())
        .merge(endpoints::router())
        .merge(headers::router())
        .merge(examples::router())
        .merge(stats::router())
        .merge(messages::router())
        .merge(attempts::router())
        .merge(attempted::router())
        .merge(event_types::router())
        .merge(auth::router());
    openapi::guard(authenticated.get_openapi_mut());
    OpenApiRouter::with_openapi(openapi::SvixDoc::openapi())
        .merge(guard(authenticated))
        .merge(health::router())
        .merge(auth::holder_router())
        .routes(routes!(openapi::serve))
        .split_for_parts()
}

/// The Svix-compatible API's OpenAPI document, complete.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = parts(|r| r);
    openapi::finish(&mut api);
    api
}

/// The Svix-compatible API's routes.
///
/// # Errors
/// When its OpenAPI document cannot be serialised.
pub fn router(state: &AppState) -> Result<Router<AppState>, serde_json::Error> {
    let (router, mut api) = parts(|r| {
        r.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::remember,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
    });
    openapi::finish(&mut api);
    let document = openapi::SvixDocument(openapi::json(&api)?);
    Ok(router
        .layer(Extension(document))
        .layer(DefaultBodyLimit::max(state.svix_max_body_bytes)))
}

/// Serves `/api/v1/…/` as `/api/v1/…`: Svix's documents write paths with
/// a trailing slash and its server answers both. Applied before routing.
pub fn without_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if !path.starts_with("/api/v1/") || !path.ends_with('/') {
        return req;
    }
    let trimmed = path.trim_end_matches('/');
    let rewritten = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    if let Ok(uri) = rewritten.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    req
}

/// The organisation calling: who (the admin token or an operator key) and
/// a digest of the credential (idempotency keys are per credential).
#[derive(Debug, Clone)]
pub struct Organisation {
    pub actor: Actor,
    pub credential: String,
}

/// The context of a command an organisation's request issues for `tenant`.
pub fn context(org: &Organisation, request_id: RequestId, tenant: TenantId) -> CommandContext {
    CommandContext {
        request_id,
        tenant_id: tenant,
        actor: org.actor.clone(),
    }
}

/// `/api/v1` guard: `Authorization: Bearer <token>` with the admin token
/// or an operator key (the organisation's tokens), else 401.
async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    // Wrong tokens count against the client's address (shared with
    // `/admin`): past the limit, even a right token waits.
    let client = crate::console::web::client_ip(&req);
    if let Some(wait) = state.console.api_guesses.blocked(client) {
        let (detail, seconds) = crate::routes::guesses_wait(wait);
        let r = SvixError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limit",
            detail,
        )
        .into_response();
        return crate::routes::retry_after(r, seconds);
    }
    let token = match bearer_token(req.headers(), "operator key") {
        Ok(t) => t.to_string(),
        // No token, or not a bearer one: not a guess.
        Err(e) => return SvixError::unauthorized(e.detail).into_response(),
    };
    let admin = state
        .admin_token
        .as_ref()
        .is_some_and(|a| bool::from(token.as_bytes().ct_eq(a.expose().as_bytes())));
    let actor = if admin {
        Actor::Admin
    } else {
        match state.operators.authenticate(&token).await {
            Ok(Some(key)) => Actor::OperatorKey(key),
            Ok(None) => {
                state.console.api_guesses.failed(client);
                return SvixError::unauthorized(
                    "Invalid token: send an operator key (hlo_…, issued with POST /admin/operator-keys) or HOOKLINE_ADMIN_TOKEN",
                )
                .into_response();
            }
            Err(e) => return SvixError::from(e).into_response(),
        }
    };
    req.extensions_mut().insert(Organisation {
        actor,
        credential: hex::encode(Sha256::digest(token.as_bytes())),
    });
    next.run(req).await
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Organisation {
    type Rejection = SvixError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(|| SvixError::unauthorized("authentication required"))
    }
}

/// The live application (tenant) a path segment names.
///
/// # Errors
/// 404 when there is none.
pub async fn app(state: &AppState, segment: &str) -> SvixResult<TenantView> {
    let missing = || SvixError::not_found("Application not found");
    let id = match ids::app_ref(segment).map_err(|_| missing())? {
        Ref::Id(id) => id,
        Ref::Uid(uid) => state.tenants.find_by_uid(&uid).await?.ok_or_else(missing)?,
    };
    match state.tenants.get(id).await {
        Ok(t) if t.status == TenantStatus::Active => Ok(t),
        Ok(_) | Err(hookline_application::AppError::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}

/// The endpoint (subscription, not deleted) of `tenant` a path segment
/// names, as the log has it.
///
/// # Errors
/// 404 when there is none.
pub async fn endpoint(
    state: &AppState,
    tenant: TenantId,
    segment: &str,
) -> SvixResult<SubscriptionView> {
    let missing = || SvixError::not_found("Endpoint not found");
    let id: SubscriptionId = match ids::endpoint_ref(segment).map_err(|_| missing())? {
        Ref::Id(id) => id,
        Ref::Uid(uid) => state
            .subscriptions
            .find_by_uid(tenant, &uid)
            .await?
            .ok_or_else(missing)?,
    };
    match state.subscriptions.current(tenant, id).await {
        Ok(v) if v.status != SubscriptionStatus::Deleted => Ok(v),
        Ok(_) | Err(hookline_application::AppError::NotFound { .. }) => Err(missing()),
        Err(e) => Err(e.into()),
    }
}
