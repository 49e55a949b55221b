//! The page shell (header, navigation, language switch, sign-out) and the
//! small pieces every page uses. maud escapes everything interpolated, so
//! text from outside (descriptions, URLs, headers, payloads, receivers'
//! answers) always reaches the browser as text.

use super::assets;
use super::i18n::{Locale, M};
use super::session::Role;
use super::web::{html_status, Failure, Viewer};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::subscription::SubscriptionStatus;
use maud::{html, Markup, DOCTYPE};

/// Where the docs live (the repository's docs; the console links there
/// rather than to any site).
pub const DOCS_URL: &str = "/console/docs";

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Subscriptions,
    EventTypes,
    PortalLinks,
    Tenants,
    None,
}

fn head(locale: Locale, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Hookline" }
            link rel="stylesheet" href=(assets::url("console.css"));
            link rel="icon" href=(assets::url("icon.svg")) type="image/svg+xml";
            script src=(assets::url("console.js")) defer {}
            meta name="console-lang" content=(locale.code());
        }
    }
}

fn language_switch(locale: Locale, back: &str) -> Markup {
    html! {
        nav.lang aria-label=(M::Language.text(locale)) {
            @for l in [Locale::En, Locale::Es] {
                @if l == locale {
                    span aria-current="true" lang=(l.code()) { (l.name()) }
                } @else {
                    a href={ "/console/lang?set=" (l.code()) "&back=" (urlencode(back)) } lang=(l.code()) hreflang=(l.code()) { (l.name()) }
                }
            }
        }
    }
}

/// A hidden field with the session's CSRF token, and for an operator the
/// tenant the page was shown for (a change posted after the session moved
/// to another tenant, in another tab, is refused).
pub fn csrf(viewer: &Viewer) -> Markup {
    html! {
        input type="hidden" name="_csrf" value=(viewer.session.csrf);
        @if viewer.is_operator() {
            @if let Some(t) = viewer.tenant() { input type="hidden" name="_tenant" value=(t); }
        }
    }
}

/// `%`-encodes a query value.
pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn scope(viewer: &Viewer, tenant_name: Option<&str>) -> Markup {
    let t = |m| viewer.t(m);
    html! {
        @match &viewer.session.role {
            Role::Tenant { .. } => span.scope { (t(M::SignedInAsTenant)) " " strong { (tenant_name.unwrap_or("")) } },
            Role::Operator { viewing: None } => span.scope { (t(M::SignedInAsOperator)) },
            Role::Operator { viewing: Some(_) } => span.scope {
                (t(M::OperatorViewing)) " " strong { (tenant_name.unwrap_or("")) }
                form.inline method="post" action="/console/tenants/leave" {
                    (csrf(viewer))
                    button.link type="submit" { (t(M::BackToTenants)) }
                }
            },
            Role::Portal(g) => span.scope {
                (t(M::PortalOf)) " " strong { (tenant_name.unwrap_or("")) }
                @if g.read_only { " " span.badge.muted { (t(M::ReadOnly)) } }
            },
        }
    }
}

