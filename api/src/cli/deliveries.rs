//! `hookline deliveries show ID`: one delivery's timeline, read from the
//! log through the deliveries service.

use crate::startup::Services;
use hookline_domain::delivery::{DeliveryEvent, DeliveryStatus};
use hookline_domain::DeliveryId;
use std::process::ExitCode;

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One line per event; the status and attempt count it leaves.
fn describe(
    id: DeliveryId,
    request: &str,
    event: DeliveryEvent,
    state: &mut (DeliveryStatus, u32),
) -> String {
    match event {
        DeliveryEvent::DeliveryEnqueued {
            tenant_id,
            subscription_id,
            event_id,
            event_type,
            url,
            enqueued_at,
            ..
        } => format!(
            "Delivery {id}\n  tenant {tenant_id}, subscription {subscription_id}\n  event {event_type} ({event_id}), published by request {request}\n{}  enqueued for {url}",
            time(enqueued_at)
        ),
        DeliveryEvent::AttemptFailed {
            attempt,
            started_at,
            duration_ms,
            status_code,
            error_kind,
            error_message,
            status,
            next_attempt_at,
            ..
        } => {
            *state = (status, attempt);
            let code = status_code.map(|c| format!(" {c}")).unwrap_or_default();
            let next = match next_attempt_at {
                Some(at) => format!("; next attempt {}", time(at)),
                None => format!("; {status}"),
            };
            format!(
                "{}  attempt {attempt} failed ({error_kind}{code}) in {duration_ms} ms: {error_message}{next}",
                time(started_at)
            )
        }
        DeliveryEvent::DeliverySucceeded {
            attempt,
            started_at,
            duration_ms,
            status_code,
            ..
        } => {
            *state = (DeliveryStatus::Delivered, attempt);
            format!(
                "{}  attempt {attempt} delivered ({status_code}) in {duration_ms} ms",
                time(started_at)
            )
        }
        DeliveryEvent::RetryRequested { requested_at, .. } => {
            state.0 = DeliveryStatus::Pending;
            format!(
                "{}  manual retry requested by request {request}",
                time(requested_at)
            )
        }
        DeliveryEvent::DeliveryAbandoned {
            reason,
            abandoned_at,
        } => {
            state.0 = DeliveryStatus::Abandoned;
            format!("{}  abandoned: {reason}", time(abandoned_at))
        }
        DeliveryEvent::DeliverySkipped { reason, skipped_at } => {
            state.0 = DeliveryStatus::Skipped;
            format!("{}  skipped: {reason}", time(skipped_at))
        }
    }
}

pub async fn show(s: Services, id: DeliveryId) -> anyhow::Result<ExitCode> {
    // Operators see every tenant's deliveries: act as the owner.
    let Some(tenant) = s.deliveries.owner(id).await? else {
        eprintln!("error: no delivery {id}");
        return Ok(ExitCode::FAILURE);
    };
    let mut state = (DeliveryStatus::Pending, 0);
    for (meta, event) in s.deliveries.timeline(tenant, id).await? {
        let request = meta.map(|m| m.request_id).unwrap_or_else(|| "-".into());
        out!("{}", describe(id, &request, event, &mut state));
    }
    let (status, attempts) = state;
    out!(
        "final state: {status} after {attempts} attempt{}",
        if attempts == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
