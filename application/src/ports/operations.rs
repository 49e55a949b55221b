//! Ports for operating Hookline: readiness, the log as auditors export and
//! verify it, and rebuilding read models.

use crate::error::AppError;
use crate::ports::{LogPosition, StoredEvent};
use async_trait::async_trait;
use futures::stream::BoxStream;
use hookline_domain::TenantId;
use std::collections::BTreeMap;
use std::time::Duration;

/// What `/readyz` checks.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// Whether the database answers within `timeout`.
    ///
    /// # Errors
    /// Why it does not, in words.
    async fn database(&self, timeout: Duration) -> Result<(), String>;

    /// Each projection's position when all of them have caught up since
    /// start and none is failing.
    ///
    /// # Errors
    /// The lagging or failing projections, in words.
    fn projections(&self) -> Result<BTreeMap<String, i64>, String>;
}

/// One consistent snapshot of the log (a repeatable-read transaction), for
/// exports that must not mix two moments.
#[async_trait]
pub trait LogSnapshot: Send {
    /// Where the event at `position` stands in commit order (`Some(start)`
    /// for 0); `None` when there is no such event.
    ///
    /// # Errors
    /// Storage errors.
    async fn position_of(&mut self, position: i64) -> Result<Option<LogPosition>, AppError>;

    /// The next events after `after` in commit order.
    ///
    /// # Errors
    /// Storage errors.
    async fn page(
        &mut self,
        tenant: Option<TenantId>,
        after: LogPosition,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError>;

    /// Ends the snapshot.
    ///
    /// # Errors
    /// Storage errors.
    async fn close(self: Box<Self>) -> Result<(), AppError>;
}

/// The whole log, read by auditors' tools.
#[async_trait]
pub trait LogArchive: Send + Sync {
    /// Opens a snapshot on a connection of its own (if it drops, the export
    /// fails instead of carrying on with another).
    ///
    /// # Errors
    /// Storage errors.
    async fn snapshot(&self) -> Result<Box<dyn LogSnapshot>, AppError>;

    /// Every event (or one tenant's) ordered by aggregate and sequence.
    fn by_aggregate(
        &self,
        tenant: Option<TenantId>,
    ) -> BoxStream<'static, Result<Verifiable, AppError>>;

    /// Stored events (or one tenant's) that no reader in commit order can
    /// see: their transaction id is beyond every transaction that has run,
    /// which only a changed `tx_id` makes. The first 100, as (aggregate
    /// type, aggregate id, sequence, position).
    ///
    /// # Errors
    /// Storage errors.
    async fn unseen(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<(String, String, i64, i64)>, AppError>;
}

/// An event as the chain verifier reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verifiable {
    pub event: StoredEvent,
    /// For a delivery whose message's events hold its first events: the
    /// link its first stored event follows. The delivery's chain continues
    /// from it.
    pub begun_by: Option<Begun>,
}

/// The link a delivery's first stored event follows when its message's
/// events hold its first ones, and how many they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begun {
    pub link: String,
    /// 1: the message's event lists it (ADR 0019), its first stored event
    /// is its sequence 2; 2: the message's `DeliveriesAttempted` holds its
    /// first outcome too (ADR 0023), its first stored event is its
    /// sequence 3.
    pub held: i64,
}

/// What rebuilding one read model found.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    pub projection: String,
    pub events: u64,
    pub elapsed: Duration,
    /// With `check`: how the rebuilt tables differ from the live ones.
    pub differences: Vec<String>,
    /// The live projection's checkpoint the rebuild caught up to (what a
    /// check compared): a stuck projection matches only up to there.
    pub checkpoint: LogPosition,
}

impl RebuildReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Rebuilds read models from the log.
#[async_trait]
pub trait ReadModelRebuilder: Send + Sync {
    /// The read models that can be rebuilt, by name.
    fn names(&self) -> Vec<&'static str>;

    /// The other read models a rebuild of `name` reads from their live
    /// tables (so that, rebuilt together, they are rebuilt before it).
    fn reads(&self, _name: &str) -> &'static [&'static str] {
        &[]
    }

    /// Rebuilds `name` from position 0 into fresh tables and swaps them in;
    /// with `check`, compares them with the live ones instead and changes
    /// nothing.
    ///
    /// # Errors
    /// An unknown name; storage errors.
    async fn rebuild(&self, name: &str, check: bool) -> Result<RebuildReport, AppError>;

    /// Read models whose rebuilds, run together, share their reads of the
    /// log (see [`Self::rebuild_together`]); none by default.
    fn read_together(&self) -> &'static [&'static str] {
        &[]
    }

    /// Rebuilds (or checks) `names`, which are [`Self::read_together`],
    /// reading the log once for all of them; a result each, in order. By
    /// default one after another.
    async fn rebuild_together(
        &self,
        names: &[&'static str],
        check: bool,
    ) -> Vec<Result<RebuildReport, AppError>> {
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            results.push(self.rebuild(name, check).await);
        }
        results
    }
}
