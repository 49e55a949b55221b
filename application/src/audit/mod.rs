//! Auditing: the hash chain that makes tampering with the log evident, and
//! its verification.

pub mod chain;
pub mod verify;
