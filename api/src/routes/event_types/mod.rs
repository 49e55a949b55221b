//! `/v1/event-types` (the tenant's catalogue) and `/v1/settings`.

pub mod dto;

use super::common::history;
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dto::{
    CreateEventTypeRequest, EventTypePageResponse, EventTypeResponse, GetEventTypeQuery,
    ListEventTypesQuery, SettingsRequest, SettingsResponse, UpdateEventTypeRequest,
};
use hookline_application::AppError;
use hookline_domain::EventType;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/event-types", get(list).post(create))
        .route(
            "/event-types/{name}",
            get(read).patch(update).delete(archive),
        )
        .route("/event-types/{name}/example", get(example))
        .route("/event-types/{name}/history", get(read_history))
        .route("/settings", get(settings).patch(change_settings))
}

fn name(raw: &str) -> ApiResult<EventType> {
    EventType::parse(raw, "name").map_err(|e| AppError::from(e).into())
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListEventTypesQuery>,
) -> ApiResult<Response> {
    let page = state
        .catalogue
        .list(caller.tenant_id, query.into_query()?)
        .await?;
    Ok(Json(EventTypePageResponse::from(page)).into_response())
}

async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateEventTypeRequest>,
) -> ApiResult<Response> {
    let defined = state.catalogue.define(&ctx, input.into_command()?).await?;
    written(StatusCode::CREATED, defined.map(EventTypeResponse::from))
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<GetEventTypeQuery>,
) -> ApiResult<Response> {
    let view = state
        .catalogue
        .get(caller.tenant_id, &name(&raw)?, query.as_of()?)
        .await?;
    Ok(Json(EventTypeResponse::from(view)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<String>,
    ApiJson(input): ApiJson<UpdateEventTypeRequest>,
) -> ApiResult<Response> {
    let name = name(&raw)?;
    let updated = state.catalogue.update(&ctx, &name, input.into()).await?;
    written(StatusCode::OK, updated.map(EventTypeResponse::from))
}

async fn archive(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let name = name(&raw)?;
    let archived = state.catalogue.archive(&ctx, &name).await?;
    Ok(no_content(archived.map(|_| ())))
}

async fn example(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let body = state
        .catalogue
        .example(caller.tenant_id, &name(&raw)?)
        .await?;
    Ok(Json(body).into_response())
}

async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let events = state
        .catalogue
        .history(caller.tenant_id, &name(&raw)?)
        .await?;
    Ok(Json(history(events)).into_response())
}

async fn settings(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Response> {
    let settings = state.tenants.settings(caller.tenant_id).await?;
    Ok(Json(SettingsResponse::from(settings)).into_response())
}

async fn change_settings(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<SettingsRequest>,
) -> ApiResult<Response> {
    let changed = state.tenants.change_settings(&ctx, input.into()).await?;
    written(StatusCode::OK, changed.map(SettingsResponse::from))
}
