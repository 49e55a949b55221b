//! Rebuilding read models from the log: a projection is replayed from
//! position zero into fresh tables, caught up to the live checkpoint, and
//! then either swapped in (one transaction, holding the live projection's
//! lock, so the server keeps serving throughout) or compared with the live
//! tables (`--check`).
//!
//! Here: what is rebuilt and how (prepare, the shared read, finish, swap).
//! `read` reads batches of the log, `catch_up` applies them to the
//! copies, `compare` is `--check`, `layout` is the copies' shape.

use super::catalogue::{EventTypesProjection, TABLE as EVENT_TYPES};
use super::checkpoints;
use super::listing::listing_message_sql;
use super::log_reader::unavailable;
use super::messages::{MessagesProjection, TABLE as MESSAGES_TABLE};
use super::projections::deliveries::{ATTEMPTS_TABLE, HEALTH_TABLE, VIEW_TABLE};
use super::projections::deliveries_projection;
use super::projections::queue::TABLE as QUEUE_TABLE;
use super::projections::subscriptions::{SubscriptionsProjection, TABLE as SUBSCRIPTIONS_TABLE};
use super::projections::{lock_key, Projection, ProjectionError};
use super::sources::{sources_projection, upstream_projection, SOURCES_TABLE, UPSTREAM_TABLE};
use super::tenants::{TenantsProjection, KEYS_TABLE as TENANT_KEYS, VIEW_TABLE as TENANTS_VIEW};
use super::wakeup::Wakeup;
use hookline_application::ports::{LogPosition, ReadModelRebuilder, RebuildReport};
use hookline_application::AppError;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Instant;

mod catch_up;
mod compare;
mod layout;
mod read;
use catch_up::{catch_up, catch_up_pipelined, LANES};
use compare::{compare, compared};
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
                               AND o.sequence > 1)
            -- Nor one whose first outcome its message's row holds (ADR 0023).
            AND NOT EXISTS (SELECT 1 FROM events a, json_array_elements(a.payload->'outcomes') x
                             WHERE a.aggregate_type = 'Message' AND a.aggregate_id = {listed}
                               AND a.sequence > 1 AND a.event_type = 'DeliveriesAttempted'
                               AND x->>'delivery_id' = l.delivery_id::text)"
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
                // rebuilt table has not applied yet (first outcomes in their
                // messages' rows too, ADR 0023).
                format!(
                    "delivery_id NOT IN (SELECT aggregate_id::uuid FROM events
                                          WHERE aggregate_type = 'Delivery'
                                            AND (tx_id, global_position) > ('{tx}'::xid8, {position})
                                         UNION ALL
                                         SELECT (x->>'delivery_id')::uuid
                                           FROM events a, json_array_elements(a.payload->'outcomes') x
                                          WHERE a.aggregate_type = 'Message'
                                            AND a.event_type = 'DeliveriesAttempted'
                                            AND (a.tx_id, a.global_position) > ('{tx}'::xid8, {position}))",
                    tx = live_at.tx_id,
                    position = live_at.position
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
