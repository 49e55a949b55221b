//! Value objects of inbound sources: their kind (how a provider proves a
//! webhook is its own), name, and the rules that turn a provider's body
//! into a Hookline event (name, data, delivery id).

use crate::ids::truncate_for_message;
use crate::pointer::JsonPointer;
use crate::{EventType, ValidationError};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MAX_SOURCE_NAME_CHARS: usize = 200;
/// Shortest and longest window within which a provider's retry of the same
/// delivery is recognised.
pub const MIN_DEDUPE_WINDOW_SECS: u32 = 60;
pub const MAX_DEDUPE_WINDOW_SECS: u32 = 30 * 24 * 3600;
pub const DEFAULT_DEDUPE_WINDOW_SECS: u32 = 24 * 3600;
/// The header a Siigo source reads its secret from unless told otherwise
/// (and the one `--via-source` provisions at Siigo).
pub const DEFAULT_SECRET_HEADER: &str = "x-hookline-secret";
/// How far a Standard Webhooks timestamp may be from Hookline's clock.
pub const STANDARD_WEBHOOKS_TOLERANCE_SECS: i64 = 300;

/// How a provider proves that a webhook is its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    /// `x-inflow-hmac-sha256`: base64 HMAC-SHA256 of the raw body, keyed
    /// with the secret's text (InFlow's own snippet).
    #[serde(rename = "inflow")]
    Inflow,
    /// A secret the subscriber asked Siigo to send in a custom header.
    #[serde(rename = "siigo")]
    Siigo,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,…`.
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    /// `X-Signature: sha256=<hex HMAC-SHA256 of the body>` (the seeds').
    #[serde(rename = "hmac-sha256-hex")]
    HmacSha256Hex,
    /// The secret itself in a header the tenant names.
    #[serde(rename = "header-secret")]
    HeaderSecret,
}

impl SourceKind {
    pub const ALL: [Self; 5] = [
        Self::Inflow,
        Self::Siigo,
        Self::StandardWebhooks,
        Self::HmacSha256Hex,
        Self::HeaderSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inflow => "inflow",
            Self::Siigo => "siigo",
            Self::StandardWebhooks => "standard-webhooks",
            Self::HmacSha256Hex => "hmac-sha256-hex",
            Self::HeaderSecret => "header-secret",
        }
    }

    /// # Errors
    /// Names the accepted kinds.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "kind",
                    "must be one of 'inflow', 'siigo', 'standard-webhooks', 'hmac-sha256-hex', 'header-secret'",
                )
            })
    }

    /// Whether the secret travels in a header the source names.
    pub fn uses_secret_header(self) -> bool {
        matches!(self, Self::Siigo | Self::HeaderSecret)
    }

    /// Where the event name comes from unless the tenant says otherwise.
    pub fn default_event_type(self) -> EventTypeRule {
        let pointer = match self {
            Self::Inflow | Self::HmacSha256Hex | Self::HeaderSecret => "/event",
            Self::Siigo => "/topic",
            Self::StandardWebhooks => "/type",
        };
        EventTypeRule::Pointer(
            JsonPointer::parse(pointer, "event_type").unwrap_or_else(|_| JsonPointer::root()),
        )
    }

    /// Which part of the body becomes the event's data unless the tenant
    /// says otherwise: InFlow's `/data`, the whole body for the others.
    pub fn default_data(self) -> JsonPointer {
        match self {
            Self::Inflow => {
                JsonPointer::parse("/data", "data").unwrap_or_else(|_| JsonPointer::root())
            }
            _ => JsonPointer::root(),
        }
    }

    /// Where the provider's delivery id is unless the tenant says
    /// otherwise: Standard Webhooks' `webhook-id`, else a body hash.
    pub fn default_delivery_key(self) -> DeliveryKey {
        match self {
            Self::StandardWebhooks => DeliveryKey::Header(HeaderName("webhook-id".into())),
            _ => DeliveryKey::BodyHash,
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A source's name: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceName(String);

impl SourceName {
    /// # Errors
    /// A [`ValidationError`] on `name`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let name = s.trim();
        if name.is_empty() || name.chars().count() > MAX_SOURCE_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("must be 1–{MAX_SOURCE_NAME_CHARS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A header name a source reads (its secret, or the provider's delivery
/// id): an HTTP token, stored in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HeaderName(String);

/// Headers a source may not read its secret or delivery id from: they
/// belong to the connection or are set by proxies.
const UNUSABLE_HEADERS: [&str; 10] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "host",
    "expect",
    "te",
    "upgrade",
    "keep-alive",
];

/// The header Hookline reads a request id from: it is recorded with every
/// event the request causes and sent on to subscribers, so it can carry
/// neither a source's secret nor be read as one.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Headers that carry credentials: a delivery id is recorded with each
/// webhook, so it is never read from one of these.
const CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

impl HeaderName {
    /// Whether the header carries credentials (`Authorization`, `Cookie`, …).
    pub fn carries_credentials(&self) -> bool {
        CREDENTIAL_HEADERS.contains(&self.0.as_str())
    }

    /// Whether Hookline reads its request id from this header.
    pub fn is_request_id(&self) -> bool {
        self.0 == REQUEST_ID_HEADER
    }

    /// # Errors
    /// A [`ValidationError`] on `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        let shown = truncate_for_message(s);
        if s.is_empty() || s.len() > 100 {
            return Err(ValidationError::new(
                field,
                "must be a header name of 1–100 characters",
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(ValidationError::new(
                field,
                format!("'{shown}' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let lower = s.to_ascii_lowercase();
        if UNUSABLE_HEADERS.contains(&lower.as_str()) {
            return Err(ValidationError::new(
                field,
                format!("'{shown}' belongs to the HTTP connection; name another header"),
            ));
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an inbound webhook's event name comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventTypeRule {
    /// A string in the body, such as InFlow's `/event`.
    Pointer(JsonPointer),
    /// Every webhook of the source is this event.
    Fixed(EventType),
}

impl EventTypeRule {
    /// `"/event"` (a pointer) or `"invoice.created"` (a fixed name).
    ///
    /// # Errors
    /// A [`ValidationError`] on `event_type`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.starts_with('/') {
            JsonPointer::parse(s, "event_type").map(Self::Pointer)
        } else if s.is_empty() {
            Err(ValidationError::new(
                "event_type",
                "must be a JSON pointer into the body (such as /event) or an event name (such as invoice.created)",
            ))
        } else {
            let name = EventType::parse(s, "event_type")?;
            if name.is_reserved() {
                return Err(ValidationError::new(
                    "event_type",
                    format!(
                        "'{}' is in Hookline's own namespace (hookline.…, in any case), which only Hookline publishes",
                        truncate_for_message(s)
                    ),
                ));
            }
            Ok(Self::Fixed(name))
        }
    }

    /// The form clients give and read.
    pub fn to_text(&self) -> String {
        match self {
            Self::Pointer(p) => p.to_string(),
            Self::Fixed(name) => name.to_string(),
        }
    }
}

/// What identifies one delivery of the provider, so its retries are
/// recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKey {
    /// A header the provider sets (e.g. `webhook-id`).
    Header(HeaderName),
    /// A string or number in the body (e.g. `/id`).
    Pointer(JsonPointer),
    /// The SHA-256 of the raw body.
    BodyHash,
}

/// How retries are recognised: by the key, within the window. A request
/// without the header or pointer value falls back to the body hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idempotency {
    pub key: DeliveryKey,
    pub window_seconds: u32,
}

impl Idempotency {
    /// # Errors
    /// A [`ValidationError`] on `idempotency.window_seconds`.
    pub fn new(key: DeliveryKey, window_seconds: Option<u32>) -> Result<Self, ValidationError> {
        let window_seconds = window_seconds.unwrap_or(DEFAULT_DEDUPE_WINDOW_SECS);
        if !(MIN_DEDUPE_WINDOW_SECS..=MAX_DEDUPE_WINDOW_SECS).contains(&window_seconds) {
            return Err(ValidationError::new(
                "idempotency.window_seconds",
                format!(
                    "must be {MIN_DEDUPE_WINDOW_SECS}–{MAX_DEDUPE_WINDOW_SECS} seconds (1 minute to 30 days)"
                ),
            ));
        }
        Ok(Self {
            key,
            window_seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::parse(kind.as_str()).unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
        assert!(SourceKind::parse("svix").is_err());
    }

    #[test]
    fn event_type_rules() {
        assert!(matches!(
            EventTypeRule::parse("/event").unwrap(),
            EventTypeRule::Pointer(_)
        ));
        assert!(matches!(
            EventTypeRule::parse("salesOrder.created").unwrap(),
            EventTypeRule::Fixed(_)
        ));
        assert!(EventTypeRule::parse("").is_err());
        for reserved in ["hookline.circuit.opened", "HookLine.x"] {
            let err = EventTypeRule::parse(reserved).unwrap_err();
            assert!(err.reason.contains("namespace"), "{}", err.reason);
        }
        assert!(EventTypeRule::parse("event").is_err());
        let json = serde_json::to_value(EventTypeRule::parse("/event").unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"pointer": "/event"}));
    }

    #[test]
    fn header_names_and_windows() {
        assert_eq!(
            HeaderName::parse("X-Secret", "h").unwrap().as_str(),
            "x-secret"
        );
        assert!(HeaderName::parse("Content-Length", "h").is_err());
        assert!(HeaderName::parse("bad name", "h").is_err());
        assert!(Idempotency::new(DeliveryKey::BodyHash, Some(10)).is_err());
        assert_eq!(
            Idempotency::new(DeliveryKey::BodyHash, None)
                .unwrap()
                .window_seconds,
            DEFAULT_DEDUPE_WINDOW_SECS
        );
        let json =
            serde_json::to_value(SourceKind::StandardWebhooks.default_delivery_key()).unwrap();
        assert_eq!(json, serde_json::json!({"header": "webhook-id"}));
        assert_eq!(
            serde_json::to_value(DeliveryKey::BodyHash).unwrap(),
            "body_hash"
        );
    }
}
