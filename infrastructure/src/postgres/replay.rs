//! Rebuilding read models from the log: a projection is replayed from
//! position zero into fresh tables, caught up to the live checkpoint, and
//! then either swapped in (one transaction, holding the live projection's
//! lock, so the server keeps serving throughout) or compared with the live
//! tables (`--check`).

use super::checkpoints;
use super::log_reader::decode;
use super::projections::deliveries::{ATTEMPTS_TABLE, VIEW_TABLE};
use super::projections::deliveries_projection;
use super::projections::queue::TABLE as QUEUE_TABLE;
use super::projections::subscriptions::{SubscriptionsProjection, TABLE as SUBSCRIPTIONS_TABLE};
use super::projections::{lock_key, Projection, ProjectionError};
use super::wakeup::Wakeup;
use hookline_application::ports::{LogPosition, StoredEvent};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per replay transaction.
pub const REPLAY_BATCH: i64 = 5000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuildable {
    Subscriptions,
    /// The delivery views, attempts and the due queue (one projection).
    Deliveries,
}

impl Rebuildable {
    pub const ALL: [Self; 2] = [Self::Subscriptions, Self::Deliveries];

    /// # Errors
    /// Names the valid projections.
    pub fn parse(name: &str) -> Result<Vec<Self>, String> {
        match name {
            "all" => Ok(Self::ALL.to_vec()),
            "subscriptions" => Ok(vec![Self::Subscriptions]),
            "deliveries" => Ok(vec![Self::Deliveries]),
            other => Err(format!(
                "unknown projection '{other}': use subscriptions, deliveries or all"
            )),
        }
    }

    /// The live projection's checkpoint name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subscriptions => "subscriptions",
            Self::Deliveries => "deliveries",
        }
    }

    fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Subscriptions => &[SUBSCRIPTIONS_TABLE],
            Self::Deliveries => &[VIEW_TABLE, ATTEMPTS_TABLE, QUEUE_TABLE],
        }
    }

    fn projection(self, suffix: &str) -> Arc<dyn Projection> {
        match self {
            Self::Subscriptions => Arc::new(SubscriptionsProjection::new(format!(
                "{SUBSCRIPTIONS_TABLE}{suffix}"
            ))),
            Self::Deliveries => Arc::new(deliveries_projection(suffix, Wakeup::new())),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplayReport {
    pub projection: &'static str,
    pub events: u64,
    pub elapsed: Duration,
    /// With `check`: every difference found (rows only in one of the
    /// tables), empty when the live read model matches the log.
    pub differences: Vec<String>,
}

impl ReplayReport {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-6)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// Columns that are not derived from the log (worker leases).
fn not_compared(table: &str) -> &'static [&'static str] {
    if table == QUEUE_TABLE {
        &["lease_owner", "lease_until"]
    } else {
        &[]
    }
}

/// Events of one aggregate type in `(after, until]`, in commit order.
async fn read_between(
    conn: &mut PgConnection,
    after: LogPosition,
    until: LogPosition,
    aggregate_type: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT global_position, tx_id::text AS tx, aggregate_type, aggregate_id, sequence,
                event_type, event_version, payload, metadata, recorded_at
           FROM events
          WHERE aggregate_type = $1
            AND (tx_id, global_position) > ($2::text::xid8, $3)
            AND (tx_id, global_position) <= ($4::text::xid8, $5)
          ORDER BY tx_id, global_position
          LIMIT $6",
    )
    .bind(aggregate_type)
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .bind(until.tx_id.to_string())
    .bind(until.position)
    .bind(REPLAY_BATCH)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// Applies every event in `(from, until]`; returns where it stopped and how
/// many it applied. Each batch commits on its own unless `conn` is already
/// inside a transaction.
async fn catch_up(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    from: LogPosition,
    until: LogPosition,
    own_transactions: bool,
) -> Result<(LogPosition, u64), ReplayError> {
    let mut cursor = from;
    let mut applied = 0;
    loop {
        let batch = read_between(conn, cursor, until, projection.aggregate_type()).await?;
        let Some(last) = batch.last() else { break };
        cursor = last.log_position();
        if own_transactions {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
        }
        projection.apply(conn, &batch).await?;
        if own_transactions {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
        }
        applied += batch.len() as u64;
    }
    Ok((cursor, applied))
}

async fn columns(
    conn: &mut PgConnection,
    table: &str,
    skip: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let all: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(all
        .into_iter()
        .filter(|c| !skip.contains(&c.as_str()))
        .collect())
}

/// Rows present in `a` but not in `b` (up to a few, as JSON).
async fn only_in(
    conn: &mut PgConnection,
    a: &str,
    b: &str,
    cols: &str,
) -> Result<(i64, Vec<String>), sqlx::Error> {
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) d"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let samples: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT row_to_json(d)::text FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) d LIMIT 3"
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok((count, samples))
}

