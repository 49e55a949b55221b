//! Signature schemes: how a delivery proves it came from Hookline.
//!
//! * `standard-webhooks` (default): `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
//! * `hmac-sha256-hex`: `X-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
//! * `hmac-sha256-base64`: `x-inflow-hmac-sha256: <base64 HMAC-SHA256(secret, body)>`.
//! * `svix`: Svix's headers `svix-id`, `svix-timestamp`, `svix-signature`
//!   (signed as Standard Webhooks) and the same values as `webhook-*`. The
//!   id is the message's (`msg_<event id>`), the same for every
//!   subscription and attempt, where the other schemes send the delivery id.
//!
//! During a secret rotation overlap each signature header carries one
//! signature per valid secret, newest first, separated by a space.

use crate::sealed::SigningSecret;
use crate::ValidationError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

type HmacSha256 = Hmac<Sha256>;

pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";
pub const HEADER_X_SIGNATURE: &str = "x-signature";
pub const HEADER_INFLOW_SIGNATURE: &str = "x-inflow-hmac-sha256";
pub const HEADER_SVIX_ID: &str = "svix-id";
pub const HEADER_SVIX_TIMESTAMP: &str = "svix-timestamp";
pub const HEADER_SVIX_SIGNATURE: &str = "svix-signature";
/// The prefix of a message id as Svix shows it.
pub const SVIX_MESSAGE_PREFIX: &str = "msg_";

/// A published event's id as Svix shows it: `msg_` and the UUID's 32 hex
/// digits. The `svix` scheme signs deliveries with it.
pub fn svix_message_id(event: &crate::EventId) -> String {
    format!("{SVIX_MESSAGE_PREFIX}{}", event.as_uuid().simple())
}

/// Which signature a subscription's deliveries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SignatureScheme {
    #[default]
    #[serde(rename = "standard-webhooks")]
    StandardWebhooks,
    #[serde(rename = "hmac-sha256-hex")]
    HmacSha256Hex,
    #[serde(rename = "hmac-sha256-base64")]
    HmacSha256Base64,
    #[serde(rename = "svix")]
    Svix,
}

impl SignatureScheme {
    pub const ALL: [Self; 4] = [
        Self::StandardWebhooks,
        Self::HmacSha256Hex,
        Self::HmacSha256Base64,
        Self::Svix,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::HmacSha256Hex => "hmac-sha256-hex",
            Self::HmacSha256Base64 => "hmac-sha256-base64",
            Self::Svix => "svix",
        }
    }

    /// Whether a request carries a signature by every secret that signs
    /// (Standard Webhooks, `svix`), so a rotated-out secret keeps
    /// verifying through the rotation's overlap; the legacy schemes carry
    /// one, by the current secret only.
    pub fn signs_with_every_secret(self) -> bool {
        matches!(self, Self::StandardWebhooks | Self::Svix)
    }

    /// The id a delivery's signature and `webhook-id` carry: the delivery
    /// id, or for `svix` the message id (the same for every subscription).
    pub fn webhook_id(self, delivery: &crate::DeliveryId, event: &crate::EventId) -> String {
        match self {
            Self::Svix => svix_message_id(event),
            _ => delivery.to_string(),
        }
    }

    /// # Errors
    /// Names the accepted schemes.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "signature_scheme",
                    "must be one of 'standard-webhooks', 'hmac-sha256-hex', 'hmac-sha256-base64', 'svix'",
                )
            })
    }

    /// Header names this scheme sets; custom headers may not override them.
    pub fn header_names() -> [&'static str; 8] {
        [
            HEADER_WEBHOOK_ID,
            HEADER_WEBHOOK_TIMESTAMP,
            HEADER_WEBHOOK_SIGNATURE,
            HEADER_X_SIGNATURE,
            HEADER_INFLOW_SIGNATURE,
            HEADER_SVIX_ID,
            HEADER_SVIX_TIMESTAMP,
            HEADER_SVIX_SIGNATURE,
        ]
    }
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignatureScheme {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A key prepared once per secret and scheme, so signing an attempt does
/// not re-derive it.
#[derive(Clone)]
pub struct SigningKey {
    scheme: SignatureScheme,
    key: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, redacted)", self.scheme)
    }
}

