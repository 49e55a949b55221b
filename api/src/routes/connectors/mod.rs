//! `/v1/connectors/siigo/subscriptions`: provision webhook subscriptions
//! at Siigo (optionally through a new source), list and remove them.

pub mod dto;

use super::common::PageResponse;
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{parse_id, ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dto::{ListUpstreamQuery, ProvisionRequest, UpstreamResponse};
use hookline_application::pagination::PageRequest;
use hookline_domain::UpstreamId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connectors/siigo/subscriptions", post(provision).get(list))
        .route(
            "/connectors/siigo/subscriptions/{id}",
            get(read).delete(remove),
        )
}

fn upstream_id(raw: &str) -> ApiResult<UpstreamId> {
    parse_id(raw, UpstreamId::parse)
}

async fn provision(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<ProvisionRequest>,
) -> ApiResult<Response> {
    let input = input.into_provision(&state.allow_list)?;
    let created = state.siigo.provision(&ctx, input).await?;
    written(StatusCode::CREATED, created.map(UpstreamResponse::from))
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    ApiQuery(query): ApiQuery<ListUpstreamQuery>,
) -> ApiResult<Response> {
    let page = state
        .siigo
        .list(
            caller.tenant_id,
            query.include_removed == Some(true),
            PageRequest::parse(query.limit, query.cursor.as_deref())?,
        )
        .await?;
    Ok(Json(PageResponse::from_page(page, UpstreamResponse::from)).into_response())
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let view = state.siigo.get(caller.tenant_id, upstream_id(&id)?).await?;
    Ok(Json(UpstreamResponse::from(view)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = upstream_id(&id)?;
    Ok(no_content(state.siigo.remove(&ctx, id).await?))
}
