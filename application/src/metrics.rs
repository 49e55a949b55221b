//! `GET /metrics`: the process's own counters and histograms, and the
//! gauges every process reads alike from the database.

use crate::error::AppError;
use crate::ports::{Metrics, MetricsExposition};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub struct MetricsService {
    recorder: Arc<dyn Metrics>,
    exposition: Arc<dyn MetricsExposition>,
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
        }
    }

    /// Every series, in the Prometheus text format (version 0.0.4).
    ///
    /// # Errors
    /// When the database gauges cannot be read.
    pub async fn scrape(&self) -> Result<String, AppError> {
        self.exposition.render().await
    }

    /// Counts one answered HTTP request (`route`: its template).
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.recorder.http_request(method, route, status, elapsed);
    }
}
