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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Taken straight from the log (a first attempt): the span of the log
    /// it came in, finished once all its deliveries are. `None` for a
    /// delivery claimed from the due queue.
    pub span: Option<Arc<SpanTicket>>,
}

/// A span of the log a worker took first attempts from. Once every clone
/// is dropped without [`SpanTicket::fail`] (each delivery's outcome was
/// recorded, or it went to the due queue), its id joins the worker's list
/// of finished spans, released at its next take. A failed span is left to
/// expire: another take reads it again and attempts what in it has
/// neither an outcome nor a queue row.
#[derive(Debug)]
pub struct SpanTicket {
    id: i64,
    failed: AtomicBool,
    finished: Arc<Mutex<Vec<i64>>>,
}

impl SpanTicket {
    pub fn new(id: i64, finished: Arc<Mutex<Vec<i64>>>) -> Self {
        Self {
            id,
            failed: AtomicBool::new(false),
            finished,
        }
    }

    pub fn id(&self) -> i64 {
        self.id
    }

    /// One of its deliveries has no recorded outcome: leave the span to
    /// expire and be read again.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }
}

impl PartialEq for SpanTicket {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Drop for SpanTicket {
    fn drop(&mut self) {
        if !self.failed.load(Ordering::Relaxed) {
            if let Ok(mut finished) = self.finished.lock() {
                finished.push(self.id);
            }
        }
    }
}

/// What a take from the log gave: the span (when it holds deliveries to
/// attempt) and those deliveries.
#[derive(Debug, Default)]
pub struct Taken {
    pub span: Option<i64>,
    pub deliveries: Vec<DueDelivery>,
}

/// New deliveries straight from the log: workers share one cursor over
/// the log's commit order and take a span after it at a time, leased like
/// a queue row (ADR 0017).
#[async_trait]
pub trait DeliveryFeed: Send + Sync {
    /// Releases the `finished` spans, then takes up to `limit` deliveries
    /// leased for `lease` to `worker`: those of an expired span that have
    /// neither an outcome nor a queue row, or else the next new ones.
    ///
    /// # Errors
    /// Storage errors (nothing is taken or released then).
    async fn take(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        finished: &[i64],
    ) -> Result<Taken, AppError>;

    /// Releases finished spans (at shutdown).
    ///
    /// # Errors
    /// Storage errors.
    async fn release(&self, finished: &[i64]) -> Result<(), AppError>;
}

/// How far first attempts are behind the log. Publishing asks it before
/// appending: while the backlog is over its bound a publish waits for it
/// to shrink, and is refused (nothing written) if it does not in time.
#[async_trait]
pub trait DeliveryBacklog: Send + Sync {
    /// Admitted at once while the backlog is under its bound, or while it
    /// is under twice the bound and `tenant`'s own share of it is small
    /// (one tenant filling the backlog does not refuse the others);
    /// otherwise after waiting up to `wait` for one of those, or `None`.
    /// `weight` is how many events the publish appends (its message and
    /// its deliveries); the publish counts as in flight until the
    /// [`Admitted`] is dropped (once it is appended, or failed).
    async fn admit(&self, tenant: TenantId, weight: usize, wait: Duration) -> Option<Admitted>;

    /// How far behind first attempts are, when there is a bound.
    ///
    /// # Errors
    /// Storage errors.
    async fn level(&self) -> Result<Option<BacklogLevel>, AppError>;
}

/// An admitted publish, counted in the backlog as in flight while held.
pub struct Admitted(pub Option<Box<dyn Send + Sync>>);

impl Admitted {
    /// Nothing to count (no bound).
    pub fn free() -> Self {
        Self(None)
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admitted")
    }
}

/// The delivery backlog against its bound (`/readyz` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogLevel {
    /// Log positions the first-attempt cursor is behind the log's head.
    pub behind: i64,
    /// Over this, publishing waits and then answers `503 backlog_full`.
    pub bound: i64,
}

/// No bound (unit tests, one-shot commands).
#[derive(Debug, Default)]
pub struct Unbounded;

#[async_trait]
impl DeliveryBacklog for Unbounded {
    async fn admit(&self, _tenant: TenantId, _weight: usize, _wait: Duration) -> Option<Admitted> {
        Some(Admitted::free())
    }

    async fn level(&self) -> Result<Option<BacklogLevel>, AppError> {
        Ok(None)
    }
}

/// No feed: every delivery comes from the due queue (unit tests).
#[derive(Debug, Default)]
pub struct NoFeed;

#[async_trait]
impl DeliveryFeed for NoFeed {
    async fn take(
        &self,
        _worker: &str,
        _limit: u32,
        _lease: Duration,
        _finished: &[i64],
    ) -> Result<Taken, AppError> {
        Ok(Taken::default())
    }

