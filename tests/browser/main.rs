//! The console in a real browser: headless Chromium through chromedriver
//! (fantoccini), against the real server, a real Postgres and real
//! receivers. One browser serves every test here (see `harness`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

mod flows;
mod harness;
mod security;
