//! The `delivery_queue` projection: keeps one row per delivery awaiting a
//! retry or a manual retry (with its due time and attempt number) for
//! workers to lease. New deliveries get no row: workers take their first
//! attempts straight from the log (`postgres::feed`, ADR 0017), and put on
//! the queue only those that must wait. A batch is folded into one
//! operation per delivery.

use super::{Projection, ProjectionError};
use crate::postgres::wakeup::Wakeup;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::ports::StoredEvent;
use hookline_domain::delivery::{Delivery, DeliveryEvent, DeliveryStatus};
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use uuid::Uuid;

pub const TABLE: &str = "delivery_queue";
/// An event with its delivery id and parsed payload.
pub type Parsed<'a> = (&'a StoredEvent, Uuid, DeliveryEvent);

/// Parses a batch once.
///
/// # Errors
/// An event whose id or payload is not a delivery's.
pub fn parse_all(events: &[StoredEvent]) -> Result<Vec<Parsed<'_>>, ProjectionError> {
    events
        .iter()
        .map(|stored| {
            let id = Uuid::parse_str(&stored.aggregate_id)
                .map_err(|e| ProjectionError::bad_event(stored, e))?;
            let event: DeliveryEvent = stored
                .payload
                .parse_owned()
                .map_err(|e| ProjectionError::bad_event(stored, e))?;
            Ok((stored, id, event))
        })
        .collect()
}

/// Notified when rows become due, so workers in other processes wake.
pub const DUE_CHANNEL: &str = "hookline_due";

#[derive(Debug, Clone)]
pub struct QueueProjection {
    table: String,
    due: Wakeup,
}

impl QueueProjection {
    pub fn new(table: impl Into<String>, due: Wakeup) -> Self {
        Self {
            table: table.into(),
            due,
        }
    }
}

#[derive(Debug, Clone)]
struct QueueRow {
    delivery_id: Uuid,
    tenant_id: Uuid,
    subscription_id: Uuid,
    event_id: Uuid,
    event_type: String,
    attempt: i32,
    due_at: DateTime<Utc>,
    /// The body, for deliveries enqueued with it inline (version 1.0
    /// events); `None` when the message holds it.
    body: Option<String>,
    request_id: Option<String>,
    triggered_by: Option<String>,
    /// Identity, body and request id still to be read from the log (a
    /// delivery queued again by a manual retry).
    unfilled: bool,
}

