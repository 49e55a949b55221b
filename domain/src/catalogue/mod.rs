//! The event-type catalogue: per tenant, the event types it publishes, each
//! an aggregate (`EventType`, id `"<tenant id>:<name>"`) with a display
//! group, a description, an optional JSON Schema (draft 2020-12) for `data`
//! and an example. Every tenant starts with the built-in types; changing,
//! deprecating or archiving one records the built-in's definition first,
//! so the log says what the tenant started from.

mod builtin;
#[cfg(test)]
mod tests;

pub use builtin::{builtin, Builtin, BUILTINS};

use crate::payload::MAX_DEPTH;
use crate::serde_helpers::double_option;
use crate::validation::check_free_text;
use crate::{EventType, TenantId, ValidationError};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const EVENT_TYPE_DEFINED: &str = "EventTypeDefined";
pub const EVENT_TYPE_UPDATED: &str = "EventTypeUpdated";
pub const EVENT_TYPE_DEPRECATED: &str = "EventTypeDeprecated";
pub const EVENT_TYPE_ARCHIVED: &str = "EventTypeArchived";

pub const MAX_GROUP_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// The aggregate id of `name` in `tenant`'s catalogue.
pub fn aggregate_id(tenant: TenantId, name: &EventType) -> String {
    format!("{tenant}:{name}")
}

/// What an event type says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeSpec {
    pub group: String,
    pub description: String,
    /// A JSON Schema (draft 2020-12) for `data`, checked by the caller.
    pub schema: Option<Value>,
    pub example: Option<Value>,
}

impl EventTypeSpec {
    /// Checks the group and description.
    ///
    /// # Errors
    /// A validation error naming `group` or `description`.
    pub fn check(&self) -> Result<(), ValidationError> {
        check_group(&self.group)?;
        self.check_but_group()
    }

    /// Checks all but the group (when there is none to check: a type whose
    /// name, which would give it, is refused).
    ///
    /// # Errors
    /// A validation error naming `description`, `schema` or `example`.
    pub fn check_but_group(&self) -> Result<(), ValidationError> {
        check_free_text("description", &self.description, MAX_DESCRIPTION_CHARS)?;
        check_storable_json("schema", self.schema.as_ref())?;
        check_example(self.example.as_ref())
    }

    /// A built-in type's definition.
    ///
    /// # Errors
    /// Never for the built-ins (their JSON is tested).
    pub fn of(b: &Builtin) -> Result<Self, serde_json::Error> {
        Ok(Self {
            group: b.group.to_string(),
            description: b.description.to_string(),
            schema: Some(serde_json::from_str(b.schema)?),
            example: Some(serde_json::from_str(b.example)?),
        })
    }
}

/// An example is the `data` of an event: a JSON object.
///
/// # Errors
/// A validation error naming `example`.
pub fn check_example(example: Option<&Value>) -> Result<(), ValidationError> {
    match example {
        Some(v) if !v.is_object() => Err(ValidationError::new(
            "example",
            "must be a JSON object (the `data` of an event)",
        )),
        _ => check_storable_json("example", example),
    }
}

/// A schema or an example is kept as JSON in the catalogue's read model,
/// where the NUL character (`\u0000`) cannot be stored: it is refused in
/// any key or string. Nor may it nest deeper than an event's `data` may
/// ([`MAX_DEPTH`] levels): the type is read back inside its state, and
/// JSON readers stop at 128 levels.
///
/// # Errors
/// A validation error naming `field`.
pub fn check_storable_json(field: &str, value: Option<&Value>) -> Result<(), ValidationError> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(has_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    /// Whether `v` nests objects and arrays deeper than `room` levels.
    fn too_deep(v: &Value, room: usize) -> bool {
        let deeper = |i: &Value| room == 0 || too_deep(i, room - 1);
        match v {
            Value::Array(items) => room == 0 || items.iter().any(deeper),
            Value::Object(map) => room == 0 || map.values().any(deeper),
            _ => false,
        }
    }
    match value {
        Some(v) if has_nul(v) => Err(ValidationError::new(
            field,
            "must not contain the NUL character (\\u0000) in any key or string",
        )),
        Some(v) if too_deep(v, MAX_DEPTH) => Err(ValidationError::new(
            field,
            format!("nests objects and arrays deeper than {MAX_DEPTH} levels"),
        )),
        _ => Ok(()),
    }
}

/// A display group: 1–100 characters, no control characters.
///
/// # Errors
/// A validation error naming `group`.
pub fn check_group(group: &str) -> Result<(), ValidationError> {
    if group.trim().is_empty() {
        return Err(ValidationError::new("group", "must not be empty"));
    }
    check_free_text("group", group, MAX_GROUP_CHARS)
}

