//! Publishing: match the tenant's active subscriptions, decide one
//! `DeliveryEnqueued` per match, and append them all in one transaction
//! (with the idempotency key, when given).

use super::payload_of;
use crate::commands::Written;
use crate::context::CommandContext;
use crate::error::AppError;
use crate::ports::{
    AppendError, Clock, EventAppender, FirstAnswer, IdempotencyKey, IdempotentAppend, NewEvent,
    SubscriptionDirectory,
};
use chrono::SecondsFormat;
use cqrs_es::{Aggregate, DomainEvent};
use hookline_domain::delivery::{Delivery, EnqueueDelivery};
use hookline_domain::subscription::{SubscriptionState, SubscriptionStatus};
use hookline_domain::{DeliveryId, EventId, EventType, SubscriptionId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_RESOURCE_LEN: usize = 200;
/// The event a test send delivers.
pub const TEST_EVENT: &str = "webhook.test";

#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub idempotency_ttl: Duration,
}

/// `POST /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishInput {
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Came as the seeds' form: errors name its fields (`event`, `payload`).
    #[serde(skip)]
    pub seed_form: bool,
}

/// `POST /v1/deliveries`, the seeds' form: `{"event", "payload"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPublishInput {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub payload: Option<Box<RawValue>>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

impl From<SeedPublishInput> for PublishInput {
    fn from(s: SeedPublishInput) -> Self {
        Self {
            event_type: s.event,
            data: s.payload,
            resource_type: s.resource_type,
            resource_id: s.resource_id,
            idempotency_key: s.idempotency_key,
            seed_form: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDelivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub event_id: EventId,
    pub deliveries: Vec<PublishedDelivery>,
    /// True when this answer is the stored first answer to an idempotent
    /// request.
    #[serde(skip)]
    pub replayed: bool,
}

/// The request body receivers get, serialised once per published event.
#[derive(Serialize)]
struct Envelope<'a> {
    id: EventId,
    timestamp: String,
    event: &'a str,
    data: &'a RawValue,
    tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_id: Option<&'a str>,
}

pub struct PublishService {
    directory: Arc<dyn SubscriptionDirectory>,
    appender: Arc<dyn EventAppender>,
    clock: Arc<dyn Clock>,
    settings: PublishSettings,
}

impl fmt::Debug for PublishService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), AppError> {
    if let Some(v) = value {
        if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                format!("must be 1–{max} characters without control characters"),
            )
            .into());
        }
    }
    Ok(())
}

