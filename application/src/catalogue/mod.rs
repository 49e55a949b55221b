//! The event-type catalogue as tenants use it: list (grouped, with the
//! built-ins every tenant starts with), read now or as of a time, history,
//! define, change, deprecate and archive types; the example a receiver
//! would get; and, on every publish, the type's schema check and the
//! tenant's strict mode.

mod cache;
mod per_tenant;
mod service;
mod view;
mod work;

pub use service::{
    refuse_operational, Admission, CatalogueService, EventTypeChanges, ListEventTypes,
    NewEventType, MAX_CUSTOM_EVENT_TYPES, MAX_SCHEMA_BYTES,
};
pub use view::{CataloguePage, EventTypeView, Example, GroupView};

use crate::error::AppError;
use cqrs_es::AggregateError;
use hookline_domain::catalogue::CatalogueError;

/// How the catalogue's refusals look to callers.
pub(crate) fn map_error(name: &str, e: AggregateError<CatalogueError>) -> AppError {
    match e {
        AggregateError::UserError(CatalogueError::NotFound) => {
            AppError::not_found("event type", name)
        }
        AggregateError::UserError(CatalogueError::AlreadyExists) => AppError::conflict(
            "event_type_exists",
            format!("event type '{name}' is already in the catalogue; change it with PATCH /v1/event-types/{name}"),
        ),
        AggregateError::UserError(CatalogueError::Archived) => AppError::conflict(
            "event_type_archived",
            format!("event type '{name}' is archived; define it again with POST /v1/event-types to use it"),
        ),
        other => crate::commands::map_store_error(other),
    }
}

#[cfg(test)]
mod tests;
