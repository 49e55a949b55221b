//! Delivery read models and the due queue's lease operations.

use super::log_reader::unavailable;
use super::time_page::TimePage;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{
    AttemptCursor, AttemptListQuery, AttemptListRow, AttemptRecord, AttemptResult,
    AttemptedMessagesQuery, DeliveryListQuery, DeliveryReadModel, DeliveryRecord, DueDelivery,
    DueQueue, MessageBodies, SubscriptionStats,
};
use hookline_application::AppError;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::{DeliveryId, EventId, EventPattern, SubscriptionId, TenantId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The `deliveries_view` columns a [`DeliveryRecord`] is read from.
pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant_id, subscription_id, event_id, event_type, status, attempts, next_attempt_at, url, \
     request_id, last_status_code, last_error_kind, last_error, created_at, updated_at, delivered_at, resent";
const ATTEMPT_COLUMNS: &str = "id, delivery_id, attempt, subscription_id, request_id, triggered_by, url, started_at, \
     duration_ms, status_code, outcome, error_kind, error_message, response_excerpt, next_attempt_at";

fn status(r: &PgRow, column: &str) -> Result<DeliveryStatus, sqlx::Error> {
    let text: String = r.try_get(column)?;
    DeliveryStatus::parse(&text)
        .ok_or_else(|| sqlx::Error::Decode(format!("{column}: unknown status '{text}'").into()))
}

fn error_kind(r: &PgRow, column: &str) -> Result<Option<ErrorKind>, sqlx::Error> {
    let text: Option<String> = r.try_get(column)?;
    text.map(|t| {
        ErrorKind::parse(&t).ok_or_else(|| {
            sqlx::Error::Decode(format!("{column}: unknown error kind '{t}'").into())
        })
    })
    .transpose()
}

/// A `deliveries_view` row (selected with [`DELIVERY_COLUMNS`]).
pub(crate) fn delivery(r: &PgRow) -> Result<DeliveryRecord, sqlx::Error> {
    Ok(DeliveryRecord {
        id: DeliveryId::from_uuid(r.try_get("id")?),
        tenant_id: TenantId::from_uuid(r.try_get("tenant_id")?),
        subscription_id: SubscriptionId::from_uuid(r.try_get("subscription_id")?),
        event_id: EventId::from_uuid(r.try_get("event_id")?),
        event_type: r.try_get("event_type")?,
        status: status(r, "status")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        url: r.try_get("url")?,
        request_id: r.try_get("request_id")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error_kind: error_kind(r, "last_error_kind")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        delivered_at: r.try_get("delivered_at")?,
        resent: r.try_get("resent")?,
    })
}

fn attempt(r: &PgRow) -> Result<AttemptRecord, sqlx::Error> {
    Ok(AttemptRecord {
        id: r.try_get("id")?,
        delivery_id: DeliveryId::from_uuid(r.try_get("delivery_id")?),
        attempt: r.try_get("attempt")?,
        subscription_id: SubscriptionId::from_uuid(r.try_get("subscription_id")?),
        request_id: r.try_get("request_id")?,
        triggered_by: r.try_get("triggered_by")?,
        url: r.try_get("url")?,
        started_at: r.try_get("started_at")?,
        duration_ms: r.try_get("duration_ms")?,
        status_code: r.try_get("status_code")?,
        outcome: status(r, "outcome")?,
        error_kind: error_kind(r, "error_kind")?,
        error_message: r.try_get("error_message")?,
        response_excerpt: r.try_get("response_excerpt")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

fn all<T>(rows: &[PgRow], f: fn(&PgRow) -> Result<T, sqlx::Error>) -> Result<Vec<T>, AppError> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(unavailable)
}

/// The ids of a message's deliveries, found without an index by message
/// (one would cost an entry per delivery): those made by publishing it
/// were created when it was published (the tenant + creation-time index,
/// a millisecond either side against rounding), those resent later are
/// flagged and indexed apart (`deliveries_view_resent`).
fn push_message_deliveries(sql: &mut QueryBuilder<'_, Postgres>, tenant: TenantId, event: EventId) {
    sql.push(
        "SELECT p.id FROM messages_view m
           JOIN deliveries_view p ON p.tenant_id = m.tenant_id AND p.event_id = m.id
            AND p.created_at BETWEEN m.published_at - interval '1 millisecond'
                                 AND m.published_at + interval '1 millisecond'
          WHERE m.id = ",
    )
    .push_bind(*event.as_uuid())
    .push(" AND m.tenant_id = ")
    .push_bind(*tenant.as_uuid())
    .push(" UNION SELECT r.id FROM deliveries_view r WHERE r.resent AND r.event_id = ")
    .push_bind(*event.as_uuid())
    .push(" AND r.tenant_id = ")
    .push_bind(*tenant.as_uuid());
}

/// Only deliveries (the `deliveries_view` rows aliased `alias`) of
/// messages of these types, or published on this channel.
fn push_message_filters(
    sql: &mut QueryBuilder<'_, Postgres>,
    alias: &str,
    event_types: Option<&Vec<String>>,
    channel: Option<&String>,
) {
    if let Some(types) = event_types {
        sql.push(format!(" AND {alias}.event_type = ANY("))
            .push_bind(types.clone())
            .push(")");
    }
    if let Some(channel) = channel {
        sql.push(format!(
            " AND EXISTS (SELECT 1 FROM messages_view mf WHERE mf.id = {alias}.event_id AND mf.tenant_id = {alias}.tenant_id AND "
        ))
        .push_bind(channel.clone())
        .push(" = ANY(mf.channels))");
    }
}

/// `columns` (a `, `-separated list) qualified by the table alias `alias`.
fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `LIKE` pattern for names starting with `prefix.` (escaping `_` and `%`).
fn like_prefix(prefix: &str) -> String {
    let escaped = prefix
        .replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%");
    format!("{escaped}.%")
}

#[derive(Debug, Clone)]
pub struct PgDeliveryReadModel {
    pool: PgPool,
}

impl PgDeliveryReadModel {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl DeliveryReadModel for PgDeliveryReadModel {
    async fn get(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Option<DeliveryRecord>, AppError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries_view WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id.as_uuid())
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(delivery).transpose().map_err(unavailable)
    }

    async fn list(
        &self,
        tenant: TenantId,
        q: &DeliveryListQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let mut sql: QueryBuilder<'_, Postgres> = QueryBuilder::new(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries_view WHERE tenant_id = "
        ));
        sql.push_bind(tenant.as_uuid());
        match &q.event_type {
            None | Some(EventPattern::All) => {}
            Some(EventPattern::Prefix(prefix)) => {
                sql.push(" AND event_type LIKE ")
                    .push_bind(like_prefix(prefix));
            }
            Some(EventPattern::Exact(name)) => {
                sql.push(" AND event_type = ").push_bind(name.to_string());
            }
        }
        if let Some(status) = q.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(sub) = q.subscription_id {
            sql.push(" AND subscription_id = ")
                .push_bind(*sub.as_uuid());
        }
        if let Some(request_id) = &q.request_id {
            sql.push(" AND request_id = ")
                .push_bind(request_id.as_str().to_string());
        }
        if let Some(since) = q.since {
            sql.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(until) = q.until {
            sql.push(" AND created_at < ").push_bind(until);
        }
        if let Some((at, id)) = q.before {
            sql.push(" AND (created_at, id) < (")
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.limit) + 1);
        let rows = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        all(&rows, delivery)
    }

    async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts WHERE tenant_id = $1 AND delivery_id = $2 ORDER BY attempt"
        ))
        .bind(tenant.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        all(&rows, attempt)
    }

    async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts
             WHERE tenant_id = $1 AND (request_id = $2 OR triggered_by = $2)
               AND ($3::timestamptz IS NULL OR (started_at, id) > ($3, $4))
             ORDER BY started_at, id LIMIT $5"
        ))
        .bind(tenant.as_uuid())
        .bind(request_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        all(&rows, attempt)
    }

    async fn count_attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<u64, AppError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM delivery_attempts
             WHERE tenant_id = $1 AND (request_id = $2 OR triggered_by = $2)",
        )
        .bind(tenant.as_uuid())
        .bind(request_id)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn get_many(
        &self,
        tenant: TenantId,
        ids: &[DeliveryId],
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let ids: Vec<Uuid> = ids.iter().map(|d| *d.as_uuid()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries_view WHERE tenant_id = $1 AND id = ANY($2)"
        ))
        .bind(tenant.as_uuid())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        all(&rows, delivery)
    }

    async fn recoverable(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<DeliveryId>, AppError> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM deliveries_view
             WHERE tenant_id = $1 AND subscription_id = $2 AND created_at >= $3
               AND (status IN ('failed', 'abandoned', 'skipped') OR (status = 'pending' AND attempts > 0))
               AND ($4::timestamptz IS NULL OR created_at < $4)
             ORDER BY created_at, id",
        )
        .bind(tenant.as_uuid())
        .bind(subscription.as_uuid())
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(ids.into_iter().map(DeliveryId::from_uuid).collect())
    }

    async fn attempts_matching(
        &self,
        tenant: TenantId,
        q: &AttemptListQuery,
    ) -> Result<Vec<AttemptListRow>, AppError> {
        let columns = prefixed(ATTEMPT_COLUMNS, "a");
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {columns}, d.event_id AS message_id, d.event_type AS message_type
               FROM delivery_attempts a JOIN deliveries_view d ON d.id = a.delivery_id
              WHERE a.tenant_id = "
        ));
        sql.push_bind(*tenant.as_uuid());
        if let Some(event) = q.event_id {
            sql.push(" AND d.event_id = ").push_bind(*event.as_uuid());
            sql.push(" AND a.delivery_id IN (");
            push_message_deliveries(&mut sql, tenant, event);
            sql.push(")");
        }
        if let Some(sub) = q.subscription_id {
            sql.push(" AND a.subscription_id = ")
                .push_bind(*sub.as_uuid());
        }
        if let Some(id) = q.attempt_id {
            sql.push(" AND a.id = ").push_bind(id);
        }
        match q.result {
            Some(AttemptResult::Succeeded) => {
                sql.push(" AND a.outcome = 'delivered'");
            }
            Some(AttemptResult::Failed) => {
                sql.push(" AND a.outcome <> 'delivered'");
            }
            None => {}
        }
        if let Some((lo, hi)) = q.status_codes {
            sql.push(" AND COALESCE(a.status_code, 0) BETWEEN ")
                .push_bind(lo)
                .push(" AND ")
                .push_bind(hi);
        }
        push_message_filters(&mut sql, "d", q.event_types.as_ref(), q.channel.as_ref());
        TimePage {
            since: q.since,
            until: q.until,
            cursor: q.cursor,
            oldest_first: q.oldest_first,
            limit: q.limit,
        }
        .push(&mut sql, "a.started_at", "a.id");
        let rows = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(AttemptListRow {
                    attempt: attempt(r)?,
                    event_id: EventId::from_uuid(r.try_get("message_id")?),
                    event_type: r.try_get("message_type")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn attempt_cursor(
        &self,
        tenant: TenantId,
        attempt: Uuid,
    ) -> Result<Option<AttemptCursor>, AppError> {
        let row: Option<(DateTime<Utc>, Uuid, Uuid)> = sqlx::query_as(
            "SELECT a.started_at, a.subscription_id, d.event_id
               FROM delivery_attempts a JOIN deliveries_view d ON d.id = a.delivery_id
              WHERE a.id = $1 AND a.tenant_id = $2",
        )
        .bind(attempt)
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(row.map(|(started_at, subscription, event)| AttemptCursor {
            started_at,
            subscription_id: SubscriptionId::from_uuid(subscription),
            event_id: EventId::from_uuid(event),
        }))
    }

    async fn went_to(
        &self,
        tenant: TenantId,
        event: EventId,
        subscription: SubscriptionId,
    ) -> Result<bool, AppError> {
        let mut sql: QueryBuilder<Postgres> =
            QueryBuilder::new("SELECT EXISTS (SELECT 1 FROM deliveries_view WHERE id IN (");
        push_message_deliveries(&mut sql, tenant, event);
        sql.push(") AND subscription_id = ")
            .push_bind(*subscription.as_uuid())
            .push(")");
        sql.build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn destinations(
        &self,
        tenant: TenantId,
        event: EventId,
        after: Option<SubscriptionId>,
        backwards: bool,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        let (past, order) = if backwards {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT DISTINCT ON (subscription_id) {DELIVERY_COLUMNS} FROM deliveries_view
              WHERE id IN ("
        ));
        push_message_deliveries(&mut sql, tenant, event);
        sql.push(")");
        if let Some(after) = after {
            sql.push(format!(" AND subscription_id {past} "))
                .push_bind(*after.as_uuid());
        }
        sql.push(format!(
            " ORDER BY subscription_id {order}, created_at DESC, id DESC LIMIT "
        ))
        .push_bind(i64::from(limit) + 1);
        let rows = sql
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        all(&rows, delivery)
    }

    async fn attempted_messages(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        q: &AttemptedMessagesQuery,
    ) -> Result<Vec<DeliveryRecord>, AppError> {
        // A message's place in the list is its first delivery to the
        // subscription, which no resend moves: the page starts past the
        // cursor's message's first delivery.
        let cursor = match q.after {
            None => None,
            Some(event) => {
                let mut sql: QueryBuilder<Postgres> =
                    QueryBuilder::new("SELECT created_at, id FROM deliveries_view WHERE id IN (");
                push_message_deliveries(&mut sql, tenant, event);
                sql.push(") AND subscription_id = ")
                    .push_bind(*subscription.as_uuid())
                    .push(" ORDER BY created_at, id LIMIT 1");
                let row = sql
                    .build()
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(unavailable)?
                    .ok_or_else(|| AppError::not_found("message", event))?;
                Some((
                    row.try_get("created_at").map_err(unavailable)?,
                    row.try_get("id").map_err(unavailable)?,
                ))
            }
        };
        // `f`: a message's first delivery to the subscription. Deliveries
        // made by publishing are first (they are made at the message's
        // publish time); a resend is first only when the subscription got
        // the message neither at publish time nor by an earlier resend.
        // `l`: its latest delivery there (a later resend, or `f` itself),
        // whose status is shown. Resends have an index of their own.
        let latest_columns = prefixed(DELIVERY_COLUMNS, "l");
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {latest_columns} FROM deliveries_view f
              CROSS JOIN LATERAL (
                SELECT {DELIVERY_COLUMNS} FROM deliveries_view x WHERE x.id = f.id
                UNION ALL
                SELECT {DELIVERY_COLUMNS} FROM deliveries_view r
                 WHERE r.resent AND r.event_id = f.event_id AND r.tenant_id = f.tenant_id
                   AND r.subscription_id = f.subscription_id
                   AND (r.created_at, r.id) > (f.created_at, f.id)
                ORDER BY created_at DESC, id DESC LIMIT 1) l
              WHERE f.subscription_id = "
        ));
        sql.push_bind(*subscription.as_uuid())
            .push(" AND f.tenant_id = ")
            .push_bind(*tenant.as_uuid())
            .push(
                " AND (NOT f.resent OR (
                     NOT EXISTS (SELECT 1 FROM deliveries_view e
                        WHERE e.resent AND e.event_id = f.event_id
                          AND e.subscription_id = f.subscription_id
                          AND (e.created_at, e.id) < (f.created_at, f.id))
                     AND NOT EXISTS (SELECT 1 FROM deliveries_view p
                        WHERE p.subscription_id = f.subscription_id AND p.event_id = f.event_id
                          AND NOT p.resent
                          AND p.created_at BETWEEN
                              (SELECT m.published_at FROM messages_view m
                                WHERE m.id = f.event_id AND m.tenant_id = f.tenant_id)
                                - interval '1 millisecond'
                          AND (SELECT m.published_at FROM messages_view m
                                WHERE m.id = f.event_id AND m.tenant_id = f.tenant_id)
                                + interval '1 millisecond')))",
            );
        if let Some(statuses) = &q.statuses {
            let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
            sql.push(" AND l.status = ANY(").push_bind(names).push(")");
        }
        push_message_filters(&mut sql, "f", q.event_types.as_ref(), q.channel.as_ref());
        TimePage {
            since: q.since,
            until: q.until,
            cursor,
            oldest_first: q.oldest_first,
            limit: q.limit,
        }
        .push(&mut sql, "f.created_at", "f.id");
        // The planner cannot tell how soon the page fills and costs the
        // whole subscription: with JIT on (Postgres's default) it would
        // compile the plan first, hundreds of milliseconds for a page read
        // in one.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("SET LOCAL jit = off")
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let rows = sql.build().fetch_all(&mut *tx).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        all(&rows, delivery)
    }

    async fn subscription_stats(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<SubscriptionStats, AppError> {
        let row = sqlx::query(
            "SELECT a.succeeded, a.failed, d.pending, d.skipped
               FROM (SELECT count(*) FILTER (WHERE outcome = 'delivered') AS succeeded,
                            count(*) FILTER (WHERE outcome <> 'delivered') AS failed
                       FROM delivery_attempts
                      WHERE subscription_id = $1 AND tenant_id = $2
                        AND started_at >= $3 AND started_at < $4) a,
                    (SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                            count(*) FILTER (WHERE status = 'skipped') AS skipped
                       FROM deliveries_view
                      WHERE subscription_id = $1 AND tenant_id = $2
                        AND created_at >= $3 AND created_at < $4) d",
        )
        .bind(subscription.as_uuid())
        .bind(tenant.as_uuid())
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let count = |c: &str| row.try_get::<i64, _>(c).map_err(unavailable);
        Ok(SubscriptionStats {
            succeeded: count("succeeded")?,
            failed: count("failed")?,
            pending: count("pending")?,
            skipped: count("skipped")?,
        })
    }
}

