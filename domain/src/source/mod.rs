//! Inbound sources: endpoints (`POST /in/{source_id}`) where providers such
//! as InFlow or Siigo deliver webhooks to Hookline, each with its way of
//! proving a webhook authentic and its rules for turning the provider's
//! body into a Hookline event.

mod aggregate;
mod commands;
mod events;
mod values;
pub mod verify;

#[cfg(test)]
mod tests;

pub use aggregate::{Source, SourceState, SourceStatus};
pub use commands::{CreateSource, DeleteSource, RotateSourceSecret, SourceCommand, UpdateSource};
pub use events::SourceEvent;
pub use values::{
    DeliveryKey, EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName,
    DEFAULT_DEDUPE_WINDOW_SECS, DEFAULT_SECRET_HEADER, MAX_DEDUPE_WINDOW_SECS,
    MIN_DEDUPE_WINDOW_SECS, STANDARD_WEBHOOKS_TOLERANCE_SECS,
};

/// Why a source refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the source already exists")]
    AlreadyExists,
    /// Also for another tenant's source.
    #[error("the source does not exist")]
    NotFound,
    #[error("the source has been deleted")]
    Deleted,
    #[error(
        "header_name: a header-secret source needs the name of the header that carries its secret"
    )]
    HeaderNameRequired,
    #[error(
        "header_name: a {0} source does not read its secret from a header; leave header_name out"
    )]
    HeaderNameNotUsed(values::SourceKind),
    #[error("header_name: x-request-id is read as the request id, which is recorded with every event a webhook causes and sent on to subscribers; name another header for the secret")]
    SecretInRequestId,
    #[error("idempotency.header: '{0}' carries the source's secret, and the delivery id is recorded with each webhook; name another header or use a pointer")]
    DeliveryIdIsSecret(String),
    #[error("idempotency.header: '{0}' carries credentials, and the delivery id is recorded with each webhook; name another header or use a pointer")]
    DeliveryIdIsCredential(String),
    #[error("the previous secret's overlap must end at or after the rotation")]
    OverlapInThePast,
    #[error("{0} secrets are already accepted for this source (the current one and rotated-out ones whose overlap has not ended); rotate again once an overlap ends")]
    TooManySecrets(usize),
}
