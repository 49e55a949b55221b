//! The delivery backlog: how far first attempts are behind the log, which
//! publishing checks before it appends (`DeliveryBacklog`). Over the bound
//! publishes wait and are refused; a tenant whose own share of the backlog
//! is small is still admitted up to twice the bound, so the tenant filling
//! it is the one pushed back.

use super::feed::CURSOR;
use super::log_reader::unavailable;
use super::row_yield::RowYield;
use async_trait::async_trait;
use hookline_application::ports::{Admitted, BacklogLevel};
use hookline_application::AppError;
use hookline_domain::TenantId;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most work (a message and each of its deliveries count one) first
/// attempts may be behind the log before publishing waits (5,000
/// deliveries of a 1:1 publish, a second or two of delivery on a small
/// machine).
pub const BACKLOG_BOUND: i64 = 10_000;
/// How old a reading of the backlog may be.
const BACKLOG_FRESH: Duration = Duration::from_millis(50);
/// Over the bound, a tenant with fewer than this part of the bound of its
/// own events behind the cursor is still admitted (up to twice the bound):
/// a tenant that fills the backlog is the one pushed back.
const TENANT_SHARE_DIVISOR: i64 = 10;
/// Tenants' readings kept at most (older ones are forgotten past this).
const TENANT_READINGS: usize = 1_024;

/// A tenant's work after the cursor named `$1` (`$2` the tenant, `$3` how
/// many rows at most): each row counts one, and a message's event that
/// lists its deliveries (ADR 0019) one more for each; then the rows read.
/// Read in commit order
/// from the cursor, through the tenant's commit-order index: without the
/// order, Postgres chose to scan the log from its start for a tenant that
/// wrote most of it (a time that grows with the log, every 50 ms for each
/// tenant publishing over the bound).
pub const TENANT_BEHIND: &str =
    "SELECT COALESCE(sum(1 + CASE WHEN event_version = '1.2' AND aggregate_type = 'Message'
                             THEN json_array_length(payload->'deliveries') ELSE 0 END), 0)::bigint,
            count(*)
       FROM (
        SELECT aggregate_type, event_version, payload FROM events
         WHERE metadata ->> 'tenant_id' = $2
           AND (tx_id, global_position) > (
               COALESCE((SELECT last_tx_id FROM projection_checkpoints WHERE name = $1), '0'::xid8),
               COALESCE((SELECT last_position FROM projection_checkpoints WHERE name = $1), 0))
         ORDER BY tx_id, global_position
         LIMIT $3) behind";

/// Publishes this process admitted and has not appended yet, and what it
/// appended since the last reading: the readings do not show them yet.
#[derive(Debug, Default)]
struct Unread {
    /// Weight of admitted publishes not appended yet, in all and by tenant.
    in_flight: i64,
    by_tenant: HashMap<TenantId, i64>,
    /// Weight appended since the reading began that is not counted in it.
    since_reading: i64,
    /// By tenant, weight appended lately (while commits keep coming, and
    /// for [`BACKLOG_FRESH`] after the last): a tenant's reading may be
    /// that old.
    lately: HashMap<TenantId, (Instant, i64)>,
}

impl Unread {
    fn lately(&self, tenant: TenantId) -> i64 {
        self.lately
            .get(&tenant)
            .filter(|(at, _)| at.elapsed() < BACKLOG_FRESH)
            .map_or(0, |(_, weight)| *weight)
    }
}

/// An admitted publish: in flight until dropped (appended or failed),
/// then counted as appended until the next reading.
struct Ticket {
    unread: Arc<Mutex<Unread>>,
    tenant: TenantId,
    weight: i64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut unread) = self.unread.lock() {
            unread.in_flight -= self.weight;
            unread.since_reading += self.weight;
            if let Some(mine) = unread.by_tenant.get_mut(&self.tenant) {
                *mine -= self.weight;
                if *mine <= 0 {
                    unread.by_tenant.remove(&self.tenant);
                }
            }
            let lately = unread.lately(self.tenant);
            if unread.lately.len() >= TENANT_READINGS {
                unread
                    .lately
                    .retain(|_, (at, _)| at.elapsed() < BACKLOG_FRESH);
            }
            if unread.lately.len() < TENANT_READINGS {
                unread
                    .lately
                    .insert(self.tenant, (Instant::now(), lately + self.weight));
            }
        }
    }
}

