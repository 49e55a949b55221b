//! Reading deliveries and attempts, manual retry and recovery.

use super::fold;
use super::view::{AttemptView, DeliveryDetail, DeliveryView};
use crate::commands::{execute_with_retry, Written};
use crate::context::{CommandContext, RequestId};
use crate::error::AppError;
use crate::history::HistoryEntry;
use crate::pagination::{decode_cursor, paginate, parse_limit, parse_time, Page};
use crate::ports::{AttemptRecord, DeliveryRecord};
use crate::ports::{
    Clock, CommandStore, DeliveryListQuery, DeliveryReadModel, EventLog, LogPosition,
    ProjectionWaiter, SubscriptionReadModel,
};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::delivery::{
    Delivery, DeliveryCommand, DeliveryError, DeliveryEvent, DeliveryStatus, RetryDelivery,
};

use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::{DeliveryId, EventPattern, SubscriptionId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Query parameters of `GET /v1/deliveries`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListDeliveriesParams {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Query parameters of `GET /v1/deliveries/{id}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GetDeliveryParams {
    /// Read the delivery as it was at this time (RFC 3339).
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Body of `POST /v1/subscriptions/{id}/recover`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverInput {
    #[serde(default)]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Recovered {
    /// How many failed or abandoned deliveries were queued again.
    pub recovered: usize,
    pub delivery_ids: Vec<DeliveryId>,
}

pub struct DeliveryService {
    store: Arc<dyn CommandStore<Delivery>>,
    read: Arc<dyn DeliveryReadModel>,
    subscriptions: Arc<dyn SubscriptionReadModel>,
    log: Arc<dyn EventLog>,
    clock: Arc<dyn Clock>,
    waiter: Arc<dyn ProjectionWaiter>,
    consistency_timeout: Duration,
}

impl fmt::Debug for DeliveryService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryService").finish_non_exhaustive()
    }
}

fn map_error(id: DeliveryId, e: AggregateError<DeliveryError>) -> AppError {
    match e {
        AggregateError::UserError(DeliveryError::NotFound) => AppError::not_found("delivery", id),
        AggregateError::UserError(DeliveryError::AlreadyDelivered) => AppError::conflict(
            "already_delivered",
            format!("delivery '{id}' was already delivered; there is nothing to retry"),
        ),
        AggregateError::UserError(DeliveryError::AttemptDue) => AppError::conflict(
            "attempt_due",
            format!(
                "delivery '{id}' already has an attempt due or under way; retry it after that attempt's outcome"
            ),
        ),
        AggregateError::UserError(other) => {
            AppError::conflict("delivery_conflict", other.to_string())
        }
        other => crate::pagination::map_store_error(other),
    }
}

impl DeliveryService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn CommandStore<Delivery>>,
        read: Arc<dyn DeliveryReadModel>,
        subscriptions: Arc<dyn SubscriptionReadModel>,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
        waiter: Arc<dyn ProjectionWaiter>,
        consistency_timeout: Duration,
    ) -> Self {
        Self {
            store,
            read,
            subscriptions,
            log,
            clock,
            waiter,
            consistency_timeout,
        }
    }

    /// # Errors
    /// Validation errors for malformed filters.
    pub async fn list(
        &self,
        tenant: TenantId,
        params: ListDeliveriesParams,
    ) -> Result<Page<DeliveryView>, AppError> {
        let limit = parse_limit(params.limit)?;
        let before = params.cursor.as_deref().map(decode_cursor).transpose()?;
        let event_type = params
            .event
            .as_deref()
            .map(|e| EventPattern::parse(e, "event").map(|p| p.to_string()))
            .transpose()?;
        let status = params
            .status
            .as_deref()
            .map(|s| {
                DeliveryStatus::parse(s)
                    .map(|st| st.as_str().to_string())
                    .ok_or_else(|| {
                        AppError::invalid(ValidationError::new(
                            "status",
                            "must be one of pending, delivered, failed, abandoned",
                        ))
                    })
            })
            .transpose()?;
        let subscription_id = params
            .subscription_id
            .as_deref()
            .map(SubscriptionId::parse)
            .transpose()?;
        if let Some(r) = &params.request_id {
            RequestId::lookup("request_id", r)?;
        }
        let query = DeliveryListQuery {
            event_type,
            status,
            subscription_id,
            request_id: params.request_id,
            since: parse_time("since", params.since.as_deref())?,
            until: parse_time("until", params.until.as_deref())?,
            before,
            limit,
        };
        let rows = self.read.list(tenant, &query).await?;
        paginate(rows, limit, |r| (r.created_at, *r.id.as_uuid()), Ok)
    }

    /// The delivery, its attempts and its body, folded from its events in
    /// the log (exact, whatever the read models' lag); with `as_of`, as they
    /// were at that time.
    ///
    /// # Errors
    /// 404 when the tenant has no such delivery (at that time).
    pub async fn get(
        &self,
        tenant: TenantId,
        id: DeliveryId,
        params: &GetDeliveryParams,
    ) -> Result<DeliveryDetail, AppError> {
        let as_of = parse_time("as_of", params.as_of.as_deref())?;
        let events = self
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        let payload = events
            .first()
            .and_then(|e| e.payload.str_field("body"))
            .map(|body| {
                RawValue::from_string(body.clone())
                    .or_else(|_| RawValue::from_string(serde_json::Value::String(body).to_string()))
            })
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?
            .unwrap_or_else(|| RawValue::NULL.to_owned());
        let (record, attempts) =
            Self::fold_until(&events, as_of.unwrap_or(DateTime::<Utc>::MAX_UTC))?;
        let record = record
            .filter(|r| r.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("delivery", id))?;
        Ok(DeliveryDetail {
            delivery: record,
            payload,
            attempt_log: attempts,
        })
    }

    /// The delivery as its events recorded up to `at` describe it.
    fn fold_until(
        events: &[crate::ports::StoredEvent],
        at: DateTime<Utc>,
    ) -> Result<(Option<DeliveryRecord>, Vec<AttemptRecord>), AppError> {
        let mut record = None;
        let mut attempts = Vec::new();
        for stored in events.iter().filter(|e| e.recorded_at <= at) {
            let event: DeliveryEvent = stored
                .payload
                .parse()
                .map_err(|e| AppError::Internal(format!("delivery event unreadable: {e}")))?;
            if let Some(a) = fold::apply(&mut record, stored, &event) {
                attempts.push(a);
            }
        }
        Ok((record, attempts))
    }

    /// A delivery's attempts, from the log.
    ///
    /// # Errors
    /// 404 when the tenant has no such delivery.
    pub async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptView>, AppError> {
        let detail = self.get(tenant, id, &GetDeliveryParams::default()).await?;
        Ok(detail.attempt_log)
    }

    /// # Errors
    /// 404 when the tenant has no such delivery.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<HistoryEntry>, AppError> {
        let events = self
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        let owner = events
            .first()
            .and_then(|e| e.payload.str_field("tenant_id"));
        if owner != Some(tenant.to_string()) {
            return Err(AppError::not_found("delivery", id));
        }
        Ok(events.into_iter().map(HistoryEntry::from_stored).collect())
    }

    /// Every attempt a request caused (its publish, or a manual retry).
    ///
    /// # Errors
    /// A validation error for a malformed request id.
    pub async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: Option<&str>,
    ) -> Result<Vec<AttemptView>, AppError> {
        let request_id = request_id
            .ok_or_else(|| AppError::invalid(ValidationError::new("request_id", "is required")))?;
        let request_id = RequestId::lookup("request_id", request_id)?;
        self.read
            .attempts_by_request(tenant, request_id.as_str())
            .await
    }

    async fn retry_one(
        &self,
        ctx: &CommandContext,
        id: DeliveryId,
    ) -> Result<Option<LogPosition>, AppError> {
        execute_with_retry(
            self.store.as_ref(),
            &id.to_string(),
            || {
                DeliveryCommand::Retry(RetryDelivery {
                    tenant_id: ctx.tenant_id,
                    at: self.clock.now(),
                })
            },
            ctx.metadata(self.clock.now()),
        )
        .await
        .map_err(|e| map_error(id, e))
    }

    /// Deliveries are attempted again only for an active subscription (the
    /// worker abandons the others): 404 for a missing one, 409 otherwise.
    async fn ensure_active(&self, tenant: TenantId, id: SubscriptionId) -> Result<(), AppError> {
        let record = self
            .subscriptions
            .get(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("subscription", id))?;
        match record.state.status {
            SubscriptionStatus::Active => Ok(()),
            SubscriptionStatus::Deleted => Err(AppError::conflict(
                "subscription_deleted",
                format!("subscription '{id}' has been deleted; its deliveries cannot be retried"),
            )),
            other => Err(AppError::conflict(
                "subscription_inactive",
                format!(
                    "subscription '{id}' is {}; enable it before retrying its deliveries",
                    other.as_str()
                ),
            )),
        }
    }

    async fn settle(&self, position: Option<LogPosition>) -> bool {
        match position {
            Some(p) => {
                self.waiter
                    .wait_for(Delivery::TYPE, p, self.consistency_timeout)
                    .await
            }
            None => true,
        }
    }

    /// Queues another attempt now (history keeps every earlier attempt).
    ///
    /// # Errors
    /// 404, or 409 `already_delivered`.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, delivery_id = %id))]
    pub async fn retry(
        &self,
        ctx: &CommandContext,
        id: DeliveryId,
    ) -> Result<Written<DeliveryView>, AppError> {
        let current = self
            .read
            .get(ctx.tenant_id, id)
            .await?
            .ok_or_else(|| AppError::not_found("delivery", id))?;
        if current.status != DeliveryStatus::Delivered.as_str() {
            self.ensure_active(ctx.tenant_id, current.subscription_id)
                .await?;
        }
        let position = self.retry_one(ctx, id).await?;
        let consistent = self.settle(position).await;
        let view = self
            .read
            .get(ctx.tenant_id, id)
            .await?
            .ok_or_else(|| AppError::not_found("delivery", id))?;
        tracing::info!("manual retry requested");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Queues again every failed or abandoned delivery of a subscription
    /// created since `since`.
    ///
    /// # Errors
    /// 404 for another tenant's subscription; a validation error for `since`.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %subscription))]
    pub async fn recover(
        &self,
        ctx: &CommandContext,
        subscription: SubscriptionId,
        input: RecoverInput,
    ) -> Result<Written<Recovered>, AppError> {
        let since = parse_time("since", input.since.as_deref())?.ok_or_else(|| {
            AppError::invalid(ValidationError::new(
                "since",
                "is required (an RFC 3339 time)",
            ))
        })?;
        self.ensure_active(ctx.tenant_id, subscription).await?;
        let candidates = self
            .read
            .recoverable(ctx.tenant_id, subscription, since)
            .await?;
        let mut recovered = Vec::new();
        let mut last = None;
        for id in candidates {
            match self.retry_one(ctx, id).await {
                Ok(position) => {
                    last = position.max(last);
                    recovered.push(id);
                }
                // Delivered meanwhile, or queued again meanwhile (by a
                // retry or a concurrent recover): nothing to recover.
                Err(AppError::Conflict {
                    code: "already_delivered" | "attempt_due",
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        let consistent = self.settle(last).await;
        tracing::info!(recovered = recovered.len(), "deliveries recovered");
        Ok(Written {
            value: Recovered {
                recovered: recovered.len(),
                delivery_ids: recovered,
            },
            consistent,
        })
    }
}
