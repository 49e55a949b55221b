//! How many times validating one value can evaluate subschemas of a schema.
//!
//! Subschemas that apply to the same value (`allOf`, `anyOf`, `oneOf`,
//! `not`, `if`/`then`/`else`, `dependentSchemas`, `$ref`, `$dynamicRef`)
//! multiply along chains of references: 23 definitions each naming the next
//! twice in an `anyOf` make one value be checked 2²³ times, from a schema of
//! 1.6 KB. So a schema is measured before it is accepted: for each depth of
//! the value, the most evaluations any one value at that depth can cost
//! (every keyword that applies to the children of a value is counted as
//! applying to each child, whatever its name or index). A reference loop
//! that never descends into the value is refused too (it never ends).

use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// Most subschema evaluations one value may cost.
pub const MAX_EVALUATIONS_PER_VALUE: u64 = 256;
/// Deepest value measured: published data nests at most 128 levels.
const MAX_DEPTH: usize = 130;

/// Why a schema costs too much to validate with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CostError {
    /// A reference chain comes back to where it started without descending
    /// into the value (JSON pointer of a subschema on the loop).
    Loop(String),
    /// A reference Hookline cannot follow within the schema.
    Unresolved { at: String, reference: String },
    /// More distinct ways of reaching a value than can be measured.
    TooIntricate,
    /// One value at `depth` could be checked by `evaluations` subschemas
    /// (at least; counting stops past the limit).
    TooCostly { depth: usize, evaluations: u64 },
}

impl std::fmt::Display for CostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Loop(at) => write!(
                f,
                "a chain of references through {} comes back to itself without descending into the value; validation would never end",
                if at.is_empty() { "the schema's root" } else { at }
            ),
            Self::Unresolved { reference, .. } => write!(
                f,
                "the reference {reference:?} does not point within this schema (use \"#/$defs/…\", \"#anchor\" or the $id of a subschema)"
            ),
            Self::TooIntricate => write!(
                f,
                "the schema has more distinct ways of reaching a value than Hookline measures ({MAX_SHAPES}); define shared parts once"
            ),
            Self::TooCostly { depth, evaluations } => write!(
                f,
                "checking one value {} could evaluate more than {} subschemas ({evaluations} or more): references and anyOf/allOf/oneOf multiply each other; define shared parts once",
                if *depth == 0 { "at the top".to_string() } else { format!("at depth {depth}") },
                MAX_EVALUATIONS_PER_VALUE
            ),
        }
    }
}

/// Where an error was found (a JSON pointer into the schema).
impl CostError {
    pub fn pointer(&self) -> &str {
        match self {
            Self::Loop(at) | Self::Unresolved { at, .. } => at,
            Self::TooCostly { .. } | Self::TooIntricate => "",
        }
    }
}

/// Most distinct ways of reaching a value (sets of subschemas applying to
/// it) measured; a schema with more is refused as too intricate.
const MAX_SHAPES: usize = 20_000;

/// Which subschemas apply to one value, and how many times each.
type Shape = Vec<(usize, u64)>;

