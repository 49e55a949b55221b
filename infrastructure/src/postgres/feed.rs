//! First attempts straight from the log (ADR 0017): workers share one
//! cursor over the log's commit order (`first_attempts` in
//! `projection_checkpoints`) and take the span after it a round at a time,
//! with the bodies of its messages from the same read. A span is one row in
//! `delivery_feed_spans`, leased like a queue row; the deliveries in it cost
//! no queue row at all unless they have to wait.
//!
//! A span whose lease expired (its worker died, or could not record an
//! outcome) is taken again: its deliveries that have neither an outcome in
//! the log nor a queue row are attempted again, as an expired queue lease
//! would be.

use super::checkpoints;
use super::log_reader::{decode, unavailable, COLUMNS};
use super::row_yield::RowYield;
use async_trait::async_trait;
use hookline_application::listing::{beginnings, listing_of};
use hookline_application::ports::{DeliveryFeed, DueDelivery, LogPosition, StoredEvent, Taken};
use hookline_application::AppError;
use hookline_domain::delivery::DeliveryEvent;
use hookline_domain::message::MESSAGE_PUBLISHED;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The cursor's row in `projection_checkpoints`.
pub const CURSOR: &str = "first_attempts";
/// Serialises takes after the cursor across processes (transaction-scoped
/// advisory lock; it assigns no transaction id, so a take does not hold
/// back other readers of the log).
const LOCK: i64 = 0x686f_6f6b_6665_6564; // "hookfeed"
const DELIVERY_ENQUEUED: &str = "DeliveryEnqueued";
const DELIVERY_SKIPPED: &str = "DeliverySkipped";
/// How often an idle take also moves the cursor past other events.
const SKIP_OTHERS: Duration = Duration::from_millis(250);
/// How often a process looks for expired spans.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct PgDeliveryFeed {
    pool: PgPool,
    /// Where the beginnings of the listed deliveries taken are left for
    /// the loads that record their outcomes (ADR 0019).
    log: Option<crate::postgres::store::PgLog>,
    next_expiry_check: Mutex<Instant>,
    /// When a take found no delivery, a later one (at most every
    /// [`SKIP_OTHERS`]) also moves the cursor past events that are not
    /// deliveries (other aggregates), so the distance to the log's head
    /// measures deliveries' backlog.
    idle: std::sync::atomic::AtomicBool,
    next_skip: Mutex<Instant>,
    /// Deliveries a row held in recent reads after the cursor.
    per_row: RowYield,
}

impl PgDeliveryFeed {
    pub fn new(pool: PgPool) -> Self {
        Self {
            log: None,
            pool,
            next_expiry_check: Mutex::new(Instant::now()),
            idle: std::sync::atomic::AtomicBool::new(true),
            next_skip: Mutex::new(Instant::now()),
            per_row: RowYield::new(),
        }
    }

    /// Leaves the beginnings of the listed deliveries it takes with `log`.
    #[must_use]
    pub fn sharing_beginnings_with(mut self, log: crate::postgres::store::PgLog) -> Self {
        self.log = Some(log);
        self
    }

    fn expiry_check_due(&self) -> bool {
        let Ok(mut next) = self.next_expiry_check.lock() else {
            return true;
        };
        let now = Instant::now();
        if now < *next {
            return false;
        }
        *next = now + EXPIRY_CHECK;
        true
    }

