//! The hash chain. Every event's metadata carries `chain`: the SHA-256 (hex)
//! of the previous event's link (64 zeros for an aggregate's first event)
//! and the event itself, per aggregate:
//!
//! ```text
//! sha256("hookline-chain-v1\n" prev "\n" aggregate_type "\n" aggregate_id "\n"
//!        sequence "\n" event_type "\n" event_version "\n"
//!        canonical(payload) "\n" canonical(metadata without "chain"))
//! ```
//!
//! `canonical` is compact JSON with object keys sorted by their UTF-8 bytes
//! (`json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
//! in Python gives the same text for the values Hookline stores).

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The link before an aggregate's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The metadata key holding the link.
pub const CHAIN_KEY: &str = "chain";
const DOMAIN: &str = "hookline-chain-v1";

/// Compact JSON with sorted keys, whatever order the map keeps.
pub fn canonical(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, None, &mut out);
    into_text(out)
}

/// Written JSON as a `String` (serde_json writes UTF-8, and so does
/// everything else here).
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Writes `value` canonically into `out`, without the top-level key
/// `skip` when given (the metadata's link).
fn write_canonical(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| skip != Some(k.as_str()))
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(key.as_str(), out);
                out.push(b':');
                write_canonical(v, None, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, None, out);
            }
            out.push(b']');
        }
        scalar => write_json(scalar, out),
    }
}

/// A string or scalar as compact JSON (what its `to_string` gives).
fn write_json<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Writing a string or a JSON scalar into memory cannot fail.
    drop(serde_json::to_writer(&mut *out, value));
}

/// `value` with every negative zero (`-0`, `-0.0`, or a number too small
/// for a double, such as `-1e-400`) made a positive one, in place: `jsonb`
/// has no negative zero, so an event stored through it reads back with
/// `0.0`, and a link computed over `-0.0` would no longer match.
pub fn without_negative_zeros(value: &mut Value) {
    match value {
        Value::Number(n) if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => {
            if let Some(zero) = serde_json::Number::from_f64(0.0) {
                *n = zero;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_negative_zeros),
        Value::Object(map) => map.values_mut().for_each(without_negative_zeros),
        _ => {}
    }
}

/// What one link covers.
#[derive(Debug, Clone, Copy)]
pub struct Linked<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a Value,
    /// With or without a `chain` key: it is ignored.
    pub metadata: &'a Value,
}

/// The link of `event` after `previous`.
pub fn link(previous: &str, event: Linked<'_>) -> String {
    link_into(previous, event, &mut Vec::with_capacity(512)).0
}

/// [`link`], and the canonical text of the payload it hashed.
pub fn link_keeping_payload(previous: &str, event: Linked<'_>) -> (String, String) {
    let mut text = Vec::with_capacity(512);
    let (link, payload_len) = link_into(previous, event, &mut text);
    text.truncate(payload_len);
    (link, into_text(text))
}

/// [`link`], leaving in `text` what it hashed after the header (the
/// canonical payload, a newline, the canonical metadata), with the
/// payload's length.
fn link_into(previous: &str, event: Linked<'_>, text: &mut Vec<u8>) -> (String, usize) {
    let mut hasher = Sha256::new();
    for part in [
        DOMAIN,
        previous,
        event.aggregate_type,
        event.aggregate_id,
        &event.sequence.to_string(),
        event.event_type,
        event.event_version,
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\n");
    }
    text.clear();
    write_canonical(event.payload, None, text);
    let payload_len = text.len();
    text.push(b'\n');
    // The metadata without its link.
    write_canonical(event.metadata, Some(CHAIN_KEY), text);
    hasher.update(&*text);
    (hex::encode(hasher.finalize()), payload_len)
}

/// An event about to be appended, not yet linked.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlinked {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
    /// The payload's canonical text, which [`link_all`] hashes and keeps
    /// for the row's insert (the same text `payload.to_string()` gives
    /// with sorted maps). `None` until the row is linked; set by
    /// [`link_all`] only, each time it links the row.
    pub(crate) payload_text: Option<String>,
}

