//! `/v1/sources`: create, list, read, update, rotate the secret, delete,
//! history, and the requests a source refused.

pub mod dto;

use super::common::{history, HistoryEntryResponse, PageResponse};
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
    CreateSourceRequest, GetSourceQuery, ListSourcesQuery, RejectionResponse, RejectionsQuery,
    RotateSourceSecretRequest, SourceHistoryQuery, SourceResponse, UpdateSourceRequest,
};
use hookline_application::history::HistoryRequest;
use hookline_application::pagination::DEFAULT_LIMIT;
use hookline_domain::SourceId;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(read, update, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(read_history))
        .routes(routes!(rejections))
}

fn source_id(raw: &str) -> ApiResult<SourceId> {
    parse_id(raw, SourceId::parse)
}

/// Create a source
///
/// A provider that delivers webhooks to Hookline: the answer carries the
/// `ingest_url` to give the provider and the secret in full (the only
/// time it is shown).
#[utoipa::path(
    post,
    path = "/sources",
    operation_id = "create_source",
    tag = "sources",
    request_body(content = CreateSourceRequest, example = json!(ex::create_source())),
    responses(
        (status = 201, description = "Created.", body = SourceResponse,
            links(
                ("GetSource" = (operation_id = "get_source", parameters(("id" = "$response.body#/id")))),
                ("UpdateSource" = (operation_id = "update_source", parameters(("id" = "$response.body#/id")))),
                ("DeleteSource" = (operation_id = "delete_source", parameters(("id" = "$response.body#/id")))),
                ("RotateSourceSecret" = (operation_id = "rotate_source_secret", parameters(("id" = "$response.body#/id")))),
                ("GetSourceHistory" = (operation_id = "get_source_history", parameters(("id" = "$response.body#/id")))),
                ("ListSourceRejections" = (operation_id = "list_source_rejections", parameters(("id" = "$response.body#/id")))),
                ("ReceiveInbound" = (operation_id = "receive_inbound", parameters(("source_id" = "$response.body#/id")))),
            ),
            example = json!(ex::source(true))),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each is named: `name`, `kind`, `secret`, `header_name`, `event_type`, `data`, `idempotency.header`, `idempotency.pointer`, `idempotency.window_seconds`), a required field is missing, `header_name` is given for a kind that does not use it, or `idempotency` names both a header and a pointer"),
        (status = 409, description = "- `source_limit_reached`: the tenant has the most sources allowed\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateSourceRequest>,
) -> ApiResult<Response> {
    let created = state.sources.create(&ctx, input.into_new()?).await?;
    written(StatusCode::CREATED, created.map(SourceResponse::from))
}

/// List sources
///
/// Newest first; active ones unless `include_deleted`.
#[utoipa::path(
    get,
    path = "/sources",
    operation_id = "list_sources",
    tag = "sources",
    params(ListSourcesQuery),
    responses(
        (status = 200, description = "A page of sources (secrets masked).",
            body = PageResponse<SourceResponse>, example = json!({"data": [ex::source(false)]})),
        (status = 400, description = "- `validation_error`: `limit` or `cursor` is malformed"),
    )
)]
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