    /// An expired span, leased again to `worker`, with up to `limit` of its
    /// deliveries that are still waiting for their first attempt (the span
    /// is removed when none is). When more are waiting, the span is
    /// narrowed to the ones taken and the rest is left as an expired span
    /// of its own, for the next take of any worker: a worker with few free
    /// slots must not hold more than it can attempt within its lease, or
    /// another worker takes them over again and sends them twice.
    async fn retake(
        conn: &mut PgConnection,
        worker: &str,
        limit: u32,
        lease: Duration,
        begun: &mut Begun,
    ) -> Result<Option<Taken>, sqlx::Error> {
        let Some(span) = sqlx::query(
            "UPDATE delivery_feed_spans
                SET lease_owner = $1, lease_until = now() + make_interval(secs => $2)
              WHERE id = (SELECT id FROM delivery_feed_spans WHERE lease_until < now()
                           ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING id, after_tx::text AS after_tx, after_position, until_tx::text AS until_tx,
                    until_position",
        )
        .bind(worker)
        .bind(lease.as_secs_f64())
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = span.try_get("id")?;
        let after = LogPosition {
            tx_id: checkpoints::parse_xid8(&span.try_get::<String, _>("after_tx")?)?,
            position: span.try_get("after_position")?,
        };
        let until = LogPosition {
            tx_id: checkpoints::parse_xid8(&span.try_get::<String, _>("until_tx")?)?,
            position: span.try_get("until_position")?,
        };
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events
              WHERE (tx_id, global_position) > ($1::text::xid8, $2)
                AND (tx_id, global_position) <= ($3::text::xid8, $4)
                AND event_type IN ('{MESSAGE_PUBLISHED}', '{DELIVERY_ENQUEUED}', '{DELIVERY_SKIPPED}')
              ORDER BY tx_id, global_position"
        ))
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(until.tx_id.to_string())
        .bind(until.position)
        .fetch_all(&mut *conn)
        .await?;
        let (events, skipped) = read_rows(&rows, &mut begun.listed)?;
        let mut window = Window::read(&events, &skipped, usize::MAX, false);
        let ids: Vec<String> = window
            .deliveries
            .iter()
            .map(|d| d.delivery_id.to_string())
            .collect();
        let settled: HashSet<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
              WHERE aggregate_type = 'Delivery' AND aggregate_id = ANY($1) AND sequence > 1
             UNION ALL
             SELECT delivery_id::text FROM delivery_queue WHERE delivery_id = ANY($2)
             UNION ALL
             -- First outcomes kept in their message's stream (ADR 0023).
             SELECT x->>'delivery_id' FROM events m, json_array_elements(m.payload->'outcomes') x
              WHERE m.aggregate_type = 'Message' AND m.aggregate_id = ANY($3) AND m.sequence > 1
                AND m.event_type = 'DeliveriesAttempted'",
        )
        .bind(&ids)
        .bind(
            window
                .deliveries
                .iter()
                .map(|d| *d.delivery_id.as_uuid())
                .collect::<Vec<Uuid>>(),
        )
        .bind({
            let mut messages: Vec<String> = window
                .deliveries
                .iter()
                .filter_map(|d| d.delivery_id.listing_message())
                .map(|m| m.to_string())
                .collect();
            messages.sort_unstable();
            messages.dedup();
            messages
        })
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        window
            .deliveries
            .retain(|d| !settled.contains(&d.delivery_id.to_string()));
        if window.deliveries.is_empty() {
            sqlx::query("DELETE FROM delivery_feed_spans WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            return Ok(Some(Taken::default()));
        }
        if let Some(split) = split_after(&events, &window.deliveries, limit) {
            window.deliveries.truncate(split.taken);
            sqlx::query(
                "WITH narrowed AS (UPDATE delivery_feed_spans
                                      SET until_tx = $2::text::xid8, until_position = $3
                                    WHERE id = $1)
                 INSERT INTO delivery_feed_spans (after_tx, after_position, until_tx, until_position,
                                                  lease_owner, lease_until)
                 VALUES ($2::text::xid8, $3, $4::text::xid8, $5, $6, '-infinity')",
            )
            .bind(id)
            .bind(split.at.tx_id.to_string())
            .bind(split.at.position)
            .bind(until.tx_id.to_string())
            .bind(until.position)
            .bind(worker)
            .execute(&mut *conn)
            .await?;
        }
        if window.deliveries.len() > limit as usize {
            sqlx::query(
                "UPDATE delivery_feed_spans SET lease_until = now() + make_interval(secs => $2)
                  WHERE id = $1",
            )
            .bind(id)
            .bind(lease_for(lease, window.deliveries.len(), limit).as_secs_f64())
            .execute(&mut *conn)
            .await?;
        }
        tracing::info!(
            span = id,
            deliveries = window.deliveries.len(),
            "taking over an expired span of first attempts"
        );
        begun
            .events
            .extend(beginnings_taken(&events, &window.deliveries));
        Ok(Some(Taken {
            span: Some(id),
            deliveries: window.deliveries,
        }))
    }

    /// The next span after the cursor: up to `want.limit` deliveries, from
    /// at most `want.rows` rows of the log; and what the rows held.
    async fn next(
        conn: &mut PgConnection,
        worker: &str,
        want: Want,
        lease: Duration,
        finished: &[i64],
        skip_others: bool,
        begun: &mut Begun,
    ) -> Result<(Taken, Read), sqlx::Error> {
        let Want { limit, rows: fetch } = want;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK)
            .execute(&mut *conn)
            .await?;
        let cursor = checkpoints::read(&mut *conn, CURSOR).await?;
        // The newest event below the horizon, read before the window: if the
        // window then holds every delivery after the cursor, nothing up to
        // it is left to take.
        let head = if skip_others {
            sqlx::query(
                "SELECT tx_id::text AS tx, global_position FROM events
                  WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY tx_id DESC, global_position DESC LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| -> Result<LogPosition, sqlx::Error> {
                Ok(LogPosition {
                    tx_id: checkpoints::parse_xid8(&r.try_get::<String, _>("tx")?)?,
                    position: r.try_get("global_position")?,
                })
            })
            .transpose()?
        } else {
            None
        };
        // A message's event lists its deliveries (ADR 0019): `fetch` rows
        // are enough to fill `limit` as rows held deliveries lately
        // (`RowYield`), without reading many bodies no delivery of this
        // take sends.
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events
              WHERE (tx_id, global_position) > ($1::text::xid8, $2)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
                AND event_type IN ('{MESSAGE_PUBLISHED}', '{DELIVERY_ENQUEUED}', '{DELIVERY_SKIPPED}')
              ORDER BY tx_id, global_position
              LIMIT $3"
        ))
        .bind(cursor.tx_id.to_string())
        .bind(cursor.position)
        .bind(fetch)
        .fetch_all(&mut *conn)
        .await?;
        let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= fetch;
        let (events, skipped) = read_rows(&rows, &mut begun.listed)?;
        let read = Read {
            rows: rows.len(),
            deliveries: events
                .iter()
                .filter(|e| e.event_type == DELIVERY_ENQUEUED)
                .count(),
        };
        let window = Window::read(&events, &skipped, limit as usize, full);
        // Only a window that read every delivery after the cursor may move
        // it to the head: a cut one left deliveries behind `until` (its
        // count of deliveries may still be under `limit` once the skipped
        // ones are left out).
        let until = match (window.until, head) {
            (Some(until), Some(head)) if !full && !window.cut => Some(until.max(head)),
            (None, Some(head)) if !full && head > cursor => Some(head),
            (until, _) => until,
        };
        let Some(until) = until else {
            if !finished.is_empty() {
                release(&mut *conn, finished).await?;
            }
            return Ok((Taken::default(), read));
        };
        let took = !window.deliveries.is_empty();
        begun
            .events
            .extend(beginnings_taken(&events, &window.deliveries));
        let lease = lease_for(lease, window.deliveries.len(), limit);
        let span: Option<i64> = sqlx::query_scalar(
            "WITH released AS (DELETE FROM delivery_feed_spans WHERE id = ANY($1)),
                  moved AS (UPDATE projection_checkpoints
                               SET last_tx_id = $2::text::xid8, last_position = $3, updated_at = now()
                             WHERE name = $4)
             INSERT INTO delivery_feed_spans (after_tx, after_position, until_tx, until_position,
                                              lease_owner, lease_until)
             SELECT $5::text::xid8, $6, $2::text::xid8, $3, $7, now() + make_interval(secs => $8)
              WHERE $9
             RETURNING id",
        )
        .bind(finished)
        .bind(until.tx_id.to_string())
        .bind(until.position)
        .bind(CURSOR)
        .bind(cursor.tx_id.to_string())
        .bind(cursor.position)
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(took)
        .fetch_optional(&mut *conn)
        .await?;
        Ok((
            Taken {
                span,
                deliveries: window.deliveries,
            },
            read,
        ))
    }
}

