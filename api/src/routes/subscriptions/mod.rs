//! `/v1/subscriptions`: create, list, read, update, rotate, disable/enable,
//! delete, history.

pub mod dto;

use super::common::{history, PageResponse};
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{parse_id, ApiJson, ApiQuery, OptionalJson};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dto::{
    CreateSubscriptionRequest, DisableRequest, GetSubscriptionQuery, ListSubscriptionsQuery,
    RotateSecretRequest, SubscriptionResponse, UpdateSubscriptionRequest,
};
use hookline_domain::SubscriptionId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/subscriptions", post(create).get(list))
        .route(
            "/subscriptions/{id}",
            get(read).patch(update).delete(delete),
        )
        .route("/subscriptions/{id}/rotate-secret", post(rotate_secret))
        .route("/subscriptions/{id}/disable", post(disable))
        .route("/subscriptions/{id}/enable", post(enable))
        .route("/subscriptions/{id}/history", get(read_history))
}

pub(crate) fn sub_id(raw: &str) -> ApiResult<SubscriptionId> {
    parse_id(raw, SubscriptionId::parse)
}

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

async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    Ok(no_content(state.subscriptions.delete(&ctx, id).await?))
}

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

async fn enable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let enabled = state.subscriptions.enable(&ctx, id).await?;
    written(StatusCode::OK, enabled.map(SubscriptionResponse::from))
}

async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let events = state
        .subscriptions
        .history(caller.tenant_id, sub_id(&id)?)
        .await?;
    Ok(Json(history(events)).into_response())
}
