//! The Delivery aggregate and its decisions: attempt numbering, status
//! transitions and, with the [`RetryPolicy`], when to try again.

use super::commands::{
    AttemptFailure, AttemptSuccess, DeliveryCommand, EnqueueDelivery, SkipDelivery,
};
use super::error::DeliveryError;
use super::events::DeliveryEvent;
use crate::outcome::{
    classify_error, truncate_bytes, truncate_chars, Verdict, MAX_ERROR_MESSAGE_CHARS,
    MAX_RESPONSE_EXCERPT_BYTES,
};
use crate::retry::RetryPolicy;
use crate::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Failed in a way retrying would not fix (4xx, 410, blocked target).
    Failed,
    /// The retry policy gave up, or the delivery was abandoned.
    Abandoned,
    /// Not attempted: its subscription was disabled. Recovering the
    /// subscription after enabling it sends it.
    Skipped,
}

impl DeliveryStatus {
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Delivered,
        Self::Failed,
        Self::Abandoned,
        Self::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manual retry brings a backed-off attempt forward only when it is due
/// later than this from now (sooner, it may be claimed meanwhile).
const RETRY_MARGIN: Duration = Duration::seconds(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryState {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    /// Attempts made so far (the next one is `attempts + 1`).
    pub attempts: u32,
    /// Failed attempts since enqueue or the last manual retry; drives the
    /// retry schedule.
    pub failures_in_round: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    state: Option<DeliveryState>,
}

impl Delivery {
    pub fn state(&self) -> Option<&DeliveryState> {
        self.state.as_ref()
    }

    fn owned(&self, tenant: TenantId) -> Result<&DeliveryState, DeliveryError> {
        self.state
            .as_ref()
            .filter(|s| s.tenant_id == tenant)
            .ok_or(DeliveryError::NotFound)
    }

    /// A pending delivery expecting `attempt` next.
    fn expecting(&self, tenant: TenantId, attempt: u32) -> Result<&DeliveryState, DeliveryError> {
        let state = self.owned(tenant)?;
        match state.status {
            DeliveryStatus::Pending => {}
            DeliveryStatus::Delivered => return Err(DeliveryError::AlreadyDelivered),
            other => return Err(DeliveryError::NotPending(other)),
        }
        let expected = state.attempts + 1;
        if attempt != expected {
            return Err(DeliveryError::StaleAttempt {
                expected,
                got: attempt,
            });
        }
        Ok(state)
    }

    /// Decides the events `command` causes under `policy`.
    ///
    /// # Errors
    /// A [`DeliveryError`] when the command does not fit the current state.
    pub fn decide(
        &self,
        command: DeliveryCommand,
        policy: &RetryPolicy,
    ) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        match command {
            DeliveryCommand::Enqueue(cmd) => self.enqueue(cmd),
            DeliveryCommand::Delivered(cmd) => self.delivered(cmd),
            DeliveryCommand::AttemptFailed(cmd) => self.attempt_failed(cmd, policy),
            DeliveryCommand::Retry(cmd) => {
                let state = self.owned(cmd.tenant_id)?;
                if state.status == DeliveryStatus::Delivered {
                    return Err(DeliveryError::AlreadyDelivered);
                }
                // A pending delivery whose next attempt is due may have it
                // under way right now: asking for that attempt again would
                // send it twice. Only an attempt waiting out a backoff (a
                // failure in this round, due more than a moment from now)
                // can be brought forward; one requested by the enqueue or
                // by another retry is due already, whatever the clocks say.
                if state.status == DeliveryStatus::Pending {
                    let backing_off = state.failures_in_round > 0
                        && state
                            .next_attempt_at
                            .is_some_and(|due| due > cmd.at + RETRY_MARGIN);
                    if !backing_off {
                        return Err(DeliveryError::AttemptDue);
                    }
                }
                Ok(vec![DeliveryEvent::RetryRequested {
                    previous_status: state.status,
                    attempt: state.attempts + 1,
                    requested_at: cmd.at,
                    next_attempt_at: cmd.at,
                }])
            }
            DeliveryCommand::Abandon(cmd) => {
                let state = self.owned(cmd.tenant_id)?;
                match state.status {
                    DeliveryStatus::Pending => Ok(vec![DeliveryEvent::DeliveryAbandoned {
                        reason: truncate_chars(&cmd.reason, MAX_ERROR_MESSAGE_CHARS),
                        abandoned_at: cmd.at,
                    }]),
                    DeliveryStatus::Delivered => Err(DeliveryError::AlreadyDelivered),
                    other => Err(DeliveryError::NotPending(other)),
                }
            }
            DeliveryCommand::Skip(cmd) => {
                let state = self.owned(cmd.tenant_id)?;
                match state.status {
                    DeliveryStatus::Pending => Ok(vec![Self::skip_new(cmd)]),
                    DeliveryStatus::Delivered => Err(DeliveryError::AlreadyDelivered),
                    other => Err(DeliveryError::NotPending(other)),
                }
            }
        }
    }

    /// The skip decision as a plain function, for a delivery published to
    /// a disabled subscription (enqueued and skipped in one batch).
    pub fn skip_new(cmd: SkipDelivery) -> DeliveryEvent {
        DeliveryEvent::DeliverySkipped {
            reason: truncate_chars(&cmd.reason, MAX_ERROR_MESSAGE_CHARS),
            skipped_at: cmd.at,
        }
    }

    /// The enqueue decision as a plain function, for batched publishing
    /// that appends many new deliveries in one transaction.
    pub fn enqueue_new(cmd: EnqueueDelivery) -> DeliveryEvent {
        DeliveryEvent::DeliveryEnqueued {
            delivery_id: cmd.delivery_id,
            tenant_id: cmd.tenant_id,
            subscription_id: cmd.subscription_id,
            event_id: cmd.event_id,
            event_type: cmd.event_type,
            url: cmd.url,
            body: None,
            enqueued_at: cmd.at,
            next_attempt_at: cmd.at,
        }
    }

    fn enqueue(&self, cmd: EnqueueDelivery) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        if self.state.is_some() {
            return Err(DeliveryError::AlreadyExists);
        }
        Ok(vec![Self::enqueue_new(cmd)])
    }

