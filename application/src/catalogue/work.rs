//! Work on tenants' own schemas — compiling them, checking a document or an
//! example against one — runs on blocking threads, one piece per tenant at
//! a time and at most one per core in all. A schema a tenant wrote can cost
//! seconds on a large document (a `pattern` with a long repetition runs in
//! time proportional to the pattern's size times the string's length): on
//! the request threads that stalled every tenant's requests; here it costs
//! that tenant its own wait, and others at most the cores it may hold.

use crate::error::AppError;
use hookline_domain::TenantId;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Pieces of schema work one tenant may run at once.
const PER_TENANT: usize = 1;

pub(crate) struct SchemaWork {
    all: Arc<Semaphore>,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl Default for SchemaWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        Self {
            all: Arc::new(Semaphore::new(cores.max(2))),
            tenants: Mutex::new(HashMap::new()),
        }
    }
}

impl SchemaWork {
    fn of(&self, tenant: TenantId) -> Arc<Semaphore> {
        match self.tenants.lock() {
            Ok(mut map) => map
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(PER_TENANT)))
                .clone(),
            // A poisoned map: no per-tenant bound, the global one holds.
            Err(_) => Arc::new(Semaphore::new(PER_TENANT)),
        }
    }

    /// Runs `work` for `tenant` on a blocking thread when its turn comes.
    /// The turn is held until the work ends, even if the caller stops
    /// waiting (a request cut off by its timeout still holds it).
    ///
    /// # Errors
    /// `Internal` when the work panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        tenant: TenantId,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let own = self.of(tenant);
        let closed = |_| AppError::Internal("schema work: semaphore closed".into());
        let own_turn = own.clone().acquire_owned().await.map_err(closed)?;
        let turn = self.all.clone().acquire_owned().await.map_err(closed)?;
        let done = tokio::task::spawn_blocking(move || {
            let _turns = (own_turn, turn);
            work()
        })
        .await
        .map_err(|e| AppError::Internal(format!("schema work: {e}")));
        // Forget the tenant's semaphore once nobody holds or waits for it
        // (the map and `own` are the only references left).
        if let Ok(mut map) = self.tenants.lock() {
            if Arc::strong_count(&own) == 2 {
                map.remove(&tenant);
            }
        }
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
        assert!(
            work.tenants.lock().unwrap().is_empty(),
            "forgotten once done"
        );
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
