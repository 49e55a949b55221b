//! Ports: what the use cases need from the outside world. Each is a plain
//! trait; `hookline-infrastructure` implements them over Postgres and the
//! system clock, tests may implement them in memory.

use crate::error::AppError;
use crate::metadata::{EventMetadata, RequestMeta};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hookline_domain::subscription::SubscriptionState;
use hookline_domain::{Sealed, SubscriptionId, TenantId};
use serde_json::Value;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

/// The current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Serialises a "check, then write" (no duplicate subscription, the
/// tenant's limit) across every process that shares the database, as a
/// mutex does within one.
#[async_trait]
pub trait WriteLocks: Send + Sync {
    /// Holds the lock `name` until the guard is dropped.
    ///
    /// # Errors
    /// The database is unreachable.
    async fn hold(&self, name: &str) -> Result<WriteLockGuard, AppError>;
}

/// A held [`WriteLocks`] lock; dropping it releases the lock.
pub struct WriteLockGuard(pub Box<dyn Send>);

impl std::fmt::Debug for WriteLockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteLockGuard")
    }
}

/// Ids and random draws, so that services are deterministic under test.
pub trait Entropy: Send + Sync {
    /// A new unique id (UUIDv7 in production: ids sort by creation time).
    fn new_id(&self) -> Uuid;
    /// Fills `buf` with unpredictable bytes (secrets and keys).
    fn fill(&self, buf: &mut [u8]);
    /// A number in [-1, 1] (the jitter of retry delays).
    fn jitter(&self) -> f64;
}

/// AEAD sealing of secrets. `context` is bound to the ciphertext as
/// associated data (e.g. the subscription id), so a sealed value cannot be
/// moved to another subscription.
pub trait SecretCipher: Send + Sync {
    /// # Errors
    /// When encryption fails (it does not with a valid key).
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Sealed, AppError>;
    /// # Errors
    /// When the key id is unknown or the ciphertext was altered.
    fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, AppError>;
}

/// Message authentication with a server key (portal links): a tag only
/// this server can make, checked in constant time.
pub trait LinkSigner: Send + Sync {
    /// The tag of `message`.
    ///
    /// # Errors
    /// When this process has no server key.
    fn sign(&self, message: &[u8]) -> Result<[u8; 32], AppError>;
    /// Whether `tag` is the tag of `message` (constant time).
    fn verify(&self, message: &[u8], tag: &[u8]) -> bool;
}

/// A point in the event log's commit order: `(tx_id, global_position)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogPosition {
    pub tx_id: u64,
    pub position: i64,
}

/// One event as stored in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: i64,
    pub tx_id: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: StoredJson,
    /// Read with [`StoredEvent::meta`] (typed) or [`StoredJson::str_field`].
    pub metadata: StoredJson,
    pub recorded_at: DateTime<Utc>,
}

/// An event's payload or metadata as the log stores it (JSON text), parsed
/// only by whoever needs it and straight into the type they need: readers
/// that fold thousands of events per batch (projections, rebuilds) would
/// otherwise spend most of their time building and dropping
/// `serde_json::Value` trees.
///
/// An event that readers derive rather than read (a listed delivery's
/// `DeliveryEnqueued`, ADR 0019) is held as its typed value instead: its
/// text is written only if someone asks for it, and [`Self::parse_owned`]
/// into that same type clones it instead of parsing.
#[derive(Clone)]
pub struct StoredJson(Repr);

#[derive(Clone)]
enum Repr {
    Text(Box<str>),
    Typed(Arc<dyn TypedJson>),
}

/// A value held by a [`StoredJson`] before (or instead of) its text.
trait TypedJson: Any + Send + Sync {
    /// Its JSON text, written once, when first asked for.
    fn text(&self) -> &str;
    fn as_any(&self) -> &dyn Any;
}

struct Typed<T> {
    value: T,
    text: OnceLock<Box<str>>,
}

