//! Request and response bodies of publishing and of `/v1/deliveries`.

use crate::routes::common::time;
use crate::routes::openapi::schemas::{
    DeliveryStatusSchema, ErrorKindSchema, EventNameSchema, EventPatternSchema,
};
use chrono::{DateTime, Utc};
use hookline_application::context::RequestId;
use hookline_application::deliveries::{
    DeliveryDetail, IdempotencyKey, ListDeliveries, PublishEvent, Published, PublishedDelivery,
    Recovered, ResourceField,
};
use hookline_application::pagination::PageRequest;
use hookline_application::ports::{AttemptRecord, DeliveryRecord};
use hookline_application::AppError;
use hookline_domain::delivery::DeliveryStatus;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::{
    DeliveryId, EventId, EventPattern, EventType, SubscriptionId, TenantId, ValidationError,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /v1/events`: one business event, sent to every active
/// subscription whose filter matches it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The event's name. When the tenant's catalogue has this type, `data`
    /// must satisfy its JSON Schema; with `strict_event_types` on, the type
    /// must be in the catalogue and not archived.
    #[serde(default)]
    #[schema(value_type = EventNameSchema, required = true)]
    pub event_type: Option<String>,
    /// The event's data: a JSON object, sent to receivers byte for byte.
    /// Refused: duplicate keys, numbers out of range, lone UTF-16
    /// surrogates, nesting deeper than 64 levels.
    #[serde(default)]
    #[schema(value_type = Object, required = true)]
    pub data: Option<Box<RawValue>>,
    /// What the event is about (1–200 characters, no control characters).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub resource_type: Option<String>,
    /// Which one (1–200 characters, no control characters).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub resource_id: Option<String>,
    /// The same as the `Idempotency-Key` header (when both are given they
    /// must be equal): 1–255 visible ASCII characters.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// `POST /v1/deliveries`: the seed form. The GestiqCloud webhooks module
/// Hookline grew from published events as `{"event", "payload"}` on this
/// route; it is kept so its clients work unchanged, and its errors name its
/// own fields (`event`, `payload`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedPublishRequest {
    /// The event's name (`event_type` of `POST /v1/events`).
    #[serde(default)]
    #[schema(value_type = EventNameSchema, required = true)]
    pub event: Option<String>,
    /// The event's data (`data` of `POST /v1/events`): a JSON object.
    #[serde(default)]
    #[schema(value_type = Object, required = true)]
    pub payload: Option<Box<RawValue>>,
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub resource_type: Option<String>,
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub resource_id: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// The fields of either form, with the names that form gives them.
struct PublishFields {
    event_type: (&'static str, Option<String>),
    data: (&'static str, Option<Box<RawValue>>),
    resource_type: Option<String>,
    resource_id: Option<String>,
    idempotency_key: Option<String>,
}

impl PublishRequest {
    /// # Errors
    /// Validation errors naming the field.
    pub fn into_command(self, header_key: Option<String>) -> Result<PublishEvent, AppError> {
        PublishFields {
            event_type: ("event_type", self.event_type),
            data: ("data", self.data),
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            idempotency_key: self.idempotency_key,
        }
        .into_command(header_key)
    }
}

impl SeedPublishRequest {
    /// # Errors
    /// Validation errors naming the seed form's fields.
    pub fn into_command(self, header_key: Option<String>) -> Result<PublishEvent, AppError> {
        PublishFields {
            event_type: ("event", self.event),
            data: ("payload", self.payload),
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            idempotency_key: self.idempotency_key,
        }
        .into_command(header_key)
    }
}

impl PublishFields {
    fn into_command(self, header_key: Option<String>) -> Result<PublishEvent, AppError> {
        let key = idempotency_key(self.idempotency_key, header_key)?;
        let (type_field, event_type) = self.event_type;
        let event_type = match event_type {
            Some(e) => EventType::parse(&e, type_field)?,
            None => return Err(ValidationError::new(type_field, "is required").into()),
        };
        let (data_field, data) = self.data;
        let data = match data {
            Some(d) => {
                hookline_domain::payload::check_object(data_field, d.get())?;
                d
            }
            None => {
                return Err(ValidationError::new(data_field, "is required (a JSON object)").into())
            }
        };
        Ok(PublishEvent {
            resource_type: self
                .resource_type
                .map(|v| ResourceField::parse("resource_type", &v))
                .transpose()?,
            resource_id: self
                .resource_id
                .map(|v| ResourceField::parse("resource_id", &v))
                .transpose()?,
            idempotency_key: key,
            ..PublishEvent::new(event_type, data)
        })
    }
}

/// The idempotency key from the body and/or the `Idempotency-Key` header.
///
/// # Errors
/// A validation error when malformed or when the two differ.
pub fn idempotency_key(
    body: Option<String>,
    header: Option<String>,
) -> Result<Option<IdempotencyKey>, AppError> {
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
    Ok(Some(IdempotencyKey::parse(&key)?))
}

/// What publishing answers: the event's id and one delivery per matching
/// subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedResponse {
    #[schema(value_type = Uuid)]
    pub event_id: EventId,
    pub deliveries: Vec<PublishedDeliveryResponse>,
    /// How many deliveries were enqueued; only in the seed form's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub count: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedDeliveryResponse {
    #[schema(value_type = Uuid)]
    pub id: DeliveryId,
    #[schema(value_type = Uuid)]
    pub subscription_id: SubscriptionId,
    /// `pending` (it will be attempted) or `skipped` (its subscription is
    /// disabled: recorded, sent by a recovery after enabling it).
    #[schema(value_type = String, pattern = "^(pending|skipped)$", example = "pending")]
    pub status: &'static str,
}

impl From<PublishedDelivery> for PublishedDeliveryResponse {
    fn from(d: PublishedDelivery) -> Self {
        Self {
            id: d.id,
            subscription_id: d.subscription_id,
            status: if d.skipped { "skipped" } else { "pending" },
        }
    }
}

impl PublishedResponse {
    pub fn new(p: Published, with_count: bool) -> Self {
        Self {
            event_id: p.event_id,
            count: with_count.then_some(p.deliveries.len()),
            deliveries: p.deliveries.into_iter().map(Into::into).collect(),
        }
    }
}

/// What a test send answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSendResponse {
    #[schema(value_type = Uuid)]
    pub event_id: EventId,
    /// The `webhook.test` delivery to the subscription.
    #[schema(value_type = Option<Uuid>)]
    pub delivery_id: Option<DeliveryId>,
}

/// Query parameters of `GET /v1/deliveries`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesQuery {
    /// Only deliveries of events this pattern matches.
    #[serde(default)]
    #[param(value_type = Option<EventPatternSchema>)]
    pub event: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<DeliveryStatusSchema>)]
    pub status: Option<String>,
    #[serde(default)]
    #[param(value_type = Option<Uuid>)]
    pub subscription_id: Option<String>,
    /// Only deliveries caused by this request id (1–128 characters from
    /// letters, digits and `-_.:/+=@`).
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$")]
    pub request_id: Option<String>,
    /// Created at or after this time (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Created before this time (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl ListDeliveriesQuery {
    /// # Errors
    /// Validation errors naming each malformed parameter.
    pub fn into_query(self) -> Result<ListDeliveries, AppError> {
        Ok(ListDeliveries {
            event: self
                .event
                .as_deref()
                .map(|e| EventPattern::parse(e, "event"))
                .transpose()?,
            status: self
                .status
                .as_deref()
                .map(|s| {
                    DeliveryStatus::parse(s).ok_or_else(|| {
                        let all: Vec<&str> =
                            DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
                        ValidationError::new("status", format!("must be one of {}", all.join(", ")))
                    })
                })
                .transpose()?,
            subscription_id: self
                .subscription_id
                .as_deref()
                .map(SubscriptionId::parse)
                .transpose()?,
            request_id: self
                .request_id
                .as_deref()
                .map(|r| RequestId::lookup("request_id", r))
                .transpose()?,
            since: time("since", self.since.as_deref())?,
            until: time("until", self.until.as_deref())?,
            page: PageRequest::parse(self.limit, self.cursor.as_deref())?,
        })
    }
}

/// Query parameters of `GET /v1/deliveries/{id}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetDeliveryQuery {
    /// Read the delivery as it was at this time (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
}

/// Body of `POST /v1/subscriptions/{id}/recover`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Queue again the failed and abandoned deliveries created since this
    /// time (RFC 3339).
    #[serde(default)]
    #[schema(value_type = String, format = DateTime, required = true)]
    pub since: Option<String>,
}

