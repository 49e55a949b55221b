//! Reading deliveries and attempts, manual retry and recovery.

use super::fold;
use super::view::DeliveryDetail;
use crate::commands::{execute_with_retry, Written};
use crate::context::{CommandContext, RequestId};
use crate::error::AppError;
use crate::history::{self, HistoryEntry, HistoryRequest};
use crate::metadata::EventMetadata;
use crate::pagination::{paginate, Page, PageRequest};
use crate::ports::{
    AggregateStore, AppendError, Appended, AttemptListQuery, AttemptListRow, AttemptRecord,
    AttemptResult, AttemptedMessagesQuery, Batch, Change, DeliveryListQuery, DeliveryReadModel,
    DeliveryRecord, LogPosition, SubscriptionReadModel, SubscriptionRecord, SubscriptionStats,
};
use crate::shared::Shared;
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, AggregateError};
use hookline_domain::delivery::{
    Delivery, DeliveryCommand, DeliveryError, DeliveryEvent, DeliveryStatus, EnqueueDelivery,
    RetryDelivery,
};
use hookline_domain::message::{envelope_data, Message};
use hookline_domain::subscription::{PayloadFormat, SubscriptionStatus};
use hookline_domain::{DeliveryId, EventId, EventPattern, EventType, SubscriptionId, TenantId};
use serde_json::value::RawValue;
use std::fmt;
use std::sync::Arc;

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct ListDeliveries {
    pub event: Option<EventPattern>,
    pub status: Option<DeliveryStatus>,
    pub subscription_id: Option<SubscriptionId>,
    pub request_id: Option<RequestId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub page: PageRequest,
}

/// Which attempts to list (of one message, one subscription, or both).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListAttempts {
    pub event_id: Option<EventId>,
    pub subscription_id: Option<SubscriptionId>,
    /// Only this attempt.
    pub attempt_id: Option<uuid::Uuid>,
    pub result: Option<AttemptResult>,
    /// Response status codes in this range (inclusive); `(0, 99)` also
    /// matches attempts that got no response.
    pub status_codes: Option<(i32, i32)>,
    pub event_types: Option<Vec<String>>,
    pub channel: Option<String>,
    /// Started strictly after / before.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Attempts past this one in the list's order.
    pub after: Option<uuid::Uuid>,
    pub oldest_first: bool,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recovered {
    /// The failed or abandoned deliveries queued again.
    pub delivery_ids: Vec<DeliveryId>,
}

pub struct DeliveryService {
    shared: Shared,
    store: Arc<dyn AggregateStore<Delivery>>,
    read: Arc<dyn DeliveryReadModel>,
    subscriptions: Arc<dyn SubscriptionReadModel>,
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
        other => crate::commands::map_store_error(other),
    }
}

