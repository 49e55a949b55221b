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
use async_trait::async_trait;
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
/// How often a process looks for expired spans.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct PgDeliveryFeed {
    pool: PgPool,
    next_expiry_check: Mutex<Instant>,
}

impl PgDeliveryFeed {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            next_expiry_check: Mutex::new(Instant::now()),
        }
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

    /// An expired span, leased again to `worker`, with its deliveries that
    /// are still waiting for their first attempt (the span is removed
    /// when none is).
    async fn retake(
        conn: &mut PgConnection,
        worker: &str,
        lease: Duration,
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
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let mut window = Window::read(&events, usize::MAX, false);
        let ids: Vec<String> = window
            .deliveries
            .iter()
            .map(|d| d.delivery_id.to_string())
            .collect();
        let settled: HashSet<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
              WHERE aggregate_type = 'Delivery' AND aggregate_id = ANY($1) AND sequence > 1
             UNION ALL
             SELECT delivery_id::text FROM delivery_queue WHERE delivery_id = ANY($2)",
        )
        .bind(&ids)
        .bind(
            window
                .deliveries
                .iter()
                .map(|d| *d.delivery_id.as_uuid())
                .collect::<Vec<Uuid>>(),
        )
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
        tracing::info!(
            span = id,
            deliveries = window.deliveries.len(),
            "taking over an expired span of first attempts"
        );
        Ok(Some(Taken {
            span: Some(id),
            deliveries: window.deliveries,
        }))
    }

    /// The next span after the cursor.
    async fn next(
        conn: &mut PgConnection,
        worker: &str,
        limit: u32,
        lease: Duration,
        finished: &[i64],
    ) -> Result<Taken, sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOCK)
            .execute(&mut *conn)
            .await?;
        let cursor = checkpoints::read(&mut *conn, CURSOR).await?;
        // A delivery row per message row at worst; enough to fill `limit`.
        let fetch = i64::from(limit) * 2 + 8;
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
        let events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let full = i64::try_from(events.len()).unwrap_or(i64::MAX) >= fetch;
        let window = Window::read(&events, limit as usize, full);
        let Some(until) = window.until else {
            if !finished.is_empty() {
                release(&mut *conn, finished).await?;
            }
            return Ok(Taken::default());
        };
        let took = !window.deliveries.is_empty();
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
        Ok(Taken {
            span,
            deliveries: window.deliveries,
        })
    }
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
    fn read(events: &[StoredEvent], limit: usize, full: bool) -> Self {
        let mut bodies: HashMap<&str, Arc<str>> = HashMap::new();
        let mut deliveries: Vec<DueDelivery> = Vec::new();
        let mut skipped: HashSet<&str> = HashSet::new();
        let mut until: Option<LogPosition> = None;
        let mut last_not_message: Option<LogPosition> = None;
        let mut cut = false;
        for (i, event) in events.iter().enumerate() {
            let position = event.log_position();
            match event.event_type.as_str() {
                MESSAGE_PUBLISHED => {
                    if let Ok(m) = event.payload.parse::<MessageBody>() {
                        bodies.insert(event.aggregate_id.as_str(), Arc::from(m.body));
                    }
                }
                DELIVERY_ENQUEUED => {
                    if deliveries.len() >= limit || (full && i + 1 == events.len()) {
                        cut = true;
                        break;
                    }
                    match due_from(event, &bodies) {
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
        // Cut short: messages read after the last delivery taken are read
        // again with their deliveries next time.
        if cut && last_not_message.is_some() {
            until = last_not_message;
        }
        deliveries.retain(|d| !skipped.contains(d.delivery_id.to_string().as_str()));
        Self { deliveries, until }
    }
}

fn due_from(event: &StoredEvent, bodies: &HashMap<&str, Arc<str>>) -> Option<DueDelivery> {
    let DeliveryEvent::DeliveryEnqueued {
        delivery_id,
        tenant_id,
        subscription_id,
        event_id,
        event_type,
        body,
        ..
    } = event.payload.parse::<DeliveryEvent>().ok()?
    else {
        return None;
    };
    let body = body
        .map(Arc::from)
        .or_else(|| bodies.get(event_id.to_string().as_str()).cloned());
    Some(DueDelivery {
        delivery_id,
        tenant_id,
        subscription_id,
        event_id,
        event_type: event_type.to_string(),
        attempt: 1,
        body,
        request_id: event.meta().map(|m| m.request_id),
        triggered_by: None,
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
        let taken = if self.expiry_check_due() {
            Self::retake(&mut tx, worker, lease)
                .await
                .map_err(unavailable)?
        } else {
            None
        };
        let taken = match taken {
            Some(taken) if taken.span.is_some() => {
                if !finished.is_empty() {
                    release(&mut tx, finished).await.map_err(unavailable)?;
                }
                taken
            }
            _ => Self::next(&mut tx, worker, limit, lease, finished)
                .await
                .map_err(unavailable)?,
        };
        tx.commit().await.map_err(unavailable)?;
        Ok(taken)
    }

    async fn release(&self, finished: &[i64]) -> Result<(), AppError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        release(&mut conn, finished).await.map_err(unavailable)
    }
}
