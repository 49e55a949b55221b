//! What every console request goes through: the session behind the cookie
//! (checked against the log: a revoked key, a revoked portal link or a
//! changed admin token ends it), the language, CSRF and origin checks on
//! every POST, the read-only rule of portal links, security headers, and
//! error pages in the viewer's language.

use super::i18n::{Locale, M};
use super::session::{Role, Session};
use crate::error::ApiError;
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hookline_application::{Actor, AppError, CommandContext, RequestId};
use hookline_domain::tenant::TenantStatus;
use hookline_domain::{SubscriptionId, TenantId};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "hookline_console";
pub const LANG_COOKIE: &str = "hookline_lang";
/// Largest form body the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The client's address, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// A cookie's value from the request.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language: the switch's cookie, else `Accept-Language`, else English.
pub fn locale(headers: &HeaderMap) -> Locale {
    if let Some(l) = cookie(headers, LANG_COOKIE).and_then(Locale::from_code) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Locale::negotiate)
        .unwrap_or_default()
}

/// A `Set-Cookie` value for the session.
pub fn session_cookie(value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

pub fn admin_fingerprint(token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"hookline:console:admin:");
    h.update(token.as_bytes());
    h.finalize().into()
}

/// A failed console request: rendered as an error page in the viewer's
/// language by [`security_headers`].
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    /// The application's detail (English), shown under the translated
    /// message.
    pub detail: String,
}

impl Failure {
    pub fn new(status: StatusCode, code: &str) -> Self {
        Self {
            status,
            code: code.to_string(),
            detail: String::new(),
        }
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            code: e.code,
            detail: e.detail,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

pub type PageResult = Result<Response, Failure>;

/// A page's query parameters; a query that does not fit (a repeated or
/// malformed parameter) is refused with the console's own translated
/// error page, not axum's plain-text one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| Self(q))
            .map_err(|rejection| Failure {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_query".to_string(),
                detail: query_detail(&rejection.body_text()),
            })
    }
}

/// axum's rejection text as a sentence of the console's own ("Failed to
/// deserialize query string: duplicate field `status`" → "the link's
/// query names `status` twice").
fn query_detail(rejection: &str) -> String {
    let reason = rejection
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(rejection);
    match reason
        .strip_prefix("duplicate field `")
        .and_then(|r| r.split_once('`'))
    {
        Some((field, _)) => format!("the link's query names `{field}` twice"),
        None => format!("the link's query could not be read ({reason})"),
    }
}

#[cfg(test)]
mod query_tests {
    #[test]
    fn axum_rejections_read_as_sentences() {
        assert_eq!(
            super::query_detail("Failed to deserialize query string: duplicate field `status`"),
            "the link's query names `status` twice"
        );
        assert_eq!(
            super::query_detail(
                "Failed to deserialize query string: invalid digit found in string"
            ),
            "the link's query could not be read (invalid digit found in string)"
        );
    }
}

/// The signed-in viewer of a console request.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub token: String,
    pub session: Session,
    pub locale: Locale,
    pub request_id: RequestId,
}

impl Viewer {
    /// The tenant whose console this is (none: an operator outside any).
    pub fn tenant(&self) -> Option<TenantId> {
        match &self.session.role {
            Role::Tenant { tenant_id, .. } => Some(*tenant_id),
            Role::Operator { viewing } => *viewing,
            Role::Portal(grant) => Some(grant.tenant_id),
        }
    }

