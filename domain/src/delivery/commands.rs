//! Commands a delivery accepts. Workers report attempt outcomes; clients
//! ask for retries; publishing enqueues.

use crate::outcome::ErrorKind;
use crate::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryCommand {
    Enqueue(EnqueueDelivery),
    /// The attempt got a 2xx.
    Delivered(AttemptSuccess),
    /// The attempt did not get a 2xx.
    AttemptFailed(AttemptFailure),
    /// A client asks for another attempt now.
    Retry(RetryDelivery),
    /// Stop trying (for instance: the subscription was deleted).
    Abandon(AbandonDelivery),
    /// Do not attempt it while its subscription is disabled.
    Skip(SkipDelivery),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkipDelivery {
    pub tenant_id: TenantId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnqueueDelivery {
    pub delivery_id: DeliveryId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub event_id: EventId,
    pub event_type: EventType,
    /// The subscription's URL when the delivery was enqueued.
    pub url: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptSuccess {
    pub tenant_id: TenantId,
    /// Minted by the worker for this attempt.
    pub attempt_id: Uuid,
    /// Which attempt this was (1 for the first); must be the next one.
    pub attempt: u32,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status_code: u16,
    pub response_excerpt: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttemptFailure {
    pub tenant_id: TenantId,
    pub attempt_id: Uuid,
    pub attempt: u32,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub status_code: Option<u16>,
    pub error_kind: ErrorKind,
    pub error_message: String,
    pub response_excerpt: Option<String>,
    /// The receiver's `Retry-After`, in seconds.
    pub retry_after_secs: Option<u64>,
    /// A random number in [-1, 1] for the retry delay's jitter.
    pub jitter: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryDelivery {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AbandonDelivery {
    pub tenant_id: TenantId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl DeliveryCommand {
    pub fn tenant_id(&self) -> TenantId {
        match self {
            Self::Enqueue(c) => c.tenant_id,
            Self::Delivered(c) => c.tenant_id,
            Self::AttemptFailed(c) => c.tenant_id,
            Self::Retry(c) => c.tenant_id,
            Self::Abandon(c) => c.tenant_id,
            Self::Skip(c) => c.tenant_id,
        }
    }
}
