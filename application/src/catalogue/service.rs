//! The catalogue use cases.

use super::cache::{CatalogueCache, Known, TenantCatalogue};
use super::map_error;
use super::view::{CataloguePage, EventTypeView, Example};
use crate::commands::{execute_with_retry, Written};
use crate::context::CommandContext;
use crate::error::{AppError, Validator};
use crate::fold;
use crate::history::{self, HistoryEntry, HistoryRequest};
use crate::pagination::{parse_limit, Page};
use crate::ports::{
    AggregateStore, CatalogueReadModel, SchemaCompiler, SchemaViolation, TenantReadModel,
};
use crate::shared::Shared;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::Aggregate;
use hookline_domain::catalogue::{
    aggregate_id, check_group, ArchiveEventType, CatalogueCommand, CatalogueEntry, DefineEventType,
    EventTypeSpec, EventTypeState, UpdateEventType,
};
use hookline_domain::event_type::OPERATIONAL_NAMESPACE;
use hookline_domain::validation::check_free_text;
use hookline_domain::{EventId, EventPattern, EventType, TenantId, ValidationError};
use serde_json::value::RawValue;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// Types a tenant may define besides the built-ins (archived ones do not
/// count).
pub const MAX_CUSTOM_EVENT_TYPES: usize = 1000;
/// Largest schema, and largest example, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// A type to add to the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEventType {
    pub name: EventType,
    pub spec: EventTypeSpec,
}

/// What to change; `None` leaves a field as it is, `Some(None)` clears the
/// schema or the example.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventTypeChanges {
    pub group: Option<String>,
    pub description: Option<String>,
    pub schema: Option<Option<Value>>,
    pub example: Option<Option<Value>>,
    pub deprecated: Option<bool>,
}

impl EventTypeChanges {
    pub fn is_empty(&self) -> bool {
        self.group.is_none()
            && self.description.is_none()
            && self.schema.is_none()
            && self.example.is_none()
            && self.deprecated.is_none()
    }

    /// # Errors
    /// Every broken field.
    pub fn check(&self) -> Result<(), AppError> {
        let mut v = Validator::default();
        if let Some(g) = &self.group {
            v.check(check_group(g));
        }
        if let Some(d) = &self.description {
            v.check(check_free_text(
                "description",
                d,
                hookline_domain::catalogue::MAX_DESCRIPTION_CHARS,
            ));
        }
        if let Some(Some(schema)) = &self.schema {
            v.check(hookline_domain::catalogue::check_storable_json(
                "schema",
                Some(schema),
            ));
        }
        if let Some(Some(example)) = &self.example {
            v.check(hookline_domain::catalogue::check_example(Some(example)));
        }
        v.finish()
    }
}

/// Which page of the catalogue: ordered by group, then name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListEventTypes {
    pub include_archived: bool,
    /// Only this display group.
    pub group: Option<String>,
    pub limit: u32,
    /// Types after this `(group, name)`.
    pub after: Option<(String, String)>,
}