/// How many rows a read after the cursor gave, and how many deliveries
/// they held.
#[derive(Debug, Clone, Copy)]
struct Read {
    rows: usize,
    deliveries: usize,
}

/// What a take after the cursor asks of its read.
#[derive(Debug, Clone, Copy)]
struct Want {
    /// Deliveries at most.
    limit: u32,
    /// Rows of the log at most.
    rows: i64,
}

/// Where to cut a span taken over whose waiting deliveries are more than
/// `limit`: after the `DeliveryEnqueued` of the last one taken.
struct Split {
    taken: usize,
    at: LogPosition,
}

fn split_after(events: &[StoredEvent], waiting: &[DueDelivery], limit: u32) -> Option<Split> {
    let positions: HashMap<&str, LogPosition> = events
        .iter()
        .filter(|e| e.event_type == DELIVERY_ENQUEUED)
        .map(|e| (e.aggregate_id.as_str(), e.log_position()))
        .collect();
    let position = |d: &DueDelivery| positions.get(d.delivery_id.to_string().as_str()).copied();
    let mut taken = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let at = position(waiting.get(taken.checked_sub(1)?)?)?;
    // The deliveries one message's event lists share its position: a span
    // never ends among them (ADR 0019).
    while waiting
        .get(taken)
        .is_some_and(|next| position(next) == Some(at))
    {
        taken += 1;
    }
    waiting.get(taken)?;
    Some(Split { taken, at })
}

