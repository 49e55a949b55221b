//! Event names (`invoice.created`) and the filters subscriptions use to pick
//! them (`invoice.created`, `invoice.*`, `*`).

use crate::ids::truncate_for_message;
use crate::ValidationError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt;

/// Longest event name or pattern accepted.
pub const MAX_EVENT_NAME_LEN: usize = 100;
/// Most patterns one subscription may list.
pub const MAX_FILTER_PATTERNS: usize = 100;

/// A business event name: `resource.action`, ASCII letters of either case,
/// digits and `_` in dot-separated segments, at least two segments, 1–100
/// characters. Names compare case-sensitively: `salesOrder.created` (InFlow)
/// and `sales_order.created` are different events (ADR 0010).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(String);

/// The namespace of Hookline's own operational events
/// (`hookline.circuit.opened`, …). Tenants cannot publish into it.
pub const OPERATIONAL_NAMESPACE: &str = "hookline";

impl EventType {
    /// Whether this is one of Hookline's operational events
    /// (`hookline.…`), which only Hookline publishes.
    pub fn is_operational(&self) -> bool {
        self.0
            .strip_prefix(OPERATIONAL_NAMESPACE)
            .is_some_and(|rest| rest.starts_with('.'))
    }

    /// Whether the name is in the operational namespace in any case
    /// (`Hookline.circuit.opened`): names a tenant may not publish or
    /// describe, so that none passes for one of Hookline's own.
    pub fn is_reserved(&self) -> bool {
        self.0
            .split('.')
            .next()
            .is_some_and(|first| first.eq_ignore_ascii_case(OPERATIONAL_NAMESPACE))
    }

    /// # Errors
    /// When `s` is not a valid event name; the error names `field`.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        check_name(s, field, false).map(|()| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every pattern that would match this name: `*`, each `prefix.*`, and
    /// the name itself. Used to look subscriptions up by array overlap.
    pub fn matching_patterns(&self) -> Vec<String> {
        let mut out = vec!["*".to_string()];
        let mut prefix = String::new();
        let segments: Vec<&str> = self.0.split('.').collect();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                prefix.push('.');
            }
            prefix.push_str(seg);
            if i + 1 < segments.len() {
                out.push(format!("{prefix}.*"));
            }
        }
        out.push(self.0.clone());
        out
    }
}

fn segment_ok(seg: &str) -> bool {
    !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a dotted name. With `allow_single`, one segment is enough (the
/// prefix of a `resource.*` pattern).
fn check_name(s: &str, field: &str, allow_single: bool) -> Result<(), ValidationError> {
    if s.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if s.chars().count() > MAX_EVENT_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_EVENT_NAME_LEN} characters"),
        ));
    }
    let shown = truncate_for_message(s);
    if s.chars().any(char::is_whitespace) {
        return Err(ValidationError::new(
            field,
            format!("'{shown}' must not contain spaces"),
        ));
    }
    let segments: Vec<&str> = s.split('.').collect();
    if !segments.iter().all(|seg| segment_ok(seg)) {
        return Err(ValidationError::new(
            field,
            format!(
                "'{shown}' is not a valid event name: use ASCII letters, digits and '_' in dot-separated segments, such as 'invoice.created'"
            ),
        ));
    }
    if segments.len() < 2 && !allow_single {
        return Err(ValidationError::new(
            field,
            format!("'{shown}' must have the form resource.action, such as 'invoice.created'"),
        ));
    }
    Ok(())
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, "event_type").map_err(serde::de::Error::custom)
    }
}

/// One entry of a subscription's filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventPattern {
    /// `*`: every event.
    All,
    /// `invoice.*`: every event whose name starts with `invoice.`.
    Prefix(String),
    /// `invoice.created`: exactly that event.
    Exact(EventType),
}

impl EventPattern {
    /// # Errors
    /// When `s` is neither `*`, `prefix.*` nor a valid event name.
    pub fn parse(s: &str, field: &str) -> Result<Self, ValidationError> {
        if s == "*" {
            return Ok(Self::All);
        }
        if let Some(prefix) = s.strip_suffix(".*") {
            if s.chars().count() > MAX_EVENT_NAME_LEN {
                return Err(ValidationError::new(
                    field,
                    format!("must be at most {MAX_EVENT_NAME_LEN} characters"),
                ));
            }
            check_name(prefix, field, true).map_err(|_| {
                ValidationError::new(
                    field,
                    format!(
                        "'{}' is not a valid wildcard: use 'resource.*' where the resource is letters, digits and '_'",
                        truncate_for_message(s)
                    ),
                )
            })?;
            return Ok(Self::Prefix(prefix.to_string()));
        }
        if s.contains('*') {
            return Err(ValidationError::new(
                field,
                format!(
                    "'{}' is not a valid pattern: '*' is allowed alone or as the last segment ('invoice.*')",
                    truncate_for_message(s)
                ),
            ));
        }
        EventType::parse(s, field).map(Self::Exact)
    }