/// Checks an idempotency key from the body and/or the `Idempotency-Key`
/// header.
///
/// # Errors
/// A validation error when malformed or when the two differ.
pub fn idempotency_key(
    body: Option<String>,
    header: Option<String>,
) -> Result<Option<String>, AppError> {
    let key = match (body, header) {
        (Some(b), Some(h)) if b != h => {
            return Err(ValidationError::new(
                "idempotency_key",
                "differs from the Idempotency-Key header; send one or make them equal",
            )
            .into())
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => return Ok(None),
    };
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(ValidationError::new(
            "idempotency_key",
            format!("must be 1–{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
        )
        .into());
    }
    Ok(Some(key))
}

impl PublishService {
    pub fn new(
        directory: Arc<dyn SubscriptionDirectory>,
        appender: Arc<dyn EventAppender>,
        clock: Arc<dyn Clock>,
        settings: PublishSettings,
    ) -> Self {
        Self {
            directory,
            appender,
            clock,
            settings,
        }
    }

    /// Publishes an event to every matching active subscription.
    ///
    /// # Errors
    /// Validation errors; 404 `no_subscriptions` when nothing matches.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn publish(
        &self,
        ctx: &CommandContext,
        input: PublishInput,
        header_key: Option<String>,
    ) -> Result<Written<Published>, AppError> {
        let key = idempotency_key(input.idempotency_key, header_key)?;
        let (type_field, data_field) = if input.seed_form {
            ("event", "payload")
        } else {
            ("event_type", "data")
        };
        let event_type = match input.event_type.as_deref() {
            Some(e) => EventType::parse(e, type_field)?,
            None => return Err(ValidationError::new(type_field, "is required").into()),
        };
        let data = match input.data {
            Some(d) => {
                hookline_domain::payload::check_object(data_field, d.get())?;
                d
            }
            None => {
                return Err(ValidationError::new(data_field, "is required (a JSON object)").into())
            }
        };
        check_text(
            "resource_type",
            input.resource_type.as_deref(),
            MAX_RESOURCE_LEN,
        )?;
        check_text(
            "resource_id",
            input.resource_id.as_deref(),
            MAX_RESOURCE_LEN,
        )?;

        let fingerprint = key.as_ref().map(|_| {
            fingerprint(
                &event_type,
                &data,
                input.resource_type.as_deref(),
                input.resource_id.as_deref(),
            )
        });
        let idempotency = match (&key, &fingerprint) {
            (Some(key), Some(fingerprint)) => Some(IdempotencyKey {
                tenant: ctx.tenant_id,
                key,
                fingerprint,
                ttl: self.settings.idempotency_ttl,
            }),
            _ => None,
        };
        if let Some(idempotency) = &idempotency {
            if let Some(first) = self.appender.idempotent_response(idempotency).await? {
                return replay(idempotency, first);
            }
        }
        let subscriptions = self.directory.active_for_tenant(ctx.tenant_id).await?;
        let matching: Vec<&SubscriptionState> = subscriptions
            .iter()
            .filter(|s| s.events.matches(&event_type))
            .collect();
        if matching.is_empty() {
            return Err(AppError::NothingFound {
                code: "no_subscriptions",
                detail: format!(
                    "no active subscription of this tenant listens to '{event_type}'; nothing was enqueued"
                ),
            });
        }
        let envelope = Envelope {
            id: EventId::from_uuid(Uuid::now_v7()),
            timestamp: self
                .clock
                .now()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            event: event_type.as_str(),
            data: &data,
            tenant_id: ctx.tenant_id,
            resource_type: input.resource_type.as_deref(),
            resource_id: input.resource_id.as_deref(),
        };
        self.fan_out(ctx, &event_type, &envelope, &matching, idempotency.as_ref())
            .await
    }

    /// Sends a `webhook.test` event to one subscription, whatever its filter.
    ///
    /// # Errors
    /// 404 for another tenant's or a missing subscription; 409 when it is
    /// not active.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn test_send(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
    ) -> Result<Written<Published>, AppError> {
        let state = self
            .directory
            .get(id)
            .await?
            .filter(|s| s.tenant_id == ctx.tenant_id)
            .ok_or_else(|| AppError::not_found("subscription", id))?;
        if state.status == SubscriptionStatus::Deleted {
            return Err(AppError::conflict(
                "subscription_deleted",
                format!("subscription '{id}' has been deleted; it receives no more events"),
            ));
        }
        if state.status != SubscriptionStatus::Active {
            return Err(AppError::conflict(
                "subscription_inactive",
                format!(
                    "subscription '{id}' is {}; enable it before sending a test",
                    state.status.as_str()
                ),
            ));
        }
        let event_type = EventType::parse(TEST_EVENT, "event_type")?;
        let data = serde_json::to_string(&serde_json::json!({
            "message": "This is a test event sent by Hookline.",
            "subscription_id": id,
        }))
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let data = RawValue::from_string(data).map_err(|e| AppError::Internal(e.to_string()))?;
        let envelope = Envelope {
            id: EventId::from_uuid(Uuid::now_v7()),
            timestamp: self
                .clock
                .now()
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            event: TEST_EVENT,
            data: &data,
            tenant_id: ctx.tenant_id,
            resource_type: None,
            resource_id: None,
        };
        self.fan_out(ctx, &event_type, &envelope, &[state.as_ref()], None)
            .await
    }

    async fn fan_out(
        &self,
        ctx: &CommandContext,
        event_type: &EventType,
        envelope: &Envelope<'_>,
        subscriptions: &[&SubscriptionState],
        idempotency: Option<&IdempotencyKey<'_>>,
    ) -> Result<Written<Published>, AppError> {
        let body = serde_json::to_string(envelope)
            .map_err(|e| AppError::Internal(format!("event body did not serialise: {e}")))?;
        let at = self.clock.now();
        let metadata = serde_json::to_value(ctx.metadata(at))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let mut events = Vec::with_capacity(subscriptions.len());
        let mut deliveries = Vec::with_capacity(subscriptions.len());
        for sub in subscriptions {
            let delivery_id = DeliveryId::from_uuid(Uuid::now_v7());
            let event = Delivery::enqueue_new(EnqueueDelivery {
                delivery_id,
                tenant_id: ctx.tenant_id,
                subscription_id: sub.id,
                event_id: envelope.id,
                event_type: event_type.clone(),
                url: sub.url.to_string(),
                body: body.clone(),
                at,
            });
            events.push(NewEvent {
                aggregate_type: Delivery::TYPE,
                aggregate_id: delivery_id.to_string(),
                sequence: 1,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: payload_of(&event)?,
                metadata: metadata.clone(),
                previous_link: None,
            });
            deliveries.push(PublishedDelivery {
                id: delivery_id,
                subscription_id: sub.id,
            });
        }
        let published = Published {
            event_id: envelope.id,
            deliveries,
            replayed: false,
        };
        // Publishing does not wait for the read models: single deliveries
        // are read from the log (always exact), lists catch up within
        // milliseconds. Waiting would double publish latency under load.
        match idempotency {
            Some(idempotency) => {
                let response = serde_json::to_value(&published)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                match self
                    .appender
                    .append_idempotent(idempotency, &response, events)
                    .await
                    .map_err(append_error)?
                {
                    IdempotentAppend::Appended(_) => {}
                    IdempotentAppend::Replayed(first) => return replay(idempotency, first),
                }
            }
            None => {
                self.appender.append(events).await.map_err(append_error)?;
            }
        }
        tracing::info!(event_id = %published.event_id, deliveries = published.deliveries.len(), "event published");
        Ok(Written {
            value: published,
            consistent: true,
        })
    }
}

