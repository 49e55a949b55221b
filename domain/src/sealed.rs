//! Secrets: the plaintext signing secret (which never prints), its masked
//! hint, and the sealed (AEAD-encrypted) form that events and tables carry.
//!
//! Sealing itself needs a key and randomness, so it lives behind the
//! application's `SecretCipher` port; the domain only carries the result.

use crate::ValidationError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MIN_SECRET_LEN: usize = 8;
pub const MAX_SECRET_LEN: usize = 500;
/// Prefix of generated secrets (Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a generated secret.
pub const GENERATED_SECRET_BYTES: usize = 24;

/// A subscription's signing secret in plaintext. `Debug` and `Display`
/// print a masked form only; the plaintext is reachable through
/// [`SigningSecret::expose`], whose name makes each use visible in review.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// A secret supplied by a client: 8–500 characters, no control
    /// characters; one that starts with `whsec_` must continue in base64.
    ///
    /// # Errors
    /// A [`ValidationError`] on field `secret`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let len = s.chars().count();
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&len) {
            return Err(ValidationError::new(
                "secret",
                format!(
                    "must be between {MIN_SECRET_LEN} and {MAX_SECRET_LEN} characters (got {len})"
                ),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "secret",
                "must not contain control characters",
            ));
        }
        if let Some(rest) = s.strip_prefix(SECRET_PREFIX) {
            match STANDARD.decode(rest) {
                Ok(bytes) if !bytes.is_empty() => {}
                _ => {
                    return Err(ValidationError::new(
                        "secret",
                        "a secret starting with 'whsec_' must continue with base64 (as in whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw)",
                    ))
                }
            }
        }
        Ok(Self(s.to_string()))
    }

    /// A generated secret: `whsec_` + base64 of the given random bytes.
    pub fn from_random_bytes(bytes: &[u8; GENERATED_SECRET_BYTES]) -> Self {
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Rebuilds a secret from decrypted bytes (no validation: it was
    /// validated when it was sealed).
    pub fn from_unsealed(s: String) -> Self {
        Self(s)
    }

    /// The plaintext. Only for signing and for the one response that hands
    /// a new secret to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form shown after creation, such as `whsec_…x7Qa`.
    pub fn hint(&self) -> SecretHint {
        SecretHint::of(&self.0)
    }

    /// The HMAC key for Standard Webhooks: the base64-decoded part after
    /// `whsec_`, or the UTF-8 bytes of a secret without that prefix.
    pub fn standard_webhooks_key(&self) -> Vec<u8> {
        self.0
            .strip_prefix(SECRET_PREFIX)
            .and_then(|rest| STANDARD.decode(rest).ok())
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }

    /// The HMAC key for the body-only schemes: the secret's UTF-8 bytes.
    pub fn raw_key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({})", self.hint())
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hint().fmt(f)
    }
}

/// The masked form of a secret: its `whsec_` prefix (if any) and its last
/// four characters (only when the secret is long enough that four
/// characters give little away).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHint(String);

impl SecretHint {
    pub fn of(secret: &str) -> Self {
        let prefix = if secret.starts_with(SECRET_PREFIX) {
            SECRET_PREFIX
        } else {
            ""
        };
        let chars: Vec<char> = secret.chars().collect();
        let tail: String = if chars.len() >= 16 {
            chars[chars.len() - 4..].iter().collect()
        } else {
            String::new()
        };
        Self(format!("{prefix}…{tail}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SecretHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AEAD-sealed value as stored in events and tables: algorithm, the id
/// of the key that sealed it, nonce and ciphertext (base64).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub alg: String,
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({}, key {})", self.alg, self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_length_rules() {
        assert!(SigningSecret::parse("1234567").is_err());
        assert!(SigningSecret::parse("12345678").is_ok());
        assert!(SigningSecret::parse(&"x".repeat(500)).is_ok());
        let e = SigningSecret::parse(&"x".repeat(501)).unwrap_err();
        assert_eq!(e.field, "secret");
        assert!(SigningSecret::parse("abc\ndefgh").is_err());
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    }

    #[test]
    fn never_prints_the_secret() {
        let s = SigningSecret::from_random_bytes(&[7u8; GENERATED_SECRET_BYTES]);
        let plain = s.expose().to_string();
        assert!(plain.starts_with("whsec_"));
        assert_eq!(plain.len(), 6 + 32);
        let dbg = format!("{s:?} {s}");
        assert!(!dbg.contains(&plain[6..]), "{dbg}");
        assert!(dbg.contains(&plain[plain.len() - 4..]));
    }

    #[test]
    fn hints_mask_short_secrets_fully() {
        assert_eq!(SecretHint::of("my-secret").as_str(), "…");
        assert_eq!(
            SecretHint::of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").as_str(),
            "whsec_…LaSw"
        );
    }

    #[test]
    fn standard_webhooks_key_decodes_whsec() {
        let s = SigningSecret::parse("whsec_AAECAw==").unwrap();
        assert_eq!(s.standard_webhooks_key(), vec![0, 1, 2, 3]);
        let raw = SigningSecret::parse("my-webhook-secret").unwrap();
        assert_eq!(raw.standard_webhooks_key(), b"my-webhook-secret".to_vec());
    }
}