/// Rebuilds one projection from position zero. With `check`, compares with
/// the live tables and changes nothing; otherwise swaps the rebuilt tables
/// in.
///
/// # Errors
/// Database errors and events the projection cannot read.
pub async fn rebuild(
    pool: &PgPool,
    which: Rebuildable,
    check: bool,
) -> Result<ReplayReport, ReplayError> {
    let suffix = if check { "_check" } else { "_rebuild" };
    let live = which.name();
    let mut conn = pool.acquire().await?;
    for table in which.tables() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {table}{suffix}"))
            .execute(&mut *conn)
            .await?;
        sqlx::query(&format!(
            "CREATE TABLE {table}{suffix} (LIKE {table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    let projection = which.projection(suffix);
    checkpoints::ensure(pool, live).await?;
    let started = Instant::now();
    // Phase 1, without blocking anyone: up to where the live projection was.
    let target = checkpoints::read(&mut conn, live).await?;
    let (cursor, mut events) = catch_up(
        &mut conn,
        projection.as_ref(),
        LogPosition::default(),
        target,
        true,
    )
    .await?;

    // Phase 2, holding the live projection's lock: the rest, then swap or
    // compare at exactly the live checkpoint.
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(live))
        .execute(&mut *conn)
        .await?;
    let live_at = checkpoints::read(&mut conn, live).await?;
    let (_, more) = catch_up(&mut conn, projection.as_ref(), cursor, live_at, false).await?;
    events += more;
    let mut differences = Vec::new();
    for table in which.tables() {
        let rebuilt = format!("{table}{suffix}");
        if check {
            let cols = columns(&mut conn, table, not_compared(table))
                .await?
                .join(", ");
            let (missing, samples) = only_in(&mut conn, table, &rebuilt, &cols).await?;
            if missing > 0 {
                differences.push(format!(
                    "{table}: {missing} live rows are not what the log says: {}",
                    samples.join(" ")
                ));
            }
            let (extra, samples) = only_in(&mut conn, &rebuilt, table, &cols).await?;
            if extra > 0 {
                differences.push(format!(
                    "{table}: {extra} rows the log implies are missing or different: {}",
                    samples.join(" ")
                ));
            }
            sqlx::query(&format!("DROP TABLE {rebuilt}"))
                .execute(&mut *conn)
                .await?;
        } else {
            if *table == QUEUE_TABLE {
                // Leases are the workers' state, not the log's: keep them.
                sqlx::query(&format!(
                    "UPDATE {rebuilt} r SET lease_owner = l.lease_owner, lease_until = l.lease_until
                       FROM {table} l WHERE l.delivery_id = r.delivery_id"
                ))
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(&format!("ALTER TABLE {table} RENAME TO {table}_replaced"))
                .execute(&mut *conn)
                .await?;
            sqlx::query(&format!("ALTER TABLE {rebuilt} RENAME TO {table}"))
                .execute(&mut *conn)
                .await?;
            sqlx::query(&format!("DROP TABLE {table}_replaced"))
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(ReplayReport {
        projection: live,
        events,
        elapsed: started.elapsed(),
        differences,
    })
}
