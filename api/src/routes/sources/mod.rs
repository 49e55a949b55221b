//! `/v1/sources`: create, list, read, update, rotate the secret, delete,
//! history, and the requests a source refused.

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
    CreateSourceRequest, GetSourceQuery, ListSourcesQuery, RejectionResponse, RejectionsQuery,
    RotateSourceSecretRequest, SourceResponse, UpdateSourceRequest,
};
use hookline_application::pagination::DEFAULT_LIMIT;
use hookline_domain::SourceId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sources", post(create).get(list))
        .route("/sources/{id}", get(read).patch(update).delete(delete))
        .route("/sources/{id}/rotate-secret", post(rotate_secret))
        .route("/sources/{id}/history", get(read_history))
        .route("/sources/{id}/rejections", get(rejections))
}

fn source_id(raw: &str) -> ApiResult<SourceId> {
    parse_id(raw, SourceId::parse)
}

async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateSourceRequest>,
) -> ApiResult<Response> {
    let created = state.sources.create(&ctx, input.into_new()?).await?;
    written(StatusCode::CREATED, created.map(SourceResponse::from))
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListSourcesQuery>,
) -> ApiResult<Response> {
    let page = state
        .sources
        .list(caller.tenant_id, query.into_query()?)
        .await?;
    Ok(Json(PageResponse::from_page(page, SourceResponse::from)).into_response())
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetSourceQuery>,
) -> ApiResult<Response> {
    let view = state
        .sources
        .get(
            caller.tenant_id,
            source_id(&id)?,
            query.include_deleted == Some(true),
        )
        .await?;
    Ok(Json(SourceResponse::from(view)).into_response())
}

async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<UpdateSourceRequest>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    let updated = state
        .sources
        .update(&ctx, id, input.into_changes(id)?)
        .await?;
    written(StatusCode::OK, updated.map(SourceResponse::from))
}

async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    Ok(no_content(state.sources.delete(&ctx, id).await?))
}

async fn rotate_secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    OptionalJson(input): OptionalJson<RotateSourceSecretRequest>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    let rotated = state
        .sources
        .rotate_secret(&ctx, id, input.into_secret()?)
        .await?;
    written(StatusCode::OK, rotated.map(SourceResponse::from))
}

async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let events = state
        .sources
        .history(caller.tenant_id, source_id(&id)?)
        .await?;
    Ok(Json(history(events)).into_response())
}

async fn rejections(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RejectionsQuery>,
) -> ApiResult<Response> {
    let page = state
        .sources
        .rejections(
            caller.tenant_id,
            source_id(&id)?,
            query.limit.unwrap_or(DEFAULT_LIMIT),
            query.cursor.as_deref(),
        )
        .await?;
    Ok(Json(PageResponse::from_page(page, RejectionResponse::from)).into_response())
}
