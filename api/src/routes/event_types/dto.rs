//! Request and response bodies of `/v1/event-types` and `/v1/settings`.

use crate::routes::common::time;
use crate::routes::openapi::schemas::{EventNameSchema, JsonSchemaSchema};
use chrono::{DateTime, Utc};
use hookline_application::catalogue::{
    CataloguePage, EventTypeChanges, EventTypeView, GroupView, ListEventTypes, NewEventType,
};
use hookline_application::error::Validator;
use hookline_application::AppError;
use hookline_domain::catalogue::EventTypeSpec;
use hookline_domain::tenant::{SettingsChanges, TenantSettings};
use hookline_domain::{EventType, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/event-types`: a type of the tenant's own, or a built-in one
/// defined again after it was archived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventTypeRequest {
    #[serde(default)]
    #[schema(value_type = EventNameSchema, required = true)]
    pub name: Option<String>,
    /// The display group, at most 100 characters; defaults to the name's
    /// first segment (`invoice` for `invoice.paid`).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub group: Option<String>,
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    /// A JSON Schema (draft 2020-12, at most 64 KiB, no remote `$ref`s)
    /// that published `data` must satisfy.
    #[serde(default)]
    #[schema(value_type = Option<JsonSchemaSchema>)]
    pub schema: Option<Value>,
    /// Example `data` (a JSON object, at most 64 KiB); must satisfy
    /// `schema`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
}

impl CreateEventTypeRequest {
    /// # Errors
    /// Validation errors naming each bad field.
    pub fn into_command(self) -> Result<NewEventType, AppError> {
        let mut v = Validator::default();
        let name = match self.name.as_deref() {
            Some(n) => v.check(EventType::parse(n, "name")),
            None => {
                v.fail(ValidationError::new("name", "is required"));
                None
            }
        };
        let group = self.group.or_else(|| {
            name.as_ref()
                .and_then(|n| n.as_str().split('.').next())
                .map(str::to_string)
        });
        let grouped = group.is_some();
        let spec = EventTypeSpec {
            group: group.unwrap_or_default(),
            description: self.description.unwrap_or_default(),
            schema: self.schema,
            example: self.example,
        };
        // Without a group and without a name to take it from, the name is
        // what is wrong (said above), not an empty group.
        v.check(if grouped {
            spec.check()
        } else {
            spec.check_but_group()
        });
        v.finish()?;
        let name =
            name.ok_or_else(|| AppError::Internal("validation passed without a name".into()))?;
        Ok(NewEventType { name, spec })
    }
}

/// `PATCH /v1/event-types/{name}`: absent fields stay as they are; `null`
/// clears `description`, `schema` and `example`, and leaves `group` and
/// `deprecated` as they are. At least one change is required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventTypeRequest {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B-\x1F\x7F-\x9F]*$"
    )]
    pub group: Option<String>,
    /// `null` or `""` removes it.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<JsonSchemaSchema>)]
    pub schema: Option<Option<Value>>,
    /// A JSON object; `null` clears it.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<Object>)]
    pub example: Option<Option<Value>>,
    /// Deprecate (publishing it then answers with a `Deprecation` header)
    /// or un-deprecate the type.
    #[serde(default)]
    pub deprecated: Option<bool>,
}

impl From<UpdateEventTypeRequest> for EventTypeChanges {
    fn from(r: UpdateEventTypeRequest) -> Self {
        Self {
            group: r.group,
            description: r.description.map(Option::unwrap_or_default),
            schema: r.schema,
            example: r.example,
            deprecated: r.deprecated,
        }
    }
}

/// `GET /v1/event-types`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEventTypesQuery {
    /// Archived types too.
    #[serde(default)]
    pub include_archived: Option<bool>,
    /// Only this display group.
    #[serde(default)]
    pub group: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

impl ListEventTypesQuery {
    /// # Errors
    /// Validation errors for `limit` or `cursor`.
    pub fn into_query(self) -> Result<ListEventTypes, AppError> {
        ListEventTypes::parse(
            self.include_archived == Some(true),
            self.group,
            self.limit,
            self.cursor.as_deref(),
        )
    }
}

/// `GET /v1/event-types/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetEventTypeQuery {
    /// Read the type as it was at this time (RFC 3339).
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
    pub as_of: Option<String>,
}

impl GetEventTypeQuery {
    /// # Errors
    /// A validation error for `as_of`.
    pub fn as_of(&self) -> Result<Option<DateTime<Utc>>, AppError> {
        time("as_of", self.as_of.as_deref())
    }
}

/// An event type of the tenant's catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypeResponse {
    #[schema(value_type = EventNameSchema)]
    pub name: String,
    pub group: String,
    pub description: String,
    /// JSON Schema (draft 2020-12) that `data` must satisfy.
    #[schema(value_type = Option<JsonSchemaSchema>)]
    pub schema: Option<Value>,
    /// Example `data`.
    #[schema(value_type = Option<Object>)]
    pub example: Option<Value>,
    pub deprecated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub deprecated_at: Option<DateTime<Utc>>,
    pub archived: bool,
    /// One of the types every tenant starts with.
    pub builtin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EventTypeView> for EventTypeResponse {
    fn from(v: EventTypeView) -> Self {
        Self {
            name: v.name,
            group: v.group,
            description: v.description,
            schema: v.schema,
            example: v.example,
            deprecated: v.deprecated,
            deprecated_at: v.deprecated_at,
            archived: v.archived,
            builtin: v.builtin,
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// The names of one group's types on a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupResponse {
    pub name: String,
    #[schema(value_type = Vec<EventNameSchema>)]
    pub event_types: Vec<String>,
}

impl From<GroupView> for GroupResponse {
    fn from(g: GroupView) -> Self {
        Self {
            name: g.name,
            event_types: g.event_types,
        }
    }
}

/// A page of the catalogue, ordered by group and then name.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypePageResponse {
    pub data: Vec<EventTypeResponse>,
    /// This page's types by group.
    pub groups: Vec<GroupResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

impl From<CataloguePage> for EventTypePageResponse {
    fn from(p: CataloguePage) -> Self {
        Self {
            data: p.data.into_iter().map(Into::into).collect(),
            groups: p.groups.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// `PATCH /v1/settings`: at least one setting (there is one so far).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRequest {
    /// Refuse publishing event types that are not in the catalogue (or
    /// are archived).
    #[serde(default)]
    #[schema(value_type = bool, required = true)]
    pub strict_event_types: Option<bool>,
}

impl From<SettingsRequest> for SettingsChanges {
    fn from(r: SettingsRequest) -> Self {
        Self {
            strict_event_types: r.strict_event_types,
        }
    }
}

/// The tenant's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsResponse {
    pub strict_event_types: bool,
}

impl From<TenantSettings> for SettingsResponse {
    fn from(s: TenantSettings) -> Self {
        Self {
            strict_event_types: s.strict_event_types,
        }
    }
}
