#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::routes::document;
use std::path::PathBuf;

/// The document as served (after `to_json`'s repairs).
fn doc() -> Value {
    serde_json::from_slice(&to_json(&document()).unwrap()).unwrap()
}

/// A validator for `schema`, resolving `#/components/...` in `doc`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

/// `docs/openapi.json` is what the server serves.
#[test]
fn the_committed_copy_is_current() {
    let served = to_json(&document()).unwrap();
    let path = committed_path();
    if std::env::var_os("HOOKLINE_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json is not the document the server serves; regenerate it with\n\
         HOOKLINE_WRITE_OPENAPI=1 cargo test -p hookline-api the_committed_copy_is_current\n\
         and commit the result"
    );
}

#[test]
fn it_is_openapi_3_1_with_info_and_no_global_security() {
    let d = doc();
    assert_eq!(d["openapi"], "3.1.0");
    assert_eq!(d["info"]["title"], "Hookline");
    assert_eq!(d["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(d["info"]["license"]["identifier"], "Apache-2.0");
    assert!(d.get("security").is_none());
    let schemes = d["components"]["securitySchemes"].as_object().unwrap();
    for name in ["tenant_api_key", "admin_token"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
}

/// The routes of `routes::router` are registered only through
/// `routes!()`, so none can be missing from the document.
#[test]
fn routes_are_registered_only_with_their_documentation() {
    let sources = [
        include_str!("../mod.rs"),
        include_str!("../subscriptions/mod.rs"),
        include_str!("../deliveries/mod.rs"),
        include_str!("../event_types/mod.rs"),
        include_str!("../audit/mod.rs"),
        include_str!("../tenants/mod.rs"),
        include_str!("../sources/mod.rs"),
        include_str!("../connectors/mod.rs"),
        include_str!("../inbound.rs"),
        include_str!("../inflow/mod.rs"),
        include_str!("../health.rs"),
        include_str!("../docs_ui.rs"),
        include_str!("../openapi.rs"),
        include_str!("../operators.rs"),
        include_str!("../svix/mod.rs"),
        include_str!("../svix/apps.rs"),
        include_str!("../svix/endpoints.rs"),
        include_str!("../svix/messages.rs"),
        include_str!("../svix/attempts.rs"),
        include_str!("../svix/event_types.rs"),
        include_str!("../svix/health.rs"),
        include_str!("../svix/openapi.rs"),
    ];
    for source in sources {
        assert!(
            !source.contains(".route(\""),
            "a route registered with `.route(` would be missing from the document; use routes!()"
        );
        // The one plain Router that has no route of its own: the wrapper
        // that trims `/api/v1` paths' trailing slash before routing.
        let wrappers = source.matches("Router::new().fallback_service(").count();
        assert_eq!(
            source.matches("Router::new()").count() - wrappers,
            source.matches("OpenApiRouter::new()").count(),
            "a plain axum Router's routes would be missing from the document; use OpenApiRouter"
        );
    }
    let ops = operations(&document());
    let ids: Vec<String> = ops
        .iter()
        .map(|(_, _, op)| op.operation_id.clone().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique");
    // Every surface the brief lists, spot-checked by path.
    for (method, path) in [
        ("POST", "/v1/subscriptions"),
        ("POST", "/v1/events"),
        ("POST", "/v1/deliveries"),
        ("GET", "/v1/attempts"),
        ("GET", "/v1/requests/{request_id}"),
        ("GET", "/v1/audit/events"),
        ("PATCH", "/v1/settings"),
        ("POST", "/v1/api-keys/rotate"),
        ("POST", "/v1/portal-sessions"),
        ("DELETE", "/v1/portal-sessions/{id}"),
        ("DELETE", "/admin/tenants/{id}/keys/{key_id}"),
        ("POST", "/admin/operator-keys"),
        ("DELETE", "/admin/operator-keys/{id}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/docs/assets/{file}"),
        ("GET", "/metrics"),
        ("POST", "/v1/sources"),
        ("GET", "/v1/sources/{id}/rejections"),
        ("POST", "/in/{source_id}"),
        ("PUT", "/inflow/{companyId}/webhooks"),
        ("DELETE", "/inflow/{companyId}/webhooks/{webHookId}"),
        ("POST", "/v1/connectors/siigo/subscriptions"),
        ("GET", "/v1/portal-sessions"),
    ] {
        assert!(
            ops.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path}"
        );
    }
    assert_eq!(ops.len(), 72, "operations: {ids:?}");
}

#[test]
fn every_operation_is_complete() {
    let d = doc();
    let tags: Vec<&str> = d["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let name = format!("{method} {path} ({id})");
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(op["summary"].is_string(), "{name}: summary");
            let tag = op["tags"][0].as_str().unwrap();
            assert!(tags.contains(&tag), "{name}: tag {tag}");
            // Security: the guard of the path's prefix, and only it;
            // `/metrics` accepts no credentials (loopback) or its token.
            if path == "/metrics" {
                assert_eq!(
                    op["security"],
                    serde_json::json!([{}, {"metrics_token": []}]),
                    "{name}: security"
                );
                assert!(op["responses"]["401"].is_object(), "{name}: 401");
                assert!(op["responses"]["403"].is_object(), "{name}: 403");
            }
            let scheme = op["security"][0].as_object().and_then(|s| {
                assert!(s.len() <= 1);
                s.keys().next().cloned()
            });
            let expected = if path.starts_with("/v1/") || path.starts_with("/inflow/") {
                Some("tenant_api_key")
            } else if path.starts_with("/admin/") {
                Some("admin_token")
            } else {
                None
            };
            assert_eq!(scheme.as_deref(), expected, "{name}: security");
            if expected.is_some() {
                assert!(op["responses"]["401"].is_object(), "{name}: 401");
                assert!(op["responses"]["503"].is_object(), "{name}: 503");
            }
            // The request id, both ways.
            assert!(
                op["parameters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == REQUEST_ID && p["in"] == "header"),
                "{name}: X-Request-Id parameter"
            );
            let responses = op["responses"].as_object().unwrap();
            let mut main = None;
            for (status, r) in responses {
                assert!(
                    r["headers"][REQUEST_ID].is_object(),
                    "{name} {status}: X-Request-Id header"
                );
                if status.starts_with('2') {
                    main.get_or_insert((status.clone(), r.clone()));
                    let consistency = r["headers"][crate::routes::CONSISTENCY_HEADER].is_object();
                    assert_eq!(consistency, method != "get", "{name} {status}: consistency");
                } else {
                    assert_eq!(
                        r["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{name} {status}"
                    );
                    let desc = r["description"].as_str().unwrap();
                    assert!(!codes_of(desc).is_empty(), "{name} {status}: codes");
                }
            }
            let (status, main) = main.unwrap_or_else(|| panic!("{name}: no 2xx"));
            if status != "204" {
                let media = main["content"].as_object().unwrap();
                assert!(
                    media.values().all(|m| m.get("example").is_some()),
                    "{name}: response example"
                );
            }
            if let Some(body) = op.get("requestBody") {
                let media = body["content"].as_object().unwrap();
                assert!(
                    media.values().all(|m| m.get("example").is_some()),
                    "{name}: request example"
                );
            }
        }
    }
}

/// Examples are valid: a contract tester replays them.
#[test]
fn every_example_satisfies_its_schema() {
    let d = doc();
    let all = examples_with_schemas(&d);
    assert!(all.len() > 90, "{}", all.len());
    for (id, what, example, schema) in all {
        let v = validator(&d, &schema);
        let errors: Vec<String> = v.iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{id} {what}: example does not satisfy its schema: {errors:?}\n{example}"
        );
    }
}

/// Schema-level examples too.
#[test]
fn component_examples_satisfy_their_schemas() {
    let d = doc();
    for (name, schema) in d["components"]["schemas"].as_object().unwrap() {
        for example in schema["examples"].as_array().into_iter().flatten() {
            let v = validator(&d, &json!({"$ref": format!("#/components/schemas/{name}")}));
            assert!(v.is_valid(example), "{name}: {example}");
        }
    }
}

/// Links name existing operations and their parameters.
#[test]
fn links_lead_somewhere() {
    let d = doc();
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in d["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let names = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            params.insert(op["operationId"].as_str().unwrap().to_string(), names);
        }
    }
    let mut count = 0;
    for item in d["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for r in op["responses"].as_object().unwrap().values() {
                for link in r["links"].as_object().into_iter().flatten().map(|l| l.1) {
                    let target = link["operationId"].as_str().unwrap();
                    let known = params
                        .get(target)
                        .unwrap_or_else(|| panic!("no operation {target}"));
                    for p in link["parameters"].as_object().unwrap().keys() {
                        assert!(known.contains(p), "{target} has no parameter {p}");
                    }
                    count += 1;
                }
            }
        }
    }
    assert!(count >= 20, "{count}");
}

