//! Request and response bodies of `/admin/tenants` and
//! `/v1/api-keys/rotate`.

use crate::routes::openapi::schemas::TenantStatusSchema;
use chrono::{DateTime, Utc};
use hookline_application::pagination::PageRequest;
use hookline_application::tenants::{ApiKeyView, IssuedKey, NewTenant, TenantView};
use hookline_application::AppError;
use hookline_domain::tenant::{TenantName, TenantStatus};
use hookline_domain::TenantId;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// `POST /admin/tenants` and `PATCH /admin/tenants/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    /// The display name: 1–200 characters once trimmed, one line, no
    /// control characters or bidirectional controls (U+202A–202E,
    /// U+2066–2069), with a letter or digit of any script.
    #[serde(default)]
    #[schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
}

impl TenantRequest {
    /// # Errors
    /// A validation error naming `name`.
    pub fn into_name(self) -> Result<TenantName, AppError> {
        let name = self.name.unwrap_or_default();
        Ok(TenantName::parse(&name)?)
    }
}

/// Query parameters of `GET /admin/tenants`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTenantsQuery {
    /// Deleted tenants too.
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

impl ListTenantsQuery {
    /// # Errors
    /// Validation errors for `limit` or `cursor`.
    pub fn into_query(self) -> Result<(bool, PageRequest), AppError> {
        Ok((
            self.include_deleted == Some(true),
            PageRequest::parse(self.limit, self.cursor.as_deref())?,
        ))
    }
}

/// Query parameters of `GET /admin/tenants/{id}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadTenantQuery {
    /// A deleted tenant too (otherwise it is `404`, as once deleted).
    #[serde(default)]
    pub include_deleted: Option<bool>,
}

/// What creating a tenant answers: its id and its first key, shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenantResponse {
    #[schema(value_type = Uuid)]
    pub tenant_id: TenantId,
    /// The tenant's first API key (`Authorization: Bearer <api_key>` on
    /// `/v1`); stored hashed, never shown again.
    pub api_key: String,
}

impl fmt::Debug for CreatedTenantResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedTenantResponse")
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl From<NewTenant> for CreatedTenantResponse {
    fn from(t: NewTenant) -> Self {
        Self {
            tenant_id: t.tenant.id,
            api_key: t.key.api_key,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantResponse {
    #[schema(value_type = Uuid)]
    pub id: TenantId,
    pub name: String,
    #[schema(value_type = TenantStatusSchema)]
    pub status: TenantStatus,
    /// Keys that work now.
    pub active_keys: usize,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The client's own name for the tenant (a Svix application's uid).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub uid: Option<String>,
    /// Key-value pairs set through the Svix-compatible API (absent when
    /// empty).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl From<TenantView> for TenantResponse {
    fn from(t: TenantView) -> Self {
        Self {
            id: t.id,
            name: t.name,
            status: t.status,
            active_keys: t.active_keys,
            created_at: t.created_at,
            updated_at: t.updated_at,
            uid: t.uid.map(|u| u.as_str().to_string()),
            metadata: t.metadata.as_map().clone(),
        }
    }
}

/// A key just issued: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct IssuedKeyResponse {
    pub id: Uuid,
    /// The key itself, shown only here.
    pub api_key: String,
    /// A recognisable, harmless part of the key.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// After a rotation: the key it replaces, and until when that one
    /// still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_key_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_key_expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for IssuedKeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKeyResponse")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl From<IssuedKey> for IssuedKeyResponse {
    fn from(k: IssuedKey) -> Self {
        Self {
            id: k.id,
            api_key: k.api_key,
            hint: k.hint,
            created_at: k.created_at,
            previous_key_id: None,
            previous_key_expires_at: None,
        }
    }
}

/// A key as lists show it: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: Uuid,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    /// When it stops (or stopped) working, once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    pub active: bool,
}

impl From<ApiKeyView> for ApiKeyResponse {
    fn from(k: ApiKeyView) -> Self {
        Self {
            id: k.id,
            hint: k.hint,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            active: k.active,
        }
    }
}

/// `POST /v1/api-keys/rotate` (optional body).
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the calling key keeps working, 0–604800 seconds (7 days;
    /// default 0: it stops now).
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<u32>,
}

impl RotateKeyRequest {
    pub fn overlap(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.overlap_seconds.unwrap_or(0)))
    }
}
