//! Work on tenants' own schemas — compiling them, checking a document or an
//! example against one — runs on blocking threads, one piece per tenant at
//! a time. A schema a tenant wrote can cost seconds on a large document (a
//! `pattern` with a long repetition runs in time proportional to the
//! pattern's size times the string's length): on the request threads that
//! stalled every tenant's requests. A tenant whose work took long lately
//! (over 50 ms in the last minute) also waits for one of the slow lane's
//! places, one per core: however many tenants are slow, they hold at most
//! those cores, and tenants whose schemas are quick never wait for them.

use super::per_tenant::PerTenant;
use crate::error::AppError;
use hookline_domain::TenantId;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Pieces of schema work one tenant may run at once.
const PER_TENANT: usize = 1;
/// A piece of work longer than this puts its tenant in the slow lane…
const SLOW: Duration = Duration::from_millis(50);
/// …for this long after it.
const SLOW_FOR: Duration = Duration::from_secs(60);

type Marks = Arc<Mutex<HashMap<TenantId, Instant>>>;

pub(crate) struct SchemaWork {
    slow_lane: Arc<Semaphore>,
    tenants: PerTenant<Semaphore>,
    /// When each slow tenant's last slow piece ended.
    slow: Marks,
}

impl Default for SchemaWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self::with_lane(cores)
    }
}

impl SchemaWork {
    fn with_lane(places: usize) -> Self {
        Self {
            slow_lane: Arc::new(Semaphore::new(places.max(1))),
            tenants: PerTenant::default(),
            slow: Arc::default(),
        }
    }

    fn is_slow(&self, tenant: TenantId) -> bool {
        let Ok(mut marks) = self.slow.lock() else {
            return false;
        };
        marks.retain(|_, at| at.elapsed() < SLOW_FOR);
        marks.contains_key(&tenant)
    }

    /// Runs `work` for `tenant` on a blocking thread when its turn comes
    /// (and, for a slow tenant, a place in the slow lane). The turn is held
    /// until the work ends, even if the caller stops waiting (a request cut
    /// off by its timeout still holds it).
    ///
    /// # Errors
    /// `Internal` when the work panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        tenant: TenantId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let own = self.tenants.of(tenant, || Semaphore::new(PER_TENANT));
        let closed = |_| AppError::Internal("schema work: semaphore closed".into());
        let own_turn = own.clone().acquire_owned().await.map_err(closed)?;
        let lane = if self.is_slow(tenant) {
            Some(
                self.slow_lane
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(closed)?,
            )
        } else {
            None
        };
        let marks = self.slow.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _turns = (own_turn, lane);
            let started = Instant::now();
            let out = work();
            if started.elapsed() > SLOW {
                if let Ok(mut marks) = marks.lock() {
                    marks.insert(tenant, Instant::now());
                }
            }
            out
        })
        .await
        .map_err(|e| AppError::Internal(format!("schema work: {e}")));
        self.tenants.release(tenant, own);
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tenant_runs_one_piece_at_a_time() {
        let work = Arc::new(SchemaWork::default());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(7));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (work, running, most) = (work.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    work.run(tenant, move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(work.tenants.is_empty(), "forgotten once done");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_tenants_share_the_lane_and_quick_ones_never_wait_for_it() {
        use std::sync::atomic::AtomicBool;
        let work = Arc::new(SchemaWork::with_lane(1));
        let (slow, quick) = (
            TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            TenantId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let nap = || std::thread::sleep(SLOW + Duration::from_millis(10));
        work.run(slow, nap).await.unwrap();
        assert!(work.is_slow(slow) && !work.is_slow(quick));
        // The slow tenant holds the lane's one place until told to end.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let ended = Arc::new(AtomicBool::new(false));
        let holding = {
            let (work, ended) = (work.clone(), ended.clone());
            tokio::spawn(async move {
                work.run(slow, move || {
                    release_rx.recv().unwrap();
                    ended.store(true, Ordering::SeqCst);
                })
                .await
            })
        };
        hookline_wait(|| work.slow_lane.available_permits() == 0).await;
        // A quick tenant's work runs meanwhile.
        work.run(quick, || ()).await.unwrap();
        assert!(
            !ended.load(Ordering::SeqCst),
            "it did not wait for the lane"
        );
        release_tx.send(()).unwrap();
        holding.await.unwrap().unwrap();
    }

    /// Waits (yielding) until `ready`.
    async fn hookline_wait(ready: impl Fn() -> bool) {
        while !ready() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error() {
        let work = SchemaWork::default();
        let r: Result<(), _> = work
            .run(TenantId::from_uuid(uuid::Uuid::from_u128(7)), || {
                panic!("boom")
            })
            .await;
        assert!(matches!(r, Err(AppError::Internal(_))));
    }
}
