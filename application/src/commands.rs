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
