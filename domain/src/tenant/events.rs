//! What happened to a tenant. Stored forever: fields are only ever added
//! (with a new `event_version` and an upcaster), never renamed. API keys
//! appear only as SHA-256 digests.

use super::TenantName;
use crate::metadata::Metadata;
use crate::serde_helpers::double_option;
use crate::uid::Uid;
use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const TENANT_CREATED: &str = "TenantCreated";
pub const TENANT_RENAMED: &str = "TenantRenamed";
pub const API_KEY_ISSUED: &str = "ApiKeyIssued";
pub const API_KEY_REVOKED: &str = "ApiKeyRevoked";
pub const TENANT_DELETED: &str = "TenantDeleted";
pub const TENANT_SETTINGS_CHANGED: &str = "TenantSettingsChanged";
pub const TENANT_DETAILS_CHANGED: &str = "TenantDetailsChanged";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TenantEvent {
    TenantCreated {
        tenant_id: TenantId,
        name: TenantName,
        created_at: DateTime<Utc>,
        /// 1.1: the client's own name for the tenant (Svix's app `uid`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<Uid>,
        /// 1.1: absent means none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    TenantRenamed {
        name: TenantName,
        renamed_at: DateTime<Utc>,
    },
    ApiKeyIssued {
        key_id: Uuid,
        /// Hex SHA-256 of the key.
        key_hash: String,
        hint: String,
        issued_at: DateTime<Utc>,
    },
    ApiKeyRevoked {
        key_id: Uuid,
        revoked_at: DateTime<Utc>,
        /// From when the key is refused (later than `revoked_at` while a
        /// rotation's overlap lasts).
        effective_at: DateTime<Utc>,
    },
    TenantDeleted {
        deleted_at: DateTime<Utc>,
    },
    /// Only the settings that changed are present.
    TenantSettingsChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict_event_types: Option<bool>,
        changed_at: DateTime<Utc>,
    },
    /// The uid or the metadata changed; only what changed is present
    /// (`uid: null` removes it).
    TenantDetailsChanged {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        uid: Option<Option<Uid>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
        changed_at: DateTime<Utc>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            Self::TenantCreated { .. } => TENANT_CREATED,
            Self::TenantRenamed { .. } => TENANT_RENAMED,
            Self::ApiKeyIssued { .. } => API_KEY_ISSUED,
            Self::ApiKeyRevoked { .. } => API_KEY_REVOKED,
            Self::TenantDeleted { .. } => TENANT_DELETED,
            Self::TenantSettingsChanged { .. } => TENANT_SETTINGS_CHANGED,
            Self::TenantDetailsChanged { .. } => TENANT_DETAILS_CHANGED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            // 1.1 adds the uid and metadata.
            Self::TenantCreated { uid, metadata, .. } if uid.is_some() || metadata.is_some() => {
                "1.1"
            }
            _ => "1.0",
        }
        .to_string()
    }
}

impl TenantEvent {
    /// When the change happened (the time the command carried).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::TenantCreated { created_at, .. } => *created_at,
            Self::TenantRenamed { renamed_at, .. } => *renamed_at,
            Self::ApiKeyIssued { issued_at, .. } => *issued_at,
            Self::ApiKeyRevoked { revoked_at, .. } => *revoked_at,
            Self::TenantDeleted { deleted_at } => *deleted_at,
            Self::TenantSettingsChanged { changed_at, .. }
            | Self::TenantDetailsChanged { changed_at, .. } => *changed_at,
        }
    }
}
