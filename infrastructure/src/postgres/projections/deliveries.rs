//! The `deliveries` projection: `deliveries_view` (one row per delivery,
//! its status and latest attempt) and `delivery_attempts` (one row per
//! attempt). A batch is folded in memory (with the application's delivery
//! fold) and written with two multi-row statements.

use super::queue::{parse_all, QueueProjection};
use super::{Projection, ProjectionError, BATCH_SIZE as BATCH};
use crate::postgres::copy::BinaryRows;
use crate::postgres::deliveries::{delivery, DELIVERY_COLUMNS};
use crate::postgres::log_reader::read_deliveries_after;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::deliveries::fold;
use hookline_application::operational::delivery_notice;
use hookline_application::ports::{AttemptRecord, DeliveryRecord, LogPosition, StoredEvent};
use hookline_domain::delivery::{Delivery, DeliveryEvent, DeliveryStatus};
use hookline_domain::outcome::ErrorKind;
use sqlx::{PgConnection, Row};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const VIEW_TABLE: &str = "deliveries_view";
pub const ATTEMPTS_TABLE: &str = "delivery_attempts";
pub const HEALTH_TABLE: &str = "subscription_health";
/// See [`Projection::pace`].
pub const DELIVERIES_GATHER: std::time::Duration = std::time::Duration::from_millis(100);

/// The most rows held at once; past it new rows are written at once.
const HOLD_CAP: usize = 50_000;

#[derive(Debug, Clone)]
pub struct DeliveriesProjection {
    view: String,
    attempts: String,
    health: String,
    /// The due queue, maintained in the same transaction from the same
    /// parsed events.
    queue: Option<QueueProjection>,
    /// The live projection's held rows (none in a rebuild).
    holds: Option<Arc<Mutex<Holds>>>,
}

/// Rows of deliveries enqueued and not attempted yet, applied but not
/// written (ADR 0021).
#[derive(Debug, Default)]
struct Holds {
    hold: Duration,
    rows: HashMap<Uuid, Held>,
    /// The oldest beginning and the nearest deadline among `rows`, kept
    /// with them (see [`Holds::settle`]): the runner asks for them at every
    /// turn of its loop, far more often than the rows change.
    oldest: Option<(LogPosition, Instant)>,
    /// Write every held row at the next apply (a request waits).
    release: bool,
}

impl Holds {
    /// Recomputes [`Holds::oldest`]; called after every change of `rows`.
    fn settle(&mut self) {
        let began = self.rows.values().map(|h| h.began).min();
        let until = self.rows.values().map(|h| h.until).min();
        self.oldest = began.zip(until);
    }
}

#[derive(Debug)]
struct Held {
    record: DeliveryRecord,
    version: i64,
    /// Where the delivery began in the log: the checkpoint's held
    /// position is the oldest of these.
    began: LogPosition,
    until: Instant,
}

/// A row held only while it says nothing but that the delivery waits for
/// its first attempt (and only its first event is applied: a held row is
/// written again from that event alone by a process taking over).
fn holdable(record: &DeliveryRecord) -> bool {
    record.status == DeliveryStatus::Pending && record.attempts == 0
}

impl Default for DeliveriesProjection {
    fn default() -> Self {
        Self::new("")
    }
}

/// What a batch's attempts say about one subscription's run of failures.
#[derive(Debug, Default)]
struct Run {
    tenant_id: Uuid,
    /// Failures after the batch's last success (all of them without one).
    failures: i32,
    /// The first of those failures.
    failing_since: Option<DateTime<Utc>>,
    /// The batch's last success.
    success: Option<(DateTime<Utc>, Uuid)>,
    last_failure: Option<serde_json::Value>,
}

