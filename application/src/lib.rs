//! Hookline's application layer: one module per family of use cases, and the
//! ports (traits) they need from the outside world. Adapters for Postgres,
//! HTTP senders and the clock live in `hookline-infrastructure`; the API
//! calls the services here and never touches storage itself.

pub mod audit;
pub mod commands;
pub mod context;
pub mod deliveries;
pub mod error;
pub mod history;
pub mod pagination;
pub mod ports;
pub mod subscriptions;
pub mod tenants;
pub mod worker;

pub use context::{Actor, CommandContext, RequestId};
pub use error::AppError;
