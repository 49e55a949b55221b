//! Reading the log in commit order.
//!
//! Consumers read `WHERE (tx_id, global_position) > checkpoint AND tx_id <
//! pg_snapshot_xmin(pg_current_snapshot())`. Identity values are handed out
//! before commit, so a slow transaction can commit an event with a lower
//! position after a faster one with a higher position; reading only below the
//! oldest running transaction id means such an event is never skipped.

use super::checkpoints::parse_xid8;
use async_trait::async_trait;
use hookline_application::ports::{EventLog, LogPosition, StoredEvent};
use hookline_application::AppError;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

const COLUMNS: &str =
    "global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence, \
                       event_type, event_version, payload, metadata, recorded_at";

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
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
        recorded_at: row.try_get("recorded_at")?,
    })
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
    let type_filter = if aggregate_type.is_some() {
        "AND aggregate_type = $4"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM events
         WHERE (tx_id, global_position) > ($1::text::xid8, $2)
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
           {type_filter}
         ORDER BY tx_id, global_position
         LIMIT $3"
    );
    let mut query = sqlx::query(&sql)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(limit);
    if let Some(t) = aggregate_type {
        query = query.bind(t);
    }
    query.fetch_all(conn).await?.iter().map(decode).collect()
}

/// The newest event a consumer can see now (for lag and readiness).
///
/// # Errors
/// Database errors.
pub async fn visible_head(
    pool: &PgPool,
    aggregate_type: Option<&str>,
) -> Result<Option<LogPosition>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT tx_id::text AS tx, global_position FROM events
         WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
           AND ($1::text IS NULL OR aggregate_type = $1)
         ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
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
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            AppError::Unavailable(format!("database: {e}"))
        }
        other => AppError::Internal(format!("database: {other}")),
    }
}

#[async_trait]
impl EventLog for PgEventLog {
    async fn aggregate_history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }

    async fn events_of_many(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<StoredEvent>, AppError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
             ORDER BY aggregate_id, sequence"
        );
        let rows = sqlx::query(&sql)
            .bind(aggregate_type)
            .bind(aggregate_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }
}

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
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
                         WHERE aggregate_type = $1
                           AND (tx_id, global_position) > ($2::text::xid8, $3)
                           AND tx_id < pg_snapshot_xmin(pg_current_snapshot()))",
    )
    .bind(aggregate_type)
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .fetch_one(pool)
    .await
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
    let row = sqlx::query(
        "SELECT tx_id::text AS tx, global_position FROM events
          WHERE aggregate_type = $1
          ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
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
