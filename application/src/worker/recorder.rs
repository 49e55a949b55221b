//! Recording attempt outcomes: a batch at a time, the Delivery aggregate
//! decides each outcome (attempt numbering, retry schedule, final status),
//! and all resulting events are appended in one transaction. On a conflict
//! the batch falls back to one command at a time through cqrs-es.

use crate::commands::execute_with_retry;
use crate::error::AppError;
use crate::ports::{
    AppendError, Clock, CommandStore, DueDelivery, EventAppender, EventLog, NewEvent, SendOutcome,
    SendResult,
};
use chrono::SecondsFormat;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use hookline_domain::delivery::{
    AbandonDelivery, AttemptFailure, AttemptSuccess, Delivery, DeliveryCommand, DeliveryError,
    DeliveryEvent,
};
use hookline_domain::outcome::ErrorKind;
use hookline_domain::retry::RetryPolicy;
use hookline_domain::subscription::{DisableSubscription, Subscription, SubscriptionCommand};
use hookline_domain::DeliveryId;
use rand::Rng;
use std::collections::HashMap;
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
    },
    /// No attempt: the subscription is gone or disabled.
    Skipped { due: DueDelivery, reason: String },
}

impl Outcome {
    fn due(&self) -> &DueDelivery {
        match self {
            Self::Attempted { due, .. } | Self::Skipped { due, .. } => due,
        }
    }
}

