//! Publishing: match the tenant's active subscriptions, record the event
//! once (`MessagePublished`, with the body its deliveries send), decide one
//! `DeliveryEnqueued` per match, and append them all in one transaction
//! (with the idempotency key, when given).

use crate::catalogue::CatalogueService;
use crate::commands::Written;
use crate::context::CommandContext;
use crate::error::AppError;
use crate::operational::Notice;
use crate::ports::{
    Admitted, AggregateStore, AppendError, Appended, BacklogLevel, Batch, Change, DeliveryBacklog,
    FirstAnswer, IdempotencyClaim, IdempotencyKeys, Metrics, NoMetrics, SubscriptionDirectory,
    Unbounded,
};
use crate::shared::Shared;
use chrono::{DateTime, SecondsFormat, Utc};
use hookline_domain::channel::Channels;
use hookline_domain::delivery::{Delivery, EnqueueDelivery, SkipDelivery};
use hookline_domain::event_type::OPERATIONAL_NAMESPACE;
use hookline_domain::message::{list_deliveries, message_id_for_uid, Message, PublishMessage};
use hookline_domain::subscription::{SubscriptionState, SubscriptionStatus};
use hookline_domain::uid::Uid;
use hookline_domain::{DeliveryId, EventId, EventType, SubscriptionId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_RESOURCE_LEN: usize = 200;
/// The event a test send delivers.
pub const TEST_EVENT: &str = "webhook.test";

#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub idempotency_ttl: Duration,
}

