//! How deliveries and attempts look in responses.

use crate::ports::{AttemptRecord, DeliveryRecord};
use chrono::{DateTime, Utc};
use hookline_domain::{DeliveryId, EventId, SubscriptionId, TenantId};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: String,
    /// `pending`, `delivered`, `failed` or `abandoned`.
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

impl From<DeliveryRecord> for DeliveryView {
    fn from(r: DeliveryRecord) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            subscription_id: r.subscription_id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            url: r.url,
            request_id: r.request_id,
            last_status_code: r.last_status_code,
            last_error_kind: r.last_error_kind,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            delivered_at: r.delivered_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub id: Uuid,
    pub delivery_id: DeliveryId,
    pub attempt: i32,
    pub subscription_id: SubscriptionId,
    /// The request that published the event.
    pub request_id: Option<String>,
    /// The manual retry that caused this attempt, if any.
    pub triggered_by: Option<String>,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    /// `delivered`, or the delivery's status after a failure (`pending`,
    /// `failed`, `abandoned`).
    pub outcome: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<AttemptRecord> for AttemptView {
    fn from(r: AttemptRecord) -> Self {
        Self {
            id: r.id,
            delivery_id: r.delivery_id,
            attempt: r.attempt,
            subscription_id: r.subscription_id,
            request_id: r.request_id,
            triggered_by: r.triggered_by,
            url: r.url,
            started_at: r.started_at,
            duration_ms: r.duration_ms,
            status_code: r.status_code,
            outcome: r.outcome,
            error_kind: r.error_kind,
            error_message: r.error_message,
            response_excerpt: r.response_excerpt,
            next_attempt_at: r.next_attempt_at,
        }
    }
}

/// One delivery with its attempts and the exact body it sends.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The request body as sent (parsed for readability).
    pub payload: serde_json::Value,
    pub attempt_log: Vec<AttemptView>,
}