/// Measures `schema`: the most subschema evaluations one value can cost.
///
/// # Errors
/// A schema that could cost more than [`MAX_EVALUATIONS_PER_VALUE`] for one
/// value, loops, or refers outside itself.
pub fn check(schema: &Value) -> Result<u64, CostError> {
    let graph = Graph::build(schema)?;
    let rank = graph.in_place_rank()?;
    // Each shape is what one value at this depth may get from its parent,
    // for one way of choosing its name or index; shapes already measured
    // (at any depth) are not measured again, so recursive schemas end.
    let mut seen: HashSet<Shape> = HashSet::new();
    let mut frontier: Vec<Shape> = vec![vec![(0, 1)]];
    let mut most = 0;
    for depth in 0..MAX_DEPTH {
        let mut next = Vec::new();
        for entry in frontier {
            let applied = graph.close(&entry, &rank);
            let evaluations = applied.iter().fold(0u64, |a, (_, n)| a.saturating_add(*n));
            if evaluations > MAX_EVALUATIONS_PER_VALUE {
                return Err(CostError::TooCostly { depth, evaluations });
            }
            most = most.max(evaluations);
            for child in graph.children(&applied) {
                if seen.len() >= MAX_SHAPES {
                    return Err(CostError::TooIntricate);
                }
                if seen.insert(child.clone()) {
                    next.push(child);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(most)
}

/// Counts stop here (past the limit, far from overflowing).
const CAP: u64 = MAX_EVALUATIONS_PER_VALUE * 1_000;

#[derive(Default)]
struct Node {
    pointer: String,
    /// Applied to the same value.
    in_place: Vec<usize>,
    /// `properties`: by name.
    properties: Vec<(String, usize)>,
    /// `additionalProperties`: to a property no `properties` entry names.
    other_property: Option<usize>,
    /// `patternProperties` (every pattern counted as matching) and
    /// `unevaluatedProperties`: to any property.
    every_property: Vec<usize>,
    /// `propertyNames`: to each name.
    names: Option<usize>,
    /// `prefixItems`: by index.
    prefix: Vec<usize>,
    /// `items`: past the prefix.
    other_item: Option<usize>,
    /// `contains`, `unevaluatedItems`: to any item.
    every_item: Vec<usize>,
}

fn add(shape: &mut HashMap<usize, u64>, node: usize, n: u64) {
    let e = shape.entry(node).or_insert(0);
    *e = e.saturating_add(n).min(CAP);
}

fn sorted(shape: HashMap<usize, u64>) -> Shape {
    let mut v: Shape = shape.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_unstable();
    v
}

impl Graph<'_> {
    /// `entry` with everything its subschemas apply to the same value,
    /// counted along every chain.
    fn close(&self, entry: &Shape, rank: &[usize]) -> Shape {
        let mut reach: Vec<usize> = Vec::new();
        let mut inside: HashSet<usize> = HashSet::new();
        let mut stack: Vec<usize> = entry.iter().map(|(id, _)| *id).collect();
        while let Some(id) = stack.pop() {
            if inside.insert(id) {
                reach.push(id);
                stack.extend(self.nodes[id].in_place.iter().copied());
            }
        }
        reach.sort_unstable_by_key(|id| rank[*id]);
        let mut count: HashMap<usize, u64> = entry.iter().copied().collect();
        for id in reach {
            let n = count.get(&id).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            for &next in &self.nodes[id].in_place {
                add(&mut count, next, n);
            }
        }
        sorted(count)
    }

    /// The shapes a child of a value with `applied` may get: one per
    /// property name some subschema names, one for any other name, one
    /// for the names themselves, one per prefix index and one past them.
    fn children(&self, applied: &Shape) -> Vec<Shape> {
        let nodes: Vec<(&Node, u64)> = applied
            .iter()
            .map(|(id, n)| (&self.nodes[*id], *n))
            .collect();
        let mut out = Vec::new();
        let mut names: Vec<&str> = nodes
            .iter()
            .flat_map(|(node, _)| node.properties.iter().map(|(name, _)| name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        let property = |name: Option<&str>| {
            let mut shape = HashMap::new();
            for (node, n) in &nodes {
                let named = name.and_then(|name| {
                    node.properties
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, id)| *id)
                });
                if let Some(id) = named.or(node.other_property) {
                    add(&mut shape, id, *n);
                }
                for id in &node.every_property {
                    add(&mut shape, *id, *n);
                }
            }
            sorted(shape)
        };
        for name in names {
            out.push(property(Some(name)));
        }
        out.push(property(None));
        let mut key = HashMap::new();
        for (node, n) in &nodes {
            if let Some(id) = node.names {
                add(&mut key, id, *n);
            }
        }
        out.push(sorted(key));
        let prefix = nodes
            .iter()
            .map(|(node, _)| node.prefix.len())
            .max()
            .unwrap_or(0);
        for index in (0..prefix).map(Some).chain([None]) {
            let mut shape = HashMap::new();
            for (node, n) in &nodes {
                let at = index.and_then(|i| node.prefix.get(i).copied());
                let past = index.is_none_or(|i| i >= node.prefix.len());
                if let Some(id) = at.or(if past { node.other_item } else { None }) {
                    add(&mut shape, id, *n);
                }
                for id in &node.every_item {
                    add(&mut shape, *id, *n);
                }
            }
            out.push(sorted(shape));
        }
        out.retain(|shape| !shape.is_empty());
        out
    }
}

/// Where a value of the schema document is: its JSON pointer and the
/// nearest enclosing resource (a subschema with `$id`, or the root), against
/// which its fragment-only references resolve.
struct Place<'a> {
    pointer: String,
    resource: &'a Value,
}

struct Graph<'a> {
    nodes: Vec<Node>,
    ids: HashMap<*const Value, usize>,
    places: HashMap<*const Value, Place<'a>>,
    /// Subschemas with an `$id`: the id as written, the subschema.
    resources: Vec<(&'a str, &'a Value)>,
    /// Subschemas by `$anchor` and `$dynamicAnchor` name.
    anchors: HashMap<&'a str, Vec<&'a Value>>,
}

const IN_PLACE_LISTS: [&str; 3] = ["allOf", "anyOf", "oneOf"];
const IN_PLACE_ONE: [&str; 4] = ["not", "if", "then", "else"];
const REFERENCES: [&str; 2] = ["$ref", "$dynamicRef"];

impl<'a> Graph<'a> {
    fn build(root: &'a Value) -> Result<Self, CostError> {
        let mut g = Graph {
            nodes: Vec::new(),
            ids: HashMap::new(),
            places: HashMap::new(),
            resources: Vec::new(),
            anchors: HashMap::new(),
        };
        g.index(root, String::new(), root);
        let mut values: Vec<&'a Value> = Vec::new();
        g.node_of(root, &mut values);
        let mut next = 0;
        while next < values.len() {
            let value = values[next];
            let mut node = Node {
                pointer: std::mem::take(&mut g.nodes[next].pointer),
                ..Node::default()
            };
            if let Value::Object(map) = value {
                let one = |key: &str| map.get(key);
                let list = |key: &str| map.get(key).and_then(Value::as_array).into_iter().flatten();
                let values_of = |key: &str| {
                    map.get(key)
                        .and_then(Value::as_object)
                        .into_iter()
                        .flat_map(|m| m.values())
                };
                for key in IN_PLACE_LISTS {
                    for v in list(key) {
                        node.in_place.push(g.node_of(v, &mut values));
                    }
                }
                for key in IN_PLACE_ONE {
                    if let Some(v) = one(key) {
                        node.in_place.push(g.node_of(v, &mut values));
                    }
                }
                for v in values_of("dependentSchemas") {
                    node.in_place.push(g.node_of(v, &mut values));
                }
                for key in REFERENCES {
                    if let Some(reference) = one(key).and_then(Value::as_str) {
                        for target in g.resolve(value, reference)? {
                            node.in_place.push(g.node_of(target, &mut values));
                        }
                    }
                }
                for (name, v) in map
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    node.properties
                        .push((name.clone(), g.node_of(v, &mut values)));
                }
                for v in values_of("patternProperties") {
                    node.every_property.push(g.node_of(v, &mut values));
                }
                if let Some(v) = one("unevaluatedProperties") {
                    node.every_property.push(g.node_of(v, &mut values));
                }
                if let Some(v) = one("additionalProperties") {
                    node.other_property = Some(g.node_of(v, &mut values));
                }
                if let Some(v) = one("propertyNames") {
                    node.names = Some(g.node_of(v, &mut values));
                }
                match one("items") {
                    // Not 2020-12 (the meta-schema refuses it); counted as
                    // prefixItems would be.
                    Some(Value::Array(items)) => {
                        for v in items {
                            node.prefix.push(g.node_of(v, &mut values));
                        }
                    }
                    Some(v) => node.other_item = Some(g.node_of(v, &mut values)),
                    None => {}
                }
                for v in list("prefixItems") {
                    node.prefix.push(g.node_of(v, &mut values));
                }
                for key in ["contains", "unevaluatedItems"] {
                    if let Some(v) = one(key) {
                        node.every_item.push(g.node_of(v, &mut values));
                    }
                }
            }
            g.nodes[next] = node;
            next += 1;
        }
        Ok(g)
    }

    /// Records where every value of the document is, its `$id`s and
    /// anchors.
    fn index(&mut self, value: &'a Value, pointer: String, resource: &'a Value) {
        let resource = match value {
            Value::Object(map) => {
                let resource = match map.get("$id").and_then(Value::as_str) {
                    Some(id) => {
                        self.resources.push((id, value));
                        value
                    }
                    None => resource,
                };
                for key in ["$anchor", "$dynamicAnchor"] {
                    if let Some(name) = map.get(key).and_then(Value::as_str) {
                        self.anchors.entry(name).or_default().push(value);
                    }
                }
                for (k, v) in map {
                    let token = k.replace('~', "~0").replace('/', "~1");
                    self.index(v, format!("{pointer}/{token}"), resource);
                }
                resource
            }
            Value::Array(list) => {
                for (i, v) in list.iter().enumerate() {
                    self.index(v, format!("{pointer}/{i}"), resource);
                }
                resource
            }
            _ => resource,
        };
        self.places.insert(value, Place { pointer, resource });
    }

    fn node_of(&mut self, value: &'a Value, values: &mut Vec<&'a Value>) -> usize {
        let key: *const Value = value;
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.nodes.len();
        self.ids.insert(key, id);
        self.nodes.push(Node {
            pointer: self
                .places
                .get(&key)
                .map(|p| p.pointer.clone())
                .unwrap_or_default(),
            ..Node::default()
        });
        values.push(value);
        id
    }

    /// The subschemas `reference`, written in `from`, can mean (every one
    /// it might: anchors and ids are matched loosely, which only counts
    /// more).
    fn resolve(&self, from: &'a Value, reference: &str) -> Result<Vec<&'a Value>, CostError> {
        let at = |p: &Self| {
            p.places
                .get(&std::ptr::from_ref(from))
                .map(|p| p.pointer.clone())
                .unwrap_or_default()
        };
        let unresolved = || CostError::Unresolved {
            at: at(self),
            reference: reference.to_string(),
        };
        let (base, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let bases: Vec<&'a Value> = if base.is_empty() {
            vec![self
                .places
                .get(&std::ptr::from_ref(from))
                .map_or(from, |p| p.resource)]
        } else {
            let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
            let wanted = last(base);
            self.resources
                .iter()
                .filter(|(id, _)| {
                    let id = id.trim_end_matches('#');
                    id == base || last(id) == wanted
                })
                .map(|(_, v)| *v)
                .collect()
        };
        if bases.is_empty() {
            return Err(unresolved());
        }
        let fragment = percent_decode(fragment);
        let mut found = Vec::new();
        if fragment.is_empty() {
            found = bases;
        } else if let Some(pointer) = fragment.strip_prefix('/') {
            for b in bases {
                let mut v = b;
                for token in pointer.split('/') {
                    let token = token.replace("~1", "/").replace("~0", "~");
                    v = match v {
                        Value::Object(m) => m.get(&token).ok_or_else(unresolved)?,
                        Value::Array(l) => token
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| l.get(i))
                            .ok_or_else(unresolved)?,
                        _ => return Err(unresolved()),
                    };
                }
                found.push(v);
            }
        } else {
            found = self
                .anchors
                .get(fragment.as_str())
                .cloned()
                .ok_or_else(unresolved)?;
        }
        Ok(found)
    }

    /// Each node's place in an order of the in-place graph where every node
    /// comes before those it applies in place (there must be no loop).
    fn in_place_rank(&self) -> Result<Vec<usize>, CostError> {
        let n = self.nodes.len();
        let mut indegree = vec![0usize; n];
        for node in &self.nodes {
            for &next in &node.in_place {
                indegree[next] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(id) = ready.pop() {
            order.push(id);
            for &next in &self.nodes[id].in_place {
                indegree[next] -= 1;
                if indegree[next] == 0 {
                    ready.push(next);
                }
            }
        }
        if order.len() < n {
            let on_loop = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
            return Err(CostError::Loop(self.nodes[on_loop].pointer.clone()));
        }
        let mut rank = vec![0; n];
        for (i, id) in order.into_iter().enumerate() {
            rank[id] = i;
        }
        Ok(rank)
    }
}

/// `%XX` escapes of a URI fragment decoded (others left as written).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `n` definitions, each naming the next twice in an `anyOf`.
    fn doubling(n: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..n - 1 {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            defs.insert(format!("d{i}"), json!({"anyOf": [next.clone(), next]}));
        }
        defs.insert(format!("d{}", n - 1), json!({"type": "number"}));
        json!({"$defs": defs, "$ref": "#/$defs/d0"})
    }

    #[test]
    fn references_that_multiply_are_refused() {
        // The root, d0 … d6 (1 + 2 + … + 64) and the reference objects
        // between them (2 + 4 + … + 64).
        assert_eq!(check(&doubling(7)), Ok(1 + 127 + 126));
        let err = check(&doubling(8)).unwrap_err();
        assert!(
            matches!(err, CostError::TooCostly { depth: 0, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("256"), "{err}");
        // The same through children: every level names the next twice.
        let mut defs = serde_json::Map::new();
        for i in 0..15 {
            let next = json!({"$ref": format!("#/$defs/l{}", i + 1)});
            defs.insert(
                format!("l{i}"),
                json!({"properties": {"a": {"allOf": [next.clone(), next]}}}),
            );
        }
        defs.insert("l15".into(), json!({"type": "number"}));
        let err = check(&json!({"$defs": defs, "$ref": "#/$defs/l0"})).unwrap_err();
        assert!(matches!(err, CostError::TooCostly { .. }), "{err:?}");
    }

    #[test]
    fn recursive_schemas_of_ordinary_shape_pass() {
        // A binary tree: each child is one property or the other.
        let tree = json!({
            "$defs": {"t": {"type": "object", "properties": {
                "left": {"$ref": "#/$defs/t"}, "right": {"$ref": "#/$defs/t"},
                "value": {"type": "integer"}}}},
            "$ref": "#/$defs/t"
        });
        assert!(check(&tree).is_ok());
        // An expression language: and/or lists and not, each an expression.
        let expr = json!({
            "$defs": {"e": {"oneOf": [
                {"type": "object", "properties": {"and": {"type": "array", "items": {"$ref": "#/$defs/e"}}}},
                {"type": "object", "properties": {"or": {"type": "array", "items": {"$ref": "#/$defs/e"}}}},
                {"type": "object", "properties": {"not": {"$ref": "#/$defs/e"}}},
                {"type": "string"}
            ]}},
            "$ref": "#/$defs/e"
        });
        assert!(check(&expr).is_ok());
        // Anchors, $id-relative references and dynamic references.
        let anchored = json!({
            "$id": "https://example.com/order.json",
            "$defs": {
                "money": {"$anchor": "money", "type": "string"},
                "line": {"$id": "line.json", "properties": {"price": {"$ref": "order.json#money"}}}
            },
            "properties": {"total": {"$ref": "#money"}, "lines": {"items": {"$ref": "line.json"}}}
        });
        assert!(check(&anchored).is_ok());
        // Every built-in passes (they are measured at start too).
        for b in hookline_domain::catalogue::BUILTINS {
            let spec = hookline_domain::catalogue::EventTypeSpec::of(&b).unwrap();
            assert!(check(spec.schema.as_ref().unwrap()).is_ok(), "{}", b.name);
        }
    }

    #[test]
    fn loops_and_references_outside_are_refused() {
        let err = check(&json!({"$ref": "#"})).unwrap_err();
        assert!(matches!(err, CostError::Loop(_)), "{err:?}");
        let err = check(
            &json!({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}},
                                "$ref": "#/$defs/a"}),
        )
        .unwrap_err();
        assert!(matches!(err, CostError::Loop(_)), "{err:?}");
        let err = check(&json!({"properties": {"a": {"$ref": "#/$defs/missing"}}})).unwrap_err();
        assert_eq!(
            err,
            CostError::Unresolved {
                at: "/properties/a".into(),
                reference: "#/$defs/missing".into()
            }
        );
        assert_eq!(err.pointer(), "/properties/a");
        // A loop through a child is recursion, which ends with the value.
        assert!(check(&json!({"properties": {"next": {"$ref": "#"}}})).is_ok());
        // Escaped pointer tokens.
        let escaped = json!({
            "$defs": {"a/b": {"type": "string"}, "c~d": {"type": "string"}},
            "properties": {"x": {"$ref": "#/$defs/a~1b"}, "y": {"$ref": "#/$defs/c~0d"},
                           "z": {"$ref": "#/%24defs/a~1b"}}
        });
        assert!(check(&escaped).is_ok());
    }
}
