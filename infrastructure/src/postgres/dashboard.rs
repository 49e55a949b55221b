//! The console's bulk reads of deliveries (dashboard, list outcomes), over
//! the deliveries and queue read models.

use super::log_reader::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::ports::{
    DeliveryBucket, DeliveryStats, FailingSubscription, LastOutcome, QueueDepth,
};
use hookline_application::AppError;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::{SubscriptionId, TenantId};
use sqlx::{PgPool, Row};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct PgDeliveryStats {
    pool: PgPool,
}

impl PgDeliveryStats {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[async_trait]
impl DeliveryStats for PgDeliveryStats {
    async fn buckets(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        bucket_seconds: u32,
    ) -> Result<Vec<DeliveryBucket>, AppError> {
        let rows = sqlx::query(
            "SELECT to_timestamp(floor(extract(epoch FROM created_at) / $3) * $3) AS start,
                    count(*) AS total,
                    count(*) FILTER (WHERE status = 'delivered') AS delivered,
                    count(*) FILTER (WHERE status IN ('failed', 'abandoned')) AS failed
               FROM deliveries_view
              WHERE tenant_id = $1 AND created_at >= $2
              GROUP BY 1 ORDER BY 1",
        )
        .bind(tenant.as_uuid())
        .bind(since)
        .bind(f64::from(bucket_seconds))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryBucket {
                    start: r.try_get("start")?,
                    total: count(r.try_get("total")?),
                    delivered: count(r.try_get("delivered")?),
                    failed: count(r.try_get("failed")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn failing(
        &self,
        tenant: TenantId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<FailingSubscription>, AppError> {
        let rows = sqlx::query(
            "SELECT subscription_id, max(url) AS url,
                    count(*) FILTER (WHERE status IN ('failed', 'abandoned')
                                        OR (status = 'pending' AND attempts > 0 AND last_error IS NOT NULL)) AS failed,
                    count(*) AS total,
                    (array_agg(last_error ORDER BY updated_at DESC)
                        FILTER (WHERE last_error IS NOT NULL))[1] AS last_error
               FROM deliveries_view
              WHERE tenant_id = $1 AND created_at >= $2
              GROUP BY subscription_id
             HAVING count(*) FILTER (WHERE status IN ('failed', 'abandoned')
                                        OR (status = 'pending' AND attempts > 0 AND last_error IS NOT NULL)) > 0
              ORDER BY 3 DESC, 1 LIMIT $3",
        )
        .bind(tenant.as_uuid())
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(FailingSubscription {
                    subscription_id: SubscriptionId::from_uuid(r.try_get("subscription_id")?),
                    url: r.try_get("url")?,
                    failed: count(r.try_get("failed")?),
                    total: count(r.try_get("total")?),
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(unavailable)
    }

    async fn queue(&self, tenant: TenantId, now: DateTime<Utc>) -> Result<QueueDepth, AppError> {
        let row = sqlx::query(
            "SELECT count(*) AS queued, count(*) FILTER (WHERE due_at <= $2) AS due,
                    min(due_at) FILTER (WHERE due_at <= $2) AS oldest
               FROM delivery_queue WHERE tenant_id = $1",
        )
        .bind(tenant.as_uuid())
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(QueueDepth {
            queued: count(row.try_get("queued").map_err(unavailable)?),
            due: count(row.try_get("due").map_err(unavailable)?),
            oldest_due_at: row.try_get("oldest").map_err(unavailable)?,
        })
    }

    async fn last_outcomes(
        &self,
        tenant: TenantId,
        ids: &[SubscriptionId],
    ) -> Result<Vec<LastOutcome>, AppError> {
        let ids: Vec<Uuid> = ids.iter().map(|i| *i.as_uuid()).collect();
        let rows = sqlx::query(
            "SELECT DISTINCT ON (subscription_id) subscription_id, status, last_status_code, updated_at
               FROM deliveries_view
              WHERE tenant_id = $1 AND subscription_id = ANY($2)
              ORDER BY subscription_id, created_at DESC, id DESC",
        )
        .bind(tenant.as_uuid())
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let text: String = r.try_get("status").map_err(unavailable)?;
            let Some(status) = DeliveryStatus::parse(&text) else {
                continue;
            };
            out.push(LastOutcome {
                subscription_id: SubscriptionId::from_uuid(
                    r.try_get("subscription_id").map_err(unavailable)?,
                ),
                status,
                status_code: r.try_get("last_status_code").map_err(unavailable)?,
                at: r.try_get("updated_at").map_err(unavailable)?,
            });
        }
        Ok(out)
    }
}
