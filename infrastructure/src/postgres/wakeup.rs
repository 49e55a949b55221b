//! Waking catch-up consumers: an in-process counter bumped after local
//! commits, and a LISTEN on `hookline_events` for commits made by other
//! processes. Consumers poll as well, because notifications are not durable.
//!
//! Appends are announced on the channel after they commit, by one task per
//! process ([`LogWakeups::spawn_announcer`]), never by a `NOTIFY` inside the
//! appending transaction: Postgres holds a cluster-wide lock from a
//! notifying transaction's pre-commit until its commit is on disk, so
//! appends that notified committed one at a time, with no group commit
//! (ADR 0020).

use super::pool::Database;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "hookline_events";

/// At most one announcement per this long while appends keep coming: other
/// processes hear of a busy log this much later at worst, and an
/// announcement (a transaction of its own) is not paid per append.
const ANNOUNCE_PACE: Duration = Duration::from_millis(2);
/// After a failed announcement, the announcer tries again this much later.
const ANNOUNCE_RETRY: Duration = Duration::from_millis(500);

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
/// woken by another's. Notifications carry the type as their payload, then
/// a space and the announcing process's origin (its own are not heard
/// again: its consumers were woken when it committed).
#[derive(Debug, Clone)]
pub struct LogWakeups {
    by_type: Arc<std::collections::HashMap<&'static str, Wakeup>>,
    announcer: Arc<Announcer>,
}

/// Types appended to and not yet announced, while the announcer runs.
#[derive(Debug, Default)]
struct Announcer {
    origin: String,
    state: Mutex<Announcing>,
    more: Notify,
}

#[derive(Debug, Default)]
struct Announcing {
    running: bool,
    /// Known types by their key in `by_type`; `""` for any other (heard as
    /// "wake every consumer").
    pending: BTreeSet<&'static str>,
}

impl Announcer {
    /// The state, even after a panic elsewhere left its lock poisoned (it
    /// is a set of names and a flag: always consistent).
    fn state(&self) -> std::sync::MutexGuard<'_, Announcing> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clears `running` when the announcer's task ends in any way (stopped,
/// or aborted at the end of the drain time): appends then announce
/// themselves instead of waiting for a task that is gone.
struct Stopped(Arc<Announcer>);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.state().running = false;
    }
}

impl LogWakeups {
    pub fn new(types: &[&'static str]) -> Self {
        Self {
            by_type: Arc::new(types.iter().map(|t| (*t, Wakeup::new())).collect()),
            announcer: Arc::new(Announcer {
                origin: uuid::Uuid::new_v4().simple().to_string(),
                ..Announcer::default()
            }),
        }
    }

    /// Tells other processes that `types` were appended to (after the
    /// commit): handed to the announcer task when it runs, otherwise sent
    /// now on `pool` (a one-shot command, migrations). A failure is only
    /// logged: the append is committed, and listeners poll as well.
    pub async fn announce(&self, pool: &PgPool, types: &[&str]) {
        if types.is_empty() {
            return;
        }
        {
            let mut state = self.announcer.state();
            if state.running {
                let was_empty = state.pending.is_empty();
                for t in types {
                    let key = self.by_type.get_key_value(*t).map_or("", |(k, _)| *k);
                    state.pending.insert(key);
                }
                // A wake-up is on its way already when something was
                // pending.
                if was_empty {
                    self.announcer.more.notify_one();
                }
                return;
            }
        }
        if let Err(e) = send_announcement(pool, types, &self.announcer.origin).await {
            tracing::debug!(error = %e, "could not announce appends to other processes (they poll)");
        }
    }

    /// Runs the announcer until `shutdown`: one transaction announces
    /// every type appended to since the last, at most one per
    /// [`ANNOUNCE_PACE`]. What is pending when it stops is still sent, and
    /// appends after that announce themselves. A failed announcement is
    /// kept and sent again.
    pub fn spawn_announcer(
        &self,
        db: &Database,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let announcer = self.announcer.clone();
        announcer.state().running = true;
        let pool = db.background.clone();
        tokio::spawn(async move {
            let _stopped = Stopped(announcer.clone());
            let mut failing = false;
            loop {
                let stopping = tokio::select! {
                    () = shutdown.cancelled() => true,
                    () = announcer.more.notified() => false,
                };
                let types: Vec<&'static str> = {
                    let mut state = announcer.state();
                    if stopping {
                        state.running = false;
                    }
                    std::mem::take(&mut state.pending).into_iter().collect()
                };
                let mut pause = ANNOUNCE_PACE;
                if !types.is_empty() {
                    match send_announcement(&pool, &types, &announcer.origin).await {
                        Ok(()) => failing = false,
                        Err(e) => {
                            if !failing {
                                tracing::warn!(error = %e, "could not announce appends to other processes; they poll meanwhile, and this process tries again");
                            }
                            failing = true;
                            if !stopping {
                                announcer.state().pending.extend(types);
                                announcer.more.notify_one();
                                pause = ANNOUNCE_RETRY;
                            }
                        }
                    }
                }
                if stopping {
                    return;
                }
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(pause) => {}
                }
            }
        })
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
                        let (types, origin) =
                            n.payload().rsplit_once(' ').unwrap_or((n.payload(), ""));
                        if origin != wakeups.announcer.origin {
                            wakeups.bump(types);
                        }
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

/// One `NOTIFY` per type, in a transaction of its own that does not wait
/// for its commit to reach the disk (a notification is not durable
/// anyway): the lock `NOTIFY` takes until the end of the commit is held
/// for moments.
async fn send_announcement(pool: &PgPool, types: &[&str], origin: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, t || ' ' || $2)
           FROM unnest($3::text[]) AS t",
    )
    .bind(CHANNEL)
    .bind(origin)
    .bind(types)
    .execute(pool)
    .await
    .map(|_| ())
}
