//! Auditing: the hash chain that makes tampering with the log evident, its
//! verification, exports, and support's request traces.

pub mod chain;
mod service;
pub mod verify;

pub use service::{
    AnchoredHeads, AuditEvent, AuditPage, AuditPageRequest, AuditService, LogName, RequestTrace,
    TracePage, TraceSummary, Verification, DEFAULT_AUDIT_LIMIT, DEFAULT_TRACE_LIMIT,
    EXPORT_WRITE_FAILED, MAX_AUDIT_LIMIT, MAX_PAGE_BYTES,
};
