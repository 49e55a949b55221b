//! What tenants ask of sources, as typed values (the API turns request
//! bodies into these).

use crate::pagination::PageRequest;
use hookline_domain::pointer::JsonPointer;
use hookline_domain::source::{EventTypeRule, HeaderName, Idempotency, SourceKind, SourceName};
use hookline_domain::SigningSecret;

/// Creates a source; the secret is generated when none is given, and the
/// rules default to the kind's (see `SourceKind::default_*`).
#[derive(Debug, Clone)]
pub struct NewSource {
    pub name: SourceName,
    pub kind: SourceKind,
    pub secret: Option<SigningSecret>,
    pub header_name: Option<HeaderName>,
    pub event_type: Option<EventTypeRule>,
    pub data: Option<JsonPointer>,
    pub idempotency: Option<Idempotency>,
}

/// A partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    pub name: Option<SourceName>,
    pub header_name: Option<HeaderName>,
    pub event_type: Option<EventTypeRule>,
    pub data: Option<JsonPointer>,
    pub idempotency: Option<Idempotency>,
}

impl SourceChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.header_name.is_none()
            && self.event_type.is_none()
            && self.data.is_none()
            && self.idempotency.is_none()
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListSources {
    pub include_deleted: bool,
    pub page: PageRequest,
}