impl<T: serde::Serialize + Any + Send + Sync> TypedJson for Typed<T> {
    fn text(&self) -> &str {
        self.text
            .get_or_init(|| match serde_json::to_string(&self.value) {
                Ok(text) => text.into_boxed_str(),
                Err(e) => {
                    // Not for Hookline's events (string keys, no failing
                    // serialisers); `null` then fails whoever parses it.
                    tracing::error!(error = %e, "a derived event did not serialise");
                    "null".into()
                }
            })
    }

    fn as_any(&self) -> &dyn Any {
        &self.value
    }
}

impl StoredJson {
    pub fn new(raw: Box<serde_json::value::RawValue>) -> Self {
        Self(Repr::Text(raw.into()))
    }

    /// Text read from one of the log's `json` columns, which Postgres
    /// checked when it was stored: not checked again here (a rebuild
    /// reading a million events spent a tenth of its time on it). Text that
    /// is not JSON fails whoever parses it, with an error.
    pub fn from_log_text(text: String) -> Self {
        Self(Repr::Text(text.into_boxed_str()))
    }

    /// A derived event, kept typed (see the type's documentation).
    pub fn typed<T: serde::Serialize + Any + Send + Sync>(value: T) -> Self {
        Self(Repr::Typed(Arc::new(Typed {
            value,
            text: OnceLock::new(),
        })))
    }

    /// # Errors
    /// Never for a JSON value (serialization of a `Value` cannot fail).
    pub fn from_value(value: &Value) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self::new)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Text(text) => text,
            Repr::Typed(typed) => typed.text(),
        }
    }

    /// # Errors
    /// The payload is not a `T`.
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.as_str())
    }

    /// Like [`Self::parse`]; a typed `T` is cloned, not parsed.
    ///
    /// # Errors
    /// The payload is not a `T`.
    pub fn parse_owned<T: serde::de::DeserializeOwned + Clone + Any>(
        &self,
    ) -> Result<T, serde_json::Error> {
        if let Repr::Typed(typed) = &self.0 {
            if let Some(value) = typed.as_any().downcast_ref::<T>() {
                return Ok(value.clone());
            }
        }
        self.parse()
    }

    /// The payload as a JSON tree (`null` if the stored text is not JSON,
    /// which the column type rules out).
    pub fn to_value(&self) -> Value {
        self.parse().unwrap_or(Value::Null)
    }

    /// One top-level string field.
    pub fn str_field(&self, key: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Fields<'a>(
            #[serde(borrow)] HashMap<std::borrow::Cow<'a, str>, &'a serde_json::value::RawValue>,
        );
        let Fields(fields) = self.parse().ok()?;
        fields
            .get(key)
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok())
    }
}

impl PartialEq for StoredJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for StoredJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for StoredJson {
    /// As the JSON it holds, verbatim.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::from_str::<&serde_json::value::RawValue>(self.as_str())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl StoredEvent {
    /// The metadata, typed (`None` for metadata without the usual keys).
    pub fn meta(&self) -> Option<EventMetadata> {
        self.metadata.parse().ok()
    }

    /// The request the metadata names (`None` without a `request_id`),
    /// read without the rest of the metadata.
    pub fn request(&self) -> Option<RequestMeta> {
        self.metadata.parse().ok()
    }

    /// Where this event stands in commit order.
    pub fn log_position(&self) -> LogPosition {
        LogPosition {
            tx_id: self.tx_id,
            position: self.position,
        }
    }
}

