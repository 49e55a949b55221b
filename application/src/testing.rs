//! In-memory fakes of the ports, for unit tests of the services' decisions
//! without Postgres. The log is a vector; read models are folded from it on
//! demand (so they are never behind), and single commands run through
//! cqrs-es's `CqrsFramework` exactly as in production.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::audit::chain::{link_all, Unlinked};
use crate::deliveries::fold::records_until;
use crate::error::AppError;
use crate::fold;
use crate::metadata::EventMetadata;
use crate::ports::{
    AggregateStore, AppendError, Appended, AttemptRecord, Change, Clock, DeliveryListQuery,
    DeliveryReadModel, DeliveryRecord, DueDelivery, DueQueue, Entropy, EventLog, FirstAnswer,
    IdempotencyClaim, IdempotencyKeys, Loaded, LogPosition, OutgoingRequest, Payload,
    ProjectionWaiter, SecretCipher, SendResult, StoredEvent, SubscriptionDirectory,
    SubscriptionListQuery, SubscriptionReadModel, SubscriptionRecord, WebhookSender,
};
use crate::shared::Shared;
use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use hookline_domain::delivery::Delivery;
use hookline_domain::subscription::{Subscription, SubscriptionState, SubscriptionStatus};
use hookline_domain::{DeliveryId, Sealed, SubscriptionId, TenantId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

pub fn tenant(n: u128) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(n))
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        request_id: "req-test".into(),
        tenant_id: tenant(1),
        actor: "admin".into(),
        occurred_at: t0(),
        worker_id: None,
        triggered_by: None,
        chain: None,
    }
}

/// A clock that moves only when told.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl Default for FixedClock {
    fn default() -> Self {
        Self(Mutex::new(t0()))
    }
}

impl FixedClock {
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Ids counting up, bytes from the same counter, no jitter.
#[derive(Debug, Default)]
pub struct SeqEntropy(AtomicU64);

impl Entropy for SeqEntropy {
    fn new_id(&self) -> Uuid {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000_u128) | u128::from(n))
    }
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n as u8).wrapping_add(i as u8);
        }
    }
    fn jitter(&self) -> f64 {
        0.0
    }
}

/// "Seals" by hex-encoding the plaintext (so it does not appear as
/// itself), bound to its context.
#[derive(Debug, Default)]
pub struct PlainCipher;

impl SecretCipher for PlainCipher {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, AppError> {
        Ok(Sealed {
            alg: "plain".into(),
            key_id: context.into(),
            nonce: String::new(),
            ciphertext: hex::encode(plaintext),
        })
    }
    fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, AppError> {
        if sealed.key_id != context {
            return Err(AppError::Internal("sealed for another context".into()));
        }
        hex::decode(&sealed.ciphertext).map_err(|e| AppError::Internal(e.to_string()))
    }
}

/// Read models here are never behind.
#[derive(Debug, Default)]
pub struct NoWait;

#[async_trait]
impl ProjectionWaiter for NoWait {
    async fn wait_for(&self, _: &str, _: LogPosition, _: std::time::Duration) -> bool {
        true
    }
    async fn wait_caught_up(&self, _: &str, _: std::time::Duration) -> bool {
        true
    }
}

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

    pub fn all(&self) -> Vec<StoredEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn of(&self, aggregate_type: &str) -> Vec<StoredEvent> {
        self.all()
            .into_iter()
            .filter(|e| e.aggregate_type == aggregate_type)
            .collect()
    }

    /// Appends rows if every aggregate is where they expect it.
    fn write(&self, mut rows: Vec<Unlinked>) -> Result<Option<LogPosition>, AppendError> {
        let mut events = self.events.lock().unwrap();
        let mut versions: HashMap<(String, String), i64> = HashMap::new();
        for e in events.iter() {
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
        }
        let previous = events
            .iter()
            .map(|e| {
                (
                    (e.aggregate_type.clone(), e.aggregate_id.clone()),
                    crate::audit::chain::stored_link(&e.metadata)
                        .unwrap_or_default()
                        .to_string(),
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
                payload: Payload::from_value(&row.payload).unwrap(),
                metadata: row.metadata,
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
                    e.metadata,
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
        changes: Vec<Change<A>>,
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
        let mut rows = Vec::new();
        for change in &changes {
            rows.extend(change.to_rows()?);
        }
        let position = self.log.write(rows)?;
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

/// The subscriptions read model and directory, folded from the log.
#[derive(Debug, Clone)]
pub struct LogSubscriptions(pub Arc<MemoryLog>);

impl LogSubscriptions {
    fn all(&self) -> Vec<(SubscriptionState, i64)> {
        let events = self.0.of(Subscription::TYPE);
        let mut ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
        ids.dedup();
        let folded = fold::rebuild_each::<Subscription>(&events).unwrap();
        let mut out: Vec<(SubscriptionState, i64)> = folded
            .into_values()
            .filter_map(|l| l.aggregate.state().cloned().map(|s| (s, l.version)))
            .collect();
        out.sort_by_key(|(s, _)| std::cmp::Reverse((s.created_at, *s.id.as_uuid())));
        out
    }
}

#[async_trait]
impl SubscriptionReadModel for LogSubscriptions {
    async fn get(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| s.id == id && s.tenant_id == tenant)
            .map(|(state, version)| SubscriptionRecord { state, version }))
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &SubscriptionListQuery,
    ) -> Result<Vec<SubscriptionRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|(s, _)| s.tenant_id == tenant)
            .filter(|(s, _)| q.include_inactive || s.status != SubscriptionStatus::Deleted)
            .filter(|(s, _)| {
                q.any_of_patterns
                    .as_ref()
                    .is_none_or(|p| s.events.to_strings().iter().any(|e| p.contains(e)))
            })
            .filter(|(s, _)| q.before.is_none_or(|b| (s.created_at, *s.id.as_uuid()) < b))
            .take(q.limit as usize + 1)
            .map(|(state, version)| SubscriptionRecord { state, version })
            .collect())
    }

    async fn find_active_duplicate(
        &self,
        tenant: TenantId,
        url: &str,
        events: &[String],
    ) -> Result<Option<SubscriptionId>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| {
                s.tenant_id == tenant
                    && s.status == SubscriptionStatus::Active
                    && s.url.as_str() == url
                    && s.events.to_strings() == events
            })
            .map(|(s, _)| s.id))
    }
}

