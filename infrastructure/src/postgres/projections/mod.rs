//! Catch-up projections. Each projection reads the log in commit order from
//! its checkpoint, applies a batch of events and moves its checkpoint in one
//! transaction, so a crash never applies an event twice or skips one.
//!
//! Several processes may run the same projection: an advisory lock lets one
//! apply a batch while the others only follow its checkpoint.

pub mod deliveries;
pub mod queue;
pub mod subscriptions;

use super::checkpoints;
use super::log_reader::{read_after, read_deliveries_after};
use super::wakeup::{LogWakeups, Wakeup};
use async_trait::async_trait;
use cqrs_es::Aggregate;
use hookline_application::ports::{LogPosition, ProjectionWaiter, StoredEvent};
use hookline_domain::delivery::Delivery;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// Events per projection transaction.
pub const BATCH_SIZE: i64 = 500;
/// Under load, the least time between two batches (events arriving
/// meanwhile share one transaction).
pub const GATHER: Duration = Duration::from_millis(5);
/// How long after a checkpoint that records held rows (ADR 0021) another
/// process may take the projection over, beyond the time rows are held.
pub const TAKEOVER_GRACE: Duration = Duration::from_secs(2);
/// Fallback poll when no wake-up arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event at position {position} ({event_type}) cannot be read: {reason}")]
    BadEvent {
        position: i64,
        event_type: String,
        reason: String,
    },
}

