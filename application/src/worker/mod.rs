//! The delivery process manager: leases due deliveries, makes the signed
//! HTTP attempts with bounded concurrency, and reports each outcome back to
//! the Delivery aggregate (in batches). No transaction is held across an
//! HTTP call; a crash after an attempt and before its outcome is recorded
//! leaves the lease to expire, and the attempt is made again (at least once,
//! with a stable `webhook-id` for receivers to deduplicate).

mod bodies;
mod fairness;
mod prepare;
mod recorder;

pub use fairness::{Admission, Fairness, Share};
pub use prepare::{request_for, unseal_secret, Prepared};
pub use recorder::{Outcome, OutcomeRecorder};

use crate::ports::{
    DeliveryFeed, DueDelivery, DueQueue, FlowControl, MessageBodies, Reservation, SpanTicket,
    SubscriptionDirectory, WebhookSender,
};
use crate::shared::Shared;
use bodies::Bodies;
use chrono::{DateTime, Utc};
use hookline_domain::subscription::{RateLimit, SubscriptionStatus};
use hookline_domain::{DeliveryId, SubscriptionId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub worker_id: String,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// How long a claimed delivery stays leased (longer than an attempt).
    pub lease: Duration,
    /// Most deliveries claimed per query.
    pub claim_batch: u32,
    /// Fallback poll when no wake-up arrives.
    pub poll_interval: Duration,
    pub user_agent: String,
}

/// What a worker works with.
pub struct WorkerPorts {
    pub queue: Arc<dyn DueQueue>,
    /// New deliveries straight from the log (first attempts).
    pub feed: Arc<dyn DeliveryFeed>,
    pub bodies: Arc<dyn MessageBodies>,
    pub sender: Arc<dyn WebhookSender>,
    pub directory: Arc<dyn SubscriptionDirectory>,
    pub recorder: Arc<OutcomeRecorder>,
    pub flow: Arc<dyn FlowControl>,
}

impl fmt::Debug for WorkerPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPorts").finish_non_exhaustive()
    }
}

pub struct Worker {
    shared: Shared,
    queue: Arc<dyn DueQueue>,
    feed: Arc<dyn DeliveryFeed>,
    /// Spans of the log whose deliveries are all done, released at the
    /// next take.
    finished: Arc<Mutex<Vec<i64>>>,
    /// Claim rounds so far: the queue and the log take turns going first.
    rounds: AtomicU64,
    bodies: Bodies,
    sender: Arc<dyn WebhookSender>,
    directory: Arc<dyn SubscriptionDirectory>,
    recorder: Arc<OutcomeRecorder>,
    flow: Arc<dyn FlowControl>,
    settings: WorkerSettings,
    prepared: Mutex<HashMap<SubscriptionId, Arc<Prepared>>>,
    fairness: Fairness,
}

/// A rate-limited subscription's attempts are paced at most this far ahead
/// per claim round, and no slot is reserved while its reserved slots reach
/// this far already (a paced attempt holds a worker slot while it waits for
/// its own); the rest of its claimed deliveries go back to the queue until
/// their turn.
const PACING_HORIZON: Duration = Duration::from_secs(1);
/// The shortest wait of a delivery held back because its subscription's
/// slots are all reserved (it is claimed again after it).
const PACING_RECHECK: Duration = Duration::from_millis(50);
/// Deliveries of an open circuit claimed just before their parking took
/// effect wait at least this long.
const CIRCUIT_HOLD_MIN: Duration = Duration::from_secs(1);

/// Deliveries claimed in one round, sorted by what they may do now.
struct Sorted {
    /// May go now, or at the given time (a rate-limit slot).
    ready: Vec<(DueDelivery, Option<DateTime<Utc>>)>,
    /// Go back to the queue for the given while.
    held: Vec<(DeliveryId, Duration)>,
    /// Behind an open circuit: parked until the given time (its next
    /// probe), and released with the circuit.
    parked: HashMap<DateTime<Utc>, Vec<DeliveryId>>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(shared: Shared, ports: WorkerPorts, settings: WorkerSettings) -> Self {
        Self {
            shared,
            queue: ports.queue,
            feed: ports.feed,
            finished: Arc::default(),
            rounds: AtomicU64::new(0),
            bodies: Bodies::new(ports.bodies),
            sender: ports.sender,
            directory: ports.directory,
            recorder: ports.recorder,
            flow: ports.flow,
            fairness: Fairness::new(settings.concurrency.max(1)),
            settings,
            prepared: Mutex::new(HashMap::new()),
        }
    }

