//! How a delivery's events become its record and attempt list. The
//! `deliveries` projection and point-in-time reads share this fold.

use crate::ports::{AttemptRecord, DeliveryRecord, StoredEvent};
use chrono::{DateTime, Duration, Utc};
use hookline_domain::delivery::DeliveryEvent;
use hookline_domain::outcome::storable_text;

fn meta(event: &StoredEvent, key: &str) -> Option<String> {
    event
        .metadata
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn ended(started_at: DateTime<Utc>, duration_ms: u64) -> DateTime<Utc> {
    started_at + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0))
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[allow(clippy::too_many_arguments)]
fn attempt_record(
    record: &DeliveryRecord,
    stored: &StoredEvent,
    attempt: u32,
    attempt_id: uuid::Uuid,
    url: String,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    status_code: Option<u16>,
    outcome: &str,
) -> AttemptRecord {
    AttemptRecord {
        id: attempt_id,
        delivery_id: record.id,
        attempt: to_i32(attempt),
        subscription_id: record.subscription_id,
        request_id: meta(stored, "request_id"),
        triggered_by: meta(stored, "triggered_by"),
        url,
        started_at,
        duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
        status_code: status_code.map(i32::from),
        outcome: outcome.to_string(),
        error_kind: None,
        error_message: None,
        response_excerpt: None,
        next_attempt_at: None,
    }
}

/// Applies one event (already parsed from `stored`) to the record; returns
/// the attempt it records, if any. Events before `DeliveryEnqueued` are
/// ignored.
pub fn apply(
    record: &mut Option<DeliveryRecord>,
    stored: &StoredEvent,
    event: &DeliveryEvent,
) -> Option<AttemptRecord> {
    if let DeliveryEvent::DeliveryEnqueued {
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
    {
        *record = Some(DeliveryRecord {
            id: *delivery_id,
            tenant_id: *tenant_id,
            subscription_id: *subscription_id,
            event_id: *event_id,
            event_type: event_type.to_string(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Some(*next_attempt_at),
            url: url.clone(),
            request_id: meta(stored, "request_id"),
            last_status_code: None,
            last_error_kind: None,
            last_error: None,
            created_at: *enqueued_at,
            updated_at: *enqueued_at,
            delivered_at: None,
        });
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
            let mut a = attempt_record(
                row,
                stored,
                *attempt,
                *attempt_id,
                url.clone(),
                *started_at,
                *duration_ms,
                *status_code,
                status.as_str(),
            );
            a.error_kind = Some(error_kind.as_str().to_string());
            a.error_message = Some(storable_text(error_message));
            a.response_excerpt = response_excerpt.as_deref().map(storable_text);
            a.next_attempt_at = *next_attempt_at;
            row.status = status.as_str().to_string();
            row.attempts = to_i32(*attempt);
            row.next_attempt_at = *next_attempt_at;
            row.last_status_code = status_code.map(i32::from);
            row.last_error_kind = Some(error_kind.as_str().to_string());
            row.last_error = a.error_message.clone();
            row.updated_at = ended(*started_at, *duration_ms);
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
            let mut a = attempt_record(
                row,
                stored,
                *attempt,
                *attempt_id,
                url.clone(),
                *started_at,
                *duration_ms,
                Some(*status_code),
                "delivered",
            );
            a.response_excerpt = response_excerpt.as_deref().map(storable_text);
            row.status = "delivered".into();
            row.attempts = to_i32(*attempt);
            row.next_attempt_at = None;
            row.last_status_code = Some(i32::from(*status_code));
            row.last_error_kind = None;
            row.last_error = None;
            row.updated_at = ended(*started_at, *duration_ms);
            row.delivered_at = Some(row.updated_at);
            Some(a)
        }
        DeliveryEvent::RetryRequested {
            requested_at,
            next_attempt_at,
            ..
        } => {
            row.status = "pending".into();
            row.next_attempt_at = Some(*next_attempt_at);
            row.updated_at = *requested_at;
            None
        }
        DeliveryEvent::DeliveryAbandoned {
            reason,
            abandoned_at,
        } => {
            row.status = "abandoned".into();
            row.next_attempt_at = None;
            if row.last_error.is_none() || row.attempts == 0 {
                row.last_error = Some(storable_text(reason));
            }
            row.updated_at = *abandoned_at;
            None
        }
    }
}
