//! Recording attempt outcomes: a batch at a time, the Delivery aggregate
//! decides each outcome (attempt numbering, retry schedule, final status),
//! and all resulting events are appended in one transaction. On a conflict
//! the batch falls back to one command at a time through cqrs-es.

use crate::commands::execute_with_retry;
use crate::context::Actor;
use crate::error::AppError;
use crate::metadata::EventMetadata;
use crate::ports::{
    AggregateStore, AppendError, AttemptMeasure, AttemptOutcome, Batch, Change, DueDelivery,
    DueQueue, Metrics, NoMetrics, NotAttempted, SendOutcome, SendResult,
};
use crate::shared::Shared;
use chrono::{DateTime, Utc};
use cqrs_es::AggregateError;
use hookline_domain::delivery::{
    AbandonDelivery, AttemptFailure, AttemptSuccess, Delivery, DeliveryCommand, DeliveryError,
    DeliveryEvent, DeliveryStatus, SkipDelivery,
};
use hookline_domain::outcome::ErrorKind;
use hookline_domain::retry::RetryPolicy;
use hookline_domain::subscription::{DisableSubscription, Subscription, SubscriptionCommand};
use hookline_domain::{DeliveryId, SubscriptionId, TenantId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Most outcomes recorded per transaction.
pub const RECORD_BATCH: usize = 256;
/// How long the first outcome of a batch waits for others.
pub const GATHER: Duration = Duration::from_millis(5);

/// What happened to one leased delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// An HTTP attempt was made.
    Attempted {
        due: DueDelivery,
        attempt_id: Uuid,
        url: String,
        result: SendResult,
        /// A failure is retried no earlier than this: set for an open
        /// circuit's probe, whose retry waits for the next probe time
        /// (one attempt per probe interval, across every worker).
        hold_until: Option<DateTime<Utc>>,
    },
    /// No attempt: the subscription is disabled (the delivery is kept,
    /// `skipped`, for a retry or a recovery once it is enabled).
    Skipped { due: DueDelivery, reason: String },
    /// No attempt ever: the subscription is gone.
    Abandoned { due: DueDelivery, reason: String },
}

impl Outcome {
    pub(crate) fn due(&self) -> &DueDelivery {
        match self {
            Self::Attempted { due, .. }
            | Self::Skipped { due, .. }
            | Self::Abandoned { due, .. } => due,
        }
    }
}

pub struct OutcomeRecorder {
    shared: Shared,
    deliveries: Arc<dyn AggregateStore<Delivery>>,
    subscriptions: Arc<dyn AggregateStore<Subscription>>,
    policy: RetryPolicy,
    worker_id: String,
    metrics: Arc<dyn Metrics>,
    /// Where refused attempts' queue rows are removed (none in some tests).
    queue: Option<Arc<dyn DueQueue>>,
}

impl fmt::Debug for OutcomeRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutcomeRecorder")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

/// A decided command with what it needs to be written.
struct Decided {
    id: DeliveryId,
    /// The attempt the outcome is of.
    attempt: u32,
    /// Claimed from the due queue, and finished by this outcome (no retry
    /// follows): its row is removed with it. (The queue projection skips
    /// deliveries enqueued and finished within one of its batches, which a
    /// first attempt handed to the queue, a paced one, can be.)
    leaves_a_row: bool,
    command: DeliveryCommand,
    metadata: EventMetadata,
    /// The subscription to disable (its endpoint answered 410 Gone).
    gone: Option<(SubscriptionId, TenantId, String)>,
    /// What the metrics count once it is written.
    measure: Option<Measure>,
}

/// What one written outcome adds to the metrics.
#[derive(Debug, Clone, Copy)]
enum Measure {
    Attempt {
        attempt: AttemptMeasure,
        /// Enqueue to delivered, for a delivered attempt.
        latency: Option<Duration>,
    },
    NotAttempted(NotAttempted),
}

