//! The command side: cqrs-es's `CqrsFramework` over postgres-es's plain
//! event store (never the snapshot or aggregate stores, which apply events
//! twice in cqrs-es 0.5.0). After a commit it reports the log position of the
//! aggregate's newest event and wakes local consumers.

use super::chained::ChainedRepository;
use super::log_reader::unavailable;
use super::wakeup::Wakeup;
use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use hookline_application::ports::{CommandStore, LogPosition};
use hookline_application::AppError;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::fmt;

type Store<A> = PersistedEventStore<ChainedRepository, A>;

pub struct PgCommandStore<A: Aggregate> {
    cqrs: CqrsFramework<A, Store<A>>,
    store: Store<A>,
    pool: PgPool,
    wakeup: Wakeup,
}

impl<A: Aggregate> fmt::Debug for PgCommandStore<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgCommandStore<{}>", A::TYPE)
    }
}

impl<A: Aggregate> PgCommandStore<A> {
    pub fn new(pool: PgPool, services: A::Services, wakeup: Wakeup) -> Self {
        let cqrs = CqrsFramework::new(
            PersistedEventStore::new_event_store(ChainedRepository::new(pool.clone())),
            vec![],
            services,
        );
        Self {
            cqrs,
            store: PersistedEventStore::new_event_store(ChainedRepository::new(pool.clone())),
            pool,
            wakeup,
        }
    }

    async fn last_position(&self, aggregate_id: &str) -> Result<Option<LogPosition>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT tx_id::text AS tx, global_position FROM events
             WHERE aggregate_type = $1 AND aggregate_id = $2
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(LogPosition {
                tx_id: super::checkpoints::parse_xid8(&r.try_get::<String, _>("tx")?)?,
                position: r.try_get("global_position")?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl<A> CommandStore<A> for PgCommandStore<A>
where
    A: Aggregate + 'static,
    A::Command: Send,
    A::Services: Send + Sync,
{
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: HashMap<String, String>,
    ) -> Result<Option<LogPosition>, AggregateError<A::Error>> {
        self.cqrs
            .execute_with_metadata(aggregate_id, command, metadata)
            .await?;
        self.wakeup.bump();
        self.last_position(aggregate_id)
            .await
            .map_err(|e| AggregateError::DatabaseConnectionError(Box::new(e)))
    }

    async fn load(&self, aggregate_id: &str) -> Result<A, AppError> {
        match self.store.load_aggregate(aggregate_id).await {
            Ok(context) => Ok(context.aggregate),
            Err(AggregateError::DatabaseConnectionError(e)) => {
                Err(AppError::Unavailable(e.to_string()))
            }
            Err(e) => Err(AppError::Internal(format!(
                "loading {} {aggregate_id}: {e}",
                A::TYPE
            ))),
        }
    }
}

/// Maps a plain query error the same way the ports expect.
pub fn db_error(e: sqlx::Error) -> AppError {
    unavailable(e)
}
