//! Subscription use cases: create, list, read, update, rotate the secret,
//! disable/enable, delete, and read the history.

mod commands;
mod queries;
mod service;
mod view;

pub use commands::{
    CreateSubscription, HeadersChange, ListSubscriptions, ReadSubscription, StatusChange,
    SubscriptionChanges,
};
pub use service::{SubscriptionService, SubscriptionSettings};
pub use view::{
    open_headers, sealing_context, SubscriptionView, SEALING_CONTEXT_HEADERS,
    SEALING_CONTEXT_SECRET,
};

use crate::error::AppError;
use cqrs_es::AggregateError;
use hookline_domain::subscription::SubscriptionError;

/// How a subscription's refusals and storage errors look to callers.
pub(crate) fn map_error(id: &str, e: AggregateError<SubscriptionError>) -> AppError {
    match e {
        AggregateError::UserError(SubscriptionError::NotFound) => {
            AppError::not_found("subscription", id)
        }
        AggregateError::UserError(SubscriptionError::Deleted) => AppError::conflict(
            "subscription_deleted",
            format!("subscription '{id}' has been deleted and cannot be changed"),
        ),
        AggregateError::UserError(SubscriptionError::AlreadyExists) => AppError::conflict(
            "subscription_exists",
            format!("subscription '{id}' already exists"),
        ),
        AggregateError::UserError(SubscriptionError::IdTaken) => AppError::conflict(
            "subscription_id_taken",
            format!("the id '{id}' is taken; generate another"),
        ),
        AggregateError::UserError(e @ SubscriptionError::ChangedMeanwhile) => {
            AppError::conflict("changed_meanwhile", format!("subscription '{id}': {e}"))
        }
        AggregateError::UserError(e @ SubscriptionError::TooManySecrets(_)) => {
            AppError::conflict("too_many_secrets", e.to_string())
        }
        AggregateError::UserError(other) => AppError::BadRequest(other.to_string()),
        other => crate::commands::map_store_error(other),
    }
}

#[cfg(test)]
pub(crate) fn map_error_for_tests(id: &str, e: AggregateError<SubscriptionError>) -> AppError {
    map_error(id, e)
}

#[cfg(test)]
mod tests;
