//! End-to-end tests: the real server against a real Postgres (one private
//! cluster for this binary, one database per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod admin;
mod audit;
mod auth;
mod bounded;
mod catalogue;
mod connectors;
mod console;
mod console_forms;
mod crash;
mod delivery;
mod docs_ui;
mod errors;
mod event_log;
mod flow;
mod held;
mod listing;
mod manual_retry;
mod memory;
mod metrics;
mod openapi;
mod operational;
mod outcomes;
mod process;
mod projections;
mod receiver_example;
mod request_ids;
mod rotations;
mod secrets;
mod sources;
mod subscriptions;
mod support;
mod svix_api;
mod svix_portal;
mod svix_reads;
mod svix_sdk;
mod tenants;
mod timeouts;
mod validation;