    /// The tenant, or a failure sending an operator to the tenant list.
    pub fn require_tenant(&self) -> Result<TenantId, Failure> {
        self.tenant()
            .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "no_tenant_selected"))
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.session.role, Role::Operator { .. })
    }

    pub fn portal(&self) -> Option<&hookline_application::portal::PortalGrant> {
        match &self.session.role {
            Role::Portal(g) => Some(g),
            _ => None,
        }
    }

    /// Whether this session may change anything.
    pub fn can_write(&self) -> bool {
        self.portal().is_none_or(|g| !g.read_only)
    }

    /// Whether the session may create subscriptions (a portal link scoped
    /// to some subscriptions may not).
    pub fn can_create(&self) -> bool {
        self.can_write()
            && self
                .portal()
                .is_none_or(|g| g.subscription_filter.is_none())
    }

    /// Why this session may not create: a read-only link, or one scoped to
    /// some subscriptions (or any portal link, for portal links).
    pub fn refuse_create(&self) -> Failure {
        let code = if self.can_write() {
            "create_not_allowed"
        } else {
            "read_only"
        };
        Failure::new(StatusCode::FORBIDDEN, code)
    }

    /// Whether the session reaches this subscription.
    pub fn covers(&self, id: SubscriptionId) -> bool {
        self.portal().is_none_or(|g| g.covers(id))
    }

    /// 404 (as for another tenant's) unless the session reaches `id`.
    pub fn check_covers(&self, id: SubscriptionId) -> Result<(), Failure> {
        if self.covers(id) {
            Ok(())
        } else {
            Err(AppError::not_found("subscription", id).into())
        }
    }

    /// The command context of a change made in this session.
    pub fn ctx(&self) -> Result<CommandContext, Failure> {
        let tenant_id = self.require_tenant()?;
        let actor = match &self.session.role {
            Role::Tenant { key_id, .. } => Actor::ApiKey(*key_id),
            Role::Operator { .. } => Actor::Admin,
            Role::Portal(g) => Actor::Portal(g.link_id),
        };
        Ok(CommandContext {
            request_id: self.request_id.clone(),
            tenant_id,
            actor,
        })
    }

    pub fn t(&self, m: M) -> &'static str {
        m.text(self.locale)
    }
}

fn to_sign_in(parts: &Parts) -> Response {
    let fetch = parts.headers.get("x-console-fetch").is_some();
    if fetch {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    if cookie(&parts.headers, SESSION_COOKIE).is_some() {
        if let Ok(v) = HeaderValue::from_str(&session_cookie("", false, Some(0))) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Whether the session still stands: the key it signed in with works, the
/// admin token is the same, the portal link is neither revoked nor expired.
async fn still_valid(state: &AppState, session: &mut Session) -> Result<bool, Failure> {
    match &mut session.role {
        Role::Tenant { tenant_id, key_id } => {
            let keys = match state.tenants.keys(*tenant_id).await {
                Ok(keys) => keys,
                Err(AppError::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            Ok(keys.iter().any(|k| k.id == *key_id && k.active))
        }
        Role::Operator { viewing } => {
            let token_same = match (&state.admin_token, session.admin_fingerprint) {
                (Some(token), Some(fp)) => bool::from(admin_fingerprint(token.expose()).ct_eq(&fp)),
                _ => false,
            };
            // A tenant deleted while the operator works in its console is
            // no longer open to them (writes to it would still be taken).
            if let (true, Some(id)) = (token_same, *viewing) {
                let open = match state.tenants.get(id).await {
                    Ok(view) => view.status == TenantStatus::Active,
                    Err(AppError::NotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                };
                if !open {
                    *viewing = None;
                }
            }
            Ok(token_same)
        }
        Role::Portal(grant) => match state.portal.check(grant.link_id).await {
            Ok(fresh) => {
                *grant = fresh;
                Ok(true)
            }
            Err(
                AppError::Conflict { .. }
                | AppError::NothingFound { .. }
                | AppError::NotFound { .. },
            ) => Ok(false),
            Err(e) => Err(e.into()),
        },
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let locale = locale(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(to_sign_in(parts));
        };
        let refresh = parts
            .headers
            .get("x-console-fetch")
            .is_some_and(|v| v.as_bytes() == b"live");
        let found = if refresh {
            state.console.sessions.peek(&token)
        } else {
            state.console.sessions.get(&token)
        };
        let Some(mut session) = found else {
            return Err(to_sign_in(parts));
        };
        match still_valid(state, &mut session).await {
            Ok(true) => {}
            Ok(false) => {
                state.console.sessions.end(&token);
                return Err(to_sign_in(parts));
            }
            Err(f) => return Err(f.into_response()),
        }
        let CurrentRequestId(request_id) = CurrentRequestId::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            token,
            session,
            locale,
            request_id,
        })
    }
}

/// A form body as name/value pairs (repeated names kept).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(bytes: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value, trimmed, `None` when empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Refuses a POST that does not come from the console's own pages: a
/// cross-site `Sec-Fetch-Site`, or an `Origin` other than ours.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Failure> {
    let refuse = || Failure::new(StatusCode::FORBIDDEN, "csrf");
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return Err(refuse());
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| refuse())?;
    let expected = match &state.console.settings.public_url {
        Some(url) => url.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(refuse)?;
            let scheme = origin.split("://").next().unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    if origin.eq_ignore_ascii_case(&expected) {
        Ok(())
    } else {
        Err(refuse())
    }
}

async fn read_form(req: Request) -> Result<(Parts, FormData), Failure> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| Failure::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"))?;
    Ok((parts, FormData::parse(&bytes)))
}

/// A POST from a signed-in viewer, origin and CSRF token checked; refused
/// for read-only portal sessions.
#[derive(Debug)]
pub struct Posted {
    pub viewer: Viewer,
    pub form: FormData,
}

/// The same, allowed for read-only sessions too (signing out).
#[derive(Debug)]
pub struct PostedAny(pub Posted);

async fn posted(req: Request, state: &AppState, changes: bool) -> Result<Posted, Response> {
    check_origin(state, req.headers()).map_err(IntoResponse::into_response)?;
    // Operator pages name their tenant in the path; the others act on the
    // tenant the session shows.
    // (The console is nested under `/console`: its routes see the rest.)
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| req.uri().path(), |o| o.0.path());
    let names_tenant = path.starts_with("/console/tenants/") || path == "/console/tenants";
    let (mut parts, form) = read_form(req).await.map_err(IntoResponse::into_response)?;
    let viewer = Viewer::from_request_parts(&mut parts, state).await?;
    let given = form.get("_csrf").unwrap_or("");
    if !bool::from(given.as_bytes().ct_eq(viewer.session.csrf.as_bytes())) {
        return Err(Failure::new(StatusCode::FORBIDDEN, "csrf").into_response());
    }
    // A change from a page shown for one tenant (or for none), posted
    // after the operator opened another in another tab: it would act on
    // the wrong tenant. Every form carries the tenant it was shown for
    // (`layout::csrf`); signing out and leaving a tenant act on none.
    if changes && viewer.is_operator() && !names_tenant {
        let shown_for = form.get("_tenant").filter(|t| !t.is_empty());
        let now = viewer.tenant().map(|t| t.to_string());
        if shown_for != now.as_deref() {
            return Err(Failure::new(StatusCode::CONFLICT, "tenant_changed").into_response());
        }
    }
    Ok(Posted { viewer, form })
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let p = posted(req, state, true).await?;
        if !p.viewer.can_write() {
            return Err(Failure::new(StatusCode::FORBIDDEN, "read_only").into_response());
        }
        Ok(p)
    }
}