    fn delivered(&self, cmd: AttemptSuccess) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        self.expecting(cmd.tenant_id, cmd.attempt)?;
        Ok(vec![DeliveryEvent::DeliverySucceeded {
            attempt: cmd.attempt,
            attempt_id: cmd.attempt_id,
            url: cmd.url,
            started_at: cmd.started_at,
            duration_ms: cmd.duration_ms,
            status_code: cmd.status_code,
            response_excerpt: cmd
                .response_excerpt
                .map(|s| truncate_bytes(&s, MAX_RESPONSE_EXCERPT_BYTES)),
        }])
    }

    fn attempt_failed(
        &self,
        cmd: AttemptFailure,
        policy: &RetryPolicy,
    ) -> Result<Vec<DeliveryEvent>, DeliveryError> {
        let state = self.expecting(cmd.tenant_id, cmd.attempt)?;
        let finished_at = cmd.started_at
            + Duration::milliseconds(i64::try_from(cmd.duration_ms).unwrap_or(i64::MAX / 2));
        let verdict = classify_error(cmd.error_kind, cmd.status_code);
        let failures = state.failures_in_round + 1;
        let next_attempt_at = match verdict {
            Verdict::Retryable => policy
                .next_delay(failures, cmd.jitter, cmd.retry_after_secs)
                .map(|delay| finished_at + delay),
            Verdict::Delivered | Verdict::Permanent | Verdict::Gone => None,
        };
        let exhausted = verdict == Verdict::Retryable && next_attempt_at.is_none();
        let status = match (verdict, exhausted) {
            (Verdict::Retryable, false) => DeliveryStatus::Pending,
            (Verdict::Retryable, true) => DeliveryStatus::Abandoned,
            _ => DeliveryStatus::Failed,
        };
        let mut events = vec![DeliveryEvent::AttemptFailed {
            attempt: cmd.attempt,
            attempt_id: cmd.attempt_id,
            url: cmd.url,
            started_at: cmd.started_at,
            duration_ms: cmd.duration_ms,
            status_code: cmd.status_code,
            error_kind: cmd.error_kind,
            error_message: truncate_chars(&cmd.error_message, MAX_ERROR_MESSAGE_CHARS),
            response_excerpt: cmd
                .response_excerpt
                .map(|s| truncate_bytes(&s, MAX_RESPONSE_EXCERPT_BYTES)),
            status,
            next_attempt_at,
            endpoint_gone: verdict == Verdict::Gone,
        }];
        if exhausted {
            events.push(DeliveryEvent::DeliveryAbandoned {
                reason: format!(
                    "gave up after {failures} failed attempt{} (retry policy exhausted)",
                    if failures == 1 { "" } else { "s" }
                ),
                abandoned_at: finished_at,
            });
        }
        Ok(events)
    }

    pub fn apply_event(&mut self, event: DeliveryEvent) {
        match event {
            DeliveryEvent::DeliveryEnqueued {
                delivery_id,
                tenant_id,
                subscription_id,
                event_id,
                event_type,
                enqueued_at,
                next_attempt_at,
                ..
            } => {
                self.state = Some(DeliveryState {
                    id: delivery_id,
                    tenant_id,
                    subscription_id,
                    event_id,
                    event_type,
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    failures_in_round: 0,
                    next_attempt_at: Some(next_attempt_at),
                    created_at: enqueued_at,
                    updated_at: enqueued_at,
                });
            }
            other => {
                let Some(state) = self.state.as_mut() else {
                    return;
                };
                match other {
                    DeliveryEvent::DeliveryEnqueued { .. } => {}
                    DeliveryEvent::AttemptFailed {
                        attempt,
                        started_at,
                        duration_ms,
                        status,
                        next_attempt_at,
                        ..
                    } => {
                        state.attempts = attempt;
                        state.failures_in_round += 1;
                        state.status = status;
                        state.next_attempt_at = next_attempt_at;
                        state.updated_at = started_at
                            + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0));
                    }
                    DeliveryEvent::DeliverySucceeded {
                        attempt,
                        started_at,
                        duration_ms,
                        ..
                    } => {
                        state.attempts = attempt;
                        state.status = DeliveryStatus::Delivered;
                        state.next_attempt_at = None;
                        state.updated_at = started_at
                            + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0));
                    }
                    DeliveryEvent::RetryRequested {
                        requested_at,
                        next_attempt_at,
                        ..
                    } => {
                        state.status = DeliveryStatus::Pending;
                        state.failures_in_round = 0;
                        state.next_attempt_at = Some(next_attempt_at);
                        state.updated_at = requested_at;
                    }
                    DeliveryEvent::DeliverySkipped { skipped_at, .. } => {
                        state.status = DeliveryStatus::Skipped;
                        state.next_attempt_at = None;
                        state.updated_at = skipped_at;
                    }
                    DeliveryEvent::DeliveryAbandoned { abandoned_at, .. } => {
                        state.status = DeliveryStatus::Abandoned;
                        state.next_attempt_at = None;
                        state.updated_at = abandoned_at;
                    }
                }
            }
        }
    }
}

impl Aggregate for Delivery {
    const TYPE: &'static str = "Delivery";
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;
    type Error = DeliveryError;
    type Services = RetryPolicy;

    async fn handle(
        &mut self,
        command: Self::Command,
        policy: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, policy)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}
