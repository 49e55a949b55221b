//! Subscriptions: the list (search, filters, last outcome, empty state),
//! the create and edit form (the API's own request types and rules, their
//! messages next to each field), and the actions: send test, enable,
//! disable, rotate the secret, delete with a confirmation.
//!
//! This module has the list and a subscription's page; `form` the create
//! and edit form, `actions` what the subscription's page posts.

mod actions;
mod form;

pub use actions::{confirm_delete, delete, disable, enable, rotate, shown_secret, test_send};
pub use form::{create, edit_form, new_form, update};

use super::deliveries::{log_section, LogFilters};
use super::shell;
use crate::console::i18n::{field_error, Locale, M};
use crate::console::layout::{
    csrf, done_notice, subscription_status, time, urlencode, Nav, DOCS_URL,
};
use crate::console::web::Query;
use crate::console::web::{Failure, PageResult, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookline_application::pagination::PageRequest;
use hookline_application::ports::ListedStatus;
use hookline_application::subscriptions::{ListSubscriptions, ReadSubscription, SubscriptionView};
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::{EventPattern, SigningSecret, SubscriptionId, TargetUrl};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashMap;

pub(crate) fn sub_id(raw: &str) -> Result<SubscriptionId, Failure> {
    SubscriptionId::parse(raw).map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))
}

/// The id in a page's path, of a subscription the viewer may see.
pub(crate) async fn visible(
    state: &AppState,
    viewer: &Viewer,
    raw: &str,
) -> Result<SubscriptionId, Failure> {
    let id = sub_id(raw)?;
    load(state, viewer, id).await?;
    Ok(id)
}

/// One subscription the viewer may see.
pub(crate) async fn load(
    state: &AppState,
    viewer: &Viewer,
    id: SubscriptionId,
) -> Result<SubscriptionView, Failure> {
    viewer.check_covers(id)?;
    Ok(state
        .subscriptions
        .get(
            viewer.require_tenant()?,
            id,
            ReadSubscription {
                include_inactive: false,
                as_of: None,
            },
        )
        .await?)
}

#[derive(Debug, Deserialize, Default)]
pub struct ValidateQuery {
    #[serde(default)]
    field: String,
    #[serde(default)]
    value: String,
}

