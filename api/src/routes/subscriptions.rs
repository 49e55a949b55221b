//! `/v1/subscriptions`: create, list, read, update, rotate, disable/enable,
//! delete, history.

use super::{written, Ctx};
use crate::error::ApiResult;
use crate::extract::{parse_id, ApiJson, ApiQuery, OptionalJson};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookline_application::subscriptions::{
    CreateSubscriptionInput, DisableInput, GetSubscriptionParams, ListSubscriptionsParams,
    RotateSecretInput, UpdateSubscriptionInput,
};
use hookline_domain::SubscriptionId;
use serde_json::json;

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
        .route("/subscriptions/{id}/history", get(history))
}

fn sub_id(raw: &str) -> ApiResult<SubscriptionId> {
    parse_id(raw, SubscriptionId::parse)
}

async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateSubscriptionInput>,
) -> ApiResult<Response> {
    written(
        StatusCode::CREATED,
        state.subscriptions.create(&ctx, input).await?,
    )
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(params): ApiQuery<ListSubscriptionsParams>,
) -> ApiResult<Response> {
    let page = state.subscriptions.list(caller.tenant_id, params).await?;
    Ok(Json(page).into_response())
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<GetSubscriptionParams>,
) -> ApiResult<Response> {
    let view = state
        .subscriptions
        .get(caller.tenant_id, sub_id(&id)?, &params)
        .await?;
    Ok(Json(view).into_response())
}

async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateSubscriptionInput>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    written(
        StatusCode::OK,
        state.subscriptions.update(&ctx, id, input).await?,
    )
}

async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    let result = state.subscriptions.delete(&ctx, id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if !result.consistent {
        response.headers_mut().insert(
            super::CONSISTENCY_HEADER,
            axum::http::HeaderValue::from_static("pending"),
        );
    }
    Ok(response)
}

async fn rotate_secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<RotateSecretInput>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    written(
        StatusCode::OK,
        state.subscriptions.rotate_secret(&ctx, id, input).await?,
    )
}

async fn disable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<DisableInput>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    written(
        StatusCode::OK,
        state.subscriptions.disable(&ctx, id, input).await?,
    )
}

async fn enable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = sub_id(&id)?;
    written(StatusCode::OK, state.subscriptions.enable(&ctx, id).await?)
}

async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let events = state
        .subscriptions
        .history(caller.tenant_id, sub_id(&id)?)
        .await?;
    Ok(Json(json!({ "data": events })).into_response())
}
