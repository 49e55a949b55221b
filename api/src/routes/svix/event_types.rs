//! Event types (`/api/v1/event-type`): Svix's are the organisation's, so
//! they are the organisation's catalogue entries, which every tenant
//! inherits (a tenant's own definition of a name wins). `schemas` holds
//! one JSON Schema (`{"1": …}`), which Hookline enforces on publish.

use super::error::{Invalid, SvixError, SvixResult};
use super::extract::{svix_time, ListResponse, Params, SvixJson};
use super::{context, Organisation};
use crate::middleware::CurrentRequestId;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use hookline_application::catalogue::{EventTypeChanges, EventTypeView, NewEventType};
use hookline_application::{AppError, CommandContext};
use hookline_domain::catalogue::EventTypeSpec;
use hookline_domain::{EventType, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, upsert, patch, remove))
}

/// `EventTypeIn` (and `EventTypeUpdate`, `EventTypePatch`: every field
/// optional here, checked per route).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeIn {
    /// Required on create (ignored on update and patch): a Hookline event
    /// name, `resource.action` (letters, digits and `_` in dot-separated
    /// segments, at most 100 characters; narrower than Svix's).
    #[serde(default)]
    #[schema(
        min_length = 3,
        max_length = 100,
        pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// JSON Schemas by version (`{"1": {…}}`); Hookline keeps the newest
    /// and checks published payloads against it.
    /// `null` (on update and patch) removes the schema.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(schema_with = schemas_by_version)]
    pub schemas: Option<Option<Value>>,
    #[serde(default)]
    pub group_name: Option<String>,
    /// Refused when not empty: Hookline does not gate event types by
    /// feature flags.
    #[serde(default)]
    #[schema(max_length = 0)]
    pub feature_flag: Option<String>,
    /// Refused when not empty, as `featureFlag`.
    #[serde(default)]
    #[schema(max_items = 0)]
    pub feature_flags: Option<Vec<String>>,
}

impl EventTypeIn {
    /// What Hookline would not keep is refused, not dropped.
    fn refuse_unkept(&self) -> SvixResult<()> {
        let flag = |field: &str| {
            SvixError::invalid(Invalid::body(
                field,
                "Hookline does not gate event types by feature flags (every application sees every type); leave it out",
            ))
        };
        if self.feature_flag.as_deref().is_some_and(|f| !f.is_empty()) {
            return Err(flag("featureFlag"));
        }
        if self.feature_flags.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(flag("featureFlags"));
        }
        Ok(())
    }
}

/// `schemas` as the document says it: JSON Schema objects under versions
/// that are positive whole numbers.
fn schemas_by_version() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "JSON Schemas by version (`{\"1\": {…}}`); Hookline keeps the newest and checks published payloads against it.",
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[1-9][0-9]{0,17}$")),
        ))
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Object)))
        .build()
}

/// `EventTypeOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    #[schema(value_type = Option<Object>)]
    pub schemas: Option<Value>,
    pub group_name: Option<String>,
    pub feature_flag: Option<String>,
    pub feature_flags: Option<Vec<String>>,
    #[serde(serialize_with = "svix_time")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "svix_time")]
    pub updated_at: DateTime<Utc>,
}

