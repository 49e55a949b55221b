//! Flow control in Postgres: rate-limit slots (`subscription_pacing`),
//! parking an open circuit's deliveries in the due queue (leased to
//! `circuit` until the next probe), and the flow controller's lookups over
//! `subscription_health` and `subscriptions_view`.

use super::log_reader::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{Failing, FlowControl, ProbeDue, Recovered, Reservation};
use hookline_application::AppError;
use hookline_domain::subscription::FailureCause;
use hookline_domain::{DeliveryId, SubscriptionId, TenantId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// The lease owner of parked deliveries.
pub const PARKED: &str = "circuit";

/// An open circuit, in SQL over `subscriptions_view s` (matches the
/// partial index `subscriptions_view_circuit_open`).
const CIRCUIT_OPEN: &str =
    "s.state -> 'circuit' IS NOT NULL AND s.state -> 'circuit' <> 'null'::jsonb";

#[derive(Debug, Clone)]
pub struct PgFlowControl {
    pool: PgPool,
}

impl PgFlowControl {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn failing(row: &PgRow) -> Result<Failing, AppError> {
    let last: Option<serde_json::Value> = row.try_get("last_failure").map_err(unavailable)?;
    let consecutive: i32 = row.try_get("consecutive_failures").map_err(unavailable)?;
    Ok(Failing {
        subscription_id: SubscriptionId::from_uuid(
            row.try_get("subscription_id").map_err(unavailable)?,
        ),
        tenant_id: TenantId::from_uuid(row.try_get("tenant_id").map_err(unavailable)?),
        consecutive_failures: u32::try_from(consecutive).unwrap_or(0),
        failing_since: row.try_get("failing_since").map_err(unavailable)?,
        last_failure: last.and_then(|v| serde_json::from_value::<FailureCause>(v).ok()),
    })
}

#[async_trait]
impl FlowControl for PgFlowControl {
    async fn reserve(
        &self,
        wants: &[(SubscriptionId, u32, Duration)],
        horizon: Duration,
    ) -> Result<HashMap<SubscriptionId, Reservation>, AppError> {
        if wants.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = wants.iter().map(|w| *w.0.as_uuid()).collect();
        let spans: Vec<f64> = wants
            .iter()
            .map(|w| w.2.as_secs_f64() * f64::from(w.1))
            .collect();
        // Each subscription's slots start where the last reservation (by
        // any worker) ended, or now, unless that end is `horizon` or more
        // ahead: then nothing is reserved and its end is answered. The row
        // is locked for the statement, so concurrent reservations queue up
        // behind each other. (`taken` reads the rows as they were before
        // this statement: the end of the slots already reserved.)
        let rows = sqlx::query(
            "WITH reserved AS (
                  INSERT INTO subscription_pacing AS p (subscription_id, next_at)
                  SELECT w.id, now() + make_interval(secs => w.span)
                    FROM UNNEST($1::uuid[], $2::float8[]) AS w(id, span)
                  ON CONFLICT (subscription_id) DO UPDATE
                    SET next_at = GREATEST(p.next_at, now()) + (EXCLUDED.next_at - now())
                    WHERE p.next_at < now() + make_interval(secs => $3)
                  RETURNING p.subscription_id, p.next_at)
             SELECT w.id, r.next_at AS reserved_until, taken.next_at AS taken_until
               FROM UNNEST($1::uuid[]) AS w(id)
               LEFT JOIN reserved r ON r.subscription_id = w.id
               LEFT JOIN subscription_pacing taken ON taken.subscription_id = w.id",
        )
        .bind(&ids)
        .bind(&spans)
        .bind(horizon.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let span_of: HashMap<Uuid, f64> = ids.into_iter().zip(spans).collect();
        let mut out = HashMap::new();
        for row in rows {
            let id: Uuid = row.try_get("id").map_err(unavailable)?;
            let reserved: Option<DateTime<Utc>> =
                row.try_get("reserved_until").map_err(unavailable)?;
            let taken: Option<DateTime<Utc>> = row.try_get("taken_until").map_err(unavailable)?;
            let answer = match (reserved, taken) {
                (Some(end), _) => {
                    let span = span_of.get(&id).copied().unwrap_or_default();
                    let span = chrono::Duration::microseconds((span * 1e6) as i64);
                    Reservation::From(end - span)
                }
                (None, Some(until)) => Reservation::Busy(until),
                // Neither reserved nor there: cannot happen (an insert
                // always reserves); answered as busy now, to try again.
                (None, None) => Reservation::Busy(Utc::now()),
            };
            out.insert(SubscriptionId::from_uuid(id), answer);
        }
        Ok(out)
    }

    async fn park(
        &self,
        subscription: SubscriptionId,
        until: DateTime<Utc>,
    ) -> Result<u64, AppError> {
        // Deliveries a worker holds for an attempt right now keep their
        // lease; the worker parks them if they come back.
        let done = sqlx::query(
            "UPDATE delivery_queue SET lease_owner = $2, lease_until = $3
              WHERE subscription_id = $1
                AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until <= now())",
        )
        .bind(subscription.as_uuid())
        .bind(PARKED)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn hold(
        &self,
        worker: &str,
        deliveries: &[DeliveryId],
        until: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let ids: Vec<Uuid> = deliveries.iter().map(|d| *d.as_uuid()).collect();
        // The worker's view of the circuit may trail its close: parked only
        // while the read model still shows it open, due now otherwise.
        sqlx::query(&format!(
            "UPDATE delivery_queue q
                SET lease_owner = CASE WHEN o.open THEN $3 END,
                    lease_until = CASE WHEN o.open THEN $4 END
               FROM (SELECT s.id, {CIRCUIT_OPEN} AS open FROM subscriptions_view s) o
              WHERE q.delivery_id = ANY($1) AND q.lease_owner = $2 AND o.id = q.subscription_id"
        ))
        .bind(&ids)
        .bind(worker)
        .bind(PARKED)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn unpark(&self, subscription: SubscriptionId) -> Result<u64, AppError> {
        let done = sqlx::query(
            "UPDATE delivery_queue SET lease_owner = NULL, lease_until = NULL
              WHERE subscription_id = $1 AND lease_owner = $2",
        )
        .bind(subscription.as_uuid())
        .bind(PARKED)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn unpark_closed(&self, subscription: SubscriptionId) -> Result<Option<u64>, AppError> {
        let done = sqlx::query_scalar::<_, Option<i64>>(&format!(
            "WITH closed AS (SELECT 1 FROM subscriptions_view s WHERE s.id = $1 AND NOT ({CIRCUIT_OPEN})),
                  released AS (UPDATE delivery_queue SET lease_owner = NULL, lease_until = NULL
                                WHERE subscription_id = $1 AND lease_owner = $2
                                  AND EXISTS (SELECT 1 FROM closed)
                               RETURNING 1)
             SELECT CASE WHEN EXISTS (SELECT 1 FROM closed) THEN (SELECT count(*) FROM released) END"
        ))
        .bind(subscription.as_uuid())
        .bind(PARKED)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.map(|n| u64::try_from(n).unwrap_or(0)))
    }

    async fn release_probe(
        &self,
        subscription: SubscriptionId,
        probe: DeliveryId,
        others_until: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "UPDATE delivery_queue SET lease_owner = NULL, lease_until = NULL
              WHERE delivery_id = $1 AND lease_owner = $2",
        )
        .bind(probe.as_uuid())
        .bind(PARKED)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "UPDATE delivery_queue SET lease_owner = $3, lease_until = $4
              WHERE subscription_id = $1 AND delivery_id <> $2
                AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until <= now())",
        )
        .bind(subscription.as_uuid())
        .bind(probe.as_uuid())
        .bind(PARKED)
        .bind(others_until)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn failing(&self, threshold: u32) -> Result<Vec<Failing>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT h.subscription_id, h.tenant_id, h.consecutive_failures, h.failing_since, h.last_failure
               FROM subscription_health h JOIN subscriptions_view s ON s.id = h.subscription_id
              WHERE h.consecutive_failures > 0 AND h.consecutive_failures >= $1
                AND s.status = 'active' AND NOT ({CIRCUIT_OPEN})"
        ))
        .bind(i32::try_from(threshold).unwrap_or(i32::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(failing).collect()
    }

    async fn failing_since(&self, since: DateTime<Utc>) -> Result<Vec<Failing>, AppError> {
        let rows = sqlx::query(
            "SELECT h.subscription_id, h.tenant_id, h.consecutive_failures, h.failing_since, h.last_failure
               FROM subscription_health h JOIN subscriptions_view s ON s.id = h.subscription_id
              WHERE h.consecutive_failures > 0 AND h.failing_since <= $1 AND s.status = 'active'",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(failing).collect()
    }

    async fn probes_due(&self, now: DateTime<Utc>) -> Result<Vec<ProbeDue>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT s.id, s.tenant_id, (s.state -> 'circuit' ->> 'probes')::int AS probes,
                    next.delivery_id, next.due_at
               FROM subscriptions_view s
               CROSS JOIN LATERAL (SELECT q.delivery_id, q.due_at FROM delivery_queue q
                                    WHERE q.subscription_id = s.id
                                    ORDER BY q.due_at, q.delivery_id LIMIT 1) next
              WHERE {CIRCUIT_OPEN} AND s.status = 'active'
                AND (s.state -> 'circuit' ->> 'next_probe_at')::timestamptz <= $1"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let probes: Option<i32> = r.try_get("probes").map_err(unavailable)?;
                Ok(ProbeDue {
                    subscription_id: SubscriptionId::from_uuid(
                        r.try_get("id").map_err(unavailable)?,
                    ),
                    tenant_id: TenantId::from_uuid(r.try_get("tenant_id").map_err(unavailable)?),
                    probes: probes.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                    delivery_id: DeliveryId::from_uuid(
                        r.try_get("delivery_id").map_err(unavailable)?,
                    ),
                    due_at: r.try_get("due_at").map_err(unavailable)?,
                })
            })
            .collect()
    }

    async fn recovered(&self) -> Result<Vec<Recovered>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT s.id, s.tenant_id, h.last_success_delivery
               FROM subscriptions_view s JOIN subscription_health h ON h.subscription_id = s.id
              WHERE {CIRCUIT_OPEN}
                AND h.last_success_at >= (s.state -> 'circuit' ->> 'opened_at')::timestamptz"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let delivery: Option<Uuid> =
                    r.try_get("last_success_delivery").map_err(unavailable)?;
                Ok(Recovered {
                    subscription_id: SubscriptionId::from_uuid(
                        r.try_get("id").map_err(unavailable)?,
                    ),
                    tenant_id: TenantId::from_uuid(r.try_get("tenant_id").map_err(unavailable)?),
                    delivery_id: delivery.map(DeliveryId::from_uuid),
                })
            })
            .collect()
    }

    async fn backlog(
        &self,
        subscriptions: &[SubscriptionId],
    ) -> Result<HashMap<SubscriptionId, u64>, AppError> {
        if subscriptions.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = subscriptions.iter().map(|s| *s.as_uuid()).collect();
        let rows = sqlx::query(
            "SELECT subscription_id, count(*) AS n FROM delivery_queue
              WHERE subscription_id = ANY($1) GROUP BY subscription_id",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n").map_err(unavailable)?;
                Ok((
                    SubscriptionId::from_uuid(r.try_get("subscription_id").map_err(unavailable)?),
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }
}
