//! Running a command with optimistic concurrency: on a conflict (another
//! writer appended to the same aggregate first) the command is rebuilt and
//! tried again a few times before giving up.

use crate::error::AppError;
use crate::metadata::EventMetadata;
use crate::ports::{AggregateStore, AppendError, Appended, Batch, Change, LogPosition};
use cqrs_es::{Aggregate, AggregateError};
use std::future::Future;

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
    // Commands on one aggregate from this process take turns: they would
    // otherwise race each other to append, and a burst of them (secret
    // reads, each recording itself) could exhaust the retries. Writers in
    // other processes still conflict, and are retried.
    let _turn = turn_for(A::TYPE, aggregate_id).lock().await;
    let mut contention = Contention::default();
    loop {
        match store.execute(aggregate_id, make(), metadata).await {
            Err(AggregateError::AggregateConflict) if contention.again().await => {
                tracing::debug!(
                    aggregate_id,
                    tries = contention.tries,
                    "aggregate conflict, retrying"
                );
            }
            other => return other,
        }
    }
}

/// Locks shared by aggregates whose type and id hash alike: few enough to
/// keep, many enough that unrelated commands seldom wait for each other.
const TURNS: usize = 256;

fn turn_for(aggregate_type: &str, aggregate_id: &str) -> &'static tokio::sync::Mutex<()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: std::sync::LazyLock<Vec<tokio::sync::Mutex<()>>> =
        std::sync::LazyLock::new(|| (0..TURNS).map(|_| tokio::sync::Mutex::new(())).collect());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (aggregate_type, aggregate_id).hash(&mut hasher);
    let slot = usize::try_from(hasher.finish() % TURNS as u64).unwrap_or(0);
    &LOCKS[slot]
}

/// Retries of a command that lost a race to append to its aggregate. Each
/// conflict means another request's change landed, so every retry makes
/// progress; many requests at once on one aggregate (a burst of secret
/// reads and rotations) need more than a few. At least
/// [`CONFLICT_RETRIES`] retries, then more while under 2 s have passed
/// (at most 64), each a little later than the last (up to 10 ms).
#[derive(Debug)]
pub struct Contention {
    started: std::time::Instant,
    tries: usize,
}

impl Default for Contention {
    fn default() -> Self {
        Self {
            started: std::time::Instant::now(),
            tries: 0,
        }
    }
}

impl Contention {
    /// Waits a little and says whether to try again.
    pub async fn again(&mut self) -> bool {
        let within = self.tries < CONFLICT_RETRIES
            || (self.tries < 64 && self.started.elapsed() < std::time::Duration::from_secs(2));
        if !within {
            return false;
        }
        self.tries += 1;
        if self.tries <= CONFLICT_RETRIES {
            tokio::task::yield_now().await;
        } else {
            let ms = u64::try_from(self.tries.min(10)).unwrap_or(10);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        true
    }
}

/// An aggregate whose decisions can be taken outside cqrs-es (to append
/// them together with other aggregates' changes).
pub trait Decide: Aggregate {
    /// # Errors
    /// The aggregate's refusal.
    fn decide_command(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
}

impl Decide for hookline_domain::subscription::Subscription {
    fn decide_command(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error> {
        self.decide(command)
    }
}

impl Decide for hookline_domain::tenant::Tenant {
    fn decide_command(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error> {
        self.decide(command)
    }
}

/// Decides `commands` in turn on the aggregate as stored (each on the
/// state the previous left) and appends all their events, with whatever
/// other changes `with` adds (a uid claim), in one transaction; on a
/// conflict everything is decided again, a few times. Nothing is written
/// when the commands change nothing.
///
/// # Errors
/// The aggregate's refusal (mapped by `refused`), what `with` refuses, a
/// conflict that persisted (409 `concurrent_modification`), storage
/// errors.
pub async fn append_decided<A, C, W, Fut>(
    store: &dyn AggregateStore<A>,
    aggregate_id: &str,
    commands: C,
    refused: impl Fn(A::Error) -> AppError,
    with: W,
    metadata: &EventMetadata,
) -> Result<Option<LogPosition>, AppError>
where
    A: Decide + 'static,
    C: Fn() -> Vec<A::Command>,
    W: Fn() -> Fut,
    Fut: Future<Output = Result<Batch, AppError>>,
{
    let mut contention = Contention::default();
    loop {
        let loaded = store
            .load(&[aggregate_id.to_string()])
            .await?
            .remove(aggregate_id)
            .unwrap_or_default();
        let mut aggregate = loaded.aggregate;
        let mut events = Vec::new();
        for command in commands() {
            for event in aggregate.decide_command(command).map_err(&refused)? {
                aggregate.apply(event.clone());
                events.push(event);
            }
        }
        if events.is_empty() {
            return Ok(None);
        }
        let mut batch = with().await?;
        batch.add(Change::<A> {
            aggregate_id: aggregate_id.to_string(),
            version: loaded.version,
            events,
            metadata: metadata.clone(),
        })?;
        match store.append(batch, None).await {
            Ok(Appended::Written(position)) => return Ok(position),
            Ok(Appended::Replayed(_)) => {
                return Err(AppError::Internal(
                    "an append without a key was answered as a repeat".into(),
                ))
            }
            Err(AppendError::Conflict) if contention.again().await => {}
            Err(AppendError::Conflict) => break,
            Err(AppendError::Other(e)) => return Err(e),
        }
    }
    Err(AppError::conflict(
        "concurrent_modification",
        "the resource was changed by another request at the same time; retry the request",
    ))
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
        // Each conflict means another change landed: retried well past a
        // few, for up to 2 s or 64 retries.
        // (Fewer than 64 only on a machine so slow that 2 s ran out first.)
        let executions = store.executions();
        assert!(
            (CONFLICT_RETRIES + 2..=65).contains(&executions),
            "{executions}"
        );
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
