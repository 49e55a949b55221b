//! Reading the log for rebuilds: one aggregate type's events between two
//! positions, or one batch of several types read at once and decoded once
//! for the projections that share it (ADR 0022).

use super::REPLAY_BATCH;
use crate::postgres::checkpoints::parse_xid8;
use crate::postgres::log_reader::{decode, merge_deliveries, COLUMNS, LISTING_COLUMNS};
use cqrs_es::Aggregate;
use hookline_application::ports::{LogPosition, StoredEvent};
use hookline_domain::delivery::Delivery;
use hookline_domain::message::Message;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::sync::LazyLock;

/// Events of one aggregate type in `(after, until]`, in commit order, with
/// the position of the last row read (for `Delivery`, the deliveries
/// messages' events list are read too: see `read_deliveries_after`).
pub(super) async fn read_between(
    conn: &mut PgConnection,
    after: LogPosition,
    until: LogPosition,
    aggregate_type: &'static str,
) -> Result<(Vec<StoredEvent>, Option<LogPosition>), sqlx::Error> {
    let types = types_read(&[aggregate_type]);
    let reads = read_each_between(conn, after, until, &types).await?;
    let raw = raw_batch(types, reads)?;
    let end = raw.end;
    let mut decoded = decode_reads(&raw)?;
    Ok((events_for(aggregate_type, &raw, &mut decoded, true)?, end))
}

