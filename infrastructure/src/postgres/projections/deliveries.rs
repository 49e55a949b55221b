//! The `deliveries` projection: `deliveries_view` (one row per delivery,
//! its status and latest attempt) and `delivery_attempts` (one row per
//! attempt). A batch is folded in memory and written with two multi-row
//! statements.

use super::{Projection, ProjectionError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use hookline_application::ports::StoredEvent;
use hookline_domain::delivery::{Delivery, DeliveryEvent};
use sqlx::{PgConnection, Row};
use std::collections::HashMap;
use uuid::Uuid;

pub const VIEW_TABLE: &str = "deliveries_view";
pub const ATTEMPTS_TABLE: &str = "delivery_attempts";

#[derive(Debug, Clone)]
pub struct DeliveriesProjection {
    view: String,
    attempts: String,
}

impl Default for DeliveriesProjection {
    fn default() -> Self {
        Self::new(VIEW_TABLE, ATTEMPTS_TABLE)
    }
}

impl DeliveriesProjection {
    pub fn new(view: impl Into<String>, attempts: impl Into<String>) -> Self {
        Self {
            view: view.into(),
            attempts: attempts.into(),
        }
    }
}

#[derive(Debug, Clone)]
struct ViewRow {
    id: Uuid,
    tenant_id: Uuid,
    subscription_id: Uuid,
    event_id: Uuid,
    event_type: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    url: String,
    request_id: Option<String>,
    last_status_code: Option<i32>,
    last_error_kind: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    version: i64,
}

#[derive(Debug, Clone)]
struct AttemptRow {
    id: Uuid,
    delivery_id: Uuid,
    attempt: i32,
    tenant_id: Uuid,
    subscription_id: Uuid,
    request_id: Option<String>,
    triggered_by: Option<String>,
    worker: Option<String>,
    url: String,
    started_at: DateTime<Utc>,
    duration_ms: i64,
    status_code: Option<i32>,
    outcome: String,
    error_kind: Option<String>,
    error_message: Option<String>,
    response_excerpt: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    position: i64,
}

fn meta(event: &StoredEvent, key: &str) -> Option<String> {
    event
        .metadata
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

fn ended(started_at: DateTime<Utc>, duration_ms: u64) -> DateTime<Utc> {
    started_at + Duration::milliseconds(i64::try_from(duration_ms).unwrap_or(0))
}

fn parse(event: &StoredEvent) -> Result<(Uuid, DeliveryEvent), ProjectionError> {
    let id =
        Uuid::parse_str(&event.aggregate_id).map_err(|e| ProjectionError::bad_event(event, e))?;
    let parsed = serde_json::from_value(event.payload.clone())
        .map_err(|e| ProjectionError::bad_event(event, e))?;
    Ok((id, parsed))
}

impl DeliveriesProjection {
    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ViewRow>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT id, tenant_id, subscription_id, event_id, event_type, status, attempts, next_attempt_at, url,
                    request_id, last_status_code, last_error_kind, last_error, created_at, updated_at, delivered_at, version
               FROM {} WHERE id = ANY($1)",
            self.view
        ))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    ViewRow {
                        id: r.try_get("id")?,
                        tenant_id: r.try_get("tenant_id")?,
                        subscription_id: r.try_get("subscription_id")?,
                        event_id: r.try_get("event_id")?,
                        event_type: r.try_get("event_type")?,
                        status: r.try_get("status")?,
                        attempts: r.try_get("attempts")?,
                        next_attempt_at: r.try_get("next_attempt_at")?,
                        url: r.try_get("url")?,
                        request_id: r.try_get("request_id")?,
                        last_status_code: r.try_get("last_status_code")?,
                        last_error_kind: r.try_get("last_error_kind")?,
                        last_error: r.try_get("last_error")?,
                        created_at: r.try_get("created_at")?,
                        updated_at: r.try_get("updated_at")?,
                        delivered_at: r.try_get("delivered_at")?,
                        version: r.try_get("version")?,
                    },
                ))
            })
            .collect()
    }

    async fn write_views(
        &self,
        conn: &mut PgConnection,
        rows: Vec<ViewRow>,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len();
        let mut c = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            c.0.push(r.id);
            c.1.push(r.tenant_id);
            c.2.push(r.subscription_id);
            c.3.push(r.event_id);
            c.4.push(r.event_type);
            c.5.push(r.status);
            c.6.push(r.attempts);
            c.7.push(r.next_attempt_at);
            c.8.push(r.url);
            c.9.push(r.request_id);
            c.10.push(r.last_status_code);
            c.11.push(r.last_error_kind);
            c.12.push(r.last_error);
            c.13.push(r.created_at);
            c.14.push(r.updated_at);
            c.15.push(r.delivered_at);
            c.16.push(r.version);
        }
        sqlx::query(&format!(
            "INSERT INTO {view} AS d (id, tenant_id, subscription_id, event_id, event_type, status, attempts,
                    next_attempt_at, url, request_id, last_status_code, last_error_kind, last_error,
                    created_at, updated_at, delivered_at, version)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[],
                    $7::int[], $8::timestamptz[], $9::text[], $10::text[], $11::int[], $12::text[], $13::text[],
                    $14::timestamptz[], $15::timestamptz[], $16::timestamptz[], $17::bigint[])
             ON CONFLICT (id) DO UPDATE SET
                status = EXCLUDED.status, attempts = EXCLUDED.attempts, next_attempt_at = EXCLUDED.next_attempt_at,
                last_status_code = EXCLUDED.last_status_code, last_error_kind = EXCLUDED.last_error_kind,
                last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at,
                delivered_at = EXCLUDED.delivered_at, version = EXCLUDED.version
             WHERE d.version < EXCLUDED.version",
            view = self.view
        ))
        .bind(c.0).bind(c.1).bind(c.2).bind(c.3).bind(c.4).bind(c.5).bind(c.6).bind(c.7).bind(c.8)
        .bind(c.9).bind(c.10).bind(c.11).bind(c.12).bind(c.13).bind(c.14).bind(c.15).bind(c.16)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn write_attempts(
        &self,
        conn: &mut PgConnection,
        rows: Vec<AttemptRow>,
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let n = rows.len();
        let mut c = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            c.0.push(r.id);
            c.1.push(r.delivery_id);
            c.2.push(r.attempt);
            c.3.push(r.tenant_id);
            c.4.push(r.subscription_id);
            c.5.push(r.request_id);
            c.6.push(r.triggered_by);
            c.7.push(r.worker);
            c.8.push(r.url);
            c.9.push(r.started_at);
            c.10.push(r.duration_ms);
            c.11.push(r.status_code);
            c.12.push(r.outcome);
            c.13.push(r.error_kind);
            c.14.push(r.error_message);
            c.15.push(r.response_excerpt);
            c.16.push(r.next_attempt_at);
            c.17.push(r.position);
        }
        sqlx::query(&format!(
            "INSERT INTO {attempts} (id, delivery_id, attempt, tenant_id, subscription_id, request_id, triggered_by,
                    worker, url, started_at, duration_ms, status_code, outcome, error_kind, error_message,
                    response_excerpt, next_attempt_at, position)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
                    $8::text[], $9::text[], $10::timestamptz[], $11::bigint[], $12::int[], $13::text[], $14::text[],
                    $15::text[], $16::text[], $17::timestamptz[], $18::bigint[])
             ON CONFLICT DO NOTHING",
            attempts = self.attempts
        ))
        .bind(c.0).bind(c.1).bind(c.2).bind(c.3).bind(c.4).bind(c.5).bind(c.6).bind(c.7).bind(c.8)
        .bind(c.9).bind(c.10).bind(c.11).bind(c.12).bind(c.13).bind(c.14).bind(c.15).bind(c.16).bind(c.17)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for DeliveriesProjection {
    fn name(&self) -> String {
        if self.view == VIEW_TABLE {
            "deliveries".to_string()
        } else {
            format!("deliveries:{}", self.view)
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
        let parsed: Vec<(Uuid, DeliveryEvent)> =
            events.iter().map(parse).collect::<Result<_, _>>()?;
        let to_load: Vec<Uuid> = parsed
            .iter()
            .filter(|(_, e)| !matches!(e, DeliveryEvent::DeliveryEnqueued { .. }))
            .map(|(id, _)| *id)
            .collect();
        let mut rows = self.load(conn, &to_load).await?;
        let mut touched: Vec<Uuid> = Vec::new();
        let mut attempts = Vec::new();
        for (stored, (id, event)) in events.iter().zip(parsed) {
            if let DeliveryEvent::DeliveryEnqueued {
                tenant_id,
                subscription_id,
                event_id,
                event_type,
                url,
                enqueued_at,
                next_attempt_at,
                ..
            } = event
            {
                rows.entry(id).or_insert_with(|| ViewRow {
                    id,
                    tenant_id: *tenant_id.as_uuid(),
                    subscription_id: *subscription_id.as_uuid(),
                    event_id: *event_id.as_uuid(),
                    event_type: event_type.to_string(),
                    status: "pending".into(),
                    attempts: 0,
                    next_attempt_at: Some(next_attempt_at),
                    url,
                    request_id: meta(stored, "request_id"),
                    last_status_code: None,
                    last_error_kind: None,
                    last_error: None,
                    created_at: enqueued_at,
                    updated_at: enqueued_at,
                    delivered_at: None,
                    version: stored.sequence,
                });
                touched.push(id);
                continue;
            }
            let Some(row) = rows.get_mut(&id) else {
                return Err(ProjectionError::bad_event(
                    stored,
                    "delivery event before its DeliveryEnqueued",
                ));
            };
            if stored.sequence <= row.version {
                continue;
            }
            row.version = stored.sequence;
            touched.push(id);
            let (tenant_id, subscription_id) = (row.tenant_id, row.subscription_id);
            let attempt_row = |attempt: u32,
                               attempt_id: Uuid,
                               url: &str,
                               started_at: DateTime<Utc>,
                               duration_ms: u64,
                               status_code: Option<u16>,
                               outcome: &str|
             -> AttemptRow {
                AttemptRow {
                    id: attempt_id,
                    delivery_id: id,
                    attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
                    tenant_id,
                    subscription_id,
                    request_id: meta(stored, "request_id"),
                    triggered_by: meta(stored, "triggered_by"),
                    worker: meta(stored, "worker_id"),
                    url: url.to_string(),
                    started_at,
                    duration_ms: i64::try_from(duration_ms).unwrap_or(i64::MAX),
                    status_code: status_code.map(i32::from),
                    outcome: outcome.to_string(),
                    error_kind: None,
                    error_message: None,
                    response_excerpt: None,
                    next_attempt_at: None,
                    position: stored.position,
                }
            };
            match event {
                DeliveryEvent::DeliveryEnqueued { .. } => {}
                DeliveryEvent::AttemptFailed {
                    attempt,
                    attempt_id,
                    url,
                    started_at,
                    duration_ms,
                    status_code,
                    error_kind,
                    error_message,
                    response_excerpt,
                    status,
                    next_attempt_at,
                    ..
                } => {
                    let mut a = attempt_row(
                        attempt,
                        attempt_id,
                        &url,
                        started_at,
                        duration_ms,
                        status_code,
                        status.as_str(),
                    );
                    a.error_kind = Some(error_kind.as_str().to_string());
                    a.error_message = Some(error_message.clone());
                    a.response_excerpt = response_excerpt;
                    a.next_attempt_at = next_attempt_at;
                    attempts.push(a);
                    row.status = status.as_str().to_string();
                    row.attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
                    row.next_attempt_at = next_attempt_at;
                    row.last_status_code = status_code.map(i32::from);
                    row.last_error_kind = Some(error_kind.as_str().to_string());
                    row.last_error = Some(error_message);
                    row.updated_at = ended(started_at, duration_ms);
                }
                DeliveryEvent::DeliverySucceeded {
                    attempt,
                    attempt_id,
                    url,
                    started_at,
                    duration_ms,
                    status_code,
                    response_excerpt,
                } => {
                    let mut a = attempt_row(
                        attempt,
                        attempt_id,
                        &url,
                        started_at,
                        duration_ms,
                        Some(status_code),
                        "delivered",
                    );
                    a.response_excerpt = response_excerpt;
                    attempts.push(a);
                    row.status = "delivered".into();
                    row.attempts = i32::try_from(attempt).unwrap_or(i32::MAX);
                    row.next_attempt_at = None;
                    row.last_status_code = Some(i32::from(status_code));
                    row.last_error_kind = None;
                    row.last_error = None;
                    row.updated_at = ended(started_at, duration_ms);
                    row.delivered_at = Some(row.updated_at);
                }
                DeliveryEvent::RetryRequested {
                    requested_at,
                    next_attempt_at,
                    ..
                } => {
                    row.status = "pending".into();
                    row.next_attempt_at = Some(next_attempt_at);
                    row.updated_at = requested_at;
                }
                DeliveryEvent::DeliveryAbandoned {
                    reason,
                    abandoned_at,
                } => {
                    row.status = "abandoned".into();
                    row.next_attempt_at = None;
                    if row.last_error.is_none() || row.attempts == 0 {
                        row.last_error = Some(reason);
                    }
                    row.updated_at = abandoned_at;
                }
            }
        }
        touched.sort();
        touched.dedup();
        let changed: Vec<ViewRow> = touched.iter().filter_map(|id| rows.remove(id)).collect();
        self.write_views(conn, changed).await?;
        self.write_attempts(conn, attempts).await?;
        Ok(())
    }
}