impl ProjectionError {
    pub fn bad_event(event: &StoredEvent, reason: impl fmt::Display) -> Self {
        Self::BadEvent {
            position: event.position,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}

/// A read model built from one aggregate type's events.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Checkpoint name; unique per projection (and per target table).
    fn name(&self) -> String;
    fn aggregate_type(&self) -> &'static str;
    /// Applies `events` (in commit order) inside the caller's transaction.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError>;
    /// Called after the batch committed (refresh caches, wake workers).
    fn after_commit(&self, _events: &[StoredEvent]) {}
    /// Under load, the least time between two batches, and the most events
    /// one carries.
    fn pace(&self) -> (Duration, i64) {
        (GATHER, BATCH_SIZE)
    }
    /// Called once a rebuild has applied every event, before its tables
    /// are compared or swapped in (tables derived from the others).
    async fn rebuilt(&self, _conn: &mut PgConnection) -> Result<(), ProjectionError> {
        Ok(())
    }
    /// Rows applied but held back in memory (ADR 0021): the position of
    /// the oldest event whose rows are held, and when the first hold ends.
    /// The runner writes the position with the checkpoint, so that another
    /// process (or a rebuild) can write them, and steps when a hold ends.
    fn held(&self) -> Option<(LogPosition, Instant)> {
        None
    }
    /// The next `apply` writes every held row (a request waits for the
    /// read model).
    fn release_held(&self) {}
    /// For how long this projection holds rows (zero: it holds none).
    fn hold_for(&self) -> Duration {
        Duration::ZERO
    }
    /// Drops what is held: the tables changed under it (another process
    /// applied the projection, a rebuild, a failed transaction).
    fn forget_held(&self) {}
    /// Writes the rows another holder held back: those of events in
    /// `[from, until]` that the tables lack.
    async fn write_held(
        &self,
        _conn: &mut PgConnection,
        _from: LogPosition,
        _until: LogPosition,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Health {
    caught_up: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Requests of this process waiting for the projection to pass a
    /// position: while there are any, it gathers [`GATHER`] at most.
    waiters: AtomicUsize,
    /// Wakes a gathering runner when a request starts waiting (it then
    /// looks at `waiters` again).
    hurry: Notify,
}

/// Counts a waiting request for as long as it waits (also when its future
/// is dropped).
struct Waiting<'a>(&'a Health);

impl<'a> Waiting<'a> {
    fn start(health: &'a Health) -> Self {
        health.waiters.fetch_add(1, Ordering::SeqCst);
        health.hurry.notify_one();
        Self(health)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one projection until shutdown.
pub struct ProjectionRunner {
    projection: Arc<dyn Projection>,
    name: String,
    lock_key: i64,
    pool: PgPool,
    wakeup: Wakeup,
    progress: watch::Sender<LogPosition>,
    health: Arc<Health>,
    /// The checkpoint this process last wrote, while what the projection
    /// holds in memory goes with it (ADR 0021).
    written: Mutex<Option<checkpoints::Stored>>,
    /// The last checkpoint read or written: the cheap look for new events
    /// starts there (the published position stops short of held rows).
    seen: Mutex<LogPosition>,
    /// Shutting down: what is held is written now.
    stopping: AtomicBool,
}

impl fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProjectionRunner({})", self.name)
    }
}

/// The advisory lock a projection holds while it applies a batch.
pub fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("hookline-projection:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl ProjectionRunner {
    /// Applies at most one batch. Returns how many events were applied.
    ///
    /// # Errors
    /// Database errors and events the projection cannot read.
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        // A cheap look first: most wake-ups under light load find nothing
        // new yet, and need no transaction or lock to say so.
        let known = self.seen.lock().map_or(LogPosition::default(), |s| *s);
        if !self.holds_due()
            && known != LogPosition::default()
            && !super::log_reader::anything_after(
                &self.pool,
                known,
                self.projection.aggregate_type(),
            )
            .await?
        {
            return Ok(0);
        }
        let stepped = self.apply_batch().await;
        if stepped.is_err() {
            // What the projection holds may not match the tables any more
            // (its batch rolled back): the next step recovers from the
            // checkpoint.
            self.projection.forget_held();
            if let Ok(mut written) = self.written.lock() {
                *written = None;
            }
        }
        stepped
    }

    async fn apply_batch(&self) -> Result<usize, ProjectionError> {
        // READ COMMITTED (the default): the checkpoint read once the lock
        // is held sees the last holder's commit (`try_lock_and_read`).
        let mut tx = self.pool.begin().await?;
        let (locked, stored) =
            checkpoints::try_lock_and_read(&mut tx, self.lock_key, &self.name).await?;

        if !locked {
            // Another process is applying this projection; follow it.
            tx.rollback().await?;
            self.publish(stored.shown());
            return Ok(0);
        }
        let checkpoint = stored.at;
        let ours = self
            .written
            .lock()
            .is_ok_and(|w| w.is_some_and(|w| w.same_as(&stored)));
        let mut recovered = false;
        if !ours
            && stored.held.is_some()
            && stored.age < self.projection.hold_for() + TAKEOVER_GRACE
        {
            // Another process holds rows and keeps its checkpoint fresh:
            // leave the projection to it (taking over would write its rows
            // unfolded). One that stopped is taken over once its checkpoint
            // is older than its holds can be: until then this process
            // looks again at every wake-up or poll (`seen` stays behind).
            tx.rollback().await?;
            self.publish(stored.shown());
            return Ok(0);
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = checkpoint;
        }
        if !ours {
            // Someone else wrote the tables since (or this process just
            // started): what this process holds is stale, and what the
            // last holder held is not written yet.
            self.projection.forget_held();
            if let Some(held) = stored.held {
                self.projection
                    .write_held(&mut tx, held, checkpoint)
                    .await?;
                recovered = true;
            }
        }
        if self.health.waiters.load(Ordering::SeqCst) > 0 {
            self.projection.release_held();
        }
        let (events, last, read) = if self.projection.aggregate_type() == Delivery::TYPE {
            read_deliveries_after(&mut tx, checkpoint, self.projection.pace().1).await?
        } else {
            let events = read_after(
                &mut tx,
                checkpoint,
                Some(self.projection.aggregate_type()),
                self.projection.pace().1,
            )
            .await?;
            let last = events.last().map(StoredEvent::log_position);
            let read = events.len();
            (events, last, read)
        };
        let due = self.holds_due();
        if last.is_none() && !due && !recovered {
            tx.rollback().await?;
            self.publish(stored.shown());
            return Ok(0);
        }
        let last = last.unwrap_or(checkpoint);
        if !events.is_empty() || due {
            self.projection.apply(&mut tx, &events).await?;
        }
        let written = checkpoints::Stored {
            at: last,
            held: self.projection.held().map(|(at, _)| at),
            age: Duration::ZERO,
        };
        checkpoints::write_holding(&mut tx, &self.name, written.at, written.held).await?;
        tx.commit().await?;
        if let Ok(mut w) = self.written.lock() {
            *w = Some(written);
        }
        if let Ok(mut seen) = self.seen.lock() {
            *seen = written.at;
        }
        self.publish(written.shown());
        self.projection.after_commit(&events);
        // Stored rows, which the batch size counts (a message's listed
        // deliveries are more events than rows).
        Ok(read)
    }

    /// Whether held rows are to be written now: their time is up, or a
    /// request waits for the read model.
    fn holds_due(&self) -> bool {
        self.projection.held().is_some_and(|(_, until)| {
            until <= Instant::now()
                || self.health.waiters.load(Ordering::SeqCst) > 0
                || self.stopping.load(Ordering::SeqCst)
        })
    }

    /// At shutdown: writes what is held (the next holder would, later).
    async fn write_held_rows(&self) {
        if self.projection.held().is_some() {
            self.stopping.store(true, Ordering::SeqCst);
            self.projection.release_held();
            if let Err(e) = self.step().await {
                tracing::warn!(projection = %self.name, error = %e, "writing held rows at shutdown failed");
            }
        }
    }

    fn publish(&self, at: LogPosition) {
        self.progress.send_if_modified(|p| {
            if at > *p {
                *p = at;
                true
            } else {
                false
            }
        });
    }

    /// Catches up whenever woken (or every [`POLL_INTERVAL`]) until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wake = self.wakeup.subscribe();
        while let Err(e) = checkpoints::ensure(&self.pool, &self.name).await {
            self.record_error(&e.to_string());
            if sleep_or_cancel(&shutdown, Duration::from_secs(1)).await {
                return;
            }
        }
        // After a wake-up that found nothing, the new events may still be
        // behind a running transaction: look again soon, backing off.
        let mut quick_retry: Option<Duration> = None;
        // A wake-up that names no type (an announcement of an older
        // version, or of a type this process does not know) wakes every
        // projection, and one of a busy type may find nothing past the
        // horizon yet: successive empty looks back off (1, 2, 4, 8 then
        // 16 ms apart at most).
        let mut empty_looks: u32 = 0;
        let (gather, batch_size) = self.projection.pace();
        loop {
            wake.borrow_and_update();
            let started = tokio::time::Instant::now();
            let busy;
            match self.step().await {
                Ok(n) if n as i64 >= batch_size => {
                    self.clear_error();
                    quick_retry = None;
                    continue;
                }
                Ok(n) => {
                    busy = n > 0;
                    empty_looks = if busy {
                        0
                    } else {
                        empty_looks.saturating_add(1)
                    };
                    self.clear_error();
                    self.health.caught_up.store(true, Ordering::Relaxed);
                    quick_retry = if n > 0 {
                        Some(Duration::from_millis(2))
                    } else {
                        quick_retry.and_then(|d| (d < Duration::from_millis(128)).then_some(d * 2))
                    };
                }
                Err(e) => {
                    tracing::error!(projection = %self.name, error = %e, "projection failed; retrying");
                    self.record_error(&e.to_string());
                    if sleep_or_cancel(&shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            }
            let mut wait = quick_retry.unwrap_or(POLL_INTERVAL);
            if let Some((_, until)) = self.projection.held() {
                // Not sooner than every 50 ms while held rows are due and
                // another session has the lock (a rebuild).
                let left = until.saturating_duration_since(Instant::now());
                wait = wait.min(left.max(Duration::from_millis(50)));
            }
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.write_held_rows().await;
                    return;
                }
                changed = wake.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    quick_retry = Some(Duration::from_millis(1));
                }
                () = tokio::time::sleep(wait) => {}
                // A request waits for this read model: rows held back
                // (ADR 0021) are written for it at once.
                () = self.health.hurry.notified(), if self.projection.held().is_some() => {
                    quick_retry = Some(Duration::from_millis(1));
                }
            }
            // While events keep coming, let a few milliseconds' worth gather
            // so each transaction carries more of them: `gather`, or the
            // usual 5 ms while a request of this process waits for the
            // read model (one arriving meanwhile cuts a longer gathering
            // short; a stale wake-up does not).
            if busy {
                loop {
                    if self.health.waiters.load(Ordering::SeqCst) > 0 {
                        tokio::time::sleep_until(started + gather.min(GATHER)).await;
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(started + gather) => break,
                        () = self.health.hurry.notified() => {}
                    }
                }
            } else if empty_looks > 0 {
                let spacing = Duration::from_millis(1 << (empty_looks - 1).min(4));
                tokio::time::sleep_until(started + spacing).await;
            }
        }
    }

    fn record_error(&self, e: &str) {
        if let Ok(mut last) = self.health.last_error.lock() {
            *last = Some(e.to_string());
        }
    }

    fn clear_error(&self) {
        if let Ok(mut last) = self.health.last_error.lock() {
            *last = None;
        }
    }
}

