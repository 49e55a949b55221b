//! The log for auditors: pages in commit order (the audit API), and the
//! streams behind `hookline audit export|verify|heads`.

use super::checkpoints::parse_xid8;
use super::listing::listing_message_sql;
use super::log_reader::{decode, unavailable};
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use hookline_application::listing::expand_page;
use hookline_application::ports::RequestCounts;
use hookline_application::ports::{
    AuditLog, AuditQuery, Begun, LogArchive, LogPosition, LogSnapshot, StoredEvent, Verifiable,
};
use hookline_application::AppError;
use hookline_domain::{DeliveryId, TenantId, ValidationError};
use sqlx::{PgConnection, PgPool, Row};
use std::sync::LazyLock;

const COLUMNS: &str =
    "global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence, \
                       event_type, event_version, payload, metadata, recorded_at";

/// The next `limit` events after `after` in commit order, below the
/// horizon (see `log_reader`), optionally for one tenant, aggregate type or
/// event type.
///
/// # Errors
/// Database errors.
pub async fn commit_order_page(
    conn: &mut PgConnection,
    tenant: Option<TenantId>,
    after: LogPosition,
    limit: i64,
    aggregate_type: Option<&str>,
    event_type: Option<&str>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM events
          WHERE (tx_id, global_position) > ($1::text::xid8, $2)
            AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
            AND ($3::text IS NULL OR metadata->>'tenant_id' = $3)
            AND ($4::text IS NULL OR aggregate_type = $4)
            AND ($5::text IS NULL OR event_type = $5)
          ORDER BY tx_id, global_position
          LIMIT $6"
    ))
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .bind(tenant.map(|t| t.to_string()))
    .bind(aggregate_type)
    .bind(event_type)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// Every event (or one tenant's) ordered by aggregate and sequence, as a
/// stream, for chain verification. A tenant's are the whole streams of the
/// aggregates it has events in (an aggregate belongs to one tenant): an
/// event whose recorded tenant was changed stays in its chain, which it
/// breaks, instead of leaving the tenant's check unseen.
pub fn by_aggregate<'c>(
    conn: &'c mut PgConnection,
    tenant: Option<TenantId>,
) -> BoxStream<'c, Result<Verifiable, sqlx::Error>> {
    static ALL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {VERIFIED_COLUMNS}, {} FROM events e
              ORDER BY e.aggregate_type, e.aggregate_id, e.sequence",
            begun_by()
        )
    });
    static TENANTS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {VERIFIED_COLUMNS}, {} FROM events e
              WHERE (e.aggregate_type, e.aggregate_id) IN
                    (SELECT aggregate_type, aggregate_id FROM events
                      WHERE metadata->>'tenant_id' = $1
                     UNION
                     -- The deliveries its messages' events list (ADR 0019).
                     SELECT 'Delivery', x->>'id'
                       FROM events m, json_array_elements(m.payload->'deliveries') x
                      WHERE m.aggregate_type = 'Message' AND m.event_version = '1.2'
                        AND m.metadata->>'tenant_id' = $1)
              ORDER BY e.aggregate_type, e.aggregate_id, e.sequence",
            begun_by()
        )
    });
    let query = match tenant {
        None => sqlx::query(ALL.as_str()),
        Some(t) => sqlx::query(TENANTS.as_str()).bind(t.to_string()),
    };
    query
        .fetch(conn)
        .map(|row| {
            row.and_then(|r| {
                let attempted: Option<String> = r.try_get("attempted_by")?;
                let listed: Option<String> = r.try_get("begun_by")?;
                Ok(Verifiable {
                    event: decode(&r)?,
                    begun_by: match (attempted, listed) {
                        (Some(link), _) => Some(Begun { link, held: 2 }),
                        (None, Some(link)) => Some(Begun { link, held: 1 }),
                        (None, None) => None,
                    },
                })
            })
        })
        .boxed()
}

const VERIFIED_COLUMNS: &str = "e.global_position, e.tx_id::text AS tx, e.aggregate_type, \
     e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload, e.metadata, e.recorded_at";

