//! Applying the log to a rebuild's copies: in one transaction, or
//! pipelined (a reader, a dealer, and apply lanes on their own connections).

use super::read::{decode_reads, events_for, fetch_between, read_between, types_read, RawBatch};
use super::ReplayError;
use crate::postgres::projections::Projection;
use cqrs_es::Aggregate;
use hookline_application::ports::{LogPosition, StoredEvent};
use hookline_domain::delivery::Delivery;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// Apply lanes: aggregates are independent of each other, so each lane
/// applies its share of the aggregates on its own connection, at its own
/// pace. More lanes than cores keeps the CPUs busy while a lane waits for
/// its commit to reach the disk.
pub(super) const LANES: usize = 3;

/// Like [`catch_up`] in separate transactions, for one projection or for
/// several that read the same events (see [`super::read::types_read`]):
/// one task reads the log ahead, another decodes each batch once and deals
/// it out to each projection's apply lanes. Returns where it stopped and
/// how many events each projection applied.
pub(super) async fn catch_up_pipelined(
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
    from: LogPosition,
    until: LogPosition,
) -> Result<(LogPosition, Vec<u64>), ReplayError> {
    let mut senders: Vec<Vec<tokio::sync::mpsc::Sender<Vec<StoredEvent>>>> = Vec::new();
    let mut lanes = Vec::with_capacity(LANES * projections.len());
    for projection in projections {
        let mut theirs = Vec::with_capacity(LANES);
        for _ in 0..LANES {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<StoredEvent>>(2);
            theirs.push(tx);
            let mut conn = pool.acquire().await?;
            let projection = projection.clone();
            lanes.push(tokio::spawn(async move {
                while let Some(events) = rx.recv().await {
                    apply_in_transaction(&mut conn, projection.as_ref(), &events).await?;
                }
                Ok::<(), ReplayError>(())
            }));
        }
        senders.push(theirs);
    }
    let aggregate_types: Vec<&'static str> =
        projections.iter().map(|p| p.aggregate_type()).collect();
    let types = types_read(&aggregate_types);
    // The dealer decodes what the reader fetched and deals it out to the
    // lanes, while the reader fetches the next batch.
    let (fetched, mut to_deal) = tokio::sync::mpsc::channel::<RawBatch>(1);
    let dealt_types = aggregate_types.clone();
    let dealer = tokio::spawn(async move {
        let mut applied = vec![0u64; dealt_types.len()];
        // The deliveries' projection, which takes every read, is dealt to
        // last: the others' reads are cloned for them, and its taken.
        let mut order: Vec<usize> = (0..dealt_types.len()).collect();
        order.sort_by_key(|&i| dealt_types[i] == Delivery::TYPE);
        while let Some(raw) = to_deal.recv().await {
            let mut decoded = decode_reads(&raw)?;
            for (n, &i) in order.iter().enumerate() {
                let (aggregate_type, theirs) = (dealt_types[i], &senders[i]);
                let last = n + 1 == order.len();
                let batch = events_for(aggregate_type, &raw, &mut decoded, last)?;
                applied[i] += batch.len() as u64;
                let mut shares: Vec<Vec<StoredEvent>> = (0..LANES)
                    .map(|_| Vec::with_capacity(batch.len() / LANES + 1))
                    .collect();
                for event in batch {
                    shares[lane_of(&event.aggregate_id)].push(event);
                }
                for (share, sender) in shares.into_iter().zip(theirs) {
                    if !share.is_empty() && sender.send(share).await.is_err() {
                        return Ok(applied); // the lane's error is reported below
                    }
                }
            }
        }
        Ok::<Vec<u64>, sqlx::Error>(applied)
    });
    let mut rconn = pool.acquire().await?;
    let mut rconn2 = pool.acquire().await?;
    let mut cursor = from;
    let mut read_error = None;
    loop {
        let conns = (&mut *rconn, &mut *rconn2);
        let raw = match fetch_between(conns, cursor, until, &types).await {
            Ok(raw) => raw,
            Err(e) => {
                read_error = Some(e);
                break;
            }
        };
        let Some(end) = raw.end else { break };
        cursor = end;
        if fetched.send(raw).await.is_err() {
            break; // the dealer stopped: its error is reported below
        }
    }
    drop(fetched);
    // Every task ends before this returns, whatever failed: a lane left
    // running would write into the copies after the replay's lock is
    // released. The first error wins: a lane's, the dealer's, the read's.
    let dealt = dealer.await;
    let mut first_error: Option<ReplayError> = None;
    for lane in lanes {
        let failed = match lane.await {
            Ok(result) => result.err(),
            Err(e) => Some(ReplayError::Database(sqlx::Error::Protocol(format!(
                "replay lane failed: {e}"
            )))),
        };
        if first_error.is_none() {
            first_error = failed;
        }
    }
    let applied = match dealt {
        Ok(Ok(applied)) => applied,
        Ok(Err(e)) => {
            return Err(first_error.unwrap_or(ReplayError::Database(e)));
        }
        Err(e) => {
            return Err(
                first_error.unwrap_or(ReplayError::Database(sqlx::Error::Protocol(format!(
                    "replay dealer failed: {e}"
                )))),
            )
        }
    };
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some(e) = read_error {
        return Err(e.into());
    }
    Ok((cursor, applied))
}

fn lane_of(aggregate_id: &str) -> usize {
    aggregate_id.bytes().fold(0usize, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % LANES
}

async fn apply_in_transaction(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<(), ReplayError> {
    if events.is_empty() {
        return Ok(());
    }
    // The copies are read by nobody until the swap, whose commit waits
    // for its flush, and the WAL is flushed in order: their batches need
    // not wait for theirs (a crash before the swap leaves copies the next
    // replay drops).
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let applied = async {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *conn)
            .await?;
        projection.apply(conn, events).await?;
        Ok::<(), ReplayError>(())
    }
    .await;
    if let Err(e) = applied {
        // Not left open on the pooled connection: its locks would hold up
        // whatever rebuilds the copies next (see `rebuild_with`).
        drop(sqlx::query("ROLLBACK").execute(&mut *conn).await);
        return Err(e);
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}

/// Applies every event in `(from, until]`; returns where it stopped and how
/// many it applied. Each batch commits on its own unless `conn` is already
/// inside a transaction.
pub(super) async fn catch_up(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    from: LogPosition,
    until: LogPosition,
    own_transactions: bool,
) -> Result<(LogPosition, u64), ReplayError> {
    let mut cursor = from;
    let mut applied = 0;
    loop {
        let (batch, last) = read_between(conn, cursor, until, projection.aggregate_type()).await?;
        let Some(last) = last else { break };
        cursor = last;
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
