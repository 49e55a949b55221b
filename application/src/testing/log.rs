//! The log in memory, and the aggregate store over it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::audit::chain::{link_all, Unlinked};
use crate::error::AppError;
use crate::fold;
use crate::metadata::EventMetadata;
use crate::ports::{
    AggregateStore, AppendError, Appended, Batch, Clock, EventLog, FirstAnswer, IdempotencyClaim,
    IdempotencyKeys, Loaded, LogPosition, StoredEvent, StoredJson,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use hookline_domain::TenantId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Idempotency keys: the first answer and when it was given.
type Keys = HashMap<(TenantId, String), (FirstAnswer, DateTime<Utc>)>;

/// The log: every event appended, in order, and the idempotency keys.
#[derive(Debug, Default)]
pub struct MemoryLog {
    events: Mutex<Vec<StoredEvent>>,
    keys: Mutex<Keys>,
    clock: Arc<FixedClock>,
}

impl MemoryLog {
    pub fn with_clock(clock: Arc<FixedClock>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            ..Self::default()
        })
    }

    /// The log as readers see it: a message's listed deliveries begin
    /// after it (ADR 0019).
    pub fn all(&self) -> Vec<StoredEvent> {
        crate::listing::expand(self.events.lock().unwrap().clone()).unwrap()
    }

    pub fn of(&self, aggregate_type: &str) -> Vec<StoredEvent> {
        self.all()
            .into_iter()
            .filter(|e| e.aggregate_type == aggregate_type)
            .collect()
    }

    /// Appends rows if every aggregate is where they expect it.
    fn write(&self, mut rows: Vec<Unlinked>) -> Result<Option<LogPosition>, AppendError> {
        let seen = self.all();
        let mut events = self.events.lock().unwrap();
        let mut versions: HashMap<(String, String), i64> = HashMap::new();
        for e in seen.iter() {
            versions.insert(
                (e.aggregate_type.clone(), e.aggregate_id.clone()),
                e.sequence,
            );
        }
        for row in &rows {
            let key = (row.aggregate_type.clone(), row.aggregate_id.clone());
            let current = versions.get(&key).copied().unwrap_or(0);
            if row.sequence != current + 1 {
                return Err(AppendError::Conflict);
            }
            versions.insert(key, row.sequence);
            // The deliveries a message's event lists begin with it.
            if let Some(listed) = row.payload.get("deliveries").and_then(|d| d.as_array()) {
                for d in listed {
                    if let Some(id) = d.get("id").and_then(|i| i.as_str()) {
                        versions.insert(("Delivery".to_string(), id.to_string()), 1);
                    }
                }
            }
        }
        let previous = seen
            .iter()
            .map(|e| {
                (
                    (e.aggregate_type.clone(), e.aggregate_id.clone()),
                    crate::audit::chain::stored_link_of(&e.metadata).unwrap_or_default(),
                )
            })
            .collect();
        link_all(&mut rows, &previous);
        let mut last = None;
        for row in rows {
            let position = i64::try_from(events.len()).unwrap() + 1;
            last = Some(LogPosition { tx_id: 1, position });
            events.push(StoredEvent {
                position,
                tx_id: 1,
                aggregate_type: row.aggregate_type,
                aggregate_id: row.aggregate_id,
                sequence: row.sequence,
                event_type: row.event_type,
                event_version: row.event_version,
                payload: StoredJson::from_value(&row.payload).unwrap(),
                metadata: StoredJson::from_value(&row.metadata).unwrap(),
                recorded_at: self.clock.now(),
            });
        }
        Ok(last)
    }

    fn history(&self, aggregate_type: &str, id: &str) -> Vec<StoredEvent> {
        self.all()
            .into_iter()
            .filter(|e| e.aggregate_type == aggregate_type && e.aggregate_id == id)
            .collect()
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn aggregate_history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, AppError> {
        Ok(self.history(aggregate_type, aggregate_id))
    }

    async fn first_events_in_id_range(
        &self,
        aggregate_type: &str,
        tenant: TenantId,
        from: uuid::Uuid,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let (from, before) = (from.to_string(), before.map(|b| b.to_string()));
        let mut found: Vec<StoredEvent> = self
            .of(aggregate_type)
            .into_iter()
            .filter(|e| e.sequence == 1 && e.aggregate_id >= from)
            .filter(|e| before.as_ref().is_none_or(|b| e.aggregate_id < *b))
            .filter(|e| e.meta().is_some_and(|m| m.tenant_id == tenant))
            .collect();
        found.sort_by(|a, b| b.aggregate_id.cmp(&a.aggregate_id));
        found.truncate(limit as usize);
        Ok(found)
    }
}

