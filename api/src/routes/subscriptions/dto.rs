//! Request and response bodies of `/v1/subscriptions`, and their
//! conversion into the application's typed commands. Unknown fields are
//! refused so a typo is never silently ignored.

use crate::routes::common::time;
use crate::routes::openapi::schemas::{
    EventPatternSchema, PayloadFormatSchema, SecretSchema, SignatureSchemeSchema,
    SubscriptionStatusSchema,
};
use chrono::{DateTime, Utc};
use hookline_application::error::Validator;
use hookline_application::subscriptions::{
    CreateSubscription, ListSubscriptions, ReadSubscription, SubscriptionChanges, SubscriptionView,
};
use hookline_application::AppError;
use hookline_domain::subscription::{
    Circuit, CustomHeaders, Description, PayloadFormat, RateLimit, SubscriptionStatus,
};
use hookline_domain::validation::check_free_text;
use hookline_domain::{
    AllowList, EventFilter, EventPattern, SignatureScheme, SigningSecret, SubscriptionId,
    TargetUrl, TenantId, ValidationError,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use utoipa::{IntoParams, ToSchema};

fn missing(field: &str) -> ValidationError {
    ValidationError::new(field, "is required")
}

/// `POST /v1/subscriptions`: where to send which events. The filter is
/// given either as `events` (a list) or, in the seeds' single-event form,
/// as `event`: exactly one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriptionRequest {
    /// Where deliveries are POSTed: `https://` (plain `http://` only for
    /// hosts in HOOKLINE_ALLOW_PRIVATE_TARGETS), 10–2048 characters, no
    /// user-info (`user:password@`), no port 0, and no private, loopback or
    /// otherwise non-global address unless allow-listed.
    #[serde(default)]
    #[schema(
        value_type = String,
        format = "uri",
        min_length = 10,
        max_length = 2048,
        required = true
    )]
    pub url: Option<String>,
    /// Which events to send: 1–100 exact names, `resource.*` wildcards or
    /// `*`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<EventPatternSchema>>, min_items = 1, max_items = 100)]
    pub events: Option<Vec<String>>,
    /// The seeds' single-event form: `"event": "invoice.created"` (the same
    /// as `"events": ["invoice.created"]`).
    #[serde(default)]
    #[schema(value_type = Option<EventPatternSchema>)]
    pub event: Option<String>,
    /// The signing secret, 8–500 characters without control characters;
    /// one starting with `whsec_` must continue in base64. Generated
    /// (`whsec_` + 24 random bytes) when absent.
    #[serde(default)]
    #[schema(value_type = Option<SecretSchema>)]
    pub secret: Option<String>,
    /// Extra headers sent with every delivery: at most 20, names of
    /// 1–256 token characters (not the signature, content, connection,
    /// request-id or `x-hookline-*`/`webhook-*` headers Hookline sets),
    /// values of printable ASCII up to 4096 bytes without leading or
    /// trailing spaces. Reads show the values masked.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// A note for people, at most 500 characters (newlines and tabs
    /// allowed, no other control characters); empty means none.
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    /// Defaults to `standard-webhooks`.
    #[serde(default)]
    #[schema(value_type = Option<SignatureSchemeSchema>)]
    pub signature_scheme: Option<String>,
    /// `hookline` (the envelope, default) or `raw` (the event's data only).
    #[serde(default)]
    #[schema(value_type = Option<PayloadFormatSchema>)]
    pub payload_format: Option<String>,
    /// Attempts per second at most, across every worker (1–10000);
    /// absent or null: no limit. Deliveries over it wait in the queue.
    #[serde(default, deserialize_with = "crate::routes::common::whole_number")]
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<i64>,
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
            .field("rate_limit", &self.rate_limit)
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
        let rate_limit = match self.rate_limit {
            Some(n) => v.check(RateLimit::parse(n)).map(Some),
            None => Some(None),
        };
        v.finish()?;
        match (
            url,
            events,
            secret,
            headers,
            description,
            scheme,
            format,
            rate_limit,
        ) {
            (
                Some(url),
                Some(events),
                Some(secret),
                Some(headers),
                Some(description),
                Some(signature_scheme),
                Some(payload_format),
                Some(rate_limit),
            ) => Ok(CreateSubscription {
                secret,
                headers,
                description,
                signature_scheme,
                payload_format,
                rate_limit,
                ..CreateSubscription::new(url, events)
            }),
            _ => Err(AppError::Internal(
                "validation passed without values".into(),
            )),
        }
    }
}

/// `PATCH /v1/subscriptions/{id}`: absent fields stay as they are; `null`
/// clears `description` and `headers` (and leaves `url`, `events` and
/// `signature_scheme` as they are). At least one change is required. The
/// rules of each field are those of creation. The secret changes only
/// through `POST /v1/subscriptions/{id}/rotate-secret`: a `secret` field
/// is refused with `validation_error`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriptionRequest {
    #[serde(default)]
    #[schema(value_type = Option<String>, format = "uri", min_length = 10, max_length = 2048)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<EventPatternSchema>>, min_items = 1, max_items = 100)]
    pub events: Option<Vec<String>>,
    /// Replaces every custom header; `null` or `{}` removes them all.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub headers: Option<Option<BTreeMap<String, String>>>,
    /// `null` or `""` removes it.
    #[serde(default, deserialize_with = "crate::routes::common::present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    #[schema(value_type = Option<SignatureSchemeSchema>)]
    pub signature_scheme: Option<String>,
    /// Attempts per second at most (1–10000); `null` removes the limit.
    #[serde(
        default,
        deserialize_with = "crate::routes::common::present_whole_number"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    pub rate_limit: Option<Option<i64>>,
    /// Accepted only to explain that secrets change through rotation.
    #[serde(default)]
    #[schema(ignore)]
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
            rate_limit: match self.rate_limit {
                None => None,
                Some(None) => Some(None),
                Some(Some(n)) => v.check(RateLimit::parse(n)).map(Some),
            },
            ..SubscriptionChanges::default()
        };
        v.finish()?;
        Ok(changes)
    }
}

