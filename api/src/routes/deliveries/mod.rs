//! Publishing (`/v1/events`, the seed form's `/v1/deliveries`), delivery
//! reads, manual retry, recovery, test sends and the attempts trace.

pub mod dto;

use super::common::{history, DataResponse, HistoryEntryResponse, HistoryQuery, PageResponse};
use super::openapi::examples as ex;
use super::subscriptions::sub_id;
use super::{written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{
    AttemptResponse, AttemptsQuery, DeliveryDetailResponse, DeliveryResponse, GetDeliveryQuery,
    ListDeliveriesQuery, PublishRequest, PublishedResponse, RecoverRequest, RecoveredResponse,
    SeedPublishRequest, TestSendResponse,
};
use hookline_application::commands::Written;
use hookline_application::deliveries::Published;
use hookline_domain::DeliveryId;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish))
        .routes(routes!(publish_seed, list))
        .routes(routes!(read))
        .routes(routes!(attempts))
        .routes(routes!(read_history))
        .routes(routes!(retry))
        .routes(routes!(recover))
        .routes(routes!(test_send))
        .routes(routes!(attempts_by_request))
}

fn idempotency_header(headers: &HeaderMap) -> ApiResult<Option<String>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| {
                ApiError::bad_request(
                    "validation_error",
                    "idempotency_key: the Idempotency-Key header must be visible ASCII",
                )
            })
        })
        .transpose()
}

fn accepted(published: Written<Published>, with_count: bool) -> ApiResult<Response> {
    let replayed = published.value.replayed;
    let deprecated = published.value.deprecated_since;
    let mut response = written(
        StatusCode::ACCEPTED,
        published.map(|p| PublishedResponse::new(p, with_count)),
    )?;
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    // RFC 9745: the event type is deprecated in the catalogue, since then.
    if let Some(since) = deprecated {
        if let Ok(value) = HeaderValue::from_str(&format!("@{}", since.timestamp())) {
            response.headers_mut().insert("deprecation", value);
        }
    }
    Ok(response)
}

/// Publish an event
///
/// Sends the event to every active subscription whose filter matches it:
/// one delivery each, enqueued in one transaction. The answer comes at
/// commit, before any attempt.
#[utoipa::path(
    post,
    path = "/events",
    operation_id = "publish_event",
    tag = "publishing",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
            description = "Makes a retry safe: a repeat with the same key and the same request within the key's lifetime (HOOKLINE_IDEMPOTENCY_TTL) enqueues nothing and gets the first answer again (with `Idempotent-Replayed: true`). 1–255 visible ASCII characters; may be given as `idempotency_key` in the body instead (then both must be equal)."),
    ),
    request_body(content = PublishRequest, example = json!(ex::publish())),
    responses(
        (status = 202, description = "Enqueued: one delivery per matching subscription.",
            body = PublishedResponse, headers(
                ("Idempotent-Replayed" = String, description = "`true` when this answers a repeat of an earlier request with the same idempotency key: nothing new was enqueued, and the body is the first answer's."),
                ("Deprecation" = String, description = "RFC 9745: the event type is deprecated in the catalogue, since this Unix time (`@1771065000`)."),
            ),
            links(
                ("GetDelivery" = (operation_id = "get_delivery",
                    parameters(("id" = "$response.body#/deliveries/0/id")))),
                ("ListDeliveryAttempts" = (operation_id = "list_delivery_attempts",
                    parameters(("id" = "$response.body#/deliveries/0/id")))),
            ),
            example = json!(ex::published(false))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each broken field is named: `event_type`, `data`, `resource_type`, `resource_id`, `idempotency_key`), `data` fails the event type's JSON Schema (named by JSON pointer: `/data/amount`), or, with `strict_event_types` on, the type is not in the catalogue or is archived; also an `Idempotency-Key` header that is not visible ASCII or differs from `idempotency_key`"),
        (status = 404, description = "- `no_subscriptions`: no subscription of this tenant (active or disabled) listens to this event; nothing was enqueued"),
        (status = 409, description = "- `idempotency_key_reused`: the key was used for a different request (event type, data or resource) within its lifetime"),
    )
)]
async fn publish(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PublishRequest>,
) -> ApiResult<Response> {
    let event = input.into_command(idempotency_header(&headers)?)?;
    accepted(state.publish.publish(&ctx, event).await?, false)
}