impl Unlinked {
    /// The payload's text as the link hashed it (`None` before linking).
    pub fn payload_text(&self) -> Option<&str> {
        self.payload_text.as_deref()
    }

    fn linked(&self) -> Linked<'_> {
        Linked {
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: &self.event_version,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }
}

/// An aggregate, as `(aggregate_type, aggregate_id)`.
pub type AggregateKey = (String, String);

/// The aggregates of `events` whose first event in the batch follows one
/// already stored, with that event's sequence: the links to look up
/// before [`link_all`].
pub fn predecessors(events: &[Unlinked]) -> Vec<(AggregateKey, i64)> {
    let mut seen = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert((e.aggregate_type.as_str(), e.aggregate_id.as_str())))
        .filter(|e| e.sequence > 1)
        .map(|e| {
            (
                (e.aggregate_type.clone(), e.aggregate_id.clone()),
                e.sequence - 1,
            )
        })
        .collect()
}

/// Links `events` in order and writes each link into its metadata: an
/// aggregate's first event in the batch follows `previous` (the genesis
/// value for a first event, or when the predecessor is missing, which the
/// append then refuses as a conflict), each later one the event before it.
pub fn link_all(
    events: &mut [Unlinked],
    previous: &std::collections::HashMap<AggregateKey, String>,
) {
    let mut last: std::collections::HashMap<AggregateKey, String> =
        std::collections::HashMap::new();
    for event in events.iter_mut() {
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        let prev = match last.get(&key) {
            Some(l) => l.clone(),
            None if event.sequence <= 1 => GENESIS.to_string(),
            None => previous
                .get(&key)
                .or_else(|| {
                    // A delivery its message's event began (ADR 0019)
                    // follows that event's link.
                    crate::listing::listing_message(&key)
                        .filter(|_| event.sequence == 2)
                        .and_then(|message| last.get(&message).or_else(|| previous.get(&message)))
                })
                .cloned()
                .unwrap_or_else(|| GENESIS.to_string()),
        };
        let (l, payload_text) = link_keeping_payload(&prev, event.linked());
        event.payload_text = Some(payload_text);
        set_link(&mut event.metadata, l.clone());
        last.insert(key, l);
    }
}

/// Writes the link into `metadata` (an object).
pub fn set_link(metadata: &mut Value, link: String) {
    if let Value::Object(map) = metadata {
        map.insert(CHAIN_KEY.to_string(), Value::String(link));
    }
}

/// The link stored in an event's metadata.
pub fn stored_link(metadata: &Value) -> Option<&str> {
    metadata.get(CHAIN_KEY).and_then(Value::as_str)
}

