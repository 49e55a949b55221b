//! `/admin/tenants` (operators, authorised by `HOOKLINE_ADMIN_TOKEN`; the
//! routes do not exist without it) and `/v1/api-keys/rotate` (a tenant
//! replacing its own key).

pub mod dto;

use super::common::{DataResponse, PageResponse};
use super::openapi::examples as ex;
use super::{no_content, written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, ApiJson, ApiQuery, OptionalJson};
use crate::middleware::{Caller, CurrentRequestId};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{
    ApiKeyResponse, CreatedTenantResponse, IssuedKeyResponse, ListTenantsQuery, ReadTenantQuery,
    RotateKeyRequest, TenantRequest, TenantResponse,
};
use hookline_application::{Actor, AppError, CommandContext};
use hookline_domain::tenant::TenantStatus;
use hookline_domain::TenantId;
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn admin_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, rename, remove))
        .routes(routes!(issue_key, keys))
        .routes(routes!(revoke_key))
}

pub fn own_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rotate_own_key))
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
    // Wrong tokens count against the client's address, as the console's
    // sign-ins do: past the limit, even the right token waits.
    let client = crate::console::web::client_ip(&req);
    if let Some(wait) = state.console.api_guesses.blocked(client) {
        return too_many_guesses(wait);
    }
    let given = match crate::middleware::bearer_token(req.headers(), "HOOKLINE_ADMIN_TOKEN") {
        Ok(given) => given,
        // No token, or not a bearer one: not a guess.
        Err(e) => return e.into_response(),
    };
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        next.run(req).await
    } else {
        state.console.api_guesses.failed(client);
        ApiError::unauthorized("send `Authorization: Bearer <HOOKLINE_ADMIN_TOKEN>`")
            .into_response()
    }
}

/// 429 for a client past its failed-credential limit.
fn too_many_guesses(wait: std::time::Duration) -> Response {
    let (detail, seconds) = crate::routes::guesses_wait(wait);
    let r = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        detail,
    )
    .into_response();
    crate::routes::retry_after(r, seconds)
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

/// Create a tenant
///
/// The answer carries the tenant's first API key, the only time it is
/// shown.
#[utoipa::path(
    post,
    path = "/admin/tenants",
    operation_id = "create_tenant",
    tag = "admin",
    request_body(content = TenantRequest, example = json!(ex::tenant_request())),
    responses(
        (status = 201, description = "Created.", body = CreatedTenantResponse,
            links(
                ("GetTenant" = (operation_id = "get_tenant",
                    parameters(("id" = "$response.body#/tenant_id")))),
                ("RenameTenant" = (operation_id = "rename_tenant",
                    parameters(("id" = "$response.body#/tenant_id")))),
                ("DeleteTenant" = (operation_id = "delete_tenant",
                    parameters(("id" = "$response.body#/tenant_id")))),
                ("IssueApiKey" = (operation_id = "issue_api_key",
                    parameters(("id" = "$response.body#/tenant_id")))),
                ("ListApiKeys" = (operation_id = "list_api_keys",
                    parameters(("id" = "$response.body#/tenant_id")))),
            ),
            example = json!(ex::created_tenant())),
        (status = 400, description = "- `validation_error`: `name` is missing, blank, longer than 200 characters or has control characters"),
    )
)]
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

