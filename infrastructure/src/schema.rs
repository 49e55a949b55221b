//! JSON Schema (draft 2020-12) with the `jsonschema` crate. Remote and file
//! references are never fetched (the crate's resolvers are compiled out),
//! and `pattern` uses the linear-time `regex` engine with a size limit, so
//! a tenant's schema cannot make Hookline call out or spin.

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

struct Compiled(Validator);

impl DataSchema for Compiled {
    fn violations(&self, data: &Value) -> Vec<SchemaViolation> {
        self.0
            .iter_errors(data)
            .take(MAX_VIOLATIONS)
            .map(|e| SchemaViolation {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }
}

impl SchemaCompiler for JsonSchemaCompiler {
    fn compile(&self, schema: &Value) -> Result<Arc<dyn DataSchema>, Vec<SchemaViolation>> {
        let meta = jsonschema::draft202012::meta::validator();
        let found: Vec<SchemaViolation> = meta
            .iter_errors(schema)
            .take(MAX_VIOLATIONS)
            .map(|e| SchemaViolation {
                pointer: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        if !found.is_empty() {
            return Err(found);
        }
        jsonschema::draft202012::options()
            .with_pattern_options(PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT))
            .build(schema)
            .map(|v| Arc::new(Compiled(v)) as Arc<dyn DataSchema>)
            .map_err(|e| {
                vec![SchemaViolation {
                    pointer: e.instance_path().to_string(),
                    message: e.to_string(),
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
