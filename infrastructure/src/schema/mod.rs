//! JSON Schema (draft 2020-12) with the `jsonschema` crate. Remote and file
//! references are never fetched (the crate's resolvers are compiled out),
//! and `pattern` uses the linear-time `regex` engine with a size limit, so
//! a tenant's schema cannot make Hookline call out or spin; a schema whose
//! references could make one value cost too many evaluations is refused
//! (`cost`).

pub mod cost;

use hookline_application::ports::{DataSchema, SchemaCompiler, SchemaViolation};
use jsonschema::{PatternOptions, Validator};
use serde_json::Value;
use std::sync::Arc;

/// Most violations reported for one document.
pub const MAX_VIOLATIONS: usize = 20;
/// Largest compiled regular expression of a `pattern`.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSchemaCompiler;

/// Most subschema evaluations spent listing a document's violations; past
/// it only the first is reported (listing them all evaluates every branch
/// of every `anyOf` for every value, where a check stops at the first
/// failure).
const LISTING_BUDGET: u64 = 200_000;

struct Compiled {
    validator: Validator,
    /// Most subschemas one value can be checked by (`cost::check`).
    per_value: u64,
}

impl DataSchema for Compiled {
    fn violations(&self, data: &Value) -> Vec<SchemaViolation> {
        let violation = |e: jsonschema::ValidationError<'_>| SchemaViolation {
            pointer: pointer(&e),
            message: message(&e),
        };
        if self.validator.is_valid(data) {
            return Vec::new();
        }
        if values_in(data).saturating_mul(self.per_value) <= LISTING_BUDGET {
            return self
                .validator
                .iter_errors(data)
                .take(MAX_VIOLATIONS)
                .map(violation)
                .collect();
        }
        self.validator
            .validate(data)
            .err()
            .map(violation)
            .into_iter()
            .collect()
    }
}

/// Longest message that quotes the value it is about; past it the value is
/// named by its pointer instead (a message per violation quoting a large
/// value made answers many times larger than the request).
const MAX_QUOTING_MESSAGE: usize = 240;

/// The violation's message, quoting the value only when that keeps it
/// short; cut at that length even so (a property name is quoted as the
/// value of `propertyNames`, and schemas can quote long lists).
fn message(e: &jsonschema::ValidationError<'_>) -> String {
    let quoting = e.to_string();
    if quoting.len() <= MAX_QUOTING_MESSAGE {
        return quoting;
    }
    cut(e.masked_with("the value").to_string(), MAX_QUOTING_MESSAGE)
}

/// Where the violation is: its JSON pointer, cut when a long property
/// name makes it long.
fn pointer(e: &jsonschema::ValidationError<'_>) -> String {
    cut(e.instance_path().to_string(), MAX_QUOTING_MESSAGE)
}