/// Request schemas refuse unknown fields, as the server does.
#[test]
fn request_bodies_refuse_unknown_fields() {
    let d = doc();
    for (id, what, example, schema) in examples_with_schemas(&d) {
        // `receive_inbound` takes the provider's own body, whatever it is.
        if !what.starts_with("request") || id == "receive_inbound" {
            continue;
        }
        let mut extra = example.clone();
        extra["surely_unknown_field"] = json!(1);
        assert!(
            !validator(&d, &schema).is_valid(&extra),
            "{id}: an unknown field is accepted by the schema"
        );
    }
}

/// The name patterns accept exactly what the domain's parsers accept.
#[test]
fn name_patterns_agree_with_the_domain() {
    use hookline_domain::{EventPattern, EventType};
    let d = doc();
    let name = validator(&d, &json!({"$ref": "#/components/schemas/EventName"}));
    let pattern = validator(&d, &json!({"$ref": "#/components/schemas/EventPattern"}));
    let long = format!("a.{}", "b".repeat(98));
    let too_long = format!("a.{}", "b".repeat(99));
    for s in [
        "invoice.created",
        "salesOrder.created",
        "a.b.c_1",
        "*",
        "invoice.*",
        "a.b.*",
        "invoice",
        "invoice.",
        ".x",
        "in voice.x",
        "inv*.x",
        "*.x",
        "invoice.**",
        "",
        "ünï.côde",
        long.as_str(),
        too_long.as_str(),
    ] {
        assert_eq!(
            name.is_valid(&json!(s)),
            EventType::parse(s, "f").is_ok(),
            "EventName {s:?}"
        );
        assert_eq!(
            pattern.is_valid(&json!(s)),
            EventPattern::parse(s, "f").is_ok(),
            "EventPattern {s:?}"
        );
    }
}

