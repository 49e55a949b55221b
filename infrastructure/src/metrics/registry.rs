//! The in-process series: counters and histograms in fixed arrays of
//! atomics, indexed by their (bounded) labels, so recording is a few
//! relaxed atomic adds with no allocation and no lock on the delivery path.
//! Per-tenant counters (opt-in) and HTTP routes (a bounded set of
//! templates) are looked up under a read lock and allocated once.

use super::text::{Histogram, Text};
use hookline_application::ports::{AttemptMeasure, AttemptOutcome, Metrics, NotAttempted};
use hookline_domain::outcome::ErrorKind;
use hookline_domain::TenantId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Attempt durations, in seconds (the webhook timeout is at most minutes).
static ATTEMPT_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Enqueue to delivered, in seconds: from immediate to after a day of
/// retries.
static LATENCY_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
    86400.0,
];
/// HTTP request durations, in seconds.
static HTTP_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const OUTCOMES: usize = AttemptOutcome::ALL.len();
/// `none` and each error kind.
const KINDS: usize = ErrorKind::ALL.len() + 1;
/// `none`, `1xx` … `5xx`.
const CLASSES: usize = 6;
const CLASS_NAMES: [&str; CLASSES] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
];

fn outcome_index(o: AttemptOutcome) -> usize {
    match o {
        AttemptOutcome::Delivered => 0,
        AttemptOutcome::Retry => 1,
        AttemptOutcome::Failed => 2,
        AttemptOutcome::Abandoned => 3,
    }
}

fn kind_index(k: Option<ErrorKind>) -> usize {
    k.and_then(|k| ErrorKind::ALL.iter().position(|x| *x == k))
        .map_or(0, |i| i + 1)
}

fn kind_name(i: usize) -> &'static str {
    i.checked_sub(1)
        .and_then(|i| ErrorKind::ALL.get(i))
        .map_or("none", |k| k.as_str())
}

fn class_index(status: Option<u16>) -> usize {
    match status {
        Some(s @ 100..=599) => usize::from(s / 100),
        _ => 0,
    }
}

fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

fn zeros<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// The counters kept for all tenants, and for each one when asked.
#[derive(Debug)]
struct Counters {
    published: AtomicU64,
    enqueued: AtomicU64,
    /// `[outcome][error kind][status class]`, flattened.
    attempts: [AtomicU64; OUTCOMES * KINDS * CLASSES],
    not_attempted: [AtomicU64; NotAttempted::ALL.len()],
}

impl Counters {
    fn new() -> Self {
        Self {
            published: AtomicU64::new(0),
            enqueued: AtomicU64::new(0),
            attempts: zeros(),
            not_attempted: zeros(),
        }
    }

    fn published(&self, deliveries: usize, skipped: usize) {
        self.published.fetch_add(1, Ordering::Relaxed);
        self.enqueued
            .fetch_add(deliveries as u64, Ordering::Relaxed);
        if skipped > 0 {
            self.not_attempted[0].fetch_add(skipped as u64, Ordering::Relaxed);
        }
    }