/// Publish an event (seed form)
///
/// The form the GestiqCloud webhooks module Hookline grew from published
/// with: `{"event", "payload"}`, answered with a `count`. It behaves as
/// `POST /v1/events`, and its errors name its own fields.
#[utoipa::path(
    post,
    path = "/deliveries",
    operation_id = "publish_event_seed_form",
    tag = "publishing",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
            description = "Makes a retry safe: a repeat with the same key and the same request within the key's lifetime (HOOKLINE_IDEMPOTENCY_TTL) enqueues nothing and gets the first answer again (with `Idempotent-Replayed: true`). 1–255 visible ASCII characters; may be given as `idempotency_key` in the body instead (then both must be equal)."),
    ),
    request_body(content = SeedPublishRequest, example = json!(ex::publish_seed())),
    responses(
        (status = 202, description = "Enqueued: one delivery per matching subscription.",
            body = PublishedResponse, headers(
                ("Idempotent-Replayed" = String, description = "`true` when this answers a repeat of an earlier request with the same idempotency key: nothing new was enqueued, and the body is the first answer's."),
                ("Deprecation" = String, description = "RFC 9745: the event type is deprecated in the catalogue, since this Unix time (`@1771065000`)."),
            ),
            links(
                ("GetDelivery" = (operation_id = "get_delivery",
                    parameters(("id" = "$response.body#/deliveries/0/id")))),
            ),
            example = json!(ex::published(true))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each broken field is named: `event`, `payload`, `resource_type`, `resource_id`, `idempotency_key`), `payload` fails the event type's JSON Schema (named by JSON pointer: `/data/amount`), or, with `strict_event_types` on, the type is not in the catalogue or is archived; also an `Idempotency-Key` header that is not visible ASCII or differs from `idempotency_key`"),
        (status = 404, description = "- `no_subscriptions`: no subscription of this tenant (active or disabled) listens to this event; nothing was enqueued"),
        (status = 409, description = "- `idempotency_key_reused`: the key was used for a different request (event type, data or resource) within its lifetime"),
    )
)]
async fn publish_seed(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(input): ApiJson<SeedPublishRequest>,
) -> ApiResult<Response> {
    let event = input.into_command(idempotency_header(&headers)?)?;
    accepted(state.publish.publish(&ctx, event).await?, true)
}

fn delivery_id(raw: &str) -> ApiResult<DeliveryId> {
    parse_id(raw, DeliveryId::parse)
}

/// List deliveries
///
/// Newest first, filtered by event, status, subscription, request and time.
#[utoipa::path(
    get,
    path = "/deliveries",
    operation_id = "list_deliveries",
    tag = "deliveries",
    params(ListDeliveriesQuery),
    responses(
        (status = 200, description = "A page of deliveries.", body = PageResponse<DeliveryResponse>,
            example = json!(ex::delivery_page())),
        (status = 400, description = "- `validation_error`: a parameter is malformed (`event`, `status`, `subscription_id`, `request_id`, `since`, `until`, `limit`, `cursor`)"),
    )
)]
async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListDeliveriesQuery>,
) -> ApiResult<Response> {
    let page = state
        .deliveries
        .list(caller.tenant_id, query.into_query()?)
        .await?;
    Ok(Json(PageResponse::from_page(page, DeliveryResponse::from)).into_response())
}

/// Get a delivery
///
/// The delivery with every attempt and the exact body it sends, folded from
/// the log (always current).
#[utoipa::path(
    get,
    path = "/deliveries/{id}",
    operation_id = "get_delivery",
    tag = "deliveries",
    params(
        ("id" = Uuid, Path, description = "The delivery's id."),
        GetDeliveryQuery,
    ),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryDetailResponse,
            example = json!(ex::delivery_detail())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `as_of` is not an RFC 3339 time"),
        (status = 404, description = "- `not_found`: no such delivery for this tenant (or not yet enqueued at `as_of`)"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetDeliveryQuery>,
) -> ApiResult<Response> {
    let as_of = super::common::time("as_of", query.as_of.as_deref())?;
    let detail = state
        .deliveries
        .get(caller.tenant_id, delivery_id(&id)?, as_of)
        .await?;
    Ok(Json(DeliveryDetailResponse::from(detail)).into_response())
}

/// List a delivery's attempts
#[utoipa::path(
    get,
    path = "/deliveries/{id}/attempts",
    operation_id = "list_delivery_attempts",
    tag = "deliveries",
    params(("id" = Uuid, Path, description = "The delivery's id.")),
    responses(
        (status = 200, description = "Every attempt, in order.", body = DataResponse<AttemptResponse>,
            example = json!(ex::attempt_list())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such delivery for this tenant"),
    )
)]
async fn attempts(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let data = state
        .deliveries
        .attempts(caller.tenant_id, delivery_id(&id)?)
        .await?;
    Ok(Json(DataResponse {
        data: data.into_iter().map(AttemptResponse::from).collect(),
    })
    .into_response())
}

