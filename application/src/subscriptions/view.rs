//! How a subscription looks in responses: everything but the secret and
//! the custom header values, which appear masked (in full only in the
//! response that sets them).

use crate::error::AppError;
use crate::ports::SecretCipher;
use chrono::{DateTime, Utc};
use hookline_domain::channel::Channels;
use hookline_domain::metadata::Metadata;
use hookline_domain::subscription::{
    Circuit, PayloadFormat, SubscriptionState, SubscriptionStatus,
};
use hookline_domain::uid::Uid;
use hookline_domain::{SignatureScheme, SubscriptionId, TenantId};
use std::collections::BTreeMap;

/// Associated data binding a sealed secret to its subscription.
pub const SEALING_CONTEXT_SECRET: &str = "subscription-secret";
/// Associated data binding sealed custom headers to their subscription.
pub const SEALING_CONTEXT_HEADERS: &str = "subscription-headers";

pub fn sealing_context(kind: &str, id: SubscriptionId) -> String {
    format!("{kind}:{id}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionView {
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub url: String,
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    pub signature_scheme: SignatureScheme,
    pub status: SubscriptionStatus,
    pub disabled_reason: Option<String>,
    /// Masked (`whsec_…x7Qa`) except in the response that created or
    /// rotated it.
    pub secret: String,
    /// While a rotation overlap lasts: when the previous secret stops
    /// signing deliveries.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Attempts per second.
    pub rate_limit: Option<u32>,
    /// Set while the circuit breaker holds deliveries back.
    pub circuit: Option<Circuit>,
    /// Deliveries waiting in the queue (current reads only).
    pub backlog: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub payload_format: PayloadFormat,
    pub channels: Option<Channels>,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
}

/// Opens a subscription's sealed custom headers.
///
/// # Errors
/// When the sealing key is missing or the value was altered.
pub fn open_headers(
    state: &SubscriptionState,
    cipher: &dyn SecretCipher,
) -> Result<BTreeMap<String, String>, AppError> {
    let Some(sealed) = &state.headers else {
        return Ok(BTreeMap::new());
    };
    let bytes = cipher.open(sealed, &sealing_context(SEALING_CONTEXT_HEADERS, state.id))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::Internal(format!("sealed headers of {} are not a map: {e}", state.id))
    })
}

/// A header value as reads show it: they often carry credentials, so only
/// their last four characters (of values long enough to keep the rest
/// unguessable), like the secret's hint.
pub fn mask_header_value(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() >= 12 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("…{tail}")
    } else {
        "…".to_string()
    }
}

impl SubscriptionView {
    /// The subscription as reads show it: secret and header values masked.
    ///
    /// # Errors
    /// When the headers cannot be unsealed.
    pub fn render(
        state: &SubscriptionState,
        cipher: &dyn SecretCipher,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        let mut view = Self::render_revealed(state, cipher, now)?;
        for value in view.headers.values_mut() {
            *value = mask_header_value(value);
        }
        Ok(view)
    }

    /// With the header values in full: only for the answers to the
    /// requests that set them (create and update).
    ///
    /// # Errors
    /// When the headers cannot be unsealed.
    pub fn render_revealed(
        state: &SubscriptionState,
        cipher: &dyn SecretCipher,
        now: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        Ok(Self {
            id: state.id,
            tenant_id: state.tenant_id,
            url: state.url.to_string(),
            events: state.events.to_strings(),
            headers: open_headers(state, cipher)?,
            description: state.description.as_ref().map(|d| d.as_str().to_string()),
            signature_scheme: state.signature_scheme,
            status: state.status,
            disabled_reason: state.disabled_reason.clone(),
            secret: state.secret_hint.to_string(),
            // The legacy schemes sign with the current secret only: no
            // previous secret signs, whatever the overlap.
            previous_secret_expires_at: state
                .previous_secrets_at(now)
                .map(|p| p.expires_at)
                .max()
                .filter(|_| state.signature_scheme.signs_with_every_secret()),
            rate_limit: state.rate_limit.map(|r| r.per_second()),
            // A disabled subscription sends nothing and has no probes due
            // (enabling it clears the circuit): not shown as open.
            circuit: state
                .circuit
                .clone()
                .filter(|_| state.status == SubscriptionStatus::Active),
            backlog: None,
            created_at: state.created_at,
            updated_at: state.updated_at,
            payload_format: state.payload_format,
            channels: state.channels.clone(),
            uid: state.uid.clone(),
            metadata: state.metadata.clone(),
        })
    }
}
