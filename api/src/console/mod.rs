//! The console: server-rendered HTML over the same application services as
//! the API (no second backend, no HTTP calls to itself), with a little
//! progressive JavaScript. Three ways in: a tenant's API key, the operator's
//! admin token, and portal links a tenant hands to its own customers.
//!
//! Security: every page is rendered with escaping by default (maud), under
//! a strict Content-Security-Policy (scripts and styles only from our own
//! embedded files); sessions are opaque ids in an HttpOnly, SameSite=Lax
//! cookie (Secure over HTTPS) that expire; every state change is a POST
//! that must carry the session's CSRF token and come from our own origin;
//! sign-in failures are rate-limited per client address.

pub mod assets;
pub mod i18n;
pub mod layout;
pub mod pages;
pub mod session;
pub mod web;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use session::{Sessions, SignInLimiter};
use std::time::Duration;

/// What the console needs from the configuration.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// Where clients reach the server (portal links, Secure cookies).
    pub public_url: Option<String>,
    pub idle_timeout: Duration,
    pub lifetime: Duration,
}

/// The console's own state: sessions and the sign-in limiter.
#[derive(Debug)]
pub struct Console {
    pub settings: ConsoleSettings,
    pub sessions: Sessions,
    pub sign_ins: SignInLimiter,
    /// Wrong organisation credentials (admin token, operator keys) sent to
    /// `/admin` and `/api/v1`, per client address: a looser budget than
    /// the console's sign-in (clients make many calls), still far too few
    /// to guess a token.
    pub api_guesses: SignInLimiter,
}

/// Failed sign-ins one client address may make within the window.
pub const SIGN_IN_LIMIT: u32 = 10;
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(600);
/// Wrong organisation credentials one client address may send to the
/// APIs within the window.
pub const API_GUESS_LIMIT: u32 = 100;

impl Console {
    pub fn new(settings: &ConsoleSettings) -> Self {
        Self {
            sessions: Sessions::new(settings.idle_timeout, settings.lifetime),
            sign_ins: SignInLimiter::new(SIGN_IN_LIMIT, SIGN_IN_WINDOW),
            api_guesses: SignInLimiter::new(API_GUESS_LIMIT, SIGN_IN_WINDOW),
            settings: settings.clone(),
        }
    }

    /// Whether cookies must be `Secure`: the public URL is HTTPS.
    pub fn secure(&self) -> bool {
        self.settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// The console's routes, under `/console`.
pub fn router() -> Router<AppState> {
    use pages::{
        auth, dashboard, deliveries, event_types, history, operator, portal_links, subscriptions,
    };
    let routes = Router::new()
        .route("/", get(auth::home))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/lang", get(auth::language))
        .route("/portal", get(auth::open_portal).post(auth::confirm_portal))
        .route("/assets/{file}", get(assets::serve))
        .route("/docs", get(auth::docs))
        .route("/validate", get(subscriptions::validate))
        .route("/dashboard", get(dashboard::page).post(dashboard::verify))
        .route(
            "/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route("/subscriptions/new", get(subscriptions::new_form))
        .route(
            "/subscriptions/{id}",
            get(subscriptions::detail).post(subscriptions::update),
        )
        .route("/subscriptions/{id}/edit", get(subscriptions::edit_form))
        .route("/subscriptions/{id}/test", post(subscriptions::test_send))
        .route("/subscriptions/{id}/enable", post(subscriptions::enable))
        .route("/subscriptions/{id}/disable", post(subscriptions::disable))
        .route("/subscriptions/{id}/rotate", post(subscriptions::rotate))
        .route(
            "/subscriptions/{id}/secret",
            get(subscriptions::shown_secret),
        )
        .route(
            "/subscriptions/{id}/delete",
            get(subscriptions::confirm_delete).post(subscriptions::delete),
        )
        .route("/subscriptions/{id}/recover", post(deliveries::recover))
        .route("/subscriptions/{id}/deliveries", get(deliveries::log_rows))
        .route("/subscriptions/{id}/history", get(history::history))
        .route("/deliveries/{id}", get(deliveries::detail))
        .route("/deliveries/{id}/attempts", get(deliveries::attempts_part))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/requests/{request_id}", get(history::trace))
        .route("/event-types", get(event_types::list))
        .route("/event-types/{name}", get(event_types::detail))
        .route(
            "/portal-links",
            get(portal_links::page).post(portal_links::create),
        )
        .route("/portal-links/{id}", get(portal_links::detail))
        .route("/portal-links/{id}/created", get(portal_links::created))
        .route("/portal-links/{id}/revoke", post(portal_links::revoke))
        .route(
            "/tenants",
            get(operator::tenants).post(operator::create_tenant),
        )
        .route("/tenants/leave", post(operator::leave))
        .route("/tenants/{id}", get(operator::tenant))
        .route("/tenants/{id}/keys", post(operator::issue_key))
        .route("/tenants/{id}/keys/{key_id}", get(operator::shown_key))
        .route(
            "/tenants/{id}/keys/{key_id}/revoke",
            post(operator::revoke_key),
        )
        .route("/tenants/{id}/open", post(operator::open_tenant))
        .fallback(web::not_found)
        .method_not_allowed_fallback(web::method_not_allowed);
    Router::new()
        .nest("/console", routes)
        .layer(axum::middleware::from_fn(web::security_headers))
}

/// The URL of a portal link: on the public URL when configured, else on
/// the host the request named.
pub fn portal_url(console: &Console, headers: &axum::http::HeaderMap, token: &str) -> String {
    let base = console.settings.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    format!("{base}/console/portal?token={token}")
}
