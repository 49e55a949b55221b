//! Group commit for publishing: concurrent appends without an idempotency
//! key are gathered into one transaction (several such transactions may be
//! in flight at once). A batch that fails is retried one request at a
//! time, so one request's problem never fails another's.

use super::aggregates::PgAggregateStore;
use super::log::PgLog;
use async_trait::async_trait;
use cqrs_es::{Aggregate, AggregateError};
use hookline_application::audit::chain::Unlinked;
use hookline_application::ports::{
    AggregateStore, AppendError, Appended, Batch, IdempotencyClaim, Loaded, LogPosition,
};
use hookline_application::{AppError, EventMetadata};
use std::collections::HashMap;
use std::sync::Arc;

/// Most events one batched transaction carries.
pub const MAX_BATCH_EVENTS: usize = 2000;
/// Most payload bytes one batched transaction carries (a request over it
/// goes alone).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

struct Job {
    rows: Vec<Unlinked>,
    reply: tokio::sync::oneshot::Sender<Result<Appended, AppendError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} events)", self.rows.len())
    }
}

pub struct GroupCommit<A: Aggregate> {
    jobs: tokio::sync::mpsc::Sender<Job>,
    inner: Arc<PgAggregateStore<A>>,
}

impl<A: Aggregate> std::fmt::Debug for GroupCommit<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupCommit<{}>", A::TYPE)
    }
}

impl<A: Aggregate + 'static> GroupCommit<A> {
    /// Starts `lanes` batching tasks over `inner`'s log; they stop once
    /// the group commit is dropped.
    pub fn start(
        inner: Arc<PgAggregateStore<A>>,
        lanes: usize,
    ) -> (Self, Vec<tokio::task::JoinHandle<()>>) {
        let (tx, rx) = tokio::sync::mpsc::channel::<Job>(4096);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let handles = (0..lanes.max(1))
            .map(|_| {
                let rx = rx.clone();
                let log = inner.log().clone();
                tokio::spawn(async move {
                    loop {
                        let batch = {
                            let mut rx = rx.lock().await;
                            let Some(first) = rx.recv().await else { return };
                            gather(first, &mut rx)
                        };
                        commit(&log, batch).await;
                    }
                })
            })
            .collect();
        (Self { jobs: tx, inner }, handles)
    }
}

/// The first job and whatever else is waiting, up to the batch caps.
fn gather(first: Job, rx: &mut tokio::sync::mpsc::Receiver<Job>) -> Vec<Job> {
    let mut events = first.rows.len();
    let mut bytes = payload_bytes(&first.rows);
    let mut batch = vec![first];
    while events < MAX_BATCH_EVENTS && bytes < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(job) => {
                events += job.rows.len();
                bytes += payload_bytes(&job.rows);
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    batch
}

/// A cheap estimate of the rows' size: the length of their string fields.
fn payload_bytes(rows: &[Unlinked]) -> usize {
    fn walk(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.len(),
            serde_json::Value::Array(a) => a.iter().map(walk).sum(),
            serde_json::Value::Object(o) => o.values().map(walk).sum(),
            _ => 8,
        }
    }
    rows.iter().map(|r| walk(&r.payload)).sum()
}

async fn commit(log: &PgLog, batch: Vec<Job>) {
    if batch.len() == 1 {
        for job in batch {
            let result = log.append(job.rows, None).await;
            drop(job.reply.send(result));
        }
        return;
    }
    let all: Vec<Unlinked> = batch.iter().flat_map(|j| j.rows.iter().cloned()).collect();
    match log.append(all, None).await {
        Ok(appended) => {
            for job in batch {
                drop(job.reply.send(Ok(appended.clone())));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, requests = batch.len(), "a batched append failed; appending one request at a time");
            for job in batch {
                let result = log.append(job.rows, None).await;
                drop(job.reply.send(result));
            }
        }
    }
}

#[async_trait]
impl<A> AggregateStore<A> for GroupCommit<A>
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
        self.inner.execute(aggregate_id, command, metadata).await
    }

    async fn load(&self, aggregate_ids: &[String]) -> Result<HashMap<String, Loaded<A>>, AppError> {
        self.inner.load(aggregate_ids).await
    }

    async fn append(
        &self,
        batch: Batch,
        claim: Option<IdempotencyClaim<'_>>,
    ) -> Result<Appended, AppendError> {
        if claim.is_some() {
            return self.inner.append(batch, claim).await;
        }
        let rows = batch.into_rows();
        let (reply, answer) = tokio::sync::oneshot::channel();
        // Once handed over, the batch commits whether or not we wait.
        hookline_application::commitment::point_of_no_return();
        if let Err(rejected) = self.jobs.send(Job { rows, reply }).await {
            // The batchers are gone (shutting down): write directly.
            return self.inner.log().append(rejected.0.rows, None).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(AppendError::Other(AppError::Unavailable(
                "the event writer stopped".into(),
            )))
        })
    }
}
