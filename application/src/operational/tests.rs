//! Which log events make which notices, and the notifier's decisions.

use super::*;
use crate::ports::StoredJson;
use chrono::TimeZone;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::DeliveryId;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn source(aggregate_type: &str, sequence: i64) -> StoredEvent {
    StoredEvent {
        position: 7,
        tx_id: 1,
        aggregate_type: aggregate_type.into(),
        aggregate_id: "agg".into(),
        sequence,
        event_type: "X".into(),
        event_version: "1.0".into(),
        payload: StoredJson::new(serde_json::value::RawValue::from_string("{}".into()).unwrap()),
        metadata: StoredJson::from_value(
            &json!({"request_id": "req-1", "tenant_id": Uuid::from_u128(1),
                         "actor": "admin", "occurred_at": "2026-01-02T03:04:05.000000Z"}),
        )
        .unwrap(),
        recorded_at: t0(),
    }
}

fn record(event_type: &str) -> DeliveryRecord {
    DeliveryRecord {
        id: DeliveryId::from_uuid(Uuid::from_u128(3)),
        tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
        subscription_id: SubscriptionId::from_uuid(Uuid::from_u128(2)),
        event_id: EventId::from_uuid(Uuid::from_u128(4)),
        event_type: event_type.into(),
        status: DeliveryStatus::Abandoned,
        attempts: 3,
        next_attempt_at: None,
        url: "https://example.com/h".into(),
        request_id: Some("req-9".into()),
        last_status_code: Some(500),
        last_error_kind: Some(ErrorKind::HttpStatus),
        last_error: Some("500".into()),
        created_at: t0(),
        updated_at: t0(),
        delivered_at: None,
        resent: false,
    }
}

fn failed(status: DeliveryStatus) -> DeliveryEvent {
    DeliveryEvent::AttemptFailed {
        attempt: 3,
        attempt_id: Uuid::from_u128(5),
        url: "https://example.com/h".into(),
        started_at: t0(),
        duration_ms: 250,
        status_code: Some(500),
        error_kind: ErrorKind::HttpStatus,
        error_message: "500".into(),
        response_excerpt: None,
        status,
        next_attempt_at: None,
        endpoint_gone: false,
    }
}

#[test]
fn an_abandoned_delivery_is_announced_to_everyone_but_its_subscription() {
    let r = record("invoice.created");
    let n = delivery_notice(
        &r,
        &failed(DeliveryStatus::Abandoned),
        &source("Delivery", 4),
    )
    .unwrap();
    assert_eq!(n.event_type, DELIVERY_ABANDONED);
    assert_eq!(n.about, Some(r.subscription_id));
    assert_eq!(n.data["attempts"], 3);
    assert_eq!(n.data["event_type"], "invoice.created");
    assert_eq!(n.data["abandoned_at"], "2026-01-02T03:04:05.250Z");
    assert_eq!(n.request_id.as_deref(), Some("req-9"));
    // The same log event always makes the same event id.
    let again = delivery_notice(
        &r,
        &failed(DeliveryStatus::Abandoned),
        &source("Delivery", 4),
    )
    .unwrap();
    assert_eq!(n.id, again.id);
    let other = delivery_notice(
        &r,
        &failed(DeliveryStatus::Abandoned),
        &source("Delivery", 5),
    )
    .unwrap();
    assert_ne!(n.id, other.id);
}

#[test]
fn retries_and_abandoned_operational_deliveries_make_no_notice() {
    let r = record("invoice.created");
    assert!(
        delivery_notice(&r, &failed(DeliveryStatus::Pending), &source("Delivery", 2)).is_none()
    );
    assert!(delivery_notice(&r, &failed(DeliveryStatus::Failed), &source("Delivery", 2)).is_none());
    let op = record(CIRCUIT_OPENED);
    assert!(delivery_notice(
        &op,
        &failed(DeliveryStatus::Abandoned),
        &source("Delivery", 2)
    )
    .is_none());
}