/// `POST /v1/subscriptions/{id}/rotate-secret` (optional body).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// A secret of the client's choosing (the rules of creation);
    /// generated when absent.
    #[serde(default)]
    #[schema(value_type = Option<SecretSchema>)]
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
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// Why, at most 500 characters (no control characters but newlines
    /// and tabs); blank means "disabled through the API".
    #[serde(default)]
    #[schema(max_length = 500, pattern = r"^[^\x00-\x08\x0B-\x1F\x7F-\x9F]*$")]
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
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSubscriptionsQuery {
    /// Only subscriptions that would receive this event (wildcards count),
    /// or whose filter is this pattern.
    #[serde(default)]
    #[param(value_type = Option<EventPatternSchema>)]
    pub event: Option<String>,
    /// Disabled and deleted subscriptions too.
    #[serde(default)]
    pub include_inactive: Option<bool>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
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
            ..ListSubscriptions::default()
        })
    }
}

/// Query parameters of `GET /v1/subscriptions/{id}`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetSubscriptionQuery {
    /// Show a deleted subscription too (otherwise 404).
    #[serde(default)]
    pub include_inactive: Option<bool>,
    /// Read the subscription as it was at this time (RFC 3339); deleted
    /// ones are shown too.
    #[serde(default)]
    #[param(value_type = Option<String>, format = DateTime)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    #[schema(value_type = uuid::Uuid)]
    pub id: SubscriptionId,
    #[schema(value_type = uuid::Uuid)]
    pub tenant_id: TenantId,
    #[schema(format = "uri")]
    pub url: String,
    /// The filter, sorted and without duplicates.
    #[schema(value_type = Vec<EventPatternSchema>)]
    pub events: Vec<String>,
    /// Custom header names with masked values (in full only in create and
    /// update responses).
    pub headers: BTreeMap<String, String>,
    pub description: Option<String>,
    #[schema(value_type = SignatureSchemeSchema)]
    pub signature_scheme: SignatureScheme,
    #[schema(value_type = SubscriptionStatusSchema)]
    pub status: SubscriptionStatus,
    /// Why it was disabled, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub disabled_reason: Option<String>,
    /// Masked (`whsec_…x7Qa`) except in the response that created or
    /// rotated it.
    pub secret: String,
    /// While a rotation overlap lasts: when the previous secret stops
    /// signing deliveries.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Attempts per second at most (null: no limit).
    pub rate_limit: Option<u32>,
    /// While the circuit breaker holds deliveries back (null otherwise):
    /// when it opened and why, probes sent, when the next may go.
    pub circuit: Option<CircuitResponse>,
    /// Deliveries waiting in the queue (in current reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub backlog: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = PayloadFormatSchema)]
    pub payload_format: PayloadFormat,
    /// The channels it listens on (set through the Svix-compatible API;
    /// absent: every channel).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub channels: Option<Vec<String>>,
    /// The client's own name for it (set through the Svix-compatible API).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub uid: Option<String>,
    /// Key-value pairs set through the Svix-compatible API (absent when
    /// empty).
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
            rate_limit: v.rate_limit,
            circuit: v.circuit.map(CircuitResponse::from),
            backlog: v.backlog,
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

/// An open circuit: attempts stop but for one probe per interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitResponse {
    /// Always `open` (a closed circuit is `null`).
    #[schema(value_type = String, example = "open")]
    pub state: &'static str,
    pub opened_at: DateTime<Utc>,
    pub consecutive_failures: u32,
    /// The failed attempt that opened it.
    pub cause: CircuitCauseResponse,
    pub probes: u32,
    pub next_probe_at: DateTime<Utc>,
}

/// The failed attempt that opened a circuit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitCauseResponse {
    #[schema(value_type = uuid::Uuid)]
    pub delivery_id: hookline_domain::DeliveryId,
    #[schema(value_type = crate::routes::openapi::schemas::ErrorKindSchema)]
    pub error_kind: hookline_domain::outcome::ErrorKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub message: String,
    pub failed_at: DateTime<Utc>,
}

impl From<Circuit> for CircuitResponse {
    fn from(c: Circuit) -> Self {
        Self {
            state: "open",
            opened_at: c.opened_at,
            consecutive_failures: c.consecutive_failures,
            cause: CircuitCauseResponse {
                delivery_id: c.cause.delivery_id,
                error_kind: c.cause.error_kind,
                status_code: c.cause.status_code,
                message: c.cause.message,
                failed_at: c.cause.failed_at,
            },
            probes: c.probes,
            next_probe_at: c.next_probe_at,
        }
    }
}