/// A delivery its message's event began (ADR 0019) has no stored first
/// event: its first stored one (and a stored sequence 1, which it must not
/// have) comes with the link of that message's event (`begun_by`), when the
/// event lists it at the place its id gives. A delivery whose first
/// outcome its message's `DeliveriesAttempted` holds (ADR 0023) has no
/// stored sequence 2 either: its first stored one (sequence 3, or a stored
/// 2 or 1, which it must not have) comes with that row's link
/// (`attempted_by`).
fn begun_by() -> String {
    let message = listing_message_sql("e.aggregate_id");
    let listed = "e.aggregate_type = 'Delivery'
                   AND e.aggregate_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$'
                   AND ('x' || right(e.aggregate_id, 8))::bit(32)::int > 0";
    format!(
        "CASE WHEN e.sequence IN (1, 2) AND {listed}
              THEN (SELECT m.metadata->>'chain' FROM events m
                     WHERE m.aggregate_type = 'Message' AND m.aggregate_id = {message}
                       AND m.sequence = 1 AND m.event_type = 'MessagePublished'
                       AND m.event_version = '1.2'
                       AND m.payload->'deliveries'
                             ->(('x' || right(e.aggregate_id, 8))::bit(32)::int - 1)
                             ->>'id' = e.aggregate_id) END AS begun_by,
         CASE WHEN e.sequence IN (1, 2, 3) AND {listed}
              THEN (SELECT a.metadata->>'chain' FROM events a, json_array_elements(a.payload->'outcomes') o
                     WHERE a.aggregate_type = 'Message' AND a.aggregate_id = {message}
                       AND a.sequence > 1 AND a.event_type = 'DeliveriesAttempted'
                       AND o->>'delivery_id' = e.aggregate_id
                     ORDER BY a.sequence LIMIT 1) END AS attempted_by"
    )
}

/// Where the event at `position` stands in commit order.
///
/// # Errors
/// Database errors; `Ok(None)` when there is no such event.
pub async fn position_of(
    conn: &mut PgConnection,
    position: i64,
) -> Result<Option<LogPosition>, sqlx::Error> {
    if position <= 0 {
        return Ok(Some(LogPosition::default()));
    }
    let row = sqlx::query("SELECT tx_id::text AS tx FROM events WHERE global_position = $1")
        .bind(position)
        .fetch_optional(conn)
        .await?;
    row.map(|r| {
        Ok(LogPosition {
            tx_id: parse_xid8(&r.try_get::<String, _>("tx")?)?,
            position,
        })
    })
    .transpose()
}

#[derive(Debug, Clone)]
pub struct PgAuditLog {
    pool: PgPool,
}

impl PgAuditLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl AuditLog for PgAuditLog {
    async fn page(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>, AppError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let after = position_of(&mut conn, q.after)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                AppError::invalid(ValidationError::new(
                    "after",
                    format!(
                        "no event has position {}; pass a position returned as next_after",
                        q.after
                    ),
                ))
            })?;
        commit_order_page(
            &mut conn,
            q.tenant,
            after,
            i64::from(q.limit),
            q.aggregate_type.as_deref(),
            q.event_type.as_deref(),
        )
        .await
        .map_err(unavailable)
    }

    async fn by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        let after = position_of(&mut conn, after)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                AppError::invalid(ValidationError::new(
                    "after",
                    "is not a position returned as next_after",
                ))
            })?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events
              WHERE (metadata->>'request_id' = $2 OR metadata->>'triggered_by' = $2)
                AND metadata->>'tenant_id' = $1
                AND (tx_id, global_position) > ($3::text::xid8, $4)
                AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY tx_id, global_position
              LIMIT $5"
        ))
        .bind(tenant.to_string())
        .bind(request_id)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        let events = rows
            .iter()
            .map(decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        // The deliveries a message's event lists begin there (ADR 0019).
        expand_page(events, limit as usize)
            .map_err(|e| AppError::Internal(format!("a listing message: {e}")))
    }

    async fn request_counts(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<RequestCounts, AppError> {
        // With the deliveries a message's event lists (ADR 0019): each
        // counts as an event (its `DeliveryEnqueued`) and a delivery.
        let (events, deliveries): (i64, i64) = sqlx::query_as(
            "WITH traced AS (
                  SELECT aggregate_type, aggregate_id, event_type, event_version, payload FROM events
                   WHERE (metadata->>'request_id' = $2 OR metadata->>'triggered_by' = $2)
                     AND metadata->>'tenant_id' = $1),
                  listed AS (
                  SELECT x->>'id' AS id FROM traced t, json_array_elements(t.payload->'deliveries') x
                   WHERE t.aggregate_type = 'Message' AND t.event_version = '1.2'),
                  -- A message's row of first outcomes counts as those (ADR 0023).
                  attempted AS (
                  SELECT json_array_length(t.payload->'outcomes') - 1 AS more FROM traced t
                   WHERE t.aggregate_type = 'Message' AND t.event_type = 'DeliveriesAttempted')
             SELECT (SELECT count(*) FROM traced) + (SELECT count(*) FROM listed)
                    + (SELECT COALESCE(sum(more), 0) FROM attempted),
                    (SELECT count(*) FROM (SELECT aggregate_id FROM traced WHERE aggregate_type = 'Delivery'
                                           UNION SELECT id FROM listed) d)",
        )
        .bind(tenant.to_string())
        .bind(request_id)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(RequestCounts {
            events: u64::try_from(events).unwrap_or_default(),
            deliveries: u64::try_from(deliveries).unwrap_or_default(),
        })
    }

    async fn deliveries_of_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: Option<DeliveryId>,
        limit: u32,
    ) -> Result<Vec<DeliveryId>, AppError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM (
                  SELECT aggregate_id AS id FROM events
                   WHERE aggregate_type = 'Delivery'
                     AND (metadata->>'request_id' = $2 OR metadata->>'triggered_by' = $2)
                     AND metadata->>'tenant_id' = $1
                  UNION
                  -- The deliveries a message's event lists (ADR 0019).
                  SELECT x->>'id' FROM events m, json_array_elements(m.payload->'deliveries') x
                   WHERE m.aggregate_type = 'Message' AND m.event_version = '1.2'
                     AND (m.metadata->>'request_id' = $2 OR m.metadata->>'triggered_by' = $2)
                     AND m.metadata->>'tenant_id' = $1) d
              WHERE id > $3
              ORDER BY id LIMIT $4",
        )
        .bind(tenant.to_string())
        .bind(request_id)
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(ids
            .iter()
            .filter_map(|id| DeliveryId::parse(id).ok())
            .collect())
    }
}

