//! Reading the log in commit order.
//!
//! Consumers read `WHERE (tx_id, global_position) > checkpoint AND tx_id <
//! pg_snapshot_xmin(pg_current_snapshot())`. Identity values are handed out
//! before commit, so a slow transaction can commit an event with a lower
//! position after a faster one with a higher position; reading only below the
//! oldest running transaction id means such an event is never skipped.

use super::checkpoints::parse_xid8;
use async_trait::async_trait;
use cqrs_es::Aggregate;
use hookline_application::history::FROM_START;
use hookline_application::listing::delivery_events_of;
use hookline_application::ports::{EventLog, LogPosition, StoredEvent, StoredJson};
use hookline_application::AppError;
use hookline_domain::delivery::Delivery;
use hookline_domain::message::Message;
use hookline_domain::TenantId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// [`COLUMNS`] of `Message` events for readers of the deliveries they list
/// (ADR 0019): no payload for a message that lists none, and a large
/// message's without its body (a batch would otherwise read, and hold,
/// thousands of bodies for nothing; a small one is cheaper sent whole).
/// A payload stored small and uncompressed is known small without
/// casting it to text (a compressed one may be large whatever its stored
/// size).
pub(crate) const LISTING_COLUMNS: &str =
    "global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, \
     CASE WHEN event_type = 'DeliveriesAttempted' THEN payload \
          WHEN event_version <> '1.2' THEN '{}'::json \
          WHEN pg_column_size(payload) <= 8192 AND pg_column_compression(payload) IS NULL THEN payload \
          WHEN octet_length(payload::text) > 8192 THEN (payload::jsonb - 'body')::json \
          ELSE payload END AS payload, \
     metadata, recorded_at";

pub(crate) const COLUMNS: &str =
    "global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence, \
                       event_type, event_version, payload, metadata, recorded_at";

/// A `json` (or `jsonb`) column kept as its text, which Postgres checked
/// when it was stored.
fn stored_json(row: &PgRow, column: &str) -> Result<StoredJson, sqlx::Error> {
    use sqlx::postgres::PgValueFormat;
    use sqlx::{TypeInfo, ValueRef};
    let undecodable = |source: sqlx::error::BoxDynError| sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source,
    };
    let value = row.try_get_raw(column)?;
    let jsonb = match value.type_info().name() {
        "JSON" => false,
        "JSONB" => true,
        other => return Err(undecodable(format!("{other} is not json").into())),
    };
    let mut bytes = value.as_bytes().map_err(undecodable)?;
    if jsonb && value.format() == PgValueFormat::Binary {
        // jsonb's binary form is a version byte (1), then the text.
        match bytes.split_first() {
            Some((1, text)) => bytes = text,
            _ => return Err(undecodable("unknown jsonb version".into())),
        }
    }
    let text = std::str::from_utf8(bytes).map_err(|e| undecodable(Box::new(e)))?;
    Ok(StoredJson::from_log_text(text.to_owned()))
}