/// Returns true when cancelled.
async fn sleep_or_cancel(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// All projections of a process: runs them, reports their progress to
/// waiting commands and their health to `/readyz`.
#[derive(Clone)]
pub struct Projections {
    entries: Arc<Vec<Entry>>,
    pool: PgPool,
}

struct Entry {
    name: String,
    aggregate_type: &'static str,
    progress: watch::Receiver<LogPosition>,
    health: Arc<Health>,
}

impl fmt::Debug for Projections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &e.name))
            .finish()
    }
}

impl Projections {
    /// Builds runners for `projections`; start them with the returned
    /// runners' `run`.
    pub fn new(
        projections: Vec<Arc<dyn Projection>>,
        pool: &PgPool,
        wakeups: &LogWakeups,
    ) -> (Self, Vec<ProjectionRunner>) {
        let mut entries = Vec::new();
        let mut runners = Vec::new();
        for projection in projections {
            let aggregate_type = projection.aggregate_type();

            let name = projection.name();
            let (tx, rx) = watch::channel(LogPosition::default());
            let health = Arc::new(Health::default());
            entries.push(Entry {
                name: name.clone(),
                aggregate_type: projection.aggregate_type(),
                progress: rx,
                health: health.clone(),
            });
            runners.push(ProjectionRunner {
                lock_key: lock_key(&name),
                name,
                projection,
                pool: pool.clone(),
                wakeup: wakeups.of(aggregate_type),
                progress: tx,
                health,
                written: Mutex::new(None),
                seen: Mutex::new(LogPosition::default()),
                stopping: AtomicBool::new(false),
            });
        }
        (
            Self {
                entries: Arc::new(entries),
                pool: pool.clone(),
            },
            runners,
        )
    }

