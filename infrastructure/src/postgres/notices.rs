//! The outbox of operational notices (`operational_notices`): written by
//! the live projections inside their transaction, claimed with a lease and
//! removed by the notifier once published.

use super::log_reader::unavailable;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_application::operational::{self, Notice, NoticeOutbox};
use hookline_application::AppError;
use hookline_domain::{EventId, SubscriptionId, TenantId};
use sqlx::{PgConnection, PgPool, Row};
use std::time::Duration;
use uuid::Uuid;

pub const TABLE: &str = "operational_notices";

/// Keeps `notices` (in the caller's transaction). A notice already kept is
/// left as it is.
///
/// # Errors
/// Database errors.
pub async fn keep(conn: &mut PgConnection, notices: &[Notice]) -> Result<(), sqlx::Error> {
    if notices.is_empty() {
        return Ok(());
    }
    let n = notices.len();
    let (mut ids, mut tenants, mut types, mut data) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut about, mut requests, mut due) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for notice in notices {
        ids.push(*notice.id.as_uuid());
        tenants.push(*notice.tenant_id.as_uuid());
        types.push(notice.event_type);
        data.push(notice.data.clone());
        about.push(notice.about.map(|s| *s.as_uuid()));
        requests.push(notice.request_id.clone());
        due.push(notice.due_at);
    }
    sqlx::query(&format!(
        "INSERT INTO {TABLE} (id, tenant_id, event_type, data, about_subscription, request_id, due_at)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::uuid[], $6::text[],
                              $7::timestamptz[])
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(ids)
    .bind(tenants)
    .bind(types)
    .bind(data)
    .bind(about)
    .bind(requests)
    .bind(due)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct PgNoticeOutbox {
    pool: PgPool,
}

impl PgNoticeOutbox {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The notice kinds by name, as `&'static str`.
fn kind(name: &str) -> Option<&'static str> {
    [
        operational::SUBSCRIPTION_DISABLED,
        operational::SUBSCRIPTION_ENABLED,
        operational::CIRCUIT_OPENED,
        operational::CIRCUIT_CLOSED,
        operational::DELIVERY_ABANDONED,
        operational::ROTATION_ENDING,
    ]
    .into_iter()
    .find(|k| *k == name)
}

#[async_trait]
impl NoticeOutbox for PgNoticeOutbox {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Notice>, AppError> {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(30));
        let rows = sqlx::query(&format!(
            "UPDATE {TABLE} n SET lease_until = $2
              WHERE id IN (SELECT id FROM {TABLE}
                            WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                            ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
              RETURNING id, tenant_id, event_type, data, about_subscription, request_id, due_at"
        ))
        .bind(now)
        .bind(now + lease)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let mut notices = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get("event_type").map_err(unavailable)?;
            let id: Uuid = row.try_get("id").map_err(unavailable)?;
            let Some(event_type) = kind(&name) else {
                tracing::warn!(notice = %id, event_type = %name, "unknown operational notice kind; dropped");
                self.done(EventId::from_uuid(id)).await?;
                continue;
            };
            let about: Option<Uuid> = row.try_get("about_subscription").map_err(unavailable)?;
            notices.push(Notice {
                id: EventId::from_uuid(id),
                tenant_id: TenantId::from_uuid(row.try_get("tenant_id").map_err(unavailable)?),
                event_type,
                data: row.try_get("data").map_err(unavailable)?,
                about: about.map(SubscriptionId::from_uuid),
                due_at: row.try_get("due_at").map_err(unavailable)?,
                request_id: row.try_get("request_id").map_err(unavailable)?,
            });
        }
        notices.sort_by_key(|n| n.due_at);
        Ok(notices)
    }

    async fn done(&self, id: EventId) -> Result<(), AppError> {
        sqlx::query(&format!("DELETE FROM {TABLE} WHERE id = $1"))
            .bind(id.as_uuid())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