/// What a publish request asks for, as a digest: the event type, the data
/// (as parsed JSON, so formatting and key order do not matter) and the
/// resource fields.
fn fingerprint(
    event_type: &EventType,
    data: &RawValue,
    resource_type: Option<&str>,
    resource_id: Option<&str>,
) -> String {
    let data: serde_json::Value =
        serde_json::from_str(data.get()).unwrap_or_else(|_| data.get().into());
    let canonical = serde_json::json!([event_type.as_str(), data, resource_type, resource_id]);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The first answer under a key, when this request is the same one again.
fn replay(key: &IdempotencyKey<'_>, first: FirstAnswer) -> Result<Written<Published>, AppError> {
    if first
        .fingerprint
        .as_deref()
        .is_some_and(|f| f != key.fingerprint)
    {
        return Err(AppError::conflict(
            "idempotency_key_reused",
            format!(
                "idempotency key '{}' was used for a different request (event type, data or resource) within its lifetime; use a new key for a new event",
                key.key
            ),
        ));
    }
    let mut published: Published = serde_json::from_value(first.response).map_err(|e| {
        AppError::Internal(format!("stored idempotent response is unreadable: {e}"))
    })?;
    published.replayed = true;
    Ok(Written {
        value: published,
        consistent: true,
    })
}

fn append_error(e: AppendError) -> AppError {
    match e {
        AppendError::Conflict => AppError::Internal("fresh delivery ids collided".into()),
        AppendError::Other(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_from_body_or_header() {
        assert_eq!(idempotency_key(None, None).unwrap(), None);
        assert_eq!(
            idempotency_key(Some("a".into()), None).unwrap(),
            Some("a".into())
        );
        assert_eq!(
            idempotency_key(None, Some("b".into())).unwrap(),
            Some("b".into())
        );
        assert_eq!(
            idempotency_key(Some("c".into()), Some("c".into())).unwrap(),
            Some("c".into())
        );
        assert!(idempotency_key(Some("c".into()), Some("d".into())).is_err());
        assert!(idempotency_key(Some(String::new()), None).is_err());
        assert!(idempotency_key(Some("has space".into()), None).is_err());
        assert!(idempotency_key(Some("k".repeat(256)), None).is_err());
    }
}