/// The lease of a span of `taken` deliveries for a worker with `limit`
/// free slots. The deliveries one message's event lists are taken
/// together (ADR 0019), so a span may hold more than `limit`: the worker
/// attempts them a round of `limit` after another, and the lease covers
/// every round, so that no other worker takes them over meanwhile and
/// sends them twice — up to [`MAX_LEASE_ROUNDS`] leases: past that a
/// killed worker's deliveries would wait too long for another to take
/// them over, and sending some twice is the lesser harm (at least once).
fn lease_for(lease: Duration, taken: usize, limit: u32) -> Duration {
    let rounds = taken
        .div_ceil(usize::try_from(limit.max(1)).unwrap_or(usize::MAX))
        .clamp(1, MAX_LEASE_ROUNDS);
    lease.saturating_mul(u32::try_from(rounds).unwrap_or(1))
}

/// The most leases one span of first attempts is given at once.
const MAX_LEASE_ROUNDS: usize = 8;

/// The beginnings (`DeliveryEnqueued`) of the listed deliveries among
/// `taken` (ADR 0019), read in `events`.
fn beginnings_taken(events: &[StoredEvent], taken: &[DueDelivery]) -> Vec<StoredEvent> {
    let ids: HashSet<String> = taken
        .iter()
        .filter(|d| d.delivery_id.listing_message().is_some())
        .map(|d| d.delivery_id.to_string())
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    events
        .iter()
        .filter(|e| e.event_type == DELIVERY_ENQUEUED && ids.contains(&e.aggregate_id))
        .cloned()
        .collect()
}

/// Rows of the log as the feed reads them: each message that lists its
/// deliveries followed by their `DeliveryEnqueued` (ADR 0019), and the
/// listed deliveries the message says are skipped (their
/// `DeliverySkipped` rows may lie past the end of the read).
/// How many deliveries each listing message read lists is added to
/// `listed`.
fn read_rows(
    rows: &[sqlx::postgres::PgRow],
    listed: &mut Vec<(String, usize)>,
) -> Result<(Vec<StoredEvent>, HashSet<String>), sqlx::Error> {
    let stored = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    let read = rows_of(stored).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    listed.extend(read.listed);
    Ok((read.events, read.skipped))
}

/// What a take read for the log's appends that record its outcomes: the
/// beginnings of the deliveries it took, and how many deliveries each
/// listing message it read lists.
#[derive(Debug, Default)]
struct Begun {
    events: Vec<StoredEvent>,
    listed: Vec<(String, usize)>,
}

/// What [`read_rows`] gives.
struct Rows {
    events: Vec<StoredEvent>,
    skipped: HashSet<String>,
    /// How many deliveries each listing message read lists (its id): the
    /// log's appends gather the first outcomes of those that list several
    /// (ADR 0023).
    listed: Vec<(String, usize)>,
}

