//! The one way into the event log. Every write goes through an
//! [`AggregateStore`]: single commands through cqrs-es (`execute`), and
//! events decided in batches outside it (publish fan-out, attempt outcomes)
//! through `append`. The store assigns sequences, links the hash chain and
//! writes the metadata; callers hand it typed events.

use crate::audit::chain::Unlinked;
use crate::error::AppError;
use crate::metadata::EventMetadata;
use crate::ports::LogPosition;
use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use hookline_domain::TenantId;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// An aggregate rebuilt from its events and the sequence of its last event
/// (0 for one with no events yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: i64,
}

/// Events decided for one aggregate after it stood at `version`; they are
/// appended at `version + 1`, `version + 2`, …
#[derive(Debug, Clone)]
pub struct Change<A: Aggregate> {
    pub aggregate_id: String,
    pub version: i64,
    pub events: Vec<A::Event>,
    pub metadata: EventMetadata,
}

impl<A: Aggregate> Change<A> {
    /// The rows this change appends, serialised and not yet linked.
    ///
    /// # Errors
    /// An event that does not serialise (never, for Hookline's events).
    pub fn to_rows(&self) -> Result<Vec<Unlinked>, AppError> {
        let metadata = self.metadata.to_value();
        (self.version + 1..)
            .zip(&self.events)
            .map(|(sequence, event)| {
                Ok(Unlinked {
                    aggregate_type: A::TYPE.to_string(),
                    aggregate_id: self.aggregate_id.clone(),
                    sequence,
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: serde_json::to_value(event).map_err(|e| {
                        AppError::Internal(format!("{} event did not serialise: {e}", A::TYPE))
                    })?,
                    metadata: metadata.clone(),
                    payload_text: None,
                })
            })
            .collect()
    }
}

/// Changes to any aggregates, appended together in one transaction; each
/// is typed when added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    rows: Vec<Unlinked>,
}

impl Batch {
    /// A batch of changes to aggregates of one type.
    ///
    /// # Errors
    /// An event that does not serialise.
    pub fn of<A: Aggregate>(changes: Vec<Change<A>>) -> Result<Self, AppError> {
        let mut batch = Self::default();
        for change in changes {
            batch.add(change)?;
        }
        Ok(batch)
    }

    /// Adds a change.
    ///
    /// # Errors
    /// An event that does not serialise.
    pub fn add<A: Aggregate>(&mut self, change: Change<A>) -> Result<(), AppError> {
        self.rows.extend(change.to_rows()?);
        Ok(())
    }

    /// Adds every change of `other`, after this batch's.
    pub fn extend(&mut self, other: Batch) {
        self.rows.extend(other.rows);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[Unlinked] {
        &self.rows
    }

    pub fn into_rows(self) -> Vec<Unlinked> {
        self.rows
    }
}

impl Unlinked {
    /// A row cqrs-es is about to persist.
    pub fn from_serialized(event: &SerializedEvent) -> Self {
        Self {
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: i64::try_from(event.sequence).unwrap_or(i64::MAX),
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
            payload_text: None,
        }
    }

    /// The row as cqrs-es persists it.
    pub fn to_serialized(&self) -> SerializedEvent {
        SerializedEvent::new(
            self.aggregate_id.clone(),
            usize::try_from(self.sequence).unwrap_or_default(),
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            self.payload.clone(),
            self.metadata.clone(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to one of the aggregates first: nothing was
    /// written.
    #[error("an aggregate changed concurrently")]
    Conflict,
    #[error(transparent)]
    Other(#[from] AppError),
}

/// An idempotency key claimed in the same transaction as the events it
/// guards.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    pub tenant: TenantId,
    pub key: &'a str,
    /// A digest of what the request asks for: a key reused for a different
    /// request is refused rather than answered with the first response.
    pub fingerprint: &'a str,
    /// How long the key is remembered.
    pub ttl: Duration,
    /// The answer to store (and give to repeats).
    pub response: &'a Value,
}

/// The answer first given under a key, and that request's fingerprint
/// (`None` for keys stored before fingerprints were kept).
#[derive(Debug, Clone, PartialEq)]
pub struct FirstAnswer {
    pub response: Value,
    pub fingerprint: Option<String>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// Written; the position of the last event (none for an empty batch).
    Written(Option<LogPosition>),
    /// The idempotency key was already used within its lifetime: nothing
    /// was written, and this is the first answer.
    Replayed(FirstAnswer),
}

/// Loads and changes aggregates of one type.
#[async_trait]
pub trait AggregateStore<A>: Send + Sync
where
    A: Aggregate + 'static,
{
    /// Runs one command through cqrs-es: load, `handle`, append. Returns
    /// the position of the aggregate's newest event afterwards.
    ///
    /// # Errors
    /// The aggregate's refusal, a concurrency conflict or a storage error.
    async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Option<LogPosition>, AggregateError<A::Error>>;

    /// The aggregates with these ids (one read), each with its version;
    /// ids without events are left out.
    ///
    /// # Errors
    /// Storage errors, or a stored event that is not an `A::Event`.
    async fn load(&self, aggregate_ids: &[String]) -> Result<HashMap<String, Loaded<A>>, AppError>;

    /// Appends events decided outside cqrs-es (of this aggregate type or
    /// others: a publish appends its message and its deliveries) in one
    /// transaction. With a claim, only if its key is fresh (else nothing
    /// is written and the first answer comes back).
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when an aggregate moved past its `version`
    /// (nothing written); storage errors.
    async fn append(
        &self,
        batch: Batch,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Appended, AppendError>;
}

/// Reads idempotency keys claimed by [`AggregateStore::append`].
#[async_trait]
pub trait IdempotencyKeys: Send + Sync {
    /// The first answer stored under a key still alive.
    ///
    /// # Errors
    /// Storage errors.
    async fn first_answer(
        &self,
        tenant: TenantId,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<FirstAnswer>, AppError>;
}