#[async_trait]
impl SubscriptionDirectory for LogSubscriptions {
    async fn active_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<Vec<SubscriptionState>>, AppError> {
        let mut active: Vec<SubscriptionState> = self
            .all()
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| s.tenant_id == tenant && s.status == SubscriptionStatus::Active)
            .collect();
        active.reverse();
        Ok(Arc::new(active))
    }

    async fn get(&self, id: SubscriptionId) -> Result<Option<Arc<SubscriptionState>>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(s, _)| s.id == id)
            .map(|(s, _)| Arc::new(s)))
    }
}

/// The deliveries read model, folded from the log.
#[derive(Debug, Clone)]
pub struct LogDeliveries(pub Arc<MemoryLog>);

impl LogDeliveries {
    fn all(&self) -> Vec<(DeliveryRecord, Vec<AttemptRecord>)> {
        let events = self.0.of(Delivery::TYPE);
        let mut ids: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let mut out: Vec<_> = ids
            .iter()
            .filter_map(|id| {
                let mine: Vec<StoredEvent> = events
                    .iter()
                    .filter(|e| &e.aggregate_id == id)
                    .cloned()
                    .collect();
                let (record, attempts) = records_until(&mine, DateTime::<Utc>::MAX_UTC).unwrap();
                record.map(|r| (r, attempts))
            })
            .collect();
        out.sort_by_key(|(r, _)| std::cmp::Reverse((r.created_at, *r.id.as_uuid())));
        out
    }
}

#[async_trait]
impl DeliveryReadModel for LogDeliveries {
    async fn get(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<DeliveryRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .find(|r| r.id == id && r.tenant_id == tenant))
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &DeliveryListQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.tenant_id == tenant)
            .filter(|r| q.status.is_none_or(|s| r.status == s))
            .filter(|r| q.subscription_id.is_none_or(|s| r.subscription_id == s))
            .take(q.limit as usize + 1)
            .collect())
    }

    async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .find(|(r, _)| r.id == id && r.tenant_id == tenant)
            .map(|(_, a)| a)
            .unwrap_or_default())
    }

    async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        Ok(self
            .all()
            .into_iter()
            .filter(|(r, _)| r.tenant_id == tenant)
            .flat_map(|(_, a)| a)
            .filter(|a| {
                a.request_id.as_deref() == Some(request_id)
                    || a.triggered_by.as_deref() == Some(request_id)
            })
            .collect())
    }

    async fn recoverable(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DeliveryId>, AppError> {
        use hookline_domain::delivery::DeliveryStatus;
        Ok(self
            .all()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| {
                r.tenant_id == tenant
                    && r.subscription_id == subscription
                    && r.created_at >= since
                    && matches!(r.status, DeliveryStatus::Failed | DeliveryStatus::Abandoned)
            })
            .map(|r| r.id)
            .collect())
    }
}

/// Answers attempts from a script (a 204 once it runs out) and records
/// every request.
#[derive(Debug, Default)]
pub struct ScriptedSender {
    script: Mutex<VecDeque<crate::ports::SendOutcome>>,
    pub sent: Mutex<Vec<OutgoingRequest>>,
}

impl ScriptedSender {
    pub fn answer(&self, outcome: crate::ports::SendOutcome) {
        self.script.lock().unwrap().push_back(outcome);
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn send(&self, request: OutgoingRequest) -> SendResult {
        self.sent.lock().unwrap().push(request);
        let outcome = self.script.lock().unwrap().pop_front().unwrap_or(
            crate::ports::SendOutcome::Response {
                status: 204,
                retry_after_secs: None,
                excerpt: None,
            },
        );
        SendResult {
            started_at: t0(),
            duration_ms: 3,
            outcome,
        }
    }
}

/// A due queue holding what tests put in it; deferred deliveries come back
/// at once.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    pub due: Mutex<VecDeque<DueDelivery>>,
    pub deferred: Mutex<Vec<(DeliveryId, std::time::Duration)>>,
    leased: Mutex<HashMap<DeliveryId, DueDelivery>>,
}

