//! What the console's dashboard and lists read about deliveries in bulk:
//! counts over time, the queue, failing subscriptions, last outcomes.

use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::{SubscriptionId, TenantId};

/// Deliveries created in one interval, by how they stand now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryBucket {
    pub start: DateTime<Utc>,
    pub total: u64,
    pub delivered: u64,
    /// Failed or abandoned.
    pub failed: u64,
}

/// A subscription whose recent deliveries failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FailingSubscription {
    pub subscription_id: SubscriptionId,
    pub url: String,
    /// Its deliveries that failed for good, and those whose last attempt
    /// failed and that wait for a retry (a receiver failing for hours shows
    /// before its retries run out).
    pub failed: u64,
    pub total: u64,
    pub last_error: Option<String>,
}

/// The queue of deliveries awaiting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub queued: u64,
    /// Of those, due now (the others wait for a retry's time).
    pub due: u64,
    pub oldest_due_at: Option<DateTime<Utc>>,
}

/// The latest delivery of a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct LastOutcome {
    pub subscription_id: SubscriptionId,
    pub status: DeliveryStatus,
    pub status_code: Option<i32>,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait DeliveryStats: Send + Sync {
    /// Deliveries created since `since`, in intervals of `bucket_seconds`
    /// (only intervals with deliveries).
    ///
    /// # Errors
    /// Storage errors.
    async fn buckets(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<DeliveryBucket>, AppError>;

    /// Subscriptions with failed or abandoned deliveries created since
    /// `since`, most failures first.
    ///
    /// # Errors
    /// Storage errors.
    async fn failing(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FailingSubscription>, AppError>;

    /// # Errors
    /// Storage errors.
    async fn queue(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<QueueDepth, AppError>;

    /// The latest delivery of each of these subscriptions that has one.
    ///
    /// # Errors
    /// Storage errors.
    async fn last_outcomes(
        &self,
        tenant: TenantId,
        ids: &[SubscriptionId],
    ) -> Result<Vec<LastOutcome>, AppError>;
}