/// A delivery's history
///
/// Every event of the delivery, oldest first.
#[utoipa::path(
    get,
    path = "/deliveries/{id}/history",
    operation_id = "get_delivery_history",
    tag = "deliveries",
    params(("id" = Uuid, Path, description = "The delivery's id."), HistoryQuery),
    responses(
        (status = 200, description = "The delivery's events, a page at a time.", body = PageResponse<HistoryEntryResponse>,
            example = json!(ex::history("DeliveryEnqueued", json!({"DeliveryEnqueued": {
                "tenant_id": ex::TENANT_ID,
                "subscription_id": ex::SUBSCRIPTION_ID,
                "event_id": ex::EVENT_ID,
                "event_type": "invoice.created",
                "url": ex::URL
            }})))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `limit` or `cursor` is not valid\n- `invalid_query`: an unknown query parameter"),
        (status = 404, description = "- `not_found`: no such delivery for this tenant"),
    )
)]
async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let id = delivery_id(&id)?;
    let events = state
        .deliveries
        .history(caller.tenant_id, id, query.into_request()?)
        .await?;
    Ok(Json(history(events)).into_response())
}

/// Retry a delivery now
///
/// Queues another attempt at once for a pending, failed or abandoned
/// delivery (the history keeps every earlier one).
#[utoipa::path(
    post,
    path = "/deliveries/{id}/retry",
    operation_id = "retry_delivery",
    tag = "deliveries",
    params(("id" = Uuid, Path, description = "The delivery's id.")),
    responses(
        (status = 202, description = "Queued.", body = DeliveryResponse,
            example = json!(ex::retried_delivery())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such delivery (or its subscription) for this tenant"),
        (status = 409, description = "- `already_delivered`: it was already delivered; nothing to retry\n- `attempt_due`: an attempt is already due or under way; retry after its outcome\n- `subscription_deleted`: its subscription has been deleted\n- `subscription_inactive`: its subscription is disabled; enable it first\n- `delivery_conflict`: the delivery cannot be retried in its state\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn retry(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = delivery_id(&id)?;
    let retried = state.deliveries.retry(&ctx, id).await?;
    written(StatusCode::ACCEPTED, retried.map(DeliveryResponse::from))
}

/// Recover a subscription's failed deliveries
///
/// Queues again every failed or abandoned delivery of the subscription
/// created since `since` (ones delivered or queued meanwhile are skipped).
#[utoipa::path(
    post,
    path = "/subscriptions/{id}/recover",
    operation_id = "recover_deliveries",
    tag = "deliveries",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    request_body(content = RecoverRequest, example = json!(ex::recover())),
    responses(
        (status = 202, description = "Queued again.", body = RecoveredResponse,
            example = json!(ex::recovered())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `since` is missing or not an RFC 3339 time"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `subscription_inactive`: it is disabled; enable it first\n- `delivery_conflict`: a delivery cannot be retried in its state\n- `concurrent_modification`: another request changed a delivery at the same time; retry"),
    )
)]
async fn recover(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RecoverRequest>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let recovered = state
        .deliveries
        .recover(&ctx, id, input.into_since()?, None)
        .await?;
    written(StatusCode::ACCEPTED, recovered.map(RecoveredResponse::from))
}

/// Send a test event
///
/// Delivers a `webhook.test` event to this subscription, whatever its
/// filter.
#[utoipa::path(
    post,
    path = "/subscriptions/{id}/test",
    operation_id = "send_test_event",
    tag = "deliveries",
    params(("id" = Uuid, Path, description = "The subscription's id.")),
    responses(
        (status = 202, description = "Enqueued.", body = TestSendResponse,
            links(
                ("GetDelivery" = (operation_id = "get_delivery",
                    parameters(("id" = "$response.body#/delivery_id")))),
            ),
            example = json!(ex::test_sent())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such subscription for this tenant"),
        (status = 409, description = "- `subscription_deleted`: it has been deleted\n- `subscription_inactive`: it is disabled; enable it first"),
    )
)]
async fn test_send(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let published = state.publish.test_send(&ctx, id).await?;
    written(
        StatusCode::ACCEPTED,
        published.map(|p| TestSendResponse {
            event_id: p.event_id,
            delivery_id: p.deliveries.first().map(|d| d.id),
        }),
    )
}

/// List the attempts of a request
///
/// The attempts a request id caused (by publishing) or triggered (by a
/// manual retry), by start time.
#[utoipa::path(
    get,
    path = "/attempts",
    operation_id = "list_attempts_by_request",
    tag = "deliveries",
    params(AttemptsQuery),
    responses(
        (status = 200, description = "A page of attempts.", body = PageResponse<AttemptResponse>,
            example = json!(ex::attempt_list())),
        (status = 400, description = "- `validation_error`: `request_id` is missing or malformed, or `limit` or `cursor` is malformed"),
    )
)]
async fn attempts_by_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<AttemptsQuery>,
) -> ApiResult<Response> {
    let (request_id, page) = query.into_query()?;
    let page = state
        .deliveries
        .attempts_by_request(caller.tenant_id, &request_id, page)
        .await?;
    Ok(Json(PageResponse::from_page(page, AttemptResponse::from)).into_response())
}