/// See [`read_rows`].
fn rows_of(stored: Vec<StoredEvent>) -> Result<Rows, serde_json::Error> {
    let mut events = Vec::with_capacity(stored.len());
    let mut skipped = HashSet::new();
    let mut listed = Vec::new();
    for event in stored {
        let Some(listing) = listing_of(&event)? else {
            events.push(event);
            continue;
        };
        skipped.extend(
            listing
                .listed()
                .filter(|d| d.skipped)
                .map(|d| d.id.to_string()),
        );
        listed.push((event.aggregate_id.clone(), listing.listed_count()));
        let begun = beginnings(&event, &listing, |_| true);
        events.push(event);
        events.extend(begun);
    }
    Ok(Rows {
        events,
        skipped,
        listed,
    })
}

/// [`rows_of`] without the counts.
#[cfg(test)]
fn as_read(
    stored: Vec<StoredEvent>,
) -> Result<(Vec<StoredEvent>, HashSet<String>), serde_json::Error> {
    rows_of(stored).map(|r| (r.events, r.skipped))
}

async fn release(conn: &mut PgConnection, finished: &[i64]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM delivery_feed_spans WHERE id = ANY($1)")
        .bind(finished)
        .execute(conn)
        .await?;
    Ok(())
}

/// What a read of the log gives: the deliveries to attempt (with their
/// bodies when their message was in the read) and how far it was consumed.
struct Window {
    deliveries: Vec<DueDelivery>,
    until: Option<LogPosition>,
    /// The read stopped at `limit` (or before the read's last row) with
    /// deliveries after `until` left for the next take.
    cut: bool,
}

#[derive(serde::Deserialize)]
struct MessageBody {
    body: String,
}

impl Window {
    /// Takes up to `limit` deliveries from `events` (messages, enqueued and
    /// skipped deliveries in commit order). With `full` (the read was cut
    /// by its limit), a delivery on the last row is left for the next read:
    /// the row after it may be its `DeliverySkipped`.
    fn read(
        events: &[StoredEvent],
        listed_skipped: &HashSet<String>,
        limit: usize,
        full: bool,
    ) -> Self {
        // Messages read, and the bodies of those a delivery taken sends
        // (parsed once, when first needed).
        let mut messages: HashMap<&str, &StoredEvent> = HashMap::new();
        let mut bodies: HashMap<String, Arc<str>> = HashMap::new();
        let mut deliveries: Vec<DueDelivery> = Vec::new();
        let mut skipped: HashSet<&str> = HashSet::new();
        let mut until: Option<LogPosition> = None;
        let mut last_not_message: Option<LogPosition> = None;
        let mut last_taken: Option<LogPosition> = None;
        let last_read = events.last().map(StoredEvent::log_position);
        // The position being read, and the last one before it: a cut at a
        // position leaves all of it (a message and the deliveries it
        // lists share one) for the next read.
        let mut current: Option<LogPosition> = None;
        let mut before_current: Option<LogPosition> = None;
        let mut cut = false;
        for event in events {
            let position = event.log_position();
            if current != Some(position) {
                before_current = current;
                current = Some(position);
            }
            match event.event_type.as_str() {
                MESSAGE_PUBLISHED => {
                    messages.insert(event.aggregate_id.as_str(), event);
                }
                DELIVERY_ENQUEUED => {
                    // The deliveries one message's event lists share its
                    // position (ADR 0019): a window never ends among them.
                    let among_taken = last_taken == Some(position);
                    if (deliveries.len() >= limit && !among_taken)
                        || (full && Some(position) == last_read)
                    {
                        cut = true;
                        break;
                    }
                    last_taken = Some(position);
                    match due_from(event, &messages, &mut bodies) {
                        Some(due) => deliveries.push(due),
                        None => tracing::error!(
                            delivery_id = %event.aggregate_id,
                            "a DeliveryEnqueued event could not be read; it is not attempted from the log"
                        ),
                    }
                    last_not_message = Some(position);
                }
                _ => {
                    skipped.insert(event.aggregate_id.as_str());
                    last_not_message = Some(position);
                }
            }
            until = Some(position);
        }
        // Cut short: nothing at the position cut is consumed, and messages
        // read after the last delivery taken are read again with their
        // deliveries next time.
        if cut {
            until = match (last_not_message, before_current) {
                (Some(delivery), Some(before)) => Some(delivery.min(before)),
                (delivery, before) => delivery.or(before),
            };
        }
        deliveries.retain(|d| {
            let id = d.delivery_id.to_string();
            !skipped.contains(id.as_str()) && !listed_skipped.contains(&id)
        });
        Self {
            deliveries,
            until,
            cut,
        }
    }
}