#[async_trait]
impl IdempotencyKeys for MemoryLog {
    async fn first_answer(
        &self,
        tenant: TenantId,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<FirstAnswer>, AppError> {
        let now = self.clock.now();
        Ok(self
            .keys
            .lock()
            .unwrap()
            .get(&(tenant, key.to_string()))
            .filter(|(_, at)| *at + Duration::from_std(ttl).unwrap() > now)
            .map(|(a, _)| a.clone()))
    }
}

/// cqrs-es's view of the memory log.
#[derive(Debug, Clone)]
pub struct MemoryRepository(Arc<MemoryLog>);

impl PersistedEventRepository for MemoryRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self
            .0
            .history(A::TYPE, aggregate_id)
            .into_iter()
            .map(|e| {
                SerializedEvent::new(
                    e.aggregate_id,
                    usize::try_from(e.sequence).unwrap(),
                    e.aggregate_type,
                    e.event_type,
                    e.event_version,
                    e.payload.to_value(),
                    e.metadata.to_value(),
                )
            })
            .collect())
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        _last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.get_events::<A>(aggregate_id).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        _snapshot: Option<(String, serde_json::Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let rows = events.iter().map(Unlinked::from_serialized).collect();
        match self.0.write(rows) {
            Ok(_) => Ok(()),
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(AppendError::Other(e)) => Err(PersistenceError::UnknownError(Box::new(e))),
        }
    }

    async fn stream_events<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        Ok(ReplayStream::new(1).1)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        Ok(ReplayStream::new(1).1)
    }
}

/// The aggregate store over the memory log.
pub struct MemoryStore<A: Aggregate> {
    log: Arc<MemoryLog>,
    cqrs: CqrsFramework<A, PersistedEventStore<MemoryRepository, A>>,
    conflicts: AtomicUsize,
    executions: AtomicUsize,
    appends: AtomicUsize,
}

impl<A: Aggregate> Default for MemoryStore<A>
where
    A::Services: Default,
{
    fn default() -> Self {
        Self::new(Arc::default(), A::Services::default())
    }
}

impl<A: Aggregate> MemoryStore<A> {
    pub fn new(log: Arc<MemoryLog>, services: A::Services) -> Self {
        Self {
            cqrs: CqrsFramework::new(
                PersistedEventStore::new_event_store(MemoryRepository(log.clone())),
                vec![],
                services,
            ),
            log,
            conflicts: AtomicUsize::new(0),
            executions: AtomicUsize::new(0),
            appends: AtomicUsize::new(0),
        }
    }

    /// The next `n` commands and appends fail with a conflict.
    pub fn conflict_next(&self, n: usize) {
        self.conflicts.store(n, Ordering::SeqCst);
    }

    pub fn executions(&self) -> usize {
        self.executions.load(Ordering::SeqCst)
    }

    pub fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }

    fn take_conflict(&self) -> bool {
        self.conflicts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[async_trait]
impl<A> AggregateStore<A> for MemoryStore<A>
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
        self.executions.fetch_add(1, Ordering::SeqCst);
        if self.take_conflict() {
            return Err(AggregateError::AggregateConflict);
        }
        self.cqrs
            .execute_with_metadata(aggregate_id, command, metadata.to_map())
            .await?;
        Ok(self
            .log
            .history(A::TYPE, aggregate_id)
            .last()
            .map(StoredEvent::log_position))
    }

    async fn load(&self, aggregate_ids: &[String]) -> Result<HashMap<String, Loaded<A>>, AppError> {
        let events: Vec<StoredEvent> = self
            .log
            .of(A::TYPE)
            .into_iter()
            .filter(|e| aggregate_ids.contains(&e.aggregate_id))
            .collect();
        fold::rebuild_each(&events)
    }

    async fn append(
        &self,
        batch: Batch,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Appended, AppendError> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if self.take_conflict() {
            return Err(AppendError::Conflict);
        }
        if let Some(claim) = &claim {
            if let Some(first) = self
                .log
                .first_answer(claim.tenant, claim.key, claim.ttl)
                .await?
            {
                return Ok(Appended::Replayed(first));
            }
        }
        let position = self.log.write(batch.into_rows())?;
        if let Some(claim) = claim {
            self.log.keys.lock().unwrap().insert(
                (claim.tenant, claim.key.to_string()),
                (
                    FirstAnswer {
                        response: claim.response.clone(),
                        fingerprint: Some(claim.fingerprint.to_string()),
                    },
                    self.log.clock.now(),
                ),
            );
        }
        Ok(Appended::Written(position))
    }
}

#[async_trait]
impl crate::ports::MessageBodies for MemoryLog {
    async fn bodies(
        &self,
        ids: &[hookline_domain::EventId],
    ) -> Result<HashMap<hookline_domain::EventId, Arc<str>>, AppError> {
        use hookline_domain::message::{Message, MessageEvent};
        let mut out = HashMap::new();
        for stored in self.of(Message::TYPE) {
            let MessageEvent::MessagePublished { event_id, body, .. } =
                fold::parse::<Message>(&stored)?;
            if ids.contains(&event_id) {
                out.insert(event_id, Arc::from(body));
            }
        }
        Ok(out)
    }
}
