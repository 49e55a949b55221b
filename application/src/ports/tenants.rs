//! Ports of tenants and their API keys: the read model the `tenants`
//! projection maintains from Tenant events.

use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::tenant::TenantState;
use hookline_domain::TenantId;
use uuid::Uuid;

/// A stored API key, found by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub key_id: Uuid,
    pub tenant_id: TenantId,
    /// From when the key is refused (revoked, or its tenant deleted).
    pub refused_from: Option<DateTime<Utc>>,
}

impl ApiKeyRecord {
    pub fn works_at(&self, now: DateTime<Utc>) -> bool {
        self.refused_from.is_none_or(|from| now < from)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantListQuery {
    pub include_deleted: bool,
    /// Keyset cursor: tenants strictly past this in the list's order
    /// (older than it newest first, newer than it oldest first).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
}

#[async_trait]
pub trait TenantReadModel: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn get(&self, id: TenantId) -> Result<Option<TenantState>, AppError>;

    /// Newest first (or oldest first), `limit + 1` rows at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn list(&self, query: &TenantListQuery) -> Result<Vec<TenantState>, AppError>;

    /// The key with this SHA-256 digest (hex), if any.
    ///
    /// # Errors
    /// Storage errors.
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, AppError>;

    /// A number that changes whenever the read model does (the projection's
    /// position), so cached keys can be checked again.
    fn version(&self) -> u64;
}