/// Reads the log directly (history, audit).
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Every event of one aggregate, in sequence order.
    ///
    /// # Errors
    /// Storage errors.
    async fn aggregate_history(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, AppError>;

    /// At most `limit` events of one aggregate after sequence `after`, in
    /// sequence order (a page of its history).
    ///
    /// # Errors
    /// Storage errors.
    async fn aggregate_history_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let mut events = self.aggregate_history(aggregate_type, aggregate_id).await?;
        events.retain(|e| e.sequence > after);
        events.truncate(limit as usize);
        Ok(events)
    }

    /// The first events of tenant `tenant`'s aggregates of `aggregate_type`
    /// whose ids lie in `[from, before)`, greatest id first, at most
    /// `limit`. For aggregates with UUIDv7 ids (time-ordered, as
    /// `Entropy::new_id` makes them) that is "made since `from`'s time,
    /// newest first", read from the primary key's range.
    ///
    /// # Errors
    /// Storage errors.
    async fn first_events_in_id_range(
        &self,
        aggregate_type: &str,
        tenant: TenantId,
        from: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError>;
}

/// Lets a command's response wait until the read models include its events.
#[async_trait]
pub trait ProjectionWaiter: Send + Sync {
    /// True once every projection of `aggregate_type`'s events has passed
    /// `position`, false on timeout.
    async fn wait_for(
        &self,
        aggregate_type: &str,
        position: LogPosition,
        timeout: Duration,
    ) -> bool;

    /// True once the projections of `aggregate_type` have applied every
    /// event committed before the call, false on timeout.
    async fn wait_caught_up(&self, aggregate_type: &str, timeout: Duration) -> bool;
}

/// A row of the subscriptions read model.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub state: SubscriptionState,
    /// Sequence of the last applied event.
    pub version: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionListQuery {
    /// Patterns a subscription must list at least one of (the patterns
    /// that match an event name, see `EventType::matching_patterns`).
    pub any_of_patterns: Option<Vec<String>>,
    pub include_inactive: bool,
    /// With `include_inactive`: disabled ones but not deleted ones.
    pub exclude_deleted: bool,
    /// Only those in this state.
    pub status: Option<ListedStatus>,
    /// Only those whose URL or description contains this text, compared
    /// in lower case.
    pub search: Option<String>,
    /// Only these (a portal link scoped to some subscriptions).
    pub only_ids: Option<Vec<Uuid>>,
    /// Keyset cursor: list items strictly past this in the list's order
    /// (older than it newest first, newer than it oldest first).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: u32,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
}

/// A subscription's state as lists filter it: an active subscription
/// whose circuit is open is `CircuitOpen`, not `Active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedStatus {
    Active,
    CircuitOpen,
    Disabled,
}

