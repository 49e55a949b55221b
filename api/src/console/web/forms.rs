//! POSTed forms: origin and CSRF checks, the read-only rule of portal
//! links, and the form body itself.

use super::{locale, ClientAddr, Failure, Viewer};
use crate::console::i18n::Locale;
use crate::state::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr};
use subtle::ConstantTimeEq;

/// Largest form body the console reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

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
