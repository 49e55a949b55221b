//! `/v1/event-types` (the tenant's catalogue) and `/v1/settings`.

pub mod dto;

use super::common::{history, HistoryEntryResponse, HistoryQuery, PageResponse};
use super::openapi::examples as ex;
use super::openapi::schemas::EventNameSchema;
use super::{no_content, written, Ctx};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery};
use crate::middleware::Caller;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dto::{
    CreateEventTypeRequest, EventTypePageResponse, EventTypeResponse, GetEventTypeQuery,
    ListEventTypesQuery, SettingsRequest, SettingsResponse, UpdateEventTypeRequest,
};
use hookline_application::AppError;
use hookline_domain::EventType;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, archive))
        .routes(routes!(example))
        .routes(routes!(read_history))
        .routes(routes!(settings, change_settings))
}

fn name(raw: &str) -> ApiResult<EventType> {
    EventType::parse(raw, "name").map_err(|e| AppError::from(e).into())
}

/// List event types
///
/// The tenant's catalogue (the built-in types and its own), ordered by
/// group and then name, with each page's names by group.
#[utoipa::path(
    get,
    path = "/event-types",
    operation_id = "list_event_types",
    tag = "event-types",
    params(ListEventTypesQuery),
    responses(
        (status = 200, description = "A page of the catalogue.", body = EventTypePageResponse,
            example = json!(ex::event_type_page())),
        (status = 400, description = "- `validation_error`: `limit` or `cursor` is malformed"),
    )
)]
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

/// Define an event type
///
/// Adds a type of the tenant's own (or defines an archived one again). Its
/// `example` must satisfy its `schema`.
#[utoipa::path(
    post,
    path = "/event-types",
    operation_id = "create_event_type",
    tag = "event-types",
    request_body(content = CreateEventTypeRequest, example = json!(ex::create_event_type())),
    responses(
        (status = 201, description = "Defined.", body = EventTypeResponse,
            links(
                ("GetEventType" = (operation_id = "get_event_type",
                    parameters(("name" = "$response.body#/name")))),
                ("UpdateEventType" = (operation_id = "update_event_type",
                    parameters(("name" = "$response.body#/name")))),
                ("ArchiveEventType" = (operation_id = "archive_event_type",
                    parameters(("name" = "$response.body#/name")))),
                ("GetEventTypeExample" = (operation_id = "get_event_type_example",
                    parameters(("name" = "$response.body#/name")))),
                ("GetEventTypeHistory" = (operation_id = "get_event_type_history",
                    parameters(("name" = "$response.body#/name")))),
            ),
            example = json!(ex::event_type())),
        (status = 400, description = "- `validation_error`: a field breaks its rules (each is named: `name`, `group`, `description`, `schema`, `example`), `schema` is not a usable JSON Schema, or `example` does not satisfy it (named by JSON pointer: `/example/amount`)"),
        (status = 409, description = "- `event_type_exists`: the type is already in the catalogue\n- `event_type_reserved`: the name is in the `hookline.` namespace of the operational events, which Hookline describes\n- `event_type_limit_reached`: the tenant has 1000 types of its own; archive one first\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<CreateEventTypeRequest>,
) -> ApiResult<Response> {
    let defined = state.catalogue.define(&ctx, input.into_command()?).await?;
    written(StatusCode::CREATED, defined.map(EventTypeResponse::from))
}

/// Get an event type
#[utoipa::path(
    get,
    path = "/event-types/{name}",
    operation_id = "get_event_type",
    tag = "event-types",
    params(
        ("name" = EventNameSchema, Path, description = "The event type's name."),
        GetEventTypeQuery,
    ),
    responses(
        (status = 200, description = "The event type.", body = EventTypeResponse,
            example = json!(ex::builtin_event_type())),
        (status = 400, description = "- `validation_error`: `name` is not a valid event name\n- `validation_error`: `as_of` is not an RFC 3339 time"),
        (status = 404, description = "- `not_found`: the catalogue has no such type (at `as_of`)"),
    )
)]
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

