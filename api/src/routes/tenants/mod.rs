//! `/admin/tenants` (operators, authorised by `HOOKLINE_ADMIN_TOKEN`; the
//! routes do not exist without it) and `/v1/api-keys/rotate` (a tenant
//! replacing its own key).

pub mod dto;

use super::common::{DataResponse, PageResponse};
use super::{no_content, written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, ApiJson, ApiQuery, OptionalJson};
use crate::middleware::{Caller, CurrentRequestId};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use dto::{
    ApiKeyResponse, CreatedTenantResponse, IssuedKeyResponse, ListTenantsQuery, RotateKeyRequest,
    TenantRequest, TenantResponse,
};
use hookline_application::{Actor, CommandContext};
use hookline_domain::TenantId;
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub fn admin_router() -> Router<AppState> {
    Router::new()
        .route("/admin/tenants", post(create).get(list))
        .route(
            "/admin/tenants/{id}",
            get(read).patch(rename).delete(remove),
        )
        .route("/admin/tenants/{id}/keys", post(issue_key).get(keys))
        .route("/admin/tenants/{id}/keys/{key_id}", delete(revoke_key))
}

pub fn own_router() -> Router<AppState> {
    Router::new().route("/api-keys/rotate", post(rotate_own_key))
}

/// The admin routes' guard: 404 when the admin API is disabled, 401
/// without the admin token.
pub async fn admin_only(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = &state.admin_token else {
        return ApiError::not_found(
            "the admin API is disabled; set HOOKLINE_ADMIN_TOKEN to enable it",
        )
        .into_response();
    };
    let given = match crate::middleware::bearer_token(req.headers(), "HOOKLINE_ADMIN_TOKEN") {
        Ok(given) => given,
        Err(e) => return e.into_response(),
    };
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        next.run(req).await
    } else {
        ApiError::unauthorized("send `Authorization: Bearer <HOOKLINE_ADMIN_TOKEN>`")
            .into_response()
    }
}

/// The command context of an operator's request.
#[derive(Debug, Clone)]
pub struct AdminCtx(pub CommandContext);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AdminCtx {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let CurrentRequestId(request_id) =
            CurrentRequestId::from_request_parts(parts, state).await?;
        Ok(Self(CommandContext {
            request_id,
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            actor: Actor::Admin,
        }))
    }
}

fn tenant_id(raw: &str) -> ApiResult<TenantId> {
    parse_id(raw, TenantId::parse)
}

async fn create(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    ApiJson(input): ApiJson<TenantRequest>,
) -> ApiResult<Response> {
    let created = state.tenants.create(&ctx, input.into_name()?).await?;
    written(
        StatusCode::CREATED,
        created.map(CreatedTenantResponse::from),
    )
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListTenantsQuery>,
) -> ApiResult<Response> {
    let (include_deleted, page) = query.into_query()?;
    let page = state.tenants.list(include_deleted, page).await?;
    Ok(Json(PageResponse::from_page(page, TenantResponse::from)).into_response())
}

async fn read(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let tenant = state.tenants.get(tenant_id(&id)?).await?;
    Ok(Json(TenantResponse::from(tenant)).into_response())
}

async fn rename(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TenantRequest>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    let renamed = state.tenants.rename(&ctx, id, input.into_name()?).await?;
    written(StatusCode::OK, renamed.map(TenantResponse::from))
}

async fn remove(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    Ok(no_content(state.tenants.delete(&ctx, id).await?))
}

async fn issue_key(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    let issued = state.tenants.issue_key(&ctx, id).await?;
    written(StatusCode::CREATED, issued.map(IssuedKeyResponse::from))
}

async fn keys(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let keys = state.tenants.keys(tenant_id(&id)?).await?;
    Ok(Json(DataResponse {
        data: keys.into_iter().map(ApiKeyResponse::from).collect(),
    })
    .into_response())
}

async fn revoke_key(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path((id, key_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    let key_id = Uuid::parse_str(key_id.trim()).map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            "the key id is not a valid key id (expected a UUID)",
        )
    })?;
    Ok(no_content(
        state.tenants.revoke_key(&ctx, id, key_id).await?,
    ))
}

async fn rotate_own_key(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Caller(caller): Caller,
    OptionalJson(input): OptionalJson<RotateKeyRequest>,
) -> ApiResult<Response> {
    let rotated = state
        .tenants
        .rotate_own_key(&ctx, caller, input.overlap())
        .await?;
    written(
        StatusCode::CREATED,
        rotated.map(|(key, until)| IssuedKeyResponse {
            previous_key_id: Some(caller.key_id),
            previous_key_expires_at: Some(until),
            ..IssuedKeyResponse::from(key)
        }),
    )
}