pub struct OutcomeRecorder {
    log: Arc<dyn EventLog>,
    appender: Arc<dyn EventAppender>,
    deliveries: Arc<dyn CommandStore<Delivery>>,
    subscriptions: Arc<dyn CommandStore<Subscription>>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    worker_id: String,
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
    command: DeliveryCommand,
    metadata: HashMap<String, String>,
    gone: Option<String>,
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
        log: Arc<dyn EventLog>,
        appender: Arc<dyn EventAppender>,
        deliveries: Arc<dyn CommandStore<Delivery>>,
        subscriptions: Arc<dyn CommandStore<Subscription>>,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        worker_id: String,
    ) -> Self {
        Self {
            log,
            appender,
            deliveries,
            subscriptions,
            clock,
            policy,
            worker_id,
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

    fn metadata(&self, due: &DueDelivery) -> HashMap<String, String> {
        let mut m = HashMap::from([
            (
                "request_id".to_string(),
                due.request_id
                    .clone()
                    .unwrap_or_else(|| format!("system:worker:{}", due.delivery_id)),
            ),
            ("tenant_id".to_string(), due.tenant_id.to_string()),
            ("actor".to_string(), "system:worker".to_string()),
            ("worker_id".to_string(), self.worker_id.clone()),
            (
                "occurred_at".to_string(),
                self.clock
                    .now()
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ]);
        if let Some(t) = &due.triggered_by {
            m.insert("triggered_by".to_string(), t.clone());
        }
        m
    }

    fn command_for(&self, outcome: &Outcome) -> (DeliveryCommand, Option<String>) {
        match outcome {
            Outcome::Skipped { due, reason } => (
                DeliveryCommand::Abandon(AbandonDelivery {
                    tenant_id: due.tenant_id,
                    reason: reason.clone(),
                    at: self.clock.now(),
                }),
                None,
            ),
            Outcome::Attempted {
                due,
                attempt_id,
                url,
                result,
            } => match &result.outcome {
                SendOutcome::Response {
                    status, excerpt, ..
                } if (200..300).contains(status) => (
                    DeliveryCommand::Delivered(AttemptSuccess {
                        tenant_id: due.tenant_id,
                        attempt_id: *attempt_id,
                        attempt: due.attempt,
                        url: url.clone(),
                        started_at: result.started_at,
                        duration_ms: result.duration_ms,
                        status_code: *status,
                        response_excerpt: excerpt.clone(),
                    }),
                    None,
                ),
                SendOutcome::Response {
                    status,
                    retry_after_secs,
                    excerpt,
                } => (
                    DeliveryCommand::AttemptFailed(AttemptFailure {
                        tenant_id: due.tenant_id,
                        attempt_id: *attempt_id,
                        attempt: due.attempt,
                        url: url.clone(),
                        started_at: result.started_at,
                        duration_ms: result.duration_ms,
                        status_code: Some(*status),
                        error_kind: ErrorKind::HttpStatus,
                        error_message: format!(
                            "the receiver answered {status} {}",
                            reason_phrase(*status)
                        )
                        .trim_end()
                        .to_string(),
                        response_excerpt: excerpt.clone(),
                        retry_after_secs: *retry_after_secs,
                        jitter: rand::thread_rng().gen_range(-1.0..=1.0),
                    }),
                    (*status == 410).then(|| {
                        format!(
                            "the endpoint answered 410 Gone to delivery {}",
                            due.delivery_id
                        )
                    }),
                ),
                SendOutcome::Failed { kind, message } => (
                    DeliveryCommand::AttemptFailed(AttemptFailure {
                        tenant_id: due.tenant_id,
                        attempt_id: *attempt_id,
                        attempt: due.attempt,
                        url: url.clone(),
                        started_at: result.started_at,
                        duration_ms: result.duration_ms,
                        status_code: None,
                        error_kind: *kind,
                        error_message: message.clone(),
                        response_excerpt: None,
                        retry_after_secs: None,
                        jitter: rand::thread_rng().gen_range(-1.0..=1.0),
                    }),
                    None,
                ),
            },
        }
    }

    /// Records one batch. Outcomes the aggregate refuses (a stale attempt
    /// after an expired lease, a delivery already finished) are dropped with
    /// a log line; storage failures are retried, and if they persist the
    /// leases expire and the attempts are made again.
    pub async fn record(&self, outcomes: Vec<Outcome>) {
        let mut ids: Vec<String> = outcomes
            .iter()
            .map(|o| o.due().delivery_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        let mut pause = Duration::from_millis(100);
        for round in 0..4 {
            match self.record_batch(&outcomes, &ids).await {
                Ok(()) => return,
                Err(e) if round < 3 => {
                    tracing::warn!(error = %e, "recording attempt outcomes failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                Err(e) => {
                    tracing::error!(error = %e, outcomes = outcomes.len(), "could not record attempt outcomes; the deliveries will be attempted again when their leases expire");
                }
            }
        }
    }

    async fn record_batch(&self, outcomes: &[Outcome], ids: &[String]) -> Result<(), AppError> {
        let stored = self.log.events_of_many(Delivery::TYPE, ids).await?;
        // Each aggregate, its last sequence and that event's chain link.
        let mut aggregates: HashMap<String, (Delivery, i64, Option<String>)> = HashMap::new();
        for event in stored {
            let parsed: DeliveryEvent = event
                .payload
                .parse()
                .map_err(|e| AppError::Internal(format!("delivery event unreadable: {e}")))?;
            let link = crate::audit::chain::stored_link(&event.metadata).map(str::to_string);
            let entry = aggregates.entry(event.aggregate_id).or_default();
            entry.0.apply_event(parsed);
            entry.1 = event.sequence;
            entry.2 = link;
        }
        let mut decided = Vec::new();
        let mut new_events = Vec::new();
        for outcome in outcomes {
            let due = outcome.due();
            let key = due.delivery_id.to_string();
            let Some((aggregate, sequence, link)) = aggregates.get_mut(&key) else {
                tracing::warn!(delivery_id = %due.delivery_id, "outcome for an unknown delivery dropped");
                continue;
            };
            let (command, gone) = self.command_for(outcome);
            match aggregate.decide(command.clone(), &self.policy) {
                Ok(events) => {
                    let metadata = self.metadata(due);
                    let meta_json = serde_json::to_value(&metadata)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    for event in events {
                        *sequence += 1;
                        new_events.push(NewEvent {
                            aggregate_type: Delivery::TYPE,
                            aggregate_id: key.clone(),
                            sequence: *sequence,
                            event_type: event.event_type(),
                            event_version: event.event_version(),
                            payload: crate::deliveries::payload_of(&event)?,
                            metadata: meta_json.clone(),
                            previous_link: link.take(),
                        });
                        aggregate.apply_event(event);
                    }
                    decided.push(Decided {
                        id: due.delivery_id,
                        command,
                        metadata,
                        gone,
                    });
                }
                Err(refusal) => log_refusal(due, &refusal),
            }
        }
        if new_events.is_empty() {
            return Ok(());
        }
        match self.appender.append(new_events).await {
            Ok(_) => {}
            Err(AppendError::Conflict) => self.one_by_one(&decided).await?,
            Err(AppendError::Other(e)) => return Err(e),
        }
        for d in decided.iter().filter(|d| d.gone.is_some()) {
            self.disable_gone(d, outcomes).await;
        }
        Ok(())
    }

    /// The conflict fallback: each command on its own, through cqrs-es.
    async fn one_by_one(&self, decided: &[Decided]) -> Result<(), AppError> {
        for d in decided {
            let result = execute_with_retry(
                self.deliveries.as_ref(),
                &d.id.to_string(),
                || d.command.clone(),
                d.metadata.clone(),
            )
            .await;
            match result {
                Ok(_) => {}
                Err(AggregateError::UserError(refusal)) => {
                    tracing::info!(delivery_id = %d.id, %refusal, "outcome refused by the delivery");
                }
                Err(e) => return Err(crate::pagination::map_store_error(e)),
            }
        }
        Ok(())
    }

    async fn disable_gone(&self, d: &Decided, outcomes: &[Outcome]) {
        let Some(reason) = &d.gone else { return };
        let Some(due) = outcomes
            .iter()
            .map(Outcome::due)
            .find(|due| due.delivery_id == d.id)
        else {
            return;
        };
        let result = execute_with_retry(
            self.subscriptions.as_ref(),
            &due.subscription_id.to_string(),
            || {
                SubscriptionCommand::Disable(DisableSubscription {
                    tenant_id: due.tenant_id,
                    reason: reason.clone(),
                    at: self.clock.now(),
                })
            },
            d.metadata.clone(),
        )
        .await;
        match result {
            Ok(_) => {
                tracing::warn!(subscription_id = %due.subscription_id, "subscription disabled: its endpoint answered 410 Gone")
            }
            Err(e) => {
                tracing::info!(subscription_id = %due.subscription_id, error = %e, "could not disable the subscription after 410")
            }
        }
    }
}

fn log_refusal(due: &DueDelivery, refusal: &DeliveryError) {
    match refusal {
        DeliveryError::StaleAttempt { .. }
        | DeliveryError::AlreadyDelivered
        | DeliveryError::NotPending(_) => {
            tracing::info!(delivery_id = %due.delivery_id, attempt = due.attempt, %refusal, "outcome already superseded; dropped");
        }
        other => tracing::warn!(delivery_id = %due.delivery_id, %other, "outcome refused"),
    }
}