fn due_from(
    event: &StoredEvent,
    messages: &HashMap<&str, &StoredEvent>,
    bodies: &mut HashMap<String, Arc<str>>,
) -> Option<DueDelivery> {
    let DeliveryEvent::DeliveryEnqueued {
        delivery_id,
        tenant_id,
        subscription_id,
        event_id,
        event_type,
        body,
        ..
    } = event.payload.parse_owned::<DeliveryEvent>().ok()?
    else {
        return None;
    };
    let body = match body {
        Some(inline) => Some(Arc::from(inline)),
        None => {
            let id = event_id.to_string();
            match bodies.get(&id) {
                Some(b) => Some(b.clone()),
                None => {
                    let parsed: Option<Arc<str>> = messages
                        .get(id.as_str())
                        .and_then(|m| m.payload.parse::<MessageBody>().ok())
                        .map(|m| Arc::from(m.body));
                    if let Some(b) = &parsed {
                        bodies.insert(id, b.clone());
                    }
                    parsed
                }
            }
        }
    };
    let (request_id, triggered_by) = event
        .request()
        .map_or((None, None), |m| (Some(m.request_id), m.triggered_by));
    Some(DueDelivery {
        delivery_id,
        tenant_id,
        subscription_id,
        event_id,
        event_type: event_type.to_string(),
        attempt: 1,
        body,
        request_id,
        // A delivery a request asked for by hand (a resend): its attempts
        // carry the request as `triggered_by`, as from the queue.
        triggered_by,
        span: None,
    })
}

#[async_trait]
impl DeliveryFeed for PgDeliveryFeed {
    async fn take(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
        finished: &[i64],
    ) -> Result<Taken, AppError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut begun = Begun::default();
        let taken = if self.expiry_check_due() {
            Self::retake(&mut tx, worker, limit, lease, &mut begun)
                .await
                .map_err(unavailable)?
        } else {
            None
        };
        let taken = match taken {
            Some(taken) if taken.span.is_some() => {
                // A crashed worker may have left several: look again at
                // the next take rather than a second later.
                if let Ok(mut next) = self.next_expiry_check.lock() {
                    *next = Instant::now();
                }
                if !finished.is_empty() {
                    release(&mut tx, finished).await.map_err(unavailable)?;
                }
                taken
            }
            _ => {
                let idle = self.idle.load(std::sync::atomic::Ordering::Relaxed)
                    && self.next_skip.lock().is_ok_and(|mut next| {
                        let now = Instant::now();
                        let due = now >= *next;
                        if due {
                            *next = now + SKIP_OTHERS;
                        }
                        due
                    });
                begun = Begun::default();
                let want = Want {
                    limit,
                    rows: self.per_row.rows_for(i64::from(limit)),
                };
                let (taken, read) =
                    Self::next(&mut tx, worker, want, lease, finished, idle, &mut begun)
                        .await
                        .map_err(unavailable)?;
                self.per_row.observe(
                    i64::try_from(read.rows).unwrap_or(i64::MAX),
                    i64::try_from(read.deliveries).unwrap_or(i64::MAX),
                );
                self.idle.store(
                    taken.deliveries.is_empty(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                taken
            }
        };
        tx.commit().await.map_err(unavailable)?;
        if let Some(log) = &self.log {
            log.remember_beginnings(begun.events);
            log.remember_listed(begun.listed);
        }
        Ok(taken)
    }

    async fn release(&self, finished: &[i64]) -> Result<(), AppError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        release(&mut conn, finished).await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use hookline_application::ports::StoredJson;
    use hookline_domain::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};

    fn stored(
        position: i64,
        aggregate_id: String,
        event_type: &str,
        payload: String,
    ) -> StoredEvent {
        StoredEvent {
            position,
            tx_id: 100,
            aggregate_type: if event_type == MESSAGE_PUBLISHED {
                "Message".into()
            } else {
                "Delivery".into()
            },
            aggregate_id,
            sequence: 1,
            event_type: event_type.into(),
            event_version: "1.0".into(),
            payload: StoredJson::new(serde_json::value::RawValue::from_string(payload).unwrap()),
            metadata: StoredJson::new(
                serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            ),
            recorded_at: Utc::now(),
        }
    }

