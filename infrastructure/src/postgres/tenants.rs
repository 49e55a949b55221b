//! Tenants in Postgres: the `tenants` projection (`tenants_view`,
//! `tenant_keys`) and the read model over it, and the one-time adoption of
//! tenants stored as plain rows before they were events.

use super::log_reader::unavailable;
use super::projections::{Projection, ProjectionError};
use super::store::PgAggregateStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::ports::{
    AggregateStore, ApiKeyRecord, Batch, Change, LogPosition, StoredEvent, TenantListQuery,
    TenantReadModel,
};
use hookline_application::{AppError, EventMetadata};
use hookline_domain::tenant::{Tenant, TenantEvent, TenantName, TenantState, TenantStatus};
use hookline_domain::TenantId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use tokio::sync::watch;
use uuid::Uuid;

pub const VIEW_TABLE: &str = "tenants_view";
pub const KEYS_TABLE: &str = "tenant_keys";

/// Applies Tenant events to the tenants tables (the live ones, or fresh
/// ones during a rebuild).
#[derive(Debug, Clone)]
pub struct TenantsProjection {
    view: String,
    keys: String,
}

impl Default for TenantsProjection {
    fn default() -> Self {
        Self::new("")
    }
}

impl TenantsProjection {
    /// `suffix` names fresh tables for a rebuild.
    pub fn new(suffix: &str) -> Self {
        Self {
            view: format!("{VIEW_TABLE}{suffix}"),
            keys: format!("{KEYS_TABLE}{suffix}"),
        }
    }

