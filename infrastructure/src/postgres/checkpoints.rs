//! Consumer checkpoints: the last `(tx_id, global_position)` a consumer has
//! applied, written in the same transaction as the consumer's own writes.

use hookline_application::ports::LogPosition;
use sqlx::{PgConnection, PgPool, Row};

/// Creates the checkpoint row at the start of the log if it is missing.
///
/// # Errors
/// Database errors.
pub async fn ensure(pool: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// # Errors
/// Database errors (a missing row reads as the start of the log).
pub async fn read(conn: &mut PgConnection, name: &str) -> Result<LogPosition, sqlx::Error> {
    let row = sqlx::query(
        "SELECT last_tx_id::text AS tx, last_position FROM projection_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => LogPosition {
            tx_id: parse_xid8(&row.try_get::<String, _>("tx")?)?,
            position: row.try_get("last_position")?,
        },
        None => LogPosition::default(),
    })
}

/// # Errors
/// Database errors.
pub async fn write(
    conn: &mut PgConnection,
    name: &str,
    at: LogPosition,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, last_tx_id, last_position, updated_at)
         VALUES ($1, $2::text::xid8, $3, now())
         ON CONFLICT (name) DO UPDATE
            SET last_tx_id = EXCLUDED.last_tx_id, last_position = EXCLUDED.last_position, updated_at = now()",
    )
    .bind(name)
    .bind(at.tx_id.to_string())
    .bind(at.position)
    .execute(conn)
    .await?;
    Ok(())
}

/// `xid8` travels as text (sqlx has no native type for it).
///
/// # Errors
/// A decode error when the text is not a number.
pub fn parse_xid8(text: &str) -> Result<u64, sqlx::Error> {
    text.parse()
        .map_err(|e| sqlx::Error::Decode(format!("xid8 '{text}': {e}").into()))
}

/// Tries the projection's advisory lock and reads its checkpoint: in one
/// round trip when another process holds the lock (to follow it), in a
/// second statement once it is taken. A statement's snapshot is taken
/// before it runs, so a checkpoint read by the statement that takes the
/// lock may predate the commit of the holder that just released it, and
/// that holder's batch would be applied twice.
///
/// # Errors
/// Database errors.
pub async fn try_lock_and_read(
    conn: &mut PgConnection,
    lock_key: i64,
    name: &str,
) -> Result<(bool, LogPosition), sqlx::Error> {
    let row = sqlx::query(
        "SELECT pg_try_advisory_xact_lock($1) AS locked, c.last_tx_id::text AS tx, c.last_position
           FROM (SELECT 1) one
           LEFT JOIN projection_checkpoints c ON c.name = $2",
    )
    .bind(lock_key)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if row.try_get::<bool, _>("locked")? {
        return Ok((true, read(conn, name).await?));
    }
    let tx: Option<String> = row.try_get("tx")?;
    let position: Option<i64> = row.try_get("last_position")?;
    let at = match (tx, position) {
        (Some(tx), Some(position)) => LogPosition {
            tx_id: parse_xid8(&tx)?,
            position,
        },
        _ => LogPosition::default(),
    };
    Ok((false, at))
}