impl Measure {
    /// Read from the events an outcome decided (`enqueued_at`: when the
    /// delivery was enqueued).
    fn of(
        events: &[DeliveryEvent],
        enqueued_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<Self> {
        events.iter().find_map(|event| match event {
            DeliveryEvent::DeliverySucceeded {
                started_at,
                duration_ms,
                status_code,
                ..
            } => {
                let duration = Duration::from_millis(*duration_ms);
                let done = *started_at
                    + chrono::Duration::from_std(duration)
                        .unwrap_or_else(|_| chrono::Duration::zero());
                Some(Self::Attempt {
                    attempt: AttemptMeasure {
                        outcome: AttemptOutcome::Delivered,
                        error_kind: None,
                        status: Some(*status_code),
                        duration,
                    },
                    latency: enqueued_at.and_then(|at| (done - at).to_std().ok()),
                })
            }
            DeliveryEvent::AttemptFailed {
                duration_ms,
                status_code,
                error_kind,
                status,
                ..
            } => Some(Self::Attempt {
                attempt: AttemptMeasure {
                    outcome: match status {
                        DeliveryStatus::Pending => AttemptOutcome::Retry,
                        DeliveryStatus::Abandoned => AttemptOutcome::Abandoned,
                        _ => AttemptOutcome::Failed,
                    },
                    error_kind: Some(*error_kind),
                    status: *status_code,
                    duration: Duration::from_millis(*duration_ms),
                },
                latency: None,
            }),
            DeliveryEvent::DeliverySkipped { .. } => {
                Some(Self::NotAttempted(NotAttempted::Skipped))
            }
            DeliveryEvent::DeliveryAbandoned { .. } => {
                Some(Self::NotAttempted(NotAttempted::Abandoned))
            }
            _ => None,
        })
    }
}

fn reason_phrase(status: u16) -> &'static str {
    http_reason(status).unwrap_or("")
}

fn http_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return None,
    })
}

impl OutcomeRecorder {
    pub fn new(
        shared: Shared,
        deliveries: Arc<dyn AggregateStore<Delivery>>,
        subscriptions: Arc<dyn AggregateStore<Subscription>>,
        policy: RetryPolicy,
        worker_id: String,
    ) -> Self {
        Self {
            shared,
            deliveries,
            subscriptions,
            policy,
            worker_id,
            metrics: Arc::new(NoMetrics),
            queue: None,
        }
    }

