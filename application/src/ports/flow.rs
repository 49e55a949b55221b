//! Ports of flow control: rate-limit slots shared by every worker, the due
//! queue's parking for open circuits, and the queries the flow controller
//! decides from (the deliveries read model keeps each subscription's run
//! of failed attempts).

use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::subscription::FailureCause;
use hookline_domain::{DeliveryId, SubscriptionId, TenantId};
use std::collections::HashMap;
use std::time::Duration;

/// A subscription whose attempts keep failing.
#[derive(Debug, Clone, PartialEq)]
pub struct Failing {
    pub subscription_id: SubscriptionId,
    pub tenant_id: TenantId,
    /// Failed attempts in a row (since the last success, and since the
    /// subscription was last enabled or its circuit closed).
    pub consecutive_failures: u32,
    /// The first failure of the run.
    pub failing_since: DateTime<Utc>,
    pub last_failure: Option<FailureCause>,
}

/// An open circuit whose next probe is due, and the delivery to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeDue {
    pub subscription_id: SubscriptionId,
    pub tenant_id: TenantId,
    pub probes: u32,
    pub delivery_id: DeliveryId,
    /// When that delivery may be attempted (later than now while the
    /// receiver's `Retry-After` holds it back).
    pub due_at: DateTime<Utc>,
}

/// An open circuit whose subscription has had a successful attempt since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub subscription_id: SubscriptionId,
    pub tenant_id: TenantId,
    pub delivery_id: Option<DeliveryId>,
}

/// What [`FlowControl::reserve`] gave a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The slots, the first at this time.
    From(DateTime<Utc>),
    /// None: the slots reserved before reach this time, past the horizon.
    Busy(DateTime<Utc>),
}

#[async_trait]
pub trait FlowControl: Send + Sync {
    /// Reserves attempt slots: for each `(subscription, n, spacing)`, `n`
    /// slots `spacing` apart, after every slot reserved before (by any
    /// worker), unless those already reach `horizon` past now: a worker
    /// holds an attempt slot while it waits for a reserved one, so slots far
    /// ahead would tie up the worker (a backlog of one rate-limited
    /// subscription would hold every slot, and pace every tenant).
    ///
    /// # Errors
    /// Storage errors.
    async fn reserve(
        &self,
        wants: &[(SubscriptionId, u32, Duration)],
        horizon: Duration,
    ) -> Result<HashMap<SubscriptionId, Reservation>, AppError>;

    /// Holds the subscription's queued deliveries (those no worker holds)
    /// until `until`. Returns how many.
    ///
    /// # Errors
    /// Storage errors.
    async fn park(
        &self,
        subscription: SubscriptionId,
        until: DateTime<Utc>,
    ) -> Result<u64, AppError>;

    /// Parks deliveries this worker leased (of open circuits) until
    /// `until`, like `park` does — as long as the subscriptions read model
    /// still shows the circuit open. A worker decides from its cached view,
    /// which may trail a closing circuit: when the read model shows it
    /// closed, the deliveries are released (due now) instead.
    ///
    /// # Errors
    /// Storage errors.
    async fn hold(
        &self,
        worker: &str,
        deliveries: &[DeliveryId],
        until: DateTime<Utc>,
    ) -> Result<(), AppError>;

    /// Releases the subscription's parked deliveries: they are due again in
    /// their order. Returns how many.
    ///
    /// # Errors
    /// Storage errors.
    async fn unpark(&self, subscription: SubscriptionId) -> Result<u64, AppError>;

    /// Releases the subscription's parked deliveries once the subscriptions
    /// read model shows its circuit closed: `None` while it still shows it
    /// open (a worker may still park deliveries by it), else how many were
    /// released. What `unpark` released right after the close, a worker
    /// with a view from before the close may have parked again.
    ///
    /// # Errors
    /// Storage errors.
    async fn unpark_closed(&self, subscription: SubscriptionId) -> Result<Option<u64>, AppError>;

    /// Lets `probe` through now and holds the subscription's other queued
    /// deliveries until `others_until`.
    ///
    /// # Errors
    /// Storage errors.
    async fn release_probe(
        &self,
        subscription: SubscriptionId,
        probe: DeliveryId,
        others_until: DateTime<Utc>,
    ) -> Result<(), AppError>;

    /// Active subscriptions without an open circuit with at least
    /// `threshold` consecutive failed attempts.
    ///
    /// # Errors
    /// Storage errors.
    async fn failing(&self, threshold: u32) -> Result<Vec<Failing>, AppError>;

    /// Active subscriptions whose attempts have all failed since before
    /// `since`.
    ///
    /// # Errors
    /// Storage errors.
    async fn failing_since(&self, since: DateTime<Utc>) -> Result<Vec<Failing>, AppError>;

    /// Open circuits due for a probe at `now` that have a delivery waiting.
    ///
    /// # Errors
    /// Storage errors.
    async fn probes_due(&self, now: DateTime<Utc>) -> Result<Vec<ProbeDue>, AppError>;

    /// Open circuits with a successful attempt since they opened.
    ///
    /// # Errors
    /// Storage errors.
    async fn recovered(&self) -> Result<Vec<Recovered>, AppError>;

    /// Deliveries waiting in the queue, per subscription (absent: none).
    ///
    /// # Errors
    /// Storage errors.
    async fn backlog(
        &self,
        subscriptions: &[SubscriptionId],
    ) -> Result<HashMap<SubscriptionId, u64>, AppError>;
}
