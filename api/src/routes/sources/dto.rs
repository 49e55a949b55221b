//! Request and response bodies of `/v1/sources`, and their conversion
//! into typed values. Unknown fields are refused.

use crate::routes::openapi::schemas::{SecretSchema, SourceKindSchema, SourceStatusSchema};
use chrono::{DateTime, Utc};
use hookline_application::error::Validator;
use hookline_application::pagination::PageRequest;
use hookline_application::sources::{
    ListSources, NewSource, RejectionView, SourceChanges, SourceView,
};
use hookline_application::AppError;
use hookline_domain::pointer::JsonPointer;
use hookline_domain::source::{
    DeliveryKey, EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName, SourceStatus,
};
use hookline_domain::{SigningSecret, SourceId, TenantId, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::{IntoParams, ToSchema};

/// `idempotency`: where the provider's delivery id is, as a header or a
/// JSON pointer (not both); with neither, or when a request lacks it, the
/// SHA-256 of the raw body identifies the delivery.
#[derive(Debug, Deserialize, Serialize, Default, Clone, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyBody {
    /// A header holding the provider's delivery id (not a connection
    /// header such as `content-type` or `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
    pub header: Option<String>,
    /// A JSON pointer to the delivery id in the body (such as `/id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 200, pattern = r"^/[^\x00-\x1F\x7F-\x9F]*$")]
    pub pointer: Option<String>,
    /// How long a repeat is recognised (60 s – 30 days; default 1 day).
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 60, maximum = 2592000)]
    pub window_seconds: Option<u32>,
}

impl IdempotencyBody {
    fn into_idempotency(self) -> Result<Idempotency, ValidationError> {
        let key = match (self.header, self.pointer) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "idempotency",
                    "give either header or pointer, not both",
                ))
            }
            (Some(h), None) => DeliveryKey::Header(HeaderName::parse(&h, "idempotency.header")?),
            (None, Some(p)) => {
                let pointer = JsonPointer::parse(&p, "idempotency.pointer")?;
                if pointer.is_root() {
                    return Err(ValidationError::new(
                        "idempotency.pointer",
                        "must point into the body (such as /id)",
                    ));
                }
                DeliveryKey::Pointer(pointer)
            }
            (None, None) => DeliveryKey::BodyHash,
        };
        Idempotency::new(key, self.window_seconds)
    }
}

/// `POST /v1/sources`: a provider that delivers webhooks to Hookline.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSourceRequest {
    /// 1–200 characters, no control characters.
    #[serde(default)]
    #[schema(value_type = String, required = true, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    pub name: Option<String>,
    /// How the provider signs its webhooks.
    #[serde(default)]
    #[schema(value_type = SourceKindSchema, required = true)]
    pub kind: Option<String>,
    /// The secret shared with the provider; generated when absent (a
    /// `whsec_` key for `standard-webhooks`, 32 random bytes in base64
    /// otherwise) and shown in full only in this answer. For the header
    /// kinds it is sent as a header value: visible ASCII without spaces.
    #[serde(default)]
    #[schema(value_type = Option<SecretSchema>)]
    pub secret: Option<String>,
    /// The header carrying the secret: required for `header-secret`,
    /// optional for `siigo` (default `x-hookline-secret`), refused for the
    /// other kinds.
    #[serde(default)]
    #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
    pub header_name: Option<String>,
    /// Where the event name comes from: a JSON pointer into the body
    /// (`/event`; the default depends on the kind) or a fixed event name
    /// (`salesOrder.updated`).
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^(/[^\x00-\x1F\x7F-\x9F]*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+)$"
    )]
    pub event_type: Option<String>,
    /// Which part of the body becomes the event's data, as a JSON pointer
    /// (`/data` for InFlow; `""`, the whole body, otherwise).
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^(/[^\x00-\x1F\x7F-\x9F]*)?$")]
    pub data: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<IdempotencyBody>)]
    pub idempotency: Option<IdempotencyBody>,
}

impl fmt::Debug for CreateSourceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSourceRequest")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

