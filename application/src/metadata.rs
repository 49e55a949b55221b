//! The metadata stored with every event: which request caused it, for which
//! tenant, by whom and when, plus the hash-chain link the event store adds.
//! One typed struct, so no layer spells the keys itself.

use chrono::{DateTime, SecondsFormat, Utc};
use hookline_domain::TenantId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// The request that caused the event (`system:<component>:…` when no
    /// API request did).
    pub request_id: String,
    pub tenant_id: TenantId,
    /// `api_key:<id>`, `admin` or `system:<component>`.
    pub actor: String,
    #[serde(with = "micros")]
    pub occurred_at: DateTime<Utc>,
    /// The worker that made the attempt an outcome event records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    /// The manual retry that asked for the attempt an outcome records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    /// The hash-chain link; set by the event store, never by callers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

/// The request an event's metadata names, read without the rest: readers
/// that fold thousands of events need only these, not the time, tenant
/// and actor [`EventMetadata`] also parses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RequestMeta {
    pub request_id: String,
    #[serde(default)]
    pub worker_id: Option<String>,
    #[serde(default)]
    pub triggered_by: Option<String>,
}

/// `occurred_at` as RFC 3339 with microseconds and `Z`, as it has always
/// been stored (the hash chain covers the stored text).
mod micros {
    use super::*;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

impl EventMetadata {
    /// The metadata as cqrs-es carries it (a map of strings).
    pub fn to_map(&self) -> HashMap<String, String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    _ => None,
                })
                .collect(),
            _ => HashMap::new(),
        }
    }

    /// The metadata as stored (a JSON object).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn metadata_keeps_its_stored_shape() {
        let m = EventMetadata {
            request_id: "req-1".into(),
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            actor: "system:worker".into(),
            occurred_at: DateTime::UNIX_EPOCH,
            worker_id: Some("w1".into()),
            triggered_by: None,
            chain: None,
        };
        let map = m.to_map();
        assert_eq!(map["request_id"], "req-1");
        assert_eq!(map["occurred_at"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(map["worker_id"], "w1");
        assert!(!map.contains_key("triggered_by"));
        assert_eq!(
            serde_json::from_value::<EventMetadata>(m.to_value()).ok(),
            Some(m)
        );
    }
}
