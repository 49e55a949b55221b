//! The dashboard: deliveries per minute and success rate over the last day
//! (inline SVG, no script), failing subscriptions, the queue, and the audit
//! chain verified on demand.

use super::shell;
use crate::console::i18n::{fill, M};
use crate::console::layout::{csrf, time, Nav};
use crate::console::web::{see_other, PageResult, Posted, Viewer};
use crate::state::AppState;
use axum::extract::State;
use axum::http::Uri;
use hookline_application::audit::{AnchoredHeads, Verification};
use hookline_application::dashboard::{Dashboard, BUCKET_MINUTES};
use maud::{html, Markup, PreEscaped};
use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 160.0;

/// Bars of deliveries per minute, one per interval.
fn rate_chart(d: &Dashboard, title: &str, desc: &str) -> Markup {
    let per_min: Vec<f64> = d
        .buckets
        .iter()
        .map(|b| b.total as f64 / BUCKET_MINUTES as f64)
        .collect();
    let max = per_min.iter().copied().fold(0.0_f64, f64::max).max(0.1);
    let bw = W / per_min.len().max(1) as f64;
    let mut svg = String::new();
    for (i, v) in per_min.iter().enumerate() {
        if *v <= 0.0 {
            continue;
        }
        let h = (v / max) * (H - 20.0);
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1d4ed8"></rect>"##,
            i as f64 * bw,
            H - h,
            (bw - 1.0).max(1.0),
            h
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="0" y1="{H}" x2="{W}" y2="{H}" stroke="#4b5563"></line><text x="4" y="14" font-size="12" fill="#111827">{:.1}/min</text>"##,
        max
    );
    html! {
        svg viewBox={ "0 0 " (W) " " (H + 2.0) } role="img" aria-labelledby="rate-title rate-desc" {
            title #rate-title { (title) }
            desc #rate-desc { (desc) }
            (PreEscaped(svg))
        }
    }
}

/// The share delivered among settled deliveries, per interval.
fn success_chart(d: &Dashboard, title: &str, desc: &str) -> Markup {
    let n = d.buckets.len().max(1) as f64;
    let step = W / n;
    let mut points = Vec::new();
    for (i, b) in d.buckets.iter().enumerate() {
        let settled = b.delivered + b.failed;
        if settled == 0 {
            continue;
        }
        let rate = b.delivered as f64 / settled as f64;
        points.push(format!(
            "{:.1},{:.1}",
            i as f64 * step + step / 2.0,
            H - rate * (H - 20.0)
        ));
    }
    let mut svg = format!(
        r##"<line x1="0" y1="20" x2="{W}" y2="20" stroke="#d1d5db" stroke-dasharray="4 4"></line><text x="4" y="14" font-size="12" fill="#111827">100%</text><line x1="0" y1="{H}" x2="{W}" y2="{H}" stroke="#4b5563"></line>"##
    );
    if !points.is_empty() {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#166534" stroke-width="2"></polyline>"##,
            points.join(" ")
        );
    }
    html! {
        svg viewBox={ "0 0 " (W) " " (H + 2.0) } role="img" aria-labelledby="success-title success-desc" {
            title #success-title { (title) }
            desc #success-desc { (desc) }
            (PreEscaped(svg))
        }
    }
}

/// `GET /console/dashboard`.
pub async fn page(State(state): State<AppState>, viewer: Viewer, uri: Uri) -> PageResult {
    render(&state, &viewer, &uri, false).await
}

/// `POST /console/dashboard`: the dashboard with the audit chain checked
/// (a POST with the session's CSRF token: another site cannot make a
/// signed-in browser run the check).
pub async fn verify(State(state): State<AppState>, uri: Uri, post: Posted) -> PageResult {
    render(&state, &post.viewer, &uri, true).await
}

async fn render(state: &AppState, viewer: &Viewer, uri: &Uri, verify: bool) -> PageResult {
    let Some(tenant) = viewer.tenant() else {
        return Ok(see_other("/console/tenants"));
    };
    let locale = viewer.locale;
    let t = |m: M| m.text(locale);
    let d = state.dashboard.dashboard(tenant, state.clock.now()).await?;
    let failing: Vec<_> = d
        .failing
        .iter()
        .filter(|f| viewer.covers(f.subscription_id))
        .collect();
    // A portal link limited to some subscriptions sees only theirs: the
    // tenant-wide figures, charts and audit chain are not shown.
    let scoped = viewer
        .portal()
        .is_some_and(|g| g.subscription_filter.is_some());
    let verification = if verify && !scoped {
        Some(
            state
                .audit
                .verify(Some(tenant), &AnchoredHeads::new(), &mut |_| Ok(()))
                .await?,
        )
    } else {
        None
    };
    let rate = d
        .success_rate()
        .map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0));
    let summary = fill(
        t(M::ChartSummary),
        &[
            &d.total.to_string(),
            &d.delivered.to_string(),
            &d.failed.to_string(),
        ],
    );
    let content = html! {
        h1 { (t(M::Dashboard)) }
        @if scoped {
            p.notice #scoped { (t(M::ScopedDashboard)) }
        } @else {
        p.lead { (t(M::DashboardLead)) " " (time(d.since)) }
        div.cards {
            div.card { div.value #total { (d.total) } div.label { (t(M::DeliveriesLastDay)) } }
            div.card { div.value #success-rate { (rate) } div.label { (t(M::SuccessRate)) } }
            div.card { div.value #queued { (d.queue.queued) } div.label { (t(M::QueueDepth)) } }
            div.card { div.value { (d.queue.due) } div.label { (t(M::DueNow)) }
                @if let Some(o) = d.queue.oldest_due_at { div.label { (t(M::OldestDue)) " " (time(o)) } } }
        }
        figure.chart {
            figcaption { (t(M::DeliveriesPerMinute)) }
            (rate_chart(&d, t(M::DeliveriesPerMinute), &summary))
        }
        figure.chart {
            figcaption { (t(M::SuccessRateChart)) }
            (success_chart(&d, t(M::SuccessRateChart), &summary))
        }
        }
        h2 { (t(M::FailingSubscriptions)) }
        @if failing.is_empty() {
            p.muted { (t(M::NoFailing)) }
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { (t(M::Url)) } th scope="col" { (t(M::Failed)) } th scope="col" { (t(M::LastError)) } } }
                tbody {
                    @for f in &failing {
                        tr {
                            td.url { a href={ "/console/subscriptions/" (f.subscription_id) } { (f.url) } }
                            td { (f.failed) " / " (f.total) }
                            td.wrap { (f.last_error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
        }
        @if !scoped {
        h2 { (t(M::AuditChain)) }
        p { (t(M::AuditExplain)) }
        @match &verification {
            None => {}
            Some(Verification::Intact { events, aggregates, .. }) => div.notice.success role="status" #audit-result {
                (fill(t(M::AuditIntact), &[&events.to_string(), &aggregates.to_string()]))
            },
            Some(Verification::Broken(b)) => div.notice.error role="alert" #audit-result {
                (t(M::AuditBroken)) " " code { (format!("{b:?}")) }
            },
            Some(other) => div.notice.error role="alert" #audit-result {
                (t(M::AuditBroken)) " " code { (format!("{other:?}")) }
            },
        }
        form method="post" action="/console/dashboard" {
            (csrf(viewer))
            button.secondary #verify-audit type="submit" { (t(M::VerifyNow)) }
        }
        }
    };
    Ok(shell(state, viewer, t(M::Dashboard), Nav::Dashboard, uri, content).await)
}