/// List tenants
#[utoipa::path(
    get,
    path = "/admin/tenants",
    operation_id = "list_tenants",
    tag = "admin",
    params(ListTenantsQuery),
    responses(
        (status = 200, description = "A page of tenants, newest first.",
            body = PageResponse<TenantResponse>, example = json!(ex::tenant_page())),
        (status = 400, description = "- `validation_error`: `limit` or `cursor` is malformed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListTenantsQuery>,
) -> ApiResult<Response> {
    let (include_deleted, page) = query.into_query()?;
    let page = state.tenants.list(include_deleted, page).await?;
    Ok(Json(PageResponse::from_page(page, TenantResponse::from)).into_response())
}

/// Get a tenant
#[utoipa::path(
    get,
    path = "/admin/tenants/{id}",
    operation_id = "get_tenant",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The tenant's id."), ReadTenantQuery),
    responses(
        (status = 200, description = "The tenant.", body = TenantResponse, example = json!(ex::tenant())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `invalid_query`: an unknown or malformed query parameter"),
        (status = 404, description = "- `not_found`: no such tenant, or a deleted one without `include_deleted=true`"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ReadTenantQuery>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    let tenant = state.tenants.get(id).await?;
    if tenant.status == TenantStatus::Deleted && query.include_deleted != Some(true) {
        return Err(AppError::not_found("tenant", id).into());
    }
    Ok(Json(TenantResponse::from(tenant)).into_response())
}

/// Rename a tenant
#[utoipa::path(
    patch,
    path = "/admin/tenants/{id}",
    operation_id = "rename_tenant",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The tenant's id.")),
    request_body(content = TenantRequest, example = json!({"name": "Acme Corporation"})),
    responses(
        (status = 200, description = "The renamed tenant.", body = TenantResponse,
            example = json!({
                "id": ex::TENANT_ID,
                "name": "Acme Corporation",
                "status": "active",
                "active_keys": 1,
                "created_at": ex::CREATED_AT,
                "updated_at": ex::UPDATED_AT
            })),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `name` is missing, blank, longer than 200 characters or has control characters"),
        (status = 404, description = "- `not_found`: no such tenant"),
        (status = 409, description = "- `tenant_deleted`: it has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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

/// Delete a tenant
///
/// Soft: its keys stop working at once and its subscriptions are deleted;
/// everything stays in the log. Deleting a deleted tenant changes nothing.
#[utoipa::path(
    delete,
    path = "/admin/tenants/{id}",
    operation_id = "delete_tenant",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The tenant's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such tenant"),
        (status = 409, description = "- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    Ok(no_content(
        state.tenants.delete(&ctx, id).await?.map(|_| ()),
    ))
}

/// Issue an API key
///
/// An additional key for the tenant (the others keep working), shown only
/// in this answer.
#[utoipa::path(
    post,
    path = "/admin/tenants/{id}/keys",
    operation_id = "issue_api_key",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The tenant's id.")),
    responses(
        (status = 201, description = "Issued.", body = IssuedKeyResponse,
            links(
                ("RevokeApiKey" = (operation_id = "revoke_api_key",
                    parameters(("id" = "$request.path.id"), ("key_id" = "$response.body#/id")))),
            ),
            example = json!(ex::issued_key(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such tenant"),
        (status = 409, description = "- `tenant_deleted`: it has been deleted\n- `too_many_keys`: it holds 20 active keys; revoke one first\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn issue_key(
    State(state): State<AppState>,
    AdminCtx(ctx): AdminCtx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = tenant_id(&id)?;
    let issued = state.tenants.issue_key(&ctx, id).await?;
    written(StatusCode::CREATED, issued.map(IssuedKeyResponse::from))
}

/// List a tenant's API keys
///
/// Hints only, never the keys.
#[utoipa::path(
    get,
    path = "/admin/tenants/{id}/keys",
    operation_id = "list_api_keys",
    tag = "admin",
    params(("id" = Uuid, Path, description = "The tenant's id.")),
    responses(
        (status = 200, description = "Every key, revoked ones too.", body = DataResponse<ApiKeyResponse>,
            example = json!(ex::api_keys())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such tenant"),
    )
)]
async fn keys(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let keys = state.tenants.keys(tenant_id(&id)?).await?;
    Ok(Json(DataResponse {
        data: keys.into_iter().map(ApiKeyResponse::from).collect(),
    })
    .into_response())
}

/// Revoke an API key
///
/// It stops working at once.
#[utoipa::path(
    delete,
    path = "/admin/tenants/{id}/keys/{key_id}",
    operation_id = "revoke_api_key",
    tag = "admin",
    params(
        ("id" = Uuid, Path, description = "The tenant's id."),
        ("key_id" = Uuid, Path, description = "The key's id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "- `invalid_id`: `id` or `key_id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such tenant, or it has no such key"),
        (status = 409, description = "- `tenant_deleted`: it has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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

/// Rotate the calling API key
///
/// Issues a new key for the caller's tenant; the calling key keeps working
/// for `overlap_seconds` (default 0: it stops now). The new key is shown
/// only in this answer.
#[utoipa::path(
    post,
    path = "/api-keys/rotate",
    operation_id = "rotate_api_key",
    tag = "api-keys",
    request_body(content = Option<RotateKeyRequest>, description = "Optional.",
        example = json!({"overlap_seconds": 3600})),
    responses(
        (status = 201, description = "The new key, and until when the calling one still works.",
            body = IssuedKeyResponse, example = json!(ex::issued_key(true))),
        (status = 400, description = "- `validation_error`: `overlap_seconds` is more than 604800 (7 days)"),
        (status = 409, description = "- `too_many_keys`: the tenant holds 20 active keys; revoke one first\n- `key_retiring`: the calling key is being retired by an earlier rotation or a revocation; rotate with the key that replaced it\n- `tenant_deleted`: the tenant has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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
