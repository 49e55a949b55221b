//! Auditing: the hash chain that makes tampering with the log evident, and
//! its verification.

pub mod chain;
mod service;
pub use service::{AuditEvent, AuditPage, AuditParams, AuditService, RequestTrace};
pub mod verify;
