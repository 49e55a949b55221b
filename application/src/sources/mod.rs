//! Inbound sources: CRUD of the endpoints providers deliver to, and
//! receiving on them (`/in/{source_id}`).

mod commands;
mod receive;
mod service;
mod view;

#[cfg(test)]
mod tests;

pub use commands::{ListSources, NewSource, SourceChanges};
pub use receive::{
    InboundAccepted, InboundCounts, InboundError, InboundRefusal, InboundRequest, InboundService,
    InboundStats, RefusalStatus,
};
pub use service::{PreparedSource, SourceService, SourceSettings, MAX_SOURCES_PER_TENANT};
pub use view::{
    ingest_path, source_sealing_context, IdempotencyView, RejectionView, SourceView,
    SEALING_CONTEXT_SOURCE_SECRET,
};

use crate::error::AppError;
use cqrs_es::AggregateError;
use hookline_domain::source::SourceError;

/// How a source's refusals look to callers.
pub(crate) fn map_error(id: &str, e: AggregateError<SourceError>) -> AppError {
    match e {
        AggregateError::UserError(SourceError::NotFound) => AppError::not_found("source", id),
        AggregateError::UserError(SourceError::Deleted) => AppError::conflict(
            "source_deleted",
            format!("source '{id}' has been deleted and cannot be changed"),
        ),
        AggregateError::UserError(SourceError::AlreadyExists) => {
            AppError::conflict("source_exists", format!("source '{id}' already exists"))
        }
        AggregateError::UserError(e @ SourceError::TooManySecrets(_)) => {
            AppError::conflict("too_many_secrets", e.to_string())
        }
        AggregateError::UserError(
            e @ (SourceError::HeaderNameRequired
            | SourceError::HeaderNameNotUsed(_)
            | SourceError::SecretInRequestId
            | SourceError::DeliveryIdIsSecret(_)
            | SourceError::DeliveryIdIsCredential(_)),
        ) => {
            let text = e.to_string();
            let (field, reason) = text.split_once(": ").unwrap_or(("header_name", &text));
            AppError::invalid(hookline_domain::ValidationError::new(field, reason))
        }
        AggregateError::UserError(other) => AppError::BadRequest(other.to_string()),
        other => crate::commands::map_store_error(other),
    }
}
