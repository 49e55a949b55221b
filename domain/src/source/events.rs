//! What happened to an inbound source. Stored forever: fields are only
//! ever added (with a new `event_version`), never renamed. Secrets are
//! sealed.

use super::values::{EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName};
use crate::pointer::JsonPointer;
use crate::sealed::{Sealed, SecretHint};
use crate::{SourceId, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

pub const SOURCE_CREATED: &str = "SourceCreated";
pub const SOURCE_UPDATED: &str = "SourceUpdated";
pub const SOURCE_SECRET_ROTATED: &str = "SourceSecretRotated";
pub const SOURCE_DELETED: &str = "SourceDeleted";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SourceEvent {
    SourceCreated {
        source_id: SourceId,
        tenant_id: TenantId,
        name: SourceName,
        kind: SourceKind,
        /// The header carrying the secret (`siigo`, `header-secret`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_name: Option<HeaderName>,
        event_type: EventTypeRule,
        data: JsonPointer,
        idempotency: Idempotency,
        secret: Sealed,
        secret_hint: SecretHint,
        created_at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    SourceUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<SourceName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_name: Option<HeaderName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<EventTypeRule>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<JsonPointer>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency: Option<Idempotency>,
        updated_at: DateTime<Utc>,
    },
    SourceSecretRotated {
        secret: Sealed,
        secret_hint: SecretHint,
        previous_secret_hint: SecretHint,
        /// Until then the replaced secret is still accepted.
        previous_secret_expires_at: DateTime<Utc>,
        rotated_at: DateTime<Utc>,
    },
    SourceDeleted {
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for SourceEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SourceCreated { .. } => SOURCE_CREATED,
            Self::SourceUpdated { .. } => SOURCE_UPDATED,
            Self::SourceSecretRotated { .. } => SOURCE_SECRET_ROTATED,
            Self::SourceDeleted { .. } => SOURCE_DELETED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

impl SourceEvent {
    /// When the change happened (the time the command carried).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::SourceCreated { created_at, .. } => *created_at,
            Self::SourceUpdated { updated_at, .. } => *updated_at,
            Self::SourceSecretRotated { rotated_at, .. } => *rotated_at,
            Self::SourceDeleted { deleted_at } => *deleted_at,
        }
    }
}
