//! postgres-es's event repository, with the hash chain: before cqrs-es
//! persists a command's events, each gets its link. Loads go to
//! postgres-es unchanged.

use super::log::PgLog;
use crate::postgres::listing::{listed_beginnings, listed_outcomes};
use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use hookline_application::audit::chain::{without_negative_zeros, Unlinked};
use hookline_application::listing::first_outcome_messages;
use hookline_application::ports::AppendError;
use hookline_domain::delivery::Delivery;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone)]
pub struct PgRepository {
    inner: Arc<PostgresEventRepository>,
    log: PgLog,
}

impl std::fmt::Debug for PgRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgRepository")
    }
}

impl PgRepository {
    pub fn new(log: PgLog) -> Self {
        Self {
            inner: Arc::new(PostgresEventRepository::new(log.pool().clone())),
            log,
        }
    }
}

impl PgRepository {
    /// A delivery's events with the `DeliveryEnqueued` its message's event
    /// began it with (ADR 0019), when it has no stored first event.
    async fn with_listed_beginning<A: Aggregate>(
        &self,
        aggregate_id: &str,
        mut events: Vec<SerializedEvent>,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        if A::TYPE != Delivery::TYPE || events.first().is_some_and(|e| e.sequence == 1) {
            return Ok(events);
        }
        let found = listed_beginnings(self.log.pool(), [aggregate_id])
            .await
            .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
        if let Some(first) = found.into_values().next() {
            let beginning = SerializedEvent {
                aggregate_id: first.aggregate_id,
                sequence: 1,
                aggregate_type: first.aggregate_type,
                event_type: first.event_type,
                event_version: first.event_version,
                payload: first.payload.to_value(),
                metadata: first.metadata.to_value(),
            };
            events.insert(0, beginning);
            if !events.iter().any(|e| e.sequence == 2) {
                let found = listed_outcomes(self.log.pool(), [aggregate_id])
                    .await
                    .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
                if let Some(second) = found.into_values().next() {
                    events.insert(
                        1,
                        SerializedEvent {
                            aggregate_id: second.aggregate_id,
                            sequence: 2,
                            aggregate_type: second.aggregate_type,
                            event_type: second.event_type,
                            event_version: second.event_version,
                            payload: second.payload.to_value(),
                            metadata: second.metadata.to_value(),
                        },
                    );
                }
            }
        }
        Ok(events)
    }
}

fn persistence_error(e: AppendError) -> PersistenceError {
    match e {
        AppendError::Conflict => PersistenceError::OptimisticLockError,
        AppendError::Other(e) => PersistenceError::ConnectionError(Box::new(e)),
    }
}

impl PersistedEventRepository for PgRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.inner.get_events::<A>(aggregate_id).await?;
        self.with_listed_beginning::<A>(aggregate_id, events).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self
            .inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await?;
        if last_sequence >= 1 {
            return Ok(events);
        }
        self.with_listed_beginning::<A>(aggregate_id, events).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        self.inner.get_snapshot::<A>(aggregate_id).await
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let mut rows: Vec<Unlinked> = events.iter().map(Unlinked::from_serialized).collect();
        // postgres-es writes through `jsonb`, which has no negative zero:
        // link what will be stored.
        for row in &mut rows {
            without_negative_zeros(&mut row.payload);
            without_negative_zeros(&mut row.metadata);
        }
        // A listed delivery's first outcome goes into its message's row
        // (ADR 0023), through the log's own append, which guards it.
        if !first_outcome_messages(&rows).is_empty() && snapshot_update.is_none() {
            self.log
                .append(rows, None)
                .await
                .map_err(persistence_error)?;
            return Ok(());
        }
        let mut conn = self
            .log
            .pool()
            .acquire()
            .await
            .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
        self.log
            .link(&mut conn, &mut rows)
            .await
            .map_err(persistence_error)?;
        drop(conn);
        let linked: Vec<SerializedEvent> = rows.iter().map(Unlinked::to_serialized).collect();
        hookline_application::commitment::point_of_no_return();
        self.inner.persist::<A>(&linked, snapshot_update).await?;
        self.log.wake(&rows).await;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_events::<A>(aggregate_id).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        self.inner.stream_all_events::<A>().await
    }
}