/// The distance between the log's head and the first-attempt cursor, read
/// at most every 50 ms and shared by every publish of the process
/// (`DeliveryBacklog`: publishing waits while it is over its bound), and,
/// once over it, each publishing tenant's own events behind the cursor.
/// Between readings, what the process admitted (in flight, then appended)
/// is added to them.
#[derive(Debug)]
pub struct PgBacklog {
    pool: PgPool,
    bound: i64,
    reading: tokio::sync::Mutex<(Option<Instant>, i64)>,
    tenants: Mutex<HashMap<TenantId, (Instant, i64)>>,
    unread: Arc<Mutex<Unread>>,
    work_per_message: Mutex<WorkPerMessage>,
    /// Work a row of a tenant's backlog held lately.
    tenant_rows: RowYield,
}

/// What this process's recent publishes weighed on average (their message
/// and their deliveries): the weight of a message behind the cursor.
#[derive(Debug, Clone, Copy)]
struct WorkPerMessage {
    work: f64,
    messages: f64,
}

impl WorkPerMessage {
    /// Each publish weighs this much less in the sums than the next (about
    /// the last hundred count).
    const DECAY: f64 = 0.99;

    fn add(&mut self, work: i64) {
        self.work = self.work * Self::DECAY + work as f64;
        self.messages = self.messages * Self::DECAY + 1.0;
    }

    /// `messages` as work (each at least 2: a message and a delivery).
    fn weigh(&self, messages: i64) -> i64 {
        let each = (self.work / self.messages.max(f64::MIN_POSITIVE)).max(2.0);
        (messages as f64 * each).round() as i64
    }
}

impl PgBacklog {
    pub fn new(pool: PgPool, bound: i64) -> Self {
        Self {
            pool,
            bound,
            reading: tokio::sync::Mutex::new((None, 0)),
            tenants: Mutex::new(HashMap::new()),
            unread: Arc::new(Mutex::new(Unread::default())),
            work_per_message: Mutex::new(WorkPerMessage {
                work: 2.0,
                messages: 1.0,
            }),
            tenant_rows: RowYield::new(),
        }
    }

    /// A tenant's share: under this many of its own events behind the
    /// cursor it is admitted over the bound.
    fn share(&self) -> i64 {
        (self.bound / TENANT_SHARE_DIVISOR).max(1)
    }

    /// The work after the cursor (a fresh enough reading).
    ///
    /// # Errors
    /// Database errors.
    pub async fn behind(&self) -> Result<i64, sqlx::Error> {
        let mut reading = self.reading.lock().await;
        self.read(&mut reading).await
    }