fn required<T>(v: &mut Validator, field: &str, value: Option<T>) -> Option<T> {
    if value.is_none() {
        v.fail(ValidationError::new(field, "is required"));
    }
    value
}

impl CreateSourceRequest {
    /// # Errors
    /// Validation errors naming every bad field.
    pub fn into_new(self) -> Result<NewSource, AppError> {
        let mut v = Validator::default();
        let name = required(&mut v, "name", self.name.as_deref())
            .and_then(|n| v.check(SourceName::parse(n)));
        let kind = required(&mut v, "kind", self.kind.as_deref())
            .and_then(|k| v.check(SourceKind::parse(k)));
        let secret = match self.secret.as_deref() {
            Some(s) => v.check(SigningSecret::parse(s)).map(Some),
            None => Some(None),
        };
        let header_name = match self.header_name.as_deref() {
            Some(h) => v.check(HeaderName::parse(h, "header_name")).map(Some),
            None => Some(None),
        };
        let event_type = match self.event_type.as_deref() {
            Some(e) => v.check(EventTypeRule::parse(e)).map(Some),
            None => Some(None),
        };
        let data = match self.data.as_deref() {
            Some(d) => v.check(JsonPointer::parse(d, "data")).map(Some),
            None => Some(None),
        };
        let idempotency = match self.idempotency {
            Some(i) => v.check(i.into_idempotency()).map(Some),
            None => Some(None),
        };
        v.finish()?;
        match (
            name,
            kind,
            secret,
            header_name,
            event_type,
            data,
            idempotency,
        ) {
            (
                Some(name),
                Some(kind),
                Some(secret),
                Some(header_name),
                Some(event_type),
                Some(data),
                Some(idempotency),
            ) => Ok(NewSource {
                name,
                kind,
                secret,
                header_name,
                event_type,
                data,
                idempotency,
            }),
            _ => Err(AppError::Internal(
                "validation passed without values".into(),
            )),
        }
    }
}

/// `PATCH /v1/sources/{id}`: absent fields stay as they are. The secret
/// changes with rotate-secret, and the kind never.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSourceRequest {
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
    pub header_name: Option<String>,
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = r"^(/[^\x00-\x1F\x7F-\x9F]*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+)$"
    )]
    pub event_type: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^(/[^\x00-\x1F\x7F-\x9F]*)?$")]
    pub data: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<IdempotencyBody>)]
    pub idempotency: Option<IdempotencyBody>,
    /// Read only to explain how these change (refused with 400).
    #[serde(default)]
    #[schema(ignore)]
    pub secret: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub kind: Option<serde_json::Value>,
}

impl fmt::Debug for UpdateSourceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSourceRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl UpdateSourceRequest {
    /// # Errors
    /// Validation errors naming every bad field.
    pub fn into_changes(self, id: SourceId) -> Result<SourceChanges, AppError> {
        if self.secret.is_some() {
            return Err(ValidationError::new(
                "secret",
                format!("cannot be changed with PATCH; use POST /v1/sources/{id}/rotate-secret"),
            )
            .into());
        }
        if self.kind.is_some() {
            return Err(ValidationError::new(
                "kind",
                "cannot be changed; create another source for another kind",
            )
            .into());
        }
        let mut v = Validator::default();
        let changes = SourceChanges {
            name: self
                .name
                .as_deref()
                .and_then(|n| v.check(SourceName::parse(n))),
            header_name: self
                .header_name
                .as_deref()
                .and_then(|h| v.check(HeaderName::parse(h, "header_name"))),
            event_type: self
                .event_type
                .as_deref()
                .and_then(|e| v.check(EventTypeRule::parse(e))),
            data: self
                .data
                .as_deref()
                .and_then(|d| v.check(JsonPointer::parse(d, "data"))),
            idempotency: self.idempotency.and_then(|i| v.check(i.into_idempotency())),
        };
        v.finish()?;
        Ok(changes)
    }
}

/// `POST /v1/sources/{id}/rotate-secret` (optional body).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSourceSecretRequest {
    /// The new secret; generated when absent.
    #[serde(default)]
    #[schema(value_type = Option<SecretSchema>)]
    pub secret: Option<String>,
}

