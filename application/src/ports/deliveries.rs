//! Ports of the delivery pipeline: appending events in batches, the due
//! queue, the HTTP sender, the subscription directory, and the delivery
//! read models.

use crate::error::AppError;
use crate::ports::LogPosition;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::outcome::ErrorKind;
use hookline_domain::subscription::SubscriptionState;
use hookline_domain::{DeliveryId, EventId, SubscriptionId, TenantId};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// An event to append directly (batched writes that bypass cqrs-es: the
/// domain still decides every event).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    /// The sequence the aggregate expects next; a taken sequence is a
    /// conflict.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    /// The hash-chain link of the aggregate's previous event, when the
    /// caller already knows it (saves looking it up).
    pub previous_link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Some `(aggregate, sequence)` was already taken: nothing was written.
    #[error("an aggregate changed concurrently")]
    Conflict,
    #[error(transparent)]
    Other(#[from] AppError),
}

/// The stored first answer to an idempotent request.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotentAppend {
    Appended(Option<LogPosition>),
    /// The key was used within its lifetime; this is the first answer.
    Replayed(FirstAnswer),
}

/// A publish request's idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    pub tenant: TenantId,
    pub key: &'a str,
    /// A digest of what the request asks for: a key reused for a different
    /// request is refused rather than answered with the first response.
    pub fingerprint: &'a str,
    /// How long the key is remembered.
    pub ttl: Duration,
}

/// The answer first given under a key, and that request's fingerprint
/// (`None` for keys stored before fingerprints were kept).
#[derive(Debug, Clone, PartialEq)]
pub struct FirstAnswer {
    pub response: Value,
    pub fingerprint: Option<String>,
}

#[async_trait]
pub trait EventAppender: Send + Sync {
    /// Appends `events` in one transaction.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when a sequence is taken (nothing written).
    async fn append(&self, events: Vec<NewEvent>) -> Result<Option<LogPosition>, AppendError>;

    /// Appends `events` and records `response` under `(tenant, key)` in one
    /// transaction, unless the key was used less than `ttl` ago: then
    /// nothing is written and the first response is returned.
    ///
    /// # Errors
    /// As [`EventAppender::append`].
    async fn append_idempotent(
        &self,
        key: &IdempotencyKey<'_>,
        response: &Value,
        events: Vec<NewEvent>,
    ) -> Result<IdempotentAppend, AppendError>;

    /// The first response stored under a key still alive.
    ///
    /// # Errors
    /// Storage errors.
    async fn idempotent_response(
        &self,
        key: &IdempotencyKey<'_>,
    ) -> Result<Option<FirstAnswer>, AppError>;
}

/// Active subscriptions for publishing and attempts, served from memory and
/// refreshed as the subscriptions projection moves.
#[async_trait]
pub trait SubscriptionDirectory: Send + Sync {
    /// The tenant's active subscriptions.
    ///
    /// # Errors
    /// Storage errors.
    async fn active_for_tenant(
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
    pub body: Arc<str>,
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub url: String,
    pub request_id: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A row of the attempts read model. `outcome` is `delivered`, or the
/// delivery's status after a failed attempt (`pending`, `failed`,
/// `abandoned`); `triggered_by` names the manual retry that caused it.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub outcome: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryListQuery {
    pub event_type: Option<String>,
    pub status: Option<String>,
    pub subscription_id: Option<SubscriptionId>,
    pub request_id: Option<String>,
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
    /// Attempts caused by a request (its publish or a manual retry).
    ///
    /// # Errors
    /// Storage errors.
    async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<Vec<AttemptRecord>, AppError>;
    /// Failed and abandoned deliveries of a subscription created since `since`.
    ///
    /// # Errors
    /// Storage errors.
    async fn recoverable(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeliveryId>, AppError>;
}
