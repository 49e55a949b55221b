//! The event-type catalogue, browsed by group: each type's description,
//! schema and an example payload in the envelope receivers get.

use super::shell;
use crate::console::i18n::M;
use crate::console::layout::{time, urlencode, Nav};
use crate::console::web::Query;
use crate::console::web::{Failure, PageResult, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use hookline_application::catalogue::ListEventTypes;
use hookline_domain::EventType;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /console/event-types`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let tenant = viewer.require_tenant()?;
    let group = q.group.filter(|g| !g.is_empty());
    let page = state
        .catalogue
        .list(
            tenant,
            ListEventTypes::parse(false, group.clone(), Some(100), q.cursor.as_deref())?,
        )
        .await?;
    let t = |m: M| viewer.t(m);
    let content = html! {
        h1 { (t(M::EventTypes)) }
        p.lead { (t(M::EventTypesLead)) }
        @if let Some(g) = &group {
            p { (t(M::Group)) ": " strong { (g) } " · " a href="/console/event-types" { (t(M::AllGroups)) } }
        }
        @for g in &page.groups {
            section aria-labelledby={ "g-" (urlencode(&g.name)) } {
                h2 id={ "g-" (urlencode(&g.name)) } {
                    a href={ "/console/event-types?group=" (urlencode(&g.name)) } { (g.name) }
                }
                div.table-wrap { table {
                    thead { tr { th scope="col" { (t(M::Name)) } th scope="col" { (t(M::Description)) } } }
                    tbody {
                        @for ty in page.data.iter().filter(|ty| ty.group == g.name) {
                            tr {
                                td { a href={ "/console/event-types/" (urlencode(&ty.name)) } { code { (ty.name) } }
                                     @if ty.deprecated { " " span.badge.muted { (t(M::Deprecated)) } } }
                                td { (ty.description) }
                            }
                        }
                    }
                } }
            }
        }
        @if let Some(next) = &page.next_cursor {
            p { a href={ "/console/event-types?cursor=" (urlencode(next)) @if let Some(g) = &group { "&group=" (urlencode(g)) } } { (t(M::NextPage)) } }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::EventTypes),
        Nav::EventTypes,
        &uri,
        content,
    )
    .await)
}

/// `GET /console/event-types/{name}`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(raw): Path<String>,
) -> PageResult {
    let tenant = viewer.require_tenant()?;
    let name = EventType::parse(&raw, "name")
        .map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))?;
    let view = state.catalogue.get(tenant, &name, None).await?;
    let example = state.catalogue.example(tenant, &name).await.ok();
    let t = |m: M| viewer.t(m);
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let content = html! {
        p { a href="/console/event-types" { "← " (t(M::EventTypes)) } }
        h1 { code { (view.name) } }
        dl.props {
            dt { (t(M::Group)) } dd { (view.group) }
            dt { (t(M::Description)) } dd { (view.description) }
            @if view.deprecated { dt { (t(M::Status)) } dd { span.badge.muted { (t(M::Deprecated)) } } }
            dt { (t(M::Updated)) } dd { (time(view.updated_at)) }
        }
        h2 { (t(M::Schema)) }
        @if let Some(s) = &view.schema { pre tabindex="0" { (pretty(s)) } } @else { p.muted { (t(M::NoSchema)) } }
        h2 { (t(M::ExamplePayload)) }
        @if let Some(e) = &example { pre #example tabindex="0" { (serde_json::to_string_pretty(e).unwrap_or_default()) } } @else { p.muted { (t(M::NoExample)) } }
    };
    Ok(shell(&state, &viewer, &view.name, Nav::EventTypes, &uri, content).await)
}
