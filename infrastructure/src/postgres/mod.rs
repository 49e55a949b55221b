//! Everything Postgres: the pool and migrations, the embedded cluster, the
//! event store behind cqrs-es, the position-tracked log reader, projections
//! with their checkpoints, and the read-model and tenant adapters.

pub mod audit;
pub mod backlog;
pub mod catalogue;
pub mod checkpoints;
pub mod copy;
pub mod dashboard;
pub mod deliveries;
pub mod directory;
pub mod feed;
pub mod flow;
pub mod health;
pub mod idempotency;
pub mod listing;
pub mod local;
pub mod log_reader;
pub mod messages;
pub mod metrics;
pub mod notices;
pub mod pool;
pub mod projections;
pub mod replay;
mod row_yield;
pub mod sources;
pub mod store;
pub mod tenants;
pub mod time_page;
pub mod wakeup;
pub mod write_locks;

pub use pool::{connect, holds_hookline, migrate, pending_migrations, Database};