    fn enqueued(position: i64, message: EventId) -> (DeliveryId, StoredEvent) {
        let id = DeliveryId::from_uuid(Uuid::now_v7());
        let event = DeliveryEvent::DeliveryEnqueued {
            delivery_id: id,
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            subscription_id: SubscriptionId::from_uuid(Uuid::now_v7()),
            event_id: message,
            event_type: EventType::parse("a.b", "e").unwrap(),
            url: "https://example.com/h".into(),
            body: None,
            enqueued_at: Utc::now(),
            next_attempt_at: Utc::now(),
        };
        let payload = serde_json::to_string(&event).unwrap();
        (
            id,
            stored(position, id.to_string(), DELIVERY_ENQUEUED, payload),
        )
    }

    fn skipped(position: i64, id: DeliveryId) -> StoredEvent {
        let event = DeliveryEvent::DeliverySkipped {
            reason: "subscription_disabled".into(),
            skipped_at: Utc::now(),
        };
        stored(
            position,
            id.to_string(),
            DELIVERY_SKIPPED,
            serde_json::to_string(&event).unwrap(),
        )
    }

    /// A message to a disabled subscription and two active ones, read two
    /// deliveries at a time.
    fn burst() -> (Vec<StoredEvent>, [DeliveryId; 3]) {
        let message = EventId::from_uuid(Uuid::now_v7());
        let m = stored(
            1,
            message.to_string(),
            MESSAGE_PUBLISHED,
            serde_json::json!({"type": "MessagePublished", "body": "{}"}).to_string(),
        );
        let (d1, e1) = enqueued(2, message);
        let s1 = skipped(3, d1);
        let (d2, e2) = enqueued(4, message);
        let (d3, e3) = enqueued(5, message);
        (vec![m, e1, s1, e2, e3], [d1, d2, d3])
    }

    #[test]
    fn a_window_cut_at_its_limit_says_so_even_when_skipped_deliveries_left_it_short() {
        let (events, [_, d2, d3]) = burst();
        let window = Window::read(&events, &HashSet::new(), 2, false);
        // d1 counted towards the limit and was then left out (skipped): the
        // window holds fewer deliveries than the limit, yet d3 is after
        // `until` and must not be jumped over.
        assert_eq!(
            window
                .deliveries
                .iter()
                .map(|d| d.delivery_id)
                .collect::<Vec<_>>(),
            [d2]
        );
        assert!(window.cut);
        assert_eq!(window.until.map(|u| u.position), Some(4));
        assert!(!window.deliveries.iter().any(|d| d.delivery_id == d3));
        // Read with room for all: nothing is left behind.
        let all = Window::read(&events, &HashSet::new(), 10, false);
        assert!(!all.cut);
        assert_eq!(all.deliveries.len(), 2);
        assert_eq!(all.until.map(|u| u.position), Some(5));
        assert!(all
            .deliveries
            .iter()
            .all(|d| d.body.as_deref() == Some("{}")));
    }

    #[test]
    fn a_span_taken_over_is_cut_after_the_last_delivery_the_worker_has_room_for() {
        let (events, [_, d2, d3]) = burst();
        let waiting = Window::read(&events, &HashSet::new(), usize::MAX, false).deliveries;
        assert_eq!(waiting.len(), 2);
        // Room for one: the span ends at d2's enqueue (position 4), d3 is
        // left for another take.
        let split = split_after(&events, &waiting, 1).unwrap();
        assert_eq!(split.taken, 1);
        assert_eq!(split.at.position, 4);
        assert_eq!(waiting[0].delivery_id, d2);
        assert_eq!(waiting[1].delivery_id, d3);
        // A limit of zero still takes one; room for all cuts nothing.
        assert_eq!(split_after(&events, &waiting, 0).map(|s| s.taken), Some(1));
        assert!(split_after(&events, &waiting, 2).is_none());
        assert!(split_after(&events, &waiting, 200).is_none());
    }