/// The create-subscription body needs the filter as `events` or `event`,
/// not both, as the server does.
#[test]
fn a_subscription_needs_exactly_one_filter_form() {
    let d = doc();
    let v = validator(
        &d,
        &json!({"$ref": "#/components/schemas/CreateSubscriptionRequest"}),
    );
    let url = examples::URL;
    assert!(v.is_valid(&json!({"url": url, "events": ["invoice.*"]})));
    assert!(v.is_valid(&json!({"url": url, "event": "invoice.created"})));
    assert!(v.is_valid(&json!({"url": url, "event": "invoice.created", "events": null})));
    assert!(!v.is_valid(&json!({"url": url})));
    assert!(!v.is_valid(&json!({"url": url, "events": null})));
    assert!(!v.is_valid(&json!({"url": url, "events": ["a.b"], "event": "a.b"})));
    assert!(!v.is_valid(&json!({"events": ["a.b"]})));
}

/// Header maps, tenant names and free text: the schema refuses what the
/// domain refuses (the names Hookline sets itself aside).
#[test]
fn text_rules_agree_with_the_domain() {
    use hookline_domain::subscription::CustomHeaders;
    use hookline_domain::tenant::TenantName;
    let d = doc();
    let sub = validator(
        &d,
        &json!({"$ref": "#/components/schemas/CreateSubscriptionRequest"}),
    );
    for (name, value) in [
        ("X-Erp-Token", "abc"),
        ("X-Empty", ""),
        ("", "x"),
        ("Bad Name", "x"),
        ("X-Ok", " padded"),
        ("X-Ok", "tab\there"),
        ("X-Ok", "line\r\nInjected: yes"),
        ("X-Ok", "ünïcode"),
    ] {
        let body = json!({"url": examples::URL, "events": ["a.b"], "headers": {name: value}});
        let map = [(name.to_string(), value.to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            sub.is_valid(&body),
            CustomHeaders::parse(map).is_ok(),
            "{name:?}: {value:?}"
        );
    }
    let tenant = validator(&d, &json!({"$ref": "#/components/schemas/TenantRequest"}));
    for name in [
        "Acme",
        " Acme ",
        "",
        "   ",
        "Ac\u{7}me",
        "Ac\u{85}me",
        "Ácme",
    ] {
        assert_eq!(
            tenant.is_valid(&json!({"name": name})),
            TenantName::parse(name).is_ok(),
            "{name:?}"
        );
    }
    for text in ["ok", "two\nlines\tand a tab", "bell\u{7}", "cr\r", ""] {
        let body = json!({"url": examples::URL, "events": ["a.b"], "description": text});
        assert_eq!(
            sub.is_valid(&body),
            hookline_domain::validation::check_free_text("description", text, 500).is_ok(),
            "{text:?}"
        );
    }
}

/// Secrets: the document's rule is the domain's, `whsec_` base64 included.
#[test]
fn secret_rules_agree_with_the_domain() {
    use hookline_domain::SigningSecret;
    let d = doc();
    let sub = validator(
        &d,
        &json!({"$ref": "#/components/schemas/CreateSubscriptionRequest"}),
    );
    for secret in [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_AAAA",
        "whsec_AA==",
        "whsec_AB==",
        "whsec_AAA=",
        "whsec_AAB=",
        "whsec_AAAAA",
        "whsec_!!!!!!",
        "whsec_",
        "whsec_ab",
        "plain-secret",
        "short",
        "tab\tsecret",
        "my-webhook-secret",
    ] {
        let body = json!({"url": examples::URL, "events": ["a.b"], "secret": secret});
        assert_eq!(
            sub.is_valid(&body),
            SigningSecret::parse(secret).is_ok(),
            "{secret:?}"
        );
    }
}

/// An event type's schema is an object or a boolean; its example is an
/// object (the `data` of an event), as the server checks.
#[test]
fn event_type_bodies_take_schemas_and_object_examples() {
    let d = doc();
    let create = validator(
        &d,
        &json!({"$ref": "#/components/schemas/CreateEventTypeRequest"}),
    );
    assert!(create.is_valid(&json!({"name": "a.b", "schema": true})));
    assert!(create.is_valid(&json!({"name": "a.b", "schema": {"type": "object"}, "example": {}})));
    assert!(!create.is_valid(&json!({"name": "a.b", "schema": 0})));
    assert!(!create.is_valid(&json!({"name": "a.b", "example": [1]})));
}
