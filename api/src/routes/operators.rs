//! `/admin/operator-keys`: the organisation's operator API keys, which act
//! for every tenant on the Svix-compatible API (`/api/v1`) like
//! `HOOKLINE_ADMIN_TOKEN`. A key is shown once, when issued; the log keeps
//! its SHA-256 digest.

use super::common::DataResponse;
use super::tenants::AdminCtx;
use super::{no_content, written};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::operators::{IssuedOperatorKey, OperatorKeyView};
use hookline_domain::operator::KeyName;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue, list))
        .routes(routes!(revoke))
}

/// `POST /admin/operator-keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// What the key is for (`svix-migration`): 1–100 characters once
    /// trimmed, one line, no control characters or bidirectional controls,
    /// with a letter or digit of any script.
    #[serde(default)]
    #[schema(
        value_type = String,
        required = true,
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: Option<String>,
}

/// An operator key as lists show it: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorKeyResponse {
    pub id: Uuid,
    pub name: String,
    /// The key's prefix and last four characters (`hlo_…k1vQ`).
    pub hint: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub revoked_at: Option<DateTime<Utc>>,
    pub active: bool,
}

impl From<OperatorKeyView> for OperatorKeyResponse {
    fn from(k: OperatorKeyView) -> Self {
        Self {
            id: k.id,
            name: k.name,
            hint: k.hint,
            created_at: k.created_at,
            active: k.revoked_at.is_none(),
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just issued: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct IssuedOperatorKeyResponse {
    #[serde(flatten)]
    pub key: OperatorKeyResponse,
    /// The key (`hlo_…`): send it as `Authorization: Bearer <key>` to the
    /// Svix-compatible API (`/api/v1`).
    pub api_key: String,
}

impl std::fmt::Debug for IssuedOperatorKeyResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedOperatorKeyResponse")
            .field("key", &self.key)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

impl From<IssuedOperatorKey> for IssuedOperatorKeyResponse {
    fn from(k: IssuedOperatorKey) -> Self {
        Self {
            key: k.view.into(),
            api_key: k.api_key,
        }
    }
}

const KEY_EXAMPLE_ID: &str = "01936f40-1b2c-7d3e-8f40-5a6b7c8d9e0f";

fn key_example() -> serde_json::Value {
    json!({
        "id": KEY_EXAMPLE_ID,
        "name": "svix-migration",
        "hint": "hlo_…3xQe",
        "created_at": "2026-02-14T10:30:00.123456Z",
        "active": true
    })
}

/// Issue an operator key
///
/// An operator key acts for the whole organisation on the Svix-compatible
/// API (`/api/v1`), like `HOOKLINE_ADMIN_TOKEN` does there; it cannot call
/// `/admin`. It is shown only in this answer; the log keeps its SHA-256.
#[utoipa::path(
    post,
    path = "/admin/operator-keys",
    operation_id = "issue_operator_key",
    tag = "admin",
    request_body(content = IssueRequest, example = json!({"name": "svix-migration"})),
    responses(
        (status = 201, description = "Issued.", body = IssuedOperatorKeyResponse,
            links(
                ("RevokeOperatorKey" = (operation_id = "revoke_operator_key",
                    parameters(("id" = "$response.body#/id")))),
            ),
            example = json!({
                "id": KEY_EXAMPLE_ID,
                "name": "svix-migration",
                "hint": "hlo_…3xQe",
                "created_at": "2026-02-14T10:30:00.123456Z",
                "active": true,
                "api_key": "hlo_q2Vd0c3kR1m6nWZy8S9aTg7uJfXbLhPoE5iKs4r3xQe"
            })),
        (status = 400, description = "- `validation_error`: `name` is missing, blank, longer than 100 characters, not one line or has control characters"),
        (status = 409, description = "- `too_many_keys`: 20 operator keys already work; revoke one first\n- `concurrent_modification`: another request changed them at the same time; retry"),
    )
)]
async fn issue(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    ApiJson(input): ApiJson<IssueRequest>,
) -> ApiResult<Response> {
    let name = KeyName::parse(input.name.as_deref().unwrap_or_default())
        .map_err(hookline_application::AppError::from)?;
    let issued = state.operators.issue(&ctx, name).await?;
    written(
        StatusCode::CREATED,
        issued.map(IssuedOperatorKeyResponse::from),
    )
}

/// List operator keys
///
/// Hints only, never the keys; revoked ones too.
#[utoipa::path(
    get,
    path = "/admin/operator-keys",
    operation_id = "list_operator_keys",
    tag = "admin",
    responses(
        (status = 200, description = "Every operator key, oldest first.",
            body = DataResponse<OperatorKeyResponse>,
            example = json!({"data": [key_example()]})),
    )
)]
async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    let keys = state.operators.list().await?;
    Ok(Json(DataResponse {
        data: keys
            .into_iter()
            .map(OperatorKeyResponse::from)
            .collect::<Vec<_>>(),
    })
    .into_response())
}

/// Revoke an operator key
///
/// It stops working at once. Revoking a revoked key changes nothing.
#[utoipa::path(
    delete,
    path = "/admin/operator-keys/{id}",
    operation_id = "revoke_operator_key",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: there is no such operator key"),
        (status = 409, description = "- `concurrent_modification`: another request changed them at the same time; retry"),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(id.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            "the key id is not a valid key id (expected a UUID)",
        )
    })?;
    Ok(no_content(state.operators.revoke(&ctx, id).await?))
}
