//! `GET /metrics`: the process's own counters and histograms, and the
//! gauges every process reads alike from the database.

use crate::error::AppError;
use crate::ports::{Metrics, MetricsExposition};
use crate::sources::{InboundCounts, InboundService};
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

pub struct MetricsService {
    recorder: Arc<dyn Metrics>,
    exposition: Arc<dyn MetricsExposition>,
    /// What the inbound sources received in this process.
    inbound: Option<Arc<InboundService>>,
}

impl fmt::Debug for MetricsService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsService").finish_non_exhaustive()
    }
}

impl MetricsService {
    pub fn new(recorder: Arc<dyn Metrics>, exposition: Arc<dyn MetricsExposition>) -> Self {
        Self {
            recorder,
            exposition,
            inbound: None,
        }
    }

    /// Also exposes what `inbound` received: requests accepted, recognised
    /// as a provider's retry, and refused (by refusal code).
    #[must_use]
    pub fn with_inbound(mut self, inbound: Arc<InboundService>) -> Self {
        self.inbound = Some(inbound);
        self
    }

    /// Every series, in the Prometheus text format (version 0.0.4).
    ///
    /// # Errors
    /// When the database gauges cannot be read.
    pub async fn scrape(&self) -> Result<String, AppError> {
        let mut text = self.exposition.render().await?;
        if let Some(inbound) = &self.inbound {
            text.push_str(&inbound_series(&inbound.stats()));
        }
        Ok(text)
    }

    /// Counts one answered HTTP request (`route`: its template).
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.recorder.http_request(method, route, status, elapsed);
    }
}

/// The inbound counters in the text format. Refusal codes are a fixed set
/// (`signature_invalid`, `timestamp_outside_tolerance`, …), so the label
/// stays bounded.
fn inbound_series(c: &InboundCounts) -> String {
    let mut out = String::new();
    out.push_str("# HELP hookline_inbound_requests_total Requests providers sent to the sources, by outcome (accepted, duplicate: a provider's retry recognised, refused).\n");
    out.push_str("# TYPE hookline_inbound_requests_total counter\n");
    let refused: u64 = c.refused.values().sum();
    for (outcome, n) in [
        ("accepted", c.accepted),
        ("duplicate", c.duplicates),
        ("refused", refused),
    ] {
        let _ = writeln!(
            out,
            "hookline_inbound_requests_total{{outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str("# HELP hookline_inbound_refused_total Requests the sources refused, by refusal code (also listed at GET /v1/sources/{id}/rejections).\n");
    out.push_str("# TYPE hookline_inbound_refused_total counter\n");
    for (code, n) in &c.refused {
        let _ = writeln!(out, "hookline_inbound_refused_total{{code=\"{code}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod inbound_tests {
    use super::*;

    #[test]
    fn inbound_counts_render_as_counters_by_outcome_and_code() {
        let mut c = InboundCounts {
            accepted: 3,
            duplicates: 1,
            ..InboundCounts::default()
        };
        c.refused.insert("signature_invalid", 2);
        c.refused.insert("source_not_found", 1);
        let text = inbound_series(&c);
        assert!(text.contains("hookline_inbound_requests_total{outcome=\"accepted\"} 3\n"));
        assert!(text.contains("hookline_inbound_requests_total{outcome=\"duplicate\"} 1\n"));
        assert!(text.contains("hookline_inbound_requests_total{outcome=\"refused\"} 3\n"));
        assert!(text.contains("hookline_inbound_refused_total{code=\"signature_invalid\"} 2\n"));
        assert!(text.contains("# TYPE hookline_inbound_refused_total counter\n"));
    }
}
