//! Tenants and API keys in Postgres.

use super::log_reader::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{ApiKeyRecord, TenantDirectory};
use hookline_application::AppError;
use hookline_domain::TenantId;
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct PgTenantDirectory {
    pool: PgPool,
}

impl PgTenantDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl TenantDirectory for PgTenantDirectory {
    async fn insert_tenant(
        &self,
        tenant_id: TenantId,
        name: &str,
        key_id: Uuid,
        key_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(tenant_id.as_uuid())
            .bind(name)
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, key_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_id)
        .bind(tenant_id.as_uuid())
        .bind(key_hash)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, AppError> {
        let row = sqlx::query(
            "SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|r| {
            Ok(ApiKeyRecord {
                key_id: r.try_get("id").map_err(unavailable)?,
                tenant_id: TenantId::from_uuid(r.try_get("tenant_id").map_err(unavailable)?),
            })
        })
        .transpose()
    }
}