impl DeliveryService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<Delivery>>,
        read: Arc<dyn DeliveryReadModel>,
        subscriptions: Arc<dyn SubscriptionReadModel>,
    ) -> Self {
        Self {
            shared,
            store,
            read,
            subscriptions,
        }
    }

    /// Newest first, keyset-paginated.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        query: ListDeliveries,
    ) -> Result<Page<DeliveryRecord>, AppError> {
        let limit = query.page.limit;
        let rows = self
            .read
            .list(
                tenant,
                &DeliveryListQuery {
                    event_type: query.event,
                    status: query.status,
                    subscription_id: query.subscription_id,
                    request_id: query.request_id,
                    since: query.since,
                    until: query.until,
                    before: query.page.before,
                    limit,
                },
            )
            .await?;
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
        as_of: Option<DateTime<Utc>>,
    ) -> Result<DeliveryDetail, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        let inline = events.first().and_then(|e| e.payload.str_field("body"));
        let body = match inline {
            Some(body) => Some(body),
            None => self.message_body(&events).await?,
        };
        let (record, attempts) =
            fold::records_until(&events, as_of.unwrap_or(DateTime::<Utc>::MAX_UTC))?;
        let Some(record) = record.filter(|r| r.tenant_id == tenant) else {
            return Err(match as_of {
                Some(at) => {
                    let (now, _) = fold::records_until(&events, DateTime::<Utc>::MAX_UTC)?;
                    let owned = now.is_some_and(|r| r.tenant_id == tenant);
                    crate::fold::absent_at(&events, at, owned, "delivery", id)
                }
                None => AppError::not_found("delivery", id),
            });
        };
        // What the receiver gets: a `raw` subscription only the published
        // `data` (as the worker sends it), the others the whole envelope.
        let raw = self
            .subscriptions
            .get(tenant, record.subscription_id)
            .await?
            .is_some_and(|s| s.state.payload_format == PayloadFormat::Raw);
        let body = match body {
            Some(envelope) if raw => {
                Some(envelope_data(&envelope).map_or(envelope.clone(), str::to_string))
            }
            other => other,
        };
        let payload = body
            .map(|body| {
                RawValue::from_string(body.clone())
                    .or_else(|_| RawValue::from_string(serde_json::Value::String(body).to_string()))
            })
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?
            .unwrap_or_else(|| RawValue::NULL.to_owned());
        Ok(DeliveryDetail {
            delivery: record,
            payload,
            attempt_log: attempts,
        })
    }

    /// The body a delivery's message holds (deliveries enqueued from
    /// version 2.0 on carry none of their own).
    async fn message_body(
        &self,
        events: &[crate::ports::StoredEvent],
    ) -> Result<Option<String>, AppError> {
        let Some(message) = events.first().and_then(|e| e.payload.str_field("event_id")) else {
            return Ok(None);
        };
        let stored = self
            .shared
            .log
            .aggregate_history(hookline_domain::message::Message::TYPE, &message)
            .await?;
        Ok(stored.first().and_then(|e| e.payload.str_field("body")))
    }

    /// A delivery's attempts, from the log.
    ///
    /// # Errors
    /// 404 when the tenant has no such delivery.
    pub async fn attempts(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<AttemptRecord>, AppError> {
        Ok(self.get(tenant, id, None).await?.attempt_log)
    }

    /// # Errors
    /// 404 when the tenant has no such delivery.
    pub async fn history(
        &self,
        tenant: TenantId,
        id: DeliveryId,
        request: HistoryRequest,
    ) -> Result<Page<HistoryEntry>, AppError> {
        history::read_owned_page(
            self.shared.log.as_ref(),
            Delivery::TYPE,
            &id.to_string(),
            request,
            tenant,
        )
        .await?
        .ok_or_else(|| AppError::not_found("delivery", id))
    }

    /// Who owns a delivery (operators' tools read any tenant's).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn owner(&self, id: DeliveryId) -> Result<Option<TenantId>, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        Ok(events.first().and_then(|e| e.meta()).map(|m| m.tenant_id))
    }

    /// A delivery's events, typed, with who caused each (a timeline).
    ///
    /// # Errors
    /// 404 when the tenant has no such delivery.
    pub async fn timeline(
        &self,
        tenant: TenantId,
        id: DeliveryId,
    ) -> Result<Vec<(Option<EventMetadata>, DeliveryEvent)>, AppError> {
        let events = self
            .shared
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        if events.first().and_then(|e| e.meta()).map(|m| m.tenant_id) != Some(tenant) {
            return Err(AppError::not_found("delivery", id));
        }
        events
            .iter()
            .map(|e| Ok((e.meta(), crate::fold::parse::<Delivery>(e)?)))
            .collect()
    }

    /// The attempts a request caused (its publish, or a manual retry), a
    /// page at a time in order of their start.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn attempts_by_request(
        &self,
        tenant: TenantId,
        request_id: &RequestId,
        page: PageRequest,
    ) -> Result<Page<AttemptRecord>, AppError> {
        let rows = self
            .read
            .attempts_by_request(tenant, request_id.as_str(), page.before, page.limit)
            .await?;
        crate::pagination::paginate_after(rows, page.limit)
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
                    at: self.shared.clock.now(),
                })
            },
            &ctx.metadata(self.shared.clock.now()),
        )
        .await
        .map_err(|e| map_error(id, e))
    }

    /// Deliveries are attempted again only for an active subscription (the
    /// worker abandons the others): 404 for a missing one, 409 otherwise.
    async fn ensure_active(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<SubscriptionRecord, AppError> {
        let record = self
            .subscriptions
            .get(tenant, id)
            .await?
            .ok_or_else(|| AppError::not_found("subscription", id))?;
        match record.state.status {
            SubscriptionStatus::Active => Ok(record),
            SubscriptionStatus::Deleted => Err(AppError::conflict(
                "subscription_deleted",
                format!("subscription '{id}' has been deleted; its deliveries cannot be retried"),
            )),
            SubscriptionStatus::Disabled => Err(AppError::conflict(
                "subscription_inactive",
                format!(
                    "subscription '{id}' is disabled; enable it before retrying its deliveries"
                ),
            )),
        }
    }

    /// The delivery from the read model, or folded from the log when the
    /// read model does not have it yet (just published: a retry answered
    /// 404 for a delivery `GET` showed).
    async fn record(&self, tenant: TenantId, id: DeliveryId) -> Result<DeliveryRecord, AppError> {
        if let Some(found) = self.read.get(tenant, id).await? {
            return Ok(found);
        }
        let events = self
            .shared
            .log
            .aggregate_history(Delivery::TYPE, &id.to_string())
            .await?;
        fold::records_until(&events, DateTime::<Utc>::MAX_UTC)?
            .0
            .filter(|r| r.tenant_id == tenant)
            .ok_or_else(|| AppError::not_found("delivery", id))
    }

    /// Queues another attempt now (history keeps every earlier attempt).
    ///
    /// # Errors
    /// 404, or 409 `already_delivered`, `attempt_due`, or for an inactive
    /// subscription.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, delivery_id = %id))]
    pub async fn retry(
        &self,
        ctx: &CommandContext,
        id: DeliveryId,
    ) -> Result<Written<DeliveryRecord>, AppError> {
        let current = self.record(ctx.tenant_id, id).await?;
        if current.status != DeliveryStatus::Delivered {
            let subscription = self
                .ensure_active(ctx.tenant_id, current.subscription_id)
                .await?;
            // The open circuit's probe goes once per probe interval: a
            // manual retry of it would go at once, again and again, to an
            // endpoint the circuit holds back.
            if let Some(circuit) = subscription
                .state
                .circuit
                .as_ref()
                .filter(|c| c.probe == Some(id))
            {
                return Err(AppError::conflict(
                    "attempt_due",
                    format!(
                        "delivery '{id}' is the probe of its subscription's open circuit: its next attempt goes at {}",
                        circuit.next_probe_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                ));
            }
        }
        let position = self.retry_one(ctx, id).await?;
        let consistent = self.shared.settle(Delivery::TYPE, position).await;
        let view = self.record(ctx.tenant_id, id).await?;
        tracing::info!("manual retry requested");
        Ok(Written {
            value: view,
            consistent,
        })
    }

    /// Attempts of a message or a subscription, newest first (or oldest
    /// first), and whether more follow. The read model follows the log
    /// within milliseconds.
    ///
    /// # Errors
    /// 404 for an `after` attempt the tenant does not have.
    pub async fn list_attempts(
        &self,
        tenant: TenantId,
        query: ListAttempts,
    ) -> Result<(Vec<AttemptListRow>, bool), AppError> {
        let cursor = match query.after {
            Some(id) => {
                // Only an attempt the list could have handed out: one of
                // its subscription's, or of its message's.
                let at = self
                    .read
                    .attempt_cursor(tenant, id)
                    .await?
                    .filter(|c| {
                        query.subscription_id.is_none_or(|s| s == c.subscription_id)
                            && query.event_id.is_none_or(|e| e == c.event_id)
                    })
                    .ok_or_else(|| AppError::not_found("attempt", id))?;
                Some((at.started_at, id))
            }
            None => None,
        };
        let mut rows = self
            .read
            .attempts_matching(
                tenant,
                &AttemptListQuery {
                    event_id: query.event_id,
                    subscription_id: query.subscription_id,
                    attempt_id: query.attempt_id,
                    result: query.result,
                    status_codes: query.status_codes,
                    event_types: query.event_types,
                    channel: query.channel,
                    since: query.since,
                    until: query.until,
                    cursor,
                    oldest_first: query.oldest_first,
                    limit: query.limit,
                },
            )
            .await?;
        let more = rows.len() > query.limit as usize;
        rows.truncate(query.limit as usize);
        Ok((rows, more))
    }

    /// The subscriptions a message went to, each with its latest delivery
    /// of it, by subscription id past `after` (descending when
    /// `backwards`), and whether more follow.
    ///
    /// # Errors
    /// `NotFound` when `after` names a subscription the message did not go
    /// to; storage errors.
    pub async fn destinations(
        &self,
        tenant: TenantId,
        event: EventId,
        after: Option<SubscriptionId>,
        backwards: bool,
        limit: u32,
    ) -> Result<(Vec<DeliveryRecord>, bool), AppError> {
        // Only a subscription the list could have handed out.
        if let Some(sub) = after {
            if !self.read.went_to(tenant, event, sub).await? {
                return Err(AppError::not_found("subscription", sub));
            }
        }
        let mut rows = self
            .read
            .destinations(tenant, event, after, backwards, limit)
            .await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        Ok((rows, more))
    }

    /// The messages delivered to a subscription, each with its latest
    /// delivery there, and whether there are more.
    ///
    /// # Errors
    /// `NotFound` when `q.after` names a message the subscription never
    /// got; storage errors.
    pub async fn attempted_messages(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        q: &AttemptedMessagesQuery,
    ) -> Result<(Vec<DeliveryRecord>, bool), AppError> {
        let mut rows = self
            .read
            .attempted_messages(tenant, subscription, q)
            .await?;
        let more = rows.len() > q.limit as usize;
        rows.truncate(q.limit as usize);
        Ok((rows, more))
    }

    /// A subscription's attempts in `[since, until)` by result, and its
    /// deliveries created then that wait for an attempt or were skipped.
    ///
    /// # Errors
    /// 400 when `since` is not before `until`; storage errors.
    pub async fn subscription_stats(
        &self,
        tenant: TenantId,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<SubscriptionStats, AppError> {
        if since >= until {
            return Err(AppError::BadRequest(
                "the window's start must be before its end".into(),
            ));
        }
        self.read
            .subscription_stats(tenant, subscription, since, until)
            .await
    }

    /// Sends a published event to one subscription again, whatever its
    /// filters and earlier deliveries: a new delivery of the message,
    /// marked as manually triggered (its attempts carry `triggered_by`).
    ///
    /// # Errors
    /// 404 for a message or subscription the tenant does not have, 409 for
    /// an inactive subscription.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, event_id = %event, subscription_id = %subscription))]
    pub async fn resend(
        &self,
        ctx: &CommandContext,
        event: EventId,
        subscription: SubscriptionId,
    ) -> Result<Written<DeliveryId>, AppError> {
        let stored = self
            .shared
            .log
            .aggregate_history(Message::TYPE, &event.to_string())
            .await?;
        let message = crate::fold::rebuild::<Message>(&stored)?;
        let message = message
            .aggregate
            .state()
            .filter(|m| m.tenant_id == ctx.tenant_id)
            .ok_or_else(|| AppError::not_found("message", event))?;
        let target = self.ensure_active(ctx.tenant_id, subscription).await?;
        let at = self.shared.clock.now();
        let delivery_id = DeliveryId::from_uuid(self.shared.entropy.new_id());
        let mut metadata = ctx.metadata(at);
        metadata.triggered_by = Some(ctx.request_id.to_string());
        let batch = Batch::of(vec![Change::<Delivery> {
            aggregate_id: delivery_id.to_string(),
            version: 0,
            events: vec![Delivery::enqueue_new(EnqueueDelivery {
                delivery_id,
                tenant_id: ctx.tenant_id,
                subscription_id: subscription,
                event_id: event,
                event_type: EventType::clone(&message.event_type),
                url: target.state.url.to_string(),
                at,
            })],
            metadata,
        }])?;
        let position = match self.store.append(batch, None).await {
            Ok(Appended::Written(position)) => position,
            Ok(Appended::Replayed(_)) | Err(AppendError::Conflict) => {
                return Err(AppError::Internal(
                    "a fresh delivery collided with another".into(),
                ))
            }
            Err(AppendError::Other(e)) => return Err(e),
        };
        let consistent = self.shared.settle(Delivery::TYPE, position).await;
        tracing::info!(delivery_id = %delivery_id, "message sent again");
        Ok(Written {
            value: delivery_id,
            consistent,
        })
    }

    /// Queues again every failed, abandoned or skipped delivery of a
    /// subscription created since `since` (and before `until`, when
    /// given), and sends now those waiting out a backoff after a failure
    /// (the receiver is back: no reason to wait; one whose next attempt is
    /// due anyway is left to it).
    ///
    /// # Errors
    /// 404 for another tenant's subscription, 409 for an inactive one.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %subscription))]
    pub async fn recover(
        &self,
        ctx: &CommandContext,
        subscription: SubscriptionId,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Written<Recovered>, AppError> {
        self.ensure_active(ctx.tenant_id, subscription).await?;
        // The candidates come from the deliveries read model, which trails
        // the log (by up to ~100 ms while busy): an outcome a caller has
        // already seen (a delivery read is folded from the log) must be in
        // it, or that delivery is left out. Bounded, like every write.
        self.shared
            .waiter
            .wait_caught_up(Delivery::TYPE, self.shared.consistency_timeout)
            .await;
        let candidates = self
            .read
            .recoverable(ctx.tenant_id, subscription, since, until)
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
        let consistent = self.shared.settle(Delivery::TYPE, last).await;
        tracing::info!(recovered = recovered.len(), "deliveries recovered");
        Ok(Written {
            value: Recovered {
                delivery_ids: recovered,
            },
            consistent,
        })
    }
}
