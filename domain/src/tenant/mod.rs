//! The Tenant aggregate: an owner of subscriptions and deliveries, with the
//! API keys that act for it. Keys are stored as SHA-256 digests only (of 32
//! random bytes: the digest cannot be turned back into a key), so the log
//! can be handed to an auditor.

mod aggregate;
mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{ApiKeyState, Tenant, TenantSettings, TenantState, TenantStatus};
pub use commands::{
    ChangeDetails, ChangeSettings, CreateTenant, DeleteTenant, IssueApiKey, RenameTenant,
    RevokeApiKey, RotateApiKey, SettingsChanges, TenantCommand,
};
pub use error::TenantError;
pub use events::TenantEvent;

/// Most keys a tenant may hold at once (revoked ones do not count).
pub const MAX_ACTIVE_KEYS: usize = 20;
/// Longest tenant name.
pub const MAX_TENANT_NAME_CHARS: usize = 200;

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's display name: 1–200 characters, trimmed, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    /// # Errors
    /// When the name is empty, too long or has control characters.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let name = s.trim();
        if name.is_empty() || name.chars().count() > MAX_TENANT_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("must be 1–{MAX_TENANT_NAME_CHARS} characters"),
            ));
        }
        crate::validation::check_name("name", name)?;
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
