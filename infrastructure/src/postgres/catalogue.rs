//! The event-type catalogue in Postgres: the `event_types` projection and
//! the read model over it.

use super::log_reader::unavailable;
use super::projections::{Projection, ProjectionError};
use async_trait::async_trait;
use cqrs_es::Aggregate;
use hookline_application::ports::{CatalogueReadModel, LogPosition, StoredEvent};
use hookline_application::AppError;
use hookline_domain::catalogue::{CatalogueEntry, CatalogueEvent, EventTypeState};
use hookline_domain::TenantId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use tokio::sync::watch;

pub const TABLE: &str = "event_types";

/// Applies EventType events to `event_types` (or a fresh copy during a
/// rebuild).
#[derive(Debug, Clone)]
pub struct EventTypesProjection {
    table: String,
}

impl Default for EventTypesProjection {
    fn default() -> Self {
        Self::new("")
    }
}

impl EventTypesProjection {
    /// `suffix` names a fresh table for a rebuild.
    pub fn new(suffix: &str) -> Self {
        Self {
            table: format!("{TABLE}{suffix}"),
        }
    }

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[String],
    ) -> Result<HashMap<String, (CatalogueEntry, i64)>, ProjectionError> {
        let rows = sqlx::query(&format!(
            "SELECT aggregate_id, state, version FROM {} WHERE aggregate_id = ANY($1)",
            self.table
        ))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = HashMap::new();
        for row in rows {
            let id: String = row.try_get("aggregate_id")?;
            let state: EventTypeState = serde_json::from_value(row.try_get("state")?)
                .map_err(|e| sqlx::Error::Decode(format!("event type {id}: {e}").into()))?;
            out.insert(id, (CatalogueEntry::from(state), row.try_get("version")?));
        }
        Ok(out)
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        id: &str,
        state: &EventTypeState,
        version: i64,
    ) -> Result<(), ProjectionError> {
        let json = serde_json::to_value(state)
            .map_err(|e| ProjectionError::Database(sqlx::Error::Decode(e.into())))?;
        sqlx::query(&format!(
            "INSERT INTO {} (aggregate_id, tenant_id, name, archived, updated_at, version, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (aggregate_id) DO UPDATE SET archived = EXCLUDED.archived,
                updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, state = EXCLUDED.state",
            self.table
        ))
        .bind(id)
        .bind(state.tenant_id.as_uuid())
        .bind(state.name.as_str())
        .bind(state.archived)
        .bind(state.updated_at)
        .bind(version)
        .bind(json)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for EventTypesProjection {
    fn name(&self) -> String {
        if self.table == TABLE {
            "event_types".to_string()
        } else {
            format!("event_types:{}", self.table)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        CatalogueEntry::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut ids: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows = self.load(conn, &ids).await?;
        let mut touched: Vec<&str> = Vec::new();
        for event in events {
            let parsed: CatalogueEvent = event
                .payload
                .parse()
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let entry = rows
                .entry(event.aggregate_id.clone())
                .or_insert_with(|| (CatalogueEntry::default(), 0));
            if event.sequence <= entry.1 {
                continue; // already applied (a rebuild restarted mid-way)
            }
            entry.0.apply_event(parsed);
            entry.1 = event.sequence;
            if !touched.contains(&event.aggregate_id.as_str()) {
                touched.push(&event.aggregate_id);
            }
        }
        for id in touched {
            if let Some((entry, version)) = rows.get(id) {
                if let Some(state) = entry.state() {
                    self.write(conn, id, state, *version).await?;
                }
            }
        }
        Ok(())
    }
}

/// Queries over `event_types`.
#[derive(Debug, Clone)]
pub struct PgCatalogueReadModel {
    pool: PgPool,
    /// The projection's position in this process.
    progress: watch::Receiver<LogPosition>,
}

impl PgCatalogueReadModel {
    pub fn new(pool: PgPool, progress: watch::Receiver<LogPosition>) -> Self {
        Self { pool, progress }
    }
}

fn state(row: &PgRow) -> Result<EventTypeState, AppError> {
    let value: serde_json::Value = row.try_get("state").map_err(unavailable)?;
    serde_json::from_value(value).map_err(|e| AppError::Internal(format!("event_types row: {e}")))
}

#[async_trait]
impl CatalogueReadModel for PgCatalogueReadModel {
    async fn entries(&self, tenant: TenantId) -> Result<Vec<EventTypeState>, AppError> {
        let rows = sqlx::query("SELECT state FROM event_types WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(state).collect()
    }

    fn version(&self) -> u64 {
        u64::try_from(self.progress.borrow().position).unwrap_or_default()
    }

    async fn fingerprint(&self, tenants: &[TenantId]) -> Result<(i64, i64), AppError> {
        let ids: Vec<uuid::Uuid> = tenants.iter().map(|t| *t.as_uuid()).collect();
        let row = sqlx::query(
            "SELECT count(*) AS n, COALESCE(sum(version), 0)::bigint AS v
               FROM event_types WHERE tenant_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok((
            row.try_get("n").map_err(unavailable)?,
            row.try_get("v").map_err(unavailable)?,
        ))
    }
}