/// A signed-in page.
pub fn page(
    viewer: &Viewer,
    tenant_name: Option<&str>,
    title: &str,
    nav: Nav,
    path: &str,
    content: Markup,
) -> Markup {
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let has_tenant = viewer.tenant().is_some();
    let entries: Vec<(Nav, &str, M)> = {
        let mut e = Vec::new();
        if has_tenant {
            e.push((Nav::Dashboard, "/console/dashboard", M::Dashboard));
            e.push((
                Nav::Subscriptions,
                "/console/subscriptions",
                M::Subscriptions,
            ));
            e.push((Nav::EventTypes, "/console/event-types", M::EventTypes));
            if viewer.portal().is_none() {
                e.push((Nav::PortalLinks, "/console/portal-links", M::PortalLinks));
            }
        }
        if viewer.is_operator() {
            e.push((Nav::Tenants, "/console/tenants", M::Tenants));
        }
        e
    };
    html! {
        (DOCTYPE)
        html lang=(locale.code()) {
            (head(locale, title))
            body {
                a.skip href="#main" { (t(M::SkipToContent)) }
                header.top {
                    a.brand href="/console" { img src=(assets::url("icon.svg")) alt="" width="24" height="24"; " Hookline" }
                    nav.main aria-label=(t(M::MainNavigation)) {
                        ul {
                            @for (n, href, label) in &entries {
                                li { a href=(href) aria-current=[(*n == nav).then_some("page")] { (t(*label)) } }
                            }
                        }
                    }
                    div.who {
                        (scope(viewer, tenant_name))
                        (language_switch(locale, path))
                        form.inline method="post" action="/console/sign-out" {
                            (csrf(viewer))
                            button.secondary type="submit" { (t(M::SignOut)) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    (content)
                }
                footer.foot {
                    a href=(DOCS_URL) { (t(M::Documentation)) }
                }
            }
        }
    }
}

/// A page before sign-in (or an error without a session).
pub fn bare_page(locale: Locale, title: &str, path: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(locale.code()) {
            (head(locale, title))
            body.bare {
                a.skip href="#main" { (M::SkipToContent.text(locale)) }
                header.top {
                    a.brand href="/console" { img src=(assets::url("icon.svg")) alt="" width="24" height="24"; " Hookline" }
                    div.who { (language_switch(locale, path)) }
                }
                main #main tabindex="-1" { (content) }
                footer.foot { a href=(DOCS_URL) { (M::Documentation.text(locale)) } }
            }
        }
    }
}

/// Whether two sentences say the same words (case and punctuation aside):
/// the English detail is not repeated under its own translation.
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

/// A failure as a page: the translated message, and the application's
/// own detail.
pub fn error_page(locale: Locale, failure: &Failure, path: &str) -> Response {
    let message = super::i18n::error_message(locale, &failure.code);
    let content = html! {
        h1 { (M::ErrorTitle.text(locale)) }
        div.notice.error role="alert" {
            p { (message) }
            @if !failure.detail.is_empty() && !same_words(&failure.detail, message) {
                p.detail lang="en" { (failure.detail) }
            }
        }
        p { a href="/console" { (M::BackToConsole.text(locale)) } }
    };
    let mut r = html_status(
        failure.status,
        bare_page(locale, M::ErrorTitle.text(locale), path, content),
    );
    if failure.status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("600"),
        );
    }
    r
}

/// A time as UTC text, in a `<time>` element.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

pub fn delivery_status(locale: Locale, s: DeliveryStatus) -> Markup {
    let (m, class) = match s {
        DeliveryStatus::Pending => (M::StatusPending, "pending"),
        DeliveryStatus::Delivered => (M::StatusDelivered, "ok"),
        DeliveryStatus::Failed => (M::StatusFailed, "bad"),
        DeliveryStatus::Abandoned => (M::StatusAbandoned, "bad"),
        DeliveryStatus::Skipped => (M::StatusSkipped, "muted"),
    };
    html! { span class={ "badge " (class) } data-status=(s.as_str()) { (m.text(locale)) } }
}

/// A subscription's status as the list and detail show it.
pub fn subscription_status(locale: Locale, s: SubscriptionStatus) -> Markup {
    let (m, class, code) = match s {
        SubscriptionStatus::Active => (M::StatusActive, "ok", "active"),
        SubscriptionStatus::Disabled => (M::StatusDisabled, "muted", "disabled"),
        SubscriptionStatus::Deleted => (M::StatusDeleted, "muted", "deleted"),
    };
    html! { span class={ "badge " (class) } data-status=(code) { (m.text(locale)) } }
}

/// A notice after an action (`?done=` on the redirect).
pub fn done_notice(locale: Locale, done: Option<&str>) -> Markup {
    let m = match done {
        Some("created") => Some(M::DoneCreated),
        Some("updated") => Some(M::DoneUpdated),
        Some("deleted") => Some(M::DoneDeleted),
        Some("enabled") => Some(M::DoneEnabled),
        Some("disabled") => Some(M::DoneDisabled),
        Some("test_sent") => Some(M::DoneTestSent),
        Some("retried") => Some(M::DoneRetried),
        Some("recovered") => Some(M::DoneRecovered),
        Some("revoked") => Some(M::DoneRevoked),
        _ => None,
    };
    html! {
        @if let Some(m) = m {
            div.notice.success role="status" { (m.text(locale)) }
        }
    }
}

/// Pretty JSON text (the value as given when it does not parse).
pub fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}
