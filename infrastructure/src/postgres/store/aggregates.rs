//! The application's `AggregateStore` port over Postgres: single commands
//! through cqrs-es's `CqrsFramework` and [`PgRepository`], batches through
//! [`PgLog`], loads folded with the application's one fold.

use super::log::PgLog;
use super::repository::PgRepository;
use crate::postgres::listing::{listing_messages, with_listed_beginnings, with_outcomes_from};
use crate::postgres::log_reader::{decode, unavailable, COLUMNS};
use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use hookline_application::audit::chain::stored_link_of;
use hookline_application::fold;
use hookline_application::ports::{
    AggregateStore, AppendError, Appended, Batch, IdempotencyClaim, Loaded, LogPosition,
    StoredEvent,
};
use hookline_application::{AppError, EventMetadata};
use hookline_domain::delivery::Delivery;
use std::collections::HashMap;
use std::fmt;

type Store<A> = PersistedEventStore<PgRepository, A>;

pub struct PgAggregateStore<A: Aggregate> {
    cqrs: CqrsFramework<A, Store<A>>,
    log: PgLog,
}

impl<A: Aggregate> fmt::Debug for PgAggregateStore<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgAggregateStore<{}>", A::TYPE)
    }
}

impl<A: Aggregate> PgAggregateStore<A> {
    /// Deliveries' events, ordered by delivery and sequence: their stored
    /// rows, the beginnings their messages list (ADR 0019), and the first
    /// outcomes their messages' later rows hold (ADR 0023), read in the
    /// same statement as their rows.
    async fn load_deliveries(&self, ids: &[String]) -> Result<Vec<StoredEvent>, AppError> {
        // Messages of one delivery keep its outcomes in its own rows.
        let messages: Vec<String> = listing_messages(ids.iter().map(String::as_str))
            .into_iter()
            .filter(|m| self.log.gathers(m) != Some(false))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = 'Delivery' AND aggregate_id = ANY($1)
             UNION ALL
             SELECT {COLUMNS} FROM events
              WHERE aggregate_type = 'Message' AND aggregate_id = ANY($2) AND sequence > 1"
        ))
        .bind(ids)
        .bind(&messages)
        .fetch_all(self.log.pool())
        .await
        .map_err(unavailable)?;
        let (mut events, mut message_rows) = (Vec::with_capacity(rows.len()), Vec::new());
        for row in &rows {
            let event = decode(row).map_err(unavailable)?;
            if event.aggregate_type == Delivery::TYPE {
                events.push(event);
            } else {
                message_rows.push(event);
            }
        }
        events.sort_by(|a, b| {
            (a.aggregate_id.as_str(), a.sequence).cmp(&(b.aggregate_id.as_str(), b.sequence))
        });
        // The beginnings the feed read (ADR 0019), then the others.
        let remembered = self.log.take_beginnings(ids);
        let events = with_listed_beginnings(self.log.pool(), ids, events, remembered)
            .await
            .map_err(unavailable)?;
        let events = with_outcomes_from(ids, events, &message_rows).map_err(unavailable)?;
        Ok(events)
    }

    pub fn new(log: PgLog, services: A::Services) -> Self {
        Self {
            cqrs: CqrsFramework::new(
                PersistedEventStore::new_event_store(PgRepository::new(log.clone())),
                vec![],
                services,
            ),
            log,
        }
    }

    pub fn log(&self) -> &PgLog {
        &self.log
    }
}

#[async_trait]
impl<A> AggregateStore<A> for PgAggregateStore<A>
where
    A: Aggregate + 'static,
    A::Command: Send,
{
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Option<LogPosition>, AggregateError<A::Error>> {
        self.cqrs
            .execute_with_metadata(aggregate_id, command, metadata.to_map())
            .await?;
        // A listed delivery's first outcome may be in its message's row
        // (ADR 0023): the position to wait for is the later of the two.
        let message = (A::TYPE == Delivery::TYPE)
            .then(|| {
                hookline_domain::DeliveryId::parse(aggregate_id)
                    .ok()?
                    .listing_message()
            })
            .flatten()
            .map(|m| m.to_string());
        let mut aggregates = vec![(A::TYPE, aggregate_id)];
        if let Some(message) = &message {
            aggregates.push((hookline_domain::message::Message::TYPE, message.as_str()));
        }
        self.log
            .last_position(&aggregates)
            .await
            .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))
    }

    async fn load(&self, aggregate_ids: &[String]) -> Result<HashMap<String, Loaded<A>>, AppError> {
        if aggregate_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let events = if A::TYPE == Delivery::TYPE {
            self.load_deliveries(aggregate_ids).await?
        } else {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
                 ORDER BY aggregate_id, sequence"
            ))
            .bind(A::TYPE)
            .bind(aggregate_ids)
            .fetch_all(self.log.pool())
            .await
            .map_err(unavailable)?;
            rows.iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?
        };
        let loaded = fold::rebuild_each::<A>(&events)?;
        // The newest link of each (the last of its run: rows come ordered
        // by aggregate and sequence), for an append that follows.
        for (i, last) in events.iter().enumerate() {
            let ends_run = events
                .get(i + 1)
                .is_none_or(|next| next.aggregate_id != last.aggregate_id);
            if let (true, Some(link)) = (ends_run, stored_link_of(&last.metadata)) {
                self.log.remember(
                    (A::TYPE.to_string(), last.aggregate_id.clone()),
                    last.sequence,
                    link,
                );
            }
        }
        Ok(loaded)
    }

    async fn append(
        &self,
        batch: Batch,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Appended, AppendError> {
        self.log.append(batch.into_rows(), claim.as_ref()).await
    }
}