impl EventTypeOut {
    fn of(v: EventTypeView, with_content: bool) -> Self {
        let schemas = v
            .schema
            .filter(|_| with_content)
            .map(|s| Value::Object(Map::from_iter([("1".to_string(), s)])));
        Self {
            name: v.name,
            description: v.description,
            archived: v.archived,
            deprecated: v.deprecated,
            schemas,
            group_name: Some(v.group),
            feature_flag: None,
            feature_flags: None,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// The schema of the newest version in Svix's `schemas` (`{"1": {...}}`):
/// versions are positive whole numbers, and Hookline keeps the newest
/// (read back as version 1).
fn schema(schemas: Option<Value>) -> SvixResult<Option<Value>> {
    const SHAPE: &str = "must be an object of JSON Schemas by version, such as {\"1\": {...}}";
    match schemas {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let mut newest: Option<(u64, Value)> = None;
            for (k, v) in map {
                let Some(n) = k.parse::<u64>().ok().filter(|n| *n > 0) else {
                    return Err(SvixError::invalid(Invalid::body(
                        "schemas",
                        format!("'{k}' is not a version: {SHAPE}"),
                    )));
                };
                if !v.is_object() {
                    return Err(SvixError::invalid(Invalid::body(
                        "schemas",
                        format!("version {k} is not a JSON Schema object"),
                    )));
                }
                if newest.as_ref().is_none_or(|(m, _)| n > *m) {
                    newest = Some((n, v));
                }
            }
            Ok(newest.map(|(_, v)| v))
        }
        Some(_) => Err(SvixError::invalid(Invalid::body("schemas", SHAPE))),
    }
}

/// The key of the version [`schema`] keeps (the newest), where its errors
/// are located.
fn kept_version(schemas: Option<&Value>) -> String {
    schemas
        .and_then(Value::as_object)
        .and_then(|m| m.keys().filter_map(|k| k.parse::<u64>().ok()).max())
        .unwrap_or(1)
        .to_string()
}

/// The catalogue's errors about `schema` (`schema`, `/schema/…`), located
/// in the request's `schemas.<version>`.
fn located(e: AppError, version: &str) -> AppError {
    let AppError::Validation(errors) = e else {
        return e;
    };
    AppError::Validation(
        errors
            .into_iter()
            .map(|mut err| {
                let rest = if err.field == "schema" {
                    Some(String::new())
                } else {
                    err.field
                        .strip_prefix("/schema/")
                        .or_else(|| err.field.strip_prefix("schema."))
                        .map(|r| format!(".{}", r.replace('/', ".")))
                };
                if let Some(rest) = rest {
                    err.field = format!("schemas.{version}{rest}");
                }
                err
            })
            .collect(),
    )
}

fn name(n: &str, field: &str) -> SvixResult<EventType> {
    EventType::parse(n, field).map_err(SvixError::from)
}

fn org_ctx(org: &Organisation, request_id: hookline_application::RequestId) -> CommandContext {
    context(org, request_id, TenantId::ORGANISATION)
}

/// The organisation's type of this name (archived ones too), the
/// built-ins included: every application has them, so a Svix client sees,
/// changes and archives them like its own.
async fn find(state: &AppState, name: &EventType) -> SvixResult<Option<EventTypeView>> {
    Ok(state
        .catalogue
        .scope_types(TenantId::ORGANISATION, true)
        .await?
        .into_iter()
        .find(|t| t.name == name.as_str()))
}

/// Whether the organisation has recorded a type of this name (a built-in
/// it never changed has not been).
async fn recorded(state: &AppState, name: &EventType) -> SvixResult<bool> {
    Ok(state
        .catalogue
        .defined(TenantId::ORGANISATION, true)
        .await?
        .iter()
        .any(|t| t.name == name.as_str()))
}

fn map_catalogue(e: AppError) -> SvixError {
    match e {
        AppError::Conflict {
            code: "event_type_exists",
            ..
        } => SvixError::new(
            StatusCode::CONFLICT,
            "event_type_exists",
            "An event_type with this name already exists",
        ),
        other => other.into(),
    }
}

/// Defines `name` (again, when archived) and applies `deprecated` and
/// `archived`.
async fn define(
    state: &AppState,
    ctx: &CommandContext,
    name: EventType,
    input: EventTypeIn,
) -> SvixResult<EventTypeView> {
    let group = input.group_name.clone().unwrap_or_else(|| group_of(&name));
    let version = kept_version(input.schemas.as_ref().and_then(Option::as_ref));
    let spec = EventTypeSpec {
        group,
        description: input.description.clone().unwrap_or_default(),
        schema: schema(input.schemas.flatten())?,
        example: None,
    };
    let mut view = state
        .catalogue
        .define(
            ctx,
            NewEventType {
                name: name.clone(),
                spec,
            },
        )
        .await
        .map_err(|e| map_catalogue(located(e, &version)))?
        .value;
    if input.deprecated == Some(true) {
        let changes = EventTypeChanges {
            deprecated: Some(true),
            ..EventTypeChanges::default()
        };
        view = state.catalogue.update(ctx, &name, changes).await?.value;
    }
    if input.archived == Some(true) {
        view = state.catalogue.archive(ctx, &name).await?.value;
    }
    Ok(view)
}

/// Create Event Type
///
/// An organisation-wide catalogue entry (every application inherits it).
/// Creating an archived name defines it again; creating the name of a
/// built-in type nobody changed replaces it (201).
#[utoipa::path(
    post,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.create",
    tag = "Event Type",
    request_body = EventTypeIn,
    responses(
        (status = 201, description = "Created.", body = EventTypeOut),
        (status = 409, description = "- `event_type_exists`: an event type with this name exists (a built-in one only once changed)\n- `event_type_reserved`: the name is in the `hookline.` namespace of the operational events, which Hookline describes"),
    )
)]
async fn create(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    SvixJson(input): SvixJson<EventTypeIn>,
) -> SvixResult<Response> {
    input.refuse_unkept()?;
    let name = match input.name.as_deref() {
        Some(n) => name(n, "name")?,
        None => return Err(SvixError::invalid(Invalid::body("name", "field required"))),
    };
    if input.description.is_none() {
        return Err(SvixError::invalid(Invalid::body(
            "description",
            "field required",
        )));
    }
    let ctx = org_ctx(&org, request_id);
    // A built-in nobody changed was not made by this client: creating its
    // name replaces it (description, group and schema as given; no schema
    // when none is given), as creating a new type would.
    let untouched = match find(&state, &name).await? {
        Some(found) if found.builtin && !found.archived => !recorded(&state, &name).await?,
        _ => false,
    };
    let view = if untouched {
        let current = find(&state, &name)
            .await?
            .ok_or_else(|| SvixError::not_found("Event type not found"))?;
        let replacing = EventTypeIn {
            group_name: Some(input.group_name.clone().unwrap_or_else(|| group_of(&name))),
            schemas: Some(input.schemas.clone().flatten()),
            deprecated: Some(input.deprecated.unwrap_or(false)),
            archived: Some(input.archived.unwrap_or(false)),
            ..input
        };
        change(&state, &ctx, current, name, replacing).await?
    } else {
        define(&state, &ctx, name, input).await?
    };
    Ok((StatusCode::CREATED, Json(EventTypeOut::of(view, true))).into_response())
}

