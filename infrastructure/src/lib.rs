//! Hookline's adapters: everything that talks to Postgres, the file system,
//! the clock or the network on behalf of the application's ports.

pub mod cipher;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod postgres;
pub mod schema;
pub mod sender;
pub mod siigo;
pub mod telemetry;
