//! The console's pages, one module per area. Handlers call the same
//! application services as the `/v1` routes.

pub mod auth;
pub mod dashboard;
pub mod deliveries;
pub mod event_types;
pub mod history;
pub mod operator;
pub mod portal_links;
pub mod subscriptions;

use super::layout::{self, Nav};
use super::session::ShownOnce;
use super::web::{html, see_other, Viewer};
use crate::state::AppState;
use axum::http::Uri;
use axum::response::Response;
use maud::Markup;

/// The name of the tenant the viewer works in (for the header).
pub async fn tenant_name(state: &AppState, viewer: &Viewer) -> Option<String> {
    let id = viewer.tenant()?;
    state.tenants.get(id).await.ok().map(|t| t.name)
}

/// A signed-in page with the shell around `content`.
pub async fn shell(
    state: &AppState,
    viewer: &Viewer,
    title: &str,
    nav: Nav,
    uri: &Uri,
    content: Markup,
) -> Response {
    let name = tenant_name(state, viewer).await;
    // Handlers see the path inside the console (`/subscriptions?q=…`, the
    // router is nested): the language switch must come back to the whole
    // path, filters included.
    let inner = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string());
    let path = if inner.starts_with("/console") {
        inner
    } else {
        format!("/console{inner}")
    };
    html(layout::page(
        viewer,
        name.as_deref(),
        title,
        nav,
        &path,
        content,
    ))
}

/// After a POST that made something shown only once (a secret, an API key,
/// a portal link's URL): it is held in the session and the browser sent to
/// `page`, which shows it once (post/redirect/get: a reload or Back neither
/// posts again, making another, nor shows it again).
pub fn show_once(state: &AppState, viewer: &Viewer, once: ShownOnce, page: &str) -> Response {
    state.console.sessions.update(&viewer.token, |s| {
        s.hold_shown_once(once);
    });
    see_other(page)
}

/// What the session holds to show once for the object `id`, handed out
/// (and forgotten) now if `fits` it; a page of another kind or another
/// tenant leaves it held.
pub fn take_once(
    state: &AppState,
    viewer: &Viewer,
    id: uuid::Uuid,
    fits: impl Fn(&ShownOnce) -> bool,
) -> Option<ShownOnce> {
    let mut once = None;
    state.console.sessions.update(&viewer.token, |s| {
        once = s.take_shown_once(id, fits);
    });
    once
}
