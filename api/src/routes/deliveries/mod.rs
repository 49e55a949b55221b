//! Publishing (`/v1/events`, the seed form's `/v1/deliveries`), delivery
//! reads, manual retry, recovery, test sends and the attempts trace.

pub mod dto;

use super::common::{history, DataResponse, PageResponse};
use super::subscriptions::sub_id;
use super::{written, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_id, ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dto::{
    AttemptResponse, AttemptsQuery, DeliveryDetailResponse, DeliveryResponse, GetDeliveryQuery,
    ListDeliveriesQuery, PublishRequest, PublishedResponse, RecoverRequest, RecoveredResponse,
    SeedPublishRequest, TestSendResponse,
};
use hookline_application::commands::Written;
use hookline_application::deliveries::Published;
use hookline_domain::DeliveryId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(publish))
        .route("/deliveries", post(publish_seed).get(list))
        .route("/deliveries/{id}", get(read))
        .route("/deliveries/{id}/attempts", get(attempts))
        .route("/deliveries/{id}/history", get(read_history))
        .route("/deliveries/{id}/retry", post(retry))
        .route("/subscriptions/{id}/recover", post(recover))
        .route("/subscriptions/{id}/test", post(test_send))
        .route("/attempts", get(attempts_by_request))
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

async fn publish(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PublishRequest>,
) -> ApiResult<Response> {
    let event = input.into_command(idempotency_header(&headers)?)?;
    accepted(state.publish.publish(&ctx, event).await?, false)
}

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

async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let events = state
        .deliveries
        .history(caller.tenant_id, delivery_id(&id)?)
        .await?;
    Ok(Json(history(events)).into_response())
}

async fn retry(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = delivery_id(&id)?;
    let retried = state.deliveries.retry(&ctx, id).await?;
    written(StatusCode::ACCEPTED, retried.map(DeliveryResponse::from))
}

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
