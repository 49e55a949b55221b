//! Active subscriptions in memory, for publishing and attempts. Entries are
//! tagged with the `subscriptions` projection's position when loaded and
//! reloaded once the projection has moved past it, so a publish right after
//! a subscription change (whose response waited for the projection) sees it.

use super::log_reader::unavailable;
use async_trait::async_trait;
use hookline_application::ports::{LogPosition, SubscriptionDirectory};
use hookline_application::AppError;
use hookline_domain::subscription::SubscriptionState;
use hookline_domain::{SubscriptionId, TenantId};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

type Tagged<T> = (LogPosition, T);

#[derive(Debug)]
pub struct CachedSubscriptions {
    pool: PgPool,
    progress: watch::Receiver<LogPosition>,
    tenants: RwLock<HashMap<TenantId, Tagged<Arc<Vec<SubscriptionState>>>>>,
    by_id: RwLock<HashMap<SubscriptionId, Tagged<Option<Arc<SubscriptionState>>>>>,
}

fn decode(value: serde_json::Value) -> Result<SubscriptionState, AppError> {
    serde_json::from_value(value)
        .map_err(|e| AppError::Internal(format!("subscriptions_view row: {e}")))
}

impl CachedSubscriptions {
    /// `progress`: the subscriptions projection's position in this process.
    pub fn new(pool: PgPool, progress: watch::Receiver<LogPosition>) -> Self {
        Self {
            pool,
            progress,
            tenants: RwLock::new(HashMap::new()),
            by_id: RwLock::new(HashMap::new()),
        }
    }

    fn now(&self) -> LogPosition {
        *self.progress.borrow()
    }
}

#[async_trait]
impl SubscriptionDirectory for CachedSubscriptions {
    async fn live_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Arc<Vec<SubscriptionState>>, AppError> {
        let now = self.now();
        if let Some((at, list)) = self
            .tenants
            .read()
            .ok()
            .and_then(|m| m.get(&tenant).cloned())
        {
            if at >= now {
                return Ok(list);
            }
        }
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT state FROM subscriptions_view WHERE tenant_id = $1 AND status <> 'deleted' ORDER BY created_at",
        )
        .bind(tenant.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let list = Arc::new(
            rows.into_iter()
                .map(decode)
                .collect::<Result<Vec<_>, _>>()?,
        );
        if let Ok(mut map) = self.tenants.write() {
            map.insert(tenant, (now, list.clone()));
        }
        Ok(list)
    }

    async fn get(&self, id: SubscriptionId) -> Result<Option<Arc<SubscriptionState>>, AppError> {
        let now = self.now();
        if let Some((at, state)) = self.by_id.read().ok().and_then(|m| m.get(&id).cloned()) {
            if at >= now {
                return Ok(state);
            }
        }
        let row: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT state FROM subscriptions_view WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        let state = row.map(decode).transpose()?.map(Arc::new);
        if let Ok(mut map) = self.by_id.write() {
            map.insert(id, (now, state.clone()));
        }
        Ok(state)
    }
}