/// The due queue: leases with `FOR UPDATE SKIP LOCKED`, so any number of
/// worker processes share it.
#[derive(Debug, Clone)]
pub struct PgDueQueue {
    pool: PgPool,
}

impl PgDueQueue {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl DueQueue for PgDueQueue {
    async fn claim(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, AppError> {
        let rows = sqlx::query(
            "UPDATE delivery_queue q
                SET lease_owner = $1, lease_until = now() + make_interval(secs => $2), waiting = false
              WHERE q.delivery_id IN (
                    SELECT delivery_id FROM delivery_queue
                     WHERE COALESCE(lease_until, due_at) <= now()
                     ORDER BY COALESCE(lease_until, due_at)
                     LIMIT $3
                     FOR UPDATE SKIP LOCKED)
          RETURNING q.delivery_id, q.tenant_id, q.subscription_id, q.event_id, q.event_type, q.attempt, q.body,
                    q.request_id, q.triggered_by",
        )
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                let body: Option<String> = r.try_get("body")?;
                let attempt: i32 = r.try_get("attempt")?;
                Ok(DueDelivery {
                    delivery_id: DeliveryId::from_uuid(r.try_get("delivery_id")?),
                    tenant_id: TenantId::from_uuid(r.try_get("tenant_id")?),
                    subscription_id: SubscriptionId::from_uuid(r.try_get("subscription_id")?),
                    event_id: EventId::from_uuid(r.try_get("event_id")?),
                    event_type: r.try_get("event_type")?,
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    body: body.map(Arc::from),
                    request_id: r.try_get("request_id")?,
                    triggered_by: r.try_get("triggered_by")?,
                    span: None,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn defer(
        &self,
        worker: &str,
        deliveries: &[(DeliveryId, Duration)],
    ) -> Result<(), AppError> {
        let ids: Vec<Uuid> = deliveries.iter().map(|(id, _)| *id.as_uuid()).collect();
        let waits: Vec<f64> = deliveries.iter().map(|(_, d)| d.as_secs_f64()).collect();
        sqlx::query(
            "UPDATE delivery_queue q SET lease_until = now() + make_interval(secs => d.wait), waiting = true
               FROM UNNEST($2::uuid[], $3::float8[]) AS d(id, wait)
              WHERE q.delivery_id = d.id AND q.lease_owner = $1",
        )
        .bind(worker)
        .bind(ids)
        .bind(waits)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn hand_over(
        &self,
        worker: &str,
        deliveries: &[(DueDelivery, Duration)],
    ) -> Result<(), AppError> {
        let n = deliveries.len();
        let mut c = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut attempts, mut bodies, mut requests, mut waits) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (d, wait) in deliveries {
            c.0.push(*d.delivery_id.as_uuid());
            c.1.push(*d.tenant_id.as_uuid());
            c.2.push(*d.subscription_id.as_uuid());
            c.3.push(*d.event_id.as_uuid());
            c.4.push(d.event_type.as_str());
            c.5.push(d.triggered_by.as_deref());
            attempts.push(i32::try_from(d.attempt).unwrap_or(i32::MAX));
            // A delivery its message's event lists (ADR 0019) sends that
            // message's body: none is stored with it (many of one message
            // may be handed over at once).
            bodies.push(if d.delivery_id.listing_message().is_some() {
                None
            } else {
                d.body.as_deref()
            });
            requests.push(d.request_id.as_deref());
            waits.push(wait.as_secs_f64());
        }
        // The body stays with its message; only a delivery enqueued with
        // it inline (1.0, no message) keeps it here.
        sqlx::query(
            "INSERT INTO delivery_queue (delivery_id, tenant_id, subscription_id, event_id, event_type, attempt,
                    due_at, body, request_id, triggered_by, lease_owner, lease_until, waiting)
             SELECT d.id, d.tenant, d.sub, d.event, d.type, d.attempt, now(),
                    CASE WHEN EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'Message'
                                         AND e.aggregate_id = d.event::text AND e.sequence = 1)
                         THEN NULL ELSE d.body END,
                    d.request, d.trigger, $1, now() + make_interval(secs => d.wait), true
               FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::int[], $8::text[],
                           $9::text[], $10::text[], $11::float8[])
                 AS d(id, tenant, sub, event, type, attempt, body, request, trigger, wait)
             ON CONFLICT (delivery_id) DO NOTHING",
        )
        .bind(worker)
        .bind(c.0)
        .bind(c.1)
        .bind(c.2)
        .bind(c.3)
        .bind(c.4)
        .bind(attempts)
        .bind(bodies)
        .bind(requests)
        .bind(c.5)
        .bind(waits)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn forget(&self, attempts: &[(DeliveryId, u32)]) -> Result<(), AppError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let ids: Vec<uuid::Uuid> = attempts.iter().map(|(id, _)| *id.as_uuid()).collect();
        let numbers: Vec<i32> = attempts
            .iter()
            .map(|(_, a)| i32::try_from(*a).unwrap_or(i32::MAX))
            .collect();
        sqlx::query(
            "DELETE FROM delivery_queue q
              USING UNNEST($1::uuid[], $2::int[]) AS f(id, attempt)
              WHERE q.delivery_id = f.id AND q.attempt <= f.attempt",
        )
        .bind(ids)
        .bind(numbers)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn next_due_in(&self) -> Result<Option<Duration>, AppError> {
        let secs: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM (
                    SELECT COALESCE(lease_until, due_at) FROM delivery_queue
                     ORDER BY COALESCE(lease_until, due_at) LIMIT 1) - now())::float8",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(secs.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }
}

/// The bodies of published events, read from their `MessagePublished`
/// events.
#[derive(Debug, Clone)]
pub struct PgMessageBodies {
    pool: PgPool,
}

impl PgMessageBodies {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl MessageBodies for PgMessageBodies {
    async fn bodies(
        &self,
        ids: &[EventId],
    ) -> Result<std::collections::HashMap<EventId, Arc<str>>, AppError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT aggregate_id, payload->>'body' FROM events
              WHERE aggregate_type = 'Message' AND aggregate_id = ANY($1) AND sequence = 1",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, body)| Some((EventId::parse(&id).ok()?, Arc::from(body?))))
            .collect())
    }
}