impl ListedStatus {
    pub fn of(state: &hookline_domain::subscription::SubscriptionState) -> Option<Self> {
        use hookline_domain::subscription::SubscriptionStatus;
        match state.status {
            SubscriptionStatus::Active if state.circuit.is_some() => Some(Self::CircuitOpen),
            SubscriptionStatus::Active => Some(Self::Active),
            SubscriptionStatus::Disabled => Some(Self::Disabled),
            SubscriptionStatus::Deleted => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::CircuitOpen => "circuit_open",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::CircuitOpen, Self::Disabled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// The subscriptions read model (a catch-up projection).
#[async_trait]
pub trait SubscriptionReadModel: Send + Sync {
    /// # Errors
    /// Storage errors.
    async fn get(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> Result<Option<SubscriptionRecord>, AppError>;

    /// Newest first, `limit + 1` rows at most (the extra one tells whether
    /// there is a next page).
    ///
    /// # Errors
    /// Storage errors.
    async fn list(
        &self,
        tenant: TenantId,
        query: &SubscriptionListQuery,
    ) -> Result<Vec<SubscriptionRecord>, AppError>;

    /// How many subscriptions `tenant` has that are not deleted.
    ///
    /// # Errors
    /// Storage errors.
    async fn count(&self, tenant: TenantId) -> Result<u64, AppError>;

    /// Active subscriptions of `tenant` with exactly this URL and event set.
    ///
    /// # Errors
    /// Storage errors.
    async fn find_active_duplicate(
        &self,
        tenant: TenantId,
        url: &str,
        events: &[String],
    ) -> Result<Option<SubscriptionId>, AppError>;
}

mod catalogue;
mod connectors;
mod dashboard;
mod deliveries;
mod flow;
mod idempotency;
mod messages;
mod metrics;
mod operations;
mod sources;
mod store;
mod tenants;
pub use catalogue::*;
pub use connectors::*;
pub use dashboard::*;
pub use deliveries::*;
pub use flow::*;
pub use idempotency::*;
pub use messages::*;
pub use metrics::*;
pub use operations::*;
pub use sources::*;
pub use store::*;
pub use tenants::*;

/// What an audit page asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this tenant's events (`None`: every tenant, for operators).
    pub tenant: Option<TenantId>,
    /// Events after the event at this global position (0: from the start).
    pub after: i64,
    pub limit: u32,
    pub aggregate_type: Option<String>,
    pub event_type: Option<String>,
}

/// The log as auditors and support read it.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// The next events in commit order (never skipping one that commits
    /// later with a lower position).
    ///
    /// # Errors
    /// A validation error when `after` names no event; storage errors.
    async fn page(&self, query: &AuditQuery) -> Result<Vec<StoredEvent>, AppError>;

    /// The next events of `tenant` caused by `request_id` (as the request,
    /// or as the manual retry that triggered an attempt) after the event at
    /// position `after`, in commit order.
    ///
    /// # Errors
    /// A validation error when `after` names no event; storage errors.
    async fn by_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, AppError>;

    /// How much a request caused: its events and the deliveries they touch.
    ///
    /// # Errors
    /// Storage errors.
    async fn request_counts(
        &self,
        tenant: TenantId,
        request_id: &str,
    ) -> Result<RequestCounts, AppError>;

    /// The deliveries a request's events touch, by id, after `after`.
    ///
    /// # Errors
    /// Storage errors.
    async fn deliveries_of_request(
        &self,
        tenant: TenantId,
        request_id: &str,
        after: Option<hookline_domain::DeliveryId>,
        limit: u32,
    ) -> Result<Vec<hookline_domain::DeliveryId>, AppError>;
}

/// The size of what one request caused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub events: u64,
    pub deliveries: u64,
}

#[cfg(test)]
mod tests {
    use super::StoredJson;
    use serde_json::json;

    fn payload(text: &str) -> StoredJson {
        StoredJson::new(serde_json::value::RawValue::from_string(text.to_string()).unwrap())
    }

