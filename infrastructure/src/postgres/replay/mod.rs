//! Rebuilding read models from the log: a projection is replayed from
//! position zero into fresh tables, caught up to the live checkpoint, and
//! then either swapped in (one transaction, holding the live projection's
//! lock, so the server keeps serving throughout) or compared with the live
//! tables (`--check`).

use super::catalogue::{EventTypesProjection, TABLE as EVENT_TYPES};
use super::checkpoints;
use super::checkpoints::parse_xid8;
use super::listing::listing_message_sql;
use super::log_reader::unavailable;
use super::log_reader::{decode, merge_deliveries, COLUMNS, LISTING_COLUMNS};
use super::messages::{MessagesProjection, TABLE as MESSAGES_TABLE};
use super::projections::deliveries::{ATTEMPTS_TABLE, HEALTH_TABLE, VIEW_TABLE};
use super::projections::deliveries_projection;
use super::projections::queue::TABLE as QUEUE_TABLE;
use super::projections::subscriptions::{SubscriptionsProjection, TABLE as SUBSCRIPTIONS_TABLE};
use super::projections::{lock_key, Projection, ProjectionError};
use super::sources::{sources_projection, upstream_projection, SOURCES_TABLE, UPSTREAM_TABLE};
use super::tenants::{TenantsProjection, KEYS_TABLE as TENANT_KEYS, VIEW_TABLE as TENANTS_VIEW};
use super::wakeup::Wakeup;
use cqrs_es::Aggregate;
use hookline_application::ports::{LogPosition, ReadModelRebuilder, RebuildReport, StoredEvent};
use hookline_application::AppError;
use hookline_domain::delivery::Delivery;
use hookline_domain::message::Message;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::sync::Arc;
use std::sync::LazyLock;
use std::time::Instant;

mod layout;
use layout::{build_indexes, Layout};

/// Events per replay transaction.
pub const REPLAY_BATCH: i64 = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuildable {
    Tenants,
    EventTypes,
    Subscriptions,
    /// The delivery views, attempts and the due queue (one projection).
    Deliveries,
    Messages,
    Sources,
    UpstreamSubscriptions,
}

impl Rebuildable {
    pub const ALL: [Self; 7] = [
        Self::Tenants,
        Self::EventTypes,
        Self::Subscriptions,
        Self::Deliveries,
        Self::Messages,
        Self::Sources,
        Self::UpstreamSubscriptions,
    ];

    /// The read model called `name` (its live projection's checkpoint).
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The live projection's checkpoint name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::EventTypes => "event_types",
            Self::Subscriptions => "subscriptions",
            Self::Deliveries => "deliveries",
            Self::Messages => "messages",
            Self::Sources => "sources",
            Self::UpstreamSubscriptions => "upstream_subscriptions",
        }
    }

    fn tables(self) -> &'static [&'static str] {
        match self {
            Self::Tenants => &[TENANTS_VIEW, TENANT_KEYS],
            Self::EventTypes => &[EVENT_TYPES],
            Self::Subscriptions => &[SUBSCRIPTIONS_TABLE],
            Self::Deliveries => &[VIEW_TABLE, ATTEMPTS_TABLE, HEALTH_TABLE, QUEUE_TABLE],
            Self::Messages => &[MESSAGES_TABLE],
            Self::Sources => &[SOURCES_TABLE],
            Self::UpstreamSubscriptions => &[UPSTREAM_TABLE],
        }
    }

    fn projection(self, suffix: &str) -> Arc<dyn Projection> {
        match self {
            Self::Tenants => Arc::new(TenantsProjection::new(suffix)),
            Self::EventTypes => Arc::new(EventTypesProjection::new(suffix)),
            Self::Subscriptions => Arc::new(SubscriptionsProjection::new(format!(
                "{SUBSCRIPTIONS_TABLE}{suffix}"
            ))),
            Self::Deliveries => Arc::new(deliveries_projection(suffix, Wakeup::new())),
            Self::Messages => Arc::new(MessagesProjection::new(suffix)),
            Self::Sources => Arc::new(sources_projection(suffix)),
            Self::UpstreamSubscriptions => Arc::new(upstream_projection(suffix)),
        }
    }
}

