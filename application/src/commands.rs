//! Running a command with optimistic concurrency: on a conflict (another
//! writer appended to the same aggregate first) the command is rebuilt and
//! tried again a few times before giving up.

use crate::metadata::EventMetadata;
use crate::ports::{AggregateStore, LogPosition};
use cqrs_es::{Aggregate, AggregateError};

/// Tries after the first before a conflict is reported.
pub const CONFLICT_RETRIES: usize = 4;

/// Executes the command `make` builds, retrying on `AggregateConflict`.
///
/// # Errors
/// The aggregate's refusal, a conflict that persisted through every retry,
/// or a storage error.
pub async fn execute_with_retry<A, F>(
    store: &dyn AggregateStore<A>,
    aggregate_id: &str,
    mut make: F,
    metadata: &EventMetadata,
) -> Result<Option<LogPosition>, AggregateError<A::Error>>
where
    A: Aggregate + 'static,
    F: FnMut() -> A::Command + Send,
{
    let mut tries = 0;
    loop {
        match store.execute(aggregate_id, make(), metadata).await {
            Err(AggregateError::AggregateConflict) if tries < CONFLICT_RETRIES => {
                tries += 1;
                tracing::debug!(aggregate_id, tries, "aggregate conflict, retrying");
                tokio::task::yield_now().await;
            }
            other => return other,
        }
    }
}

/// A command's result together with whether the read models already
/// include it (see docs/architecture.md, "Consistency").
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    /// False when the projections did not catch up within the wait; the
    /// write is durable all the same.
    pub consistent: bool,
}

impl<T> Written<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        Written {
            value: f(self.value),
            consistent: self.consistent,
        }
    }
}

/// Storage-side failures of a command, whatever the aggregate.
pub(crate) fn map_store_error<E: std::error::Error>(e: AggregateError<E>) -> crate::AppError {
    use crate::AppError;
    match e {
        AggregateError::UserError(inner) => AppError::BadRequest(inner.to_string()),
        AggregateError::AggregateConflict => AppError::conflict(
            "concurrent_modification",
            "the resource was changed by another request at the same time; retry the request",
        ),
        AggregateError::DatabaseConnectionError(source) => {
            AppError::Unavailable(source.to_string())
        }
        AggregateError::DeserializationError(source) => {
            AppError::Internal(format!("stored event could not be read: {source}"))
        }
        AggregateError::UnexpectedError(source) => AppError::Internal(source.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{metadata, MemoryStore};
    use hookline_domain::subscription::{Subscription, SubscriptionCommand, Unsubscribe};
    use hookline_domain::TenantId;

    fn cmd() -> SubscriptionCommand {
        SubscriptionCommand::Unsubscribe(Unsubscribe {
            tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
            at: chrono::DateTime::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn conflicts_are_retried_then_reported_as_409() {
        let store = MemoryStore::<Subscription>::default();
        store.conflict_next(usize::MAX);
        let err = execute_with_retry(&store, "x", cmd, &metadata())
            .await
            .unwrap_err();
        assert_eq!(store.executions(), CONFLICT_RETRIES + 1);
        let mapped = crate::subscriptions::map_error_for_tests("x", err);
        assert!(
            matches!(
                mapped,
                crate::AppError::Conflict {
                    code: "concurrent_modification",
                    ..
                }
            ),
            "{mapped:?}"
        );
    }

    #[tokio::test]
    async fn a_conflict_that_clears_is_retried_until_it_runs() {
        let store = MemoryStore::<Subscription>::default();
        store.conflict_next(2);
        // The subscription does not exist: the command runs and is refused.
        let err = execute_with_retry(&store, "x", cmd, &metadata())
            .await
            .unwrap_err();
        assert_eq!(store.executions(), 3);
        assert!(matches!(err, AggregateError::UserError(_)), "{err:?}");
    }
}
