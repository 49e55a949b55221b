//! An aggregate's history as clients and auditors see it: every event in
//! order with its position, time and metadata; sealed values are shown as
//! `"[sealed]"`, never as ciphertext or plaintext.

use crate::ports::StoredEvent;
use chrono::{DateTime, Utc};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub sequence: i64,
    pub position: i64,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub payload: Value,
    pub metadata: Value,
}

impl HistoryEntry {
    pub fn from_stored(event: StoredEvent) -> Self {
        Self {
            sequence: event.sequence,
            position: event.position,
            event_type: event.event_type,
            event_version: event.event_version,
            recorded_at: event.recorded_at,
            payload: mask_sealed(event.payload.to_value()),
            metadata: event.metadata,
        }
    }
}

/// Replaces every sealed object (`{alg, key_id, nonce, ciphertext}`) with
/// the string `"[sealed]"`.
pub fn mask_sealed(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if map.contains_key("ciphertext")
                && map.contains_key("nonce")
                && map.contains_key("key_id")
            {
                Value::String("[sealed]".into())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, mask_sealed(v))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(mask_sealed).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sealed_values_are_masked_at_any_depth() {
        let v = json!({"type": "Subscribed", "secret": {"alg": "a", "key_id": "k", "nonce": "n", "ciphertext": "c"},
                       "nested": [{"alg": "a", "key_id": "k", "nonce": "n", "ciphertext": "c"}], "url": "https://x"});
        let m = mask_sealed(v);
        assert_eq!(m["secret"], "[sealed]");
        assert_eq!(m["nested"][0], "[sealed]");
        assert_eq!(m["url"], "https://x");
    }
}