/// A name's group when none is given: its first segment.
fn group_of(name: &EventType) -> String {
    name.as_str()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// List Event Types
///
/// By name.
#[utoipa::path(
    get,
    path = "/api/v1/event-type",
    operation_id = "v1.event-type.list",
    tag = "Event Type",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 250, description = "Page size (default 50)."),
        ("iterator" = Option<String>, Query, description = "`iterator` (or `prevIterator`) of a previous page."),
        ("include_archived" = Option<bool>, Query, description = "Archived ones too (default false)."),
        ("with_content" = Option<bool>, Query, description = "Include `schemas` (default false)."),
        ("order" = Option<super::openapi::Ordering>, Query, description = "By name: `ascending` (default) or `descending`."),
    ),
    responses((status = 200, description = "A page.", body = ListResponse<EventTypeOut>))
)]
async fn list(
    State(state): State<AppState>,
    params: Params,
) -> SvixResult<Json<ListResponse<EventTypeOut>>> {
    let limit = params.limit()? as usize;
    let with_content = params.flag("with_content", false)?;
    let include_archived = params.flag("include_archived", false)?;
    let mut all = state
        .catalogue
        .scope_types(TenantId::ORGANISATION, include_archived)
        .await?;
    let ascending = params.ascending(true)?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    if !ascending {
        all.reverse();
    }
    // Whether name `a` comes after `b` in the list's order.
    let past = |a: &str, b: &str| if ascending { a > b } else { a < b };
    let cursor = params.iterator();
    let backwards = cursor.is_some_and(|c| c.backwards);
    let mut page: Vec<EventTypeView> = match cursor {
        Some(c) if c.backwards => all
            .into_iter()
            .rev()
            .filter(|t| past(c.id, t.name.as_str()))
            .collect(),
        Some(c) => all
            .into_iter()
            .filter(|t| past(t.name.as_str(), c.id))
            .collect(),
        None => all,
    };
    let more = page.len() > limit;
    page.truncate(limit);
    Ok(Json(ListResponse::page(
        page.into_iter()
            .map(|t| EventTypeOut::of(t, with_content))
            .collect(),
        more,
        backwards,
        |t| t.name.clone(),
    )))
}