/// The application's `ReadModelRebuilder` port over [`rebuild`].
#[derive(Debug, Clone)]
pub struct PgRebuilder {
    pool: PgPool,
}

impl PgRebuilder {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl ReadModelRebuilder for PgRebuilder {
    fn names(&self) -> Vec<&'static str> {
        Rebuildable::ALL.iter().map(|r| r.name()).collect()
    }

    fn reads(&self, name: &str) -> &'static [&'static str] {
        match Rebuildable::named(name) {
            // Its `rebuilt` step derives `subscription_health` from the live
            // `subscriptions_view`.
            Some(Rebuildable::Deliveries) => &["subscriptions"],
            _ => &[],
        }
    }

    async fn rebuild(&self, name: &str, check: bool) -> Result<RebuildReport, AppError> {
        let which =
            Rebuildable::named(name).ok_or_else(|| AppError::not_found("read model", name))?;
        rebuild(&self.pool, which, check).await.map_err(app_error)
    }

    fn read_together(&self) -> &'static [&'static str] {
        // The deliveries' rebuild reads every message for the deliveries
        // it lists; the messages' reads them all too.
        &["deliveries", "messages"]
    }

    async fn rebuild_together(
        &self,
        names: &[&'static str],
        check: bool,
    ) -> Vec<Result<RebuildReport, AppError>> {
        let Some(whiches) = names
            .iter()
            .map(|name| Rebuildable::named(name))
            .collect::<Option<Vec<_>>>()
        else {
            return names
                .iter()
                .map(|name| match Rebuildable::named(name) {
                    Some(_) => Err(AppError::conflict(
                        "replay_not_run",
                        "not rebuilt: it was to be rebuilt with a read model that does not exist",
                    )),
                    None => Err(AppError::not_found("read model", name)),
                })
                .collect();
        };
        rebuild_together(&self.pool, &whiches, check)
            .await
            .into_iter()
            .map(|result| result.map_err(app_error))
            .collect()
    }
}

fn app_error(e: ReplayError) -> AppError {
    match e {
        ReplayError::Database(e) => unavailable(e),
        ReplayError::Projection(e) => AppError::Internal(e.to_string()),
        alongside @ ReplayError::Alongside(_) => AppError::Internal(alongside.to_string()),
        busy @ ReplayError::Busy(_) => AppError::conflict("replay_running", busy.to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("another replay of {0} is running (or its check); wait for it to finish")]
    Busy(String),
    /// The rebuild it read the log with failed (that one reports why).
    #[error("failed with the read model rebuilt with it: {0}")]
    Alongside(String),
}

/// Columns that are not derived from the log (worker leases).
fn not_compared(table: &str) -> &'static [&'static str] {
    if table == QUEUE_TABLE {
        &["lease_owner", "lease_until", "waiting"]
    } else {
        &[]
    }
}

/// Tables a check leaves out: each subscription's run of failures follows
/// commit order live and is recomputed from the attempts by a rebuild
/// (whose lanes apply deliveries in parallel); the two agree except for
/// attempts committed out of start order, so comparing them would report
/// differences that are not tampering. The attempts themselves are
/// compared.
fn compared(table: &str) -> bool {
    table != HEALTH_TABLE
}

