//! Svix's authentication routes: app portal access (a link to Hookline's
//! console for one application, as `POST /v1/portal-sessions` makes for a
//! tenant) and logout (its holder revokes it). The link is an ordinary
//! portal link: signed, recorded in the log with every opening, ended by
//! its revocation or by revoking the operator key that made it.

use super::apps::ApplicationIn;
use super::error::{Invalid, SvixError, SvixResult};
use super::extract::SvixBody;
use super::messages::app_or_create;
use super::{context, Organisation};
use crate::middleware::{bearer_token, CurrentRequestId};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use hookline_application::portal::{IssueLink, PORTAL_TOKEN_PREFIX};
use hookline_application::AppError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The organisation's route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(app_portal_access))
}

/// The route a portal link's holder calls with the link's token.
pub fn holder_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(logout))
}

/// Svix's default and bounds of `expiry`, in seconds.
const DEFAULT_EXPIRY: i64 = 7 * 24 * 3600;
const MIN_EXPIRY: i64 = 3600;
const MAX_EXPIRY: i64 = 7 * 24 * 3600;

/// What a token may do in Svix's app portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum AppPortalCapability {
    ViewBase,
    ViewEndpointSecret,
    ManageEndpointSecret,
    ManageTransformations,
    CreateAttempts,
    ManageEndpoint,
}

/// `AppPortalAccessIn`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPortalAccessIn {
    /// The application to create when the path names none (its `uid` must
    /// be the path's).
    #[serde(default)]
    pub application: Option<ApplicationIn>,
    /// Seconds the link works, 3600–604800 (default 7 days).
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 3600, maximum = 604800)]
    pub expiry: Option<i64>,
    /// `true`: the console opens read-only.
    #[serde(default)]
    #[schema(deprecated)]
    pub read_only: Option<bool>,
    /// What the holder may do; `ViewBase` is required. Hookline's console
    /// is either read-only or full: the holder gets the full console only
    /// when the list is left out or holds `ManageEndpoint` and
    /// `CreateAttempts`; any other list opens it read-only (less than
    /// asked, never more). The console never shows an existing secret.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub capabilities: Option<Vec<AppPortalCapability>>,
    /// Accepted (at most 25 of `a-zA-Z0-9-_.`): Hookline gates no event
    /// type behind a flag, so they change nothing.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 25)]
    pub feature_flags: Option<Vec<String>>,
    /// Accepted (1–64 of `a-zA-Z0-9@_-`) and not kept: Hookline has no
    /// "expire all"; revoke a link with its holder's logout.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-zA-Z0-9@_-]+$")]
    pub session_id: Option<String>,
}

/// `AppPortalAccessOut`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppPortalAccessOut {
    /// Opens the console for the application (on `HOOKLINE_PUBLIC_URL`
    /// when set). Open it in a window or tab of its own: the console
    /// refuses to be framed.
    pub url: String,
    /// The link's token (`hlp_…`): what its holder sends to
    /// `POST /api/v1/auth/logout`.
    pub token: String,
}

fn all_chars(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || allowed(c))
}

impl AppPortalAccessIn {
    /// The link this asks for, in Hookline's terms.
    fn link(&self) -> SvixResult<IssueLink> {
        let expiry = self.expiry.unwrap_or(DEFAULT_EXPIRY);
        if !(MIN_EXPIRY..=MAX_EXPIRY).contains(&expiry) {
            return Err(SvixError::invalid(Invalid::body(
                "expiry",
                format!("must be {MIN_EXPIRY}–{MAX_EXPIRY} seconds"),
            )));
        }
        let full = match &self.capabilities {
            None => true,
            Some(c) if !c.contains(&AppPortalCapability::ViewBase) => {
                return Err(SvixError::invalid(Invalid::body(
                    "capabilities",
                    "must include ViewBase",
                )))
            }
            Some(c) => {
                c.contains(&AppPortalCapability::ManageEndpoint)
                    && c.contains(&AppPortalCapability::CreateAttempts)
            }
        };
        if let Some(flags) = &self.feature_flags {
            let bad = flags
                .iter()
                .any(|f| f.is_empty() || f.len() > 256 || !all_chars(f, |c| "-_.".contains(c)));
            if flags.is_empty() || flags.len() > 25 || bad {
                return Err(SvixError::invalid(Invalid::body(
                    "featureFlags",
                    "1–25 flags of 1–256 characters a-zA-Z0-9-_.",
                )));
            }
        }
        if let Some(id) = &self.session_id {
            if id.is_empty() || id.len() > 64 || !all_chars(id, |c| "@_-".contains(c)) {
                return Err(SvixError::invalid(Invalid::body(
                    "sessionId",
                    "1–64 characters a-zA-Z0-9@_-",
                )));
            }
        }
        let read_only = self.read_only.unwrap_or(false) || !full;
        IssueLink::new(Some(expiry), read_only, None).map_err(SvixError::from)
    }
}

/// App Portal Access
///
/// A link that opens Hookline's console for the application (a portal
/// link, as `POST /v1/portal-sessions` makes): its endpoints, messages and
/// attempts, read-only or in full (see `capabilities`). Every opening is
/// recorded; the link ends at `expiry`, at its holder's logout, or when
/// the operator key that made it is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/auth/app-portal-access/{app_id}",
    operation_id = "v1.authentication.app-portal-access",
    tag = "Authentication",
    params(("app_id" = String, Path, description = "The application's id (`app_…`) or uid.")),
    request_body(content = Option<AppPortalAccessIn>, description = "Optional (the JavaScript SDK may send none)."),
    responses(
        (status = 200, description = "The link.", body = AppPortalAccessOut),
        (status = 404, description = "- `not_found`: no such application (and no `application` to create)"),
    )
)]
async fn app_portal_access(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    SvixBody(mut input): SvixBody<AppPortalAccessIn>,
) -> SvixResult<Json<AppPortalAccessOut>> {
    let link = input.link()?;
    let tenant =
        app_or_create(&state, &org, &request_id, &app_id, input.application.take()).await?;
    let ctx = context(&org, request_id, tenant.id);
    let issued = state.portal.issue(&ctx, link).await?.value;
    Ok(Json(AppPortalAccessOut {
        url: crate::console::portal_url(&state.console, &headers, &issued.token),
        token: issued.token,
    }))
}

/// Logout
///
/// Revokes the app portal link whose token (`hlp_…`, from App Portal
/// Access) is the bearer token: it opens nothing more, and console
/// sessions opened with it end at their next request. Other tokens are
/// refused (401).
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "v1.authentication.logout",
    tag = "Authentication",
    responses(
        (status = 204, description = "Logged out (also when the link had ended already)."),
        (status = 401, description = "- `authentication_failed`: no bearer token, or not a valid app portal token"),
    ),
    security(("app_portal_token" = []))
)]
async fn logout(
    State(state): State<AppState>,
    CurrentRequestId(request_id): CurrentRequestId,
    headers: HeaderMap,
) -> SvixResult<StatusCode> {
    let refused = || {
        SvixError::unauthorized(format!(
            "Logout takes the token of an app portal access ({PORTAL_TOKEN_PREFIX}…) as the bearer token"
        ))
    };
    let token = bearer_token(&headers, "app portal token").map_err(|_| refused())?;
    match state.portal.log_out(token, request_id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(AppError::NothingFound { .. } | AppError::NotFound { .. }) => Err(refused()),
        Err(e) => Err(e.into()),
    }
}
