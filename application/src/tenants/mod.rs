//! Tenants and their API keys: create, list, rename and delete tenants,
//! issue, list, revoke and rotate keys (a key is shown once and stored as a
//! SHA-256 digest), and authenticate a request's bearer key.

mod auth;
mod service;

pub use auth::{hash_key, Authenticator, Principal, API_KEY_PREFIX};
pub use service::{
    ApiKeyView, IssuedKey, ListOrder, NewTenant, TenantChanges, TenantDetails, TenantService,
    TenantView, MAX_KEY_OVERLAP,
};

use crate::error::AppError;
use cqrs_es::AggregateError;
use hookline_domain::tenant::TenantError;

/// How a tenant's refusals look to callers.
pub(crate) fn map_error(id: &str, e: AggregateError<TenantError>) -> AppError {
    match e {
        AggregateError::UserError(TenantError::NotFound) => AppError::not_found("tenant", id),
        AggregateError::UserError(TenantError::Deleted) => AppError::conflict(
            "tenant_deleted",
            format!("tenant '{id}' has been deleted and cannot be changed"),
        ),
        AggregateError::UserError(TenantError::KeyNotFound) => AppError::NothingFound {
            code: "not_found",
            detail: format!("tenant '{id}' has no such API key"),
        },
        AggregateError::UserError(e @ TenantError::TooManyKeys(_)) => {
            AppError::conflict("too_many_keys", e.to_string())
        }
        AggregateError::UserError(e @ TenantError::KeyRetiring) => {
            AppError::conflict("key_retiring", e.to_string())
        }
        AggregateError::UserError(other) => {
            AppError::conflict("tenant_conflict", other.to_string())
        }
        other => crate::commands::map_store_error(other),
    }
}

#[cfg(test)]
mod tests;