/// Get Event Type
#[utoipa::path(
    get,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.get",
    tag = "Event Type",
    params(("event_type_name" = String, Path, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$", description = "The event type's name.")),
    responses(
        (status = 200, description = "The event type.", body = EventTypeOut),
        (status = 404, description = "- `not_found`: no such event type"),
    )
)]
async fn read(
    State(state): State<AppState>,
    Path(event_type_name): Path<String>,
) -> SvixResult<Json<EventTypeOut>> {
    let missing = || SvixError::not_found("Event type not found");
    let name = EventType::parse(&event_type_name, "event_type_name").map_err(|_| missing())?;
    let found = find(&state, &name).await?.ok_or_else(missing)?;
    Ok(Json(EventTypeOut::of(found, true)))
}

/// Applies a change to an existing type: its fields, deprecation, and
/// archiving (or defining again when un-archived).
async fn change(
    state: &AppState,
    ctx: &CommandContext,
    current: EventTypeView,
    name: EventType,
    input: EventTypeIn,
) -> SvixResult<EventTypeView> {
    if current.archived && input.archived == Some(false) {
        let full = EventTypeIn {
            description: input.description.or(Some(current.description)),
            group_name: input.group_name.or(Some(current.group)),
            schemas: input.schemas.or_else(|| {
                Some(
                    current
                        .schema
                        .map(|s| Value::Object(Map::from_iter([("1".to_string(), s)]))),
                )
            }),
            ..input
        };
        return define(state, ctx, name, full).await;
    }
    // Svix has no examples: a schema set here drops the one a built-in
    // type came with (a client could neither see nor change it, and a new
    // schema it does not satisfy was refused naming `/example`).
    let example = input.schemas.as_ref().map(|_| None);
    let version = kept_version(input.schemas.as_ref().and_then(Option::as_ref));
    let changes = EventTypeChanges {
        group: input.group_name,
        description: input.description,
        schema: input.schemas.map(schema).transpose()?,
        example,
        deprecated: input.deprecated,
    };
    let mut view = current;
    if !changes.is_empty() && !view.archived {
        view = state
            .catalogue
            .update(ctx, &name, changes)
            .await
            .map_err(|e| located(e, &version))?
            .value;
    }
    if input.archived == Some(true) && !view.archived {
        view = state.catalogue.archive(ctx, &name).await?.value;
    }
    Ok(view)
}