impl Run {
    fn add(&mut self, a: &AttemptRecord) {
        if a.outcome == hookline_domain::delivery::DeliveryStatus::Delivered {
            self.success = Some((a.started_at, *a.delivery_id.as_uuid()));
            self.failures = 0;
            self.failing_since = None;
        } else {
            self.failures += 1;
            self.failing_since.get_or_insert(a.started_at);
            self.last_failure = Some(serde_json::json!({
                "delivery_id": a.delivery_id,
                "error_kind": a.error_kind.unwrap_or(ErrorKind::Other),
                "status_code": a.status_code,
                "message": a.error_message.clone().unwrap_or_default(),
                "failed_at": a.started_at,
            }));
        }
    }
}

/// A folded record, the sequence of the last event applied to it, and
/// whether the table already has its row.
struct Versioned {
    record: Option<DeliveryRecord>,
    version: i64,
    stored: bool,
}

/// An attempt with the columns only the table keeps.
struct AttemptRow {
    record: AttemptRecord,
    tenant_id: Uuid,
    worker: Option<String>,
    position: i64,
}

impl DeliveriesProjection {
    /// `suffix` names fresh tables for a rebuild.
    pub fn new(suffix: &str) -> Self {
        Self {
            view: format!("{VIEW_TABLE}{suffix}"),
            attempts: format!("{ATTEMPTS_TABLE}{suffix}"),
            health: format!("{HEALTH_TABLE}{suffix}"),
            queue: None,
            holds: None,
        }
    }

    /// The live projection holds each new delivery's row for up to
    /// `hold` (`HOOKLINE_DELIVERY_ROW_HOLD_MS`, 1 s by default) for its
    /// first outcome, which then makes the row's only write (ADR 0021).
    /// Under fan-out load first attempts follow their enqueueing by up to
    /// about 0.7 s (the benchmark's p99). Zero holds nothing.
    #[must_use]
    pub fn holding(mut self, hold: Duration) -> Self {
        self.holds = (!hold.is_zero()).then(|| {
            Arc::new(Mutex::new(Holds {
                hold,
                ..Holds::default()
            }))
        });
        self
    }

    /// The held rows themselves, taken out (empty without holds).
    fn take_held(&self, ids: &[Uuid]) -> HashMap<Uuid, Held> {
        let Some(Ok(mut holds)) = self.holds.as_ref().map(|h| h.lock()) else {
            return HashMap::new();
        };
        let taken = ids
            .iter()
            .filter_map(|id| holds.rows.remove(id).map(|held| (*id, held)))
            .collect::<HashMap<_, _>>();
        if !taken.is_empty() {
            holds.settle();
        }
        taken
    }

    /// Splits the batch's new rows into those to write now and those to
    /// hold, and adds to the former the held rows whose time is up.
    fn hold_new(
        &self,
        new: Vec<(DeliveryRecord, i64)>,
        mut kept: HashMap<Uuid, Held>,
        began: &HashMap<Uuid, LogPosition>,
    ) -> Vec<(DeliveryRecord, i64)> {
        let Some(Ok(mut holds)) = self.holds.as_ref().map(|h| h.lock()) else {
            return new;
        };
        let now = Instant::now();
        let release = std::mem::take(&mut holds.release);
        let mut write = Vec::with_capacity(new.len());
        for (record, version) in new {
            let id = *record.id.as_uuid();
            let earlier = kept.remove(&id);
            let began = earlier
                .as_ref()
                .map(|h| h.began)
                .or_else(|| began.get(&id).copied());
            match began {
                Some(began)
                    if !release
                        && version == 1
                        && holdable(&record)
                        && holds.rows.len() < HOLD_CAP =>
                {
                    let until = earlier.map_or(now + holds.hold, |h| h.until);
                    holds.rows.insert(
                        id,
                        Held {
                            record,
                            version,
                            began,
                            until,
                        },
                    );
                }
                _ => write.push((record, version)),
            }
        }
        // Held rows the batch took out but did not change (an event seen
        // again) stay held.
        for (id, h) in kept {
            holds.rows.entry(id).or_insert(h);
        }
        let due: Vec<Uuid> = holds
            .rows
            .iter()
            .filter(|(_, h)| release || h.until <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(h) = holds.rows.remove(&id) {
                write.push((h.record, h.version));
            }
        }
        holds.settle();
        write
    }

