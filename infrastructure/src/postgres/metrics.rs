//! The gauges every process reads alike from the database at scrape time:
//! the due queue, each projection's lag behind the log, subscriptions by
//! state. Three small queries (index lookups, and one count over the queue
//! and one over the subscriptions), shared for a second between scrapes.

use super::flow::PARKED;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long one reading answers scrapes.
pub const GAUGE_CACHE: Duration = Duration::from_secs(1);

/// The due queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueGauges {
    /// Claimable now (due, or a lease that has expired), with the new
    /// deliveries not yet taken from the log (counted up to
    /// [`NEW_COUNTED`]).
    pub due: i64,
    /// Due later (a retry's back-off, a rate-limit wait).
    pub scheduled: i64,
    /// Leased by a worker for an attempt (in flight).
    pub leased: i64,
    /// Held back by a worker for their turn: a subscription's share of the
    /// worker (a slow receiver), a rate limit; until a worker claims them
    /// again (also once their hold has run out).
    pub waiting: i64,
    /// Held behind an open circuit until its next probe.
    pub parked: i64,
    /// How long the oldest claimable delivery has been waiting (0 when
    /// none is).
    pub oldest_due_age_seconds: f64,
    /// How long the oldest of the `waiting` ones has been due (0 when none
    /// waits).
    pub oldest_waiting_age_seconds: f64,
}

/// Most new deliveries behind the first-attempt cursor a scrape counts
/// (the scan stays bounded however large a backlog grows).
pub const NEW_COUNTED: i64 = 100_000;

/// One projection's distance behind the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionLag {
    pub name: String,
    /// Log positions between its checkpoint and the newest committed event
    /// of its aggregate type.
    pub positions: i64,
    /// How long ago the oldest event it has not applied was recorded.
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub queue: QueueGauges,
    pub projections: Vec<ProjectionLag>,
    /// `(state, count)`: `active`, `circuit_open`, `disabled`.
    pub subscriptions: Vec<(&'static str, i64)>,
}

#[derive(Debug)]
pub struct PgGauges {
    pool: PgPool,
    /// Projection name and aggregate type.
    projections: Vec<(String, &'static str)>,
    cache: Mutex<Option<(Instant, Arc<Gauges>)>>,
}

impl PgGauges {
    pub fn new(pool: PgPool, projections: Vec<(String, &'static str)>) -> Self {
        Self {
            pool,
            projections,
            cache: Mutex::new(None),
        }
    }

    /// The gauges, read at most once a second (concurrent scrapes share a
    /// reading).
    ///
    /// # Errors
    /// Database errors.
    pub async fn read(&self) -> Result<Arc<Gauges>, sqlx::Error> {
        let mut cache = self.cache.lock().await;
        if let Some((at, gauges)) = cache.as_ref() {
            if at.elapsed() < GAUGE_CACHE {
                return Ok(gauges.clone());
            }
        }
        let gauges = Arc::new(Gauges {
            queue: self.queue().await?,
            projections: self.lags().await?,
            subscriptions: self.subscriptions().await?,
        });
        *cache = Some((Instant::now(), gauges.clone()));
        Ok(gauges)
    }

    async fn queue(&self) -> Result<QueueGauges, sqlx::Error> {
        // `held`: a row a worker held back for its turn, whether or not its
        // hold has run out (it stays held back until a worker claims it).
        let row = sqlx::query(
            "WITH q AS (SELECT *, (waiting AND lease_until IS NOT NULL
                                   AND lease_owner IS DISTINCT FROM $1) AS held
                          FROM delivery_queue)
             SELECT count(*) FILTER (WHERE COALESCE(lease_until, due_at) <= now() AND NOT held) AS due,
                    count(*) FILTER (WHERE lease_until IS NULL AND due_at > now()) AS scheduled,
                    count(*) FILTER (WHERE lease_until > now() AND lease_owner IS DISTINCT FROM $1
                                       AND NOT held) AS leased,
                    count(*) FILTER (WHERE held) AS waiting,
                    COALESCE(EXTRACT(EPOCH FROM now() - min(due_at) FILTER (WHERE held))::float8,
                        0) AS oldest_waiting,
                    count(*) FILTER (WHERE lease_until > now() AND lease_owner = $1) AS parked,
                    COALESCE(EXTRACT(EPOCH FROM now() - min(COALESCE(lease_until, due_at)) FILTER (
                        WHERE COALESCE(lease_until, due_at) <= now() AND NOT held))::float8, 0) AS oldest
               FROM q",
        )
        .bind(PARKED)
        .fetch_one(&self.pool)
        .await?;
        // New deliveries not yet taken from the log (ADR 0017) are due as
        // well: they wait behind the first-attempt cursor, not on the queue.
        // Those skipped when they were enqueued (a disabled subscription:
        // `DeliverySkipped` in the same append) wait for nothing.
        let cursor = {
            let mut conn = self.pool.acquire().await?;
            super::checkpoints::read(&mut conn, super::feed::CURSOR).await?
        };
        let new = sqlx::query(
            "SELECT count(*) AS n, COALESCE(EXTRACT(EPOCH FROM now() - min(recorded_at))::float8, 0) AS oldest
               FROM (SELECT e.recorded_at FROM events e
                       -- The deliveries a message's event lists (ADR 0019).
                       LEFT JOIN LATERAL json_array_elements(
                            CASE WHEN e.event_type = 'MessagePublished' AND e.event_version = '1.2'
                                 THEN e.payload->'deliveries' END) x ON true
                      WHERE (e.tx_id, e.global_position) > ($1::text::xid8, $2)
                        AND (e.event_type = 'DeliveryEnqueued'
                             OR (e.event_type = 'MessagePublished' AND x.value IS NOT NULL))
                        AND NOT EXISTS (
                            SELECT 1 FROM events s
                             WHERE s.aggregate_type = 'Delivery'
                               AND s.aggregate_id = COALESCE(x.value->>'id', e.aggregate_id)
                               AND s.sequence = CASE WHEN x.value IS NULL THEN e.sequence + 1 ELSE 2 END
                               AND s.event_type = 'DeliverySkipped')
                      ORDER BY e.tx_id, e.global_position
                      LIMIT $3) new",
        )
        .bind(cursor.tx_id.to_string())
        .bind(cursor.position)
        .bind(NEW_COUNTED)
        .fetch_one(&self.pool)
        .await?;
        let due: i64 = row.try_get("due")?;
        let oldest = row.try_get::<f64, _>("oldest")?;
        Ok(QueueGauges {
            due: due + new.try_get::<i64, _>("n")?,
            scheduled: row.try_get("scheduled")?,
            leased: row.try_get("leased")?,
            waiting: row.try_get("waiting")?,
            parked: row.try_get("parked")?,
            oldest_due_age_seconds: oldest.max(new.try_get::<f64, _>("oldest")?).max(0.0),
            oldest_waiting_age_seconds: row.try_get::<f64, _>("oldest_waiting")?.max(0.0),
        })
    }