    /// Claims and attempts deliveries until `shutdown`; then stops claiming,
    /// lets attempts in flight finish and records their outcomes.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, mut wake: watch::Receiver<u64>) {
        let concurrency = self.settings.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (tx, rx) = mpsc::channel::<Outcome>(concurrency * 2);
        let recorder = tokio::spawn(self.recorder.clone().run(rx));
        tracing::info!(worker = %self.settings.worker_id, concurrency, "delivery worker started");
        loop {
            wake.borrow_and_update();
            // Wait for a free slot before claiming anything.
            let first = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let wait = match self.round(first, &permits, &tx).await {
                Round::Full => continue,
                Round::Busy => self.settings.poll_interval,
                // Attempts in flight wake us through the projection when
                // their retries are due; only an idle worker asks when the
                // next delivery falls due.
                Round::Idle => match self.queue.next_due_in().await {
                    Ok(Some(d)) => d.min(self.settings.poll_interval),
                    _ => self.settings.poll_interval,
                },
                Round::Failed => Duration::from_secs(1),
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = wake.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        // Let attempts in flight finish (bounded by the lease).
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(self.settings.lease, permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("attempts still in flight at shutdown; their leases will expire");
        }
        drop(tx);
        drop(recorder.await);
        let finished = self.take_finished();
        if !finished.is_empty() {
            if let Err(e) = self.feed.release(&finished).await {
                tracing::warn!(error = %e, "could not release finished spans of the log; they expire");
            }
        }
        tracing::info!("delivery worker stopped");
    }

    /// Claims as many due deliveries as there are free slots, starts the
    /// attempts its fairness shares admit, and puts the others back.
    async fn round(
        self: &Arc<Self>,
        first: OwnedSemaphorePermit,
        permits: &Arc<Semaphore>,
        tx: &mpsc::Sender<Outcome>,
    ) -> Round {
        let free = permits.available_permits() + 1;
        let limit = u32::try_from(free)
            .unwrap_or(u32::MAX)
            .min(self.settings.claim_batch);
        let Some(mut claimed) = self.claim(limit).await else {
            return Round::Failed;
        };
        if let Err(e) = self.bodies.fill(&mut claimed).await {
            // The deliveries wait: their leases expire and they are
            // claimed again.
            tracing::error!(error = %e, "reading the bodies of claimed deliveries failed");
            fail_spans(&claimed);
            return Round::Failed;
        }
        let round = if claimed.is_empty() {
            Round::Idle
        } else if claimed.len() as u32 >= limit {
            Round::Full
        } else {
            Round::Busy
        };
        // First attempts taken from the log that do not go now are put on
        // the queue (their span is done with them once they are there).
        let from_log: HashMap<DeliveryId, DueDelivery> = claimed
            .iter()
            .filter(|d| d.span.is_some())
            .map(|d| (d.delivery_id, d.clone()))
            .collect();
        let Sorted {
            ready,
            held: mut deferred,
            parked,
        } = self.sort(claimed).await;
        if !from_log.is_empty() {
            let now = self.shared.clock.now();
            let mut waits: Vec<(DeliveryId, Duration)> = Vec::new();
            for (until, ids) in &parked {
                let wait = (*until - now).to_std().unwrap_or_default();
                waits.extend(ids.iter().map(|id| (*id, wait)));
            }
            self.hand_over(&from_log, waits).await;
        }
        for (until, ids) in parked {
            if let Err(e) = self.flow.hold(&self.settings.worker_id, &ids, until).await {
                // Their leases expire instead; they are held again then.
                tracing::warn!(error = %e, "could not park deliveries behind an open circuit");
            }
        }
        let mut first = Some(first);
        let mut ready = ready.into_iter();
        while let Some((due, not_before)) = ready.next() {
            let share = self.share_of(&due).await;
            let risky = match self.fairness.admit(&share, Instant::now()) {
                Admission::Defer(wait) => {
                    deferred.push((due.delivery_id, wait));
                    continue;
                }
                Admission::Start { risky } => risky,
            };
            let permit = match first.take() {
                Some(p) => p,
                None => match permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => {
                        self.fairness
                            .release(&share, risky, Duration::ZERO, Instant::now());
                        let rest: Vec<DueDelivery> = std::iter::once(due)
                            .chain(ready.by_ref().map(|(d, _)| d))
                            .collect();
                        fail_spans(&rest);
                        break;
                    }
                },
            };
            self.dispatch(due, not_before, (share, risky), permit, tx.clone());
        }
        if !from_log.is_empty() {
            // Queued already with their wait.
            self.hand_over(&from_log, deferred.clone()).await;
            deferred.retain(|(id, _)| !from_log.contains_key(id));
        }
        drop(from_log);
        if !deferred.is_empty() {
            tracing::debug!(
                deferred = deferred.len(),
                "deliveries over a share of the worker, a rate limit or behind an open circuit wait"
            );
            if let Err(e) = self.queue.defer(&self.settings.worker_id, &deferred).await {
                // Their leases expire instead; they are claimed again then.
                tracing::warn!(error = %e, "could not put deferred deliveries back");
            }
        }
        round
    }