impl RecoverRequest {
    /// # Errors
    /// A validation error naming `since`.
    pub fn into_since(self) -> Result<DateTime<Utc>, AppError> {
        time("since", self.since.as_deref())?
            .ok_or_else(|| ValidationError::new("since", "is required (an RFC 3339 time)").into())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveredResponse {
    /// How many failed or abandoned deliveries were queued again.
    pub recovered: usize,
    #[schema(value_type = Vec<Uuid>)]
    pub delivery_ids: Vec<DeliveryId>,
}

impl From<Recovered> for RecoveredResponse {
    fn from(r: Recovered) -> Self {
        Self {
            recovered: r.delivery_ids.len(),
            delivery_ids: r.delivery_ids,
        }
    }
}

/// Query parameters of `GET /v1/attempts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AttemptsQuery {
    /// The attempts this request id caused or triggered (1–128
    /// characters from letters, digits and `-_.:/+=@`).
    #[serde(default)]
    #[param(
        value_type = String,
        required = true,
        pattern = "^[A-Za-z0-9._:/+=@-]{1,128}$"
    )]
    pub request_id: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl AttemptsQuery {
    /// # Errors
    /// A validation error naming `request_id`, `cursor` or `limit`.
    pub fn into_query(self) -> Result<(RequestId, PageRequest), AppError> {
        let id = self
            .request_id
            .ok_or_else(|| ValidationError::new("request_id", "is required"))?;
        Ok((
            RequestId::lookup("request_id", &id)?,
            PageRequest::parse(self.limit, self.cursor.as_deref())?,
        ))
    }
}

