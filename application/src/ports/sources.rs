//! Ports of inbound sources: their read model (kept by the `sources`
//! projection), the record of refused inbound requests, and the upstream
//! subscriptions' read model.

use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::source::SourceState;
use hookline_domain::upstream::UpstreamState;
use hookline_domain::{SourceId, TenantId, UpstreamId};
use uuid::Uuid;

/// A row of the sources read model.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub state: SourceState,
    pub version: i64,
}

/// Newest first, `limit + 1` rows at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceListQuery {
    pub include_deleted: bool,
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
}

#[async_trait]
pub trait SourceReadModel: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn get(&self, tenant: TenantId, id: SourceId) -> Result<Option<SourceRecord>, AppError>;

    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        query: &SourceListQuery,
    ) -> Result<Vec<SourceRecord>, AppError>;

    /// Sources of `tenant` that are not deleted.
    ///
    /// # Errors
    /// Storage errors.
    async fn count(&self, tenant: TenantId) -> Result<u64, AppError>;
}

/// An inbound request a source refused. Never an event: the body is not
/// kept, only its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRejection {
    pub tenant_id: TenantId,
    pub source_id: SourceId,
    pub reason: &'static str,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub request_id: String,
    pub body_sha256: String,
    pub body_bytes: u64,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionRecord {
    /// Increases with every rejection (the list's cursor).
    pub id: i64,
    pub source_id: SourceId,
    pub reason: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub request_id: String,
    pub body_sha256: String,
    pub body_bytes: u64,
    pub received_at: DateTime<Utc>,
}

/// Where refused inbound requests are kept for their tenant to see (the
/// newest ones of each source; older ones are dropped).
#[async_trait]
pub trait RejectionLog: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn record(&self, rejection: &NewRejection) -> Result<(), AppError>;

    /// Newest first: rejections with an id below `before`, `limit + 1` at
    /// most.
    ///
    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        source: SourceId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RejectionRecord>, AppError>;
}

/// A row of the upstream subscriptions read model.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRecord {
    pub state: UpstreamState,
    pub version: i64,
}

#[async_trait]
pub trait UpstreamReadModel: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn get(
        &self,
        tenant: TenantId,
        id: UpstreamId,
    ) -> Result<Option<UpstreamRecord>, AppError>;

    /// Newest first, `limit + 1` rows at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        include_removed: bool,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<UpstreamRecord>, AppError>;
}
