//! The console's dashboard: delivery rate and success over the last day,
//! failing subscriptions, the queue, and the audit chain checked on demand.

use crate::error::AppError;
use crate::ports::{DeliveryBucket, DeliveryStats, FailingSubscription, LastOutcome, QueueDepth};
use chrono::{DateTime, Duration, DurationRound, Utc};
use hookline_domain::{SubscriptionId, TenantId};
use std::fmt;
use std::sync::Arc;

/// The dashboard's window and resolution: 24 h in 10-minute intervals.
pub const WINDOW_HOURS: i64 = 24;
pub const BUCKET_MINUTES: i64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    pub since: DateTime<Utc>,
    /// Every interval of the window, oldest first (empty ones included).
    pub buckets: Vec<DeliveryBucket>,
    pub total: u64,
    pub delivered: u64,
    pub failed: u64,
    pub failing: Vec<FailingSubscription>,
    pub queue: QueueDepth,
}

impl Dashboard {
    /// Delivered among the settled deliveries of the window (none: `None`).
    pub fn success_rate(&self) -> Option<f64> {
        let settled = self.delivered + self.failed;
        (settled > 0).then(|| self.delivered as f64 / settled as f64)
    }
}

pub struct DashboardService {
    stats: Arc<dyn DeliveryStats>,
}

impl fmt::Debug for DashboardService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardService").finish_non_exhaustive()
    }
}

impl DashboardService {
    pub fn new(stats: Arc<dyn DeliveryStats>) -> Self {
        Self { stats }
    }

    /// The tenant's dashboard at `now`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn dashboard(
        &self,
        tenant: TenantId,
        now: DateTime<Utc>,
    ) -> Result<Dashboard, AppError> {
        let step = Duration::minutes(BUCKET_MINUTES);
        let end = now.duration_trunc(step).unwrap_or(now) + step;
        let since = end - Duration::hours(WINDOW_HOURS);
        let found = self
            .stats
            .buckets(
                tenant,
                since,
                u32::try_from(step.num_seconds()).unwrap_or(600),
            )
            .await?;
        let mut buckets = Vec::new();
        let mut start = since;
        while start < end {
            let b = found
                .iter()
                .find(|b| b.start == start)
                .copied()
                .unwrap_or(DeliveryBucket {
                    start,
                    total: 0,
                    delivered: 0,
                    failed: 0,
                });
            buckets.push(b);
            start += step;
        }
        Ok(Dashboard {
            since,
            total: buckets.iter().map(|b| b.total).sum(),
            delivered: buckets.iter().map(|b| b.delivered).sum(),
            failed: buckets.iter().map(|b| b.failed).sum(),
            buckets,
            failing: self.stats.failing(tenant, since, 10).await?,
            queue: self.stats.queue(tenant, now).await?,
        })
    }

    /// The latest delivery of each subscription listed.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn last_outcomes(
        &self,
        tenant: TenantId,
        ids: &[SubscriptionId],
    ) -> Result<Vec<LastOutcome>, AppError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.stats.last_outcomes(tenant, ids).await
    }
}
