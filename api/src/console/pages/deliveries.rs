//! A subscription's delivery log (filters, live updates), and one delivery
//! with its exact payload and every attempt, retry and recovery.

use super::shell;
use super::subscriptions::visible;
use crate::console::i18n::{field_error, Locale, M};
use crate::console::layout::{
    csrf, delivery_status, done_notice, pretty_json, time, urlencode, Nav,
};
use crate::console::web::Query;
use crate::console::web::{html, see_other, Failure, PageResult, Posted, Viewer};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use chrono::{DateTime, NaiveDateTime, Utc};
use hookline_application::deliveries::ListDeliveries;
use hookline_application::pagination::{within_api_range, PageRequest};
use hookline_application::ports::{AttemptRecord, DeliveryRecord};
use hookline_application::subscriptions::SubscriptionView;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::{DeliveryId, EventPattern, SubscriptionId, ValidationError};
use maud::{html as markup, Markup};
use serde::Deserialize;

/// The delivery log's filters, as the form sends them.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct LogFilters {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// A delivery to point out (after a test send).
    #[serde(default)]
    pub delivery: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A `datetime-local` value (or RFC 3339) read as UTC.
fn parse_local(field: &str, v: &str) -> Result<DateTime<Utc>, ValidationError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
                .map(|n| n.and_utc())
        })
        .filter(|t| within_api_range(*t))
        .ok_or_else(|| {
            ValidationError::new(field, "must be a date and time such as 2026-12-03T10:30")
        })
}

