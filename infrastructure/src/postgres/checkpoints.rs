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
    write_holding(conn, name, at, None).await
}

/// Writes the checkpoint and the position of the oldest event whose rows
/// the projection still holds back (none: `held` is `None`).
///
/// # Errors
/// Database errors.
pub async fn write_holding(
    conn: &mut PgConnection,
    name: &str,
    at: LogPosition,
    held: Option<LogPosition>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, last_tx_id, last_position, held_tx_id, held_position, updated_at)
         VALUES ($1, $2::text::xid8, $3, $4::text::xid8, $5, now())
         ON CONFLICT (name) DO UPDATE
            SET last_tx_id = EXCLUDED.last_tx_id, last_position = EXCLUDED.last_position,
                held_tx_id = EXCLUDED.held_tx_id, held_position = EXCLUDED.held_position,
                updated_at = now()",
    )
    .bind(name)
    .bind(at.tx_id.to_string())
    .bind(at.position)
    .bind(held.map(|h| h.tx_id.to_string()))
    .bind(held.map(|h| h.position))
    .execute(conn)
    .await?;
    Ok(())
}

/// A checkpoint and the position of the oldest event whose rows the
/// projection held back when it wrote it (ADR 0021).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stored {
    pub at: LogPosition,
    pub held: Option<LogPosition>,
    /// How long ago it was written (when read; zero when written).
    pub age: std::time::Duration,
}

impl Stored {
    /// The same checkpoint and held position (whenever written).
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        self.at == other.at && self.held == other.held
    }

    /// How far the read models show the log: up to the checkpoint, and
    /// short of the oldest event whose rows are held.
    #[must_use]
    pub fn shown(&self) -> LogPosition {
        match self.held {
            Some(held) => self.at.min(before(held)),
            None => self.at,
        }
    }
}

/// The position just before `p` in commit order: reading after it reads
/// `p` again.
#[must_use]
pub fn before(p: LogPosition) -> LogPosition {
    LogPosition {
        tx_id: p.tx_id,
        position: p.position.saturating_sub(1),
    }
}

fn stored_of(row: &sqlx::postgres::PgRow) -> Result<Stored, sqlx::Error> {
    let position = |tx: &str, at: &str| -> Result<Option<LogPosition>, sqlx::Error> {
        let tx: Option<String> = row.try_get(tx)?;
        let at: Option<i64> = row.try_get(at)?;
        Ok(match (tx, at) {
            (Some(tx), Some(position)) => Some(LogPosition {
                tx_id: parse_xid8(&tx)?,
                position,
            }),
            _ => None,
        })
    };
    let age: Option<f64> = row.try_get("age")?;
    Ok(Stored {
        at: position("tx", "last_position")?.unwrap_or_default(),
        held: position("held_tx", "held_position")?,
        age: std::time::Duration::try_from_secs_f64(age.unwrap_or_default().max(0.0))
            .unwrap_or_default(),
    })
}

const STORED_COLUMNS: &str = "c.last_tx_id::text AS tx, c.last_position, \
     c.held_tx_id::text AS held_tx, c.held_position, \
     EXTRACT(EPOCH FROM clock_timestamp() - c.updated_at)::float8 AS age";

/// The checkpoint with its held position.
///
/// # Errors
/// Database errors (a missing row reads as the start of the log).
pub async fn read_stored(conn: &mut PgConnection, name: &str) -> Result<Stored, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {STORED_COLUMNS} FROM projection_checkpoints c WHERE c.name = $1"
    ))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map_or(Ok(Stored::default()), stored_of)
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
) -> Result<(bool, Stored), sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT pg_try_advisory_xact_lock($1) AS locked, {STORED_COLUMNS}
           FROM (SELECT 1) one
           LEFT JOIN projection_checkpoints c ON c.name = $2"
    ))
    .bind(lock_key)
    .bind(name)
    .fetch_one(&mut *conn)
    .await?;
    if row.try_get::<bool, _>("locked")? {
        return Ok((true, read_stored(conn, name).await?));
    }
    Ok((false, stored_of(&row)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(tx_id: u64, position: i64) -> LogPosition {
        LogPosition { tx_id, position }
    }

    #[test]
    fn read_models_show_the_log_short_of_the_oldest_held_event() {
        let nothing_held = Stored {
            at: at(9, 90),
            held: None,
            age: std::time::Duration::ZERO,
        };
        assert_eq!(nothing_held.shown(), at(9, 90));
        // Held rows of an event at (7, 70): shown up to just before it,
        // and reading after that reads it again.
        let held = Stored {
            at: at(9, 90),
            held: Some(at(7, 70)),
            age: std::time::Duration::from_secs(3),
        };
        assert!(held.same_as(&Stored {
            age: std::time::Duration::ZERO,
            ..held
        }));
        assert!(!held.same_as(&nothing_held));
        assert_eq!(held.shown(), at(7, 69));
        assert!(held.shown() < at(7, 70));
        assert!(held.shown() >= at(7, 69));
        assert!(held.shown() > at(6, 1000));
    }
}
