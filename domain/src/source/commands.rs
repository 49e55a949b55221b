//! What tenants ask of their sources. Every command carries the tenant it
//! is issued for and the time it happens.

use super::values::{EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName};
use crate::pointer::JsonPointer;
use crate::sealed::{Sealed, SecretHint};
use crate::{SourceId, TenantId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum SourceCommand {
    Create(CreateSource),
    Update(UpdateSource),
    RotateSecret(RotateSourceSecret),
    Delete(DeleteSource),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub source_id: SourceId,
    pub tenant_id: TenantId,
    pub name: SourceName,
    pub kind: SourceKind,
    pub header_name: Option<HeaderName>,
    pub event_type: EventTypeRule,
    pub data: JsonPointer,
    pub idempotency: Idempotency,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    pub at: DateTime<Utc>,
}

/// `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSource {
    pub tenant_id: TenantId,
    pub name: Option<SourceName>,
    pub header_name: Option<HeaderName>,
    pub event_type: Option<EventTypeRule>,
    pub data: Option<JsonPointer>,
    pub idempotency: Option<Idempotency>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RotateSourceSecret {
    pub tenant_id: TenantId,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    /// Until when the replaced secret is still accepted.
    pub previous_secret_expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeleteSource {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}
