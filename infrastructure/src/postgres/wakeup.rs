//! Waking catch-up consumers: an in-process counter bumped after local
//! commits, and a LISTEN on `hookline_events` for commits made by other
//! processes. Consumers poll as well, because notifications are not durable.

use super::pool::Database;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "hookline_events";

#[derive(Debug, Clone)]
pub struct Wakeup {
    tx: Arc<watch::Sender<u64>>,
}

impl Default for Wakeup {
    fn default() -> Self {
        Self::new()
    }
}

impl Wakeup {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(0);
        Self { tx: Arc::new(tx) }
    }

    /// Something may have been appended to the log.
    pub fn bump(&self) {
        self.tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// Bumps on every notification on `channel` (from any process) until
    /// `shutdown`, reconnecting after errors.
    pub fn spawn_listener(
        &self,
        db: &Database,
        channel: &'static str,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let wakeup = self.clone();
        let pool = db.pool.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener.listen(channel).await?;
                    // Anything committed while we were not listening.
                    wakeup.bump();
                    loop {
                        listener.recv().await?;
                        wakeup.bump();
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = listener => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "event notification listener lost its connection; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    }
}

/// One wake-up per aggregate type, so a consumer of one type's events is not
/// woken by another's. Notifications carry the type as their payload.
#[derive(Debug, Clone)]
pub struct LogWakeups {
    by_type: Arc<std::collections::HashMap<&'static str, Wakeup>>,
}

impl LogWakeups {
    pub fn new(types: &[&'static str]) -> Self {
        Self {
            by_type: Arc::new(types.iter().map(|t| (*t, Wakeup::new())).collect()),
        }
    }

    /// The wake-up for `aggregate_type` (a detached one for unknown types).
    pub fn of(&self, aggregate_type: &str) -> Wakeup {
        self.by_type
            .get(aggregate_type)
            .cloned()
            .unwrap_or_default()
    }

    pub fn bump(&self, aggregate_type: &str) {
        match self.by_type.get(aggregate_type) {
            Some(w) => w.bump(),
            None => self.bump_all(),
        }
    }

    pub fn bump_all(&self) {
        for w in self.by_type.values() {
            w.bump();
        }
    }

    /// Listens on [`CHANNEL`] until `shutdown`; a notification wakes the
    /// consumers of the type it names (all of them when it names none).
    pub fn spawn_listener(
        &self,
        db: &Database,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let wakeups = self.clone();
        let pool = db.pool.clone();
        tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener.listen(CHANNEL).await?;
                    wakeups.bump_all();
                    loop {
                        let n = listener.recv().await?;
                        wakeups.bump(n.payload());
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), sqlx::Error>(())
                };
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    result = listener => {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "event notification listener lost its connection; reconnecting");
                        }
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        })
    }
}
