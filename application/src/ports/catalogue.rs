//! Ports of the event-type catalogue: the read model the `event_types`
//! projection keeps, and JSON Schema compilation.

use crate::error::AppError;
use async_trait::async_trait;
use hookline_domain::catalogue::EventTypeState;
use hookline_domain::TenantId;
use serde_json::Value;
use std::sync::Arc;

/// The event types a tenant defined or changed (built-ins it never touched
/// are not stored).
#[async_trait]
pub trait CatalogueReadModel: Send + Sync {
    /// Every stored type of `tenant`, archived ones included.
    ///
    /// # Errors
    /// Storage errors.
    async fn entries(&self, tenant: TenantId) -> Result<Vec<EventTypeState>, AppError>;

    /// A number that changes whenever the read model does (the projection's
    /// position), so cached catalogues can be checked again.
    fn version(&self) -> u64;

    /// A value that changes whenever a stored type of one of `tenants`
    /// does (how many there are, and the sum of their versions), so a
    /// cached catalogue can tell its own changes from others'.
    ///
    /// # Errors
    /// Storage errors.
    async fn fingerprint(&self, tenants: &[TenantId]) -> Result<(i64, i64), AppError>;
}

/// One way a JSON value breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer of the failing value, from the validated document's
    /// root (`""` for the root itself).
    pub pointer: String,
    pub message: String,
}

/// A compiled schema.
pub trait DataSchema: Send + Sync {
    /// Every violation of `data` (none when it is valid), at most a few
    /// dozen.
    fn violations(&self, data: &Value) -> Vec<SchemaViolation>;
}

/// Compiles JSON Schemas (draft 2020-12). Remote references are never
/// fetched.
pub trait SchemaCompiler: Send + Sync {
    /// # Errors
    /// The ways `schema` is not a valid schema (pointers into the schema).
    fn compile(&self, schema: &Value) -> Result<Arc<dyn DataSchema>, Vec<SchemaViolation>>;
}
