//! Portal links, for a tenant (not for portal sessions themselves): issue
//! one for a customer (its URL shown once), see its uses, revoke it.

use super::{shell, show_once, take_once};
use crate::console::i18n::{field_error, M};
use crate::console::layout::{csrf, done_notice, time, urlencode, Nav};
use crate::console::session::ShownOnce;
use crate::console::web::Query;
use crate::console::web::{see_other, Failure, PageResult, Posted, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use hookline_application::pagination::PageRequest;
use hookline_application::portal::{IssueLink, PortalLinkView};
use hookline_application::subscriptions::{ListSubscriptions, SubscriptionView};
use hookline_application::AppError;
use hookline_domain::SubscriptionId;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

fn tenant_only(viewer: &Viewer) -> Result<(), Failure> {
    if viewer.portal().is_some() {
        return Err(viewer.refuse_create());
    }
    viewer.require_tenant().map(|_| ())
}

const LIFETIMES: [(i64, M); 4] = [
    (900, M::Minutes15),
    (3600, M::Hour1),
    (8 * 3600, M::Hours8),
    (24 * 3600, M::Hours24),
];

fn form(viewer: &Viewer, subs: &[SubscriptionView], error: Option<&str>) -> Markup {
    let t = |m: M| viewer.t(m);
    html! {
        form method="post" action="/console/portal-links" {
            (csrf(viewer))
            @if let Some(e) = error { div.notice.error role="alert" { (e) } }
            div.field {
                label for="expires_in" { (t(M::ValidFor)) }
                select #expires_in name="expires_in" {
                    @for (secs, m) in LIFETIMES { option value=(secs) selected[secs == 3600] { (t(m)) } }
                }
            }
            div.field.check {
                input #read_only type="checkbox" name="read_only" value="1" checked;
                label for="read_only" { (t(M::ReadOnlyLink)) }
            }
            @if !subs.is_empty() {
                fieldset {
                    legend { (t(M::LimitToSubscriptions)) }
                    p.hint { (t(M::LimitHint)) }
                    div.checks {
                        @for s in subs {
                            div.check {
                                input type="checkbox" id={ "sub-" (s.id) } name="subscription" value=(s.id);
                                label for={ "sub-" (s.id) } { (s.url) }
                            }
                        }
                    }
                }
            }
            button type="submit" { (t(M::CreatePortalLink)) }
        }
    }
}

async fn subscriptions(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<SubscriptionView>, Failure> {
    // Every one the tenant has (disabled ones too), not the first page.
    let tenant = viewer.require_tenant()?;
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .subscriptions
            .list(
                tenant,
                ListSubscriptions {
                    include_inactive: true,
                    exclude_deleted: true,
                    page: PageRequest::parse(Some(100), cursor.as_deref())?,
                    ..ListSubscriptions::default()
                },
            )
            .await?;
        all.extend(page.data);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// A link's status: revoked (since when), expired, or active.
fn link_status(viewer: &Viewer, link: &PortalLinkView, now: DateTime<Utc>) -> Markup {
    let t = |m: M| viewer.t(m);
    html! {
        @if let Some(r) = link.revoked_at { span.badge.muted { (t(M::Revoked)) } " " (time(r)) }
        @else if now >= link.expires_at { span.badge.muted { (t(M::Expired)) } }
        @else if link.ended { span.badge.muted title=(t(M::LinkEndedHint)) { (t(M::LinkEnded)) } }
        @else { span.badge.ok { (t(M::StatusActive)) } }
    }
}

/// The links that may still open (made in the last 7 days), newest first,
/// each with its status and a way to its page (and its "Revoke").
fn links_table(viewer: &Viewer, links: &[PortalLinkView], now: DateTime<Utc>) -> Markup {
    let t = |m: M| viewer.t(m);
    html! {
        h2 { (t(M::RecentLinks)) }
        @if links.is_empty() {
            p.muted { (t(M::NoRecentLinks)) }
        } @else {
            div.table-wrap { table #portal-links {
                thead { tr {
                    th scope="col" { (t(M::Created)) }
                    th scope="col" { (t(M::Expires)) }
                    th scope="col" { (t(M::Status)) }
                    th scope="col" { (t(M::ReadOnly)) }
                    th scope="col" { (t(M::Uses)) }
                    th scope="col" { span.visually-hidden { (t(M::Details)) } }
                } }
                tbody {
                    @for l in links {
                        tr data-link=(l.id) {
                            td { (time(l.issued_at)) }
                            td { (time(l.expires_at)) }
                            td { (link_status(viewer, l, now)) }
                            td { @if l.read_only { (t(M::Yes)) } @else { (t(M::No)) } }
                            td { (l.uses.len()) }
                            td { a href={ "/console/portal-links/" (l.id) } { (t(M::ViewLink)) } }
                        }
                    }
                }
            } }
        }
    }
}

/// `GET /console/portal-links`: a new link's form and the recent links.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> PageResult {
    tenant_only(&viewer)?;
    let subs = subscriptions(&state, &viewer).await?;
    let links = state
        .portal
        .list(
            viewer.require_tenant()?,
            PageRequest::parse(Some(50), q.cursor.as_deref())?,
        )
        .await?;
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(M::PortalLinks)) }
        (done_notice(viewer.locale, q.done.as_deref()))
        p.lead { (t(M::PortalLead)) }
        (form(&viewer, &subs, None))
        (links_table(&viewer, &links.data, state.clock.now()))
        @if let Some(next) = &links.next_cursor {
            p { a href={ "/console/portal-links?cursor=" (urlencode(next)) } { (t(M::NextPage)) } }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::PortalLinks),
        Nav::PortalLinks,
        &uri,
        content,
    )
    .await)
}