impl ListEventTypes {
    /// A client's `limit` and `cursor`, checked.
    ///
    /// # Errors
    /// A validation error naming `limit` or `cursor`.
    pub fn parse(
        include_archived: bool,
        group: Option<String>,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<Self, AppError> {
        Ok(Self {
            include_archived,
            group,
            limit: parse_limit(limit)?,
            after: cursor.map(decode_cursor).transpose()?,
        })
    }
}

fn encode_cursor(group: &str, name: &str) -> String {
    let json = serde_json::json!([group, name]).to_string();
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(cursor: &str) -> Result<(String, String), AppError> {
    let bad = || {
        AppError::invalid(ValidationError::new(
            "cursor",
            "is not a cursor returned by this API (use next_cursor from the previous page)",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    serde_json::from_slice::<(String, String)>(&bytes).map_err(|_| bad())
}

/// What publishing a type needs to tell the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    /// Set when the type is deprecated: since when.
    pub deprecated_since: Option<DateTime<Utc>>,
}

pub struct CatalogueService {
    shared: Shared,
    store: Arc<dyn AggregateStore<CatalogueEntry>>,
    read: Arc<dyn CatalogueReadModel>,
    tenants: Arc<dyn TenantReadModel>,
    compiler: Arc<dyn SchemaCompiler>,
    cache: CatalogueCache,
    /// Serialises "count the tenant's types, then define one".
    serial: crate::serial::SerialWrites,
}

impl fmt::Debug for CatalogueService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogueService").finish_non_exhaustive()
    }
}

/// Schema violations as validation errors on `field` (`/data`, `/example`).
fn violations(field: &str, found: Vec<SchemaViolation>) -> Vec<ValidationError> {
    found
        .into_iter()
        .map(|v| ValidationError::new(format!("{field}{}", v.pointer), v.message))
        .collect()
}

/// Hookline's operational events (`hookline.…`, in any case) are described
/// by Hookline: a tenant cannot define, change or archive them (nor publish
/// them).
///
/// # Errors
/// 409 `event_type_reserved`.
pub fn refuse_operational(name: &EventType) -> Result<(), AppError> {
    if name.is_reserved() {
        return Err(AppError::conflict(
            "event_type_reserved",
            format!(
                "'{name}' is in the '{OPERATIONAL_NAMESPACE}.' namespace of Hookline's operational events, which Hookline describes: it cannot be defined, changed or archived"
            ),
        ));
    }
    Ok(())
}

fn json_size(value: &Value) -> usize {
    serde_json::to_string(value).map_or(usize::MAX, |s| s.len())
}

impl CatalogueService {
    pub fn new(
        shared: Shared,
        store: Arc<dyn AggregateStore<CatalogueEntry>>,
        read: Arc<dyn CatalogueReadModel>,
        tenants: Arc<dyn TenantReadModel>,
        compiler: Arc<dyn SchemaCompiler>,
    ) -> Self {
        let cache = CatalogueCache::new(compiler.as_ref());
        Self {
            shared,
            store,
            read,
            tenants,
            compiler,
            cache,
            serial: crate::serial::SerialWrites::default(),
        }
    }

    /// The limit of types holds across processes too, with `locks` (per
    /// tenant).
    #[must_use]
    pub fn with_locks(mut self, locks: Arc<dyn crate::ports::WriteLocks>) -> Self {
        self.serial.set_locks(locks);
        self
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    async fn catalogue(&self, tenant: TenantId) -> Result<Arc<TenantCatalogue>, AppError> {
        self.cache
            .get(
                tenant,
                self.read.as_ref(),
                self.tenants.as_ref(),
                &self.compiler,
            )
            .await
    }

    /// Checks a schema and an example: the schema compiles, each fits the
    /// size limit, and the example satisfies the schema (as the tenant's
    /// schema work).
    async fn check_spec(
        &self,
        tenant: TenantId,
        schema: Option<&Value>,
        example: Option<&Value>,
    ) -> Result<(), AppError> {
        let mut errors = Vec::new();
        for (field, value) in [("schema", schema), ("example", example)] {
            if value.is_some_and(|v| json_size(v) > MAX_SCHEMA_BYTES) {
                errors.push(ValidationError::new(
                    field,
                    format!("must be at most {MAX_SCHEMA_BYTES} bytes of JSON"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let Some(schema) = schema else {
            return Ok(());
        };
        if !schema.is_object() && !schema.is_boolean() {
            return Err(ValidationError::new(
                "schema",
                "must be a JSON Schema (draft 2020-12): an object or a boolean",
            )
            .into());
        }
        let compiler = self.compiler.clone();
        let (schema, example) = (schema.clone(), example.cloned());
        self.cache
            .work
            .run(tenant, move || {
                let compiled = compiler.compile(&schema).map_err(|found| {
                    let mut errors = violations("/schema", found);
                    for e in &mut errors {
                        e.reason = format!("is not a valid JSON Schema: {}", e.reason);
                    }
                    AppError::Validation(errors)
                })?;
                let found = example.map(|e| compiled.violations(&e)).unwrap_or_default();
                if found.is_empty() {
                    Ok(())
                } else {
                    Err(AppError::Validation(violations("/example", found)))
                }
            })
            .await?
    }

    /// The catalogue, a page at a time: the built-ins the tenant did not
    /// change or archive, and its own types.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        tenant: TenantId,
        query: ListEventTypes,
    ) -> Result<CataloguePage, AppError> {
        let catalogue = self.catalogue(tenant).await?;
        let mut rows: Vec<&Known> = catalogue
            .types
            .values()
            .map(AsRef::as_ref)
            .filter(|k| query.include_archived || !k.state.archived)
            .filter(|k| {
                query
                    .group
                    .as_ref()
                    .is_none_or(|g| *g == k.state.spec.group)
            })
            .filter(|k| {
                query.after.as_ref().is_none_or(|(g, n)| {
                    (k.state.spec.group.as_str(), k.state.name.as_str()) > (g.as_str(), n.as_str())
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.state.spec.group.as_str(), a.state.name.as_str())
                .cmp(&(b.state.spec.group.as_str(), b.state.name.as_str()))
        });
        let limit = query.limit as usize;
        let next_cursor = (rows.len() > limit)
            .then(|| rows.get(limit.saturating_sub(1)))
            .flatten()
            .map(|k| encode_cursor(&k.state.spec.group, k.state.name.as_str()));
        rows.truncate(limit);
        let data = rows
            .into_iter()
            .map(|k| EventTypeView::from(&k.state))
            .collect();
        Ok(CataloguePage::new(data, next_cursor))
    }

    /// The types defined or changed in exactly this scope (a tenant, or the
    /// organisation): no untouched built-ins, no inherited types; by name.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn defined(
        &self,
        scope: TenantId,
        include_archived: bool,
    ) -> Result<Vec<EventTypeView>, AppError> {
        self.of_scope(scope, include_archived, true).await
    }

    async fn of_scope(
        &self,
        scope: TenantId,
        include_archived: bool,
        stored_only: bool,
    ) -> Result<Vec<EventTypeView>, AppError> {
        let catalogue = self.catalogue(scope).await?;
        Ok(catalogue
            .types
            .values()
            .filter(|k| (k.stored || !stored_only) && k.state.tenant_id == scope)
            .filter(|k| include_archived || !k.state.archived)
            .map(|k| EventTypeView::from(&k.state))
            .collect())
    }

    /// Every type of exactly this scope's catalogue, by name: for the
    /// organisation, the built-ins (as it changed them, or untouched) and
    /// its own types; for a tenant, its own and the built-ins, not the
    /// organisation's it inherits.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn scope_types(
        &self,
        scope: TenantId,
        include_archived: bool,
    ) -> Result<Vec<EventTypeView>, AppError> {
        self.of_scope(scope, include_archived, false).await
    }

    /// One type, now (archived ones too) or as the log recorded it at
    /// `as_of`.
    ///
    /// # Errors
    /// 404 for a type the catalogue does not have (then).
    pub async fn get(
        &self,
        tenant: TenantId,
        name: &EventType,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<EventTypeView, AppError> {
        let missing = || AppError::not_found("event type", name);
        let catalogue = self.catalogue(tenant).await?;
        let Some(at) = as_of else {
            return catalogue
                .types
                .get(name)
                .map(|k| EventTypeView::from(&k.state))
                .ok_or_else(missing);
        };
        let events = self
            .shared
            .log
            .aggregate_history(CatalogueEntry::TYPE, &aggregate_id(tenant, name))
            .await?;
        let loaded = fold::rebuild_as_of::<CatalogueEntry>(&events, at)?;
        if let Some(state) = loaded.aggregate.state() {
            return Ok(EventTypeView::from(state));
        }
        // A built-in the tenant had not touched by then: as it was made.
        let untouched = events.first().is_none_or(|e| e.recorded_at > at);
        match self.cache.builtin(name) {
            Some(builtin) if untouched && at >= catalogue.since => {
                let mut state = EventTypeState::builtin(tenant, name.clone(), builtin.clone());
                state.created_at = catalogue.since;
                state.updated_at = catalogue.since;
                Ok(EventTypeView::from(&state))
            }
            // The tenant's own type (its aggregate is the tenant's), made
            // after `at`.
            _ if !events.is_empty() => Err(fold::absent_at(&events, at, true, "event type", name)),
            _ => Err(missing()),
        }
    }

    /// The type's events in order (none for a built-in never changed).
    ///
    /// # Errors
    /// 404 for a type the catalogue does not have.
    pub async fn history(
        &self,
        tenant: TenantId,
        name: &EventType,
        request: HistoryRequest,
    ) -> Result<Page<HistoryEntry>, AppError> {
        let history = history::read_page(
            self.shared.log.as_ref(),
            CatalogueEntry::TYPE,
            &aggregate_id(tenant, name),
            request,
        )
        .await?;
        if history.owner.is_none() && self.cache.builtin(name).is_none() {
            return Err(AppError::not_found("event type", name));
        }
        Ok(history.page)
    }

    async fn run(
        &self,
        ctx: &CommandContext,
        name: &EventType,
        make: impl FnMut() -> CatalogueCommand + Send,
    ) -> Result<Written<EventTypeView>, AppError> {
        refuse_operational(name)?;
        let id = aggregate_id(ctx.tenant_id, name);
        let position =
            execute_with_retry(self.store.as_ref(), &id, make, &ctx.metadata(self.now()))
                .await
                .map_err(|e| map_error(name.as_str(), e))?;
        let consistent = self.shared.settle(CatalogueEntry::TYPE, position).await;
        let state = self.state(ctx.tenant_id, name).await?;
        Ok(Written {
            value: EventTypeView::from(&state),
            consistent,
        })
    }

    /// The type as its events leave it (exact, whatever the read model's
    /// lag), or the built-in.
    async fn state(&self, tenant: TenantId, name: &EventType) -> Result<EventTypeState, AppError> {
        let id = aggregate_id(tenant, name);
        let stored = self
            .store
            .load(std::slice::from_ref(&id))
            .await?
            .remove(&id)
            .and_then(|l| l.aggregate.state().cloned());
        match stored {
            Some(s) => Ok(s),
            None => {
                let builtin = self
                    .cache
                    .builtin(name)
                    .ok_or_else(|| AppError::not_found("event type", name))?;
                Ok(EventTypeState::builtin(
                    tenant,
                    name.clone(),
                    builtin.clone(),
                ))
            }
        }
    }

    /// Adds a type (or defines an archived one again).
    ///
    /// # Errors
    /// 400 for a schema that does not compile or an example it refuses;
    /// 409 when the type exists or the tenant has too many.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn define(
        &self,
        ctx: &CommandContext,
        input: NewEventType,
    ) -> Result<Written<EventTypeView>, AppError> {
        input.spec.check()?;
        self.check_spec(
            ctx.tenant_id,
            input.spec.schema.as_ref(),
            input.spec.example.as_ref(),
        )
        .await?;
        // Held until the type is written and read back (`run` settles the
        // read model the next count reads): concurrent defines each found
        // room for one more and the limit was passed.
        let _serial = self
            .serial
            .hold(&format!("event_types:{}", ctx.tenant_id))
            .await?;
        let catalogue = self.catalogue(ctx.tenant_id).await?;
        let custom = catalogue
            .types
            .values()
            // Its own: not the organisation's (which every tenant sees),
            // nor built-ins, nor archived ones.
            .filter(|k| k.state.tenant_id == ctx.tenant_id && !k.state.builtin && !k.state.archived)
            .count();
        if custom >= MAX_CUSTOM_EVENT_TYPES {
            return Err(AppError::conflict(
                "event_type_limit_reached",
                format!("this tenant already has {custom} event types of its own, the most allowed; archive one first"),
            ));
        }
        let at = self.now();
        let base = self.cache.builtin(&input.name).cloned();
        let written = self
            .run(ctx, &input.name, || {
                CatalogueCommand::Define(DefineEventType {
                    tenant_id: ctx.tenant_id,
                    name: input.name.clone(),
                    spec: input.spec.clone(),
                    base: base.clone(),
                    at,
                })
            })
            .await?;
        tracing::info!(event_type = %input.name, "event type defined");
        Ok(written)
    }

    /// Changes, deprecates or un-deprecates a type.
    ///
    /// # Errors
    /// 400 for no change or a broken field; 404; 409 for an archived type.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn update(
        &self,
        ctx: &CommandContext,
        name: &EventType,
        changes: EventTypeChanges,
    ) -> Result<Written<EventTypeView>, AppError> {
        if changes.is_empty() {
            return Err(AppError::BadRequest(
                "nothing to change: give at least one of group, description, schema, example, deprecated".into(),
            ));
        }
        changes.check()?;
        refuse_operational(name)?;
        let current = self.state(ctx.tenant_id, name).await?;
        let schema = changes
            .schema
            .clone()
            .unwrap_or_else(|| current.spec.schema.clone());
        let example = changes
            .example
            .clone()
            .unwrap_or_else(|| current.spec.example.clone());
        if changes.schema.is_some() || changes.example.is_some() {
            self.check_spec(ctx.tenant_id, schema.as_ref(), example.as_ref())
                .await?;
        }
        let at = self.now();
        let base = self.cache.builtin(name).cloned();
        self.run(ctx, name, || {
            CatalogueCommand::Update(UpdateEventType {
                tenant_id: ctx.tenant_id,
                name: name.clone(),
                group: changes.group.clone(),
                description: changes.description.clone(),
                schema: changes.schema.clone(),
                example: changes.example.clone(),
                deprecated: changes.deprecated,
                base: base.clone(),
                at,
            })
        })
        .await
    }

    /// Archives a type: it leaves the list (unless asked for) and, in
    /// strict mode, can no longer be published; its history stays.
    ///
    /// # Errors
    /// 404 for a type the catalogue does not have.
    #[tracing::instrument(skip_all, fields(request_id = %ctx.request_id, tenant_id = %ctx.tenant_id))]
    pub async fn archive(
        &self,
        ctx: &CommandContext,
        name: &EventType,
    ) -> Result<Written<EventTypeView>, AppError> {
        refuse_operational(name)?;
        let at = self.now();
        let base = self.cache.builtin(name).cloned();
        self.run(ctx, name, || {
            CatalogueCommand::Archive(ArchiveEventType {
                tenant_id: ctx.tenant_id,
                name: name.clone(),
                base: base.clone(),
                at,
            })
        })
        .await
    }

    /// The body a receiver would get for the type's example, in the real
    /// envelope (a fresh event id and the current time).
    ///
    /// # Errors
    /// 404 for a type the catalogue does not have, or one without an
    /// example.
    pub async fn example(&self, tenant: TenantId, name: &EventType) -> Result<Example, AppError> {
        let catalogue = self.catalogue(tenant).await?;
        let known = catalogue
            .types
            .get(name)
            .ok_or_else(|| AppError::not_found("event type", name))?;
        let example = known
            .state
            .spec
            .example
            .as_ref()
            .ok_or_else(|| AppError::NothingFound {
                code: "no_example",
                detail: format!(
                    "event type '{name}' has no example; add one with PATCH /v1/event-types/{name}"
                ),
            })?;
        Ok(Example {
            id: EventId::from_uuid(self.shared.entropy.new_id()),
            timestamp: self.now().to_rfc3339_opts(SecondsFormat::Millis, true),
            event: name.clone(),
            data: example.clone(),
            tenant_id: tenant,
        })
    }

    /// Whether `data` may be published as `event_type`: it satisfies the
    /// type's schema, and in strict mode the type is in the catalogue and
    /// not archived.
    ///
    /// # Errors
    /// 400 naming the JSON pointer (`/data/amount`) of each failing value,
    /// or `event_type` in strict mode.
    pub async fn admit(
        &self,
        tenant: TenantId,
        event_type: &EventType,
        data: &RawValue,
    ) -> Result<Admission, AppError> {
        let catalogue = self.catalogue(tenant).await?;
        let known = catalogue.types.get(event_type);
        let live = known.filter(|k| !k.state.archived);
        let Some(known) = live else {
            if catalogue.strict {
                let why = if known.is_some() {
                    "is archived in this tenant's event-type catalogue"
                } else {
                    "is not in this tenant's event-type catalogue"
                };
                return Err(ValidationError::new(
                    "event_type",
                    format!("'{event_type}' {why}, and strict_event_types is on: define it with POST /v1/event-types, or turn strict mode off with PATCH /v1/settings"),
                )
                .into());
            }
            return Ok(Admission::default());
        };
        if let Some(schema) = &known.schema {
            let check = |schema: &dyn crate::ports::DataSchema, data: &str| {
                let value: Value = serde_json::from_str(data)
                    .map_err(|e| ValidationError::new("data", format!("is not JSON: {e}")))?;
                let found = schema.violations(&value);
                if found.is_empty() {
                    Ok(())
                } else {
                    Err(AppError::Validation(violations("/data", found)))
                }
            };
            if known.stored {
                // A tenant's own schema may be slow on a large document.
                let (schema, data) = (schema.clone(), data.get().to_string());
                self.cache
                    .work
                    .run(tenant, move || check(schema.as_ref(), &data))
                    .await??;
            } else {
                check(schema.as_ref(), data.get())?;
            }
        }
        Ok(Admission {
            deprecated_since: known.state.deprecated_at.filter(|_| known.state.deprecated),
        })
    }

    /// Warnings for filter entries naming types the catalogue does not
    /// have: `events[1]: 'invoice.creatd' is not in the catalogue`. Best
    /// effort: none when the catalogue cannot be read.
    pub async fn filter_warnings(
        &self,
        tenant: TenantId,
        patterns: &[EventPattern],
    ) -> Vec<String> {
        let catalogue = match self.catalogue(tenant).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "catalogue unavailable for filter warnings");
                return vec![];
            }
        };
        let live = |name: &EventType| catalogue.types.get(name).is_some_and(|k| !k.state.archived);
        let mut out = Vec::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match pattern {
                EventPattern::All => {}
                EventPattern::Exact(name) if !live(name) => {
                    let why = if catalogue.types.contains_key(name) {
                        "is archived in the catalogue"
                    } else {
                        "is not in the catalogue"
                    };
                    out.push(format!("events[{i}]: '{name}' {why}"));
                }
                EventPattern::Exact(_) => {}
                EventPattern::Prefix(_) => {
                    let any = catalogue
                        .types
                        .iter()
                        .any(|(name, k)| !k.state.archived && pattern.matches(name));
                    if !any {
                        out.push(format!(
                            "events[{i}]: '{pattern}' matches no event type in the catalogue"
                        ));
                    }
                }
            }
        }
        out
    }
}
