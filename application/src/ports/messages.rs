//! The messages read model: published events listed by type, channel and
//! time, or by id (single messages are read from the log).

use crate::error::AppError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::{EventId, TenantId};
use uuid::Uuid;

/// A row of the messages read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    /// Sorted; empty when published on no channel.
    pub channels: Vec<String>,
    pub uid: Option<String>,
    pub published_at: DateTime<Utc>,
}

/// Which messages to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageListQuery {
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Published strictly after / before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset cursor: messages strictly past this in the list's order.
    pub cursor: Option<(DateTime<Utc>, Uuid)>,
    pub oldest_first: bool,
    pub limit: u32,
}

#[async_trait]
pub trait MessageReadModel: Send + Sync {
    /// Newest first (oldest first when asked), `limit + 1` rows at most.
    ///
    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        query: &MessageListQuery,
    ) -> Result<Vec<MessageRecord>, AppError>;

    /// The tenant's messages among `ids` (in no order; unknown ids and
    /// other tenants' messages left out).
    ///
    /// # Errors
    /// Storage errors.
    async fn by_ids(
        &self,
        tenant: TenantId,
        ids: &[EventId],
    ) -> Result<Vec<MessageRecord>, AppError>;
}