    /// A pattern naming the operational namespace in another case
    /// (`HOOKLINE.*`, `Hookline.circuit.opened`) can never match: those
    /// names are refused on publishing. Checked when a filter is given,
    /// not when a stored one is read.
    ///
    /// # Errors
    /// A [`ValidationError`] on `field` for such a pattern.
    pub fn check_namespace_case(&self, field: &str) -> Result<(), ValidationError> {
        let first = match self {
            Self::All => return Ok(()),
            Self::Prefix(p) => p.split('.').next(),
            Self::Exact(e) => e.as_str().split('.').next(),
        };
        match first {
            Some(first)
                if first.eq_ignore_ascii_case(OPERATIONAL_NAMESPACE)
                    && first != OPERATIONAL_NAMESPACE =>
            {
                Err(ValidationError::new(
                    field,
                    format!(
                        "'{}' never matches: Hookline's operational events are named in lowercase ({OPERATIONAL_NAMESPACE}.…), and other cases of that namespace cannot be published",
                        truncate_for_message(&self.to_string())
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Whether `event` is one this pattern asks for. `*` asks for every
    /// business event, not for Hookline's own operational events
    /// (`hookline.*`): a subscription receives those only when a pattern
    /// names them (`hookline.*`, `hookline.circuit.*`, an exact name).
    pub fn matches(&self, event: &EventType) -> bool {
        match self {
            Self::All => !event.is_operational(),
            Self::Prefix(prefix) => event
                .as_str()
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('.')),
            Self::Exact(name) => name == event,
        }
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("*"),
            Self::Prefix(p) => write!(f, "{p}.*"),
            Self::Exact(e) => e.fmt(f),
        }
    }
}

impl Serialize for EventPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s, "events").map_err(serde::de::Error::custom)
    }
}

/// A subscription's non-empty set of patterns. Kept sorted and without
/// duplicates, so two filters naming the same events compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<EventPattern>", into = "Vec<EventPattern>")]
pub struct EventFilter(BTreeSet<EventPattern>);

impl EventFilter {
    /// # Errors
    /// When the list is empty, too long, or holds an invalid entry; the error
    /// names the entry (`events[2]`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, ValidationError> {
        if items.is_empty() {
            return Err(ValidationError::new(
                "events",
                "must list at least one event name, 'resource.*' wildcard or '*'",
            ));
        }
        if items.len() > MAX_FILTER_PATTERNS {
            return Err(ValidationError::new(
                "events",
                format!("must list at most {MAX_FILTER_PATTERNS} entries"),
            ));
        }
        let mut set = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("events[{i}]");
            let pattern = EventPattern::parse(item.as_ref(), &field)?;
            pattern.check_namespace_case(&field)?;
            set.insert(pattern);
        }
        Ok(Self(set))
    }

    pub fn matches(&self, event: &EventType) -> bool {
        self.0.iter().any(|p| p.matches(event))
    }

    pub fn patterns(&self) -> impl Iterator<Item = &EventPattern> {
        self.0.iter()
    }

    /// The patterns as strings, in canonical (sorted) order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl TryFrom<Vec<EventPattern>> for EventFilter {
    type Error = ValidationError;
    fn try_from(v: Vec<EventPattern>) -> Result<Self, Self::Error> {
        if v.is_empty() {
            return Err(ValidationError::new("events", "must not be empty"));
        }
        Ok(Self(v.into_iter().collect()))
    }
}

