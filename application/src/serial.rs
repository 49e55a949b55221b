//! "Check, then write" serialised per scope: no duplicate subscription, a
//! tenant's limit of subscriptions, sources or event types. Within a process
//! a mutex; across processes sharing the database the [`WriteLocks`] port,
//! when set. Without it two requests (in two processes, or two tasks that
//! both passed the check before either wrote) could each find room for one
//! more and both write.

use crate::ports::{WriteLockGuard, WriteLocks};
use crate::AppError;
use std::sync::Arc;

#[derive(Default)]
pub struct SerialWrites {
    local: tokio::sync::Mutex<()>,
    shared: Option<Arc<dyn WriteLocks>>,
}

impl std::fmt::Debug for SerialWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialWrites")
            .field("across_processes", &self.shared.is_some())
            .finish()
    }
}

/// Held while a check and its write happen; dropping it lets the next in.
#[derive(Debug)]
pub struct SerialGuard<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    _shared: Option<WriteLockGuard>,
}

impl SerialWrites {
    /// Serialised across processes too, with `locks`.
    pub fn set_locks(&mut self, locks: Arc<dyn WriteLocks>) {
        self.shared = Some(locks);
    }

    /// Waits for the scope (e.g. `subscriptions:<tenant>`).
    ///
    /// # Errors
    /// The shared lock could not be taken (the database is unreachable).
    pub async fn hold(&self, scope: &str) -> Result<SerialGuard<'_>, AppError> {
        let local = self.local.lock().await;
        let shared = match &self.shared {
            Some(locks) => Some(locks.hold(scope).await?),
            None => None,
        };
        Ok(SerialGuard {
            _local: local,
            _shared: shared,
        })
    }
}