/// `s` cut to at most `max` bytes (and `…`) at a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// How many values `data` is made of (itself, and everything in it).
fn values_in(data: &Value) -> u64 {
    let mut n = 0u64;
    let mut stack = vec![data];
    while let Some(v) = stack.pop() {
        n += 1;
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    n
}

impl SchemaCompiler for JsonSchemaCompiler {
    fn compile(&self, schema: &Value) -> Result<Arc<dyn DataSchema>, Vec<SchemaViolation>> {
        let meta = jsonschema::draft202012::meta::validator();
        let found: Vec<SchemaViolation> = meta
            .iter_errors(schema)
            .take(MAX_VIOLATIONS)
            .map(|e| SchemaViolation {
                pointer: pointer(&e),
                message: message(&e),
            })
            .collect();
        if !found.is_empty() {
            return Err(found);
        }
        let per_value = cost::check(schema).map_err(|e| {
            vec![SchemaViolation {
                pointer: e.pointer().to_string(),
                message: e.to_string(),
            }]
        })?;
        jsonschema::draft202012::options()
            .with_pattern_options(PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT))
            .build(schema)
            .map(|validator| {
                Arc::new(Compiled {
                    validator,
                    per_value,
                }) as Arc<dyn DataSchema>
            })
            .map_err(|e| {
                vec![SchemaViolation {
                    pointer: pointer(&e),
                    message: message(&e),
                }]
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_domain::catalogue::{EventTypeSpec, BUILTINS};
    use serde_json::json;

    #[test]
    fn violations_quote_large_values_by_pointer_only() {
        let schema = JsonSchemaCompiler
            .compile(&json!({"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}))
            .unwrap();
        let big: Vec<u32> = (0..1000).collect();
        let found = schema.violations(&json!({"a": big, "b": 7}));
        assert_eq!(found.len(), 2);
        let a = found.iter().find(|v| v.pointer == "/a").unwrap();
        assert!(a.message.len() < 100, "{}", a.message);
        assert!(a.message.contains("is not of type"), "{}", a.message);
        let b = found.iter().find(|v| v.pointer == "/b").unwrap();
        assert!(
            b.message.starts_with('7'),
            "small values are still quoted: {}",
            b.message
        );
    }

    #[test]
    fn long_property_names_are_cut_in_pointers_and_messages() {
        let schema = JsonSchemaCompiler
            .compile(&json!({"additionalProperties": {"type": "string"},
                             "propertyNames": {"maxLength": 3}}))
            .unwrap();
        let long = "k".repeat(100_000);
        let found = schema.violations(&json!({ long.clone(): 1 }));
        assert!(!found.is_empty());
        for v in &found {
            assert!(v.pointer.len() < 300 && v.message.len() < 300, "{v:?}");
        }
    }

    #[test]
    fn violations_name_json_pointers() {
        let schema = JsonSchemaCompiler
            .compile(&json!({
                "type": "object",
                "required": ["invoice_id"],
                "properties": {"amount": {"type": "string"}, "lines": {"type": "array", "items": {"type": "integer"}}}
            }))
            .unwrap();
        let found = schema.violations(&json!({"amount": 12, "lines": [1, "x"]}));
        let pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&""), "{found:?}");
        assert!(pointers.contains(&"/amount"), "{found:?}");
        assert!(pointers.contains(&"/lines/1"), "{found:?}");
        assert!(found.iter().any(|v| v.message.contains("invoice_id")));
        assert!(schema
            .violations(&json!({"invoice_id": "a", "amount": "1"}))
            .is_empty());
    }

    #[test]
    fn bad_schemas_are_refused_with_pointers_and_remote_refs_are_not_fetched() {
        let err = JsonSchemaCompiler
            .compile(&json!({"type": "object", "properties": {"a": {"type": "strng"}}}))
            .err()
            .unwrap();
        assert!(
            err.iter().any(|v| v.pointer == "/properties/a/type"),
            "{err:?}"
        );
        let remote = JsonSchemaCompiler.compile(&json!({"$ref": "http://127.0.0.1:9/x.json"}));
        assert!(remote.is_err());
        let file = JsonSchemaCompiler.compile(&json!({"$ref": "file:///etc/passwd"}));
        assert!(file.is_err());
    }

    #[test]
    fn a_schema_whose_references_multiply_is_refused_with_the_reason() {
        let mut defs = serde_json::Map::new();
        for i in 0..22 {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            defs.insert(format!("d{i}"), json!({"anyOf": [next.clone(), next]}));
        }
        defs.insert("d22".into(), json!({"type": "number"}));
        let err = JsonSchemaCompiler
            .compile(&json!({"$defs": defs, "$ref": "#/$defs/d0"}))
            .err()
            .unwrap();
        assert!(err[0].message.contains("more than 256"), "{err:?}");
    }

    #[test]
    fn a_large_document_failing_a_wide_schema_gets_its_first_violation_at_once() {
        // 250 branches for every item of 50,000: listing every violation
        // evaluates them all (seconds); the first one is found at the
        // first item.
        let branches: Vec<Value> = (0..250).map(|i| json!({"const": i})).collect();
        let schema = JsonSchemaCompiler
            .compile(&json!({"items": {"anyOf": branches}}))
            .unwrap();
        let data = Value::Array((0..50_000).map(|_| json!("x")).collect());
        let found = schema.violations(&data);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pointer, "/0");
        // A small one still gets all of them.
        let found = schema.violations(&json!(["x", 1, "y"]));
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn patterns_run_in_linear_time() {
        let schema = JsonSchemaCompiler
            .compile(&json!({"type": "string", "pattern": "^(a+)+$"}))
            .unwrap();
        let hostile = format!("{}!", "a".repeat(5000));
        assert_eq!(schema.violations(&json!(hostile)).len(), 1);
    }

    #[test]
    fn every_builtin_schema_compiles_and_accepts_its_example() {
        for b in BUILTINS {
            let spec = EventTypeSpec::of(&b).unwrap();
            let compiled = JsonSchemaCompiler
                .compile(spec.schema.as_ref().unwrap())
                .unwrap();
            assert!(
                compiled
                    .violations(spec.example.as_ref().unwrap())
                    .is_empty(),
                "{}",
                b.name
            );
        }
    }
}