impl From<EventFilter> for Vec<EventPattern> {
    fn from(f: EventFilter) -> Self {
        f.0.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn et(s: &str) -> EventType {
        EventType::parse(s, "event").unwrap()
    }

    #[test]
    fn filters_name_the_operational_namespace_in_lowercase() {
        for bad in [
            "HOOKLINE.*",
            "Hookline.circuit.*",
            "hookLine.circuit.opened",
        ] {
            let err = EventFilter::parse(&["invoice.*", bad]).unwrap_err();
            assert_eq!(err.field, "events[1]", "{bad}");
            assert!(err.reason.contains("lowercase"), "{}", err.reason);
        }
        for good in ["hookline.*", "hookline.circuit.opened", "*", "hooklines.x"] {
            assert!(EventFilter::parse(&[good]).is_ok(), "{good}");
        }
        // A stored filter is read as it was written.
        let stored: EventFilter = serde_json::from_str(r#"["HOOKLINE.*"]"#).unwrap();
        assert_eq!(stored.to_strings(), vec!["HOOKLINE.*"]);
    }

    #[test]
    fn the_operational_namespace_is_reserved_in_any_case() {
        assert!(et("hookline.circuit.opened").is_operational());
        assert!(!et("Hookline.circuit.opened").is_operational());
        for reserved in [
            "hookline.x",
            "Hookline.circuit.opened",
            "HOOKLINE.delivery.failed",
        ] {
            assert!(et(reserved).is_reserved(), "{reserved}");
        }
        for free in ["hooklines.x", "my.hookline", "hook.line"] {
            assert!(!et(free).is_reserved(), "{free}");
        }
    }

    #[test]
    fn accepts_resource_action_names() {
        for ok in [
            "invoice.created",
            "sales_order.confirmed",
            "a.b.c",
            "v2.x1",
            "salesOrder.created",
            "purchaseOrder.updated",
            "Invoice.Created",
        ] {
            assert!(EventType::parse(ok, "e").is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_bad_names_naming_the_field() {
        for bad in [
            "",
            "invoice",
            "invoice created",
            "invoice..created",
            ".invoice",
            "invoice.",
            "invoice-created.x",
            "factura.creada\u{e9}",
        ] {
            let err = EventType::parse(bad, "event").unwrap_err();
            assert_eq!(err.field, "event", "{bad}");
        }
        let long = format!("a.{}", "b".repeat(99));
        assert!(EventType::parse(&long, "event").is_err());
        let max = format!("a.{}", "b".repeat(98));
        assert!(EventType::parse(&max, "event").is_ok());
    }

    #[test]
    fn patterns_match_exact_prefix_and_all() {
        let f = EventFilter::parse(&["invoice.*", "payment.received"]).unwrap();
        assert!(f.matches(&et("invoice.created")));
        assert!(f.matches(&et("invoice.line.added")));
        assert!(f.matches(&et("payment.received")));
        assert!(!f.matches(&et("payment.failed")));
        assert!(!f.matches(&et("invoices.created")));
        let all = EventFilter::parse(&["*"]).unwrap();
        assert!(all.matches(&et("anything.at_all")));
    }

    #[test]
    fn filters_are_sets() {
        let a = EventFilter::parse(&["b.x", "a.*", "b.x"]).unwrap();
        let b = EventFilter::parse(&["a.*", "b.x"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_strings(), vec!["a.*", "b.x"]);
    }

    #[test]
    fn rejects_bad_patterns_with_index() {
        let err = EventFilter::parse(&["invoice.created", "inv*"]).unwrap_err();
        assert_eq!(err.field, "events[1]");
        assert_eq!(EventFilter::parse::<&str>(&[]).unwrap_err().field, "events");
        assert!(EventFilter::parse(&["*.created"]).is_err());
        assert!(EventFilter::parse(&["Invoice.*"]).is_ok());
        assert!(EventFilter::parse(&["sales-order.*"]).is_err());
    }

    #[test]
    fn camel_case_names_match_case_sensitively() {
        let f = EventFilter::parse(&["salesOrder.*", "purchaseOrder.updated"]).unwrap();
        assert!(f.matches(&et("salesOrder.created")));
        assert!(f.matches(&et("purchaseOrder.updated")));
        assert!(!f.matches(&et("salesorder.created")));
        assert!(!f.matches(&et("sales_order.created")));
        assert!(!f.matches(&et("purchaseorder.updated")));
        assert_eq!(
            et("salesOrder.created").matching_patterns(),
            vec!["*", "salesOrder.*", "salesOrder.created"]
        );
    }

    #[test]
    fn matching_patterns_lists_every_wildcard() {
        assert_eq!(
            et("a.b.c").matching_patterns(),
            vec!["*", "a.*", "a.b.*", "a.b.c"]
        );
    }
}