impl LogFilters {
    /// The filters as a query, or every one that is wrong.
    fn query(&self, id: SubscriptionId) -> Result<ListDeliveries, Vec<ValidationError>> {
        fn keep<T>(
            errors: &mut Vec<ValidationError>,
            r: Result<Option<T>, ValidationError>,
        ) -> Option<T> {
            r.map_err(|e| errors.push(e)).ok().flatten()
        }
        let mut errors = Vec::new();
        let status = keep(
            &mut errors,
            non_empty(&self.status)
                .map(|s| {
                    DeliveryStatus::parse(s)
                        .ok_or_else(|| ValidationError::new("status", "is not a delivery status"))
                })
                .transpose(),
        );
        let event = keep(
            &mut errors,
            non_empty(&self.event)
                .map(|e| EventPattern::parse(e, "event"))
                .transpose(),
        );
        let since = keep(
            &mut errors,
            non_empty(&self.since)
                .map(|v| parse_local("since", v))
                .transpose(),
        );
        let until = keep(
            &mut errors,
            non_empty(&self.until)
                .map(|v| parse_local("until", v))
                .transpose(),
        );
        if let (Some(from), Some(to)) = (since, until) {
            if from >= to {
                errors.push(ValidationError::new(
                    "until",
                    "must be after the start (From)",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ListDeliveries {
            status,
            event,
            subscription_id: Some(id),
            request_id: None,
            since,
            until,
            page: PageRequest {
                limit: 50,
                before: None,
            },
        })
    }

    fn query_string(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("status", &self.status),
            ("event", &self.event),
            ("since", &self.since),
            ("until", &self.until),
            // The delivery just sent stays highlighted across refreshes.
            ("delivery", &self.delivery),
        ] {
            if let Some(v) = non_empty(v) {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        parts.join("&")
    }
}

fn last_error(locale: Locale, d: &DeliveryRecord) -> Markup {
    markup! {
        @if let Some(code) = d.last_status_code { "HTTP " (code) " " }
        @if let Some(kind) = d.last_error_kind { span.muted { (kind.as_str()) } " " }
        @if let Some(e) = &d.last_error { span.wrap { (e) } }
        @if d.last_status_code.is_none() && d.last_error.is_none() && d.last_error_kind.is_none() { span.muted { (M::NoErrors.text(locale)) } }
    }
}

fn rows(locale: Locale, list: &[DeliveryRecord], highlight: Option<&str>) -> Markup {
    let t = |m: M| m.text(locale);
    markup! {
        @if list.is_empty() {
            tr { td colspan="6" { span.muted { (t(M::NoDeliveries)) } } }
        }
        @for d in list {
            tr data-delivery=(d.id) data-status=(d.status.as_str()) aria-current=[(highlight == Some(d.id.to_string().as_str())).then_some("true")] {
                td { (delivery_status(locale, d.status)) }
                td { (time(d.created_at)) }
                td { code { (d.event_type) } }
                td { (d.attempts) }
                td.wrap { (last_error(locale, d)) }
                td { a href={ "/console/deliveries/" (d.id) } { (t(M::Details)) span.visually-hidden { " " (d.id) } } }
            }
        }
    }
}

async fn list_for(
    state: &AppState,
    viewer: &Viewer,
    id: SubscriptionId,
    filters: &LogFilters,
) -> Result<Result<Vec<DeliveryRecord>, Vec<ValidationError>>, Failure> {
    let query = match filters.query(id) {
        Ok(q) => q,
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(state
        .deliveries
        .list(viewer.require_tenant()?, query)
        .await?
        .data))
}

/// The log under a subscription's page.
pub async fn log_section(
    state: &AppState,
    viewer: &Viewer,
    view: &SubscriptionView,
    filters: &LogFilters,
) -> Result<Markup, Failure> {
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let listed = list_for(state, viewer, view.id, filters).await?;
    let (list, filter_error) = match listed {
        Ok(l) => (l, None),
        Err(errors) => (
            vec![],
            Some(
                errors
                    .iter()
                    .map(|e| field_error(locale, e))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    };
    let qs = filters.query_string();
    let live = format!("/console/subscriptions/{}/deliveries?{qs}", view.id);
    let status = non_empty(&filters.status);
    Ok(markup! {
        h2 #deliveries { (t(M::DeliveryLog)) }
        form.filters method="get" action={ "/console/subscriptions/" (view.id) "#deliveries" } {
            div.field {
                label for="f-status" { (t(M::FilterStatus)) }
                select #f-status name="status" {
                    option value="" { (t(M::AnyStatus)) }
                    @for s in DeliveryStatus::ALL {
                        option value=(s.as_str()) selected[status == Some(s.as_str())] { (status_text(locale, s)) }
                    }
                }
            }
            div.field {
                label for="f-event" { (t(M::FilterEvent)) }
                input #f-event type="text" name="event" value=(non_empty(&filters.event).unwrap_or("")) placeholder="invoice.*";
            }
            div.field {
                label for="f-since" { (t(M::From)) }
                input #f-since type="datetime-local" name="since" value=(non_empty(&filters.since).unwrap_or(""));
            }
            div.field {
                label for="f-until" { (t(M::Until)) }
                input #f-until type="datetime-local" name="until" value=(non_empty(&filters.until).unwrap_or(""));
            }
            button.secondary type="submit" { (t(M::ApplyFilters)) }
        }
        @if let Some(e) = filter_error { div.notice.error role="alert" { (e) } }
        p.hint { (t(M::LiveHint)) }
        div.table-wrap {
            table #delivery-log {
                caption.muted { (t(M::DeliveryLogCaption)) }
                thead { tr {
                    th scope="col" { (t(M::Status)) }
                    th scope="col" { (t(M::Time)) }
                    th scope="col" { (t(M::Event)) }
                    th scope="col" { (t(M::Attempts)) }
                    th scope="col" { (t(M::LastError)) }
                    th scope="col" { span.visually-hidden { (t(M::Details)) } }
                } }
                tbody #log-rows data-live=(live) data-offline=(t(M::LiveOffline)) aria-live="polite" {
                    (rows(locale, &list, non_empty(&filters.delivery)))
                }
            }
        }
        @if viewer.can_write() {
            h3 { (t(M::RecoverTitle)) }
            form.filters method="post" action={ "/console/subscriptions/" (view.id) "/recover" } {
                (csrf(viewer))
                div.field {
                    label for="recover-since" { (t(M::RecoverSince)) }
                    input #recover-since type="datetime-local" name="since" required;
                }
                button.secondary type="submit" { (t(M::Recover)) }
            }
        }
    })
}

fn status_text(locale: Locale, s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Pending => M::StatusPending,
        DeliveryStatus::Delivered => M::StatusDelivered,
        DeliveryStatus::Failed => M::StatusFailed,
        DeliveryStatus::Abandoned => M::StatusAbandoned,
        DeliveryStatus::Skipped => M::StatusSkipped,
    }
    .text(locale)
}

/// `GET /console/subscriptions/{id}/deliveries`: the log's rows, for live
/// updates.
pub async fn log_rows(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(filters): Query<LogFilters>,
) -> PageResult {
    let id = visible(&state, &viewer, &id).await?;
    let list = list_for(&state, &viewer, id, &filters)
        .await?
        .unwrap_or_default();
    Ok(html(rows(
        viewer.locale,
        &list,
        non_empty(&filters.delivery),
    )))
}

fn delivery_id(raw: &str) -> Result<DeliveryId, Failure> {
    DeliveryId::parse(raw).map_err(|_| Failure::new(StatusCode::NOT_FOUND, "page_not_found"))
}

/// An attempt's outcome: the delivery's status after it, except that an
/// attempt after which the delivery is still pending failed and is retried
/// ("pending" read as "not tried yet").
fn attempt_outcome(locale: Locale, outcome: DeliveryStatus) -> Markup {
    match outcome {
        DeliveryStatus::Pending => markup! {
            span.badge.pending data-status="pending" { (M::AttemptFailedRetrying.text(locale)) }
        },
        other => delivery_status(locale, other),
    }
}

pub(super) fn attempts_table(locale: Locale, attempts: &[AttemptRecord]) -> Markup {
    let t = |m: M| m.text(locale);
    markup! {
        @if attempts.is_empty() {
            p.muted { (t(M::NoAttemptsYet)) }
        } @else {
            @for a in attempts {
                article.card.attempt data-attempt=(a.attempt) {
                    h3 { (t(M::Attempt)) " " (a.attempt) " · " (attempt_outcome(locale, a.outcome)) }
                    dl.props {
                        dt { (t(M::Started)) } dd { (time(a.started_at)) }
                        dt { (t(M::Duration)) } dd { (a.duration_ms) " ms" }
                        dt { (t(M::StatusCode)) } dd { @if let Some(c) = a.status_code { (c) } @else { "—" } }
                        @if a.error_kind.is_some() || a.error_message.is_some() {
                            dt { (t(M::Error)) } dd { @if let Some(k) = a.error_kind { code { (k.as_str()) } " " } (a.error_message.as_deref().unwrap_or("")) }
                        }
                        dt { (t(M::Url)) } dd { (a.url) }
                        @if let Some(r) = &a.request_id {
                            dt { (t(M::RequestId)) } dd { a href={ "/console/requests/" (urlencode(r)) } { code { (r) } } }
                        }
                        @if let Some(r) = &a.triggered_by {
                            dt { (t(M::TriggeredBy)) } dd { a href={ "/console/requests/" (urlencode(r)) } { code { (r) } } }
                        }
                        @if let Some(n) = a.next_attempt_at {
                            dt { (t(M::NextAttempt)) } dd { (time(n)) }
                        }
                    }
                    @if let Some(x) = &a.response_excerpt {
                        details open {
                            summary { (t(M::ResponseExcerpt)) }
                            pre.excerpt tabindex="0" { (x) }
                        }
                    }
                }
            }
        }
    }
}

async fn load_delivery(
    state: &AppState,
    viewer: &Viewer,
    raw: &str,
) -> Result<hookline_application::deliveries::DeliveryDetail, Failure> {
    let id = delivery_id(raw)?;
    let detail = state
        .deliveries
        .get(viewer.require_tenant()?, id, None)
        .await?;
    viewer.check_covers(detail.delivery.subscription_id)?;
    Ok(detail)
}

#[derive(Debug, Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /console/deliveries/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> PageResult {
    let detail = load_delivery(&state, &viewer, &id).await?;
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let d = &detail.delivery;
    let content = markup! {
        p { a href={ "/console/subscriptions/" (d.subscription_id) "#deliveries" } { "← " (t(M::DeliveryLog)) } }
        h1 { (t(M::Delivery)) " " code { (d.id) } }
        (done_notice(locale, q.done.as_deref()))
        dl.props {
            dt { (t(M::Status)) } dd #delivery-status { (delivery_status(locale, d.status)) }
            dt { (t(M::Event)) } dd { code { (d.event_type) } }
            dt { (t(M::Url)) } dd { (d.url) }
            dt { (t(M::Created)) } dd { (time(d.created_at)) }
            dt { (t(M::Attempts)) } dd { (d.attempts) }
            @if let Some(r) = &d.request_id {
                dt { (t(M::RequestId)) } dd { a href={ "/console/requests/" (urlencode(r)) } { code { (r) } } }
            }
            @if let Some(n) = d.next_attempt_at { dt { (t(M::NextAttempt)) } dd { (time(n)) } }
        }
        @if viewer.can_write() && d.status != DeliveryStatus::Delivered {
            form method="post" action={ "/console/deliveries/" (d.id) "/retry" } {
                (csrf(&viewer))
                button type="submit" { (t(M::RetryNow)) }
            }
        }
        h2 { (t(M::PayloadSent)) }
        pre #payload tabindex="0" { (pretty_json(detail.payload.get())) }
        h2 { (t(M::Attempts)) }
        div #attempts data-live={ "/console/deliveries/" (d.id) "/attempts" } data-offline=(t(M::LiveOffline)) aria-live="polite" {
            (attempts_table(locale, &detail.attempt_log))
        }
    };
    Ok(shell(
        &state,
        &viewer,
        t(M::Delivery),
        Nav::Subscriptions,
        &uri,
        content,
    )
    .await)
}

/// `GET /console/deliveries/{id}/attempts`: the attempts, for live updates.
pub async fn attempts_part(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> PageResult {
    let detail = load_delivery(&state, &viewer, &id).await?;
    Ok(html(attempts_table(viewer.locale, &detail.attempt_log)))
}

/// `POST /console/deliveries/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let detail = load_delivery(&state, &post.viewer, &id).await?;
    let id = detail.delivery.id;
    state.deliveries.retry(&post.viewer.ctx()?, id).await?;
    Ok(see_other(&format!("/console/deliveries/{id}?done=retried")))
}

/// `POST /console/subscriptions/{id}/recover`.
pub async fn recover(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: Posted,
) -> PageResult {
    let id = visible(&state, &post.viewer, &id).await?;
    let since = post.form.get("since").unwrap_or("").trim();
    let since = parse_local("since", since)
        .map_err(|e| Failure::from(hookline_application::AppError::invalid(e)))?;
    state
        .deliveries
        .recover(&post.viewer.ctx()?, id, since, None)
        .await?;
    Ok(see_other(&format!(
        "/console/subscriptions/{id}?done=recovered#deliveries"
    )))
}
