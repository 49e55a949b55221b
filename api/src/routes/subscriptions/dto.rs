//! Request and response bodies of `/v1/subscriptions`, and their
//! conversion into the application's typed commands. Unknown fields are
//! refused so a typo is never silently ignored.

use crate::routes::common::time;
use chrono::{DateTime, Utc};
use hookline_application::error::Validator;
use hookline_application::subscriptions::{
    CreateSubscription, ListSubscriptions, ReadSubscription, SubscriptionChanges, SubscriptionView,
};
use hookline_application::AppError;
use hookline_domain::subscription::{
    CustomHeaders, Description, PayloadFormat, SubscriptionStatus,
};
use hookline_domain::validation::check_free_text;
use hookline_domain::{
    AllowList, EventFilter, EventPattern, SignatureScheme, SigningSecret, SubscriptionId,
    TargetUrl, TenantId, ValidationError,
};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

fn missing(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

/// `POST /v1/subscriptions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
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
    /// `hookline` (the envelope, default) or `raw` (the event's data only).
    #[serde(default)]
    pub payload_format: Option<String>,
}

impl fmt::Debug for CreateSubscriptionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSubscriptionRequest")
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
            .field("payload_format", &self.payload_format)
            .finish()
    }
}

fn description(d: Option<&str>) -> Result<Option<Description>, ValidationError> {
    match d {
        Some("") | None => Ok(None),
        Some(d) => Description::parse(d).map(Some),
    }
}

/// The filter entries as the request lists them (invalid ones left out;
/// `into_command` reports those), for the catalogue's warnings.
fn listed(items: &[String]) -> Vec<EventPattern> {
    items
        .iter()
        .map(|s| EventPattern::parse(s, "events").unwrap_or(EventPattern::All))
        .collect()
}

impl CreateSubscriptionRequest {
    /// The filter entries in request order.
    pub fn patterns(&self) -> Vec<EventPattern> {
        match (&self.events, &self.event) {
            (Some(list), _) => listed(list),
            (None, Some(one)) => listed(std::slice::from_ref(one)),
            (None, None) => vec![],
        }
    }

    /// The command, or every broken field at once.
    ///
    /// # Errors
    /// Validation errors naming each bad field.
    pub fn into_command(self, allow: &AllowList) -> Result<CreateSubscription, AppError> {
        let mut v = Validator::default();
        let url = match &self.url {
            Some(u) => v.check(TargetUrl::parse(u, allow)),
            None => {
                v.fail(missing("url"));
                None
            }
        };
        let events = match (&self.events, &self.event) {
            (Some(list), None) => v.check(EventFilter::parse(list)),
            (None, Some(one)) => v.check(EventFilter::parse(std::slice::from_ref(one))),
            (Some(_), Some(_)) => {
                v.fail(ValidationError::new(
                    "events",
                    "give either 'events' (a list) or 'event', not both",
                ));
                None
            }
            (None, None) => {
                v.fail(missing("events"));
                None
            }
        };
        let secret = match self.secret.as_deref() {
            Some(s) => v.check(SigningSecret::parse(s)).map(Some),
            None => Some(None),
        };
        let headers = v.check(CustomHeaders::parse(self.headers.unwrap_or_default()));
        let description = v.check(description(self.description.as_deref()));
        let scheme = match self.signature_scheme.as_deref() {
            Some(s) => v.check(SignatureScheme::parse(s)),
            None => Some(SignatureScheme::default()),
        };
        let format = match self.payload_format.as_deref() {
            Some(f) => v.check(PayloadFormat::parse(f)),
            None => Some(PayloadFormat::default()),
        };
        v.finish()?;
        match (url, events, secret, headers, description, scheme, format) {
            (
                Some(url),
                Some(events),
                Some(secret),
                Some(headers),
                Some(description),
                Some(signature_scheme),
                Some(payload_format),
            ) => Ok(CreateSubscription {
                secret,
                headers,
                description,
                signature_scheme,
                payload_format,
                ..CreateSubscription::new(url, events)
            }),
            _ => Err(AppError::Internal(
                "validation passed without values".into(),
            )),
        }
    }
}

/// `PATCH /v1/subscriptions/{id}`: absent fields stay as they are; `null`
/// clears `description` and `headers`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionRequest {
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

impl fmt::Debug for UpdateSubscriptionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateSubscriptionRequest")
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

impl UpdateSubscriptionRequest {
    /// The filter entries in request order (none when unchanged).
    pub fn patterns(&self) -> Vec<EventPattern> {
        self.events.as_deref().map(listed).unwrap_or_default()
    }

