//! The application's `AggregateStore` port over Postgres: single commands
//! through cqrs-es's `CqrsFramework` and [`PgRepository`], batches through
//! [`PgLog`], loads folded with the application's one fold.

use super::log::PgLog;
use super::repository::PgRepository;
use crate::postgres::listing::with_listed_beginnings;
use crate::postgres::log_reader::{decode, unavailable, COLUMNS};
use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use hookline_application::audit::chain::stored_link_of;
use hookline_application::fold;
use hookline_application::ports::{
    AggregateStore, AppendError, Appended, Batch, IdempotencyClaim, Loaded, LogPosition,
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
        self.log
            .last_position(A::TYPE, aggregate_id)
            .await
            .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))
    }

    async fn load(&self, aggregate_ids: &[String]) -> Result<HashMap<String, Loaded<A>>, AppError> {
        if aggregate_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
             ORDER BY aggregate_id, sequence"
        ))
        .bind(A::TYPE)
        .bind(aggregate_ids)
        .fetch_all(self.log.pool())
        .await
        .map_err(unavailable)?;
        let mut events = rows
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        if A::TYPE == Delivery::TYPE {
            // The beginnings the feed read (ADR 0019), then the others.
            let remembered = self.log.take_beginnings(aggregate_ids);
            events = with_listed_beginnings(self.log.pool(), aggregate_ids, events, remembered)
                .await
                .map_err(unavailable)?;
        }
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