/// Events of one aggregate type in `(after, until]`, in commit order, with
/// the position of the last row read (for `Delivery`, the deliveries
/// messages' events list are read too: see `read_deliveries_after`).
async fn read_between(
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
struct RawBatch {
    /// The aggregate types read, each with whether its rows are
    /// [`LISTING_COLUMNS`] (see [`types_read`]).
    types: Vec<(&'static str, bool)>,
    /// One read per aggregate type, in the order of `types`.
    reads: Vec<Vec<PgRow>>,
    end: Option<LogPosition>,
}

/// The aggregate types rebuilds of projections of `aggregate_types` read,
/// each with whether only the deliveries it lists are needed: a
/// deliveries' rebuild reads their messages too, for the deliveries they
/// list, not their bodies (which a messages' rebuild, if it reads with it,
/// reads whole).
fn types_read(aggregate_types: &[&'static str]) -> Vec<(&'static str, bool)> {
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
async fn fetch_between(
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
fn decode_reads(batch: &RawBatch) -> Result<Vec<Vec<StoredEvent>>, sqlx::Error> {
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
fn events_for(
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

/// Apply lanes: aggregates are independent of each other, so each lane
/// applies its share of the aggregates on its own connection, at its own
/// pace. More lanes than cores keeps the CPUs busy while a lane waits for
/// its commit to reach the disk.
const LANES: usize = 3;

/// Like [`catch_up`] in separate transactions, for one projection or for
/// several that read the same events (see [`types_read`]): one task reads
/// the log ahead, another decodes each batch once and deals it out to each
/// projection's apply lanes. Returns where it stopped and how many events
/// each projection applied.
async fn catch_up_pipelined(
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

/// How the live `table` differs from the `rebuilt` one (dropped after),
/// among the rows `only` selects.
async fn compare(
    conn: &mut PgConnection,
    table: &str,
    rebuilt: &str,
    only: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let cols = columns(&mut *conn, table, not_compared(table))
        .await?
        .join(", ");
    let mut differences = Vec::new();
    let live = format!("(SELECT * FROM {table} WHERE {only}) live");
    let rebuilt_rows = format!("(SELECT * FROM {rebuilt} WHERE {only}) rebuilt");
    let (missing, samples) = only_in(&mut *conn, &live, &rebuilt_rows, &cols).await?;
    if missing > 0 {
        differences.push(format!(
            "{table}: {missing} live rows are not what the log says: {}",
            samples.join(" ")
        ));
    }
    let (extra, samples) = only_in(&mut *conn, &rebuilt_rows, &live, &cols).await?;
    if extra > 0 {
        differences.push(format!(
            "{table}: {extra} rows the log implies are missing or different: {}",
            samples.join(" ")
        ));
    }
    Ok(differences)
}

/// Queue rows workers wrote for first attempts taken from the log that
/// had to wait (deferred or parked) are workers' state, like leases: the
/// log implies no row for them (their first attempt is not made yet), so a
/// rebuild keeps them from the live table — their due time and lease; what
/// they say of the delivery (identity, type, body, request) is taken from
/// its `DeliveryEnqueued` event, as a worker taking it from the log would,
/// so a check still finds a row changed by hand, and a row of no delivery
/// is not kept.
async fn keep_handed_over(
    conn: &mut PgConnection,
    table: &str,
    rebuilt: &str,
) -> Result<(), sqlx::Error> {
    let listed = listing_message_sql("l.delivery_id::text");
    sqlx::query(&format!(
        "INSERT INTO {rebuilt} (delivery_id, tenant_id, subscription_id, event_id, event_type, attempt, due_at,
                                body, request_id, triggered_by, lease_owner, lease_until, waiting)
         SELECT l.delivery_id, (e.payload->>'tenant_id')::uuid, (e.payload->>'subscription_id')::uuid,
                (e.payload->>'event_id')::uuid, e.payload->>'event_type', 1, l.due_at,
                e.payload->>'body', e.metadata->>'request_id', e.metadata->>'triggered_by',
                l.lease_owner, l.lease_until, l.waiting
           FROM {table} l
           JOIN LATERAL (
                SELECT d.payload::jsonb AS payload, d.metadata FROM events d
                 WHERE d.aggregate_type = 'Delivery' AND d.aggregate_id = l.delivery_id::text
                   AND d.sequence = 1 AND d.event_type = 'DeliveryEnqueued'
                UNION ALL
                -- A delivery its message's event lists (ADR 0019).
                SELECT (m.payload::jsonb - 'body') || jsonb_build_object('subscription_id', x->'subscription_id'),
                       m.metadata
                  FROM events m, json_array_elements(m.payload->'deliveries') x
                 WHERE m.aggregate_type = 'Message' AND m.sequence = 1
                   AND m.aggregate_id = {listed}
                   AND x->>'id' = l.delivery_id::text
                 LIMIT 1) e ON true
          WHERE NOT EXISTS (SELECT 1 FROM {rebuilt} r WHERE r.delivery_id = l.delivery_id)
            AND NOT EXISTS (SELECT 1 FROM events o
                             WHERE o.aggregate_type = 'Delivery' AND o.aggregate_id = l.delivery_id::text
                               AND o.sequence > 1)"
    ))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Puts the `rebuilt` table in place of the live one, with its names.
async fn swap(
    conn: &mut PgConnection,
    table: &str,
    rebuilt: &str,
    layout: Option<&Layout>,
    suffix: &str,
) -> Result<(), sqlx::Error> {
    if table == QUEUE_TABLE {
        // Leases are the workers' state, not the log's: keep them.
        sqlx::query(&format!(
            "UPDATE {rebuilt} r SET lease_owner = l.lease_owner, lease_until = l.lease_until,
                   waiting = l.waiting
               FROM {table} l WHERE l.delivery_id = r.delivery_id"
        ))
        .execute(&mut *conn)
        .await?;
    }
    for statement in [
        format!("ALTER TABLE {table} RENAME TO {table}_replaced"),
        format!("ALTER TABLE {rebuilt} RENAME TO {table}"),
        format!("DROP TABLE {table}_replaced"),
    ] {
        sqlx::query(&statement).execute(&mut *conn).await?;
    }
    if let Some(layout) = layout {
        layout.restore_names(conn, suffix).await?;
    }
    Ok(())
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
) -> Result<RebuildReport, ReplayError> {
    match rebuild_together(pool, &[which], check).await.pop() {
        Some(result) => result,
        None => Err(ReplayError::Busy(which.name().to_string())),
    }
}

/// [`rebuild`] of several projections at once, which read the log
/// together (one read of what they have in common, decoded once): a result
/// each, in order. One that another replay is rebuilding fails as busy;
/// the others are rebuilt.
pub async fn rebuild_together(
    pool: &PgPool,
    whiches: &[Rebuildable],
    check: bool,
) -> Vec<Result<RebuildReport, ReplayError>> {
    // Their own connections, whatever the size of the caller's pool: the
    // one holding the replays' locks, one per projection for its own
    // lock, and per projection its lanes and two readers (each may catch
    // up alone at the same time) or two index builders, plus two spare.
    let wanted = u32::try_from((LANES + 3) * whiches.len() + 3).unwrap_or(15);
    let own = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(wanted)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
    {
        Ok(own) => own,
        Err(e) => return shared_failure(e.into(), whiches.len()),
    };
    let results = rebuild_locking(&own, whiches, check).await;
    own.close().await;
    results
}

/// [`rebuild_together`] on its own pool: takes the replays' locks, then
/// rebuilds the projections it got.
async fn rebuild_locking(
    own: &PgPool,
    whiches: &[Rebuildable],
    check: bool,
) -> Vec<Result<RebuildReport, ReplayError>> {
    // One rebuild of a projection at a time: two would build (and drop)
    // the same copies under each other. Held by its own session until the
    // end, whatever happens in between.
    let mut guard = match own.acquire().await {
        Ok(guard) => guard,
        Err(e) => return shared_failure(e.into(), whiches.len()),
    };
    let mut keys = Vec::with_capacity(whiches.len());
    let mut free = Vec::with_capacity(whiches.len());
    for which in whiches {
        let key = lock_key(&format!("replay:{}", which.name()));
        let locked = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *guard)
            .await;
        match locked {
            Ok(true) => {
                keys.push(key);
                free.push(*which);
            }
            Ok(false) => {}
            Err(e) => {
                // The session ends with the pool: its locks with it.
                return shared_failure(e.into(), whiches.len());
            }
        }
    }
    let mut rebuilt = rebuild_with(own, &free, check).await.into_iter();
    for key in keys {
        drop(
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *guard)
                .await,
        );
    }
    whiches
        .iter()
        .map(|which| {
            if free.contains(which) {
                rebuilt
                    .next()
                    .unwrap_or_else(|| Err(ReplayError::Busy(which.name().to_string())))
            } else {
                Err(ReplayError::Busy(which.name().to_string()))
            }
        })
        .collect()
}

/// One error for each of `n` projections rebuilt together: the first gets
/// it, the others its text.
fn shared_failure(e: ReplayError, n: usize) -> Vec<Result<RebuildReport, ReplayError>> {
    let text = e.to_string();
    let mut errors = vec![Err(e)];
    errors.extend((1..n).map(|_| Err(ReplayError::Alongside(text.clone()))));
    errors
}

/// A projection's rebuild, its copies created, up to where it reads the
/// log.
struct Prepared {
    which: Rebuildable,
    layouts: Vec<Layout>,
    projection: Arc<dyn Projection>,
    /// Where the live projection was: phase 1 reads up to there.
    target: LogPosition,
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    started: Instant,
}

fn suffix_of(check: bool) -> &'static str {
    if check {
        "_check"
    } else {
        "_rebuild"
    }
}

async fn prepare(pool: &PgPool, which: Rebuildable, check: bool) -> Result<Prepared, ReplayError> {
    let suffix = suffix_of(check);
    let live = which.name();
    let mut conn = pool.acquire().await?;
    let mut layouts = Vec::new();
    for table in which.tables() {
        let layout = Layout::of(&mut conn, table).await?;
        layout.create_bare(&mut conn, suffix).await?;
        layouts.push(layout);
    }
    let projection = which.projection(suffix);
    checkpoints::ensure(pool, live).await?;
    let started = Instant::now();
    let target = checkpoints::read(&mut conn, live).await?;
    Ok(Prepared {
        which,
        layouts,
        projection,
        target,
        conn,
        started,
    })
}

/// Rebuilds `whiches`, whose replays' locks are held: phase 1 reads the
/// log once for all of them, up to the nearest of their live checkpoints;
/// then each goes on alone.
async fn rebuild_with(
    pool: &PgPool,
    whiches: &[Rebuildable],
    check: bool,
) -> Vec<Result<RebuildReport, ReplayError>> {
    if whiches.is_empty() {
        return Vec::new();
    }
    // An error before each goes on alone (in one's preparation, or an
    // event one of them cannot read failing the read they share): each is
    // rebuilt alone then, so that the others still are, and the one that
    // cannot says why.
    let alone = |e: ReplayError| async move {
        if whiches.len() == 1 {
            return vec![Err(e)];
        }
        tracing::warn!(error = %e, "replay: the read models read together failed; rebuilding each alone");
        let mut results = Vec::with_capacity(whiches.len());
        for which in whiches {
            results.extend(Box::pin(rebuild_with(pool, &[*which], check)).await);
        }
        results
    };
    let mut prepared = Vec::with_capacity(whiches.len());
    for which in whiches {
        match prepare(pool, *which, check).await {
            Ok(p) => prepared.push(p),
            Err(e) => {
                drop(prepared);
                return alone(e).await;
            }
        }
    }
    // Phase 1, without blocking anyone: up to where the live projections
    // were.
    let until = prepared.iter().map(|p| p.target).min().unwrap_or_default();
    let projections: Vec<Arc<dyn Projection>> =
        prepared.iter().map(|p| p.projection.clone()).collect();
    let (cursor, applied) =
        match catch_up_pipelined(pool, &projections, LogPosition::default(), until).await {
            Ok(done) => done,
            Err(e) => {
                drop((prepared, projections));
                return alone(e).await;
            }
        };
    let finishes = prepared
        .into_iter()
        .zip(applied)
        .map(|(p, events)| finish(pool, p, cursor, events, check));
    futures::future::join_all(finishes).await
}

/// The rest of a rebuild whose phase 1 read the log up to `cursor`: up to
/// its own live checkpoint, its indexes, then the swap (or comparison)
/// under the live projection's lock.
async fn finish(
    pool: &PgPool,
    prepared: Prepared,
    cursor: LogPosition,
    events: u64,
    check: bool,
) -> Result<RebuildReport, ReplayError> {
    let Prepared {
        which,
        layouts,
        projection,
        target,
        mut conn,
        started,
    } = prepared;
    let suffix = suffix_of(check);
    let live = which.name();
    let (cursor, mut events) = if cursor < target {
        // Read with another projection whose checkpoint was nearer.
        let (at, more) =
            catch_up_pipelined(pool, std::slice::from_ref(&projection), cursor, target).await?;
        (at, events + more.iter().sum::<u64>())
    } else {
        (cursor, events)
    };
    tracing::debug!(projection = live, events, elapsed = ?started.elapsed(), "replay: log applied");
    // Loaded without secondary indexes so far: build each once now.
    let statements = layouts
        .iter()
        .flat_map(|layout| layout.index_statements(suffix))
        .collect();
    build_indexes(pool, statements).await?;
    tracing::debug!(projection = live, elapsed = ?started.elapsed(), "replay: indexes built");

    // Phase 2, holding the live projection's lock: the rest, then swap or
    // compare at exactly the live checkpoint. A failure rolls it back: the
    // connection goes back to a pool the other rebuilds still use, and an
    // open transaction would keep the lock (and its writes) with it.
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let (live_at, more, differences) = match under_lock(
        &mut conn,
        which,
        projection.as_ref(),
        cursor,
        &layouts,
        check,
    )
    .await
    {
        Ok(done) => done,
        Err(e) => {
            drop(sqlx::query("ROLLBACK").execute(&mut *conn).await);
            return Err(e);
        }
    };
    events += more;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(RebuildReport {
        projection: live.to_string(),
        events,
        elapsed: started.elapsed(),
        differences,
        checkpoint: live_at,
    })
}

/// [`finish`]'s phase 2, in its transaction: the events up to the live
/// checkpoint, then the swap (or comparison). Returns the checkpoint, how
/// many events it applied, and with `check` the differences.
async fn under_lock(
    conn: &mut PgConnection,
    which: Rebuildable,
    projection: &dyn Projection,
    cursor: LogPosition,
    layouts: &[Layout],
    check: bool,
) -> Result<(LogPosition, u64, Vec<String>), ReplayError> {
    let suffix = suffix_of(check);
    let live = which.name();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(live))
        .execute(&mut *conn)
        .await?;
    let stored = checkpoints::read_stored(&mut *conn, live).await?;
    let live_at = stored.at;
    if let Some(held) = stored.held {
        // Rows the live projection holds back (ADR 0021): written first,
        // as by a process taking the projection over, so that the live
        // tables say what the log says up to the checkpoint. The live
        // process sees that its checkpoint changed and forgets them.
        which
            .projection("")
            .write_held(&mut *conn, held, live_at)
            .await?;
        checkpoints::write_holding(&mut *conn, live, live_at, None).await?;
    }
    let (_, more) = catch_up(&mut *conn, projection, cursor, live_at, false).await?;
    projection.rebuilt(&mut *conn).await?;
    let mut differences = Vec::new();
    for table in which.tables() {
        let rebuilt = format!("{table}{suffix}");
        if *table == QUEUE_TABLE {
            // Workers write the live queue outside the projection's lock
            // (hand-overs, leases, rows their outcomes finish): hold their
            // writes until the swap, so a row written after the copy below
            // is not dropped with the old table, or until the comparison,
            // so it compares one moment. Reads go on.
            sqlx::query(&format!("LOCK TABLE {table} IN EXCLUSIVE MODE"))
                .execute(&mut *conn)
                .await?;
        }
        if *table == QUEUE_TABLE {
            keep_handed_over(&mut *conn, table, &rebuilt).await?;
        }
        if check && !compared(table) {
            sqlx::query(&format!("DROP TABLE {rebuilt}"))
                .execute(&mut *conn)
                .await?;
        } else if check {
            let moved_on = if *table == QUEUE_TABLE {
                // Deliveries with events past the checkpoint: workers
                // finished or moved their rows by those events, which the
                // rebuilt table has not applied yet.
                format!(
                    "delivery_id NOT IN (SELECT aggregate_id::uuid FROM events
                                          WHERE aggregate_type = 'Delivery'
                                            AND (tx_id, global_position) > ('{}'::xid8, {}))",
                    live_at.tx_id, live_at.position
                )
            } else {
                "true".to_string()
            };
            differences.extend(compare(&mut *conn, table, &rebuilt, &moved_on).await?);
            sqlx::query(&format!("DROP TABLE {rebuilt}"))
                .execute(&mut *conn)
                .await?;
        } else {
            let layout = layouts.iter().find(|l| l.table == *table);
            swap(&mut *conn, table, &rebuilt, layout, suffix).await?;
        }
    }
    Ok((live_at, more, differences))
}
