//! postgres-es's event repository with the hash chain: before events are
//! inserted, each gets its link (see `hookline_application::audit::chain`),
//! computed from the aggregate's previous link.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use hookline_application::audit::chain::{link, set_link, Linked, GENESIS};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::PgPool;

pub struct ChainedRepository {
    inner: PostgresEventRepository,
    pool: PgPool,
}

impl std::fmt::Debug for ChainedRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainedRepository")
    }
}

impl ChainedRepository {
    pub fn new(pool: PgPool) -> Self {
        Self {
            inner: PostgresEventRepository::new(pool.clone()),
            pool,
        }
    }
}

/// The link of the event before `sequence` (the genesis value for 1).
///
/// # Errors
/// Database errors, or a predecessor without a link.
pub async fn previous_link<'e, E>(
    executor: E,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
) -> Result<String, sqlx::Error>
where
    E: sqlx::PgExecutor<'e>,
{
    if sequence <= 1 {
        return Ok(GENESIS.to_string());
    }
    let previous: Option<Option<String>> = sqlx::query_scalar(
        "SELECT metadata->>'chain' FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence - 1)
    .fetch_optional(executor)
    .await?;
    // A missing predecessor fails the insert anyway (the sequence is not
    // the next one is a conflict); a predecessor without a link must not be
    // papered over.
    match previous {
        Some(Some(l)) => Ok(l),
        Some(None) => Err(sqlx::Error::Protocol(format!(
            "{aggregate_type} {aggregate_id} event {} has no chain link",
            sequence - 1
        ))),
        None => Ok(GENESIS.to_string()),
    }
}

impl PersistedEventRepository for ChainedRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner.get_events::<A>(aggregate_id).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.inner
            .get_last_events::<A>(aggregate_id, last_sequence)
            .await
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
        let Some(first) = events.first() else {
            return self.inner.persist::<A>(events, snapshot_update).await;
        };
        let mut previous = previous_link(
            &self.pool,
            &first.aggregate_type,
            &first.aggregate_id,
            i64::try_from(first.sequence).unwrap_or(i64::MAX),
        )
        .await
        .map_err(|e| PersistenceError::ConnectionError(Box::new(e)))?;
        let mut linked = Vec::with_capacity(events.len());
        for event in events {
            let mut event = event.clone();
            let l = link(
                &previous,
                Linked {
                    aggregate_type: &event.aggregate_type,
                    aggregate_id: &event.aggregate_id,
                    sequence: i64::try_from(event.sequence).unwrap_or(i64::MAX),
                    event_type: &event.event_type,
                    event_version: &event.event_version,
                    payload: &event.payload,
                    metadata: &event.metadata,
                },
            );
            set_link(&mut event.metadata, l.clone());
            previous = l;
            linked.push(event);
        }
        self.inner.persist::<A>(&linked, snapshot_update).await
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
