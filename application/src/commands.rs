//! Running a command with optimistic concurrency: on a conflict (another
//! writer appended to the same aggregate first) the command is rebuilt and
//! tried again a few times before giving up.

use crate::ports::{CommandStore, LogPosition};
use cqrs_es::{Aggregate, AggregateError};
use std::collections::HashMap;

/// Tries after the first before a conflict is reported.
pub const CONFLICT_RETRIES: usize = 4;

/// Executes the command `make` builds, retrying on `AggregateConflict`.
///
/// # Errors
/// The aggregate's refusal, a conflict that persisted through every retry,
/// or a storage error.
pub async fn execute_with_retry<A, F>(
    store: &dyn CommandStore<A>,
    aggregate_id: &str,
    mut make: F,
    metadata: HashMap<String, String>,
) -> Result<Option<LogPosition>, AggregateError<A::Error>>
where
    A: Aggregate,
    F: FnMut() -> A::Command + Send,
{
    let mut tries = 0;
    loop {
        match store.execute(aggregate_id, make(), metadata.clone()).await {
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
/// include it (see ARCHITECTURE.md §10).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;
    use crate::ports::CommandStore;
    use async_trait::async_trait;
    use hookline_domain::subscription::{
        Subscription, SubscriptionCommand, SubscriptionError, Unsubscribe,
    };
    use hookline_domain::TenantId;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose aggregate is always changed by someone else first.
    struct AlwaysConflicting {
        calls: AtomicUsize,
        succeed_on: usize,
    }

    #[async_trait]
    impl CommandStore<Subscription> for AlwaysConflicting {
        async fn execute(
            &self,
            _id: &str,
            _command: SubscriptionCommand,
            _metadata: HashMap<String, String>,
        ) -> Result<Option<LogPosition>, AggregateError<SubscriptionError>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.succeed_on {
                Ok(Some(LogPosition {
                    tx_id: 1,
                    position: 1,
                }))
            } else {
                Err(AggregateError::AggregateConflict)
            }
        }
        async fn load(&self, _id: &str) -> Result<Subscription, AppError> {
            Ok(Subscription::default())
        }
    }

    fn cmd() -> SubscriptionCommand {
        SubscriptionCommand::Unsubscribe(Unsubscribe {
            tenant_id: TenantId::from_uuid(uuid::Uuid::nil()),
            at: chrono::DateTime::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn conflicts_are_retried_then_reported_as_409() {
        let store = AlwaysConflicting {
            calls: AtomicUsize::new(0),
            succeed_on: usize::MAX,
        };
        let err = execute_with_retry(&store, "x", cmd, HashMap::new())
            .await
            .unwrap_err();
        assert_eq!(store.calls.load(Ordering::SeqCst), CONFLICT_RETRIES + 1);
        let mapped = crate::subscriptions::map_error_for_tests("x", err);
        assert!(
            matches!(
                mapped,
                AppError::Conflict {
                    code: "concurrent_modification",
                    ..
                }
            ),
            "{mapped:?}"
        );
    }

    #[tokio::test]
    async fn a_conflict_that_clears_succeeds() {
        let store = AlwaysConflicting {
            calls: AtomicUsize::new(0),
            succeed_on: 3,
        };
        let pos = execute_with_retry(&store, "x", cmd, HashMap::new())
            .await
            .unwrap();
        assert_eq!(
            pos,
            Some(LogPosition {
                tx_id: 1,
                position: 1
            })
        );
    }
}