    async fn load(
        &self,
        conn: &mut PgConnection,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (Tenant, i64)>, ProjectionError> {
        let rows = sqlx::query(&format!(
            "SELECT id, state, version FROM {} WHERE id = ANY($1)",
            self.view
        ))
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = HashMap::new();
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            let state: TenantState = serde_json::from_value(row.try_get("state")?)
                .map_err(|e| sqlx::Error::Decode(format!("tenant {id}: {e}").into()))?;
            out.insert(id, (Tenant::from(state), row.try_get("version")?));
        }
        Ok(out)
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        state: &TenantState,
        version: i64,
    ) -> Result<(), ProjectionError> {
        let json = serde_json::to_value(state)
            .map_err(|e| ProjectionError::Database(sqlx::Error::Decode(e.into())))?;
        sqlx::query(&format!(
            "INSERT INTO {} (id, name, status, created_at, updated_at, version, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status,
                updated_at = EXCLUDED.updated_at, version = EXCLUDED.version, state = EXCLUDED.state",
            self.view
        ))
        .bind(state.id.as_uuid())
        .bind(state.name.as_str())
        .bind(state.status.as_str())
        .bind(state.created_at)
        .bind(state.updated_at)
        .bind(version)
        .bind(json)
        .execute(&mut *conn)
        .await?;
        let deleted = (state.status == TenantStatus::Deleted).then_some(state.updated_at);
        for key in &state.keys {
            let refused_from = match (key.revoked_from, deleted) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            sqlx::query(&format!(
                "INSERT INTO {} (id, tenant_id, key_hash, hint, issued_at, refused_from)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET refused_from = EXCLUDED.refused_from",
                self.keys
            ))
            .bind(key.key_id)
            .bind(state.id.as_uuid())
            .bind(&key.key_hash)
            .bind(&key.hint)
            .bind(key.issued_at)
            .bind(refused_from)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Projection for TenantsProjection {
    fn name(&self) -> String {
        if self.view == VIEW_TABLE {
            "tenants".to_string()
        } else {
            format!("tenants:{}", self.view)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        Tenant::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut ids: Vec<Uuid> = events
            .iter()
            .filter_map(|e| Uuid::parse_str(&e.aggregate_id).ok())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows = self.load(conn, &ids).await?;
        let mut touched = Vec::new();
        for event in events {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let parsed: TenantEvent = event
                .payload
                .parse()
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let entry = rows.entry(id).or_insert_with(|| (Tenant::default(), 0));
            if event.sequence <= entry.1 {
                continue; // already applied (a rebuild restarted mid-way)
            }
            entry.0.apply_event(parsed);
            entry.1 = event.sequence;
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        for id in touched {
            if let Some((tenant, version)) = rows.get(&id) {
                if let Some(state) = tenant.state() {
                    self.write(conn, state, *version).await?;
                }
            }
        }
        Ok(())
    }
}

/// Queries over the tenants tables.
#[derive(Debug, Clone)]
pub struct PgTenantReadModel {
    pool: PgPool,
    /// The tenants projection's position in this process.
    progress: watch::Receiver<LogPosition>,
}

impl PgTenantReadModel {
    pub fn new(pool: PgPool, progress: watch::Receiver<LogPosition>) -> Self {
        Self { pool, progress }
    }
}

fn state(row: &PgRow) -> Result<TenantState, AppError> {
    let value: serde_json::Value = row.try_get("state").map_err(unavailable)?;
    serde_json::from_value(value).map_err(|e| AppError::Internal(format!("tenants_view row: {e}")))
}

#[async_trait]
impl TenantReadModel for PgTenantReadModel {
    async fn get(&self, id: TenantId) -> Result<Option<TenantState>, AppError> {
        let row = sqlx::query("SELECT state FROM tenants_view WHERE id = $1")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(state).transpose()
    }

    async fn list(&self, q: &TenantListQuery) -> Result<Vec<TenantState>, AppError> {
        // No cursor: no bound (chrono's extremes are outside Postgres's
        // timestamp range).
        let sql = if q.oldest_first {
            "SELECT state FROM tenants_view
              WHERE ($1 OR status <> 'deleted')
                AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3))
              ORDER BY created_at, id LIMIT $4"
        } else {
            "SELECT state FROM tenants_view
              WHERE ($1 OR status <> 'deleted')
                AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
              ORDER BY created_at DESC, id DESC LIMIT $4"
        };
        let rows = sqlx::query(sql)
            .bind(q.include_deleted)
            .bind(q.before.map(|(at, _)| at))
            .bind(q.before.map(|(_, id)| id))
            .bind(i64::from(q.limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(state).collect()
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, AppError> {
        let row =
            sqlx::query("SELECT id, tenant_id, refused_from FROM tenant_keys WHERE key_hash = $1")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        row.map(|r| {
            Ok(ApiKeyRecord {
                key_id: r.try_get("id").map_err(unavailable)?,
                tenant_id: TenantId::from_uuid(r.try_get("tenant_id").map_err(unavailable)?),
                refused_from: r.try_get("refused_from").map_err(unavailable)?,
            })
        })
        .transpose()
    }

    fn version(&self) -> u64 {
        u64::try_from(self.progress.borrow().position).unwrap_or_default()
    }
}

/// Turns tenants stored as plain rows (before tenants were events) into
/// Tenant events, keeping their ids and key digests, so every key that
/// worked still works; then drops the old tables. Safe to run on every
/// start and from several processes at once.
///
/// # Errors
/// Storage errors.
pub async fn adopt_legacy_rows(
    pool: &PgPool,
    store: &PgAggregateStore<Tenant>,
) -> Result<usize, AppError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('public.api_keys') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    if !exists {
        return Ok(0);
    }
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    // One process at a time; the others find the work done.
    sqlx::query("SELECT pg_advisory_lock(7346712983)")
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    let result = adopt(&mut conn, store).await;
    drop(
        sqlx::query("SELECT pg_advisory_unlock(7346712983)")
            .execute(&mut *conn)
            .await,
    );
    result
}

/// The events one tenant row and its key rows stand for. They are facts
/// from before tenants were events (not commands the aggregate decides
/// now), so the key cap does not apply to them.
async fn legacy_events(
    conn: &mut PgConnection,
    tenant: TenantId,
    name: &str,
    created_at: DateTime<Utc>,
) -> Result<Vec<TenantEvent>, AppError> {
    let id = *tenant.as_uuid();
    let keys = sqlx::query(
        "SELECT id, key_hash, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    // A name earlier versions accepted but that no longer passes is kept
    // as the tenant's id.
    let name = TenantName::parse(name)
        .or_else(|_| TenantName::parse(&format!("tenant {id}")))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut events = vec![TenantEvent::TenantCreated {
        tenant_id: tenant,
        name,
        created_at,
        uid: None,
        metadata: None,
    }];
    for key in keys {
        let key_id: Uuid = key.try_get("id").map_err(unavailable)?;
        events.push(TenantEvent::ApiKeyIssued {
            key_id,
            key_hash: key.try_get("key_hash").map_err(unavailable)?,
            hint: "hlk_… (issued before keys were listed)".into(),
            issued_at: key.try_get("created_at").map_err(unavailable)?,
        });
        let revoked: Option<DateTime<Utc>> = key.try_get("revoked_at").map_err(unavailable)?;
        if let Some(at) = revoked {
            events.push(TenantEvent::ApiKeyRevoked {
                key_id,
                revoked_at: at,
                effective_at: at,
            });
        }
    }
    Ok(events)
}

async fn adopt(
    conn: &mut PgConnection,
    store: &PgAggregateStore<Tenant>,
) -> Result<usize, AppError> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('public.api_keys') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
    if !exists {
        return Ok(0);
    }
    let tenants = sqlx::query(
        "SELECT t.id, t.name, t.created_at FROM tenants t
          WHERE NOT EXISTS (SELECT 1 FROM events e
                             WHERE e.aggregate_type = 'Tenant' AND e.aggregate_id = t.id::text)
          ORDER BY t.created_at, t.id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    let adopted = tenants.len();
    for row in tenants {
        let id: Uuid = row.try_get("id").map_err(unavailable)?;
        let name: String = row.try_get("name").map_err(unavailable)?;
        let created_at: DateTime<Utc> = row.try_get("created_at").map_err(unavailable)?;
        let tenant = TenantId::from_uuid(id);
        let events = legacy_events(&mut *conn, tenant, &name, created_at).await?;
        let metadata = EventMetadata {
            request_id: format!("system:migration:tenant-{id}"),
            tenant_id: tenant,
            actor: "system:migration".into(),
            occurred_at: created_at,
            worker_id: None,
            triggered_by: None,
            chain: None,
        };
        // One transaction per tenant: adopted whole, or not at all.
        let change = Change::<Tenant> {
            aggregate_id: id.to_string(),
            version: 0,
            events,
            metadata,
        };
        store
            .append(Batch::of(vec![change])?, None)
            .await
            .map_err(|e| AppError::Internal(format!("adopting tenant {id}: {e}")))?;
    }
    for table in ["api_keys", "tenants"] {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    if adopted > 0 {
        tracing::info!(adopted, "tenants stored as rows are now events of the log");
    }
    Ok(adopted)
}
