//! Hookline's application layer: one module per family of use cases, and the
//! ports (traits) they need from the outside world. Adapters for Postgres,
//! HTTP senders and the clock live in `hookline-infrastructure`; the API
//! turns requests into the typed commands and queries here and never
//! touches storage itself.

pub mod audit;
pub mod catalogue;
pub mod commands;
pub mod commitment;
pub mod connectors;
pub mod context;
pub mod dashboard;
pub mod deliveries;
pub mod error;
pub mod flow;
pub mod fold;
pub mod health;
pub mod history;
pub mod idempotency;
pub mod listing;
pub mod messages;
pub mod metadata;
pub mod metrics;
pub mod operational;
pub mod operators;
pub mod pagination;
pub mod portal;
pub mod ports;
pub mod replay;
pub mod serial;
pub mod shared;
pub mod sources;
pub mod subscriptions;
pub mod tenants;
pub mod uids;
pub mod worker;

#[cfg(test)]
mod testing;

pub use context::{Actor, CommandContext, RequestId};
pub use error::AppError;
pub use metadata::EventMetadata;
pub use shared::Shared;