/// Update an event type
///
/// Changes the given fields, or deprecates or un-deprecates the type.
#[utoipa::path(
    patch,
    path = "/event-types/{name}",
    operation_id = "update_event_type",
    tag = "event-types",
    params(("name" = EventNameSchema, Path, description = "The event type's name.")),
    request_body(content = UpdateEventTypeRequest, example = json!(ex::update_event_type())),
    responses(
        (status = 200, description = "The updated event type.", body = EventTypeResponse,
            example = json!(ex::updated_event_type())),
        (status = 400, description = "- `validation_error`: `name` is not a valid event name\n- `validation_error`: a field breaks its rules, or the example does not satisfy the schema\n- `bad_request`: the body changes nothing"),
        (status = 404, description = "- `not_found`: the catalogue has no such type"),
        (status = 409, description = "- `event_type_archived`: it is archived; define it again with POST /v1/event-types\n- `event_type_reserved`: an operational event type (`hookline.…`), which Hookline describes\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
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

/// Archive an event type
///
/// It leaves the list (unless asked for) and, in strict mode, can no longer
/// be published; its history stays.
#[utoipa::path(
    delete,
    path = "/event-types/{name}",
    operation_id = "archive_event_type",
    tag = "event-types",
    params(("name" = EventNameSchema, Path, description = "The event type's name.")),
    responses(
        (status = 204, description = "Archived."),
        (status = 400, description = "- `validation_error`: `name` is not a valid event name"),
        (status = 404, description = "- `not_found`: the catalogue has no such type"),
        (status = 409, description = "- `event_type_archived`: it is already archived\n- `event_type_reserved`: an operational event type (`hookline.…`), which Hookline describes\n- `concurrent_modification`: another request changed it at the same time; retry"),
    )
)]
async fn archive(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(raw): Path<String>,
) -> ApiResult<Response> {
    let name = name(&raw)?;
    let archived = state.catalogue.archive(&ctx, &name).await?;
    Ok(no_content(archived.map(|_| ())))
}

/// An event type's example delivery
///
/// The body a receiver would get for the type's example: the real envelope
/// with a fresh event id and the current time.
#[utoipa::path(
    get,
    path = "/event-types/{name}/example",
    operation_id = "get_event_type_example",
    tag = "event-types",
    params(("name" = EventNameSchema, Path, description = "The event type's name.")),
    responses(
        (status = 200, description = "The envelope `{id, timestamp, event, data, tenant_id}`.",
            body = Object, example = json!({
                "id": ex::EVENT_ID,
                "timestamp": "2026-02-14T10:30:00.123Z",
                "event": "invoice.created",
                "data": ex::invoice_created(),
                "tenant_id": ex::TENANT_ID
            })),
        (status = 400, description = "- `validation_error`: `name` is not a valid event name"),
        (status = 404, description = "- `not_found`: the catalogue has no such type\n- `no_example`: the type has no example; add one with PATCH"),
    )
)]
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

/// An event type's history
#[utoipa::path(
    get,
    path = "/event-types/{name}/history",
    operation_id = "get_event_type_history",
    tag = "event-types",
    params(("name" = EventNameSchema, Path, description = "The event type's name."), HistoryQuery),
    responses(
        (status = 200, description = "The type's events, oldest first, a page at a time.", body = PageResponse<HistoryEntryResponse>,
            example = json!(ex::history("EventTypeDefined", json!({"EventTypeDefined": {
                "tenant_id": ex::TENANT_ID,
                "name": "credit_note.issued",
                "group": "Credit notes"
            }})))),
        (status = 400, description = "- `validation_error`: `name` is not a valid event name, or `limit` or `cursor` is not valid\n- `invalid_query`: an unknown query parameter"),
        (status = 404, description = "- `not_found`: the catalogue has no such type"),
    )
)]
async fn read_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(raw): Path<String>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Response> {
    let name = name(&raw)?;
    let events = state
        .catalogue
        .history(caller.tenant_id, &name, query.into_request()?)
        .await?;
    Ok(Json(history(events)).into_response())
}

/// Get the tenant's settings
#[utoipa::path(
    get,
    path = "/settings",
    operation_id = "get_settings",
    tag = "settings",
    responses(
        (status = 200, description = "The settings.", body = SettingsResponse,
            example = json!(ex::settings(false))),
    )
)]
async fn settings(State(state): State<AppState>, Caller(caller): Caller) -> ApiResult<Response> {
    let settings = state.tenants.settings(caller.tenant_id).await?;
    Ok(Json(SettingsResponse::from(settings)).into_response())
}

/// Change the tenant's settings
#[utoipa::path(
    patch,
    path = "/settings",
    operation_id = "update_settings",
    tag = "settings",
    request_body(content = SettingsRequest, example = json!(ex::settings(true))),
    responses(
        (status = 200, description = "The settings now.", body = SettingsResponse,
            example = json!(ex::settings(true))),
        (status = 400, description = "- `bad_request`: the body changes nothing"),
        (status = 409, description = "- `concurrent_modification`: another request changed them at the same time; retry"),
    )
)]
async fn change_settings(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<SettingsRequest>,
) -> ApiResult<Response> {
    let changed = state.tenants.change_settings(&ctx, input.into()).await?;
    written(StatusCode::OK, changed.map(SettingsResponse::from))
}