    /// Removes from `queue` the rows of attempts whose outcome the delivery
    /// refuses (it was delivered, or moved on to a later round): no outcome
    /// event clears them, and their leases would bring them back forever.
    #[must_use]
    pub fn with_queue(mut self, queue: Arc<dyn DueQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Counts what it records in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn count(&self, tenant: TenantId, measure: Option<Measure>) {
        match measure {
            Some(Measure::Attempt { attempt, latency }) => {
                self.metrics.attempt(tenant, attempt);
                if let Some(latency) = latency {
                    self.metrics.delivered_after(tenant, latency);
                }
            }
            Some(Measure::NotAttempted(why)) => self.metrics.not_attempted(tenant, why),
            None => {}
        }
    }

    /// Records outcomes as they arrive, in batches, until the channel closes.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Outcome>) {
        while let Some(first) = rx.recv().await {
            // Outcomes of attempts finishing together share a transaction:
            // gather for a moment before writing.
            let mut batch = vec![first];
            let until = tokio::time::Instant::now() + GATHER;
            while batch.len() < RECORD_BATCH {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(o)) => batch.push(o),
                    _ => break,
                }
            }
            self.record(batch).await;
        }
    }

    /// `at`: the batch's time (outcomes recorded together share it, so a
    /// message's first outcomes share their metadata, ADR 0023).
    fn metadata(&self, due: &DueDelivery, at: chrono::DateTime<chrono::Utc>) -> EventMetadata {
        EventMetadata {
            request_id: due
                .request_id
                .clone()
                .unwrap_or_else(|| format!("system:worker:{}", due.delivery_id)),
            tenant_id: due.tenant_id,
            actor: Actor::System("worker").to_string(),
            occurred_at: at,
            worker_id: Some(self.worker_id.clone()),
            triggered_by: due.triggered_by.clone(),
            chain: None,
        }
    }

    /// The command an outcome stands for.
    pub fn command_for(&self, outcome: &Outcome) -> DeliveryCommand {
        let attempted = match outcome {
            Outcome::Skipped { due, reason } => {
                return DeliveryCommand::Skip(SkipDelivery {
                    tenant_id: due.tenant_id,
                    reason: reason.clone(),
                    at: self.shared.clock.now(),
                })
            }
            Outcome::Abandoned { due, reason } => {
                return DeliveryCommand::Abandon(AbandonDelivery {
                    tenant_id: due.tenant_id,
                    reason: reason.clone(),
                    at: self.shared.clock.now(),
                })
            }
            Outcome::Attempted {
                due,
                attempt_id,
                url,
                result,
                hold_until,
            } => (due, *attempt_id, url.clone(), result, *hold_until),
        };
        let (due, attempt_id, url, result, hold_until) = attempted;
        // A probe's retry waits for the next probe time, whatever the
        // receiver or the schedule says.
        // Rounded up: a retry due a moment before the next probe would go
        // as the same probe again.
        let held = hold_until.map(|until| {
            let ms = (until - result.started_at).num_milliseconds();
            u64::try_from(ms.saturating_add(999) / 1000)
                .unwrap_or(0)
                .max(1)
        });
        let failure =
            |status_code, error_kind, error_message, response_excerpt, retry_after: Option<u64>| {
                let retry_after = match (retry_after, held) {
                    (Some(a), Some(h)) => Some(a.max(h)),
                    (a, h) => a.or(h),
                };
                DeliveryCommand::AttemptFailed(AttemptFailure {
                    tenant_id: due.tenant_id,
                    attempt_id,
                    attempt: due.attempt,
                    url: url.clone(),
                    started_at: result.started_at,
                    duration_ms: result.duration_ms,
                    status_code,
                    error_kind,
                    error_message,
                    response_excerpt,
                    retry_after_secs: retry_after,
                    jitter: self.shared.entropy.jitter(),
                })
            };
        match &result.outcome {
            SendOutcome::Response {
                status, excerpt, ..
            } if (200..300).contains(status) => DeliveryCommand::Delivered(AttemptSuccess {
                tenant_id: due.tenant_id,
                attempt_id,
                attempt: due.attempt,
                url,
                started_at: result.started_at,
                duration_ms: result.duration_ms,
                status_code: *status,
                response_excerpt: excerpt.clone(),
            }),
            SendOutcome::Response {
                status,
                retry_after_secs,
                excerpt,
            } => failure(
                Some(*status),
                ErrorKind::HttpStatus,
                format!("the receiver answered {status} {}", reason_phrase(*status))
                    .trim_end()
                    .to_string(),
                excerpt.clone(),
                *retry_after_secs,
            ),
            SendOutcome::Failed { kind, message } => {
                failure(None, *kind, message.clone(), None, None)
            }
        }
    }

    /// Records one batch. Outcomes the aggregate refuses (a stale attempt
    /// after an expired lease, a delivery already finished) are dropped with
    /// a log line; storage failures are retried, and if they persist the
    /// leases expire and the attempts are made again.
    pub async fn record(&self, outcomes: Vec<Outcome>) {
        let mut pause = Duration::from_millis(100);
        for round in 0..4 {
            match self.record_batch(&outcomes).await {
                Ok(()) => return,
                Err(e) if round < 3 => {
                    tracing::warn!(error = %e, "recording attempt outcomes failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                Err(e) => {
                    tracing::error!(error = %e, outcomes = outcomes.len(), "could not record attempt outcomes; the deliveries will be attempted again when their leases expire");
                    for o in &outcomes {
                        if let Some(span) = &o.due().span {
                            span.fail();
                        }
                    }
                }
            }
        }
    }

    async fn record_batch(&self, outcomes: &[Outcome]) -> Result<(), AppError> {
        let mut ids: Vec<String> = outcomes
            .iter()
            .map(|o| o.due().delivery_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        let mut loaded = self.deliveries.load(&ids).await?;
        let at = self.shared.clock.now();
        let mut decided = Vec::new();
        let mut changes: Vec<Change<Delivery>> = Vec::new();
        let mut superseded: Vec<(DeliveryId, u32)> = Vec::new();
        for outcome in outcomes {
            let due = outcome.due();
            let key = due.delivery_id.to_string();
            let Some(current) = loaded.get_mut(&key) else {
                tracing::warn!(delivery_id = %due.delivery_id, "outcome for an unknown delivery dropped");
                continue;
            };
            let command = self.command_for(outcome);
            match current.aggregate.decide(command.clone(), &self.policy) {
                Ok(events) => {
                    let metadata = self.metadata(due, at);
                    let measure =
                        Measure::of(&events, current.aggregate.state().map(|s| s.created_at));
                    let gone = events.iter().any(|e| {
                        matches!(
                            e,
                            DeliveryEvent::AttemptFailed {
                                endpoint_gone: true,
                                ..
                            }
                        )
                    });
                    let version = current.version;
                    for event in &events {
                        current.aggregate.apply_event(event.clone());
                        current.version += 1;
                    }
                    let finished = current
                        .aggregate
                        .state()
                        .is_some_and(|st| st.status != DeliveryStatus::Pending);
                    changes.push(Change {
                        aggregate_id: key,
                        version,
                        events,
                        metadata: metadata.clone(),
                    });
                    decided.push(Decided {
                        id: due.delivery_id,
                        attempt: due.attempt,
                        leaves_a_row: due.span.is_none() && finished,
                        command,
                        metadata,
                        gone: gone.then(|| {
                            (
                                due.subscription_id,
                                due.tenant_id,
                                format!(
                                    "the endpoint answered 410 Gone to delivery {}",
                                    due.delivery_id
                                ),
                            )
                        }),
                        measure,
                    });
                }
                Err(refusal) => {
                    if log_refusal(due, &refusal) {
                        superseded.push((due.delivery_id, due.attempt));
                    }
                }
            }
        }
        self.forget(&superseded).await;
        if changes.is_empty() {
            return Ok(());
        }
        match self.deliveries.append(Batch::of(changes)?, None).await {
            Ok(_) => {
                for d in &decided {
                    self.count(d.metadata.tenant_id, d.measure);
                }
                let rows: Vec<(DeliveryId, u32)> = decided
                    .iter()
                    .filter(|d| d.leaves_a_row)
                    .map(|d| (d.id, d.attempt))
                    .collect();
                self.forget(&rows).await;
            }
            Err(AppendError::Conflict) => self.one_by_one(&decided).await?,
            Err(AppendError::Other(e)) => return Err(e),
        }
        for d in &decided {
            if let Some(gone) = &d.gone {
                self.disable_gone(gone, &d.metadata).await;
            }
        }
        Ok(())
    }

    /// Removes the queue rows of these attempts (and earlier ones): rows
    /// no outcome event clears. Best effort: a row left behind comes back
    /// when its lease ends, and its outcome is refused then.
    async fn forget(&self, attempts: &[(DeliveryId, u32)]) {
        let Some(queue) = &self.queue else { return };
        if attempts.is_empty() {
            return;
        }
        if let Err(e) = queue.forget(attempts).await {
            tracing::warn!(error = %e, "could not remove the queue rows of finished attempts; they come back when their leases end");
        }
    }

    /// The conflict fallback: each command on its own, through cqrs-es.
    async fn one_by_one(&self, decided: &[Decided]) -> Result<(), AppError> {
        for d in decided {
            let result = execute_with_retry(
                self.deliveries.as_ref(),
                &d.id.to_string(),
                || d.command.clone(),
                &d.metadata,
            )
            .await;
            match result {
                Ok(_) => {
                    self.count(d.metadata.tenant_id, d.measure);
                    if d.leaves_a_row {
                        self.forget(&[(d.id, d.attempt)]).await;
                    }
                }
                Err(AggregateError::UserError(refusal)) => {
                    tracing::info!(delivery_id = %d.id, %refusal, "outcome refused by the delivery");
                    if superseded(&refusal) {
                        self.forget(&[(d.id, d.attempt)]).await;
                    }
                }
                Err(e) => return Err(crate::commands::map_store_error(e)),
            }
        }
        Ok(())
    }

    async fn disable_gone(
        &self,
        (subscription, tenant, reason): &(SubscriptionId, TenantId, String),
        metadata: &EventMetadata,
    ) {
        let result = execute_with_retry(
            self.subscriptions.as_ref(),
            &subscription.to_string(),
            || {
                SubscriptionCommand::Disable(DisableSubscription {
                    tenant_id: *tenant,
                    reason: reason.clone(),
                    at: self.shared.clock.now(),
                })
            },
            metadata,
        )
        .await;
        match result {
            Ok(_) => {
                tracing::warn!(subscription_id = %subscription, "subscription disabled: its endpoint answered 410 Gone")
            }
            Err(e) => {
                tracing::info!(subscription_id = %subscription, error = %e, "could not disable the subscription after 410")
            }
        }
    }
}

/// Logs a refused outcome; `true` when the attempt was superseded (the
/// delivery was delivered, or moved on), so that its queue row, if any,
/// is stale.
fn log_refusal(due: &DueDelivery, refusal: &DeliveryError) -> bool {
    if superseded(refusal) {
        tracing::info!(delivery_id = %due.delivery_id, attempt = due.attempt, %refusal, "outcome already superseded; dropped");
        true
    } else {
        tracing::warn!(delivery_id = %due.delivery_id, %refusal, "outcome refused");
        false
    }
}

/// Whether a refusal says the attempt was overtaken: the delivery was
/// delivered, or moved on (another round, a final state).
fn superseded(refusal: &DeliveryError) -> bool {
    matches!(
        refusal,
        DeliveryError::StaleAttempt { .. }
            | DeliveryError::AlreadyDelivered
            | DeliveryError::NotPending(_)
    )
}
