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
