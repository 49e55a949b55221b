//! Published events in Postgres: the `messages` projection
//! (`messages_view`, one row per MessagePublished, without the body) and
//! the read model over it.

use super::copy::BinaryRows;
use super::log_reader::unavailable;
use super::projections::{Projection, ProjectionError};
use super::time_page::TimePage;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::ports::{MessageListQuery, MessageReadModel, MessageRecord, StoredEvent};
use hookline_application::AppError;
use hookline_domain::message::Message;
use hookline_domain::{EventId, TenantId};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

pub const TABLE: &str = "messages_view";

/// What the table keeps of a `MessagePublished` (the body is skipped).
#[derive(Deserialize)]
struct Published {
    event_id: Uuid,
    tenant_id: Uuid,
    event_type: String,
    published_at: DateTime<Utc>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    uid: Option<String>,
}

/// Applies Message events to `messages_view` (or a fresh copy during a
/// rebuild).
#[derive(Debug, Clone)]
pub struct MessagesProjection {
    table: String,
}

impl Default for MessagesProjection {
    fn default() -> Self {
        Self::new("")
    }
}

impl MessagesProjection {
    /// `suffix` names a fresh table for a rebuild.
    pub fn new(suffix: &str) -> Self {
        Self {
            table: format!("{TABLE}{suffix}"),
        }
    }
}

#[async_trait]
impl Projection for MessagesProjection {
    fn name(&self) -> String {
        if self.table == TABLE {
            "messages".to_string()
        } else {
            format!("messages:{}", self.table)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        Message::TYPE
    }

    /// Gathers under load like the deliveries' read models (one message
    /// per publish: a transaction every few milliseconds cost more than
    /// the rows); a Svix-compatible create, which waits for the lists,
    /// cuts the gathering short. Batches stay at the usual size: the
    /// rows it reads carry the bodies.
    fn pace(&self) -> (std::time::Duration, i64) {
        (
            crate::postgres::projections::deliveries::DELIVERIES_GATHER,
            crate::postgres::projections::BATCH_SIZE,
        )
    }

    /// Each `MessagePublished` is applied once (under the projection's
    /// lock, with its checkpoint), and a message has no other event, so
    /// its row is new: loaded with `COPY`, which fails loudly on a
    /// duplicate rather than skipping it.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut copy = BinaryRows::new(6);
        for event in events {
            // First outcomes kept in the message's stream (ADR 0023).
            if hookline_application::listing::holds_outcomes(event) {
                continue;
            }
            let p: Published = event
                .payload
                .parse()
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            copy.row()
                .uuid(&p.event_id)
                .uuid(&p.tenant_id)
                .text(&p.event_type)
                .text_array(p.channels.as_deref().unwrap_or_default())
                .opt_text(p.uid.as_deref())
                .timestamptz(&p.published_at);
        }
        copy.copy_into(
            conn,
            &self.table,
            "id, tenant_id, event_type, channels, uid, published_at",
        )
        .await?;
        Ok(())
    }
}

/// Queries over `messages_view`.
#[derive(Debug, Clone)]
pub struct PgMessageReadModel {
    pool: PgPool,
}

impl PgMessageReadModel {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl MessageReadModel for PgMessageReadModel {
    async fn list(
        &self,
        tenant: TenantId,
        q: &MessageListQuery,
    ) -> Result<Vec<MessageRecord>, AppError> {
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT id, tenant_id, event_type, channels, uid, published_at FROM messages_view WHERE tenant_id = ",
        );
        sql.push_bind(*tenant.as_uuid());
        if let Some(types) = &q.event_types {
            sql.push(" AND event_type = ANY(")
                .push_bind(types.clone())
                .push(")");
        }
        if let Some(channel) = &q.channel {
            sql.push(" AND ")
                .push_bind(channel.clone())
                .push(" = ANY(channels)");
        }
        TimePage {
            since: q.since,
            until: q.until,
            cursor: q.cursor,
            oldest_first: q.oldest_first,
            limit: q.limit,
        }
        .push(&mut sql, "published_at", "id");
        let rows = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        records(&rows)
    }

    async fn by_ids(
        &self,
        tenant: TenantId,
        ids: &[EventId],
    ) -> Result<Vec<MessageRecord>, AppError> {
        let ids: Vec<uuid::Uuid> = ids.iter().map(|i| *i.as_uuid()).collect();
        let rows = sqlx::query(
            "SELECT id, tenant_id, event_type, channels, uid, published_at FROM messages_view
              WHERE tenant_id = $1 AND id = ANY($2)",
        )
        .bind(tenant.as_uuid())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        records(&rows)
    }
}

fn records(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<MessageRecord>, AppError> {
    rows.iter()
        .map(|r| {
            Ok(MessageRecord {
                id: EventId::from_uuid(r.try_get("id")?),
                tenant_id: TenantId::from_uuid(r.try_get("tenant_id")?),
                event_type: r.try_get("event_type")?,
                channels: r.try_get("channels")?,
                uid: r.try_get("uid")?,
                published_at: r.try_get("published_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(unavailable)
}