    /// The reading under its lock, read again when it is too old.
    async fn read(&self, reading: &mut (Option<Instant>, i64)) -> Result<i64, sqlx::Error> {
        if let (Some(at), behind) = *reading {
            if at.elapsed() < BACKLOG_FRESH {
                return Ok(behind);
            }
        }
        // What was appended before the query began is in its answer.
        let appended = self.unread.lock().map_or(0, |u| u.since_reading);
        // Log positions after the cursor, and for each message among them
        // what its deliveries weighed beyond its own row, as this process's
        // recent publishes did on average: a message's event lists all its
        // deliveries in one row (ADR 0019). Messages counted up to what can
        // matter.
        let row = sqlx::query(
            "SELECT GREATEST(COALESCE((SELECT max(global_position) FROM events), 0)
                   - COALESCE((SELECT last_position FROM projection_checkpoints WHERE name = $1), 0), 0)
                        AS positions,
                    (SELECT count(*) FROM (
                        SELECT 1 FROM events
                         WHERE (aggregate_type, tx_id, global_position) > ('Message',
                               COALESCE((SELECT last_tx_id FROM projection_checkpoints WHERE name = $1), '0'::xid8),
                               COALESCE((SELECT last_position FROM projection_checkpoints WHERE name = $1), 0))
                           AND (aggregate_type, tx_id, global_position)
                               <= ('Message', '18446744073709551615'::xid8, 9223372036854775807)
                         LIMIT $2) m) AS messages",
        )
        .bind(CURSOR)
        .bind(self.bound.saturating_mul(2).saturating_add(1))
        .fetch_one(&self.pool)
        .await?;
        let positions: i64 = row.try_get("positions")?;
        let messages: i64 = row.try_get("messages")?;
        let listed = self
            .work_per_message
            .lock()
            .map_or(0, |w| w.weigh(messages) - messages);
        let behind = positions.saturating_add(listed.max(0));
        if let Ok(mut unread) = self.unread.lock() {
            unread.since_reading -= appended;
        }
        *reading = (Some(Instant::now()), behind);
        Ok(behind)
    }

    /// `tenant`'s own events after the cursor, counted up to its share (a
    /// fresh enough reading).
    ///
    /// # Errors
    /// Database errors.
    pub async fn tenant_behind(&self, tenant: TenantId) -> Result<i64, sqlx::Error> {
        if let Some(behind) = self.tenant_reading(tenant) {
            return Ok(behind);
        }
        // Each row counts one, and a message's event that lists its
        // deliveries (ADR 0019) one more for each (read only over the
        // bound, for the tenants publishing then). Only whether it reaches
        // the share matters: first as many rows as should reach it, as
        // rows weighed lately, then, when those rows were not enough, as
        // many as there can be (each row weighs one at least).
        let share = self.share();
        let mut limit = self.tenant_rows.rows_for(share).min(share);
        let behind = loop {
            let (behind, rows): (i64, i64) = sqlx::query_as(TENANT_BEHIND)
                .bind(CURSOR)
                .bind(tenant.to_string())
                .bind(limit)
                .fetch_one(&self.pool)
                .await?;
            self.tenant_rows.observe(rows, behind);
            if behind >= share || rows < limit || limit >= share {
                break behind;
            }
            limit = share;
        };
        if let Ok(mut readings) = self.tenants.lock() {
            if readings.len() >= TENANT_READINGS {
                readings.retain(|_, (at, _)| at.elapsed() < BACKLOG_FRESH);
            }
            if readings.len() < TENANT_READINGS {
                readings.insert(tenant, (Instant::now(), behind));
            }
        }
        Ok(behind)
    }

    fn tenant_reading(&self, tenant: TenantId) -> Option<i64> {
        let readings = self.tenants.lock().ok()?;
        let (at, behind) = readings.get(&tenant)?;
        (at.elapsed() < BACKLOG_FRESH).then_some(*behind)
    }

    /// Whether a publish of `tenant` that appends `weight` events may go
    /// now: decided under the reading's lock, one publish at a time, over
    /// the reading plus what this process admitted that the reading does
    /// not show yet; an admitted publish is in flight until its ticket is
    /// dropped.
    async fn admits(&self, tenant: TenantId, weight: i64) -> Result<Option<Ticket>, sqlx::Error> {
        let mut reading = self.reading.lock().await;
        let read = self.read(&mut reading).await?;
        let (unread, mine_unread) = self.unread.lock().map_or((0, 0), |u| {
            (
                u.in_flight + u.since_reading,
                u.by_tenant.get(&tenant).copied().unwrap_or(0) + u.lately(tenant),
            )
        });
        let behind = read.saturating_add(unread);
        if behind > self.bound
            && (behind > self.bound.saturating_mul(2)
                || self
                    .tenant_behind(tenant)
                    .await?
                    .saturating_add(mine_unread)
                    >= self.share())
        {
            return Ok(None);
        }
        if let Ok(mut unread) = self.unread.lock() {
            unread.in_flight += weight;
            *unread.by_tenant.entry(tenant).or_insert(0) += weight;
        }
        Ok(Some(Ticket {
            unread: self.unread.clone(),
            tenant,
            weight,
        }))
    }
}

#[async_trait]
impl hookline_application::ports::DeliveryBacklog for PgBacklog {
    async fn admit(&self, tenant: TenantId, weight: usize, wait: Duration) -> Option<Admitted> {
        let deadline = Instant::now() + wait;
        let weight = i64::try_from(weight).unwrap_or(i64::MAX);
        if let Ok(mut w) = self.work_per_message.lock() {
            w.add(weight);
        }
        loop {
            match self.admits(tenant, weight).await {
                Ok(Some(ticket)) => return Some(Admitted(Some(Box::new(ticket)))),
                Ok(None) => {}
                // The append that follows reports the database's state.
                Err(_) => return Some(Admitted::free()),
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(BACKLOG_FRESH).await;
        }
    }

    async fn level(&self) -> Result<Option<BacklogLevel>, AppError> {
        let behind = self.behind().await.map_err(unavailable)?;
        Ok(Some(BacklogLevel {
            behind,
            bound: self.bound,
        }))
    }
}