#[derive(Debug, Clone, PartialEq)]
pub enum CatalogueCommand {
    Define(DefineEventType),
    Update(UpdateEventType),
    Archive(ArchiveEventType),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefineEventType {
    pub tenant_id: TenantId,
    pub name: EventType,
    pub spec: EventTypeSpec,
    /// The built-in of this name, if there is one: a built-in the tenant
    /// never archived is already in its catalogue.
    pub base: Option<EventTypeSpec>,
    pub at: DateTime<Utc>,
}

/// `None` leaves a field as it is; `schema`/`example: Some(None)` clear it.
/// `base` is the built-in's definition, for a type the tenant never
/// touched.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateEventType {
    pub tenant_id: TenantId,
    pub name: EventType,
    pub group: Option<String>,
    pub description: Option<String>,
    pub schema: Option<Option<Value>>,
    pub example: Option<Option<Value>>,
    pub deprecated: Option<bool>,
    pub base: Option<EventTypeSpec>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveEventType {
    pub tenant_id: TenantId,
    pub name: EventType,
    pub base: Option<EventTypeSpec>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CatalogueEvent {
    EventTypeDefined {
        tenant_id: TenantId,
        name: EventType,
        group: String,
        description: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schema: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example: Option<Value>,
        /// Recorded from the built-in catalogue (before its first change).
        #[serde(default)]
        builtin: bool,
        defined_at: DateTime<Utc>,
    },
    /// Only the fields that changed are present.
    EventTypeUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        schema: Option<Option<Value>>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        example: Option<Option<Value>>,
        updated_at: DateTime<Utc>,
    },
    /// `deprecated: false` withdraws a deprecation.
    EventTypeDeprecated {
        deprecated: bool,
        changed_at: DateTime<Utc>,
    },
    EventTypeArchived {
        archived_at: DateTime<Utc>,
    },
}

impl DomainEvent for CatalogueEvent {
    fn event_type(&self) -> String {
        match self {
            Self::EventTypeDefined { .. } => EVENT_TYPE_DEFINED,
            Self::EventTypeUpdated { .. } => EVENT_TYPE_UPDATED,
            Self::EventTypeDeprecated { .. } => EVENT_TYPE_DEPRECATED,
            Self::EventTypeArchived { .. } => EVENT_TYPE_ARCHIVED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("the event type is already in the catalogue")]
    AlreadyExists,
    #[error("the event type is not in the catalogue")]
    NotFound,
    #[error("the event type is archived; define it again to use it")]
    Archived,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeState {
    pub tenant_id: TenantId,
    pub name: EventType,
    pub spec: EventTypeSpec,
    pub deprecated: bool,
    /// When the current deprecation was recorded.
    #[serde(default)]
    pub deprecated_at: Option<DateTime<Utc>>,
    pub archived: bool,
    pub builtin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventTypeState {
    /// A built-in type as every tenant has it before changing it.
    pub fn builtin(tenant_id: TenantId, name: EventType, spec: EventTypeSpec) -> Self {
        Self {
            tenant_id,
            name,
            spec,
            deprecated: false,
            deprecated_at: None,
            archived: false,
            builtin: true,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// An event type of one tenant's catalogue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    state: Option<EventTypeState>,
}

fn defined(
    tenant_id: TenantId,
    name: EventType,
    spec: EventTypeSpec,
    builtin: bool,
    at: DateTime<Utc>,
) -> CatalogueEvent {
    CatalogueEvent::EventTypeDefined {
        tenant_id,
        name,
        group: spec.group,
        description: spec.description,
        schema: spec.schema,
        example: spec.example,
        builtin,
        defined_at: at,
    }
}

impl CatalogueEntry {
    pub fn state(&self) -> Option<&EventTypeState> {
        self.state.as_ref()
    }

    /// The state to change, and the events that first record a built-in
    /// the tenant never touched.
    fn current(
        &self,
        tenant: TenantId,
        name: &EventType,
        base: Option<EventTypeSpec>,
        at: DateTime<Utc>,
    ) -> Result<(EventTypeState, Vec<CatalogueEvent>), CatalogueError> {
        match &self.state {
            Some(s) if s.tenant_id == tenant => Ok((s.clone(), vec![])),
            Some(_) => Err(CatalogueError::NotFound),
            None => {
                let spec = base.ok_or(CatalogueError::NotFound)?;
                let event = defined(tenant, name.clone(), spec.clone(), true, at);
                let mut entry = Self::default();
                entry.apply_event(event.clone());
                let state = entry.state.ok_or(CatalogueError::NotFound)?;
                Ok((state, vec![event]))
            }
        }
    }

    /// Decides which events `command` causes.
    ///
    /// # Errors
    /// A [`CatalogueError`] when the command does not fit.
    pub fn decide(&self, command: CatalogueCommand) -> Result<Vec<CatalogueEvent>, CatalogueError> {
        match command {
            CatalogueCommand::Define(cmd) => {
                match &self.state {
                    Some(s) if s.tenant_id != cmd.tenant_id || !s.archived => {
                        return Err(CatalogueError::AlreadyExists);
                    }
                    None if cmd.base.is_some() => return Err(CatalogueError::AlreadyExists),
                    _ => {}
                }
                Ok(vec![defined(
                    cmd.tenant_id,
                    cmd.name,
                    cmd.spec,
                    false,
                    cmd.at,
                )])
            }
            CatalogueCommand::Update(cmd) => self.update(cmd),
            CatalogueCommand::Archive(cmd) => {
                let (state, mut events) =
                    self.current(cmd.tenant_id, &cmd.name, cmd.base, cmd.at)?;
                if !state.archived {
                    events.push(CatalogueEvent::EventTypeArchived {
                        archived_at: cmd.at,
                    });
                }
                Ok(events)
            }
        }
    }

    fn update(&self, cmd: UpdateEventType) -> Result<Vec<CatalogueEvent>, CatalogueError> {
        let (state, mut events) = self.current(cmd.tenant_id, &cmd.name, cmd.base, cmd.at)?;
        if state.archived {
            return Err(CatalogueError::Archived);
        }
        let spec = &state.spec;
        let group = cmd.group.filter(|g| *g != spec.group);
        let description = cmd.description.filter(|d| *d != spec.description);
        let schema = cmd.schema.filter(|s| *s != spec.schema);
        let example = cmd.example.filter(|e| *e != spec.example);
        if group.is_some() || description.is_some() || schema.is_some() || example.is_some() {
            events.push(CatalogueEvent::EventTypeUpdated {
                group,
                description,
                schema,
                example,
                updated_at: cmd.at,
            });
        }
        if let Some(deprecated) = cmd.deprecated.filter(|d| *d != state.deprecated) {
            events.push(CatalogueEvent::EventTypeDeprecated {
                deprecated,
                changed_at: cmd.at,
            });
        }
        Ok(events)
    }

    pub fn apply_event(&mut self, event: CatalogueEvent) {
        match event {
            CatalogueEvent::EventTypeDefined {
                tenant_id,
                name,
                group,
                description,
                schema,
                example,
                builtin,
                defined_at,
            } => {
                // Defined again after archiving: the same type, created
                // when it first was.
                let created_at = self.state.as_ref().map_or(defined_at, |s| s.created_at);
                self.state = Some(EventTypeState {
                    tenant_id,
                    name,
                    spec: EventTypeSpec {
                        group,
                        description,
                        schema,
                        example,
                    },
                    deprecated: false,
                    deprecated_at: None,
                    archived: false,
                    builtin,
                    created_at,
                    updated_at: defined_at,
                });
            }
            CatalogueEvent::EventTypeUpdated {
                group,
                description,
                schema,
                example,
                updated_at,
            } => {
                if let Some(s) = self.state.as_mut() {
                    if let Some(g) = group {
                        s.spec.group = g;
                    }
                    if let Some(d) = description {
                        s.spec.description = d;
                    }
                    if let Some(schema) = schema {
                        s.spec.schema = schema;
                    }
                    if let Some(example) = example {
                        s.spec.example = example;
                    }
                    s.updated_at = updated_at;
                }
            }
            CatalogueEvent::EventTypeDeprecated {
                deprecated,
                changed_at,
            } => {
                if let Some(s) = self.state.as_mut() {
                    s.deprecated = deprecated;
                    s.deprecated_at = deprecated.then_some(changed_at);
                    s.updated_at = changed_at;
                }
            }
            CatalogueEvent::EventTypeArchived { archived_at } => {
                if let Some(s) = self.state.as_mut() {
                    s.archived = true;
                    s.updated_at = archived_at;
                }
            }
        }
    }
}

impl From<EventTypeState> for CatalogueEntry {
    fn from(state: EventTypeState) -> Self {
        Self { state: Some(state) }
    }
}

impl Aggregate for CatalogueEntry {
    const TYPE: &'static str = "EventType";
    type Command = CatalogueCommand;
    type Event = CatalogueEvent;
    type Error = CatalogueError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}