    async fn lags(&self) -> Result<Vec<ProjectionLag>, sqlx::Error> {
        // The deliveries projections follow messages' events too (the
        // deliveries they list, ADR 0019): the further behind of the two.
        let (mut names, mut types): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        for (name, aggregate_type) in &self.projections {
            names.push(name.clone());
            types.push(aggregate_type.to_string());
            if *aggregate_type == "Delivery" {
                names.push(name.clone());
                types.push("Message".to_string());
            }
        }
        // Both lateral lookups are short range scans of
        // `events_type_commit_order` (see `log_reader`).
        let rows = sqlx::query(
            "SELECT p.name,
                    max(GREATEST(COALESCE(head.global_position - COALESCE(c.last_position, 0), 0), 0)) AS positions,
                    max(COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - next.recorded_at)::float8, 0), 0)) AS seconds
               FROM UNNEST($1::text[], $2::text[]) AS p(name, type)
               LEFT JOIN projection_checkpoints c ON c.name = p.name
               LEFT JOIN LATERAL (
                    SELECT e.global_position FROM events e
                     WHERE (e.aggregate_type, e.tx_id, e.global_position)
                           <= (p.type, '18446744073709551615'::xid8, 9223372036854775807)
                       AND (e.aggregate_type, e.tx_id, e.global_position)
                           > (p.type, '0'::xid8, -9223372036854775808)
                     ORDER BY e.aggregate_type DESC, e.tx_id DESC, e.global_position DESC LIMIT 1) head ON true
               LEFT JOIN LATERAL (
                    SELECT e.recorded_at FROM events e
                     WHERE (e.aggregate_type, e.tx_id, e.global_position)
                           > (p.type, COALESCE(c.last_tx_id, '0'::xid8), COALESCE(c.last_position, 0))
                       AND (e.aggregate_type, e.tx_id, e.global_position)
                           <= (p.type, '18446744073709551615'::xid8, 9223372036854775807)
                     ORDER BY e.aggregate_type, e.tx_id, e.global_position LIMIT 1) next ON true
              GROUP BY p.name
              ORDER BY p.name",
        )
        .bind(&names)
        .bind(&types)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ProjectionLag {
                    name: row.try_get("name")?,
                    positions: row.try_get("positions")?,
                    seconds: row.try_get("seconds")?,
                })
            })
            .collect()
    }

    async fn subscriptions(&self) -> Result<Vec<(&'static str, i64)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE s.status = 'active' AND NOT s.open) AS active,
                    count(*) FILTER (WHERE s.status = 'active' AND s.open) AS circuit_open,
                    count(*) FILTER (WHERE s.status = 'disabled') AS disabled
               FROM (SELECT status,
                            (state -> 'circuit' IS NOT NULL AND state -> 'circuit' <> 'null'::jsonb) AS open
                       FROM subscriptions_view WHERE status <> 'deleted') s",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(vec![
            ("active", row.try_get("active")?),
            ("circuit_open", row.try_get("circuit_open")?),
            ("disabled", row.try_get("disabled")?),
        ])
    }
}
