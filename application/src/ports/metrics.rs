//! Metrics: what the publish path, the worker's recorder and the HTTP layer
//! report as it happens (counters and histograms kept in memory by the
//! adapter, with atomic increments), and the exposition that renders them
//! with the gauges read from the database at scrape time.

use crate::error::AppError;
use async_trait::async_trait;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::TenantId;
use std::time::Duration;

/// What became of one recorded attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx: the delivery is done.
    Delivered,
    /// Failed; another attempt is scheduled.
    Retry,
    /// Failed in a way retrying would not fix.
    Failed,
    /// Failed, and the retry policy gave up.
    Abandoned,
}

impl AttemptOutcome {
    pub const ALL: [Self; 4] = [Self::Delivered, Self::Retry, Self::Failed, Self::Abandoned];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// One recorded attempt, as the metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptMeasure {
    pub outcome: AttemptOutcome,
    /// `None` for a delivered attempt.
    pub error_kind: Option<ErrorKind>,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub duration: Duration,
}

/// A delivery that finished without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAttempted {
    /// Its subscription is disabled (kept for a recovery).
    Skipped,
    /// Its subscription is gone.
    Abandoned,
}

impl NotAttempted {
    pub const ALL: [Self; 2] = [Self::Skipped, Self::Abandoned];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Abandoned => "abandoned",
        }
    }
}

/// In-process counters and histograms. Every method must be cheap (no IO,
/// no allocation on the hot path): they are called once per publish, per
/// recorded attempt and per HTTP request. The defaults do nothing.
pub trait Metrics: Send + Sync {
    /// An event was published: `deliveries` enqueued, `skipped` of them at
    /// once because their subscription is disabled.
    fn published(&self, _tenant: TenantId, _deliveries: usize, _skipped: usize) {}
    /// An attempt's outcome was recorded.
    fn attempt(&self, _tenant: TenantId, _attempt: AttemptMeasure) {}
    /// A delivery was delivered `latency` after it was enqueued.
    fn delivered_after(&self, _tenant: TenantId, _latency: Duration) {}
    /// A delivery was finished without an attempt.
    fn not_attempted(&self, _tenant: TenantId, _why: NotAttempted) {}
    /// An HTTP request was answered. `route` is the route template
    /// (`/v1/subscriptions/{id}`), never the raw path.
    fn http_request(&self, _method: &str, _route: &str, _status: u16, _elapsed: Duration) {}
}

/// Metrics that record nothing (tests, one-shot commands).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {}

/// Renders every series of this process in the Prometheus text format:
/// its own counters and histograms, and the gauges every process reads
/// alike from the database (queue, projection lag, subscriptions).
#[async_trait]
pub trait MetricsExposition: Send + Sync {
    /// # Errors
    /// When the database gauges cannot be read.
    async fn render(&self) -> Result<String, AppError>;
}