    /// `Ok` when every projection has caught up since start and none is
    /// failing; otherwise the reasons.
    ///
    /// # Errors
    /// The names of lagging or failing projections.
    pub fn readiness(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for e in self.entries.iter() {
            if let Some(err) = e.health.last_error.lock().ok().and_then(|g| g.clone()) {
                problems.push(format!("projection '{}' is failing: {err}", e.name));
            } else if !e.health.caught_up.load(Ordering::Relaxed) {
                problems.push(format!("projection '{}' is still catching up", e.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Follows one projection's position (by name).
    pub fn progress(&self, name: &str) -> Option<watch::Receiver<LogPosition>> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.progress.clone())
    }

    /// Each projection's name and the aggregate type it follows.
    pub fn kinds(&self) -> Vec<(String, &'static str)> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), e.aggregate_type))
            .collect()
    }

    /// Each projection's checkpoint as this process knows it.
    pub fn positions(&self) -> HashMap<String, LogPosition> {
        self.entries
            .iter()
            .map(|e| (e.name.clone(), *e.progress.borrow()))
            .collect()
    }
}

#[async_trait]
impl ProjectionWaiter for Projections {
    async fn wait_for(
        &self,
        aggregate_type: &str,
        position: LogPosition,
        timeout: Duration,
    ) -> bool {
        let waits = self
            .entries
            .iter()
            .filter(|e| e.aggregate_type == aggregate_type)
            .map(|e| {
                let mut rx = e.progress.clone();
                async move {
                    if *rx.borrow() >= position {
                        return true;
                    }
                    let _waiting = Waiting::start(&e.health);
                    rx.wait_for(|p| *p >= position).await.is_ok()
                }
            });
        let all = futures::future::join_all(waits);
        matches!(tokio::time::timeout(timeout, all).await, Ok(results) if results.iter().all(|ok| *ok))
    }

    async fn wait_caught_up(&self, aggregate_type: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        match super::log_reader::committed_head(&self.pool, aggregate_type).await {
            Ok(Some(head)) => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.wait_for(aggregate_type, head, left).await
            }
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log head failed");
                false
            }
        }
    }
}

/// The delivery read models (`deliveries_view`, `delivery_attempts`,
/// `subscription_health`) and the due queue, maintained together as the
/// `deliveries` projection. `suffix` names fresh tables for a rebuild.
pub fn deliveries_projection(suffix: &str, due: Wakeup) -> deliveries::DeliveriesProjection {
    let queue = format!("{}{suffix}", queue::TABLE);
    deliveries::DeliveriesProjection::new(suffix)
        .with_queue(queue::QueueProjection::new(queue, due))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_request_is_counted_while_it_waits_and_hurries_the_gathering() {
        let health = Health::default();
        {
            let _first = Waiting::start(&health);
            let _second = Waiting::start(&health);
            assert_eq!(health.waiters.load(Ordering::SeqCst), 2);
        }
        assert_eq!(health.waiters.load(Ordering::SeqCst), 0);
        // A waiter's arrival wakes the runner's gathering (which then looks
        // at `waiters` again).
        let hurried = tokio::time::timeout(Duration::from_secs(5), health.hurry.notified());
        assert!(hurried.await.is_ok());
    }
}