/// A client's idempotency key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// # Errors
    /// A validation error on `idempotency_key`.
    pub fn parse(key: &str) -> Result<Self, ValidationError> {
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY_LEN
            || !key.bytes().all(|b| (0x21..0x7f).contains(&b))
        {
            return Err(ValidationError::new(
                "idempotency_key",
                format!("must be 1–{MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            ));
        }
        Ok(Self(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `resource_type` or `resource_id`: 1–200 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceField(String);

impl ResourceField {
    /// # Errors
    /// A validation error naming `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        if value.is_empty()
            || value.chars().count() > MAX_RESOURCE_LEN
            || value.chars().any(char::is_control)
        {
            return Err(ValidationError::new(
                field,
                format!("must be 1–{MAX_RESOURCE_LEN} characters without control characters"),
            ));
        }
        Ok(Self(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Publishes one business event to every matching subscription.
#[derive(Debug, Clone)]
pub struct PublishEvent {
    pub event_type: EventType,
    /// A JSON object (checked by the caller with
    /// `hookline_domain::payload::check_object`), sent exactly as given.
    pub data: Box<RawValue>,
    pub resource_type: Option<ResourceField>,
    pub resource_id: Option<ResourceField>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The channels the event is published on (`None`: none).
    pub channels: Option<Channels>,
    /// The client's own id of the event: the message's id derives from it,
    /// and publishing it again is refused (409 `duplicate_event_id`).
    pub uid: Option<Uid>,
    /// Record the event even when no subscription wants it (otherwise 404
    /// `no_subscriptions` and nothing is stored).
    pub keep_unmatched: bool,
}

impl PublishEvent {
    /// An event with no channels, uid or resource fields, refused when no
    /// subscription wants it.
    pub fn new(event_type: EventType, data: Box<RawValue>) -> Self {
        Self {
            event_type,
            data,
            resource_type: None,
            resource_id: None,
            idempotency_key: None,
            channels: None,
            uid: None,
            keep_unmatched: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedDelivery {
    pub id: DeliveryId,
    pub subscription_id: SubscriptionId,
    /// Recorded but not attempted: the subscription is disabled (first
    /// answers stored before skipping existed have none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// What publishing did; stored as the first answer to an idempotent
/// request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub event_id: EventId,
    pub deliveries: Vec<PublishedDelivery>,
    /// When the message was recorded (absent in answers stored before it
    /// was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// True when this answer is the stored first answer to an idempotent
    /// request.
    #[serde(skip)]
    pub replayed: bool,
    /// Set when the event type is deprecated in the catalogue: since when.
    #[serde(skip)]
    pub deprecated_since: Option<DateTime<Utc>>,
}

/// A publish decided but not appended: the changes, the answer, and its
/// admission by the delivery backlog (hold it until the batch is
/// appended).
#[derive(Debug)]
pub struct Planned {
    pub batch: Batch,
    pub published: Published,
    pub admitted: Admitted,
}

/// The request body receivers get, serialised once per published event.
#[derive(Serialize)]
pub(crate) struct Envelope<'a> {
    pub id: EventId,
    pub timestamp: String,
    pub event: &'a str,
    pub data: &'a RawValue,
    pub tenant_id: TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<&'a str>,
}

pub struct PublishService {
    shared: Shared,
    catalogue: Arc<CatalogueService>,
    directory: Arc<dyn SubscriptionDirectory>,
    store: Arc<dyn AggregateStore<Delivery>>,
    keys: Arc<dyn IdempotencyKeys>,
    settings: PublishSettings,
    metrics: Arc<dyn Metrics>,
    backlog: Arc<dyn DeliveryBacklog>,
}

/// How long a publish waits for the delivery backlog to get under its
/// bound before it is refused.
pub const BACKLOG_WAIT: Duration = Duration::from_secs(2);

impl fmt::Debug for PublishService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PublishService {
    pub fn new(
        shared: Shared,
        catalogue: Arc<CatalogueService>,
        directory: Arc<dyn SubscriptionDirectory>,
        store: Arc<dyn AggregateStore<Delivery>>,
        keys: Arc<dyn IdempotencyKeys>,
        settings: PublishSettings,
    ) -> Self {
        Self {
            shared,
            catalogue,
            directory,
            store,
            keys,
            settings,
            metrics: Arc::new(NoMetrics),
            backlog: Arc::new(Unbounded),
        }
    }

    /// Publishes wait while the delivery backlog is over its bound
    /// (pushing back on publishers instead of accepting more than the
    /// workers deliver).
    #[must_use]
    pub fn with_backlog(mut self, backlog: Arc<dyn DeliveryBacklog>) -> Self {
        self.backlog = backlog;
        self
    }

    /// The delivery backlog against its bound (`None` without one).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn backlog(&self) -> Result<Option<BacklogLevel>, AppError> {
        self.backlog.level().await
    }

    /// Counts published events and enqueued deliveries in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Waits for the backlog to admit a publish to `deliveries`
    /// subscriptions; the answer is held until the publish is appended.
    async fn admit(&self, tenant: TenantId, deliveries: usize) -> Result<Admitted, AppError> {
        self.backlog
            .admit(tenant, 1 + deliveries, BACKLOG_WAIT)
            .await
            .ok_or_else(|| AppError::Busy {
                code: "backlog_full",
                detail: format!(
                    "the delivery backlog is at its bound (this tenant's deliveries hold a large share of it, or it is at twice its bound) and did not shrink within {} s; nothing was published, retry shortly",
                    BACKLOG_WAIT.as_secs()
                ),
            })
    }

    fn envelope_time(&self) -> (DateTime<Utc>, String) {
        let now = self.shared.clock.now();
        (now, now.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    /// Publishes an event to every matching active subscription, once its
    /// data satisfies the type's schema (and, in strict mode, the type is
    /// in the catalogue).
    ///
    /// # Errors
    /// 400 for data the schema refuses (or an unknown type in strict
    /// mode); 404 `no_subscriptions` when nothing matches (unless
    /// `keep_unmatched`); 409 `idempotency_key_reused` for a key used for
    /// another request, `duplicate_event_id` for a uid published before.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn publish(
        &self,
        ctx: &CommandContext,
        event: PublishEvent,
    ) -> Result<Written<Published>, AppError> {
        refuse_operational(&event.event_type)?;
        // Only a request under an idempotency key is compared with another.
        let keyed = event
            .idempotency_key
            .as_ref()
            .map(|key| (key, fingerprint(&event)));
        if let Some((key, fingerprint)) = &keyed {
            if let Some(first) = self
                .keys
                .first_answer(ctx.tenant_id, key.as_str(), self.settings.idempotency_ttl)
                .await?
            {
                // The first answer stands, whatever the catalogue says now.
                return replay(key, fingerprint, first);
            }
        }
        let admission = self
            .catalogue
            .admit(ctx.tenant_id, &event.event_type, &event.data)
            .await?;
        let subscriptions = self.directory.live_for_tenant(ctx.tenant_id).await?;
        let matching: Vec<&SubscriptionState> = subscriptions
            .iter()
            .filter(|s| s.wants(&event.event_type, event.channels.as_ref()))
            .collect();
        if matching.is_empty() && !event.keep_unmatched {
            return Err(AppError::NothingFound {
                code: "no_subscriptions",
                detail: format!(
                    "no subscription of this tenant (active or disabled) listens to '{}'; nothing was enqueued",
                    event.event_type
                ),
            });
        }
        // Push back while the workers are behind: the backlog stays
        // bounded and the answer says so rather than accepting more. A
        // tenant that fills it is pushed back first (its share).
        let _admitted = self.admit(ctx.tenant_id, matching.len()).await?;
        let (at, timestamp) = self.envelope_time();
        let id = match &event.uid {
            Some(uid) => message_id_for_uid(ctx.tenant_id, uid),
            None => EventId::listing(self.shared.entropy.new_id()),
        };
        let envelope = Envelope {
            id,
            timestamp,
            event: event.event_type.as_str(),
            data: &event.data,
            tenant_id: ctx.tenant_id,
            resource_type: event.resource_type.as_ref().map(ResourceField::as_str),
            resource_id: event.resource_id.as_ref().map(ResourceField::as_str),
        };
        let key = keyed
            .as_ref()
            .map(|(key, fingerprint)| (*key, fingerprint.as_str()));
        let message = Recorded {
            event_type: &event.event_type,
            channels: event.channels.as_ref(),
            uid: event.uid.as_ref(),
        };
        let mut written = self
            .fan_out(ctx, message, &envelope, at, &matching, key)
            .await?
            .ok_or_else(|| AppError::Internal("a fresh event id collided".into()))?;
        written.value.deprecated_since = admission.deprecated_since;
        Ok(written)
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
        let event_type = EventType::parse(TEST_EVENT, "event_type")?;
        let data = serde_json::to_string(&serde_json::json!({
            "message": "This is a test event sent by Hookline.",
            "subscription_id": id,
        }))
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let data = RawValue::from_string(data).map_err(|e| AppError::Internal(e.to_string()))?;
        self.send_to_one(ctx, id, &event_type, &data).await
    }

    /// Publishes an example of `event_type` (`data`, chosen by the caller
    /// from the catalogue) to one subscription only, whatever its filter:
    /// a message like any other, which no other subscription receives.
    ///
    /// # Errors
    /// As [`PublishService::test_send`].
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id, subscription_id = %id))]
    pub async fn send_example(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        event_type: &EventType,
        data: &RawValue,
    ) -> Result<Written<Published>, AppError> {
        self.send_to_one(ctx, id, event_type, data).await
    }

    async fn send_to_one(
        &self,
        ctx: &CommandContext,
        id: SubscriptionId,
        event_type: &EventType,
        data: &RawValue,
    ) -> Result<Written<Published>, AppError> {
        let state = self
            .directory
            .get(id)
            .await?
            .filter(|s| s.tenant_id == ctx.tenant_id)
            .ok_or_else(|| AppError::not_found("subscription", id))?;
        match state.status {
            SubscriptionStatus::Active => {}
            SubscriptionStatus::Deleted => {
                return Err(AppError::conflict(
                    "subscription_deleted",
                    format!("subscription '{id}' has been deleted; it receives no more events"),
                ))
            }
            SubscriptionStatus::Disabled => {
                return Err(AppError::conflict(
                    "subscription_inactive",
                    format!("subscription '{id}' is disabled; enable it before sending to it"),
                ))
            }
        }
        let _admitted = self.admit(ctx.tenant_id, 1).await?;
        let (at, timestamp) = self.envelope_time();
        let envelope = Envelope {
            id: EventId::listing(self.shared.entropy.new_id()),
            timestamp,
            event: event_type.as_str(),
            data,
            tenant_id: ctx.tenant_id,
            resource_type: None,
            resource_id: None,
        };
        let message = Recorded {
            event_type,
            channels: None,
            uid: None,
        };
        self.fan_out(ctx, message, &envelope, at, &[state.as_ref()], None)
            .await?
            .ok_or_else(|| AppError::Internal("a fresh event id collided".into()))
    }

    /// Publishes one of Hookline's operational events (a [`Notice`]) to the
    /// tenant's subscriptions that ask for it by name, except the one it is
    /// about. The event's id is the notice's, so publishing a notice twice
    /// records it once.
    ///
    /// Returns whether it was recorded now (`false`: nobody listens, or it
    /// was already published).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn publish_operational(
        &self,
        ctx: &CommandContext,
        notice: &Notice,
    ) -> Result<bool, AppError> {
        let event_type = EventType::parse(notice.event_type, "event_type")?;
        let subscriptions = self.directory.live_for_tenant(ctx.tenant_id).await?;
        let matching: Vec<&SubscriptionState> = subscriptions
            .iter()
            .filter(|s| Some(s.id) != notice.about && s.events.matches(&event_type))
            .collect();
        if matching.is_empty() {
            return Ok(false);
        }
        let data = RawValue::from_string(notice.data.to_string())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let (at, timestamp) = self.envelope_time();
        let envelope = Envelope {
            id: notice.id,
            timestamp,
            event: notice.event_type,
            data: &data,
            tenant_id: ctx.tenant_id,
            resource_type: None,
            resource_id: None,
        };
        let message = Recorded {
            event_type: &event_type,
            channels: None,
            uid: None,
        };
        Ok(self
            .fan_out(ctx, message, &envelope, at, &matching, None)
            .await?
            .is_some())
    }

    /// Decides what publishing `envelope` to `subscriptions` appends: the
    /// message (the body, once) and one `DeliveryEnqueued` per
    /// subscription, not yet appended.
    fn build(
        &self,
        ctx: &CommandContext,
        message: Recorded<'_>,
        envelope: &Envelope<'_>,
        at: DateTime<Utc>,
        subscriptions: &[&SubscriptionState],
    ) -> Result<(Batch, Published), AppError> {
        let body = serde_json::to_string(envelope)
            .map_err(|e| AppError::Internal(format!("event body did not serialise: {e}")))?;
        let metadata = ctx.metadata(at);
        // A message whose id can list its deliveries records them in its
        // own event (ADR 0019); otherwise each gets a `DeliveryEnqueued`.
        let listed = list_deliveries(
            envelope.id,
            subscriptions.iter().map(|s| {
                let skipped = s.status == SubscriptionStatus::Disabled;
                (s.id, s.url.to_string(), skipped)
            }),
        );
        // The body once, in the message; each delivery refers to it.
        let mut batch = Batch::of(vec![Change::<Message> {
            aggregate_id: envelope.id.to_string(),
            version: 0,
            events: vec![Message::publish_new(PublishMessage {
                event_id: envelope.id,
                tenant_id: ctx.tenant_id,
                event_type: message.event_type.clone(),
                body,
                channels: message.channels.cloned(),
                uid: message.uid.cloned(),
                deliveries: listed.clone(),
                at,
            })],
            metadata: metadata.clone(),
        }])?;
        let mut deliveries = Vec::with_capacity(subscriptions.len());
        for (i, sub) in subscriptions.iter().enumerate() {
            let (delivery_id, version, mut events) = match &listed {
                // Begun by the message's event: its first stored event is
                // its second.
                Some(listed) => {
                    let id = listed.get(i).map(|d| d.id).ok_or_else(|| {
                        AppError::Internal("a subscription without its listed delivery".into())
                    })?;
                    (id, 1, Vec::new())
                }
                None => {
                    let delivery_id = DeliveryId::from_uuid(self.shared.entropy.new_id());
                    let enqueued = Delivery::enqueue_new(EnqueueDelivery {
                        delivery_id,
                        tenant_id: ctx.tenant_id,
                        subscription_id: sub.id,
                        event_id: envelope.id,
                        event_type: message.event_type.clone(),
                        url: sub.url.to_string(),
                        at,
                    });
                    (delivery_id, 0, vec![enqueued])
                }
            };
            // Nothing is lost while a subscription is disabled: the
            // delivery is recorded, skipped, and sent by a later recovery.
            let skipped = sub.status == SubscriptionStatus::Disabled;
            if skipped {
                events.push(Delivery::skip_new(SkipDelivery {
                    tenant_id: ctx.tenant_id,
                    reason: "the subscription is disabled".into(),
                    at,
                }));
            }
            if !events.is_empty() {
                batch.add(Change::<Delivery> {
                    aggregate_id: delivery_id.to_string(),
                    version,
                    events,
                    metadata: metadata.clone(),
                })?;
            }
            deliveries.push(PublishedDelivery {
                id: delivery_id,
                subscription_id: sub.id,
                skipped,
            });
        }
        Ok((
            batch,
            Published {
                event_id: envelope.id,
                deliveries,
                published_at: Some(at),
                replayed: false,
                deprecated_since: None,
            },
        ))
    }

    /// What publishing `data` as `event_type` would append, for a caller
    /// that appends it together with changes of its own (an inbound
    /// webhook's `InboundReceived`, in the same transaction): the data is
    /// admitted by the tenant's catalogue and matched against its active
    /// subscriptions. `None` when no subscription listens.
    ///
    /// # Errors
    /// Validation errors from the catalogue (schema, strict mode); storage
    /// errors.
    pub async fn plan(
        &self,
        ctx: &CommandContext,
        event_type: &EventType,
        data: &RawValue,
        at: DateTime<Utc>,
    ) -> Result<Option<Planned>, AppError> {
        refuse_operational(event_type)?;
        self.catalogue
            .admit(ctx.tenant_id, event_type, data)
            .await?;
        let subscriptions = self.directory.live_for_tenant(ctx.tenant_id).await?;
        let matching: Vec<&SubscriptionState> = subscriptions
            .iter()
            .filter(|s| s.wants(event_type, None))
            .collect();
        if matching.is_empty() {
            return Ok(None);
        }
        let envelope = Envelope {
            id: EventId::listing(self.shared.entropy.new_id()),
            timestamp: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            event: event_type.as_str(),
            data,
            tenant_id: ctx.tenant_id,
            resource_type: None,
            resource_id: None,
        };
        let message = Recorded {
            event_type,
            channels: None,
            uid: None,
        };
        // Pushed back as a publish is: an inbound webhook's provider
        // retries a 503.
        let admitted = self.admit(ctx.tenant_id, matching.len()).await?;
        let (batch, published) = self.build(ctx, message, &envelope, at, &matching)?;
        Ok(Some(Planned {
            batch,
            published,
            admitted,
        }))
    }

    async fn fan_out(
        &self,
        ctx: &CommandContext,
        message: Recorded<'_>,
        envelope: &Envelope<'_>,
        at: DateTime<Utc>,
        subscriptions: &[&SubscriptionState],
        key: Option<(&IdempotencyKey, &str)>,
    ) -> Result<Option<Written<Published>>, AppError> {
        let (batch, published) = self.build(ctx, message, envelope, at, subscriptions)?;
        // The answer is stored with the key, for a repeat of the request.
        let response = key
            .map(|_| serde_json::to_value(&published))
            .transpose()
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let claim = key
            .zip(response.as_ref())
            .map(|((key, fingerprint), response)| IdempotencyClaim {
                tenant: ctx.tenant_id,
                key: key.as_str(),
                fingerprint,
                ttl: self.settings.idempotency_ttl,
                response,
            });
        // Publishing does not wait for the read models: single deliveries
        // are read from the log (always exact), lists catch up within
        // milliseconds. Waiting would double publish latency under load.
        match self.store.append(batch, claim).await {
            Ok(Appended::Written(_)) => {}
            Ok(Appended::Replayed(first)) => {
                if let Some((key, fingerprint)) = key {
                    return replay(key, fingerprint, first).map(Some);
                }
                return Err(AppError::Internal(
                    "an append without a key was answered as a repeat".into(),
                ));
            }
            // The message's id derives from the uid: it was published
            // before (delivery ids are fresh and cannot collide).
            Err(AppendError::Conflict) if message.uid.is_some() => {
                return Err(AppError::conflict(
                    "duplicate_event_id",
                    format!(
                        "an event with the id '{}' was already published by this tenant",
                        message.uid.map(Uid::as_str).unwrap_or_default()
                    ),
                ))
            }
            // The event id is taken otherwise: only an operational notice
            // published again reuses one.
            Err(AppendError::Conflict) => return Ok(None),
            Err(AppendError::Other(e)) => return Err(e),
        }
        self.metrics.published(
            ctx.tenant_id,
            published.deliveries.len(),
            published.deliveries.iter().filter(|d| d.skipped).count(),
        );
        tracing::info!(event_id = %published.event_id, deliveries = published.deliveries.len(), "event published");
        Ok(Some(Written {
            value: published,
            consistent: true,
        }))
    }
}

/// What the message records besides its body.
#[derive(Debug, Clone, Copy)]
struct Recorded<'a> {
    event_type: &'a EventType,
    channels: Option<&'a Channels>,
    uid: Option<&'a Uid>,
}

/// Only Hookline publishes operational events (`hookline.…`).
fn refuse_operational(event_type: &EventType) -> Result<(), AppError> {
    if event_type.is_reserved() {
        return Err(ValidationError::new(
            "event_type",
            format!(
                "'{event_type}' is in the '{OPERATIONAL_NAMESPACE}.' namespace, which only Hookline publishes (operational events)"
            ),
        )
        .into());
    }
    Ok(())
}

/// What a publish request asks for, as a digest: the event type, the data
/// (as parsed JSON, so formatting and key order do not matter), the
/// resource fields, and the channels and uid when given (left out
/// otherwise, so digests stored before they existed still compare).
fn fingerprint(event: &PublishEvent) -> String {
    let data: serde_json::Value =
        serde_json::from_str(event.data.get()).unwrap_or_else(|_| event.data.get().into());
    let mut canonical = vec![
        serde_json::json!(event.event_type.as_str()),
        data,
        serde_json::json!(event.resource_type.as_ref().map(ResourceField::as_str)),
        serde_json::json!(event.resource_id.as_ref().map(ResourceField::as_str)),
    ];
    if event.channels.is_some() || event.uid.is_some() {
        canonical.push(serde_json::json!(event
            .channels
            .as_ref()
            .map(Channels::to_strings)));
        canonical.push(serde_json::json!(event.uid.as_ref().map(Uid::as_str)));
    }
    let canonical = serde_json::Value::Array(canonical);
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// The first answer under a key, when this request is the same one again.
fn replay(
    key: &IdempotencyKey,
    fingerprint: &str,
    first: FirstAnswer,
) -> Result<Written<Published>, AppError> {
    if first
        .fingerprint
        .as_deref()
        .is_some_and(|f| f != fingerprint)
    {
        return Err(AppError::conflict(
            "idempotency_key_reused",
            format!(
                "idempotency key '{}' was used for a different request (event type, data or resource) within its lifetime; use a new key for a new event",
                key.as_str()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("a-b_c.1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(ResourceField::parse("resource_id", "inv-1").is_ok());
        assert_eq!(
            ResourceField::parse("resource_id", "a\nb")
                .unwrap_err()
                .field,
            "resource_id"
        );
    }
}
