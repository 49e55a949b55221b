//! Publishing (`/v1/events`, the seeds' `/v1/deliveries`), delivery reads,
//! manual retry, recovery, test sends and the attempts trace.

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
use hookline_application::commands::Written;
use hookline_application::deliveries::{
    GetDeliveryParams, ListDeliveriesParams, PublishInput, Published, RecoverInput,
    SeedPublishInput,
};
use hookline_domain::{DeliveryId, SubscriptionId};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", post(publish))
        .route("/deliveries", post(publish_seed).get(list))
        .route("/deliveries/{id}", get(read))
        .route("/deliveries/{id}/attempts", get(attempts))
        .route("/deliveries/{id}/history", get(history))
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
    let value = if with_count {
        let count = published.value.deliveries.len();
        published
            .map(|p| json!({"event_id": p.event_id, "deliveries": p.deliveries, "count": count}))
    } else {
        published.map(|p| json!({"event_id": p.event_id, "deliveries": p.deliveries}))
    };
    let mut response = written(StatusCode::ACCEPTED, value)?;
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn publish(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(input): ApiJson<PublishInput>,
) -> ApiResult<Response> {
    let key = idempotency_header(&headers)?;
    accepted(state.publish.publish(&ctx, input, key).await?, false)
}

async fn publish_seed(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(input): ApiJson<SeedPublishInput>,
) -> ApiResult<Response> {
    let key = idempotency_header(&headers)?;
    accepted(state.publish.publish(&ctx, input.into(), key).await?, true)
}

fn delivery_id(raw: &str) -> ApiResult<DeliveryId> {
    parse_id(raw, DeliveryId::parse)
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ListDeliveriesParams>,
) -> ApiResult<Response> {
    Ok(Json(state.deliveries.list(caller.tenant_id, params).await?).into_response())
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<GetDeliveryParams>,
) -> ApiResult<Response> {
    let detail = state
        .deliveries
        .get(caller.tenant_id, delivery_id(&id)?, &params)
        .await?;
    Ok(Json(detail).into_response())
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
    Ok(Json(json!({ "data": data })).into_response())
}

async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let data = state
        .deliveries
        .history(caller.tenant_id, delivery_id(&id)?)
        .await?;
    Ok(Json(json!({ "data": data })).into_response())
}

async fn retry(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = delivery_id(&id)?;
    written(
        StatusCode::ACCEPTED,
        state.deliveries.retry(&ctx, id).await?,
    )
}

async fn recover(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RecoverInput>,
) -> ApiResult<Response> {
    let id = parse_id(&id, SubscriptionId::parse)?;
    written(
        StatusCode::ACCEPTED,
        state.deliveries.recover(&ctx, id, input).await?,
    )
}

async fn test_send(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = parse_id(&id, SubscriptionId::parse)?;
    let published = state.publish.test_send(&ctx, id).await?;
    let value = published.map(|p| {
        json!({
            "event_id": p.event_id,
            "delivery_id": p.deliveries.first().map(|d| d.id),
        })
    });
    written(StatusCode::ACCEPTED, value)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptsQuery {
    #[serde(default)]
    request_id: Option<String>,
}

async fn attempts_by_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> ApiResult<Response> {
    let data = state
        .deliveries
        .attempts_by_request(caller.tenant_id, q.request_id.as_deref())
        .await?;
    Ok(Json(json!({ "data": data })).into_response())
}
