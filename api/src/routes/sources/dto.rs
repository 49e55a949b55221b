//! Request and response bodies of `/v1/sources`, and their conversion
//! into typed values. Unknown fields are refused.

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

/// `idempotency`: where the provider's delivery id is.
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct IdempotencyBody {
    /// A header holding the provider's delivery id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A JSON pointer to the delivery id in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// How long a repeat is recognised (60 s – 30 days; default 1 day).
    #[serde(default)]
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

/// `POST /v1/sources`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSourceRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
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

/// `PATCH /v1/sources/{id}`: absent fields stay as they are.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateSourceRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub header_name: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub data: Option<String>,
    #[serde(default)]
    pub idempotency: Option<IdempotencyBody>,
    /// Accepted only to explain how these change.
    #[serde(default)]
    pub secret: Option<serde_json::Value>,
    #[serde(default)]
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
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSourceSecretRequest {
    #[serde(default)]
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
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListSourcesQuery {
    #[serde(default)]
    pub include_deleted: Option<bool>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
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
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GetSourceQuery {
    #[serde(default)]
    pub include_deleted: Option<bool>,
}

/// Query of `GET /v1/sources/{id}/rejections`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RejectionsQuery {
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct IdempotencyResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    pub window_seconds: u32,
}

/// A source: everything but the secret, which appears masked (in full
/// only in the answers that create or rotate it).
#[derive(Debug, Serialize)]
pub struct SourceResponse {
    pub id: SourceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: SourceKind,
    /// Give this URL to the provider: `POST` only, no API key.
    pub ingest_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    pub event_type: String,
    pub data: String,
    pub idempotency: IdempotencyResponse,
    pub status: SourceStatus,
    pub secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Serialize)]
pub struct RejectionResponse {
    pub id: i64,
    pub source_id: SourceId,
    pub reason: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
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