/// The link stored in a stored event's metadata, read without a tree.
pub fn stored_link_of(metadata: &crate::ports::StoredJson) -> Option<String> {
    metadata.str_field(CHAIN_KEY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negative_zeros_become_zeros_at_every_depth() {
        let mut v: Value = serde_json::from_str(
            r#"{"a":-0,"b":-0.0,"c":-1e-400,"d":[-0.0,{"e":-0}],"f":-1,"g":0}"#,
        )
        .unwrap();
        without_negative_zeros(&mut v);
        assert_eq!(
            canonical(&v),
            r#"{"a":0.0,"b":0.0,"c":0.0,"d":[0.0,{"e":0.0}],"f":-1,"g":0}"#
        );
    }

    #[test]
    fn canonical_sorts_keys_at_every_depth_and_keeps_arrays() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "é": "ü\n\"q\""}});
        assert_eq!(
            canonical(&v),
            r#"{"a":{"z":[3,{"x":null,"y":true}],"é":"ü\n\"q\""},"b":1}"#
        );
    }

    fn event(payload: &Value, metadata: &Value) -> Linked<'static> {
        // Leak for the test's convenience.
        let p: &'static Value = Box::leak(Box::new(payload.clone()));
        let m: &'static Value = Box::leak(Box::new(metadata.clone()));
        Linked {
            aggregate_type: "Subscription",
            aggregate_id: "s1",
            sequence: 1,
            event_type: "Subscribed",
            event_version: "1.0",
            payload: p,
            metadata: m,
        }
    }

    #[test]
    fn links_depend_on_everything_but_the_link_itself() {
        let payload = json!({"type": "Subscribed", "url": "https://x"});
        let meta = json!({"request_id": "r1"});
        let base = link(GENESIS, event(&payload, &meta));
        assert_eq!(base.len(), 64);
        let mut with_link = meta.clone();
        set_link(&mut with_link, "ignored".into());
        assert_eq!(link(GENESIS, event(&payload, &with_link)), base);
        assert_ne!(link(&base, event(&payload, &meta)), base);
        assert_ne!(
            link(
                GENESIS,
                event(&json!({"type": "Subscribed", "url": "https://y"}), &meta)
            ),
            base
        );
        assert_ne!(
            link(GENESIS, event(&payload, &json!({"request_id": "r2"}))),
            base
        );
        let mut e = event(&payload, &meta);
        e.sequence = 2;
        assert_ne!(link(GENESIS, e), base);
    }

    /// A link computed before the canonical writer was rewritten: links
    /// are stored forever, so the text they hash never changes.
    #[test]
    fn a_link_is_what_it_always_was() {
        let payload = json!({"type": "MessagePublished", "n": -1.5e300, "big": 18446744073709551615u64,
                             "s": "é\u{1}\"\\/\n", "a": [null, true, {"z": 0, "y": -0.0}], "": {}});
        let meta = json!({"request_id": "r1", "tenant_id": "t", "chain": "x",
                          "occurred_at": "2026-12-05T14:00:00.123456Z"});
        assert_eq!(
            link(GENESIS, event(&payload, &meta)),
            "a3aea8a6f5d5bf4e29558a6c6065b9818cbc59039ca3abc206c508435b6bac8c"
        );
        assert_eq!(
            canonical(&payload),
            r#"{"":{},"a":[null,true,{"y":-0.0,"z":0}],"big":18446744073709551615,"n":-1.5e+300,"s":"é\u0001\"\\/\n","type":"MessagePublished"}"#
        );
        // A nested `chain` key is data, not the link: kept.
        assert_eq!(
            canonical(&json!({"chain": 1, "x": {"chain": 2}})),
            r#"{"chain":1,"x":{"chain":2}}"#
        );
    }

    /// Linking keeps the text it hashed for the insert: the text the log
    /// stored before it did (`to_string`), with the same link.
    #[test]
    fn a_linked_row_keeps_the_payload_text_it_hashed() {
        let payload = json!({"type": "MessagePublished", "n": -1.5e300, "z": -0.0,
                             "s": "é\u{1}\"\\/\n", "a": [null, true, {"z": 0, "y": 2}], "": {}});
        let meta = json!({"request_id": "r1", "chain": "x"});
        let (l, text) = link_keeping_payload(GENESIS, event(&payload, &meta));
        assert_eq!(l, link(GENESIS, event(&payload, &meta)));
        assert_eq!(text, canonical(&payload));
        assert_eq!(text, payload.to_string());
        let mut rows = vec![Unlinked {
            aggregate_type: "Subscription".into(),
            aggregate_id: "s1".into(),
            sequence: 1,
            event_type: "Subscribed".into(),
            event_version: "1.0".into(),
            payload: payload.clone(),
            metadata: json!({"request_id": "r1"}),
            payload_text: None,
        }];
        link_all(&mut rows, &std::collections::HashMap::new());
        assert_eq!(rows[0].payload_text(), Some(text.as_str()));
        assert_eq!(
            stored_link(&rows[0].metadata),
            Some(link(GENESIS, event(&payload, &json!({"request_id": "r1"}))).as_str())
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": {"b": 2, "a": 1}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": {"a": 1, "b": 2}, "x": 1}"#).unwrap();
        assert_eq!(
            link(GENESIS, event(&a, &json!({}))),
            link(GENESIS, event(&b, &json!({})))
        );
    }
}
