//! How a source looks in responses: everything but the secret, which is
//! masked except in the answers that create or rotate it.

use crate::ports::RejectionRecord;
use chrono::{DateTime, Utc};
use hookline_domain::source::{DeliveryKey, SourceKind, SourceState, SourceStatus};
use hookline_domain::{SourceId, TenantId};

/// Associated data binding a sealed secret to its source.
pub const SEALING_CONTEXT_SOURCE_SECRET: &str = "source-secret";

pub fn source_sealing_context(id: SourceId) -> String {
    format!("{SEALING_CONTEXT_SOURCE_SECRET}:{id}")
}

/// The path providers deliver to.
pub fn ingest_path(id: SourceId) -> String {
    format!("/in/{id}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyView {
    pub header: Option<String>,
    pub pointer: Option<String>,
    pub window_seconds: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceView {
    pub id: SourceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub kind: SourceKind,
    /// Where the provider delivers: `{HOOKLINE_PUBLIC_URL}/in/{id}`.
    pub ingest_url: String,
    pub header_name: Option<String>,
    pub event_type: String,
    pub data: String,
    pub idempotency: IdempotencyView,
    pub status: SourceStatus,
    /// Masked except in the answers that create or rotate it.
    pub secret: String,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SourceView {
    pub fn render(state: &SourceState, public_url: &str, now: DateTime<Utc>) -> Self {
        let (header, pointer) = match &state.idempotency.key {
            DeliveryKey::Header(h) => (Some(h.as_str().to_string()), None),
            DeliveryKey::Pointer(p) => (None, Some(p.to_string())),
            DeliveryKey::BodyHash => (None, None),
        };
        Self {
            id: state.id,
            tenant_id: state.tenant_id,
            name: state.name.as_str().to_string(),
            kind: state.kind,
            ingest_url: format!(
                "{}{}",
                public_url.trim_end_matches('/'),
                ingest_path(state.id)
            ),
            header_name: state.header_name.as_ref().map(|h| h.as_str().to_string()),
            event_type: state.event_type.to_text(),
            data: state.data.to_string(),
            idempotency: IdempotencyView {
                header,
                pointer,
                window_seconds: state.idempotency.window_seconds,
            },
            status: state.status,
            secret: state.secret_hint.to_string(),
            previous_secret_expires_at: state.previous_secrets_at(now).map(|p| p.expires_at).max(),
            created_at: state.created_at,
            updated_at: state.updated_at,
        }
    }
}

/// A refused inbound request as its tenant sees it.
pub type RejectionView = RejectionRecord;
