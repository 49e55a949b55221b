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