/// `POST /console/portal-links`: issues a link and shows its URL once.
pub async fn create(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    post: Posted,
) -> PageResult {
    let Posted { viewer, form: data } = post;
    tenant_only(&viewer)?;
    let ids: Result<Vec<SubscriptionId>, _> = data
        .all("subscription")
        .into_iter()
        .map(SubscriptionId::parse)
        .collect();
    // A validity that is not a number is refused, not taken as the default.
    let expires_in = match data
        .get("expires_in")
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            AppError::Validation(vec![hookline_domain::ValidationError::new(
                "expires_in",
                "must be a whole number of seconds",
            )])
        }),
    };
    let issued = match ids
        .map_err(AppError::from)
        .and_then(|ids| Ok((ids, expires_in?)))
        .and_then(|(ids, expires_in)| {
            IssueLink::new(
                expires_in,
                data.checked("read_only"),
                (!ids.is_empty()).then_some(ids),
            )
        }) {
        Ok(input) => state.portal.issue(&viewer.ctx()?, input).await,
        Err(e) => Err(e),
    };
    let issued = match issued {
        Ok(i) => i.value,
        Err(AppError::Validation(list)) => {
            let msg = list
                .first()
                .map(|v| field_error(viewer.locale, v))
                .unwrap_or_default();
            let subs = subscriptions(&state, &viewer).await?;
            let content =
                html! { h1 { (viewer.t(M::PortalLinks)) } (form(&viewer, &subs, Some(&msg))) };
            let mut r = shell(
                &state,
                &viewer,
                viewer.t(M::PortalLinks),
                Nav::PortalLinks,
                &uri,
                content,
            )
            .await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    let url = crate::console::portal_url(&state.console, &headers, &issued.token);
    let page = format!("/console/portal-links/{}/created", issued.id);
    let once = ShownOnce::PortalLink { link: issued, url };
    Ok(show_once(&state, &viewer, once, &page))
}

/// `GET /console/portal-links/{id}/created`: the link just issued, its URL
/// shown once; afterwards the link's page.
pub async fn created(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
) -> PageResult {
    tenant_only(&viewer)?;
    let id = link_id(&id)?;
    let a_link = |o: &ShownOnce| matches!(o, ShownOnce::PortalLink { .. });
    let Some(ShownOnce::PortalLink { link, url }) = take_once(&state, &viewer, id, a_link) else {
        return Ok(see_other(&format!("/console/portal-links/{id}")));
    };
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(M::PortalLinkCreated)) }
        div.notice.warn role="status" {
            p { strong { (t(M::PortalLinkOnce)) } }
            div.secret {
                code #portal-url data-shown-once { (url) }
                button.secondary type="button" data-copy="#portal-url" data-copied=(t(M::Copied)) aria-describedby="copy-status" hidden { (t(M::Copy)) }
                span #copy-status role="status" aria-live="polite" {}
            }
        }
        dl.props {
            dt { (t(M::Expires)) } dd { (time(link.expires_at)) }
            dt { (t(M::ReadOnly)) } dd { @if link.read_only { (t(M::Yes)) } @else { (t(M::No)) } }
        }
        p { a.button.secondary href={ "/console/portal-links/" (link.id) } { (t(M::ViewLink)) } }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::PortalLinkCreated),
        Nav::PortalLinks,
        &uri,
        content,
    )
    .await)
}

fn link_id(raw: &str) -> Result<Uuid, Failure> {
    Uuid::parse_str(raw).map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))
}

/// `GET /console/portal-links/{id}`: the link and every use.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    tenant_only(&viewer)?;
    let link = state
        .portal
        .get(viewer.require_tenant()?, link_id(&id)?)
        .await?;
    let t = |m: M| viewer.t(m);
    let content = html! {
        p { a href="/console/portal-links" { "← " (t(M::PortalLinks)) } }
        h1 { (t(M::PortalLink)) " " code { (link.id) } }
        (done_notice(viewer.locale, q.done.as_deref()))
        dl.props {
            dt { (t(M::Created)) } dd { (time(link.issued_at)) }
            dt { (t(M::Expires)) } dd { (time(link.expires_at)) }
            dt { (t(M::ReadOnly)) } dd { @if link.read_only { (t(M::Yes)) } @else { (t(M::No)) } }
            dt { (t(M::Status)) } dd { (link_status(&viewer, &link, state.clock.now())) }
            @if let Some(ids) = &link.subscription_filter {
                dt { (t(M::LimitToSubscriptions)) } dd { @for id in ids { code { (id) } br; } }
            }
        }
        h2 { (t(M::Uses)) }
        @if link.uses.is_empty() { p.muted { (t(M::NotUsedYet)) } } @else {
            ul { @for u in &link.uses { li { (time(u.opened_at)) @if let Some(r) = &u.request_id { " · " code { (r) } } } } }
        }
        @if link.revoked_at.is_none() {
            form method="post" action={ "/console/portal-links/" (link.id) "/revoke" }
                data-confirm=(t(M::ConfirmRevokeLink)) {
                (csrf(&viewer)) button.danger type="submit" { (t(M::RevokeLink)) }
            }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::PortalLink),
        Nav::PortalLinks,
        &uri,
        content,
    )
    .await)
}

/// `POST /console/portal-links/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    tenant_only(&post.viewer)?;
    let id = link_id(&id)?;
    state.portal.revoke(&post.viewer.ctx()?, id).await?;
    Ok(see_other(&format!(
        "/console/portal-links/{id}?done=revoked"
    )))
}
