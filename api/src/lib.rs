//! Hookline's HTTP API (axum) and command-line interface.
//!
//! Handlers are thin: they turn a request into a call on an application
//! service and the result into a response. Errors have one JSON shape,
//! `{"code", "detail", "request_id"}`, for every 4xx and 5xx.

pub mod cli;
pub mod console;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod routes;
pub mod serve;
pub mod startup;
pub mod state;

pub use startup::Application;
