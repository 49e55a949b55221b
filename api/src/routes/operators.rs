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
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hookline_application::operators::{IssuedOperatorKey, OperatorKeyView};
use hookline_domain::operator::KeyName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/admin/operator-keys", post(issue).get(list))
        .route("/admin/operator-keys/{id}", delete(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// What the key is for (`svix-migration`).
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct OperatorKeyResponse {
    pub id: Uuid,
    pub name: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Serialize)]
pub struct IssuedOperatorKeyResponse {
    #[serde(flatten)]
    pub key: OperatorKeyResponse,
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

async fn issue(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    ApiJson(input): ApiJson<IssueRequest>,
) -> ApiResult<Response> {
    let name = KeyName::parse(&input.name).map_err(hookline_application::AppError::from)?;
    let issued = state.operators.issue(&ctx, name).await?;
    written(
        StatusCode::CREATED,
        issued.map(IssuedOperatorKeyResponse::from),
    )
}

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