impl SigningKey {
    pub fn new(scheme: SignatureScheme, secret: &SigningSecret) -> Self {
        let key = match scheme {
            SignatureScheme::StandardWebhooks | SignatureScheme::Svix => {
                secret.standard_webhooks_key()
            }
            SignatureScheme::HmacSha256Hex | SignatureScheme::HmacSha256Base64 => {
                secret.raw_key().to_vec()
            }
        };
        Self { scheme, key }
    }

    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac(),
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// One signature value in the scheme's format.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        match self.scheme {
            SignatureScheme::StandardWebhooks | SignatureScheme::Svix => {
                let ts = timestamp.to_string();
                let mac = self.mac(&[message_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                format!("v1,{}", STANDARD.encode(mac))
            }
            SignatureScheme::HmacSha256Hex => format!("sha256={}", hex::encode(self.mac(&[body]))),
            SignatureScheme::HmacSha256Base64 => STANDARD.encode(self.mac(&[body])),
        }
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs.
    panic!("HMAC-SHA256 rejected a key; HMAC accepts keys of any length")
}

/// The signature headers of one attempt. `keys` holds the current key first
/// and, while rotation overlaps last, the replaced ones. Standard Webhooks
/// (and `svix`) carries one signature per key (space-separated); the legacy
/// schemes carry a single signature, by the current key.
pub fn signature_headers(
    keys: &[SigningKey],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let Some(first) = keys.first() else {
        return Vec::new();
    };
    let all_signatures = || {
        keys.iter()
            .map(|k| k.sign(message_id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match first.scheme() {
        // Keep in step with `SignatureScheme::signs_with_every_secret`.
        SignatureScheme::StandardWebhooks => vec![
            (HEADER_WEBHOOK_ID, message_id.to_string()),
            (HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string()),
            (HEADER_WEBHOOK_SIGNATURE, all_signatures()),
        ],
        SignatureScheme::Svix => {
            let signatures = all_signatures();
            vec![
                (HEADER_SVIX_ID, message_id.to_string()),
                (HEADER_SVIX_TIMESTAMP, timestamp.to_string()),
                (HEADER_SVIX_SIGNATURE, signatures.clone()),
                (HEADER_WEBHOOK_ID, message_id.to_string()),
                (HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string()),
                (HEADER_WEBHOOK_SIGNATURE, signatures),
            ]
        }
        SignatureScheme::HmacSha256Hex => vec![
            (HEADER_WEBHOOK_ID, message_id.to_string()),
            (HEADER_X_SIGNATURE, first.sign(message_id, timestamp, body)),
        ],
        SignatureScheme::HmacSha256Base64 => vec![
            (HEADER_WEBHOOK_ID, message_id.to_string()),
            (
                HEADER_INFLOW_SIGNATURE,
                first.sign(message_id, timestamp, body),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_spec_test_vector() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SigningKey::new(SignatureScheme::StandardWebhooks, &secret);
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn hex_scheme_signs_body_with_raw_secret() {
        // echo -n '{"a":1}' | openssl dgst -sha256 -hmac 'my-webhook-secret'
        let secret = SigningSecret::parse("my-webhook-secret").unwrap();
        let key = SigningKey::new(SignatureScheme::HmacSha256Hex, &secret);
        let sig = key.sign("ignored", 0, br#"{"a":1}"#);
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        let b64 =
            SigningKey::new(SignatureScheme::HmacSha256Base64, &secret).sign("x", 1, br#"{"a":1}"#);
        let hex_part = &sig[7..];
        assert_eq!(hex::encode(STANDARD.decode(b64).unwrap()), hex_part);
    }

    #[test]
    fn rotation_overlap_carries_both_signatures() {
        let new = SigningSecret::parse("whsec_AAECAwQFBgc=").unwrap();
        let old = SigningSecret::parse("whsec_CAkKCwwNDg8=").unwrap();
        let keys = [
            SigningKey::new(SignatureScheme::StandardWebhooks, &new),
            SigningKey::new(SignatureScheme::StandardWebhooks, &old),
        ];
        let headers = signature_headers(&keys, "id1", 10, b"{}");
        let sig = &headers
            .iter()
            .find(|(n, _)| *n == HEADER_WEBHOOK_SIGNATURE)
            .unwrap()
            .1;
        let parts: Vec<&str> = sig.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], keys[0].sign("id1", 10, b"{}"));
        assert_eq!(parts[1], keys[1].sign("id1", 10, b"{}"));
    }

    #[test]
    fn svix_scheme_sends_both_header_sets_signed_alike() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SigningKey::new(SignatureScheme::Svix, &secret);
        let headers = signature_headers(
            std::slice::from_ref(&key),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(
            get(HEADER_SVIX_SIGNATURE),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(get(HEADER_SVIX_SIGNATURE), get(HEADER_WEBHOOK_SIGNATURE));
        assert_eq!(get(HEADER_SVIX_ID), "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(get(HEADER_WEBHOOK_ID), get(HEADER_SVIX_ID));
        assert_eq!(get(HEADER_SVIX_TIMESTAMP), "1614265330");
    }

    #[test]
    fn svix_ids_are_the_message_not_the_delivery() {
        let event = crate::EventId::from_uuid(uuid::Uuid::from_u128(0xabc));
        let delivery = crate::DeliveryId::from_uuid(uuid::Uuid::from_u128(0xdef));
        assert_eq!(
            SignatureScheme::Svix.webhook_id(&delivery, &event),
            "msg_00000000000000000000000000000abc"
        );
        assert_eq!(
            SignatureScheme::StandardWebhooks.webhook_id(&delivery, &event),
            delivery.to_string()
        );
    }

    #[test]
    fn debug_never_prints_key_material() {
        let secret = SigningSecret::parse("super-secret-value").unwrap();
        let key = SigningKey::new(SignatureScheme::HmacSha256Hex, &secret);
        assert!(!format!("{key:?}").contains("super"));
    }
}
