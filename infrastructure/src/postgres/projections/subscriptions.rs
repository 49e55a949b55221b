//! The `subscriptions` projection and the read model it maintains: one row
//! per subscription with its folded state (secrets still sealed) and copies
//! of the columns lists filter and sort on.

use super::deliveries::HEALTH_TABLE;
use super::{Projection, ProjectionError};
use crate::postgres::log_reader::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::operational::subscription_notice;
use hookline_application::ports::{
    ListedStatus, StoredEvent, SubscriptionListQuery, SubscriptionReadModel, SubscriptionRecord,
};
use hookline_application::AppError;
use hookline_domain::subscription::{Subscription, SubscriptionEvent, SubscriptionState};
use hookline_domain::{SubscriptionId, TenantId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use uuid::Uuid;

pub const TABLE: &str = "subscriptions_view";

/// Applies Subscription events to a subscriptions table (the live one, or a
/// fresh one during a rebuild).
#[derive(Debug, Clone)]
pub struct SubscriptionsProjection {
    table: String,
}

impl SubscriptionsProjection {
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
        }
    }
}

impl Default for SubscriptionsProjection {
    fn default() -> Self {
        Self::new(TABLE)
    }
}

#[async_trait]
impl Projection for SubscriptionsProjection {
    fn name(&self) -> String {
        if self.table == TABLE {
            "subscriptions".to_string()
        } else {
            format!("subscriptions:{}", self.table)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        Subscription::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        // Current rows of every subscription in the batch, in one query.
        let ids: Vec<Uuid> = events
            .iter()
            .filter_map(|e| Uuid::parse_str(&e.aggregate_id).ok())
            .collect();
        let mut rows: HashMap<Uuid, (Subscription, i64)> = HashMap::new();
        let existing = sqlx::query(&format!(
            "SELECT id, state, version FROM {} WHERE id = ANY($1)",
            self.table
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in existing {
            let id: Uuid = row.try_get("id")?;
            let state: serde_json::Value = row.try_get("state")?;
            let state: SubscriptionState = serde_json::from_value(state).map_err(|e| {
                ProjectionError::Database(sqlx::Error::Decode(
                    format!("subscription {id}: {e}").into(),
                ))
            })?;
            rows.insert(id, (Subscription::from(state), row.try_get("version")?));
        }
        let mut touched = Vec::new();
        let mut restarted: Vec<Uuid> = Vec::new();
        let mut notices = Vec::new();
        for event in events {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let parsed: SubscriptionEvent = event
                .payload
                .parse()
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let entry = rows
                .entry(id)
                .or_insert_with(|| (Subscription::default(), 0));
            if event.sequence <= entry.1 {
                continue; // already applied (a rebuild restarted mid-way)
            }
            if matches!(
                parsed,
                SubscriptionEvent::SubscriptionEnabled { .. }
                    | SubscriptionEvent::EndpointCircuitClosed { .. }
            ) {
                restarted.push(id);
            }
            // The live read model also keeps the operational notices the
            // event causes (a rebuild's copy never does).
            let noticed = (self.table == TABLE).then(|| parsed.clone());
            entry.0.apply_event(parsed);
            entry.1 = event.sequence;
            if let (Some(parsed), Some(state)) = (noticed, entry.0.state()) {
                notices.extend(subscription_notice(state, &parsed, event));
            }
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        for id in touched {
            let Some((aggregate, version)) = rows.get(&id) else {
                continue;
            };
            let Some(state) = aggregate.state() else {
                continue;
            };
            let json = serde_json::to_value(state)
                .map_err(|e| ProjectionError::Database(sqlx::Error::Decode(e.into())))?;
            sqlx::query(&format!(
                "INSERT INTO {} (id, tenant_id, status, url, events, created_at, updated_at, version, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (id) DO UPDATE SET
                    status = EXCLUDED.status, url = EXCLUDED.url, events = EXCLUDED.events,
                    updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, state = EXCLUDED.state",
                self.table
            ))
            .bind(id)
            .bind(state.tenant_id.as_uuid())
            .bind(state.status.as_str())
            .bind(state.url.as_str())
            .bind(state.events.to_strings())
            .bind(state.created_at)
            .bind(state.updated_at)
            .bind(*version)
            .bind(json)
            .execute(&mut *conn)
            .await?;
        }
        crate::postgres::notices::keep(conn, &notices).await?;
        // Enabling a subscription or closing its circuit starts its run of
        // failures afresh (the live read model only: a rebuild's copy has
        // its own projection of attempts).
        if self.table == TABLE && !restarted.is_empty() {
            sqlx::query(&format!(
                "UPDATE {HEALTH_TABLE} SET consecutive_failures = 0, failing_since = NULL
                  WHERE subscription_id = ANY($1)"
            ))
            .bind(&restarted)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Queries over the subscriptions table.
#[derive(Debug, Clone)]
pub struct PgSubscriptionReadModel {
    pool: PgPool,
}

impl PgSubscriptionReadModel {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn record(row: &PgRow) -> Result<SubscriptionRecord, AppError> {
    let state: serde_json::Value = row.try_get("state").map_err(unavailable)?;
    let state: SubscriptionState = serde_json::from_value(state)
        .map_err(|e| AppError::Internal(format!("subscriptions_view row: {e}")))?;
    Ok(SubscriptionRecord {
        state,
        version: row.try_get("version").map_err(unavailable)?,
    })
}

#[async_trait]
impl SubscriptionReadModel for PgSubscriptionReadModel {
    async fn get(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, AppError> {
        let row = sqlx::query(&format!(
            "SELECT state, version FROM {TABLE} WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id.as_uuid())
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(record).transpose()
    }

    async fn list(
        &self,
        tenant: TenantId,
        query: &SubscriptionListQuery,
    ) -> Result<Vec<SubscriptionRecord>, AppError> {
        // Postgres text holds no NUL: nothing contains one (and binding it
        // is an error).
        if query.search.as_deref().is_some_and(|s| s.contains('\0')) {
            return Ok(Vec::new());
        }
        let (before_at, before_id): (Option<DateTime<Utc>>, Option<Uuid>) = match query.before {
            Some((at, id)) => (Some(at), Some(id)),
            None => (None, None),
        };
        let (cmp, order) = if query.oldest_first {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let rows = sqlx::query(&format!(
            "SELECT state, version FROM {TABLE}
             WHERE tenant_id = $1
               AND ($2 OR status = 'active')
               AND NOT ($7 AND status = 'deleted')
               AND ($3::text[] IS NULL OR events && $3)
               AND ($4::timestamptz IS NULL OR (created_at, id) {cmp} ($4, $5))
               AND CASE $8::text
                     WHEN 'active' THEN status = 'active' AND jsonb_typeof(state -> 'circuit') IS DISTINCT FROM 'object'
                     WHEN 'circuit_open' THEN status = 'active' AND jsonb_typeof(state -> 'circuit') = 'object'
                     WHEN 'disabled' THEN status = 'disabled'
                     ELSE true
                   END
               AND ($9::text IS NULL
                    OR strpos(lower(url), $9) > 0
                    OR strpos(lower(COALESCE(state ->> 'description', '')), $9) > 0)
               AND ($10::uuid[] IS NULL OR id = ANY($10))
             ORDER BY created_at {order}, id {order}
             LIMIT $6"
        ))
        .bind(tenant.as_uuid())
        .bind(query.include_inactive)
        .bind(query.any_of_patterns.as_ref())
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(query.limit) + 1)
        .bind(query.exclude_deleted)
        .bind(query.status.map(ListedStatus::as_str))
        .bind(query.search.as_deref())
        .bind(query.only_ids.as_ref())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(record).collect()
    }

    async fn count(&self, tenant: TenantId) -> Result<u64, AppError> {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {TABLE} WHERE tenant_id = $1 AND status <> 'deleted'"
        ))
        .bind(tenant.as_uuid())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn find_active_duplicate(
        &self,
        tenant: TenantId,
        url: &str,
        events: &[String],
    ) -> Result<Option<SubscriptionId>, AppError> {
        let id: Option<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM {TABLE}
             WHERE tenant_id = $1 AND status = 'active' AND url = $2 AND events = $3
             ORDER BY created_at LIMIT 1"
        ))
        .bind(tenant.as_uuid())
        .bind(url)
        .bind(events)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(id.map(SubscriptionId::from_uuid))
    }
}