    async fn release(&self, _finished: &[i64]) -> Result<(), AppError> {
        Ok(())
    }
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

    /// Puts deliveries taken from the log on the queue, leased to `worker`
    /// for the given while (each its own): deferred or parked first
    /// attempts. A delivery already queued is left as it is.
    ///
    /// # Errors
    /// Storage errors.
    async fn hand_over(
        &self,
        worker: &str,
        deliveries: &[(DueDelivery, Duration)],
    ) -> Result<(), AppError>;

    /// How long until the next delivery falls due (`None`: nothing queued).
    ///
    /// # Errors
    /// Storage errors.
    async fn next_due_in(&self) -> Result<Option<Duration>, AppError>;

    /// Removes queue rows for these attempts (or earlier ones) of these
    /// deliveries: attempts whose outcome the delivery refused (it was
    /// delivered, or has moved on), which no outcome event will clear. A
    /// later round's row (a manual retry) is kept.
    ///
    /// # Errors
    /// Storage errors.
    async fn forget(&self, attempts: &[(DeliveryId, u32)]) -> Result<(), AppError>;
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
    /// Made by hand (a resend) after its message was published, rather
    /// than by publishing it.
    pub resent: bool,
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
    /// Failed, abandoned and skipped deliveries of a subscription created
    /// since `since` (and before `until`, when given), and pending ones
    /// that have failed (waiting out a backoff, which a recover brings
    /// forward).
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

    /// Where an attempt of `tenant` stands (a list cursor's position, and
    /// the lists it can come from).
    ///
    /// # Errors
    /// Storage errors.
    async fn attempt_cursor(
        &self,
        tenant: TenantId,
        attempt: Uuid,
    ) -> Result<Option<AttemptCursor>, AppError>;

    /// Whether a message went to a subscription (a destinations list's
    /// cursor).
    ///
    /// # Errors
    /// Storage errors.
    async fn went_to(
        &self,
        tenant: TenantId,
        event: EventId,
        subscription: SubscriptionId,
    ) -> Result<bool, AppError>;

    /// The subscriptions a message went to, each with its latest delivery
    /// of it, by subscription id past `after` (ascending, or descending
    /// when `backwards`), `limit + 1` at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn destinations(
        &self,
        tenant: TenantId,
        event: EventId,
        after: Option<SubscriptionId>,
        backwards: bool,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, AppError>;

    /// The messages delivered to a subscription, each once with its latest
    /// delivery there (a resend is a later delivery), newest first (oldest
    /// first with `q.oldest_first`) by the message's first delivery there
    /// (which no resend moves), `q.limit + 1` at most.
    ///
    /// # Errors
    /// `NotFound` when `q.after` names a message the subscription never
    /// got; storage errors.
    async fn attempted_messages(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        q: &AttemptedMessagesQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError>;

    /// What became of a subscription's deliveries in `[since, until)`.
    ///
    /// # Errors
    /// Storage errors.
    async fn subscription_stats(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<SubscriptionStats, AppError>;
}

/// Which of a subscription's messages to list (by their latest delivery).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptedMessagesQuery {
    /// The latest delivery's status is one of these.
    pub statuses: Option<Vec<DeliveryStatus>>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// The message's first delivery there was created strictly after /
    /// before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Messages past this one in the list's order.
    pub after: Option<EventId>,
    pub oldest_first: bool,
    pub limit: u32,
}

/// A subscription's attempts in a window by result, and its deliveries
/// created in it that wait for an attempt or were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionStats {
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
    pub skipped: i64,
}

/// Whether an attempt got a 2xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Succeeded,
    Failed,
}

/// An attempt as a list's cursor: when it started, and the subscription
/// and message it was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptCursor {
    pub started_at: DateTime<Utc>,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
}

/// Which attempts to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptListQuery {
    /// Attempts of deliveries of this message.
    pub event_id: Option<EventId>,
    pub subscription_id: Option<SubscriptionId>,
    /// Only this attempt.
    pub attempt_id: Option<Uuid>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_is_finished_when_its_last_delivery_lets_go_unless_one_failed() {
        let finished: Arc<Mutex<Vec<i64>>> = Arc::default();
        let done = Arc::new(SpanTicket::new(7, finished.clone()));
        let held_by_another = done.clone();
        drop(done);
        assert!(
            finished.lock().unwrap().is_empty(),
            "a delivery still holds it"
        );
        drop(held_by_another);
        assert_eq!(*finished.lock().unwrap(), vec![7]);

        let failed = Arc::new(SpanTicket::new(8, finished.clone()));
        failed.fail();
        drop(failed);
        assert_eq!(
            *finished.lock().unwrap(),
            vec![7],
            "a failed span is left to expire and be taken again"
        );
    }
}
