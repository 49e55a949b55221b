//! Event types as responses show them.

use chrono::{DateTime, Utc};
use hookline_domain::catalogue::EventTypeState;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeView {
    pub name: String,
    pub group: String,
    pub description: String,
    pub schema: Option<Value>,
    pub example: Option<Value>,
    pub deprecated: bool,
    pub deprecated_at: Option<DateTime<Utc>>,
    pub archived: bool,
    /// One of the catalogue every tenant starts with.
    pub builtin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&EventTypeState> for EventTypeView {
    fn from(s: &EventTypeState) -> Self {
        Self {
            name: s.name.to_string(),
            group: s.spec.group.clone(),
            description: s.spec.description.clone(),
            schema: s.spec.schema.clone(),
            example: s.spec.example.clone(),
            deprecated: s.deprecated,
            deprecated_at: s.deprecated_at,
            archived: s.archived,
            builtin: s.builtin,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// The names of one group's types on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub name: String,
    pub event_types: Vec<String>,
}

/// One page of the catalogue, ordered by group and then name.
#[derive(Debug, Clone, PartialEq)]
pub struct CataloguePage {
    pub data: Vec<EventTypeView>,
    /// The page's types by group, in the same order.
    pub groups: Vec<GroupView>,
    pub next_cursor: Option<String>,
}

impl CataloguePage {
    pub(crate) fn new(data: Vec<EventTypeView>, next_cursor: Option<String>) -> Self {
        let mut groups: Vec<GroupView> = Vec::new();
        for t in &data {
            match groups.last_mut() {
                Some(g) if g.name == t.group => g.event_types.push(t.name.clone()),
                _ => groups.push(GroupView {
                    name: t.group.clone(),
                    event_types: vec![t.name.clone()],
                }),
            }
        }
        Self {
            data,
            groups,
            next_cursor,
        }
    }
}

/// An event type's example in the envelope receivers get: the fields in
/// the order a delivery sends them (`id, timestamp, event, data,
/// tenant_id`), the example as `data`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Example {
    pub id: hookline_domain::EventId,
    pub timestamp: String,
    pub event: hookline_domain::EventType,
    pub data: Value,
    pub tenant_id: hookline_domain::TenantId,
}

#[cfg(test)]
mod example_tests {
    use super::Example;
    use crate::deliveries::Envelope;
    use hookline_domain::{EventId, EventType, TenantId};
    use serde_json::json;

    #[test]
    fn an_example_is_written_as_a_delivery_sends_its_envelope() {
        let id = EventId::from_uuid(uuid::Uuid::from_u128(7));
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(9));
        let data = json!({"b": 1, "a": [true, null]});
        let raw = serde_json::value::to_raw_value(&data).unwrap();
        let sent = Envelope {
            id,
            timestamp: "2026-12-04T10:00:00.000Z".into(),
            event: "order.shipped",
            data: &raw,
            tenant_id: tenant,
            resource_type: None,
            resource_id: None,
        };
        let example = Example {
            id,
            timestamp: "2026-12-04T10:00:00.000Z".into(),
            event: EventType::parse("order.shipped", "event").unwrap(),
            data,
            tenant_id: tenant,
        };
        assert_eq!(
            serde_json::to_string(&example).unwrap(),
            serde_json::to_string(&sent).unwrap()
        );
    }
}
