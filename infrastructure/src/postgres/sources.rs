//! Inbound sources and upstream subscriptions in Postgres: their
//! projections (one row per aggregate with its folded state and the
//! columns lists filter on), the read models over them, and the record of
//! refused inbound requests.

use super::log_reader::unavailable;
use super::projections::{Projection, ProjectionError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use hookline_application::ports::{
    NewRejection, RejectionLog, RejectionRecord, SourceListQuery, SourceReadModel, SourceRecord,
    StoredEvent, UpstreamReadModel, UpstreamRecord,
};
use hookline_application::AppError;
use hookline_domain::source::{Source, SourceEvent, SourceState, SourceStatus};
use hookline_domain::upstream::{UpstreamEvent, UpstreamState, UpstreamSubscription};
use hookline_domain::{SourceId, TenantId, UpstreamId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use std::marker::PhantomData;
use uuid::Uuid;

pub const SOURCES_TABLE: &str = "sources_view";
pub const UPSTREAM_TABLE: &str = "upstream_subscriptions_view";
pub const REJECTIONS_TABLE: &str = "inbound_rejections";
/// Rejections kept per source (older ones are dropped).
pub const MAX_REJECTIONS_PER_SOURCE: i64 = 1000;

/// An aggregate kept as one row of its folded state.
pub trait Projected: Aggregate + Default + Send + Sync + 'static {
    type State: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// The projection's (checkpoint) name for the live table.
    const NAME: &'static str;
    fn resume(state: Self::State) -> Self;
    fn current(&self) -> Option<&Self::State>;
    fn parse(event: &StoredEvent) -> Result<Self::Event, serde_json::Error>;
    fn fold(&mut self, event: Self::Event);
    /// id, tenant, status, created_at.
    fn columns(state: &Self::State) -> (Uuid, Uuid, &'static str, DateTime<Utc>);
}

impl Projected for Source {
    type State = SourceState;
    const NAME: &'static str = "sources";
    fn resume(state: SourceState) -> Self {
        Self::from(state)
    }
    fn current(&self) -> Option<&SourceState> {
        self.state()
    }
    fn parse(event: &StoredEvent) -> Result<SourceEvent, serde_json::Error> {
        event.payload.parse()
    }
    fn fold(&mut self, event: SourceEvent) {
        self.apply_event(event);
    }
    fn columns(s: &SourceState) -> (Uuid, Uuid, &'static str, DateTime<Utc>) {
        (
            *s.id.as_uuid(),
            *s.tenant_id.as_uuid(),
            s.status.as_str(),
            s.created_at,
        )
    }
}

impl Projected for UpstreamSubscription {
    type State = UpstreamState;
    const NAME: &'static str = "upstream_subscriptions";
    fn resume(state: UpstreamState) -> Self {
        Self::from(state)
    }
    fn current(&self) -> Option<&UpstreamState> {
        self.state()
    }
    fn parse(event: &StoredEvent) -> Result<UpstreamEvent, serde_json::Error> {
        event.payload.parse()
    }
    fn fold(&mut self, event: UpstreamEvent) {
        self.apply_event(event);
    }
    fn columns(s: &UpstreamState) -> (Uuid, Uuid, &'static str, DateTime<Utc>) {
        (
            *s.id.as_uuid(),
            *s.tenant_id.as_uuid(),
            s.status.as_str(),
            s.created_at,
        )
    }
}

/// Applies an aggregate type's events to its state table (the live one,
/// or a fresh copy during a rebuild).
#[derive(Debug, Clone)]
pub struct StateProjection<A> {
    table: String,
    live: &'static str,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Projected> StateProjection<A> {
    /// `live` is the live table; `suffix` names a fresh copy for a rebuild.
    pub fn new(live: &'static str, suffix: &str) -> Self {
        Self {
            table: format!("{live}{suffix}"),
            live,
            _aggregate: PhantomData,
        }
    }
}

/// The `sources` projection.
pub fn sources_projection(suffix: &str) -> StateProjection<Source> {
    StateProjection::new(SOURCES_TABLE, suffix)
}

/// The `upstream_subscriptions` projection.
pub fn upstream_projection(suffix: &str) -> StateProjection<UpstreamSubscription> {
    StateProjection::new(UPSTREAM_TABLE, suffix)
}

fn decode_state<T: DeserializeOwned>(
    table: &str,
    id: Uuid,
    value: serde_json::Value,
) -> Result<T, ProjectionError> {
    serde_json::from_value(value).map_err(|e| {
        ProjectionError::Database(sqlx::Error::Decode(format!("{table} {id}: {e}").into()))
    })
}

#[async_trait]
impl<A: Projected> Projection for StateProjection<A> {
    fn name(&self) -> String {
        if self.table == self.live {
            A::NAME.to_string()
        } else {
            format!("{}:{}", A::NAME, self.table)
        }
    }

    fn aggregate_type(&self) -> &'static str {
        A::TYPE
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let ids: Vec<Uuid> = events
            .iter()
            .filter_map(|e| Uuid::parse_str(&e.aggregate_id).ok())
            .collect();
        let mut rows: HashMap<Uuid, (A, i64)> = HashMap::new();
        let existing = sqlx::query(&format!(
            "SELECT id, state, version FROM {} WHERE id = ANY($1)",
            self.table
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        for row in existing {
            let id: Uuid = row.try_get("id")?;
            let state: A::State = decode_state(&self.table, id, row.try_get("state")?)?;
            rows.insert(id, (A::resume(state), row.try_get("version")?));
        }
        let mut touched = Vec::new();
        for event in events {
            let id = Uuid::parse_str(&event.aggregate_id)
                .map_err(|e| ProjectionError::bad_event(event, e))?;
            let parsed = A::parse(event).map_err(|e| ProjectionError::bad_event(event, e))?;
            let entry = rows.entry(id).or_insert_with(|| (A::default(), 0));
            if event.sequence <= entry.1 {
                continue; // already applied (a rebuild restarted mid-way)
            }
            entry.0.fold(parsed);
            entry.1 = event.sequence;
            if !touched.contains(&id) {
                touched.push(id);
            }
        }
        for id in touched {
            let Some((aggregate, version)) = rows.get(&id) else {
                continue;
            };
            let Some(state) = aggregate.current() else {
                continue;
            };
            let (id, tenant, status, created_at) = A::columns(state);
            let json = serde_json::to_value(state)
                .map_err(|e| ProjectionError::Database(sqlx::Error::Decode(e.into())))?;
            sqlx::query(&format!(
                "INSERT INTO {} (id, tenant_id, status, created_at, version, state)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET
                    status = EXCLUDED.status, version = EXCLUDED.version, state = EXCLUDED.state",
                self.table
            ))
            .bind(id)
            .bind(tenant)
            .bind(status)
            .bind(created_at)
            .bind(*version)
            .bind(json)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// Queries over a state table.
#[derive(Debug, Clone)]
pub struct PgStateReadModel<A> {
    pool: PgPool,
    table: &'static str,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Projected> PgStateReadModel<A> {
    pub fn new(pool: PgPool, table: &'static str) -> Self {
        Self {
            pool,
            table,
            _aggregate: PhantomData,
        }
    }

    fn decode(&self, row: &PgRow) -> Result<(A::State, i64), AppError> {
        let value: serde_json::Value = row.try_get("state").map_err(unavailable)?;
        let state = serde_json::from_value(value)
            .map_err(|e| AppError::Internal(format!("{} row: {e}", self.table)))?;
        Ok((state, row.try_get("version").map_err(unavailable)?))
    }

    async fn one(&self, tenant: TenantId, id: Uuid) -> Result<Option<(A::State, i64)>, AppError> {
        let row = sqlx::query(&format!(
            "SELECT state, version FROM {} WHERE id = $1 AND tenant_id = $2",
            self.table
        ))
        .bind(id)
        .bind(tenant.as_uuid())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(|r| self.decode(r)).transpose()
    }

    /// Newest first; `active` filters on that status unless `everything`.
    async fn page(
        &self,
        tenant: TenantId,
        everything: bool,
        active: &str,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<(A::State, i64)>, AppError> {
        let (before_at, before_id) = before.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let rows = sqlx::query(&format!(
            "SELECT state, version FROM {}
             WHERE tenant_id = $1
               AND ($2 OR status = $3)
               AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
             ORDER BY created_at DESC, id DESC
             LIMIT $6",
            self.table
        ))
        .bind(tenant.as_uuid())
        .bind(everything)
        .bind(active)
        .bind(before_at)
        .bind(before_id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|r| self.decode(r)).collect()
    }
}

pub type PgSourceReadModel = PgStateReadModel<Source>;
pub type PgUpstreamReadModel = PgStateReadModel<UpstreamSubscription>;

#[async_trait]
impl SourceReadModel for PgStateReadModel<Source> {
    async fn get(&self, tenant: TenantId, id: SourceId) -> Result<Option<SourceRecord>, AppError> {
        Ok(self
            .one(tenant, *id.as_uuid())
            .await?
            .map(|(state, version)| SourceRecord { state, version }))
    }

    async fn list(
        &self,
        tenant: TenantId,
        query: &SourceListQuery,
    ) -> Result<Vec<SourceRecord>, AppError> {
        Ok(self
            .page(
                tenant,
                query.include_deleted,
                SourceStatus::Active.as_str(),
                query.before,
                query.limit,
            )
            .await?
            .into_iter()
            .map(|(state, version)| SourceRecord { state, version })
            .collect())
    }

    async fn count(&self, tenant: TenantId) -> Result<u64, AppError> {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE tenant_id = $1 AND status = 'active'",
            self.table
        ))
        .bind(tenant.as_uuid())
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }
}

#[async_trait]
impl UpstreamReadModel for PgStateReadModel<UpstreamSubscription> {
    async fn get(
        &self,
        tenant: TenantId,
        id: UpstreamId,
    ) -> Result<Option<UpstreamRecord>, AppError> {
        Ok(self
            .one(tenant, *id.as_uuid())
            .await?
            .map(|(state, version)| UpstreamRecord { state, version }))
    }

    async fn list(
        &self,
        tenant: TenantId,
        include_removed: bool,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<UpstreamRecord>, AppError> {
        Ok(self
            .page(tenant, include_removed, "active", before, limit)
            .await?
            .into_iter()
            .map(|(state, version)| UpstreamRecord { state, version })
            .collect())
    }
}

/// Refused inbound requests in `inbound_rejections`.
#[derive(Debug, Clone)]
pub struct PgRejectionLog {
    pool: PgPool,
}

impl PgRejectionLog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl RejectionLog for PgRejectionLog {
    async fn record(&self, r: &NewRejection) -> Result<(), AppError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // One refusal of a source at a time, so that pruning sees the rows
        // of the others (two-key advisory locks: a space of their own).
        sqlx::query("SELECT pg_advisory_xact_lock(7301, hashtext($1::text))")
            .bind(r.source_id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(&format!(
            "INSERT INTO {REJECTIONS_TABLE}
               (tenant_id, source_id, reason, detail, remote_addr, request_id, body_sha256, body_bytes, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(r.tenant_id.as_uuid())
        .bind(r.source_id.as_uuid())
        .bind(r.reason)
        .bind(&r.detail)
        .bind(r.remote_addr.as_deref())
        .bind(&r.request_id)
        .bind(&r.body_sha256)
        .bind(i64::try_from(r.body_bytes).unwrap_or(i64::MAX))
        .bind(r.received_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        // A flood of bad requests keeps the newest ones only. Every insert
        // looks (one step down the source's index); ids are shared by all
        // sources, so counting them would skip a source.
        sqlx::query(&format!(
            "DELETE FROM {REJECTIONS_TABLE}
              WHERE source_id = $1 AND id <= (
                SELECT id FROM {REJECTIONS_TABLE} WHERE source_id = $1
                 ORDER BY id DESC OFFSET $2 LIMIT 1)"
        ))
        .bind(r.source_id.as_uuid())
        .bind(MAX_REJECTIONS_PER_SOURCE)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn list(
        &self,
        tenant: TenantId,
        source: SourceId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RejectionRecord>, AppError> {
        let rows = sqlx::query(&format!(
            "SELECT id, source_id, reason, detail, remote_addr, request_id, body_sha256, body_bytes, received_at
               FROM {REJECTIONS_TABLE}
              WHERE tenant_id = $1 AND source_id = $2 AND ($3::bigint IS NULL OR id < $3)
              ORDER BY id DESC LIMIT $4"
        ))
        .bind(tenant.as_uuid())
        .bind(source.as_uuid())
        .bind(before)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| -> Result<RejectionRecord, sqlx::Error> {
                Ok(RejectionRecord {
                    id: row.try_get("id")?,
                    source_id: SourceId::from_uuid(row.try_get("source_id")?),
                    reason: row.try_get("reason")?,
                    detail: row.try_get("detail")?,
                    remote_addr: row.try_get("remote_addr")?,
                    request_id: row.try_get("request_id")?,
                    body_sha256: row.try_get("body_sha256")?,
                    body_bytes: u64::try_from(row.try_get::<i64, _>("body_bytes")?)
                        .unwrap_or_default(),
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(unavailable)
    }
}