    /// Folds the batch's attempts into each subscription's run of
    /// failures: one statement for every subscription the batch touched.
    async fn update_health(
        &self,
        conn: &mut PgConnection,
        attempts: &[AttemptRow],
    ) -> Result<(), sqlx::Error> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut runs: HashMap<Uuid, Run> = HashMap::new();
        for a in attempts {
            let run = runs.entry(*a.record.subscription_id.as_uuid()).or_default();
            run.tenant_id = a.tenant_id;
            run.add(&a.record);
        }
        let n = runs.len();
        let (mut subs, mut tenants, mut failures) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut since, mut success_at, mut success_delivery, mut last) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (sub, run) in runs {
            subs.push(sub);
            tenants.push(run.tenant_id);
            failures.push(run.failures);
            since.push(run.failing_since);
            success_at.push(run.success.map(|s| s.0));
            success_delivery.push(run.success.map(|s| s.1));
            last.push(run.last_failure);
        }
        // A batch with a success starts the run afresh; one without extends
        // it.
        sqlx::query(&format!(
            "INSERT INTO {t} AS h (subscription_id, tenant_id, consecutive_failures, failing_since,
                                   last_success_at, last_success_delivery, last_failure)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::timestamptz[],
                                  $5::timestamptz[], $6::uuid[], $7::jsonb[])
             ON CONFLICT (subscription_id) DO UPDATE SET
               consecutive_failures = CASE WHEN EXCLUDED.last_success_at IS NOT NULL
                   THEN EXCLUDED.consecutive_failures
                   ELSE h.consecutive_failures + EXCLUDED.consecutive_failures END,
               failing_since = CASE WHEN EXCLUDED.last_success_at IS NOT NULL
                   THEN EXCLUDED.failing_since
                   ELSE COALESCE(h.failing_since, EXCLUDED.failing_since) END,
               last_success_at = COALESCE(EXCLUDED.last_success_at, h.last_success_at),
               last_success_delivery = COALESCE(EXCLUDED.last_success_delivery, h.last_success_delivery),
               last_failure = COALESCE(EXCLUDED.last_failure, h.last_failure)
             -- A batch of successes for a subscription that is not failing
             -- changes nothing the flow controller reads: no new row
             -- version (the common case under load).
             WHERE EXCLUDED.last_success_at IS NULL OR EXCLUDED.consecutive_failures > 0
                OR h.consecutive_failures > 0 OR h.failing_since IS NOT NULL",
            t = self.health
        ))
        .bind(subs)
        .bind(tenants)
        .bind(failures)
        .bind(since)
        .bind(success_at)
        .bind(success_delivery)
        .bind(last)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    #[must_use]
    pub fn with_queue(mut self, queue: QueueProjection) -> Self {
        self.queue = Some(queue);
        self
    }

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Versioned>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS}, version FROM {} WHERE id = ANY($1)",
            self.view
        ))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                let record = delivery(r)?;
                let id = *record.id.as_uuid();
                let versioned = Versioned {
                    record: Some(record),
                    version: r.try_get("version")?,
                    stored: true,
                };
                Ok((id, versioned))
            })
            .collect()
    }

    /// Deliveries already in the table: updated in place.
    async fn update_views(
        &self,
        conn: &mut PgConnection,
        rows: Vec<(DeliveryRecord, i64)>,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len();
        let mut ids = Vec::with_capacity(n);
        let mut tenants = Vec::with_capacity(n);
        let mut subs = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut attempts = Vec::with_capacity(n);
        let mut next: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut urls = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        let mut codes = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut created = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        let mut delivered: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut resent = Vec::with_capacity(n);
        for (r, version) in rows {
            ids.push(*r.id.as_uuid());
            tenants.push(*r.tenant_id.as_uuid());
            subs.push(*r.subscription_id.as_uuid());
            events.push(*r.event_id.as_uuid());
            types.push(r.event_type);
            statuses.push(r.status.as_str());
            attempts.push(r.attempts);
            next.push(r.next_attempt_at);
            urls.push(r.url);
            requests.push(r.request_id);
            codes.push(r.last_status_code);
            kinds.push(r.last_error_kind.map(ErrorKind::as_str));
            errors.push(r.last_error);
            created.push(r.created_at);
            updated.push(r.updated_at);
            delivered.push(r.delivered_at);
            resent.push(r.resent);
            versions.push(version);
        }
        sqlx::query(&format!(
            "INSERT INTO {view} AS d (id, tenant_id, subscription_id, event_id, event_type, status, attempts,
                    next_attempt_at, url, request_id, last_status_code, last_error_kind, last_error,
                    created_at, updated_at, delivered_at, version, resent)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                    $7::int[], $8::timestamptz[], $9::text[], $10::text[], $11::int[], $12::text[], $13::text[],
                    $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::bigint[], $18::bool[])
             ON CONFLICT (id) DO UPDATE SET
                status = EXCLUDED.status, attempts = EXCLUDED.attempts, next_attempt_at = EXCLUDED.next_attempt_at,
                last_status_code = EXCLUDED.last_status_code, last_error_kind = EXCLUDED.last_error_kind,
                last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at,
                delivered_at = EXCLUDED.delivered_at, version = EXCLUDED.version
             WHERE d.version < EXCLUDED.version",
            view = self.view
        ))
        .bind(ids)
        .bind(tenants)
        .bind(subs)
        .bind(events)
        .bind(types)
        .bind(statuses)
        .bind(attempts)
        .bind(next)
        .bind(urls)
        .bind(requests)
        .bind(codes)
        .bind(kinds)
        .bind(errors)
        .bind(created)
        .bind(updated)
        .bind(delivered)
        .bind(versions)
        .bind(resent)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Attempts are new by construction (each attempt event is applied
    /// once, under the projection's lock, with its checkpoint): loaded
    /// with `COPY`.
    async fn write_attempts(
        &self,
        conn: &mut PgConnection,
        rows: Vec<AttemptRow>,
    ) -> Result<(), sqlx::Error> {
        let mut copy = BinaryRows::new(18);
        for row in &rows {
            let a = &row.record;
            copy.row()
                .uuid(&a.id)
                .uuid(a.delivery_id.as_uuid())
                .int4(a.attempt)
                .uuid(&row.tenant_id)
                .uuid(a.subscription_id.as_uuid())
                .opt_text(a.request_id.as_deref())
                .opt_text(a.triggered_by.as_deref())
                .opt_text(row.worker.as_deref())
                .text(&a.url)
                .timestamptz(&a.started_at)
                .int8(a.duration_ms)
                .opt_int4(a.status_code)
                .text(a.outcome.as_str())
                .opt_text(a.error_kind.map(ErrorKind::as_str))
                .opt_text(a.error_message.as_deref())
                .opt_text(a.response_excerpt.as_deref())
                .opt_timestamptz(a.next_attempt_at.as_ref())
                .int8(row.position);
        }
        copy.copy_into(
            conn,
            &self.attempts,
            "id, delivery_id, attempt, tenant_id, subscription_id, request_id, triggered_by, worker, url,
             started_at, duration_ms, status_code, outcome, error_kind, error_message, response_excerpt,
             next_attempt_at, position",
        )
        .await?;
        Ok(())
    }

    /// Deliveries first seen in this batch: not in the table yet (the
    /// batch holds their `DeliveryEnqueued`), loaded with `COPY`.
    async fn insert_views(
        &self,
        conn: &mut PgConnection,
        rows: &[(DeliveryRecord, i64)],
    ) -> Result<(), sqlx::Error> {
        let mut copy = BinaryRows::new(18);
        for (r, version) in rows {
            copy.row()
                .uuid(r.id.as_uuid())
                .uuid(r.tenant_id.as_uuid())
                .uuid(r.subscription_id.as_uuid())
                .uuid(r.event_id.as_uuid())
                .text(&r.event_type)
                .text(r.status.as_str())
                .int4(r.attempts)
                .opt_timestamptz(r.next_attempt_at.as_ref())
                .text(&r.url)
                .opt_text(r.request_id.as_deref())
                .opt_int4(r.last_status_code)
                .opt_text(r.last_error_kind.map(ErrorKind::as_str))
                .opt_text(r.last_error.as_deref())
                .timestamptz(&r.created_at)
                .timestamptz(&r.updated_at)
                .opt_timestamptz(r.delivered_at.as_ref())
                .int8(*version)
                .bool(r.resent);
        }
        copy.copy_into(
            conn,
            &self.view,
            "id, tenant_id, subscription_id, event_id, event_type, status, attempts, next_attempt_at, url,
             request_id, last_status_code, last_error_kind, last_error, created_at, updated_at, delivered_at,
             version, resent",
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for DeliveriesProjection {
    fn name(&self) -> String {
        if self.view == VIEW_TABLE {
            "deliveries".to_string()
        } else {
            format!("deliveries:{}", self.view)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        Delivery::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let parsed = parse_all(events)?;
        // A delivery whose DeliveryEnqueued is in this batch has no row yet.
        let enqueued_here: HashSet<Uuid> = parsed
            .iter()
            .filter(|(_, _, e)| matches!(e, DeliveryEvent::DeliveryEnqueued { .. }))
            .map(|(_, id, _)| *id)
            .collect();
        let mut ids: Vec<Uuid> = parsed.iter().map(|(_, id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        // Rows held in memory (ADR 0021) are not in the table yet.
        let held = self.take_held(&ids);
        let to_load: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| !enqueued_here.contains(id) && !held.contains_key(id))
            .collect();
        let mut rows = self.load(conn, &to_load).await?;
        for (id, h) in &held {
            rows.insert(
                *id,
                Versioned {
                    record: Some(h.record.clone()),
                    version: h.version,
                    stored: false,
                },
            );
        }
        let mut began: HashMap<Uuid, LogPosition> = HashMap::new();
        let mut touched: Vec<Uuid> = Vec::new();
        let mut attempts = Vec::new();
        // The live read model also keeps the operational notices (a
        // rebuild's copy never does).
        let live = self.health == HEALTH_TABLE;
        let mut notices = Vec::new();
        for (stored, id, event) in &parsed {
            let (stored, id) = (*stored, *id);
            let entry = rows.entry(id).or_insert(Versioned {
                record: None,
                version: 0,
                stored: false,
            });
            if stored.sequence <= entry.version {
                continue; // already applied
            }
            if entry.record.is_none() && !matches!(event, DeliveryEvent::DeliveryEnqueued { .. }) {
                return Err(ProjectionError::bad_event(
                    stored,
                    "delivery event before its DeliveryEnqueued",
                ));
            }
            if entry.record.is_none() {
                began.insert(id, stored.log_position());
            }
            let attempt = fold::apply(&mut entry.record, stored, event);
            if live {
                if let Some(record) = &entry.record {
                    notices.extend(delivery_notice(record, event, stored));
                }
            }
            if let Some(attempt) = attempt {
                attempts.push(AttemptRow {
                    tenant_id: entry
                        .record
                        .as_ref()
                        .map(|r| *r.tenant_id.as_uuid())
                        .unwrap_or_default(),
                    worker: stored.request().and_then(|m| m.worker_id),
                    position: stored.position,
                    record: attempt,
                });
            }
            entry.version = stored.sequence;
            touched.push(id);
        }
        touched.sort_unstable();
        touched.dedup();
        let (mut new, mut changed) = (Vec::new(), Vec::new());
        for id in &touched {
            if let Some(Versioned {
                record: Some(record),
                version,
                stored,
            }) = rows.remove(id)
            {
                if stored {
                    changed.push((record, version));
                } else {
                    new.push((record, version));
                }
            }
        }
        let new = self.hold_new(new, held, &began);
        self.insert_views(conn, &new).await?;
        self.update_views(conn, changed).await?;
        if live {
            self.update_health(conn, &attempts).await?;
            crate::postgres::notices::keep(conn, &notices).await?;
        }
        self.write_attempts(conn, attempts).await?;
        if let Some(queue) = &self.queue {
            queue.apply_parsed(conn, parsed).await?;
        }
        Ok(())
    }

    /// Under load the delivery read models gather for longer than the
    /// others: a delivery enqueued and attempted within one batch is
    /// written once (its final row), not inserted and then updated. Nothing
    /// waits for them on the happy path (publish answers at commit, single
    /// reads fold the log, first attempts come from the log); lists follow
    /// within about this much.
    fn pace(&self) -> (std::time::Duration, i64) {
        (DELIVERIES_GATHER, 4000)
    }

    fn after_commit(&self, events: &[StoredEvent]) {
        if let Some(queue) = &self.queue {
            queue.after_commit(events);
        }
    }

    fn held(&self) -> Option<(LogPosition, Instant)> {
        self.holds.as_ref()?.lock().ok()?.oldest
    }

    fn release_held(&self) {
        if let Some(Ok(mut holds)) = self.holds.as_ref().map(|h| h.lock()) {
            holds.release = !holds.rows.is_empty();
        }
    }

    fn hold_for(&self) -> Duration {
        self.holds
            .as_ref()
            .and_then(|h| h.lock().ok().map(|h| h.hold))
            .unwrap_or_default()
    }

    fn forget_held(&self) {
        if let Some(Ok(mut holds)) = self.holds.as_ref().map(|h| h.lock()) {
            holds.rows.clear();
            holds.settle();
        }
    }

    /// The deliveries that began in `[from, until]` and have no row: held
    /// by a holder that stopped before writing them. Their rows say they
    /// wait for their first attempt; later events find them in the table.
    async fn write_held(
        &self,
        conn: &mut PgConnection,
        from: LogPosition,
        until: LogPosition,
    ) -> Result<(), ProjectionError> {
        let mut after = crate::postgres::checkpoints::before(from);
        loop {
            let (events, last, _) = read_deliveries_after(conn, after, BATCH).await?;
            let beginnings: Vec<StoredEvent> = events
                .into_iter()
                .filter(|e| e.sequence == 1 && e.log_position() <= until)
                .collect();
            let parsed = parse_all(&beginnings)?;
            let ids: Vec<Uuid> = parsed.iter().map(|(_, id, _)| *id).collect();
            let present: HashSet<Uuid> =
                sqlx::query_scalar(&format!("SELECT id FROM {} WHERE id = ANY($1)", self.view))
                    .bind(&ids)
                    .fetch_all(&mut *conn)
                    .await?
                    .into_iter()
                    .collect();
            let mut missing = Vec::new();
            for (stored, id, event) in &parsed {
                if present.contains(id) || !matches!(event, DeliveryEvent::DeliveryEnqueued { .. })
                {
                    continue;
                }
                let mut record = None;
                fold::apply(&mut record, stored, event);
                if let Some(record) = record {
                    missing.push((record, stored.sequence));
                }
            }
            self.insert_views(conn, &missing).await?;
            match last {
                Some(last) if last < until => after = last,
                _ => return Ok(()),
            }
        }
    }

    /// A rebuild computes each subscription's run of failures from its
    /// attempts at the end (its lanes apply deliveries in parallel, so the
    /// live, batch-by-batch update cannot run during it): failed attempts
    /// started after the last success and after the subscription was last
    /// enabled or its circuit closed.
    async fn rebuilt(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query(&format!(
            "WITH subs AS (SELECT DISTINCT subscription_id, tenant_id FROM {a}),
             -- Each subscription's last success, found by its attempts'
             -- index (a sort of every attempt otherwise).
             ok AS (
                 SELECT s.subscription_id, o.started_at, o.delivery_id
                   FROM (SELECT DISTINCT subscription_id FROM subs) s
                  CROSS JOIN LATERAL (
                        SELECT x.started_at, x.delivery_id FROM {a} x
                         WHERE x.subscription_id = s.subscription_id AND x.outcome = 'delivered'
                         ORDER BY x.started_at DESC, x.position DESC
                         LIMIT 1) o),
             since AS (
                 SELECT s.id AS subscription_id,
                        GREATEST(ok.started_at, (s.state ->> 'flow_reset_at')::timestamptz) AS after
                   FROM subscriptions_view s LEFT JOIN ok ON ok.subscription_id = s.id),
             runs AS (
                 SELECT a.subscription_id, count(*)::int AS n, min(a.started_at) AS first
                   FROM {a} a LEFT JOIN since USING (subscription_id)
                  WHERE a.outcome <> 'delivered' AND (since.after IS NULL OR a.started_at > since.after)
                  GROUP BY a.subscription_id),
             last_failure AS (
                 SELECT DISTINCT ON (subscription_id) subscription_id,
                        jsonb_build_object('delivery_id', delivery_id,
                                           'error_kind', COALESCE(error_kind, 'other'),
                                           'status_code', status_code,
                                           'message', COALESCE(error_message, ''),
                                           'failed_at', started_at) AS j
                   FROM {a} WHERE outcome <> 'delivered'
                  ORDER BY subscription_id, started_at DESC, position DESC)
             INSERT INTO {h} (subscription_id, tenant_id, consecutive_failures, failing_since,
                              last_success_at, last_success_delivery, last_failure)
             SELECT subs.subscription_id, subs.tenant_id, COALESCE(runs.n, 0), runs.first,
                    ok.started_at, ok.delivery_id, last_failure.j
               FROM subs
               LEFT JOIN runs USING (subscription_id)
               LEFT JOIN ok USING (subscription_id)
               LEFT JOIN last_failure USING (subscription_id)",
            a = self.attempts,
            h = self.health
        ))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_domain::{DeliveryId, EventId, SubscriptionId, TenantId};

    fn pending(n: u128) -> DeliveryRecord {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        DeliveryRecord {
            id: DeliveryId::from_uuid(Uuid::from_u128(n)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
            subscription_id: SubscriptionId::from_uuid(Uuid::from_u128(2)),
            event_id: EventId::from_uuid(Uuid::from_u128(3)),
            event_type: "invoice.paid".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: None,
            url: "https://example.com/h".into(),
            request_id: None,
            last_status_code: None,
            last_error_kind: None,
            last_error: None,
            created_at: at,
            updated_at: at,
            delivered_at: None,
            resent: false,
        }
    }

    fn at(position: i64) -> LogPosition {
        LogPosition { tx_id: 7, position }
    }

    #[test]
    fn held_rows_report_the_oldest_beginning_as_they_are_held_taken_and_forgotten() {
        let projection = DeliveriesProjection::new("").holding(Duration::from_secs(60));
        assert_eq!(projection.held(), None);
        let began: HashMap<Uuid, LogPosition> = [(5, 50), (6, 20), (7, 90)]
            .into_iter()
            .map(|(n, p)| (Uuid::from_u128(n), at(p)))
            .collect();
        let new = [5, 6, 7].into_iter().map(|n| (pending(n), 1)).collect();
        let written = projection.hold_new(new, HashMap::new(), &began);
        assert!(written.is_empty(), "fresh pending rows are held");
        let (oldest, until) = projection.held().expect("rows are held");
        assert_eq!(oldest, at(20));
        assert!(until > Instant::now());

        let taken = projection.take_held(&[Uuid::from_u128(6)]);
        assert_eq!(taken.len(), 1);
        assert_eq!(projection.held().map(|(b, _)| b), Some(at(50)));

        let taken = projection.take_held(&[Uuid::from_u128(5), Uuid::from_u128(7)]);
        assert_eq!(taken.len(), 2);
        assert_eq!(projection.held(), None, "nothing is held any more");

        let new = [8].into_iter().map(|n| (pending(n), 1)).collect();
        let began = HashMap::from([(Uuid::from_u128(8), at(99))]);
        assert!(projection.hold_new(new, HashMap::new(), &began).is_empty());
        assert_eq!(projection.held().map(|(b, _)| b), Some(at(99)));
        projection.forget_held();
        assert_eq!(projection.held(), None);
    }
}
