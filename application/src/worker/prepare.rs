//! What an attempt sends: the subscription's current URL, headers and
//! signing keys (prepared once per subscription version), and the request
//! built from them.

use crate::error::AppError;
use crate::ports::{DueDelivery, OutgoingRequest, SecretCipher};
use crate::subscriptions::{open_headers, sealing_context, SEALING_CONTEXT_SECRET};
use chrono::{DateTime, Utc};
use hookline_domain::signature::{signature_headers, SigningKey};
use hookline_domain::subscription::{
    PayloadFormat, RateLimit, SubscriptionState, SubscriptionStatus,
};
use hookline_domain::{DeliveryId, Sealed, SigningSecret, SubscriptionId};
use std::fmt;
use std::sync::Arc;

pub struct Prepared {
    pub subscription_id: SubscriptionId,
    pub status: SubscriptionStatus,
    pub url: String,
    /// `host:port` of the URL: the fairness shares' destination.
    pub destination: std::sync::Arc<str>,
    pub headers: Vec<(String, String)>,
    pub current: SigningKey,
    /// Replaced secrets' keys and when each stops signing.
    pub previous: Vec<(SigningKey, DateTime<Utc>)>,
    pub rate_limit: Option<RateLimit>,
    /// While the circuit is open: the delivery let through as a probe (if
    /// any) and when the next probe may go.
    pub circuit: Option<(Option<DeliveryId>, DateTime<Utc>)>,
    pub updated_at: DateTime<Utc>,
    pub payload_format: PayloadFormat,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("subscription_id", &self.subscription_id)
            .field("status", &self.status)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Opens a subscription's sealed secret.
///
/// # Errors
/// When the key is missing or the value was altered.
pub fn unseal_secret(
    sealed: &Sealed,
    id: SubscriptionId,
    cipher: &dyn SecretCipher,
) -> Result<SigningSecret, AppError> {
    let bytes = cipher.open(sealed, &sealing_context(SEALING_CONTEXT_SECRET, id))?;
    String::from_utf8(bytes)
        .map(SigningSecret::from_unsealed)
        .map_err(|_| AppError::Internal(format!("the secret of {id} is not UTF-8")))
}

impl Prepared {
    /// # Errors
    /// When a sealed value cannot be opened (wrong key).
    pub fn build(state: &SubscriptionState, cipher: &dyn SecretCipher) -> Result<Self, AppError> {
        let secret = unseal_secret(&state.secret, state.id, cipher)?;
        let previous = state
            .previous_secrets
            .iter()
            .rev()
            .map(|p| {
                Ok((
                    SigningKey::new(
                        state.signature_scheme,
                        &unseal_secret(&p.secret, state.id, cipher)?,
                    ),
                    p.expires_at,
                ))
            })
            .collect::<Result<_, AppError>>()?;
        Ok(Self {
            subscription_id: state.id,
            status: state.status,
            url: state.url.to_string(),
            destination: std::sync::Arc::from(state.url.destination()),
            headers: open_headers(state, cipher)?.into_iter().collect(),
            current: SigningKey::new(state.signature_scheme, &secret),
            previous,
            rate_limit: state.rate_limit,
            circuit: state.circuit.as_ref().map(|c| (c.probe, c.next_probe_at)),
            updated_at: state.updated_at,
            payload_format: state.payload_format,
        })
    }

    /// The keys that sign at `now`: the current one first, then each
    /// replaced one (newest first) while its overlap lasts.
    pub fn keys_at(&self, now: DateTime<Utc>) -> Vec<SigningKey> {
        let mut keys = vec![self.current.clone()];
        keys.extend(
            self.previous
                .iter()
                .filter(|(_, until)| now < *until)
                .map(|(key, _)| key.clone()),
        );
        keys
    }
}

/// The signed request for one attempt (`body` in the subscription's
/// payload format). The signature's id is the delivery's, or for the `svix`
/// scheme the message's.
pub fn request_for(
    due: &DueDelivery,
    body: &Arc<str>,
    target: &Prepared,
    user_agent: &str,
    now: DateTime<Utc>,
) -> OutgoingRequest {
    let message_id = target
        .current
        .scheme()
        .webhook_id(&due.delivery_id, &due.event_id);
    let mut headers: Vec<(String, String)> = vec![
        ("content-type".into(), "application/json".into()),
        ("user-agent".into(), user_agent.to_string()),
        ("x-event".into(), due.event_type.clone()),
        ("x-hookline-delivery".into(), due.delivery_id.to_string()),
        ("x-hookline-attempt".into(), due.attempt.to_string()),
    ];
    if let Some(request_id) = &due.request_id {
        headers.push(("x-request-id".into(), request_id.clone()));
    }
    headers.extend(target.headers.iter().cloned());
    for (name, value) in signature_headers(
        &target.keys_at(now),
        &message_id,
        now.timestamp(),
        body.as_bytes(),
    ) {
        headers.push((name.to_string(), value));
    }
    OutgoingRequest {
        url: target.url.clone(),
        headers,
        body: body.clone(),
    }
}