    /// Up to `limit` deliveries: due ones from the queue (retries, manual
    /// retries, deferred) and new ones straight from the log, the two
    /// taking turns going first. `None` when neither could be read.
    async fn claim(&self, limit: u32) -> Option<Vec<DueDelivery>> {
        let log_first = self
            .rounds
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(2);
        let mut claimed = Vec::new();
        let mut failures = 0;
        for from_log in [log_first, !log_first] {
            let left = limit.saturating_sub(u32::try_from(claimed.len()).unwrap_or(u32::MAX));
            if left == 0 {
                break;
            }
            let got = if from_log {
                self.take_from_log(left).await
            } else {
                self.queue
                    .claim(&self.settings.worker_id, left, self.settings.lease)
                    .await
            };
            match got {
                Ok(mut got) => claimed.append(&mut got),
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, from_log, "claiming due deliveries failed");
                }
            }
        }
        (failures < 2).then_some(claimed)
    }

    /// New deliveries from the log, each holding its span's ticket.
    async fn take_from_log(&self, limit: u32) -> Result<Vec<DueDelivery>, crate::AppError> {
        let finished = self.take_finished();
        let taken = match self
            .feed
            .take(
                &self.settings.worker_id,
                limit,
                self.settings.lease,
                &finished,
            )
            .await
        {
            Ok(t) => t,
            Err(e) => {
                // Released at the next take.
                if let Ok(mut list) = self.finished.lock() {
                    list.extend(finished);
                }
                return Err(e);
            }
        };
        let Some(span) = taken.span else {
            return Ok(taken.deliveries);
        };
        let ticket = Arc::new(SpanTicket::new(span, self.finished.clone()));
        Ok(taken
            .deliveries
            .into_iter()
            .map(|mut d| {
                d.span = Some(ticket.clone());
                d
            })
            .collect())
    }

    /// Puts those of `waits` taken from the log on the queue (leased to
    /// this worker for their wait), so their span is done with them.
    async fn hand_over(
        &self,
        from_log: &HashMap<DeliveryId, DueDelivery>,
        waits: Vec<(DeliveryId, Duration)>,
    ) {
        let handed: Vec<(DueDelivery, Duration)> = waits
            .into_iter()
            .filter_map(|(id, wait)| from_log.get(&id).map(|d| (d.clone(), wait)))
            .collect();
        if handed.is_empty() {
            return;
        }
        if let Err(e) = self
            .queue
            .hand_over(&self.settings.worker_id, &handed)
            .await
        {
            tracing::warn!(error = %e, "could not put first attempts that wait on the queue; their span expires");
            for (d, _) in &handed {
                if let Some(span) = &d.span {
                    span.fail();
                }
            }
        }
    }

    fn take_finished(&self) -> Vec<i64> {
        self.finished
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }

    /// Holds back the deliveries of open circuits (all but the probe) and
    /// paces rate-limited subscriptions: slots are reserved in one query per
    /// round for all of them, shared with every other worker. Deliveries of
    /// subscriptions with neither cost nothing here.
    async fn sort(&self, claimed: Vec<DueDelivery>) -> Sorted {
        let now = self.shared.clock.now();
        let mut sorted = Sorted {
            ready: Vec::with_capacity(claimed.len()),
            held: Vec::new(),
            parked: HashMap::new(),
        };
        let mut limited: HashMap<SubscriptionId, (RateLimit, Vec<DueDelivery>)> = HashMap::new();
        for due in claimed {
            let prepared = self.prepared_for(due.subscription_id).await.ok().flatten();
            // Only an active subscription's deliveries wait for its circuit
            // or its rate limit: a disabled one's are skipped and a deleted
            // one's abandoned right away (by the attempt path), not parked
            // and claimed again and again.
            if let Some(p) = prepared
                .as_ref()
                .filter(|p| p.status == SubscriptionStatus::Active)
            {
                if let Some((probe, next_probe_at)) = p.circuit {
                    // A probe goes once per interval: the released one
                    // retried at (or after) the next probe time is no
                    // longer it (the controller releases the next).
                    if probe != Some(due.delivery_id) || now >= next_probe_at {
                        let min = chrono::Duration::from_std(CIRCUIT_HOLD_MIN).unwrap_or_default();
                        sorted
                            .parked
                            .entry(next_probe_at.max(now + min))
                            .or_default()
                            .push(due.delivery_id);
                        continue;
                    }
                }
                if let Some(limit) = p.rate_limit {
                    // A paced delivery waits on the queue for its slot
                    // (where it counts in its subscription's backlog), not
                    // in a span of the log.
                    if due.span.is_some() {
                        sorted.held.push((due.delivery_id, Duration::ZERO));
                        continue;
                    }
                    limited
                        .entry(due.subscription_id)
                        .or_insert_with(|| (limit, Vec::new()))
                        .1
                        .push(due);
                    continue;
                }
            }
            sorted.ready.push((due, None));
        }
        if limited.is_empty() {
            return sorted;
        }
        let wants: Vec<(SubscriptionId, u32, Duration)> = limited
            .iter()
            .map(|(sub, (limit, dues))| {
                let per_round = (f64::from(limit.per_second()) * PACING_HORIZON.as_secs_f64())
                    .ceil()
                    .max(1.0);
                let n = dues.len().min(per_round as usize);
                (*sub, u32::try_from(n).unwrap_or(u32::MAX), limit.spacing())
            })
            .collect();
        let starts = match self.flow.reserve(&wants, PACING_HORIZON).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not reserve rate-limit slots; the deliveries wait");
                HashMap::new()
            }
        };
        for (sub, n, spacing) in wants {
            let Some((_, dues)) = limited.remove(&sub) else {
                continue;
            };
            let reservation = starts.get(&sub).copied();
            for (i, due) in dues.into_iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                match reservation {
                    Some(Reservation::From(start)) if i < n => {
                        let offset = chrono::Duration::from_std(spacing * i).unwrap_or_default();
                        sorted.ready.push((due, Some(start + offset)));
                    }
                    // Its turn comes after the slots just reserved.
                    Some(Reservation::From(start)) => {
                        let ahead = (start - now).to_std().unwrap_or_default();
                        sorted.held.push((due.delivery_id, ahead + spacing * i));
                    }
                    // The slots reserved before reach past the horizon: it
                    // waits until they come within it, in its turn.
                    Some(Reservation::Busy(until)) => {
                        let ahead = (until - now)
                            .to_std()
                            .unwrap_or_default()
                            .saturating_sub(PACING_HORIZON)
                            .max(PACING_RECHECK);
                        sorted.held.push((due.delivery_id, ahead + spacing * i));
                    }
                    None => sorted.held.push((due.delivery_id, CIRCUIT_HOLD_MIN)),
                }
            }
        }
        sorted
    }

    /// Whom a delivery's attempt counts against.
    async fn share_of(&self, due: &DueDelivery) -> Share {
        let host = match self.prepared_for(due.subscription_id).await {
            Ok(Some(p)) => Some(p.destination.clone()),
            _ => None,
        };
        Share {
            tenant: due.tenant_id,
            host,
            subscription: due.subscription_id,
        }
    }

    /// Makes one attempt in the background, holding `permit` (and its
    /// fairness share) until done.
    fn dispatch(
        self: &Arc<Self>,
        due: DueDelivery,
        not_before: Option<DateTime<Utc>>,
        (share, risky): (Share, bool),
        permit: OwnedSemaphorePermit,
        tx: mpsc::Sender<Outcome>,
    ) {
        let span = tracing::info_span!(
            "attempt",
            request_id = due.request_id.as_deref().unwrap_or("-"),
            tenant_id = %due.tenant_id,
            delivery_id = %due.delivery_id,
            attempt = due.attempt,
        );
        let this = self.clone();
        tokio::spawn(
            async move {
                // A rate-limit slot: wait for it (at most about the pacing
                // horizon, holding the slot of this worker meanwhile).
                if let Some(at) = not_before {
                    let wait = (at - this.shared.clock.now()).to_std().unwrap_or_default();
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                let started = Instant::now();
                let span = due.span.clone();
                let outcome = this.attempt(due).await;
                this.fairness
                    .release(&share, risky, started.elapsed(), Instant::now());
                match outcome {
                    Some(outcome) => {
                        if let Err(unsent) = tx.send(outcome).await {
                            if let Some(span) = &unsent.0.due().span {
                                span.fail();
                            }
                        }
                    }
                    // Not attempted: its lease (or span) expires and it is
                    // taken again.
                    None => {
                        if let Some(span) = &span {
                            span.fail();
                        }
                    }
                }
                drop(span);
                drop(permit);
            }
            .instrument(span),
        );
    }

    /// One attempt, or `None` when it must wait (the lease then expires and
    /// it is tried again).
    async fn attempt(&self, due: DueDelivery) -> Option<Outcome> {
        let prepared = match self.prepared_for(due.subscription_id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Some(Outcome::Abandoned {
                    due,
                    reason: "the subscription no longer exists".into(),
                })
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot prepare the subscription's signing keys; the delivery waits");
                return None;
            }
        };
        match prepared.status {
            SubscriptionStatus::Active => {}
            SubscriptionStatus::Disabled => {
                return Some(Outcome::Skipped {
                    due,
                    reason: "the subscription is disabled".into(),
                })
            }
            SubscriptionStatus::Deleted => {
                return Some(Outcome::Abandoned {
                    due,
                    reason: "the subscription was deleted".into(),
                })
            }
        }
        let now = self.shared.clock.now();
        let Some(envelope) = due.body.clone() else {
            tracing::error!(event_id = %due.event_id, "the delivery's message has no body; the delivery waits");
            return None;
        };
        let body = self
            .bodies
            .formatted(due.event_id, &envelope, prepared.payload_format);
        let request = request_for(&due, &body, &prepared, &self.settings.user_agent, now);
        let url = request.url.clone();
        let result = self.sender.send(request).await;
        match &result.outcome {
            crate::ports::SendOutcome::Response { status, .. } if (200..300).contains(status) => {
                tracing::debug!(
                    status,
                    duration_ms = result.duration_ms,
                    "attempt delivered"
                );
            }
            crate::ports::SendOutcome::Response { status, .. } => {
                tracing::info!(
                    status,
                    duration_ms = result.duration_ms,
                    "attempt failed: the receiver answered {status}"
                );
            }
            crate::ports::SendOutcome::Failed { kind, message } => {
                tracing::info!(error_kind = %kind, duration_ms = result.duration_ms, "attempt failed: {message}");
            }
        }

        // An open circuit's probe that fails waits for the next probe.
        let hold_until = prepared.circuit.and_then(|(probe, next_probe_at)| {
            (probe == Some(due.delivery_id)).then_some(next_probe_at)
        });
        Some(Outcome::Attempted {
            due,
            attempt_id: self.shared.entropy.new_id(),
            url,
            result,
            hold_until,
        })
    }

    /// The subscription's prepared target (unsealed keys and headers),
    /// rebuilt when the subscription changed.
    async fn prepared_for(
        &self,
        id: SubscriptionId,
    ) -> Result<Option<Arc<Prepared>>, crate::AppError> {
        let Some(state) = self.directory.get(id).await? else {
            return Ok(None);
        };
        if let Some(hit) = self.prepared.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if hit.updated_at == state.updated_at && hit.status == state.status {
                return Ok(Some(hit));
            }
        }
        let prepared = Arc::new(Prepared::build(&state, self.shared.cipher.as_ref())?);
        if let Ok(mut map) = self.prepared.lock() {
            map.insert(id, prepared.clone());
        }
        Ok(Some(prepared))
    }
}

/// Leaves the spans of these deliveries (taken from the log, not
/// attempted) to expire, so that they are taken again.
fn fail_spans(deliveries: &[DueDelivery]) {
    for span in deliveries.iter().filter_map(|d| d.span.as_ref()) {
        span.fail();
    }
}

/// How a claim round went, and so how long to wait before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// As many claimed as asked for: claim again at once.
    Full,
    /// Fewer: wait for a wake-up or the poll interval.
    Busy,
    /// None due: wait until the next one falls due.
    Idle,
    /// The queue could not be read: back off.
    Failed,
}

#[cfg(test)]
mod tests;