    /// A message of the tenant that lists `n` deliveries (ADR 0019), the
    /// ones in `skipped` skipped, at `position`.
    fn listing(position: i64, n: usize, skipped: &[usize]) -> (StoredEvent, Vec<DeliveryId>) {
        let message = EventId::listing(Uuid::now_v7());
        let ids: Vec<DeliveryId> = (0..n)
            .map(|i| message.listed_delivery(i).unwrap())
            .collect();
        let deliveries: Vec<serde_json::Value> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                serde_json::json!({"id": id, "subscription_id": Uuid::now_v7(),
                                   "url": "https://example.com/h", "skipped": skipped.contains(&i)})
            })
            .collect();
        let payload = serde_json::json!({
            "type": "MessagePublished", "event_id": message, "tenant_id": Uuid::nil(),
            "event_type": "a.b", "body": "{}", "published_at": Utc::now(), "deliveries": deliveries,
        });
        let mut event = stored(
            position,
            message.to_string(),
            MESSAGE_PUBLISHED,
            payload.to_string(),
        );
        event.event_version = "1.2".into();
        (event, ids)
    }

    #[test]
    fn a_full_read_ending_on_a_listing_message_leaves_all_of_it_for_the_next_take() {
        // Messages that listed nothing, then one listing two deliveries as
        // the read's last row: nothing is taken, and the cursor stops
        // before that message, not on it.
        let (empty1, _) = listing(1, 0, &[]);
        let (empty2, _) = listing(2, 0, &[]);
        let (last, _) = listing(3, 2, &[]);
        let (events, skipped) = as_read(vec![empty1, empty2, last]).unwrap();
        let window = Window::read(&events, &skipped, 1, true);
        assert!(window.deliveries.is_empty());
        assert!(window.cut);
        assert_eq!(window.until.map(|u| u.position), Some(2));
        // Read again from there (not full): both are taken together, with
        // their body, past the limit of one.
        let (again, _) = listing(3, 2, &[]);
        let (events, skipped) = as_read(vec![again]).unwrap();
        let window = Window::read(&events, &skipped, 1, false);
        assert_eq!(window.deliveries.len(), 2);
        assert!(window
            .deliveries
            .iter()
            .all(|d| d.body.as_deref() == Some("{}")));
        assert_eq!(window.until.map(|u| u.position), Some(3));
    }

    #[test]
    fn a_listed_delivery_the_message_skipped_is_not_taken_without_its_skip_row() {
        let (message, ids) = listing(1, 3, &[1]);
        let (events, skipped) = as_read(vec![message]).unwrap();
        let window = Window::read(&events, &skipped, 10, false);
        let taken: Vec<DeliveryId> = window.deliveries.iter().map(|d| d.delivery_id).collect();
        assert_eq!(taken, [ids[0], ids[2]]);
    }

    #[test]
    fn a_span_is_never_split_among_one_messages_deliveries() {
        let (first, a) = listing(1, 3, &[]);
        let (second, b) = listing(2, 2, &[]);
        let (events, skipped) = as_read(vec![first, second]).unwrap();
        let waiting = Window::read(&events, &skipped, usize::MAX, false).deliveries;
        assert_eq!(waiting.len(), 5);
        // Room for one: the first message's three go together.
        let split = split_after(&events, &waiting, 1).unwrap();
        assert_eq!(split.taken, 3);
        assert_eq!(split.at.position, 1);
        assert_eq!(waiting[3].delivery_id, b[0]);
        assert_eq!(waiting[2].delivery_id, a[2]);
        // A window with room for two takes the first message whole.
        let window = Window::read(&events, &skipped, 2, false);
        assert_eq!(window.deliveries.len(), 3);
        assert_eq!(window.until.map(|u| u.position), Some(1));
        // The lease covers the rounds, within its bound.
        assert_eq!(
            lease_for(Duration::from_secs(10), 3, 1),
            Duration::from_secs(30)
        );
        assert_eq!(
            lease_for(Duration::from_secs(10), 10_000, 1),
            Duration::from_secs(80)
        );
        assert_eq!(
            lease_for(Duration::from_secs(10), 1, 64),
            Duration::from_secs(10)
        );
    }
}
