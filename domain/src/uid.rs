//! Client-chosen identifiers (`uid`): a second, human-chosen name for a
//! tenant or a subscription, unique among the live ones of its scope, and
//! the client's id of a published event.

use crate::ids::truncate_for_message;
use crate::ValidationError;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Longest uid.
pub const MAX_UID_LEN: usize = 256;

/// 1–256 characters from ASCII letters, digits and `-_.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Uid(String);

impl Uid {
    /// # Errors
    /// A [`ValidationError`] on `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.len() > MAX_UID_LEN {
            return Err(ValidationError::new(
                field,
                format!("must be 1–{MAX_UID_LEN} characters"),
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ValidationError::new(
                field,
                format!(
                    "'{}' may only contain ASCII letters, digits and -_.",
                    truncate_for_message(s)
                ),
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, "uid").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_rules() {
        assert!(Uid::parse("customer-123_a.b", "uid").is_ok());
        assert!(Uid::parse(&"u".repeat(256), "uid").is_ok());
        assert!(Uid::parse(&"u".repeat(257), "uid").is_err());
        assert!(Uid::parse("", "uid").is_err());
        assert_eq!(Uid::parse("a b", "app.uid").unwrap_err().field, "app.uid");
        assert!(Uid::parse("é", "uid").is_err());
    }
}
