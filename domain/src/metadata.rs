//! Free-form string labels a client keeps on a tenant or a subscription
//! (`{"team": "billing"}`): stored and returned, never interpreted.

use crate::ids::truncate_for_message;
use crate::ValidationError;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Most labels on one object.
pub const MAX_METADATA_ENTRIES: usize = 100;
/// Longest key, in characters.
pub const MAX_METADATA_KEY_CHARS: usize = 256;
/// Longest value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 4096;

/// At most 100 entries; keys 1–256 characters, values at most 4096, no
/// control characters in either.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    /// # Errors
    /// A [`ValidationError`] on `field` or `field.<key>`.
    pub fn parse(map: BTreeMap<String, String>, field: &str) -> Result<Self, ValidationError> {
        if map.len() > MAX_METADATA_ENTRIES {
            return Err(ValidationError::new(
                field,
                format!("at most {MAX_METADATA_ENTRIES} entries are allowed"),
            ));
        }
        for (key, value) in &map {
            let at = format!("{field}.{}", truncate_for_message(key));
            if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
                return Err(ValidationError::new(
                    at,
                    format!("keys must be 1–{MAX_METADATA_KEY_CHARS} characters"),
                ));
            }
            if value.chars().count() > MAX_METADATA_VALUE_CHARS {
                return Err(ValidationError::new(
                    at,
                    format!("values must be at most {MAX_METADATA_VALUE_CHARS} characters"),
                ));
            }
            if key.chars().chain(value.chars()).any(char::is_control) {
                return Err(ValidationError::new(
                    at,
                    "keys and values must not contain control characters",
                ));
            }
        }
        Ok(Self(map))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Self::parse(map, "metadata").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn metadata_limits() {
        assert!(Metadata::parse(map(&[("team", "billing")]), "metadata").is_ok());
        assert!(Metadata::parse(map(&[("", "x")]), "metadata").is_err());
        assert_eq!(
            Metadata::parse(map(&[("k", "a\u{0}b")]), "metadata")
                .unwrap_err()
                .field,
            "metadata.k"
        );
        let many: BTreeMap<String, String> =
            (0..101).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(Metadata::parse(many, "metadata").is_err());
    }
}