/// Update Event Type
///
/// Creates it (201) or replaces it (200): a field left out is set as a
/// create would set it (no schema, the name's group).
#[utoipa::path(
    put,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.update",
    tag = "Event Type",
    params(("event_type_name" = String, Path, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$", description = "The event type's name.")),
    request_body = EventTypeIn,
    responses(
        (status = 200, description = "Updated.", body = EventTypeOut),
        (status = 201, description = "Created.", body = EventTypeOut),
        (status = 409, description = "- `event_type_reserved`: an operational event type (`hookline.…`), which Hookline describes"),
    )
)]
async fn upsert(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(event_type_name): Path<String>,
    SvixJson(input): SvixJson<EventTypeIn>,
) -> SvixResult<Response> {
    input.refuse_unkept()?;
    // The path names the event type; a `name` in the body must still be one.
    if let Some(n) = input.name.as_deref() {
        name(n, "name")?;
    }
    let name = name(&event_type_name, "event_type_name")?;
    let ctx = org_ctx(&org, request_id);
    // A PUT replaces the type: what it leaves out is what a create would
    // make (no schema, the name's group, neither archived nor deprecated),
    // as Svix's server does.
    let input = EventTypeIn {
        archived: Some(input.archived.unwrap_or(false)),
        deprecated: Some(input.deprecated.unwrap_or(false)),
        schemas: Some(input.schemas.flatten()),
        description: Some(input.description.clone().unwrap_or_default()),
        group_name: Some(input.group_name.clone().unwrap_or_else(|| group_of(&name))),
        ..input
    };
    // Two requests putting a new name at once: the one whose create finds
    // the name taken updates what the other created (a PUT is idempotent),
    // as the others racing to update it do (`LostRace`).
    let mut race = crate::routes::LostRace::new();
    loop {
        let written = match find(&state, &name).await? {
            Some(current) => change(&state, &ctx, current, name.clone(), input.clone())
                .await
                .map(|view| (StatusCode::OK, view)),
            None => define(&state, &ctx, name.clone(), input.clone())
                .await
                .map(|view| (StatusCode::CREATED, view)),
        };
        match written {
            Ok((status, view)) => {
                return Ok((status, Json(EventTypeOut::of(view, true))).into_response())
            }
            Err(SvixError::Http {
                status: StatusCode::CONFLICT,
                code,
                ..
            }) if (code == "event_type_exists" || code == "concurrent_modification")
                && race.again().await => {}
            Err(e) => return Err(e),
        }
    }
}

/// Patch Event Type
#[utoipa::path(
    patch,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.patch",
    tag = "Event Type",
    params(("event_type_name" = String, Path, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$", description = "The event type's name.")),
    request_body = EventTypeIn,
    responses(
        (status = 200, description = "Patched.", body = EventTypeOut),
        (status = 404, description = "- `not_found`: no such event type"),
        (status = 409, description = "- `event_type_reserved`: an operational event type (`hookline.…`), which Hookline describes"),
    )
)]
async fn patch(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(event_type_name): Path<String>,
    SvixJson(input): SvixJson<EventTypeIn>,
) -> SvixResult<Json<EventTypeOut>> {
    input.refuse_unkept()?;
    // The path names the event type; a `name` in the body must still be one.
    if let Some(n) = input.name.as_deref() {
        name(n, "name")?;
    }
    let missing = || SvixError::not_found("Event type not found");
    let name = EventType::parse(&event_type_name, "event_type_name").map_err(|_| missing())?;
    hookline_application::catalogue::refuse_operational(&name)?;
    let current = find(&state, &name).await?.ok_or_else(missing)?;
    let ctx = org_ctx(&org, request_id);
    let view = change(&state, &ctx, current, name, input).await?;
    Ok(Json(EventTypeOut::of(view, true)))
}

/// Archives the type (Svix's default; its history stays in the log).
/// Delete Event Type
#[utoipa::path(
    delete,
    path = "/api/v1/event-type/{event_type_name}",
    operation_id = "v1.event-type.delete",
    tag = "Event Type",
    params(("event_type_name" = String, Path, min_length = 3, max_length = 100, pattern = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$", description = "The event type's name.")),
    responses(
        (status = 204, description = "Archived."),
        (status = 404, description = "- `not_found`: no such event type"),
        (status = 409, description = "- `event_type_reserved`: an operational event type (`hookline.…`), which Hookline describes"),
    )
)]
async fn remove(
    State(state): State<AppState>,
    org: Organisation,
    CurrentRequestId(request_id): CurrentRequestId,
    Path(event_type_name): Path<String>,
) -> SvixResult<StatusCode> {
    let missing = || SvixError::not_found("Event type not found");
    let name = EventType::parse(&event_type_name, "event_type_name").map_err(|_| missing())?;
    hookline_application::catalogue::refuse_operational(&name)?;
    let current = find(&state, &name).await?.ok_or_else(missing)?;
    if !current.archived {
        state
            .catalogue
            .archive(&org_ctx(&org, request_id), &name)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