impl fmt::Debug for RotateSourceSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateSourceSecretRequest")
            .finish_non_exhaustive()
    }
}

impl RotateSourceSecretRequest {
    /// # Errors
    /// A malformed secret.
    pub fn into_secret(self) -> Result<Option<SigningSecret>, AppError> {
        Ok(self
            .secret
            .as_deref()
            .map(SigningSecret::parse)
            .transpose()?)
    }
}

/// Query of `GET /v1/sources`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSourcesQuery {
    /// Deleted sources too.
    #[serde(default)]
    pub include_deleted: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl ListSourcesQuery {
    /// # Errors
    /// A bad `limit` or `cursor`.
    pub fn into_query(self) -> Result<ListSources, AppError> {
        Ok(ListSources {
            include_deleted: self.include_deleted == Some(true),
            page: PageRequest::parse(self.limit, self.cursor.as_deref())?,
        })
    }
}

/// Query of `GET /v1/sources/{id}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetSourceQuery {
    /// Show a deleted source too (otherwise 404).
    #[serde(default)]
    pub include_deleted: Option<bool>,
}

/// Query of `GET /v1/sources/{id}/history`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SourceHistoryQuery {
    /// Show a deleted source's history too (otherwise 404).
    #[serde(default)]
    pub include_deleted: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Query of `GET /v1/sources/{id}/rejections`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RejectionsQuery {
    /// A deleted source's refusals too (otherwise 404).
    #[serde(default)]
    pub include_deleted: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Where the delivery id is read (neither: the body's SHA-256).
#[derive(Debug, Serialize, ToSchema)]
pub struct IdempotencyResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pointer: Option<String>,
    pub window_seconds: u32,
}

/// A source: everything but the secret, which appears masked (in full
/// only in the answers that create or rotate it).
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceResponse {
    #[schema(value_type = uuid::Uuid)]
    pub id: SourceId,
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    pub name: String,
    #[schema(value_type = SourceKindSchema)]
    pub kind: SourceKind,
    /// Give this URL to the provider: `POST` only, no API key
    /// (`HOOKLINE_PUBLIC_URL` + `/in/{id}`).
    #[schema(format = "uri")]
    pub ingest_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub header_name: Option<String>,
    /// A JSON pointer or a fixed event name.
    pub event_type: String,
    /// A JSON pointer (`""`: the whole body).
    pub data: String,
    pub idempotency: IdempotencyResponse,
    #[schema(value_type = SourceStatusSchema)]
    pub status: SourceStatus,
    /// In full only when created or rotated; masked otherwise.
    pub secret: String,
    /// While a rotation's overlap lasts: when the previous secret stops
    /// being accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SourceView> for SourceResponse {
    fn from(v: SourceView) -> Self {
        Self {
            id: v.id,
            tenant_id: v.tenant_id,
            name: v.name,
            kind: v.kind,
            ingest_url: v.ingest_url,
            header_name: v.header_name,
            event_type: v.event_type,
            data: v.data,
            idempotency: IdempotencyResponse {
                header: v.idempotency.header,
                pointer: v.idempotency.pointer,
                window_seconds: v.idempotency.window_seconds,
            },
            status: v.status,
            secret: v.secret,
            previous_secret_expires_at: v.previous_secret_expires_at,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// A refused inbound request (no body: its SHA-256 and size).
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionResponse {
    pub id: i64,
    #[schema(value_type = uuid::Uuid)]
    pub source_id: SourceId,
    /// The code the provider was answered with, such as
    /// `signature_invalid`.
    pub reason: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub remote_addr: Option<String>,
    pub request_id: String,
    pub body_sha256: String,
    pub body_bytes: u64,
    pub received_at: DateTime<Utc>,
}

impl From<RejectionView> for RejectionResponse {
    fn from(r: RejectionView) -> Self {
        Self {
            id: r.id,
            source_id: r.source_id,
            reason: r.reason,
            detail: r.detail,
            remote_addr: r.remote_addr,
            request_id: r.request_id,
            body_sha256: r.body_sha256,
            body_bytes: r.body_bytes,
            received_at: r.received_at,
        }
    }
}
