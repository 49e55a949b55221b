//! Appending many events in one statement (publish fan-out, batched attempt
//! outcomes), with the optional idempotency record in the same transaction.

use super::checkpoints::parse_xid8;
use super::log_reader::unavailable;
use super::wakeup::LogWakeups;
use async_trait::async_trait;
use hookline_application::audit::chain::{link, set_link, Linked, GENESIS};
use hookline_application::ports::{
    AppendError, EventAppender, FirstAnswer, IdempotencyKey, IdempotentAppend, LogPosition,
    NewEvent,
};
use hookline_application::AppError;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PgEventAppender {
    pool: PgPool,
    wakeups: LogWakeups,
}

impl PgEventAppender {
    pub fn new(pool: PgPool, wakeups: LogWakeups) -> Self {
        Self { pool, wakeups }
    }

    fn wake(&self, events: &[NewEvent]) {
        let mut types: Vec<&str> = events.iter().map(|e| e.aggregate_type).collect();
        types.sort_unstable();
        types.dedup();
        for t in types {
            self.wakeups.bump(t);
        }
    }
}

fn append_error(e: sqlx::Error) -> AppendError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => AppendError::Conflict,
        _ => AppendError::Other(unavailable(e)),
    }
}

/// The links of the events before each aggregate's first new event (one
/// query for the whole batch).
async fn previous_links(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<HashMap<(String, String), String>, AppendError> {
    let mut firsts: HashMap<(String, String), (i64, Option<&String>)> = HashMap::new();
    for e in events {
        firsts
            .entry((e.aggregate_type.to_string(), e.aggregate_id.clone()))
            .or_insert((e.sequence, e.previous_link.as_ref()));
    }
    let mut links: HashMap<(String, String), String> = HashMap::new();
    let (mut types, mut ids, mut seqs) = (Vec::new(), Vec::new(), Vec::new());
    for ((t, id), (seq, known)) in &firsts {
        if let Some(link) = known {
            links.insert((t.clone(), id.clone()), (*link).clone());
        } else if *seq <= 1 {
            links.insert((t.clone(), id.clone()), GENESIS.to_string());
        } else {
            types.push(t.clone());
            ids.push(id.clone());
            seqs.push(seq - 1);
        }
    }
    if !ids.is_empty() {
        let rows = sqlx::query(
            "SELECT e.aggregate_type, e.aggregate_id, e.metadata->>'chain' AS chain
               FROM events e
               JOIN UNNEST($1::text[], $2::text[], $3::bigint[]) AS u(t, i, s)
                 ON e.aggregate_type = u.t AND e.aggregate_id = u.i AND e.sequence = u.s",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .fetch_all(&mut *conn)
        .await
        .map_err(append_error)?;
        for row in rows {
            let key: (String, String) = (
                row.try_get("aggregate_type")
                    .map_err(|e| AppendError::Other(unavailable(e)))?,
                row.try_get("aggregate_id")
                    .map_err(|e| AppendError::Other(unavailable(e)))?,
            );
            let chain: Option<String> = row
                .try_get("chain")
                .map_err(|e| AppendError::Other(unavailable(e)))?;
            let chain = chain.ok_or_else(|| {
                AppendError::Other(AppError::Internal(format!(
                    "{} {} has an event without a chain link",
                    key.0, key.1
                )))
            })?;
            links.insert(key, chain);
        }
    }
    Ok(links)
}

/// One multi-row INSERT; returns the position of the last row.
async fn insert_all(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> Result<Option<LogPosition>, AppendError> {
    if events.is_empty() {
        return Ok(None);
    }
    let mut previous = previous_links(conn, events).await?;
    let mut types = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut seqs = Vec::with_capacity(events.len());
    let mut event_types = Vec::with_capacity(events.len());
    let mut versions = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut metadata = Vec::with_capacity(events.len());
    for e in events {
        types.push(e.aggregate_type);
        ids.push(e.aggregate_id.as_str());
        seqs.push(e.sequence);
        event_types.push(e.event_type.as_str());
        versions.push(e.event_version.as_str());
        payloads.push(e.payload.to_string());
        let key = (e.aggregate_type.to_string(), e.aggregate_id.clone());
        // A predecessor that is not there makes the insert conflict below.
        let prev = previous
            .get(&key)
            .cloned()
            .unwrap_or_else(|| GENESIS.to_string());
        let l = link(
            &prev,
            Linked {
                aggregate_type: e.aggregate_type,
                aggregate_id: &e.aggregate_id,
                sequence: e.sequence,
                event_type: &e.event_type,
                event_version: &e.event_version,
                payload: &e.payload,
                metadata: &e.metadata,
            },
        );
        let mut meta = e.metadata.clone();
        set_link(&mut meta, l.clone());
        previous.insert(key, l);
        metadata.push(meta.to_string());
    }
    let rows = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, et, v, p::json, m::json
           FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS u(t, i, s, et, v, p, m)
         RETURNING tx_id::text AS tx, global_position",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .fetch_all(&mut *conn)
    .await
    .map_err(append_error)?;
    let mut last: Option<LogPosition> = None;
    for row in rows {
        let tx: String = row
            .try_get("tx")
            .map_err(|e| AppendError::Other(unavailable(e)))?;
        let position = LogPosition {
            tx_id: parse_xid8(&tx).map_err(|e| AppendError::Other(unavailable(e)))?,
            position: row
                .try_get("global_position")
                .map_err(|e| AppendError::Other(unavailable(e)))?,
        };
        last = last.max(Some(position));
    }
    Ok(last)
}

#[async_trait]
impl EventAppender for PgEventAppender {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Option<LogPosition>, AppendError> {
        let mut tx = self.pool.begin().await.map_err(append_error)?;
        let position = insert_all(&mut tx, &events).await?;
        tx.commit().await.map_err(append_error)?;
        self.wake(&events);
        Ok(position)
    }

    async fn append_idempotent(
        &self,
        key: &IdempotencyKey<'_>,
        response: &Value,
        events: Vec<NewEvent>,
    ) -> Result<IdempotentAppend, AppendError> {
        let mut tx = self.pool.begin().await.map_err(append_error)?;
        // Claims the key, or takes over one that has expired. A concurrent
        // request with the same key waits here until the first commits.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, response, created_at, fingerprint)
             VALUES ($1, $2, $3, now(), $5)
             ON CONFLICT (tenant_id, key) DO UPDATE
                SET response = EXCLUDED.response, created_at = EXCLUDED.created_at,
                    fingerprint = EXCLUDED.fingerprint
                WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)
             RETURNING 1",
        )
        .bind(key.tenant.as_uuid())
        .bind(key.key)
        .bind(response)
        .bind(key.ttl.as_secs_f64())
        .bind(key.fingerprint)
        .fetch_optional(&mut *tx)
        .await
        .map_err(append_error)?;
        if claimed.is_none() {
            let (response, fingerprint) = sqlx::query_as(
                "SELECT response, fingerprint FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            )
            .bind(key.tenant.as_uuid())
            .bind(key.key)
            .fetch_one(&mut *tx)
            .await
            .map_err(append_error)?;
            tx.rollback().await.map_err(append_error)?;
            return Ok(IdempotentAppend::Replayed(FirstAnswer {
                response,
                fingerprint,
            }));
        }
        let position = insert_all(&mut tx, &events).await?;
        tx.commit().await.map_err(append_error)?;
        self.wake(&events);
        Ok(IdempotentAppend::Appended(position))
    }

    async fn idempotent_response(
        &self,
        key: &IdempotencyKey<'_>,
    ) -> Result<Option<FirstAnswer>, AppError> {
        let row: Option<(Value, Option<String>)> = sqlx::query_as(
            "SELECT response, fingerprint FROM idempotency_keys
             WHERE tenant_id = $1 AND key = $2 AND created_at >= now() - make_interval(secs => $3)",
        )
        .bind(key.tenant.as_uuid())
        .bind(key.key)
        .bind(key.ttl.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|(response, fingerprint)| FirstAnswer {
            response,
            fingerprint,
        }))
    }
}

/// Most events one batched transaction carries.
pub const MAX_BATCH_EVENTS: usize = 2000;

struct Job {
    events: Vec<NewEvent>,
    reply: tokio::sync::oneshot::Sender<Result<Option<LogPosition>, AppendError>>,
}

/// Group commit for publishing: concurrent `append` calls are gathered into
/// one transaction (several such transactions may be in flight at once).
/// A batch that fails is retried one request at a time, so one request's
/// problem never fails another's.
#[derive(Clone)]
pub struct BatchedAppender {
    jobs: tokio::sync::mpsc::Sender<Job>,
    direct: PgEventAppender,
}

impl std::fmt::Debug for BatchedAppender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchedAppender")
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} events)", self.events.len())
    }
}