#[derive(Debug, Clone)]
enum Op {
    /// Enqueued in this batch: no row (its first attempt is taken from the
    /// log), but what a later event of the batch needs to write one.
    Fresh(QueueRow),
    /// Insert (or replace) the whole row.
    Put(QueueRow),
    /// Next attempt of a queued delivery.
    Reschedule {
        attempt: i32,
        due_at: DateTime<Utc>,
    },
    Delete,
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl QueueProjection {
    /// Bodies, request ids and identity of deliveries re-queued by a manual
    /// retry, from their `DeliveryEnqueued` events.
    async fn fill_from_log(
        &self,
        conn: &mut PgConnection,
        rows: &mut [&mut QueueRow],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<String> = rows.iter().map(|r| r.delivery_id.to_string()).collect();
        let found = sqlx::query(
            "SELECT aggregate_id, payload::jsonb AS payload, metadata->>'request_id' AS request_id FROM events
             WHERE aggregate_type = $1 AND aggregate_id = ANY($2) AND sequence = 1",
        )
        .bind(Delivery::TYPE)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut by_id = HashMap::new();
        for r in found {
            let id: String = r.try_get("aggregate_id")?;
            let payload: serde_json::Value = r.try_get("payload")?;
            let request_id: Option<String> = r.try_get("request_id")?;
            by_id.insert(id, (payload, request_id));
        }
        // Deliveries their message's event began (ADR 0019).
        let listed = crate::postgres::listing::listed_beginnings(
            &mut *conn,
            ids.iter()
                .filter(|id| !by_id.contains_key(*id))
                .map(String::as_str),
        )
        .await?;
        for (id, event) in listed {
            let request_id = event.request().map(|m| m.request_id);
            by_id.insert(id, (event.payload.to_value(), request_id));
        }
        for row in rows.iter_mut() {
            if let Some((payload, request_id)) = by_id.get(&row.delivery_id.to_string()) {
                row.unfilled = false;
                let field = |k: &str| payload.get(k).and_then(|v| v.as_str()).map(str::to_string);
                row.body = field("body");
                row.request_id = request_id.clone();
                row.event_type = field("event_type").unwrap_or_default();
                let uuid = |k: &str| {
                    field(k)
                        .and_then(|s| Uuid::parse_str(&s).ok())
                        .unwrap_or_default()
                };
                row.tenant_id = uuid("tenant_id");
                row.subscription_id = uuid("subscription_id");
                row.event_id = uuid("event_id");
            }
        }
        Ok(())
    }

    /// Applies events already parsed (the deliveries projection shares its
    /// parse with this one).
    ///
    /// # Errors
    /// Database errors.
    pub async fn apply_parsed(
        &self,
        conn: &mut PgConnection,
        events: Vec<Parsed<'_>>,
    ) -> Result<(), ProjectionError> {
        let Plan {
            deletes,
            mut puts,
            reschedules,
        } = Plan::of(events);
        // A retry may find no row (its first attempt came from the log):
        // it is written whole, with its identity from the log.
        let mut reschedules: Vec<QueueRow> = reschedules
            .into_iter()
            .map(|(id, attempt, due_at)| {
                let mut row = QueueRow::unfilled(id);
                row.attempt = attempt;
                row.due_at = due_at;
                row
            })
            .collect();
        {
            let mut missing: Vec<&mut QueueRow> = puts
                .iter_mut()
                .chain(reschedules.iter_mut())
                .filter(|r| r.unfilled)
                .collect();
            if !missing.is_empty() {
                self.fill_from_log(conn, &mut missing).await?;
            }
        }
        puts.retain(|r| !r.unfilled);
        reschedules.retain(|r| !r.unfilled);
        let wakes = !puts.is_empty() || !reschedules.is_empty();
        self.delete(conn, &deletes).await?;
        self.put(conn, puts).await?;
        self.reschedule(conn, reschedules).await?;
        if wakes {
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(DUE_CHANNEL)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn delete(&self, conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(&format!(
            "DELETE FROM {} WHERE delivery_id = ANY($1)",
            self.table
        ))
        .bind(ids)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Writes whole rows; an existing row takes the new attempt, due time
    /// and `triggered_by`, and loses its lease.
    async fn put(&self, conn: &mut PgConnection, rows: Vec<QueueRow>) -> Result<(), sqlx::Error> {
        self.upsert(conn, rows, ", triggered_by = EXCLUDED.triggered_by")
            .await
    }

    /// The next attempt of a delivery: its row rescheduled, or written
    /// (its earlier attempt was taken from the log). A manual retry's
    /// `triggered_by` stays.
    async fn reschedule(
        &self,
        conn: &mut PgConnection,
        rows: Vec<QueueRow>,
    ) -> Result<(), sqlx::Error> {
        self.upsert(conn, rows, "").await
    }

    /// One multi-row `INSERT … ON CONFLICT DO UPDATE` of `rows`; an
    /// existing row takes the new attempt and due time (and what `also`
    /// sets) and loses its lease.
    async fn upsert(
        &self,
        conn: &mut PgConnection,
        rows: Vec<QueueRow>,
        also: &str,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let c = Columns::of(rows);
        sqlx::query(&format!(
            "INSERT INTO {} (delivery_id, tenant_id, subscription_id, event_id, event_type, attempt, due_at,
                    body, request_id, triggered_by)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[],
                    $7::timestamptz[], $8::text[], $9::text[], $10::text[])
             ON CONFLICT (delivery_id) DO UPDATE SET
                attempt = EXCLUDED.attempt, due_at = EXCLUDED.due_at{also}, lease_owner = NULL, lease_until = NULL",
            self.table
        ))
        .bind(c.ids)
        .bind(c.tenants)
        .bind(c.subs)
        .bind(c.events)
        .bind(c.types)
        .bind(c.attempts)
        .bind(c.dues)
        .bind(c.bodies)
        .bind(c.requests)
        .bind(c.triggers)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// The queue rows' columns, for one multi-row statement.
#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    subs: Vec<Uuid>,
    events: Vec<Uuid>,
    types: Vec<String>,
    attempts: Vec<i32>,
    dues: Vec<DateTime<Utc>>,
    bodies: Vec<Option<String>>,
    requests: Vec<Option<String>>,
    triggers: Vec<Option<String>>,
}

impl Columns {
    fn of(rows: Vec<QueueRow>) -> Self {
        let mut c = Self::with_capacity(rows.len());
        for r in rows {
            c.ids.push(r.delivery_id);
            c.tenants.push(r.tenant_id);
            c.subs.push(r.subscription_id);
            c.events.push(r.event_id);
            c.types.push(r.event_type);
            c.attempts.push(r.attempt);
            c.dues.push(r.due_at);
            c.bodies.push(r.body);
            c.requests.push(r.request_id);
            c.triggers.push(r.triggered_by);
        }
        c
    }

    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            tenants: Vec::with_capacity(n),
            subs: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            attempts: Vec::with_capacity(n),
            dues: Vec::with_capacity(n),
            bodies: Vec::with_capacity(n),
            requests: Vec::with_capacity(n),
            triggers: Vec::with_capacity(n),
        }
    }
}

/// What a batch does to the queue: one operation per delivery, in order.
#[derive(Debug, Default)]
struct Plan {
    deletes: Vec<Uuid>,
    puts: Vec<QueueRow>,
    reschedules: Vec<(Uuid, i32, DateTime<Utc>)>,
}

impl Plan {
    fn of(events: Vec<Parsed<'_>>) -> Self {
        let mut ops: HashMap<Uuid, Op> = HashMap::new();
        let mut order: Vec<Uuid> = Vec::new();
        let mut created_here = std::collections::HashSet::new();
        for (stored, id, event) in events {
            let previous = ops.remove(&id);
            if previous.is_none() {
                order.push(id);
            }
            if matches!(event, DeliveryEvent::DeliveryEnqueued { .. }) {
                created_here.insert(id);
            }
            ops.insert(id, next_op(stored, id, event, previous));
        }
        let mut plan = Self::default();
        for id in order {
            match ops.remove(&id) {
                // Queued and finished within this batch: never written.
                Some(Op::Delete) if created_here.contains(&id) => {}
                Some(Op::Delete) => plan.deletes.push(id),
                // Its first attempt is taken from the log.
                Some(Op::Fresh(_)) => {}
                Some(Op::Put(row)) => plan.puts.push(row),
                Some(Op::Reschedule { attempt, due_at }) => {
                    plan.reschedules.push((id, attempt, due_at));
                }
                None => {}
            }
        }
        plan
    }
}

/// The operation a delivery's queue row needs after `event`, given the
/// one the batch already planned for it.
fn next_op(stored: &StoredEvent, id: Uuid, event: DeliveryEvent, previous: Option<Op>) -> Op {
    match event {
        DeliveryEvent::DeliveryEnqueued {
            tenant_id,
            subscription_id,
            event_id,
            event_type,
            body,
            next_attempt_at,
            ..
        } => {
            let request = stored.request();
            Op::Fresh(QueueRow {
                delivery_id: id,
                tenant_id: *tenant_id.as_uuid(),
                subscription_id: *subscription_id.as_uuid(),
                event_id: *event_id.as_uuid(),
                event_type: event_type.to_string(),
                attempt: 1,
                due_at: next_attempt_at,
                body,
                // A delivery a request asked for by hand (a resend).
                triggered_by: request.as_ref().and_then(|m| m.triggered_by.clone()),
                request_id: request.map(|m| m.request_id),
                unfilled: false,
            })
        }
        DeliveryEvent::AttemptFailed {
            attempt,
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(due_at),
            ..
        } => match previous {
            Some(Op::Put(mut row) | Op::Fresh(mut row)) => {
                row.attempt = to_i32(attempt + 1);
                row.due_at = due_at;
                Op::Put(row)
            }
            _ => Op::Reschedule {
                attempt: to_i32(attempt + 1),
                due_at,
            },
        },
        DeliveryEvent::RetryRequested {
            attempt,
            next_attempt_at,
            ..
        } => {
            let mut row = match previous {
                Some(Op::Put(row) | Op::Fresh(row)) => row,
                // Its identity and body come from its first event.
                _ => QueueRow::unfilled(id),
            };
            row.attempt = to_i32(attempt);
            row.due_at = next_attempt_at;
            row.triggered_by = stored.request().map(|m| m.request_id);
            Op::Put(row)
        }
        // Delivered, failed for good, or abandoned: off the queue.
        _ => Op::Delete,
    }
}

impl QueueRow {
    /// A row whose identity, body and request id `fill_from_log` adds.
    fn unfilled(id: Uuid) -> Self {
        Self {
            delivery_id: id,
            tenant_id: Uuid::nil(),
            subscription_id: Uuid::nil(),
            event_id: Uuid::nil(),
            event_type: String::new(),
            attempt: 0,
            due_at: DateTime::<Utc>::MIN_UTC,
            body: None,
            request_id: None,
            triggered_by: None,
            unfilled: true,
        }
    }
}

#[async_trait]
impl Projection for QueueProjection {
    fn name(&self) -> String {
        if self.table == TABLE {
            "delivery_queue".to_string()
        } else {
            format!("delivery_queue:{}", self.table)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        Delivery::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        self.apply_parsed(conn, parse_all(events)?).await
    }

    fn after_commit(&self, _events: &[StoredEvent]) {
        self.due.bump();
    }
}