/// The whole log for auditors' tools, each read on a connection of its own
/// (if it drops, the command fails instead of carrying on with another).
#[derive(Debug, Clone)]
pub struct PgLogArchive {
    options: sqlx::postgres::PgConnectOptions,
}

impl PgLogArchive {
    pub fn new(options: sqlx::postgres::PgConnectOptions) -> Self {
        Self { options }
    }

    async fn connect(&self, name: &str) -> Result<PgConnection, AppError> {
        use sqlx::ConnectOptions;
        self.options
            .clone()
            .application_name(name)
            .connect()
            .await
            .map_err(unavailable)
    }
}

/// A repeatable-read transaction on its own connection.
struct PgSnapshot {
    conn: PgConnection,
}

#[async_trait]
impl LogSnapshot for PgSnapshot {
    async fn position_of(&mut self, position: i64) -> Result<Option<LogPosition>, AppError> {
        position_of(&mut self.conn, position)
            .await
            .map_err(unavailable)
    }

    async fn page(
        &mut self,
        tenant: Option<TenantId>,
        after: LogPosition,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        commit_order_page(&mut self.conn, tenant, after, i64::from(limit), None, None)
            .await
            .map_err(unavailable)
    }

    async fn close(mut self: Box<Self>) -> Result<(), AppError> {
        sqlx::query("COMMIT")
            .execute(&mut self.conn)
            .await
            .map_err(unavailable)?;
        use sqlx::Connection;
        drop(self.conn.close().await);
        Ok(())
    }
}

#[async_trait]
impl LogArchive for PgLogArchive {
    async fn unseen(
        &self,
        tenant: Option<TenantId>,
    ) -> Result<Vec<(String, String, i64, i64)>, AppError> {
        // A committed transaction's id is below the horizon of every
        // snapshot taken after it: one at or beyond it was written there.
        let mut conn = self.connect("hookline-audit-verify").await?;
        let rows = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, global_position FROM events
              WHERE tx_id >= pg_snapshot_xmax(pg_current_snapshot())
                AND ($1::text IS NULL OR (aggregate_type, aggregate_id) IN
                     (SELECT aggregate_type, aggregate_id FROM events
                       WHERE metadata->>'tenant_id' = $1))
              ORDER BY tx_id, global_position
              LIMIT 100",
        )
        .bind(tenant.map(|t| t.to_string()))
        .fetch_all(&mut conn)
        .await
        .map_err(unavailable)?;
        drop(sqlx::Connection::close(conn).await);
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("aggregate_type")?,
                    r.try_get("aggregate_id")?,
                    r.try_get("sequence")?,
                    r.try_get("global_position")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn snapshot(&self) -> Result<Box<dyn LogSnapshot>, AppError> {
        let mut conn = self.connect("hookline-audit-export").await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(Box::new(PgSnapshot { conn }))
    }

    fn by_aggregate(
        &self,
        tenant: Option<TenantId>,
    ) -> BoxStream<'static, Result<Verifiable, AppError>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Verifiable, AppError>>(1000);
        let archive = self.clone();
        tokio::spawn(async move {
            let mut conn = match archive.connect("hookline-audit-verify").await {
                Ok(c) => c,
                Err(e) => {
                    drop(tx.send(Err(e)).await);
                    return;
                }
            };
            let mut rows = by_aggregate(&mut conn, tenant);
            while let Some(row) = rows.next().await {
                if tx.send(row.map_err(unavailable)).await.is_err() {
                    return;
                }
            }
        });
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed()
    }
}