/// # Errors
/// Decode errors for rows that do not have the log's shape.
pub fn decode(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        position: row.try_get("global_position")?,
        tx_id: parse_xid8(&row.try_get::<String, _>("tx")?)?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: stored_json(row, "payload")?,
        metadata: stored_json(row, "metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// [`COLUMNS`] for the projections of one aggregate type: a message's
/// `DeliveriesAttempted` holds its deliveries' events, none of the
/// message's own (ADR 0023), so its payload is left unread.
const TYPED_COLUMNS: &str =
    "global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, \
     CASE WHEN event_type = 'DeliveriesAttempted' THEN '{}'::json ELSE payload END AS payload, \
     metadata, recorded_at";

/// Parameters: transaction id (text), position, limit, and with `typed`
/// the aggregate type.
pub fn read_after_sql(typed: bool) -> String {
    if typed {
        format!(
            "SELECT {TYPED_COLUMNS} FROM events
             WHERE (aggregate_type, tx_id, global_position) > ($4, $1::text::xid8, $2)
               AND (aggregate_type, tx_id) < ($4, pg_snapshot_xmin(pg_current_snapshot()))
             ORDER BY aggregate_type, tx_id, global_position
             LIMIT $3"
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY tx_id, global_position
             LIMIT $3"
        )
    }
}

/// The next events after `after` in commit order, only from transactions
/// that can no longer be followed by an earlier-positioned commit.
///
/// # Errors
/// Database errors.
pub async fn read_after(
    conn: &mut PgConnection,
    after: LogPosition,
    aggregate_type: Option<&str>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = read_after_sql(aggregate_type.is_some());
    let mut query = sqlx::query(&sql)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(limit);
    if let Some(t) = aggregate_type {
        query = query.bind(t);
    }
    query.fetch_all(conn).await?.iter().map(decode).collect()
}

/// The events of the deliveries projection after `after` in commit order:
/// `Delivery` events, and in the place of each `Message` event the
/// `DeliveryEnqueued` of the deliveries it lists (ADR 0019; none before
/// 1.2). Both types are read below one horizon, as far as both reads
/// reach. Also the position of the last stored row read (a message's),
/// to move the checkpoint to.
///
/// # Errors
/// Database errors, or a listing message that cannot be read.
pub async fn read_deliveries_after(
    conn: &mut PgConnection,
    after: LogPosition,
    limit: i64,
) -> Result<DeliveriesRead, sqlx::Error> {
    // One statement: both ranges below the one horizon of its snapshot.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let range = |columns: &str, aggregate_type: &str| {
            format!(
                "(SELECT {columns} FROM events
                   WHERE (aggregate_type, tx_id, global_position) > ('{aggregate_type}', $1::text::xid8, $2)
                     AND (aggregate_type, tx_id) < ('{aggregate_type}', pg_snapshot_xmin(pg_current_snapshot()))
                   ORDER BY aggregate_type, tx_id, global_position
                   LIMIT $3)"
            )
        };
        format!(
            "{} UNION ALL {}",
            range(COLUMNS, Delivery::TYPE),
            range(LISTING_COLUMNS, Message::TYPE)
        )
    });
    let rows = sqlx::query(SQL.as_str())
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    let (mut deliveries, mut messages) = (Vec::new(), Vec::new());
    for row in &rows {
        let event = decode(row)?;
        if event.aggregate_type == Message::TYPE {
            messages.push(event);
        } else {
            deliveries.push(event);
        }
    }
    let reads = vec![deliveries, messages];
    merge_deliveries(reads, limit)
}

/// What [`read_deliveries_after`] read: the events as the deliveries
/// projection sees them, the position of the last stored row, and how
/// many stored rows (a full batch is one of `limit` rows).
pub type DeliveriesRead = (Vec<StoredEvent>, Option<LogPosition>, usize);

/// Reads of `Delivery` and `Message` events in one range, each cut at
/// `limit`, as the deliveries projection sees them (see
/// [`read_deliveries_after`]), with the position of the last row taken.
///
/// # Errors
/// A listing message that cannot be read.
pub fn merge_deliveries(
    reads: Vec<Vec<StoredEvent>>,
    limit: i64,
) -> Result<DeliveriesRead, sqlx::Error> {
    // A full read may stop short of what the other reached: nothing past
    // the nearer end is taken.
    let end = reads
        .iter()
        .filter(|r| r.len() as i64 >= limit)
        .filter_map(|r| r.last().map(StoredEvent::log_position))
        .min();
    let mut rows: Vec<StoredEvent> = reads
        .into_iter()
        .flatten()
        .filter(|e| end.is_none_or(|end| e.log_position() <= end))
        .collect();
    rows.sort_by_key(StoredEvent::log_position);
    let last = rows.last().map(StoredEvent::log_position);
    let read = rows.len();
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        if row.aggregate_type == Message::TYPE {
            events.extend(delivery_events_of(&row).map_err(|e| {
                sqlx::Error::Decode(
                    format!(
                        "event at position {} ({}) cannot be read: {e}",
                        row.position, row.event_type
                    )
                    .into(),
                )
            })?);
        } else {
            events.push(row);
        }
    }
    Ok((events, last, read))
}

/// The log read directly, for histories.
#[derive(Debug, Clone)]
pub struct PgEventLog {
    pool: PgPool,
}

impl PgEventLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

pub fn unavailable(e: sqlx::Error) -> AppError {
    if is_unavailable(&e) {
        AppError::Unavailable(format!("database: {e}"))
    } else {
        AppError::Internal(format!("database: {e}"))
    }
}

