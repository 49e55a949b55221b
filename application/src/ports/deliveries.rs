//! Ports of the delivery pipeline: the subscription directory, the due
//! queue, the HTTP sender, and the delivery read models.

use crate::context::RequestId;
use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::subscription::SubscriptionState;
use hookline_domain::{DeliveryId, EventId, EventPattern, SubscriptionId, TenantId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Active subscriptions for publishing and attempts, served from memory and
/// refreshed as the subscriptions projection moves.
#[async_trait]
pub trait SubscriptionDirectory: Send + Sync {
    /// The tenant's subscriptions that are not deleted (active and
    /// disabled: a disabled one's matching events are recorded as skipped).
    ///
    /// # Errors
    /// Storage errors.
    async fn live_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<Vec<SubscriptionState>>, AppError>;

    /// Any subscription by id (whatever its status).
    ///
    /// # Errors
    /// Storage errors.
    async fn get(&self, id: SubscriptionId) -> Result<Option<Arc<SubscriptionState>>, AppError>;
}

/// A delivery a worker has leased for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    /// The attempt number this lease is for.
    pub attempt: u32,
    /// The body to send: inline for deliveries enqueued with it (1.0),
    /// otherwise read from the message before the attempt.
    pub body: Option<Arc<str>>,
    /// The request that published the event.
    pub request_id: Option<String>,
    /// The request that asked for this round of attempts (a manual retry).
    pub triggered_by: Option<String>,
}

#[async_trait]
pub trait DueQueue: Send + Sync {
    /// Leases up to `limit` due deliveries for `lease` to `worker`.
    ///
    /// # Errors
    /// Storage errors.
    async fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, AppError>;

    /// Puts leased deliveries back for a while (each with its own wait):
    /// they are claimed again once it has passed. Only this worker's
    /// leases are touched.
    ///
    /// # Errors
    /// Storage errors.
    async fn defer(
        &self,
        worker: &str,
        deliveries: &[(DeliveryId, Duration)],
    ) -> Result<(), AppError>;

    /// How long until the next delivery falls due (`None`: nothing queued).
    ///
    /// # Errors
    /// Storage errors.
    async fn next_due_in(&self) -> Result<Option<Duration>, AppError>;
}

/// The bodies of published events (messages), stored once each.
#[async_trait]
pub trait MessageBodies: Send + Sync {
    /// The bodies of these messages, by id (unknown ids left out).
    ///
    /// # Errors
    /// Storage errors.
    async fn bodies(&self, ids: &[EventId]) -> Result<HashMap<EventId, Arc<str>>, AppError>;
}

/// One HTTP attempt to make.
#[derive(Debug, Clone)]
pub struct OutgoingRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Arc<str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The receiver answered (any status).
    Response {
        status: u16,
        retry_after_secs: Option<u64>,
        excerpt: Option<String>,
    },
    /// No answer: timeout, connection, DNS, TLS, blocked target…
    Failed { kind: ErrorKind, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SendResult {
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: SendOutcome,
}

#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn send(&self, request: OutgoingRequest) -> SendResult;
}

/// A row of the deliveries read model.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub url: String,
    pub request_id: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error_kind: Option<ErrorKind>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A row of the attempts read model. `outcome` is the delivery's status
/// after the attempt: `delivered`, or after a failure `pending` (a retry is
/// scheduled), `failed` or `abandoned`; `triggered_by` names the manual
/// retry that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub id: Uuid,
    pub delivery_id: DeliveryId,
    pub attempt: i32,
    pub subscription_id: SubscriptionId,
    pub request_id: Option<String>,
    pub triggered_by: Option<String>,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub outcome: DeliveryStatus,
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryListQuery {
    /// An event name or a `prefix.*` pattern.
    pub event_type: Option<EventPattern>,
    pub status: Option<DeliveryStatus>,
    pub subscription_id: Option<SubscriptionId>,
    pub request_id: Option<RequestId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
}

#[async_trait]
pub trait DeliveryReadModel: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn get(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<DeliveryRecord>, AppError>;
    /// Newest first, `limit + 1` rows at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        query: &DeliveryListQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError>;
    /// A delivery's attempts in order.
    ///
    /// # Errors
    /// Storage errors.
    async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptRecord>, AppError>;
    /// Attempts caused by a request (its publish or a manual retry), in
    /// order of their start, after `after` (start time and attempt id),
    /// `limit + 1` at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, AppError>;

    /// How many attempts a request caused.
    ///
    /// # Errors
    /// Storage errors.
    async fn count_attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<u64, AppError>;

    /// Several deliveries by id (those of another tenant left out).
    ///
    /// # Errors
    /// Storage errors.
    async fn get_many(
        &self,
        tenant: TenantId,
        ids: &[DeliveryId],
    ) -> Result<Vec<DeliveryRecord>, AppError>;
    /// Failed and abandoned deliveries of a subscription created since
    /// `since` (and before `until`, when given).
    ///
    /// # Errors
    /// Storage errors.
    async fn recoverable(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DeliveryId>, AppError>;

    /// Attempts matching `query`, newest first (oldest first when asked),
    /// `limit + 1` at most, each with its message's id and type.
    ///
    /// # Errors
    /// Storage errors.
    async fn attempts_matching(
        &self,
        tenant: TenantId,
        query: &AttemptListQuery,
    ) -> Result<Vec<AttemptListRow>, AppError>;

    /// When an attempt of `tenant` started (a list cursor's position).
    ///
    /// # Errors
    /// Storage errors.
    async fn attempt_started(
        &self,
        tenant: TenantId,
        attempt: Uuid,
    ) -> Result<Option<DateTime<Utc>>, AppError>;
}

/// Whether an attempt got a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Succeeded,
    Failed,
}

/// Which attempts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptListQuery {
    /// Attempts of deliveries of this message.
    pub event_id: Option<EventId>,
    pub subscription_id: Option<SubscriptionId>,
    pub result: Option<AttemptResult>,
    /// Response status codes in this range (inclusive); `(0, 99)` also
    /// matches attempts that got no response.
    pub status_codes: Option<(i32, i32)>,
    /// Of messages of these types.
    pub event_types: Option<Vec<String>>,
    /// Of messages published on this channel.
    pub channel: Option<String>,
    /// Started after / before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: attempts strictly past this in the list's order.
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
    pub oldest_first: bool,
    pub limit: u32,
}

/// An attempt with what a list shows of its message.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptListRow {
    pub attempt: AttemptRecord,
    pub event_id: EventId,
    pub event_type: String,
}