    /// # Errors
    /// Validation errors naming each bad field; 400 for an empty change.
    pub fn into_changes(
        self,
        id: SubscriptionId,
        allow: &AllowList,
    ) -> Result<SubscriptionChanges, AppError> {
        if self.secret.is_some() {
            return Err(ValidationError::new(
                "secret",
                format!(
                    "cannot be changed with PATCH; use POST /v1/subscriptions/{id}/rotate-secret"
                ),
            )
            .into());
        }
        let mut v = Validator::default();
        let changes = SubscriptionChanges {
            url: self
                .url
                .as_deref()
                .and_then(|u| v.check(TargetUrl::parse(u, allow))),
            events: self
                .events
                .as_ref()
                .and_then(|e| v.check(EventFilter::parse(e))),
            headers: match self.headers {
                None => None,
                Some(map) => v.check(CustomHeaders::parse(map.unwrap_or_default())),
            },
            description: match self.description {
                None => None,
                Some(d) => v.check(description(d.as_deref())),
            },
            signature_scheme: self
                .signature_scheme
                .as_deref()
                .and_then(|s| v.check(SignatureScheme::parse(s))),
            ..SubscriptionChanges::default()
        };
        v.finish()?;
        Ok(changes)
    }
}

/// `POST /v1/subscriptions/{id}/rotate-secret` (optional body).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// A secret of the client's choosing; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

impl fmt::Debug for RotateSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RotateSecretRequest")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl RotateSecretRequest {
    /// # Errors
    /// A validation error for a malformed secret.
    pub fn into_secret(self) -> Result<Option<SigningSecret>, AppError> {
        Ok(self
            .secret
            .as_deref()
            .map(SigningSecret::parse)
            .transpose()?)
    }
}

/// `POST /v1/subscriptions/{id}/disable` (optional body).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

impl DisableRequest {
    /// The reason given, or a default that says who disabled it.
    ///
    /// # Errors
    /// A validation error naming `reason`.
    pub fn into_reason(self) -> Result<String, AppError> {
        let reason = self
            .reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "disabled through the API".to_string());
        check_free_text("reason", &reason, 500)?;
        Ok(reason)
    }
}

/// Query parameters of `GET /v1/subscriptions`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListSubscriptionsQuery {
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

impl ListSubscriptionsQuery {
    /// # Errors
    /// Validation errors for `event`, `limit` or `cursor`.
    pub fn into_query(self) -> Result<ListSubscriptions, AppError> {
        Ok(ListSubscriptions {
            event: self
                .event
                .as_deref()
                .map(|e| EventPattern::parse(e, "event"))
                .transpose()?,
            include_inactive: self.include_inactive == Some(true),
            page: hookline_application::pagination::PageRequest::parse(
                self.limit,
                self.cursor.as_deref(),
            )?,
        })
    }
}

/// Query parameters of `GET /v1/subscriptions/{id}`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GetSubscriptionQuery {
    #[serde(default)]
    pub include_inactive: Option<bool>,
    /// Read the subscription as it was at this time (RFC 3339); deleted
    /// ones are shown too.
    #[serde(default)]
    pub as_of: Option<String>,
}

impl GetSubscriptionQuery {
    /// # Errors
    /// A validation error for `as_of`.
    pub fn into_query(self) -> Result<ReadSubscription, AppError> {
        Ok(ReadSubscription {
            include_inactive: self.include_inactive == Some(true),
            as_of: time("as_of", self.as_of.as_deref())?,
        })
    }
}

/// A subscription: everything but the secret, which appears masked (the
/// full value only in the response that creates or rotates it).
#[derive(Debug, Serialize)]
pub struct SubscriptionResponse {
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub url: String,
    pub events: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    pub signature_scheme: SignatureScheme,
    pub status: SubscriptionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Masked (`whsec_…x7Qa`) except in the response that created or
    /// rotated it.
    pub secret: String,
    /// While a rotation overlap lasts: when the previous secret stops
    /// signing deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub payload_format: PayloadFormat,
    /// The channels it listens on (absent: every channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The client's own name for it (set through the Svix-compatible API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Filter entries naming event types the catalogue does not have
    /// (the subscription is saved all the same), in create and update
    /// responses only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SubscriptionResponse {
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }
}

impl From<SubscriptionView> for SubscriptionResponse {
    fn from(v: SubscriptionView) -> Self {
        Self {
            id: v.id,
            tenant_id: v.tenant_id,
            url: v.url,
            events: v.events,
            headers: v.headers,
            description: v.description,
            signature_scheme: v.signature_scheme,
            status: v.status,
            disabled_reason: v.disabled_reason,
            secret: v.secret,
            previous_secret_expires_at: v.previous_secret_expires_at,
            created_at: v.created_at,
            updated_at: v.updated_at,
            payload_format: v.payload_format,
            channels: v.channels.as_ref().map(|c| c.to_strings()),
            uid: v.uid.as_ref().map(|u| u.as_str().to_string()),
            metadata: v.metadata.as_map().clone(),
            warnings: vec![],
        }
    }
}
