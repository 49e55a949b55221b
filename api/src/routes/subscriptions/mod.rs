//! `/v1/subscriptions`: create, list, read, update, rotate, disable/enable,
//! delete, history.

pub mod dto;

use super::common::{history, HistoryEntryResponse, HistoryQuery, PageResponse};
use super::openapi::examples as ex;
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{parse_id, ApiJson, ApiQuery, OptionalJson};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{
    CreateSubscriptionRequest, DisableRequest, GetSubscriptionQuery, ListSubscriptionsQuery,
    RotateSecretRequest, SubscriptionResponse, UpdateSubscriptionRequest,
};
use hookline_domain::SubscriptionId;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(read_history))
}

pub(crate) fn sub_id(raw: &str) -> ApiResult<SubscriptionId> {
    parse_id(raw, SubscriptionId::parse)
}

/// Create a subscription
///
/// Where to send which events. The answer carries the signing secret in
/// full (the only time it is shown) and `warnings` for filter entries the
/// catalogue does not have.
#[utoipa::path(
    post,
    path = "/subscriptions",
    operation_id = "create_subscription",
    tag = "subscriptions",
    request_body(content = CreateSubscriptionRequest, example = json!(ex::create_subscription())),
    responses(
        (status = 201, description = "Created.", body = SubscriptionResponse,
            links(
                ("GetSubscription" = (operation_id = "get_subscription",
                    parameters(("id" = "$response.body#/id")))),
                ("UpdateSubscription" = (operation_id = "update_subscription",
                    parameters(("id" = "$response.body#/id")))),
                ("DeleteSubscription" = (operation_id = "delete_subscription",
                    parameters(("id" = "$response.body#/id")))),
                ("RotateSubscriptionSecret" = (operation_id = "rotate_subscription_secret",
                    parameters(("id" = "$response.body#/id")))),
                ("DisableSubscription" = (operation_id = "disable_subscription",
                    parameters(("id" = "$response.body#/id")))),
                ("EnableSubscription" = (operation_id = "enable_subscription",
                    parameters(("id" = "$response.body#/id")))),
                ("GetSubscriptionHistory" = (operation_id = "get_subscription_history",
                    parameters(("id" = "$response.body#/id")))),
                ("SendTestEvent" = (operation_id = "send_test_event",
                    parameters(("id" = "$response.body#/id")))),
                ("RecoverDeliveries" = (operation_id = "recover_deliveries",
                    parameters(("id" = "$response.body#/id")))),
            ),
            example = json!(ex::subscription(true))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each broken field is named: `url`, `events`, `events[2]`, `event`, `secret`, `headers.<name>`, `description`, `signature_scheme`), `url` or the filter is missing, or both `events` and `event` are given"),
        (status = 409, description = "- `duplicate_subscription`: an active subscription already sends these events to this URL\n- `subscription_limit_reached`: the tenant has HOOKLINE_MAX_SUBSCRIPTIONS_PER_TENANT subscriptions\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateSubscriptionRequest>,
) -> ApiResult<Response> {
    let patterns = input.patterns();
    let command = input.into_command(state.subscriptions.allow_list())?;
    let created = state.subscriptions.create(&ctx, command).await?;
    let warnings = state
        .catalogue
        .filter_warnings(ctx.tenant_id, &patterns)
        .await;
    written(
        StatusCode::CREATED,
        created.map(|v| SubscriptionResponse::from(v).with_warnings(warnings)),
    )
}

/// List subscriptions
///
/// Newest first; active ones unless `include_inactive`.
#[utoipa::path(
    get,
    path = "/subscriptions",
    operation_id = "list_subscriptions",
    tag = "subscriptions",
    params(ListSubscriptionsQuery),
    responses(
        (status = 200, description = "A page of subscriptions (secrets and header values masked).",
            body = PageResponse<SubscriptionResponse>, example = json!(ex::subscription_page())),
        (status = 400, description = "- `validation_error`: `event`, `limit` or `cursor` is malformed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListSubscriptionsQuery>,
) -> ApiResult<Response> {
    let page = state
        .subscriptions
        .list(caller.tenant_id, query.into_query()?)
        .await?;
    Ok(Json(PageResponse::from_page(page, SubscriptionResponse::from)).into_response())
}

/// Get a subscription
#[utoipa::path(
    get,
    path = "/subscriptions/{id}",
    operation_id = "get_subscription",
    tag = "subscriptions",
    params(
        ("id" = Uuid, Path, description = "The subscription's id."),
        GetSubscriptionQuery,
    ),
    responses(
        (status = 200, description = "The subscription (secret and header values masked).",
            body = SubscriptionResponse, example = json!(ex::subscription(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `as_of` is not an RFC 3339 time"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant (or deleted, without `include_inactive`/`as_of`; or not yet created at `as_of`)"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetSubscriptionQuery>,
) -> ApiResult<Response> {
    let view = state
        .subscriptions
        .get(caller.tenant_id, sub_id(&id)?, query.into_query()?)
        .await?;
    Ok(Json(SubscriptionResponse::from(view)).into_response())
}

/// Update a subscription
///
/// Changes the given fields; the answer shows custom header values in full.
#[utoipa::path(
    patch,
    path = "/subscriptions/{id}",
    operation_id = "update_subscription",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    request_body(content = UpdateSubscriptionRequest, example = json!(ex::update_subscription())),
    responses(
        (status = 200, description = "The updated subscription.", body = SubscriptionResponse,
            example = json!(ex::updated_subscription())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: a field breaks its rules (each is named), or `secret` is given\n- `bad_request`: the body changes nothing"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `duplicate_subscription`: the change would duplicate another active subscription\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateSubscriptionRequest>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let patterns = input.patterns();
    let changes = input.into_changes(id, state.subscriptions.allow_list())?;
    let updated = state.subscriptions.update(&ctx, id, changes).await?;
    let warnings = state
        .catalogue
        .filter_warnings(ctx.tenant_id, &patterns)
        .await;
    written(
        StatusCode::OK,
        updated.map(|v| SubscriptionResponse::from(v).with_warnings(warnings)),
    )
}

/// Delete a subscription
///
/// Soft: it receives nothing more, and stays readable in its history and
/// with `include_inactive=true`.
#[utoipa::path(
    delete,
    path = "/subscriptions/{id}",
    operation_id = "delete_subscription",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it was already deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    Ok(no_content(state.subscriptions.delete(&ctx, id).await?))
}

/// Rotate a subscription's signing secret
///
/// The new secret (given or generated) signs from now on; under Standard
/// Webhooks and `svix` the previous one keeps signing too until
/// `previous_secret_expires_at`, so receivers can switch over (under
/// `hmac-sha256-hex`/`-base64`, one signature, it stops at once and
/// `previous_secret_expires_at` is absent). The answer shows the new secret
/// in full, the only time.
#[utoipa::path(
    post,
    path = "/subscriptions/{id}/rotate-secret",
    operation_id = "rotate_subscription_secret",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    request_body(content = Option<RotateSecretRequest>,
        description = "Optional: an empty body generates the secret.",
        example = json!({"secret": "whsec_JTovS3efa/bKLU8R/B/654AvxjVeRuUz"})),
    responses(
        (status = 200, description = "The subscription with its new secret in full.",
            body = SubscriptionResponse, example = json!(ex::rotated_subscription())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `secret` breaks its rules"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `too_many_secrets`: five secrets already sign its deliveries; rotate again once an overlap ends\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn rotate_secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<RotateSecretRequest>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let rotated = state
        .subscriptions
        .rotate_secret(&ctx, id, input.into_secret()?, None)
        .await?;
    written(StatusCode::OK, rotated.map(SubscriptionResponse::from))
}

/// Disable a subscription
///
/// It is kept but receives nothing until enabled; disabling a disabled one
/// changes nothing.
#[utoipa::path(
    post,
    path = "/subscriptions/{id}/disable",
    operation_id = "disable_subscription",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    request_body(content = Option<DisableRequest>, description = "Optional.",
        example = json!({"reason": "ERP maintenance window"})),
    responses(
        (status = 200, description = "The disabled subscription.", body = SubscriptionResponse,
            example = json!(ex::disabled_subscription())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `reason` is too long or has control characters"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn disable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<DisableRequest>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let disabled = state
        .subscriptions
        .disable(&ctx, id, input.into_reason()?)
        .await?;
    written(StatusCode::OK, disabled.map(SubscriptionResponse::from))
}

/// Enable a subscription
///
/// Enabling an active one changes nothing.
#[utoipa::path(
    post,
    path = "/subscriptions/{id}/enable",
    operation_id = "enable_subscription",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    responses(
        (status = 200, description = "The active subscription.", body = SubscriptionResponse,
            example = json!(ex::subscription(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn enable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let enabled = state.subscriptions.enable(&ctx, id).await?;
    written(StatusCode::OK, enabled.map(SubscriptionResponse::from))
}

/// A subscription's history
///
/// Every event of the subscription, oldest first, sealed values masked.
#[utoipa::path(
    get,
    path = "/subscriptions/{id}/history",
    operation_id = "get_subscription_history",
    tag = "subscriptions",
    params(("id" = Uuid, Path, description = "The subscription's id."), HistoryQuery),
    responses(
        (status = 200, description = "The subscription's events, a page at a time.", body = PageResponse<HistoryEntryResponse>,
            example = json!(ex::history("Subscribed", json!({"Subscribed": {
                "subscription_id": ex::SUBSCRIPTION_ID,
                "tenant_id": ex::TENANT_ID,
                "url": ex::URL,
                "events": ["invoice.created", "payment.received"],
                "secret": "[sealed]",
                "signature_scheme": "standard-webhooks"
            }})))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `limit` or `cursor` is not valid\n- `invalid_query`: an unknown query parameter"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
    )
)]
async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let events = state
        .subscriptions
        .history(caller.tenant_id, id, query.into_request()?)
        .await?;
    Ok(Json(history(events)).into_response())
}