/// Whether `e` says the database cannot be reached or used right now
/// (rather than that a statement is wrong): no connection, a connection
/// lost, or the server refusing work while it stops, crashes, recovers
/// or runs out of connections (SQLSTATE classes 08 and 57, 53300). A
/// retry later may work, so it is a 503, not a 500.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57") || code == "53300"
        }),
        _ => false,
    }
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn aggregate_history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, AppError> {
        self.aggregate_history_after(aggregate_type, aggregate_id, FROM_START, u32::MAX)
            .await
    }

    async fn aggregate_history_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
              ORDER BY sequence LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let events: Vec<StoredEvent> = rows
            .iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(unavailable)?;
        if aggregate_type != Delivery::TYPE || after >= 2 || limit == 0 {
            return Ok(events);
        }
        let ids = [aggregate_id.to_string()];
        let mut events = if after < 1 {
            // A delivery its message's event began (ADR 0019).
            super::listing::with_listed_beginnings(&self.pool, &ids, events, Vec::new())
                .await
                .map_err(unavailable)?
        } else {
            events
        };
        // Its first outcome kept in its message's stream (ADR 0023), unless
        // it is stored as the delivery's own: then no message row holds it
        // (a delivery of a message of one or of more than sixteen, a
        // `DeliverySkipped` written with its message, a log written before
        // ADR 0023).
        let own_outcome = events.iter().any(|e| e.sequence == 2);
        if !own_outcome && (events.first().is_some_and(|e| e.sequence <= 1) || after == 1) {
            events = super::listing::with_listed_outcomes(&self.pool, &ids, events)
                .await
                .map_err(unavailable)?;
        }
        events.truncate(limit as usize);
        Ok(events)
    }

    async fn first_events_in_id_range(
        &self,
        aggregate_type: &str,
        tenant: TenantId,
        from: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        // A range of the primary key (aggregate_type, aggregate_id,
        // sequence): hyphenated lower-case hex compares in id order.
        let sql = format!(
            "SELECT {COLUMNS} FROM events
              WHERE aggregate_type = $1 AND aggregate_id >= $2
                AND ($3::text IS NULL OR aggregate_id < $3)
                AND sequence = 1 AND metadata ->> 'tenant_id' = $4
              ORDER BY aggregate_id DESC LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(from.to_string())
            .bind(before.map(|b| b.to_string()))
            .bind(tenant.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }
}

/// Parameters: aggregate type, transaction id (text), position.
///
/// Statements reading one aggregate type in commit order bound the range
/// with two row comparisons over `(aggregate_type, tx_id,
/// global_position)` and nothing else, so that the only way to serve them
/// is a short range scan of `events_type_commit_order`. With the type as a
/// separate `aggregate_type = $1`, Postgres' generic plans (used for
/// prepared statements after a few runs) walked `events_commit_order` and
/// filtered, and even the right index was entered at the start of the type
/// rather than at the cursor: scans of the whole log, or of the type.
pub const ANYTHING_AFTER: &str = "SELECT 1 FROM events
      WHERE (aggregate_type, tx_id, global_position) > ($1, $2::text::xid8, $3)
        AND (aggregate_type, tx_id) < ($1, pg_snapshot_xmin(pg_current_snapshot()))
      ORDER BY aggregate_type, tx_id, global_position
      LIMIT 1";

/// Parameter: aggregate type.
pub const COMMITTED_HEAD: &str = "SELECT tx_id::text AS tx, global_position FROM events
      WHERE (aggregate_type, tx_id, global_position)
            <= ($1, '18446744073709551615'::xid8, 9223372036854775807)
        AND (aggregate_type, tx_id, global_position) > ($1, '0'::xid8, -9223372036854775808)
      ORDER BY aggregate_type DESC, tx_id DESC, global_position DESC LIMIT 1";

/// Whether any event of `aggregate_type` after `after` is visible to
/// consumers yet (below the horizon).
///
/// # Errors
/// Database errors.
pub async fn anything_after(
    pool: &PgPool,
    after: LogPosition,
    aggregate_type: &str,
) -> Result<bool, sqlx::Error> {
    // Messages' events list deliveries too (ADR 0019): each type is its
    // own short range scan (one statement over both was not: 20 ms).
    if aggregate_type == Delivery::TYPE
        && Box::pin(anything_after(pool, after, Message::TYPE)).await?
    {
        return Ok(true);
    }
    let first: Option<i32> = sqlx::query_scalar(ANYTHING_AFTER)
        .bind(aggregate_type)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .fetch_optional(pool)
        .await?;
    Ok(first.is_some())
}

/// The newest committed event of `aggregate_type` (whether or not the
/// horizon has passed it yet).
///
/// # Errors
/// Database errors.
pub async fn committed_head(
    pool: &PgPool,
    aggregate_type: &str,
) -> Result<Option<LogPosition>, sqlx::Error> {
    let head = head_of(pool, aggregate_type).await?;
    if aggregate_type != Delivery::TYPE {
        return Ok(head);
    }
    // Messages' events list deliveries too (ADR 0019).
    Ok(head.max(head_of(pool, Message::TYPE).await?))
}

async fn head_of(pool: &PgPool, aggregate_type: &str) -> Result<Option<LogPosition>, sqlx::Error> {
    let row = sqlx::query(COMMITTED_HEAD)
        .bind(aggregate_type)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        Ok(LogPosition {
            tx_id: parse_xid8(&r.try_get::<String, _>("tx")?)?,
            position: r.try_get("global_position")?,
        })
    })
    .transpose()
}