impl FromRequest<AppState> for PostedAny {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        posted(req, state, false).await.map(PostedAny)
    }
}

/// The client's address (unspecified when the server did not record it).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// A POST before sign-in: origin checked, form read.
#[derive(Debug)]
pub struct AnonymousPost {
    pub form: FormData,
    pub locale: Locale,
    pub client: IpAddr,
}

impl FromRequest<AppState> for AnonymousPost {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        check_origin(state, req.headers()).map_err(IntoResponse::into_response)?;
        let locale = locale(req.headers());
        let client = client_ip(&req);
        let (_, form) = read_form(req).await.map_err(IntoResponse::into_response)?;
        Ok(Self {
            form,
            locale,
            client,
        })
    }
}

/// An HTML page.
pub fn html(markup: maud::Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An HTML page with another status.
pub fn html_status(status: StatusCode, markup: maud::Markup) -> Response {
    let mut r = html(markup);
    *r.status_mut() = status;
    r
}

/// A 303 to another console page.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Security headers on every console response, and failures turned into
/// error pages in the viewer's language.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let locale = locale(req.headers());
    let is_asset = req.uri().path().starts_with("/console/assets/");
    let path = req
        .uri()
        .path_and_query()
        .map_or("/console", |p| p.as_str())
        .to_string();
    let mut response = next.run(req).await;
    if let Some(failure) = response.extensions().get::<Failure>().cloned() {
        // After a failed POST, the language switch goes back to the console.
        let back = if response.status() == StatusCode::METHOD_NOT_ALLOWED || path.len() > 1000 {
            "/console"
        } else {
            &path
        };
        response = super::layout::error_page(locale, &failure, back);
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::VARY,
            HeaderValue::from_static("Cookie, Accept-Language"),
        );
    }
    // Console errors are pages, not the API's JSON: mark them handled.
    response.extensions_mut().insert(crate::error::ErrorShaped);
    response
}

/// Anything under /console that is not a page.
pub async fn not_found() -> Failure {
    Failure::new(StatusCode::NOT_FOUND, "page_not_found")
}

/// A GET of an action's address (Enter in the address bar, a tab
/// reopened after a POST): a page saying so, not an empty 405.
pub async fn method_not_allowed() -> Failure {
    Failure::new(StatusCode::METHOD_NOT_ALLOWED, "action_only")
}

/// `Body` re-export for handlers that stream.
pub type ResponseBody = Body;