/// A delivery as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(value_type = Uuid)]
    pub id: DeliveryId,
    #[schema(value_type = Uuid)]
    pub tenant_id: TenantId,
    #[schema(value_type = Uuid)]
    pub subscription_id: SubscriptionId,
    #[schema(value_type = Uuid)]
    pub event_id: EventId,
    pub event_type: String,
    #[schema(value_type = DeliveryStatusSchema)]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// When the next attempt is due, while `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub url: String,
    /// The request that published the event.
    pub request_id: Option<String>,
    /// The HTTP status of the last attempt, if it got one.
    pub last_status_code: Option<i32>,
    #[schema(value_type = Option<ErrorKindSchema>)]
    pub last_error_kind: Option<ErrorKind>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRecord> for DeliveryResponse {
    fn from(r: DeliveryRecord) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            subscription_id: r.subscription_id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            url: r.url,
            request_id: r.request_id,
            last_status_code: r.last_status_code,
            last_error_kind: r.last_error_kind,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
            delivered_at: r.delivered_at,
        }
    }
}

/// One HTTP attempt. `outcome` is the delivery's status after it:
/// `delivered`, or `pending` (a retry is scheduled), `failed` or
/// `abandoned`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    pub id: Uuid,
    #[schema(value_type = Uuid)]
    pub delivery_id: DeliveryId,
    /// Its number among the delivery's attempts, from 1.
    pub attempt: i32,
    #[schema(value_type = Uuid)]
    pub subscription_id: SubscriptionId,
    pub request_id: Option<String>,
    /// The manual retry that asked for it.
    pub triggered_by: Option<String>,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    #[schema(value_type = DeliveryStatusSchema)]
    pub outcome: DeliveryStatus,
    #[schema(value_type = Option<ErrorKindSchema>)]
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
    pub response_excerpt: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<AttemptRecord> for AttemptResponse {
    fn from(a: AttemptRecord) -> Self {
        Self {
            id: a.id,
            delivery_id: a.delivery_id,
            attempt: a.attempt,
            subscription_id: a.subscription_id,
            request_id: a.request_id,
            triggered_by: a.triggered_by,
            url: a.url,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            outcome: a.outcome,
            error_kind: a.error_kind,
            error_message: a.error_message,
            response_excerpt: a.response_excerpt,
            next_attempt_at: a.next_attempt_at,
        }
    }
}

/// One delivery with its attempts and the exact body it sends.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailResponse {
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    /// The request body exactly as sent: the envelope `{id, timestamp,
    /// event, data, tenant_id, resource_type?, resource_id?}`, or for a
    /// subscription with `payload_format: raw` the published `data` alone.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    pub attempt_log: Vec<AttemptResponse>,
}

impl From<DeliveryDetail> for DeliveryDetailResponse {
    fn from(d: DeliveryDetail) -> Self {
        Self {
            delivery: d.delivery.into(),
            payload: d.payload,
            attempt_log: d.attempt_log.into_iter().map(Into::into).collect(),
        }
    }
}
