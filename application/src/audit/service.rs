//! The audit log API and support's request traces.

use crate::context::RequestId;
use crate::error::AppError;
use crate::ports::{
    AttemptRecord, AuditLog, AuditQuery, DeliveryReadModel, DeliveryRecord, ProjectionWaiter,
    StoredEvent,
};
use chrono::{DateTime, Utc};
use hookline_domain::{DeliveryId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

pub const DEFAULT_AUDIT_LIMIT: u32 = 100;
pub const MAX_AUDIT_LIMIT: u32 = 1000;

/// One event as auditors see it: everything the log stores (sealed values
/// stay sealed) and where it stands in commit order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    pub position: i64,
    pub tx_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredEvent> for AuditEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            position: e.position,
            tx_id: e.tx_id,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload.to_value(),
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

/// Query parameters of `GET /v1/audit/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub aggregate_type: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub data: Vec<AuditEvent>,
    /// Pass as `after` for the next page (the last position returned, or
    /// the same `after` when nothing new is visible yet).
    pub next_after: i64,
}

/// Everything one request caused, for support.
#[derive(Debug, Clone, Serialize)]
pub struct RequestTrace {
    pub request_id: String,
    pub events: Vec<AuditEvent>,
    pub deliveries: Vec<DeliveryRecord>,
    pub attempts: Vec<AttemptRecord>,
}

pub struct AuditService {
    log: Arc<dyn AuditLog>,
    deliveries: Arc<dyn DeliveryReadModel>,
    waiter: Arc<dyn ProjectionWaiter>,
    consistency_timeout: std::time::Duration,
}

impl fmt::Debug for AuditService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditService").finish_non_exhaustive()
    }
}

fn check_name(field: &str, value: Option<String>) -> Result<Option<String>, AppError> {
    match value {
        Some(v)
            if v.is_empty()
                || v.len() > 100
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Err(
                ValidationError::new(field, "must be a name such as Delivery or AttemptFailed")
                    .into(),
            )
        }
        other => Ok(other),
    }
}

impl AuditService {
    pub fn new(
        log: Arc<dyn AuditLog>,
        deliveries: Arc<dyn DeliveryReadModel>,
        waiter: Arc<dyn ProjectionWaiter>,
        consistency_timeout: std::time::Duration,
    ) -> Self {
        Self {
            log,
            deliveries,
            waiter,
            consistency_timeout,
        }
    }

    /// The tenant's events in commit order.
    ///
    /// # Errors
    /// Validation errors for `after`, `limit` or the name filters.
    pub async fn page(&self, tenant: TenantId, params: AuditParams) -> Result<AuditPage, AppError> {
        let limit = match params.limit {
            None => DEFAULT_AUDIT_LIMIT,
            Some(n) if (1..=MAX_AUDIT_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(ValidationError::new(
                    "limit",
                    format!("must be between 1 and {MAX_AUDIT_LIMIT}"),
                )
                .into())
            }
        };
        let after = params.after.unwrap_or(0);
        if after < 0 {
            return Err(ValidationError::new("after", "must be 0 or a position").into());
        }
        let query = AuditQuery {
            tenant: Some(tenant),
            after,
            limit,
            aggregate_type: check_name("aggregate_type", params.aggregate_type)?,
            event_type: check_name("event_type", params.event_type)?,
        };
        let events = self.log.page(&query).await?;
        let next_after = events.last().map_or(after, |e| e.position);
        Ok(AuditPage {
            data: events.into_iter().map(AuditEvent::from).collect(),
            next_after,
        })
    }

    /// Everything `request_id` caused for `tenant`: its events (any
    /// aggregate), the deliveries involved, and every attempt.
    ///
    /// # Errors
    /// 404 when the request caused nothing for this tenant.
    pub async fn trace(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<RequestTrace, AppError> {
        RequestId::lookup("request_id", request_id)?;
        // The deliveries and attempts come from read models: let them catch
        // up with the log first (bounded), so the trace is complete.
        self.waiter
            .wait_caught_up("Delivery", self.consistency_timeout)
            .await;
        let events = self.log.by_request(tenant, request_id).await?;
        if events.is_empty() {
            return Err(AppError::not_found("request", request_id));
        }
        let mut ids: Vec<DeliveryId> = events
            .iter()
            .filter(|e| e.aggregate_type == "Delivery")
            .filter_map(|e| DeliveryId::parse(&e.aggregate_id).ok())
            .collect();
        ids.sort();
        ids.dedup();
        let mut deliveries = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(d) = self.deliveries.get(tenant, id).await? {
                deliveries.push(d);
            }
        }
        let attempts = self
            .deliveries
            .attempts_by_request(tenant, request_id)
            .await?;
        Ok(RequestTrace {
            request_id: request_id.to_string(),
            events: events.into_iter().map(AuditEvent::from).collect(),
            deliveries,
            attempts,
        })
    }
}