/// `GET /console/validate?field=url|secret&value=…`: the API's rule for
/// one field, the message in the viewer's language.
pub async fn validate(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ValidateQuery>,
) -> Response {
    let result = match q.field.as_str() {
        "url" => TargetUrl::parse(&q.value, state.subscriptions.allow_list()).map(|_| ()),
        "secret" => SigningSecret::parse(&q.value).map(|_| ()),
        _ => Ok(()),
    };
    let body = match result {
        Ok(()) => serde_json::json!({"ok": true}),
        Err(e) => serde_json::json!({"ok": false, "message": field_error(viewer.locale, &e)}),
    };
    Json(body).into_response()
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /console/subscriptions`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let tenant = viewer.require_tenant()?;
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let event = q
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| EventPattern::parse(e, "event"))
        .transpose();
    let (event, event_error) = match event {
        Ok(e) => (e, None),
        Err(e) => (None, Some(field_error(locale, &e))),
    };
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let listed = status.map(ListedStatus::parse);
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    // Filters apply to the whole list, not to one page of it: the read
    // model filters, and the next page's link keeps them.
    let page = state
        .subscriptions
        .list(
            tenant,
            ListSubscriptions {
                event,
                include_inactive: true,
                exclude_deleted: true,
                status: listed.flatten(),
                search: search.map(str::to_string),
                // A link scoped to some subscriptions lists those only (a
                // page of the tenant's, filtered after, could be empty).
                only: viewer.portal().and_then(|g| g.subscription_filter.clone()),
                page: PageRequest::parse(Some(100), q.cursor.as_deref())?,
            },
        )
        .await?;
    let filtering =
        search.is_some() || status.is_some() || q.event.as_deref().is_some_and(|e| !e.is_empty());
    // An unknown status matches nothing.
    let unknown_status = matches!(listed, Some(None));
    let rows: Vec<&SubscriptionView> = page
        .data
        .iter()
        .filter(|s| !unknown_status && viewer.covers(s.id))
        .collect();
    // The pages' links keep the filters.
    let with_filters = |cursor: Option<&str>| {
        let mut params: Vec<String> = cursor
            .map(|c| format!("cursor={}", urlencode(c)))
            .into_iter()
            .collect();
        for (name, value) in [
            ("q", search),
            ("status", status),
            ("event", q.event.as_deref()),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                params.push(format!("{name}={}", urlencode(v)));
            }
        }
        if params.is_empty() {
            "/console/subscriptions".to_string()
        } else {
            format!("/console/subscriptions?{}", params.join("&"))
        }
    };
    let next_link = page
        .next_cursor
        .as_deref()
        .map(|next| with_filters(Some(next)));
    let first_link = q.cursor.is_some().then(|| with_filters(None));
    let ids: Vec<SubscriptionId> = rows.iter().map(|s| s.id).collect();
    let outcomes: HashMap<SubscriptionId, _> = state
        .dashboard
        .last_outcomes(tenant, &ids)
        .await?
        .into_iter()
        .map(|o| (o.subscription_id, o))
        .collect();
    let content = html! {
        div.row {
            h1 { (t(M::Subscriptions)) }
            @if viewer.can_create() {
                a.button.push href="/console/subscriptions/new" { (t(M::NewSubscription)) }
            }
        }
        (done_notice(locale, q.done.as_deref()))
        @if page.data.is_empty() && !filtering && q.cursor.is_none() {
            div.empty {
                h2 { (t(M::EmptyTitle)) }
                p { (t(M::EmptyExplain)) }
                p { (t(M::EmptyNext)) }
                @if viewer.can_create() {
                    p { a.button href="/console/subscriptions/new" { (t(M::CreateFirst)) } }
                }
                p { a href=(DOCS_URL) { (t(M::ReadTheDocs)) } }
            }
        } @else {
            form.filters method="get" action="/console/subscriptions" role="search" {
                div.field {
                    label for="q" { (t(M::Search)) }
                    input #q type="search" name="q" value=(search.unwrap_or("")) placeholder=(t(M::SearchPlaceholder));
                }
                div.field {
                    label for="event" { (t(M::FilterEvent)) }
                    input #event type="text" name="event" value=(q.event.as_deref().unwrap_or(""))
                        placeholder="invoice.created" aria-describedby="event-error";
                    p.error-text #event-error role="alert" { @if let Some(e) = &event_error { (e) } }
                }
                div.field {
                    label for="status" { (t(M::FilterStatus)) }
                    select #status name="status" {
                        option value="" { (t(M::AnyStatus)) }
                        @for (code, m) in [("active", M::StatusActive), ("circuit_open", M::StatusCircuitOpen), ("disabled", M::StatusDisabled)] {
                            option value=(code) selected[status == Some(code)] { (t(m)) }
                        }
                    }
                }
                button.secondary type="submit" { (t(M::ApplyFilters)) }
            }
            @if rows.is_empty() {
                p.notice { (t(M::NoMatches)) }
            } @else {
                div.table-wrap {
                    table #subscriptions {
                        caption.muted { (t(M::SubscriptionsCaption)) }
                        thead { tr {
                            th scope="col" { (t(M::Url)) }
                            th scope="col" { (t(M::Description)) }
                            th scope="col" { (t(M::Events)) }
                            th scope="col" { (t(M::Status)) }
                            th scope="col" { (t(M::LastDelivery)) }
                        } }
                        tbody {
                            @for s in &rows {
                                tr data-subscription=(s.id) {
                                    td.url { a href={ "/console/subscriptions/" (s.id) } { (s.url) } }
                                    td.wrap { (s.description.as_deref().unwrap_or("")) }
                                    td { @for (i, e) in s.events.iter().enumerate() { @if i > 0 { ", " } code { (e) } } }
                                    td { (status_badge(locale, s)) }
                                    td {
                                        @if let Some(o) = outcomes.get(&s.id) {
                                            (crate::console::layout::delivery_status(locale, o.status))
                                            @if let Some(code) = o.status_code { " " span.muted { "HTTP " (code) } }
                                            br; small.muted { (time(o.at)) }
                                        } @else {
                                            span.muted { (t(M::NoDeliveriesYet)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(first) = &first_link {
                p { a href=(first) { (t(M::FirstPage)) } }
            }
            @if let Some(next) = &next_link {
                p { a href=(next) { (t(M::NextPage)) } }
            }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::Subscriptions),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// A subscription's status badge (the one place new states slot in).
pub(crate) fn status_badge(locale: Locale, s: &SubscriptionView) -> Markup {
    if s.status == SubscriptionStatus::Active && s.circuit.is_some() {
        return html! {
            span class="badge bad" data-status="circuit_open" { (M::StatusCircuitOpen.text(locale)) }
        };
    }
    subscription_status(locale, s.status)
}

#[derive(Debug, Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(flatten)]
    filters: LogFilters,
}

/// `GET /console/subscriptions/{id}`: the subscription, its actions and its
/// delivery log.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let view = load(&state, &viewer, sub_id(&id)?).await?;
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let log = log_section(&state, &viewer, &view, &q.filters).await?;
    // A very long URL is cut in the heading and the title (whole below).
    let heading = shortened(&view.url, 120);
    let content = html! {
        p { a href="/console/subscriptions" { "← " (t(M::Subscriptions)) } }
        h1.url { (heading) }
        (done_notice(locale, q.done.as_deref()))
        dl.props {
            @if heading != view.url { dt { (t(M::Url)) } dd.url { code { (view.url) } } }
            dt { (t(M::Status)) } dd { (status_badge(locale, &view))
                @if let Some(r) = &view.disabled_reason { " " span.muted { (r) } } }
            dt { (t(M::Description)) } dd { (view.description.as_deref().unwrap_or("—")) }
            dt { (t(M::Events)) } dd { @for (i, e) in view.events.iter().enumerate() { @if i > 0 { ", " } code { (e) } } }
            dt { (t(M::SignatureScheme)) } dd { code { (view.signature_scheme.as_str()) } }
            dt { (t(M::RateLimit)) } dd { @if let Some(n) = view.rate_limit { (n) " / s" } @else { "—" } }
            @if let Some(c) = &view.circuit {
                dt { (t(M::Circuit)) } dd.circuit {
                    (t(M::CircuitOpenSince)) " " (time(c.opened_at)) " · "
                    (c.consecutive_failures) " " (t(M::ConsecutiveFailures)) " · "
                    (t(M::NextProbe)) " " (time(c.next_probe_at))
                }
            }
            @if let Some(b) = view.backlog { dt { (t(M::Backlog)) } dd { (b) } }
            dt { (t(M::Secret)) } dd { code { (view.secret) } }
            @if !view.headers.is_empty() {
                dt { (t(M::CustomHeaders)) } dd { @for (n, v) in &view.headers { code { (n) ": " (v) } br; } }
            }
            dt { (t(M::Created)) } dd { (time(view.created_at)) }
            dt { "ID" } dd { code { (view.id) } }
        }
        @if viewer.can_write() {
            div.actions {
                form.inline method="post" action={ "/console/subscriptions/" (view.id) "/test" } {
                    (csrf(&viewer)) button type="submit" { (t(M::SendTest)) }
                }
                a.button.secondary href={ "/console/subscriptions/" (view.id) "/edit" } { (t(M::Edit)) }
                @if view.status == SubscriptionStatus::Active {
                    form.inline method="post" action={ "/console/subscriptions/" (view.id) "/disable" } {
                        (csrf(&viewer)) button.secondary type="submit" { (t(M::Disable)) }
                    }
                } @else {
                    form.inline method="post" action={ "/console/subscriptions/" (view.id) "/enable" } {
                        (csrf(&viewer)) button.secondary type="submit" { (t(M::Enable)) }
                    }
                }
                form.inline method="post" action={ "/console/subscriptions/" (view.id) "/rotate" } {
                    (csrf(&viewer)) button.secondary type="submit" { (t(M::RotateSecret)) }
                }
                a.button.danger href={ "/console/subscriptions/" (view.id) "/delete" } { (t(M::Delete)) }
            }
        }
        p { a href={ "/console/subscriptions/" (view.id) "/history" } { (t(M::ViewHistory)) } }
        (log)
    };
    Ok(shell(&state, &viewer, &heading, Nav::Subscriptions, &uri, content).await)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
