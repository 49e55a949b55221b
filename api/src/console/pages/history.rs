//! What the log says: a subscription's timeline, and everything one
//! request caused (its trace).

use super::deliveries::attempts_table;
use super::shell;
use super::subscriptions::sub_id;
use crate::console::i18n::M;
use crate::console::layout::{delivery_status, time, urlencode, Nav};
use crate::console::web::Query;
use crate::console::web::{Failure, PageResult, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::Uri;
use hookline_application::history::HistoryRequest;
use hookline_application::ports::{AttemptRecord, DeliveryRecord};
use hookline_application::RequestId;
use hookline_domain::SubscriptionId;
use maud::html as markup;
use serde::Deserialize;

/// The fields of an event's payload worth showing (its type left out).
fn changes(payload: &serde_json::Value) -> String {
    let mut v = payload.clone();
    if let serde_json::Value::Object(map) = &mut v {
        map.remove("type");
    }
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn meta_str<'a>(m: &'a serde_json::Value, key: &str) -> &'a str {
    m.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

#[derive(Debug, Deserialize, Default)]
pub struct HistoryQuery {
    #[serde(default)]
    cursor: Option<String>,
}

/// `GET /console/subscriptions/{id}/history`: its timeline from the log, a
/// page of 100 events at a time.
pub async fn history(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> PageResult {
    let id = sub_id(&id)?;
    viewer.check_covers(id)?;
    let page = state
        .subscriptions
        .history(
            viewer.require_tenant()?,
            id,
            HistoryRequest::parse(None, q.cursor.as_deref())?,
        )
        .await?;
    let entries = &page.data;
    let t = |m: M| viewer.t(m);
    let content = markup! {
        p { a href={ "/console/subscriptions/" (id) } { "← " (t(M::BackToSubscription)) } }
        h1 { (t(M::History)) }
        p.lead { (t(M::HistoryLead)) }
        ol.timeline start=[entries.first().map(|e| e.sequence)] {
            @for e in entries {
                li {
                    h2.h3 { code { (e.event_type) } " " span.muted { "v" (e.event_version) } }
                    dl.props {
                        dt { (t(M::When)) } dd { (time(e.recorded_at)) }
                        dt { (t(M::Who)) } dd { code { (meta_str(&e.metadata, "actor")) } }
                        dt { (t(M::RequestId)) } dd {
                            a href={ "/console/requests/" (urlencode(meta_str(&e.metadata, "request_id"))) } { code { (meta_str(&e.metadata, "request_id")) } }
                        }
                        dt { (t(M::Position)) } dd { (e.position) }
                    }
                    details {
                        summary { (t(M::WhatChanged)) }
                        pre tabindex="0" { (changes(&e.payload)) }
                    }
                }
            }
        }
        @if let Some(next) = &page.next_cursor {
            p { a href={ "/console/subscriptions/" (id) "/history?cursor=" (urlencode(next)) } { (t(M::NextPage)) } }
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::History),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// `GET /console/requests/{request_id}`: everything one request caused.
pub async fn trace(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(raw): Path<String>,
) -> PageResult {
    let request_id = RequestId::lookup("request_id", &raw)
        .map_err(|e| Failure::from(hookline_application::AppError::invalid(e)))?;
    let trace = state
        .audit
        .trace(viewer.require_tenant()?, &request_id)
        .await?;
    let deliveries: Vec<&DeliveryRecord> = trace
        .deliveries
        .data
        .iter()
        .filter(|d| viewer.covers(d.subscription_id))
        .collect();
    let attempts: Vec<AttemptRecord> = trace
        .attempts
        .data
        .iter()
        .filter(|a| viewer.covers(a.subscription_id))
        .cloned()
        .collect();
    let visible = |e: &hookline_application::audit::AuditEvent| {
        viewer.portal().is_none_or(|g| {
            g.subscription_filter.is_none()
                || deliveries
                    .iter()
                    .any(|d| d.id.to_string() == e.aggregate_id)
                || SubscriptionId::parse(&e.aggregate_id).is_ok_and(|s| viewer.covers(s))
        })
    };
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    // A portal link limited to some subscriptions counts what it sees.
    let scoped = viewer
        .portal()
        .is_some_and(|g| g.subscription_filter.is_some());
    let (events, delivery_count, attempt_count) = if scoped {
        (
            trace.events.data.iter().filter(|e| visible(e)).count() as u64,
            deliveries.len() as u64,
            attempts.len() as u64,
        )
    } else {
        (
            trace.summary.events,
            trace.summary.deliveries,
            trace.summary.attempts,
        )
    };
    let content = markup! {
        h1 { (t(M::RequestTrace)) " " code { (trace.request_id) } }
        div.cards {
            div.card { div.value { (events) } div.label { (t(M::EventsInLog)) } }
            div.card { div.value { (delivery_count) } div.label { (t(M::Deliveries)) } }
            div.card { div.value { (attempt_count) } div.label { (t(M::Attempts)) } }
        }
        h2 { (t(M::EventsInLog)) }
        @if events == 0 {
            // Only a scoped link sees none (a trace has an event or is 404).
            p.muted { (t(M::NoEventsInTraceScoped)) }
        } @else {
        div.table-wrap { table {
            thead { tr { th scope="col" { (t(M::Position)) } th scope="col" { (t(M::Event)) } th scope="col" { (t(M::Aggregate)) } th scope="col" { (t(M::When)) } th scope="col" { (t(M::Who)) } } }
            tbody {
                @for e in trace.events.data.iter().filter(|e| visible(e)) {
                    tr {
                        td { (e.position) }
                        td { code { (e.event_type) } }
                        td.wrap { (e.aggregate_type) " " code { (e.aggregate_id) } }
                        td { (time(e.recorded_at)) }
                        td { code { (meta_str(&e.metadata, "actor")) } }
                    }
                }
            }
        } }
        }
        h2 { (t(M::Deliveries)) }
        @if deliveries.is_empty() {
            // A link limited to some subscriptions says what it sees.
            p.muted { (t(if scoped { M::NoDeliveriesInTraceScoped } else { M::NoDeliveriesInTrace })) }
        } @else {
        div.table-wrap { table {
            thead { tr { th scope="col" { (t(M::Status)) } th scope="col" { (t(M::Event)) } th scope="col" { (t(M::Url)) } th scope="col" { span.visually-hidden { (t(M::Details)) } } } }
            tbody {
                @for d in &deliveries {
                    tr { td { (delivery_status(locale, d.status)) } td { code { (d.event_type) } } td.url { (d.url) }
                         td { a href={ "/console/deliveries/" (d.id) } { (t(M::Details)) span.visually-hidden { " " (d.id) } } } }
                }
            }
        } }
        }
        h2 { (t(M::Attempts)) }
        // "No attempt yet: queued" is about one delivery; a request may
        // have caused none (or none this session sees).
        @if attempts.is_empty() && deliveries.is_empty() {
            p.muted { (t(if scoped { M::NoAttemptsInTraceScoped } else { M::NoAttemptsInTrace })) }
        } @else {
            (attempts_table(locale, &attempts))
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::RequestTrace),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}