/// The rows of one read of the log, not decoded yet, and where the read
/// ends.
pub(super) struct RawBatch {
    /// The aggregate types read, each with whether its rows are
    /// [`LISTING_COLUMNS`] (see [`types_read`]).
    pub(super) types: Vec<(&'static str, bool)>,
    /// One read per aggregate type, in the order of `types`.
    pub(super) reads: Vec<Vec<PgRow>>,
    pub(super) end: Option<LogPosition>,
}

/// The aggregate types rebuilds of projections of `aggregate_types` read,
/// each with whether only the deliveries it lists are needed: a
/// deliveries' rebuild reads their messages too, for the deliveries they
/// list, not their bodies (which a messages' rebuild, if it reads with it,
/// reads whole).
pub(super) fn types_read(aggregate_types: &[&'static str]) -> Vec<(&'static str, bool)> {
    let mut types: Vec<(&'static str, bool)> = Vec::with_capacity(2);
    for &t in aggregate_types {
        if t == Delivery::TYPE {
            types.push((Delivery::TYPE, false));
        }
    }
    for &t in aggregate_types {
        if t == Message::TYPE {
            types.push((Message::TYPE, false));
        } else if t != Delivery::TYPE {
            types.push((t, false));
        }
    }
    if types.iter().any(|(t, _)| *t == Delivery::TYPE)
        && !types.iter().any(|(t, _)| *t == Message::TYPE)
    {
        types.push((Message::TYPE, true));
    }
    types
}

/// The reads of one batch, with where it ends: at the nearest end of the
/// full reads (where `merge_deliveries` cuts it), else after everything
/// read.
fn raw_batch(
    types: Vec<(&'static str, bool)>,
    reads: Vec<Vec<PgRow>>,
) -> Result<RawBatch, sqlx::Error> {
    let mut full_end: Option<LogPosition> = None;
    let mut last: Option<LogPosition> = None;
    for read in &reads {
        let Some(row) = read.last() else { continue };
        let at = row_position(row)?;
        last = last.max(Some(at));
        if read.len() as i64 >= REPLAY_BATCH {
            full_end = Some(full_end.map_or(at, |end| end.min(at)));
        }
    }
    Ok(RawBatch {
        types,
        reads,
        end: full_end.or(last),
    })
}

/// A batch's reads of `types` in `(after, until]`: on one connection, or
/// the first two at once on two (the reader of a pipelined rebuild, which
/// fetches the next batch while other tasks decode and apply the last).
pub(super) async fn fetch_between(
    conns: (&mut PgConnection, &mut PgConnection),
    after: LogPosition,
    until: LogPosition,
    types: &[(&'static str, bool)],
) -> Result<RawBatch, sqlx::Error> {
    let (a, b) = conns;
    let reads = match *types {
        [(first, first_listing), (second, second_listing)] => {
            let (x, y) = tokio::try_join!(
                read_type_between(a, after, until, first, first_listing),
                read_type_between(b, after, until, second, second_listing),
            )?;
            vec![x, y]
        }
        ref others => read_each_between(a, after, until, others).await?,
    };
    raw_batch(types.to_vec(), reads)
}

/// The reads of `types` in `(after, until]`, one after the other on one
/// connection.
async fn read_each_between(
    conn: &mut PgConnection,
    after: LogPosition,
    until: LogPosition,
    types: &[(&'static str, bool)],
) -> Result<Vec<Vec<PgRow>>, sqlx::Error> {
    let mut reads = Vec::with_capacity(types.len());
    for &(t, listing_only) in types {
        reads.push(read_type_between(&mut *conn, after, until, t, listing_only).await?);
    }
    Ok(reads)
}

/// A batch's rows decoded, one list per read.
pub(super) fn decode_reads(batch: &RawBatch) -> Result<Vec<Vec<StoredEvent>>, sqlx::Error> {
    batch
        .reads
        .iter()
        .map(|read| read.iter().map(decode).collect::<Result<Vec<_>, _>>())
        .collect()
}

/// The events of a decoded batch a projection of `aggregate_type` applies,
/// in commit order, up to the batch's end: for the deliveries, their
/// events and the deliveries their messages list (as `DeliveryEnqueued`).
/// With `last`, the reads are taken rather than cloned (no other
/// projection takes them after).
pub(super) fn events_for(
    aggregate_type: &'static str,
    batch: &RawBatch,
    decoded: &mut [Vec<StoredEvent>],
    last: bool,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let mut take = |i: usize| -> Vec<StoredEvent> {
        if last {
            std::mem::take(&mut decoded[i])
        } else {
            decoded[i].clone()
        }
    };
    if aggregate_type == Delivery::TYPE {
        let reads = (0..batch.types.len()).map(&mut take).collect();
        let (events, _, _) = merge_deliveries(reads, REPLAY_BATCH)?;
        return Ok(events);
    }
    let Some(i) = batch.types.iter().position(|(t, _)| *t == aggregate_type) else {
        return Ok(Vec::new());
    };
    let mut events = take(i);
    // Read with another type, this one may reach past the batch's end;
    // the next batch reads the rest again.
    if let Some(end) = batch.end {
        events.retain(|e| e.log_position() <= end);
    }
    Ok(events)
}

fn row_position(row: &PgRow) -> Result<LogPosition, sqlx::Error> {
    Ok(LogPosition {
        tx_id: parse_xid8(&row.try_get::<String, _>("tx")?)?,
        position: row.try_get("global_position")?,
    })
}

async fn read_type_between(
    conn: &mut PgConnection,
    after: LogPosition,
    until: LogPosition,
    aggregate_type: &str,
    listing_only: bool,
) -> Result<Vec<PgRow>, sqlx::Error> {
    static MESSAGES: LazyLock<String> = LazyLock::new(|| between(LISTING_COLUMNS));
    static OTHERS: LazyLock<String> = LazyLock::new(|| between(COLUMNS));
    fn between(columns: &str) -> String {
        format!(
            "SELECT {columns} FROM events
              WHERE (aggregate_type, tx_id, global_position) > ($1, $2::text::xid8, $3)
                AND (aggregate_type, tx_id, global_position) <= ($1, $4::text::xid8, $5)
              ORDER BY aggregate_type, tx_id, global_position
              LIMIT $6"
        )
    }
    let sql = if listing_only {
        MESSAGES.as_str()
    } else {
        OTHERS.as_str()
    };
    sqlx::query(sql)
        .bind(aggregate_type)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(until.tx_id.to_string())
        .bind(until.position)
        .bind(REPLAY_BATCH)
        .fetch_all(conn)
        .await
}
