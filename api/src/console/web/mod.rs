//! What every console request goes through: the session behind the cookie
//! (checked against the log: a revoked key, a revoked portal link or a
//! changed admin token ends it), the language, CSRF and origin checks on
//! every POST, the read-only rule of portal links, security headers, and
//! error pages in the viewer's language: the viewer in `viewer.rs`, forms
//! in `forms.rs`, failures and the query extractor in `failure.rs`; here
//! the cookies, the language, responses and the security headers.

use super::i18n::Locale;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "hookline_console";
pub const LANG_COOKIE: &str = "hookline_lang";

mod failure;
mod forms;
mod viewer;

pub use failure::{Failure, PageResult, Query};
pub use forms::{check_origin, client_ip, AnonymousPost, FormData, Posted, PostedAny};
pub use viewer::Viewer;

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
