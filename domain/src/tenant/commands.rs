//! What operators (and a tenant, for its own keys) ask a tenant to do.
//! Every command carries the time it happens.

use super::TenantName;
use crate::metadata::Metadata;
use crate::uid::Uid;
use crate::TenantId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    Create(CreateTenant),
    Rename(RenameTenant),
    IssueKey(IssueApiKey),
    RevokeKey(RevokeApiKey),
    /// Issues a new key and revokes the caller's (after an overlap) in one
    /// step, so a rotation is never half done.
    RotateKey(RotateApiKey),
    Delete(DeleteTenant),
    ChangeSettings(ChangeSettings),
    ChangeDetails(ChangeDetails),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTenant {
    pub tenant_id: TenantId,
    pub name: TenantName,
    /// Issued with the tenant, in the same step.
    pub first_key: Option<IssueApiKey>,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RenameTenant {
    pub name: TenantName,
    pub at: DateTime<Utc>,
}

/// A new key: its id, the SHA-256 digest of the key (never the key) and a
/// hint for lists (`hlk_…AbCd`).
#[derive(Debug, Clone, PartialEq)]
pub struct IssueApiKey {
    pub key_id: Uuid,
    pub key_hash: String,
    pub hint: String,
    pub at: DateTime<Utc>,
}

/// Revokes a key from `effective_at` on (`at` for at once; later while a
/// rotation's overlap lasts).
#[derive(Debug, Clone, PartialEq)]
pub struct RevokeApiKey {
    pub key_id: Uuid,
    pub effective_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RotateApiKey {
    pub new_key: IssueApiKey,
    /// The key being replaced, and until when it keeps working.
    pub old_key_id: Uuid,
    pub old_until: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeleteTenant {
    pub at: DateTime<Utc>,
}

/// `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChanges {
    pub strict_event_types: Option<bool>,
}

/// `None` leaves a detail as it is; `uid: Some(None)` removes the uid.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeDetails {
    pub uid: Option<Option<Uid>>,
    pub metadata: Option<Metadata>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSettings {
    pub changes: SettingsChanges,
    pub at: DateTime<Utc>,
}
