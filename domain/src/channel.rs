//! Channels: a second, free-form routing dimension besides the event type.
//! A message may carry channels; a subscription that lists channels gets
//! only messages sharing at least one of them, and a subscription without
//! channels gets every message (whatever its channels).

use crate::ids::truncate_for_message;
use crate::ValidationError;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// Longest channel name.
pub const MAX_CHANNEL_LEN: usize = 128;
/// Most channels one subscription or message may list.
pub const MAX_CHANNELS: usize = 10;

/// One channel: 1–128 characters from ASCII letters, digits and `-_.:+`,
/// compared case-sensitively.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Channel(String);

impl Channel {
    /// # Errors
    /// A [`ValidationError`] on `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if s.is_empty() || s.chars().count() > MAX_CHANNEL_LEN {
            return Err(ValidationError::new(
                field,
                format!("channels must be 1–{MAX_CHANNEL_LEN} characters"),
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+".contains(&b))
        {
            return Err(ValidationError::new(
                field,
                format!(
                    "'{}' is not a valid channel: use ASCII letters, digits and -_.:+",
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

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, "channels").map_err(serde::de::Error::custom)
    }
}

/// A non-empty set of at most ten channels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Channels(BTreeSet<Channel>);

impl Channels {
    /// Parses a list (duplicates collapse), naming `field[i]` for a bad
    /// entry.
    ///
    /// # Errors
    /// An empty list, more than ten channels, or a bad channel.
    pub fn parse<S: AsRef<str>>(items: &[S], field: &str) -> Result<Self, ValidationError> {
        if items.is_empty() || items.len() > MAX_CHANNELS {
            return Err(ValidationError::new(
                field,
                format!("must list 1–{MAX_CHANNELS} channels, or be left out for all channels"),
            ));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, s)| Channel::parse(s.as_ref(), &format!("{field}[{i}]")))
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.0.iter()
    }

    pub fn contains(&self, channel: &Channel) -> bool {
        self.0.contains(channel)
    }

    /// The channels as strings, sorted.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether a subscription listening on `listened` (`None`: every
    /// channel) receives a message carrying `carried`.
    pub fn admits(listened: Option<&Self>, carried: Option<&Self>) -> bool {
        match (listened, carried) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(l), Some(c)) => l.0.iter().any(|ch| c.0.contains(ch)),
        }
    }
}

impl<'de> Deserialize<'de> for Channels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Self::parse(&items, "channels").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chans(items: &[&str]) -> Channels {
        Channels::parse(items, "channels").unwrap()
    }

    #[test]
    fn channel_rules() {
        assert!(Channel::parse("project_1.eu-west:a+b", "c").is_ok());
        assert!(Channel::parse("", "c").is_err());
        assert!(Channel::parse("has space", "c").is_err());
        assert!(Channel::parse(&"c".repeat(129), "c").is_err());
        assert_eq!(
            Channels::parse(&["ok", "bad/one"], "channels")
                .unwrap_err()
                .field,
            "channels[1]"
        );
        assert!(Channels::parse::<&str>(&[], "channels").is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
        assert!(Channels::parse(&eleven, "channels").is_err());
        assert_eq!(chans(&["b", "a", "b"]).to_strings(), vec!["a", "b"]);
    }

    #[test]
    fn filtering_follows_svix() {
        let eu = chans(&["eu"]);
        let eu_us = chans(&["eu", "us"]);
        let us = chans(&["us"]);
        assert!(Channels::admits(None, None));
        assert!(Channels::admits(None, Some(&eu)));
        assert!(!Channels::admits(Some(&eu), None));
        assert!(Channels::admits(Some(&eu), Some(&eu_us)));
        assert!(!Channels::admits(Some(&eu), Some(&us)));
        assert!(!Channels::admits(Some(&chans(&["EU"])), Some(&eu)));
    }
}