impl BatchedAppender {
    /// Starts `lanes` batching tasks; they stop once every clone of the
    /// appender is dropped.
    pub fn start(
        pool: PgPool,
        wakeups: LogWakeups,
        lanes: usize,
    ) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(4096);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let direct = PgEventAppender::new(pool, wakeups);
        let handles = (0..lanes.max(1))
            .map(|_| {
                let rx = rx.clone();
                let direct = direct.clone();
                tokio::spawn(async move {
                    loop {
                        let batch = {
                            let mut rx = rx.lock().await;
                            let Some(first) = rx.recv().await else { return };
                            let mut batch = vec![first];
                            let mut size = batch[0].events.len();
                            while size < MAX_BATCH_EVENTS {
                                match rx.try_recv() {
                                    Ok(job) => {
                                        size += job.events.len();
                                        batch.push(job);
                                    }
                                    Err(_) => break,
                                }
                            }
                            batch
                        };
                        direct.commit_batch(batch).await;
                    }
                })
            })
            .collect();
        (Self { jobs: tx, direct }, handles)
    }
}

impl PgEventAppender {
    async fn commit_batch(&self, batch: Vec<Job>) {
        let all: Vec<NewEvent> = batch
            .iter()
            .flat_map(|j| j.events.iter().cloned())
            .collect();
        let result: Result<Option<LogPosition>, AppendError> = async {
            let mut tx = self.pool.begin().await.map_err(append_error)?;
            let position = insert_all(&mut tx, &all).await?;
            tx.commit().await.map_err(append_error)?;
            Ok(position)
        }
        .await;
        match result {
            Ok(position) => {
                self.wake(&all);
                for job in batch {
                    let _ = job.reply.send(Ok(position));
                }
            }
            Err(e) => {
                if batch.len() > 1 {
                    tracing::warn!(error = %e, requests = batch.len(), "a batched append failed; appending one request at a time");
                }
                for job in batch {
                    let result = self.append(job.events).await;
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

#[async_trait]
impl EventAppender for BatchedAppender {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Option<LogPosition>, AppendError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Err(rejected) = self.jobs.send(Job { events, reply }).await {
            // The batchers are gone (shutting down): write directly.
            return self.direct.append(rejected.0.events).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(AppendError::Other(AppError::Unavailable(
                "the event writer stopped".into(),
            )))
        })
    }

    async fn append_idempotent(
        &self,
        key: &IdempotencyKey<'_>,
        response: &Value,
        events: Vec<NewEvent>,
    ) -> Result<IdempotentAppend, AppendError> {
        self.direct.append_idempotent(key, response, events).await
    }

    async fn idempotent_response(
        &self,
        key: &IdempotencyKey<'_>,
    ) -> Result<Option<FirstAnswer>, AppError> {
        self.direct.idempotent_response(key).await
    }
}