/// Get a source
#[utoipa::path(
    get,
    path = "/sources/{id}",
    operation_id = "get_source",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id."), GetSourceQuery),
    responses(
        (status = 200, description = "The source (secret masked).", body = SourceResponse,
            example = json!(ex::source(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such source for this tenant (or deleted, without `include_deleted`)"),
    )
)]
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

/// Update a source
///
/// Changes the given fields; the secret changes only through
/// rotate-secret and the kind never.
#[utoipa::path(
    patch,
    path = "/sources/{id}",
    operation_id = "update_source",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id.")),
    request_body(content = UpdateSourceRequest, example = json!(ex::update_source())),
    responses(
        (status = 200, description = "The updated source (secret masked).", body = SourceResponse,
            example = json!(ex::source(false))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: a field breaks its rules (each is named), or `secret` or `kind` is given\n- `bad_request`: the body changes nothing"),
        (status = 404, description = "- `not_found`: no such source for this tenant"),
        (status = 409, description = "- `source_deleted`: it has been deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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

/// Delete a source
///
/// Soft: its ingest URL answers 410 from now on; the source stays in the
/// log and readable with `include_deleted=true`.
#[utoipa::path(
    delete,
    path = "/sources/{id}",
    operation_id = "delete_source",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID"),
        (status = 404, description = "- `not_found`: no such source for this tenant"),
        (status = 409, description = "- `source_deleted`: it was already deleted\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    Ok(no_content(state.sources.delete(&ctx, id).await?))
}

/// Rotate a source's secret
///
/// The new secret (given, or generated) is answered in full; the previous
/// one keeps being accepted during the overlap (HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS),
/// as for subscriptions.
#[utoipa::path(
    post,
    path = "/sources/{id}/rotate-secret",
    operation_id = "rotate_source_secret",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id.")),
    request_body(content = Option<RotateSourceSecretRequest>, example = json!({})),
    responses(
        (status = 200, description = "The source with its new secret in full.", body = SourceResponse,
            example = json!(ex::source(true))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `secret` breaks its rules"),
        (status = 404, description = "- `not_found`: no such source for this tenant"),
        (status = 409, description = "- `source_deleted`: it has been deleted\n- `too_many_secrets`: five secrets are already valid; wait for an overlap to end\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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

/// A source's history
///
/// Every event of the source, oldest first, secrets sealed.
#[utoipa::path(
    get,
    path = "/sources/{id}/history",
    operation_id = "get_source_history",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id."), SourceHistoryQuery),
    responses(
        (status = 200, description = "The source's events, a page at a time.", body = PageResponse<HistoryEntryResponse>,
            example = json!(ex::history("SourceCreated", json!({"SourceCreated": {
                "source_id": ex::SOURCE_ID,
                "tenant_id": ex::TENANT_ID,
                "name": "InFlow sales orders",
                "kind": "inflow",
                "secret": "[sealed]"
            }})))),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `limit` or `cursor` is not valid\n- `invalid_query`: an unknown query parameter"),
        (status = 404, description = "- `not_found`: no such source for this tenant (or deleted, without `include_deleted`)"),
    )
)]
async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SourceHistoryQuery>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    let request = HistoryRequest::parse(query.limit, query.cursor.as_deref())?;
    // A deleted source is 404 unless asked for, as `GET /v1/sources/{id}`.
    state
        .sources
        .get(caller.tenant_id, id, query.include_deleted == Some(true))
        .await?;
    let events = state.sources.history(caller.tenant_id, id, request).await?;
    Ok(Json(history(events)).into_response())
}

/// Requests a source refused
///
/// Newest first: why, from where and when, with the body's SHA-256 and
/// size (never the body). The newest 1000 per source are kept.
#[utoipa::path(
    get,
    path = "/sources/{id}/rejections",
    operation_id = "list_source_rejections",
    tag = "sources",
    params(("id" = Uuid, Path, description = "The source's id."), RejectionsQuery),
    responses(
        (status = 200, description = "A page of refusals.", body = PageResponse<RejectionResponse>,
            example = json!(ex::rejection())),
        (status = 400, description = "- `invalid_id`: `id` is not a UUID\n- `validation_error`: `limit` or `cursor` is malformed"),
        (status = 404, description = "- `not_found`: no such source for this tenant (or deleted, without `include_deleted`)"),
    )
)]
async fn rejections(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RejectionsQuery>,
) -> ApiResult<Response> {
    let id = source_id(&id)?;
    state
        .sources
        .get(caller.tenant_id, id, query.include_deleted == Some(true))
        .await?;
    let page = state
        .sources
        .rejections(
            caller.tenant_id,
            id,
            query.limit.unwrap_or(DEFAULT_LIMIT),
            query.cursor.as_deref(),
        )
        .await?;
    Ok(Json(PageResponse::from_page(page, RejectionResponse::from)).into_response())
}
