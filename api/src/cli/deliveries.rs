//! `hookline deliveries show ID`: one delivery's timeline, read from the log.

use crate::startup::OpenDatabase;
use cqrs_es::Aggregate;
use hookline_application::ports::EventLog;
use hookline_domain::delivery::{Delivery, DeliveryEvent};
use hookline_domain::DeliveryId;
use hookline_infrastructure::postgres::log_reader::PgEventLog;
use std::process::ExitCode;

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub async fn show(database: &OpenDatabase, id: DeliveryId) -> anyhow::Result<ExitCode> {
    let log = PgEventLog::new(database.db.pool.clone());
    let events = log
        .aggregate_history(Delivery::TYPE, &id.to_string())
        .await?;
    if events.is_empty() {
        eprintln!("error: no delivery {id}");
        return Ok(ExitCode::FAILURE);
    }
    let mut status = "pending".to_string();
    let mut attempts = 0;
    for stored in &events {
        let request = stored
            .metadata
            .get("request_id")
            .and_then(|v| v.as_str())
            .unwrap_or("-");
        let event: DeliveryEvent = stored.payload.parse()?;
        match event {
            DeliveryEvent::DeliveryEnqueued {
                tenant_id,
                subscription_id,
                event_id,
                event_type,
                url,
                enqueued_at,
                ..
            } => {
                println!("Delivery {id}");
                println!("  tenant {tenant_id}, subscription {subscription_id}");
                println!("  event {event_type} ({event_id}), published by request {request}");
                println!("{}  enqueued for {url}", time(enqueued_at));
            }
            DeliveryEvent::AttemptFailed {
                attempt,
                started_at,
                duration_ms,
                status_code,
                error_kind,
                error_message,
                status: after,
                next_attempt_at,
                ..
            } => {
                attempts = attempt;
                let code = status_code.map(|c| format!(" {c}")).unwrap_or_default();
                let next = match next_attempt_at {
                    Some(at) => format!("; next attempt {}", time(at)),
                    None => format!("; {after}"),
                };
                println!(
                    "{}  attempt {attempt} failed ({error_kind}{code}) in {duration_ms} ms: {error_message}{next}",
                    time(started_at)
                );
                status = after.as_str().to_string();
            }
            DeliveryEvent::DeliverySucceeded {
                attempt,
                started_at,
                duration_ms,
                status_code,
                ..
            } => {
                attempts = attempt;
                println!(
                    "{}  attempt {attempt} delivered ({status_code}) in {duration_ms} ms",
                    time(started_at)
                );
                status = "delivered".into();
            }
            DeliveryEvent::RetryRequested { requested_at, .. } => {
                println!(
                    "{}  manual retry requested by request {request}",
                    time(requested_at)
                );
                status = "pending".into();
            }
            DeliveryEvent::DeliveryAbandoned {
                reason,
                abandoned_at,
            } => {
                println!("{}  abandoned: {reason}", time(abandoned_at));
                status = "abandoned".into();
            }
        }
    }
    println!(
        "final state: {status} after {attempts} attempt{}",
        if attempts == 1 { "" } else { "s" }
    );
    Ok(ExitCode::SUCCESS)
}
