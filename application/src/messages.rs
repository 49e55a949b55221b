//! Reading published events (messages): one, exactly as the log has it, or
//! lists by type, channel and time from the messages read model, with or
//! without their content.

use crate::error::AppError;
use crate::ports::{MessageBodies, MessageListQuery, MessageReadModel, MessageRecord};
use crate::shared::Shared;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_domain::channel::Channels;
use hookline_domain::message::{envelope_data, Message};
use hookline_domain::uid::Uid;
use hookline_domain::{EventId, TenantId};
use std::fmt;
use std::sync::Arc;

/// Most payload bytes in one page of messages with their content; the page
/// ends early past it (at least one message is always given).
pub const PAGE_BYTES: usize = 4 << 20;
/// Messages whose bodies are read in one query while a page is filled.
const BODIES_AT_ONCE: usize = 8;

/// A published event.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    /// Sorted; empty for a message published on no channel.
    pub channels: Vec<String>,
    pub uid: Option<String>,
    pub published_at: DateTime<Utc>,
    /// The body deliveries send (Hookline's envelope), when asked for.
    pub body: Option<Arc<str>>,
}

impl MessageView {
    /// The published `data`, exactly as sent (when the body was read).
    pub fn data(&self) -> Option<&str> {
        self.body.as_deref().map(|b| envelope_data(b).unwrap_or(b))
    }
}

/// Which messages to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMessages {
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Published strictly after / before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Messages past this one in the list's order.
    pub after: Option<EventId>,
    pub oldest_first: bool,
    pub limit: u32,
    /// Read their bodies too.
    pub with_content: bool,
}

pub struct MessageService {
    shared: Shared,
    read: Arc<dyn MessageReadModel>,
    bodies: Arc<dyn MessageBodies>,
}

impl fmt::Debug for MessageService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageService").finish_non_exhaustive()
    }
}

impl MessageService {
    pub fn new(
        shared: Shared,
        read: Arc<dyn MessageReadModel>,
        bodies: Arc<dyn MessageBodies>,
    ) -> Self {
        Self {
            shared,
            read,
            bodies,
        }
    }

    /// Waits (bounded by the consistency timeout) until the message lists
    /// include every message recorded before the call: what the
    /// Svix-compatible API does after a create, since Svix clients expect
    /// a message they were answered for to be listed. True when they do.
    pub async fn settle(&self) -> bool {
        self.shared
            .waiter
            .wait_caught_up(Message::TYPE, self.shared.consistency_timeout)
            .await
    }

    /// The message with this id, as the log has it.
    ///
    /// # Errors
    /// 404 when the tenant published no such message.
    pub async fn get(&self, tenant: TenantId, id: EventId) -> Result<MessageView, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Message::TYPE, &id.to_string())
            .await?;
        let loaded = crate::fold::rebuild::<Message>(&events)?;
        let state = loaded
            .aggregate
            .state()
            .filter(|s| s.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("message", id))?;
        Ok(MessageView {
            id: state.event_id,
            tenant_id: state.tenant_id,
            event_type: state.event_type.to_string(),
            channels: state
                .channels
                .as_ref()
                .map(Channels::to_strings)
                .unwrap_or_default(),
            uid: state.uid.as_ref().map(|u| u.as_str().to_string()),
            published_at: state.published_at,
            body: Some(Arc::from(state.body.as_str())),
        })
    }

    /// The message the tenant published under its own id `uid`.
    ///
    /// # Errors
    /// 404 when there is none.
    pub async fn get_by_uid(&self, tenant: TenantId, uid: &Uid) -> Result<MessageView, AppError> {
        let id = hookline_domain::message::message_id_for_uid(tenant, uid);
        self.get(tenant, id).await.map_err(|e| match e {
            AppError::NotFound { .. } => AppError::not_found("message", uid),
            other => other,
        })
    }

    /// A page of the tenant's messages, and whether more follow.
    ///
    /// # Errors
    /// 404 for an `after` message the tenant does not have; storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        query: ListMessages,
    ) -> Result<(Vec<MessageView>, bool), AppError> {
        let cursor = match query.after {
            Some(id) => {
                let m = self.get(tenant, id).await?;
                Some((m.published_at, *m.id.as_uuid()))
            }
            None => None,
        };
        let mut rows = self
            .read
            .list(
                tenant,
                &MessageListQuery {
                    event_types: query.event_types,
                    channel: query.channel,
                    since: query.since,
                    until: query.until,
                    cursor,
                    oldest_first: query.oldest_first,
                    limit: query.limit,
                },
            )
            .await?;
        let mut more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        let listed = rows.len();
        let views = self.with_bodies(rows, query.with_content).await?;
        more |= views.len() < listed;
        Ok((views, more))
    }

    /// The tenant's messages `ids`, in one read, with their bodies when
    /// `with_content`. With bodies, the list stops early at the message
    /// whose body would take it past a page's worth of them, as lists do:
    /// the answer's second part says how many of `ids` were considered
    /// (every one of those the tenant published and the lists hold is in
    /// the answer; one not listed yet is left out).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn many(
        &self,
        tenant: TenantId,
        ids: &[EventId],
        with_content: bool,
    ) -> Result<(Vec<MessageView>, usize), AppError> {
        let mut found: std::collections::HashMap<EventId, MessageRecord> = self
            .read
            .by_ids(tenant, ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let rows: Vec<MessageRecord> = ids.iter().filter_map(|id| found.remove(id)).collect();
        let views = self.with_bodies(rows, with_content).await?;
        let considered = match views.last() {
            Some(last) if views.len() < ids.len() => ids
                .iter()
                .position(|id| *id == last.id)
                .map_or(ids.len(), |at| at + 1),
            _ => ids.len(),
        };
        Ok((views, considered))
    }

    /// Views of `rows` with their bodies when `with_content`, read a few
    /// at a time; the list ends (at least one kept) once it holds
    /// PAGE_BYTES of bodies, so a page of large messages stays bounded in
    /// memory.
    async fn with_bodies(
        &self,
        mut rows: Vec<MessageRecord>,
        with_content: bool,
    ) -> Result<Vec<MessageView>, AppError> {
        let mut bodies = std::collections::HashMap::new();
        if with_content {
            let mut used = 0usize;
            let mut kept = rows.len();
            'reading: for (n, chunk) in rows.chunks(BODIES_AT_ONCE).enumerate() {
                let ids: Vec<EventId> = chunk.iter().map(|r| r.id).collect();
                let read = self.bodies.bodies(&ids).await?;
                for (i, r) in chunk.iter().enumerate() {
                    let size = read.get(&r.id).map_or(0, |b| b.len());
                    if used > 0 && used + size > PAGE_BYTES {
                        kept = n * BODIES_AT_ONCE + i;
                        bodies.extend(read);
                        break 'reading;
                    }
                    used += size;
                }
                bodies.extend(read);
            }
            rows.truncate(kept);
        }
        Ok(rows
            .into_iter()
            .map(|r| MessageView {
                body: bodies.get(&r.id).cloned(),
                id: r.id,
                tenant_id: r.tenant_id,
                event_type: r.event_type,
                channels: r.channels,
                uid: r.uid,
                published_at: r.published_at,
            })
            .collect())
    }
}
