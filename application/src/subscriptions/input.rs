//! Request bodies of the subscription use cases, as clients send them.
//! Unknown fields are refused so a typo is never silently ignored.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionInput {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// The seeds' single-event form: `"event": "invoice.created"`.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub signature_scheme: Option<String>,
}

impl fmt::Debug for CreateSubscriptionInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSubscriptionInput")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("event", &self.event)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field(
                "headers",
                &self.headers.as_ref().map(|h| h.keys().collect::<Vec<_>>()),
            )
            .field("description", &self.description)
            .field("signature_scheme", &self.signature_scheme)
            .finish()
    }
}

/// A partial update: absent fields stay as they are; `null` clears
/// `description` and `headers`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionInput {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub headers: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub signature_scheme: Option<String>,
    /// Accepted only to explain that secrets change through rotation.
    #[serde(default)]
    pub secret: Option<serde_json::Value>,
}

impl fmt::Debug for UpdateSubscriptionInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSubscriptionInput")
            .field("url", &self.url)
            .field("events", &self.events)
            .field(
                "headers",
                &self
                    .headers
                    .as_ref()
                    .map(|h| h.as_ref().map(|m| m.keys().collect::<Vec<_>>())),
            )
            .field("description", &self.description)
            .field("signature_scheme", &self.signature_scheme)
            .finish_non_exhaustive()
    }
}

fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretInput {
    /// A secret of the client's choosing; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

impl fmt::Debug for RotateSecretInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateSecretInput")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Query parameters of `GET /v1/subscriptions`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListSubscriptionsParams {
    /// Only subscriptions that would receive this event (wildcards count).
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub include_inactive: Option<bool>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Query parameters of `GET /v1/subscriptions/{id}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GetSubscriptionParams {
    #[serde(default)]
    pub include_inactive: Option<bool>,
    /// Read the subscription as it was at this time (RFC 3339); deleted
    /// ones are shown too.
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Body of `POST /v1/subscriptions/{id}/disable` (optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DisableInput {
    #[serde(default)]
    pub reason: Option<String>,
}