#[async_trait]
impl DueQueue for MemoryQueue {
    async fn claim(
        &self,
        _worker: &str,
        limit: u32,
        _lease: std::time::Duration,
    ) -> Result<Vec<DueDelivery>, AppError> {
        let mut due = self.due.lock().unwrap();
        let n = due.len().min(limit as usize);
        let claimed: Vec<DueDelivery> = due.drain(..n).collect();
        let mut leased = self.leased.lock().unwrap();
        for d in &claimed {
            leased.insert(d.delivery_id, d.clone());
        }
        Ok(claimed)
    }

    async fn defer(
        &self,
        _worker: &str,
        deliveries: &[(DeliveryId, std::time::Duration)],
    ) -> Result<(), AppError> {
        self.deferred.lock().unwrap().extend_from_slice(deliveries);
        let mut leased = self.leased.lock().unwrap();
        let mut due = self.due.lock().unwrap();
        for (id, _) in deliveries {
            if let Some(d) = leased.remove(id) {
                due.push_back(d);
            }
        }
        Ok(())
    }

    async fn next_due_in(&self) -> Result<Option<std::time::Duration>, AppError> {
        Ok(None)
    }
}

/// Everything a service needs, over one memory log.
pub struct World {
    pub clock: Arc<FixedClock>,
    pub log: Arc<MemoryLog>,
    pub shared: Shared,
}

impl Default for World {
    fn default() -> Self {
        let clock = Arc::new(FixedClock::default());
        let log = MemoryLog::with_clock(clock.clone());
        let shared = Shared {
            clock: clock.clone(),
            entropy: Arc::new(SeqEntropy::default()),
            cipher: Arc::new(PlainCipher),
            log: log.clone(),
            waiter: Arc::new(NoWait),
            consistency_timeout: std::time::Duration::from_millis(10),
        };
        Self { clock, log, shared }
    }
}

impl World {
    pub fn store<A: Aggregate>(&self, services: A::Services) -> Arc<MemoryStore<A>> {
        Arc::new(MemoryStore::new(self.log.clone(), services))
    }

    pub fn subscriptions(&self) -> Arc<LogSubscriptions> {
        Arc::new(LogSubscriptions(self.log.clone()))
    }

    pub fn deliveries(&self) -> Arc<LogDeliveries> {
        Arc::new(LogDeliveries(self.log.clone()))
    }

    pub fn tenants(&self) -> Arc<LogTenants> {
        Arc::new(LogTenants(self.log.clone()))
    }

    pub fn ctx(&self, tenant_id: TenantId) -> crate::CommandContext {
        crate::CommandContext {
            request_id: crate::RequestId::from_client("req-1").unwrap(),
            tenant_id,
            actor: crate::Actor::Admin,
        }
    }
}

/// The tenants read model, folded from the log; its version is the log's
/// length, so every change invalidates cached keys.
#[derive(Debug, Clone)]
pub struct LogTenants(pub Arc<MemoryLog>);

impl LogTenants {
    fn all(&self) -> Vec<hookline_domain::tenant::TenantState> {
        use hookline_domain::tenant::Tenant;
        let events = self.0.of(Tenant::TYPE);
        let mut out: Vec<_> = fold::rebuild_each::<Tenant>(&events)
            .unwrap()
            .into_values()
            .filter_map(|l| l.aggregate.state().cloned())
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse((s.created_at, *s.id.as_uuid())));
        out
    }
}

#[async_trait]
impl crate::ports::TenantReadModel for LogTenants {
    async fn get(
        &self,
        id: TenantId,
    ) -> Result<Option<hookline_domain::tenant::TenantState>, AppError> {
        Ok(self.all().into_iter().find(|s| s.id == id))
    }

    async fn list(
        &self,
        q: &crate::ports::TenantListQuery,
    ) -> Result<Vec<hookline_domain::tenant::TenantState>, AppError> {
        use hookline_domain::tenant::TenantStatus;
        Ok(self
            .all()
            .into_iter()
            .filter(|s| q.include_deleted || s.status != TenantStatus::Deleted)
            .take(q.limit as usize + 1)
            .collect())
    }

    async fn find_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<crate::ports::ApiKeyRecord>, AppError> {
        use hookline_domain::tenant::TenantStatus;
        Ok(self.all().into_iter().find_map(|s| {
            let deleted = (s.status == TenantStatus::Deleted).then_some(s.updated_at);
            s.keys
                .iter()
                .find(|k| k.key_hash == key_hash)
                .map(|k| crate::ports::ApiKeyRecord {
                    key_id: k.key_id,
                    tenant_id: s.id,
                    refused_from: match (k.revoked_from, deleted) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                })
        }))
    }

    fn version(&self) -> u64 {
        self.0.all().len() as u64
    }
}