    fn attempt(&self, a: &AttemptMeasure) {
        let i = (outcome_index(a.outcome) * KINDS + kind_index(a.error_kind)) * CLASSES
            + class_index(a.status);
        if let Some(c) = self.attempts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn not_attempted(&self, why: NotAttempted) {
        let i = match why {
            NotAttempted::Skipped => 0,
            NotAttempted::Abandoned => 1,
        };
        self.not_attempted[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// `labels`, after a `tenant` label when there is one.
fn with_tenant<'a>(
    tenant: Option<&'a str>,
    labels: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut v = Vec::with_capacity(labels.len() + 1);
    if let Some(t) = tenant {
        v.push(("tenant", t));
    }
    v.extend_from_slice(labels);
    v
}

/// One route template's requests, by method.
#[derive(Debug)]
struct RouteStats {
    /// `[method][status class]`, flattened.
    requests: [AtomicU64; METHODS.len() * CLASSES],
    durations: [Histogram; METHODS.len()],
}

impl RouteStats {
    fn new() -> Self {
        Self {
            requests: zeros(),
            durations: std::array::from_fn(|_| Histogram::new(&HTTP_BUCKETS)),
        }
    }
}

/// Every in-process series of one Hookline process.
#[derive(Debug)]
pub struct Registry {
    all: Counters,
    /// `Some` with `HOOKLINE_METRICS_PER_TENANT=true`.
    tenants: Option<RwLock<HashMap<TenantId, Arc<Counters>>>>,
    attempt_duration: Histogram,
    delivery_latency: Histogram,
    routes: RwLock<HashMap<Box<str>, Arc<RouteStats>>>,
}

impl Registry {
    pub fn new(per_tenant: bool) -> Self {
        Self {
            all: Counters::new(),
            tenants: per_tenant.then(|| RwLock::new(HashMap::new())),
            attempt_duration: Histogram::new(&ATTEMPT_BUCKETS),
            delivery_latency: Histogram::new(&LATENCY_BUCKETS),
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// Runs `f` on the tenant's counters, when they are kept.
    fn for_tenant(&self, tenant: TenantId, f: impl FnOnce(&Counters)) {
        let Some(tenants) = &self.tenants else {
            return;
        };
        if let Some(c) = tenants.read().ok().and_then(|m| m.get(&tenant).cloned()) {
            return f(&c);
        }
        if let Ok(mut map) = tenants.write() {
            f(map
                .entry(tenant)
                .or_insert_with(|| Arc::new(Counters::new())));
        }
    }

    fn route(&self, route: &str) -> Option<Arc<RouteStats>> {
        if let Some(stats) = self.routes.read().ok()?.get(route) {
            return Some(stats.clone());
        }
        let mut map = self.routes.write().ok()?;
        Some(
            map.entry(route.into())
                .or_insert_with(|| Arc::new(RouteStats::new()))
                .clone(),
        )
    }

    /// Writes every in-process series.
    pub fn render(&self, t: &mut Text) {
        let per_tenant: Vec<(String, Arc<Counters>)> = match &self.tenants {
            Some(map) => {
                let mut v: Vec<_> = map
                    .read()
                    .map(|m| m.iter().map(|(k, c)| (k.to_string(), c.clone())).collect())
                    .unwrap_or_default();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            }
            None => Vec::new(),
        };
        // Without per-tenant counters, one unlabelled set; with them, one
        // set per tenant (sum them for the whole).
        let sets: Vec<(Option<&str>, &Counters)> = if self.tenants.is_some() {
            per_tenant
                .iter()
                .map(|(t, c)| (Some(t.as_str()), c.as_ref()))
                .collect()
        } else {
            vec![(None, &self.all)]
        };
        t.family(
            "hookline_events_published_total",
            "counter",
            "Events published through this process.",
        );
        for (tenant, c) in &sets {
            t.counter(
                "hookline_events_published_total",
                &with_tenant(*tenant, &[]),
                c.published.load(Ordering::Relaxed),
            );
        }
        t.family(
            "hookline_deliveries_enqueued_total",
            "counter",
            "Deliveries enqueued by events published through this process (one per matching subscription).",
        );
        for (tenant, c) in &sets {
            t.counter(
                "hookline_deliveries_enqueued_total",
                &with_tenant(*tenant, &[]),
                c.enqueued.load(Ordering::Relaxed),
            );
        }
        t.family(
            "hookline_attempts_total",
            "counter",
            "Delivery attempts recorded by this process's worker, by outcome (delivered, retry, failed, abandoned), error kind and status class.",
        );
        for (tenant, c) in &sets {
            for (i, n) in c.attempts.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                let class = i % CLASSES;
                let kind = (i / CLASSES) % KINDS;
                let outcome = i / (CLASSES * KINDS);
                // Zero series are left out, except the delivered one, so
                // that ratios have a denominator from the start.
                if n == 0 && !(i == 2 && tenant.is_none()) {
                    continue;
                }
                t.counter(
                    "hookline_attempts_total",
                    &with_tenant(
                        *tenant,
                        &[
                            ("outcome", AttemptOutcome::ALL[outcome].as_str()),
                            ("error_kind", kind_name(kind)),
                            ("status_class", CLASS_NAMES[class]),
                        ],
                    ),
                    n,
                );
            }
        }
        t.family(
            "hookline_deliveries_not_attempted_total",
            "counter",
            "Deliveries finished without an attempt: skipped (subscription disabled; recoverable) or abandoned (subscription deleted).",
        );
        for (tenant, c) in &sets {
            for (i, why) in NotAttempted::ALL.iter().enumerate() {
                t.counter(
                    "hookline_deliveries_not_attempted_total",
                    &with_tenant(*tenant, &[("reason", why.as_str())]),
                    c.not_attempted[i].load(Ordering::Relaxed),
                );
            }
        }
        t.family(
            "hookline_attempt_duration_seconds",
            "histogram",
            "Duration of delivery attempts (request sent to response read), recorded by this process.",
        );
        t.histogram(
            "hookline_attempt_duration_seconds",
            &[],
            &self.attempt_duration,
        );
        t.family(
            "hookline_delivery_latency_seconds",
            "histogram",
            "From a delivery's enqueue to its successful attempt's end, retries included.",
        );
        t.histogram(
            "hookline_delivery_latency_seconds",
            &[],
            &self.delivery_latency,
        );
        let mut routes: Vec<(String, Arc<RouteStats>)> = self
            .routes
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
            .unwrap_or_default();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        t.family(
            "hookline_http_requests_total",
            "counter",
            "HTTP requests answered, by method, route template and status class.",
        );
        for (route, stats) in &routes {
            for (i, n) in stats.requests.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    t.counter(
                        "hookline_http_requests_total",
                        &[
                            ("method", METHODS[i / CLASSES]),
                            ("route", route),
                            ("status_class", CLASS_NAMES[i % CLASSES]),
                        ],
                        n,
                    );
                }
            }
        }
        t.family(
            "hookline_http_request_duration_seconds",
            "histogram",
            "Time to answer HTTP requests, by method and route template.",
        );
        for (route, stats) in &routes {
            for (m, h) in stats.durations.iter().enumerate() {
                if h.count() > 0 {
                    t.histogram(
                        "hookline_http_request_duration_seconds",
                        &[("method", METHODS[m]), ("route", route)],
                        h,
                    );
                }
            }
        }
    }
}

impl Metrics for Registry {
    fn published(&self, tenant: TenantId, deliveries: usize, skipped: usize) {
        self.all.published(deliveries, skipped);
        self.for_tenant(tenant, |c| c.published(deliveries, skipped));
    }

    fn attempt(&self, tenant: TenantId, attempt: AttemptMeasure) {
        self.all.attempt(&attempt);
        self.for_tenant(tenant, |c| c.attempt(&attempt));
        self.attempt_duration.observe(attempt.duration);
    }

    fn delivered_after(&self, _tenant: TenantId, latency: Duration) {
        self.delivery_latency.observe(latency);
    }

    fn not_attempted(&self, tenant: TenantId, why: NotAttempted) {
        self.all.not_attempted(why);
        self.for_tenant(tenant, |c| c.not_attempted(why));
    }

    fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Some(stats) = self.route(route) else {
            return;
        };
        let m = method_index(method);
        if let Some(c) = stats.requests.get(m * CLASSES + class_index(Some(status))) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = stats.durations.get(m) {
            h.observe(elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(r: &Registry) -> String {
        let mut t = Text::new();
        r.render(&mut t);
        t.finish()
    }

    #[test]
    fn attempts_are_counted_by_outcome_kind_and_class() {
        let r = Registry::new(false);
        let tenant = TenantId::from_uuid(uuid::Uuid::nil());
        r.attempt(
            tenant,
            AttemptMeasure {
                outcome: AttemptOutcome::Retry,
                error_kind: Some(ErrorKind::HttpStatus),
                status: Some(503),
                duration: Duration::from_millis(20),
            },
        );
        r.attempt(
            tenant,
            AttemptMeasure {
                outcome: AttemptOutcome::Abandoned,
                error_kind: Some(ErrorKind::Connect),
                status: None,
                duration: Duration::from_millis(1),
            },
        );
        r.published(tenant, 3, 1);
        let s = render(&r);
        assert!(s.contains("hookline_attempts_total{outcome=\"retry\",error_kind=\"http_status\",status_class=\"5xx\"} 1\n"), "{s}");
        assert!(s.contains("hookline_attempts_total{outcome=\"abandoned\",error_kind=\"connect\",status_class=\"none\"} 1\n"), "{s}");
        assert!(s.contains("hookline_attempts_total{outcome=\"delivered\",error_kind=\"none\",status_class=\"2xx\"} 0\n"), "{s}");
        assert!(s.contains("hookline_deliveries_enqueued_total 3\n"), "{s}");
        assert!(
            s.contains("hookline_deliveries_not_attempted_total{reason=\"skipped\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("hookline_attempt_duration_seconds_count 2\n"),
            "{s}"
        );
        assert!(!s.contains("tenant="), "{s}");
    }

    #[test]
    fn tenants_get_a_label_only_when_asked() {
        let r = Registry::new(true);
        let a = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        r.published(a, 2, 0);
        let s = render(&r);
        assert!(
            s.contains(&format!(
                "hookline_events_published_total{{tenant=\"{a}\"}} 1\n"
            )),
            "{s}"
        );
    }

    #[test]
    fn unknown_methods_and_statuses_stay_bounded() {
        let r = Registry::new(false);
        r.http_request("BREW", "/v1/x/{id}", 999, Duration::from_millis(3));
        r.http_request("GET", "/v1/x/{id}", 204, Duration::from_millis(3));
        let s = render(&r);
        assert!(s.contains("hookline_http_requests_total{method=\"other\",route=\"/v1/x/{id}\",status_class=\"none\"} 1\n"), "{s}");
        assert!(s.contains("hookline_http_requests_total{method=\"GET\",route=\"/v1/x/{id}\",status_class=\"2xx\"} 1\n"), "{s}");
    }
}