    #[test]
    fn a_payload_keeps_its_text_and_reads_fields_without_a_tree() {
        let p = payload(r#"{"type": "X", "body": "{\"a\": 1}", "n": 3, "k\u0065y": "v"}"#);
        assert_eq!(
            p.as_str(),
            r#"{"type": "X", "body": "{\"a\": 1}", "n": 3, "k\u0065y": "v"}"#
        );
        assert_eq!(p.str_field("body").as_deref(), Some(r#"{"a": 1}"#));
        assert_eq!(p.str_field("key").as_deref(), Some("v"), "escaped keys");
        assert_eq!(p.str_field("n"), None, "not a string");
        assert_eq!(p.str_field("missing"), None);
        assert_eq!(p.to_value()["n"], json!(3));
        assert_eq!(payload("[1]").str_field("type"), None);
        #[derive(serde::Deserialize)]
        struct T {
            n: u32,
        }
        assert_eq!(p.parse::<T>().unwrap().n, 3);
        assert_eq!(
            StoredJson::from_value(&json!({"n": 3})).unwrap(),
            payload(r#"{"n":3}"#)
        );
    }

    #[test]
    fn text_from_the_log_is_kept_verbatim_and_bad_text_fails_its_readers() {
        let text = r#"{"b": [1, 2.50], "a": "\u00e9"}"#;
        let p = StoredJson::from_log_text(text.to_string());
        assert_eq!(p.as_str(), text);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            text,
            "serialised as stored"
        );
        assert_eq!(
            serde_json::to_string(&json!({"payload": p})).unwrap(),
            r#"{"payload":{"a":"é","b":[1,2.5]}}"#,
            "inside a tree it is parsed like any JSON"
        );
        let bad = StoredJson::from_log_text("{not json".to_string());
        assert!(bad.parse::<serde_json::Value>().is_err());
        assert!(
            serde_json::to_string(&bad).is_err(),
            "an error, not a panic"
        );
        assert_eq!(bad.str_field("a"), None);
        assert_eq!(bad.to_value(), serde_json::Value::Null);
    }

    #[test]
    fn a_typed_payload_reads_as_its_text_and_is_taken_without_parsing() {
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        struct Event {
            b: Vec<u32>,
            a: String,
        }
        let event = Event {
            b: vec![1, 2],
            a: "é\"".into(),
        };
        let typed = StoredJson::typed(event.clone());
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(typed.as_str(), text, "the text serde writes");
        assert_eq!(typed, StoredJson::from_log_text(text.clone()));
        assert_eq!(serde_json::to_string(&typed).unwrap(), text);
        assert_eq!(typed.parse_owned::<Event>().unwrap(), event);
        assert_eq!(
            StoredJson::from_log_text(text)
                .parse_owned::<Event>()
                .unwrap(),
            event,
            "text is parsed"
        );
        // Another type is parsed from the text.
        assert_eq!(typed.str_field("a").as_deref(), Some("é\""));
        assert_eq!(typed.to_value()["b"], json!([1, 2]));
        #[derive(Debug, Clone, serde::Deserialize)]
        struct Other {
            a: String,
        }
        assert_eq!(typed.parse_owned::<Other>().unwrap().a, "é\"");
        // A clone shares the value and the text written once.
        let copy = typed.clone();
        assert_eq!(copy.as_str().as_ptr(), typed.as_str().as_ptr());
    }

    /// Taking a typed value neither writes its text nor parses one: with
    /// a type that can do neither, it still succeeds.
    #[test]
    fn a_typed_value_is_taken_without_its_text() {
        #[derive(Debug, Clone, PartialEq)]
        struct Opaque(u8);
        impl serde::Serialize for Opaque {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("serialised")
            }
        }
        impl<'de> serde::Deserialize<'de> for Opaque {
            fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
                Err(serde::de::Error::custom("parsed"))
            }
        }
        let typed = StoredJson::typed(Opaque(7));
        assert_eq!(typed.parse_owned::<Opaque>().unwrap(), Opaque(7));
        assert_eq!(typed.clone().parse_owned::<Opaque>().unwrap(), Opaque(7));
    }

    #[test]
    fn the_request_is_read_from_metadata_without_the_rest() {
        let event = |metadata: &str| super::StoredEvent {
            position: 1,
            tx_id: 1,
            aggregate_type: "Delivery".into(),
            aggregate_id: "d".into(),
            sequence: 1,
            event_type: "T".into(),
            event_version: "1.0".into(),
            payload: payload("{}"),
            metadata: payload(metadata),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
        };
        let full = event(
            r#"{"actor": "admin", "chain": "ab", "occurred_at": "2026-12-05T14:00:00.123456Z",
                "request_id": "req-1", "tenant_id": "00000000-0000-0000-0000-000000000001",
                "triggered_by": "req-0", "worker_id": "w1"}"#,
        );
        let r = full.request().unwrap();
        assert_eq!(
            (
                r.request_id.as_str(),
                r.triggered_by.as_deref(),
                r.worker_id.as_deref()
            ),
            ("req-1", Some("req-0"), Some("w1"))
        );
        assert_eq!(full.meta().unwrap().request_id, "req-1");
        let bare = event(r#"{"request_id": "req-2"}"#);
        assert_eq!(bare.request().unwrap().worker_id, None);
        assert!(
            bare.meta().is_none(),
            "the full metadata needs its other keys"
        );
        assert!(event("{}").request().is_none());
    }
}
