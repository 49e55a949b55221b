//! How a delivery's events become its read-model record and attempt list
//! (not the aggregate: that is `crate::fold`). The `deliveries`
//! projection and point-in-time reads share this.

use crate::ports::{AttemptRecord, DeliveryRecord, StoredEvent};
use chrono::{DateTime, Duration, Utc};
use hookline_domain::delivery::{DeliveryEvent, DeliveryStatus};
use hookline_domain::outcome::storable_text;

fn ended(started_at: DateTime<Utc>, duration_ms: u64) -> DateTime<Utc> {
    started_at + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0))
}

/// A time at the read models' precision (Postgres keeps microseconds):
/// attempts stored before the sender truncated its clock carry
/// nanoseconds, which a record read from the log would otherwise show and
/// the same record read from a table would not.
fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(at, 6)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What every attempt event carries.
struct Attempt<'a> {
    attempt: u32,
    attempt_id: uuid::Uuid,
    url: &'a str,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    status_code: Option<u16>,
}

impl Attempt<'_> {
    /// The attempts read model's row; `outcome` is the delivery's status
    /// after it.
    fn record(
        &self,
        row: &DeliveryRecord,
        stored: &StoredEvent,
        outcome: DeliveryStatus,
    ) -> AttemptRecord {
        let meta = stored.request();
        AttemptRecord {
            id: self.attempt_id,
            delivery_id: row.id,
            attempt: to_i32(self.attempt),
            subscription_id: row.subscription_id,
            request_id: meta.as_ref().map(|m| m.request_id.clone()),
            triggered_by: meta.and_then(|m| m.triggered_by),
            url: self.url.to_string(),
            started_at: self.started_at,
            duration_ms: i64::try_from(self.duration_ms).unwrap_or(i64::MAX),
            status_code: self.status_code.map(i32::from),
            outcome,
            error_kind: None,
            error_message: None,
            response_excerpt: None,
            next_attempt_at: None,
        }
    }

    /// What the attempt leaves on the delivery's row.
    fn mark(&self, row: &mut DeliveryRecord, status: DeliveryStatus) {
        row.status = status;
        row.attempts = to_i32(self.attempt);
        row.last_status_code = self.status_code.map(i32::from);
        row.updated_at = ended(self.started_at, self.duration_ms);
    }
}

/// The record a `DeliveryEnqueued` starts.
fn enqueued(stored: &StoredEvent, event: &DeliveryEvent) -> Option<DeliveryRecord> {
    let DeliveryEvent::DeliveryEnqueued {
        delivery_id,
        tenant_id,
        subscription_id,
        event_id,
        event_type,
        url,
        enqueued_at,
        next_attempt_at,
        ..
    } = event
    else {
        return None;
    };
    let request = stored.request();
    Some(DeliveryRecord {
        id: *delivery_id,
        tenant_id: *tenant_id,
        subscription_id: *subscription_id,
        event_id: *event_id,
        event_type: event_type.to_string(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(*next_attempt_at),
        url: url.clone(),
        resent: request.as_ref().is_some_and(|m| m.triggered_by.is_some()),
        request_id: request.map(|m| m.request_id),
        last_status_code: None,
        last_error_kind: None,
        last_error: None,
        created_at: *enqueued_at,
        updated_at: *enqueued_at,
        delivered_at: None,
    })
}

/// Applies one event (already parsed from `stored`) to the record; returns
/// the attempt it records, if any. Events before `DeliveryEnqueued` are
/// ignored.
pub fn apply(
    record: &mut Option<DeliveryRecord>,
    stored: &StoredEvent,
    event: &DeliveryEvent,
) -> Option<AttemptRecord> {
    if let Some(started) = enqueued(stored, event) {
        *record = Some(started);
        return None;
    }
    let row = record.as_mut()?;
    match event {
        DeliveryEvent::DeliveryEnqueued { .. } => None,
        DeliveryEvent::AttemptFailed {
            attempt,
            attempt_id,
            url,
            started_at,
            duration_ms,
            status_code,
            error_kind,
            error_message,
            response_excerpt,
            status,
            next_attempt_at,
            ..
        } => {
            let made = Attempt {
                attempt: *attempt,
                attempt_id: *attempt_id,
                url,
                started_at: micros(*started_at),
                duration_ms: *duration_ms,
                status_code: *status_code,
            };
            let mut a = made.record(row, stored, *status);
            a.error_kind = Some(*error_kind);
            a.error_message = Some(storable_text(error_message));
            a.response_excerpt = response_excerpt.as_deref().map(storable_text);
            a.next_attempt_at = *next_attempt_at;
            made.mark(row, *status);
            row.next_attempt_at = *next_attempt_at;
            row.last_error_kind = Some(*error_kind);
            row.last_error = a.error_message.clone();
            Some(a)
        }
        DeliveryEvent::DeliverySucceeded {
            attempt,
            attempt_id,
            url,
            started_at,
            duration_ms,
            status_code,
            response_excerpt,
        } => {
            let made = Attempt {
                attempt: *attempt,
                attempt_id: *attempt_id,
                url,
                started_at: micros(*started_at),
                duration_ms: *duration_ms,
                status_code: Some(*status_code),
            };
            let mut a = made.record(row, stored, DeliveryStatus::Delivered);
            a.response_excerpt = response_excerpt.as_deref().map(storable_text);
            made.mark(row, DeliveryStatus::Delivered);
            row.next_attempt_at = None;
            row.last_error_kind = None;
            row.last_error = None;
            row.delivered_at = Some(row.updated_at);
            Some(a)
        }
        DeliveryEvent::RetryRequested {
            requested_at,
            next_attempt_at,
            ..
        } => {
            row.status = DeliveryStatus::Pending;
            row.next_attempt_at = Some(*next_attempt_at);
            row.updated_at = *requested_at;
            None
        }
        DeliveryEvent::DeliveryAbandoned {
            reason,
            abandoned_at,
        } => {
            row.status = DeliveryStatus::Abandoned;
            row.next_attempt_at = None;
            if row.last_error.is_none() || row.attempts == 0 {
                row.last_error = Some(storable_text(reason));
            }
            row.updated_at = *abandoned_at;
            None
        }
        DeliveryEvent::DeliverySkipped { reason, skipped_at } => {
            row.status = DeliveryStatus::Skipped;
            row.next_attempt_at = None;
            row.last_error = Some(storable_text(reason));
            row.updated_at = *skipped_at;
            None
        }
    }
}

/// A delivery's record and attempts as its events recorded up to `until`
/// describe them (`None` before its `DeliveryEnqueued`).
///
/// # Errors
/// A stored event that is not a delivery's.
pub fn records_until(
    events: &[StoredEvent],
    until: DateTime<Utc>,
) -> Result<(Option<DeliveryRecord>, Vec<AttemptRecord>), crate::AppError> {
    let mut record = None;
    let mut attempts = Vec::new();
    for stored in events.iter().filter(|e| e.recorded_at <= until) {
        let event = crate::fold::parse::<hookline_domain::delivery::Delivery>(stored)?;
        if let Some(a) = apply(&mut record, stored, &event) {
            attempts.push(a);
        }
    }
    Ok((record, attempts))
}
