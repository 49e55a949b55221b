//! What happened to a delivery. Events carry the values the aggregate
//! computed (attempt number, next attempt time, resulting status), so read
//! models only copy them.

use super::aggregate::DeliveryStatus;
use crate::outcome::ErrorKind;
use crate::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const DELIVERY_ENQUEUED: &str = "DeliveryEnqueued";
pub const ATTEMPT_FAILED: &str = "AttemptFailed";
pub const DELIVERY_SUCCEEDED: &str = "DeliverySucceeded";
pub const RETRY_REQUESTED: &str = "RetryRequested";
pub const DELIVERY_ABANDONED: &str = "DeliveryAbandoned";
pub const DELIVERY_SKIPPED: &str = "DeliverySkipped";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DeliveryEvent {
    DeliveryEnqueued {
        delivery_id: DeliveryId,
        tenant_id: TenantId,
        subscription_id: SubscriptionId,
        event_id: EventId,
        event_type: EventType,
        url: String,
        /// The request body exactly as sent, in version 1.0 events. From
        /// 2.0 the body is stored once, in the `MessagePublished` event of
        /// the message `event_id` names, and this is absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        enqueued_at: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    },
    AttemptFailed {
        attempt: u32,
        attempt_id: Uuid,
        url: String,
        started_at: DateTime<Utc>,
        duration_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status_code: Option<u16>,
        error_kind: ErrorKind,
        error_message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_excerpt: Option<String>,
        /// The delivery's status after this failure: `pending` (a retry is
        /// scheduled), `failed` (not worth retrying) or `abandoned`.
        status: DeliveryStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next_attempt_at: Option<DateTime<Utc>>,
        /// The receiver answered 410 Gone: its subscription is disabled.
        #[serde(default)]
        endpoint_gone: bool,
    },
    DeliverySucceeded {
        attempt: u32,
        attempt_id: Uuid,
        url: String,
        started_at: DateTime<Utc>,
        duration_ms: u64,
        status_code: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_excerpt: Option<String>,
    },
    RetryRequested {
        previous_status: DeliveryStatus,
        /// The number the next attempt will have.
        attempt: u32,
        requested_at: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    },
    DeliveryAbandoned {
        reason: String,
        abandoned_at: DateTime<Utc>,
    },
    /// Not attempted because its subscription is disabled; a retry (or
    /// recovering the subscription) sends it later.
    DeliverySkipped {
        reason: String,
        skipped_at: DateTime<Utc>,
    },
}

impl DomainEvent for DeliveryEvent {
    fn event_type(&self) -> String {
        match self {
            Self::DeliveryEnqueued { .. } => DELIVERY_ENQUEUED,
            Self::AttemptFailed { .. } => ATTEMPT_FAILED,
            Self::DeliverySucceeded { .. } => DELIVERY_SUCCEEDED,
            Self::RetryRequested { .. } => RETRY_REQUESTED,
            Self::DeliveryAbandoned { .. } => DELIVERY_ABANDONED,
            Self::DeliverySkipped { .. } => DELIVERY_SKIPPED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            // 2.0: the body moved to the message.
            Self::DeliveryEnqueued { body: None, .. } => "2.0",
            _ => "1.0",
        }
        .to_string()
    }
}
