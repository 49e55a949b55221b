//! The event-type catalogue end to end: built-ins grouped and paginated, a
//! tenant's own types with history, audit and as-of reads, schema checks on
//! publish naming JSON pointers, strict mode and deprecation, filter
//! warnings, camelCase names through publish, filter and delivery, and the
//! example in the real envelope.

use hookline_tests::process::run_cli;
use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::publish;
use hookline_tests::{expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn names(page: &Value) -> Vec<String> {
    hookline_tests::strings(&page["data"], "name")
}

async fn publish_status(app: &TestApp, t: &Tenant, event_type: &str, data: Value) -> (u16, Value) {
    let res = app
        .post(
            t,
            "/v1/events",
            json!({"event_type": event_type, "data": data}),
        )
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_tenant_starts_with_the_builtins_grouped_and_paginated() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let mut seen = Vec::new();
    let mut groups = Vec::new();
    let mut path = "/v1/event-types?limit=7".to_string();
    loop {
        let page = expect_json(app.get(&t, &path).await, 200).await;
        assert!(page["data"].as_array().unwrap().len() <= 7);
        seen.extend(names(&page));
        for g in page["groups"].as_array().unwrap() {
            let name = g["name"].as_str().unwrap().to_string();
            if groups.last() != Some(&name) {
                groups.push(name);
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/event-types?limit=7&cursor={c}"),
            None => break,
        }
    }
    for expected in [
        "invoice.created",
        "invoice.sent",
        "invoice.authorized",
        "invoice.rejected",
        "invoice.cancelled",
        "payment.received",
        "payment.failed",
        "customer.created",
        "customer.updated",
        "sales_order.created",
        "sales_order.confirmed",
        "sales_order.cancelled",
        "inventory.updated",
        "inventory.low",
        "purchase_order.created",
        "document.updated",
        "error.occurred",
    ] {
        assert!(seen.iter().any(|n| n == expected), "{expected} in {seen:?}");
    }
    let mut sorted = groups.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(groups, sorted, "each group once, in order");
    assert!(groups.contains(&"Invoices".to_string()));
    let one = expect_json(app.get(&t, "/v1/event-types/invoice.created").await, 200).await;
    assert_eq!(one["group"], "Invoices");
    assert_eq!(one["builtin"], true);
    assert_eq!(one["schema"]["type"], "object");
    assert_eq!(one["example"]["invoice_number"], "001-001-000000001");
    let only = expect_json(app.get(&t, "/v1/event-types?group=Payments").await, 200).await;
    assert_eq!(names(&only), ["payment.failed", "payment.received"]);
    let bad_cursor = expect_json(app.get(&t, "/v1/event-types?cursor=xyz").await, 400).await;
    assert_eq!(bad_cursor["code"], "validation_error");
    let bad_name = expect_json(app.get(&t, "/v1/event-types/not%20a%20name").await, 400).await;
    assert!(bad_name["detail"].as_str().unwrap().contains("name"));
    let unknown = expect_json(app.get(&t, "/v1/event-types/no.such").await, 404).await;
    assert_eq!(unknown["code"], "not_found");

    // Operational types are listed, but only Hookline describes them.
    let opened = "/v1/event-types/hookline.circuit.opened";
    assert_eq!(
        expect_json(app.get(&t, opened).await, 200).await["builtin"],
        true
    );
    for refused in [
        app.patch(&t, opened, json!({"description": "mine"})).await,
        app.delete(&t, opened).await,
        app.post(&t, "/v1/event-types", json!({"name": "hookline.mine.made"}))
            .await,
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "Hookline.circuit.opened"}),
        )
        .await,
    ] {
        let body = expect_json(refused, 409).await;
        assert_eq!(body["code"], "event_type_reserved", "{body}");
    }
    // An example nested deeper than data may be is refused, and the
    // catalogue stays readable.
    let deep: Value =
        serde_json::from_str(&format!("{}1{}", "{\"a\":".repeat(126), "}".repeat(126))).unwrap();
    let refused = expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "deep.example", "example": deep}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("deeper than 64"),
        "{refused}"
    );
    expect_json(app.get(&t, "/v1/event-types").await, 200).await;
    // Nor may a tenant publish a name that passes for one in another case.
    let (status, body) = publish_status(&app, &t, "HOOKLINE.circuit.opened", json!({})).await;
    assert_eq!(status, 400, "{body}");
    let kept = expect_json(app.get(&t, opened).await, 200).await;
    assert_eq!(kept["archived"], false);
    assert_ne!(kept["description"], "mine");
}

#[tokio::test]
async fn a_tenants_own_types_have_history_audit_and_as_of_reads() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let created = expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({
                "name": "order.shipped",
                "group": "Orders",
                "description": "An order left the warehouse.",
                "schema": {"type": "object", "required": ["order_id"], "properties": {"order_id": {"type": "string"}}},
                "example": {"order_id": "so-001"}
            }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["builtin"], false);
    assert_eq!(created["deprecated"], false);
    let exists = expect_json(
        app.post(&t, "/v1/event-types", json!({"name": "order.shipped"}))
            .await,
        409,
    )
    .await;
    assert_eq!(exists["code"], "event_type_exists");
    let before_change = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await; // distinct timestamps for as_of
    let changed = expect_json(
        app.patch(
            &t,
            "/v1/event-types/order.shipped",
            json!({"description": "Shipped to the customer.", "deprecated": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["description"], "Shipped to the customer.");
    assert_eq!(changed["deprecated"], true);
    let then = expect_json(
        app.get(
            &t,
            &format!(
                "/v1/event-types/order.shipped?as_of={}",
                before_change.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(then["description"], "An order left the warehouse.");
    assert_eq!(then["deprecated"], false);
    // Another tenant has no such type.
    expect_json(app.get(&other, "/v1/event-types/order.shipped").await, 404).await;
    // Archive: out of the list, in it with include_archived, history kept.
    let archived = app.delete(&t, "/v1/event-types/order.shipped").await;
    assert_eq!(archived.status(), 204);
    let list = expect_json(app.get(&t, "/v1/event-types?group=Orders").await, 200).await;
    assert!(names(&list).is_empty(), "{list}");
    let all = expect_json(
        app.get(&t, "/v1/event-types?group=Orders&include_archived=true")
            .await,
        200,
    )
    .await;
    assert_eq!(all["data"][0]["archived"], true);
    let refused = expect_json(
        app.patch(
            &t,
            "/v1/event-types/order.shipped",
            json!({"description": "x"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(refused["code"], "event_type_archived");
    // A built-in changed for the first time is recorded first.
    app.delete(&t, "/v1/event-types/inventory.low").await;
    let history = expect_json(
        app.get(&t, "/v1/event-types/order.shipped/history").await,
        200,
    )
    .await;
    let kinds: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "EventTypeDefined",
            "EventTypeUpdated",
            "EventTypeDeprecated",
            "EventTypeArchived"
        ]
    );
    let low = expect_json(
        app.get(&t, "/v1/event-types/inventory.low/history").await,
        200,
    )
    .await;
    assert_eq!(low["data"][0]["payload"]["builtin"], true);
    assert_eq!(low["data"][1]["event_type"], "EventTypeArchived");
    let untouched = expect_json(
        app.get(&t, "/v1/event-types/payment.failed/history").await,
        200,
    )
    .await;
    assert_eq!(untouched["data"], json!([]));
    // Defined again after archiving.
    expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "order.shipped", "group": "Orders"}),
        )
        .await,
        201,
    )
    .await;
    // The events are in the audit log, chained; replays rebuild the same
    // read model.
    let audit = expect_json(
        app.get(&t, "/v1/audit/events?aggregate_type=EventType")
            .await,
        200,
    )
    .await;
    assert_eq!(audit["data"].as_array().unwrap().len(), 7, "{audit}");
    let env = HashMap::from([(
        "HOOKLINE_SECRET_KEY".to_string(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
    )]);
    let url = app.db.url.clone();
    let verified = run_cli(&["audit", "verify", "--database-url", &url], &env).await;
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    let checked = run_cli(
        &[
            "replay",
            "--projection",
            "event_types",
            "--check",
            "--database-url",
            &url,
        ],
        &env,
    )
    .await;
    assert_eq!(
        checked.code,
        Some(0),
        "{}\n{}",
        checked.stdout,
        checked.stderr
    );
    assert!(
        checked.stdout.contains("event_types: replayed"),
        "{}",
        checked.stdout
    );
}

#[tokio::test]
async fn publishing_checks_data_against_the_schema_naming_json_pointers() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/h"), "events": ["invoice.*"]}))
        .await;
    let (status, err) = publish_status(
        &app,
        &t,
        "invoice.created",
        json!({"invoice_number": 7, "amount": "1.00", "currency": "USD"}),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], "validation_error");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("/data: \"invoice_id\" is a required property"),
        "{detail}"
    );
    assert!(detail.contains("/data/invoice_number"), "{detail}");
    assert!(err["request_id"].is_string());
    // Nothing was stored.
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Message'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(messages, 0);
    // Valid data passes, and a tenant's own schema applies to its type.
    publish(
        &app,
        &t,
        "invoice.created",
        json!({"invoice_id": "inv-1", "invoice_number": "001", "amount": "1.00", "currency": "USD"}),
    )
    .await;
    expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "invoice.paid", "group": "Invoices",
                   "schema": {"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "integer"}}}}}),
        )
        .await,
        201,
    )
    .await;
    let (status, err) =
        publish_status(&app, &t, "invoice.paid", json!({"lines": [1, "two"]})).await;
    assert_eq!(status, 400);
    assert!(
        err["detail"].as_str().unwrap().contains("/data/lines/1"),
        "{err}"
    );
    // A schema that is not a schema is refused where it is wrong.
    let bad = expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "x.y", "schema": {"type": "object", "properties": {"a": {"type": "strng"}}}}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("/schema/properties/a/type"),
        "{bad}"
    );
    // A schema of 1.6 KB whose references double at each of 23 levels
    // (2²³ evaluations per value: a publish used to hold a core for
    // minutes) is refused, naming why.
    let mut defs = serde_json::Map::new();
    for i in 0..22 {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(format!("d{i}"), json!({"anyOf": [next.clone(), next]}));
    }
    defs.insert("d22".into(), json!({"type": "number"}));
    let costly = expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "x.y", "schema": {"$defs": defs, "$ref": "#/$defs/d0"}}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(costly["code"], "validation_error", "{costly}");
    assert!(
        costly["detail"]
            .as_str()
            .unwrap()
            .contains("more than 256 subschemas"),
        "{costly}"
    );
    let wrong_example = expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "x.y", "schema": {"type": "object", "required": ["id"]}, "example": {}}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        wrong_example["detail"]
            .as_str()
            .unwrap()
            .contains("/example"),
        "{wrong_example}"
    );
    // Clearing a built-in's schema lets any object through.
    expect_json(
        app.patch(&t, "/v1/event-types/invoice.sent", json!({"schema": null}))
            .await,
        200,
    )
    .await;
    publish(&app, &t, "invoice.sent", json!({"anything": true})).await;
}

#[tokio::test]
async fn strict_mode_refuses_unknown_and_archived_types_and_deprecated_ones_carry_a_header() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/h"), "events": ["*"]}))
        .await;
    let settings = expect_json(app.get(&t, "/v1/settings").await, 200).await;
    assert_eq!(settings, json!({"strict_event_types": false}));
    // Off by default: any type is accepted.
    publish(&app, &t, "made.up", json!({})).await;
    let on = expect_json(
        app.patch(&t, "/v1/settings", json!({"strict_event_types": true}))
            .await,
        200,
    )
    .await;
    assert_eq!(on["strict_event_types"], true);
    let (status, err) = publish_status(&app, &t, "made.up", json!({})).await;
    assert_eq!(status, 400, "{err}");
    let detail = err["detail"].as_str().unwrap();
    assert!(
        detail.contains("'made.up' is not in this tenant's event-type catalogue"),
        "{detail}"
    );
    // Archived: refused too.
    app.delete(&t, "/v1/event-types/error.occurred").await;
    let (status, err) = publish_status(
        &app,
        &t,
        "error.occurred",
        json!({"code": "x", "message": "y"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["detail"].as_str().unwrap().contains("archived"),
        "{err}"
    );
    // Deprecated: accepted, with a Deprecation header (RFC 9745).
    expect_json(
        app.patch(
            &t,
            "/v1/event-types/customer.updated",
            json!({"deprecated": true}),
        )
        .await,
        200,
    )
    .await;
    let res = app
        .post(
            &t,
            "/v1/events",
            json!({"event_type": "customer.updated", "data": {"customer_id": "c-1"}}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let header = res.headers()["deprecation"].to_str().unwrap().to_string();
    assert!(header.starts_with('@'), "{header}");
    header[1..].parse::<i64>().unwrap();
    let fine = app
        .post(
            &t,
            "/v1/events",
            json!({"event_type": "customer.created", "data": {"customer_id": "c-1", "business_name": "Acme"}}),
        )
        .await;
    assert_eq!(fine.status(), 202);
    assert!(fine.headers().get("deprecation").is_none());
    // Another tenant is not strict.
    let other = app.tenant("other").await;
    app.subscribe(&other, json!({"url": rx.url("/o"), "events": ["*"]}))
        .await;
    publish(&app, &other, "made.up", json!({})).await;
    // Bad settings requests.
    let empty = expect_json(app.patch(&t, "/v1/settings", json!({})).await, 400).await;
    assert_eq!(empty["code"], "bad_request");
    let unknown = expect_json(
        app.patch(&t, "/v1/settings", json!({"strict": true})).await,
        400,
    )
    .await;
    assert_eq!(unknown["code"], "invalid_body");
    let off = expect_json(
        app.patch(&t, "/v1/settings", json!({"strict_event_types": false}))
            .await,
        200,
    )
    .await;
    assert_eq!(off["strict_event_types"], false);
    publish(&app, &t, "made.up", json!({})).await;
}

#[tokio::test]
async fn filters_naming_types_not_in_the_catalogue_are_saved_with_a_warning() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let res = app
        .post(
            &t,
            "/v1/subscriptions",
            json!({"url": "https://example.com/h", "events": ["invoice.created", "invoice.creatd", "nothing.*", "*"]}),
        )
        .await;
    let created = expect_json(res, 201).await;
    assert_eq!(
        created["warnings"],
        json!([
            "events[1]: 'invoice.creatd' is not in the catalogue",
            "events[2]: 'nothing.*' matches no event type in the catalogue"
        ])
    );
    let clean = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/g", "events": ["invoice.*"]}),
        )
        .await;
    assert!(clean.get("warnings").is_none(), "{clean}");
    let id = clean["id"].as_str().unwrap();
    let updated = expect_json(
        app.patch(
            &t,
            &format!("/v1/subscriptions/{id}"),
            json!({"events": ["payment.received", "payment.recieved"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        updated["warnings"],
        json!(["events[1]: 'payment.recieved' is not in the catalogue"])
    );
    let read = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
    assert!(read.get("warnings").is_none());
}

#[tokio::test]
async fn camel_case_names_work_through_the_catalogue_publish_filters_and_delivery() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "salesOrder.created", "group": "InFlow",
                   "schema": {"type": "object", "required": ["salesOrderId"]},
                   "example": {"salesOrderId": "so-1"}}),
        )
        .await,
        201,
    )
    .await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/inflow"), "events": ["salesOrder.*", "purchaseOrder.updated"]}),
        )
        .await;
    assert!(sub.get("warnings").unwrap()[0]
        .as_str()
        .unwrap()
        .contains("'purchaseOrder.updated' is not in the catalogue"));
    assert_eq!(
        sub["events"],
        json!(["salesOrder.*", "purchaseOrder.updated"])
    );
    publish(
        &app,
        &t,
        "salesOrder.created",
        json!({"salesOrderId": "so-9"}),
    )
    .await;
    publish(&app, &t, "purchaseOrder.updated", json!({"id": 1})).await;
    let got = rx.wait_for(2, WAIT).await;
    let mut events: Vec<String> = got
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    events.sort();
    assert_eq!(events, ["purchaseOrder.updated", "salesOrder.created"]);
    // Names are case-sensitive: the lowercase spelling matches nothing.
    let (status, body) = publish_status(&app, &t, "salesorder.created", json!({})).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "no_subscriptions");
    let (status, body) = publish_status(&app, &t, "salesOrder.created", json!({})).await;
    assert_eq!(status, 400, "the type's schema applies: {body}");
    let listed = expect_json(
        app.get(&t, "/v1/subscriptions?event=salesOrder.created")
            .await,
        200,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let one = expect_json(app.get(&t, "/v1/event-types/salesOrder.created").await, 200).await;
    assert_eq!(one["group"], "InFlow");
}

#[tokio::test]
async fn the_example_is_what_a_receiver_gets() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let example = expect_json(
        app.get(&t, "/v1/event-types/payment.received/example")
            .await,
        200,
    )
    .await;
    assert_eq!(example["event"], "payment.received");
    assert_eq!(example["tenant_id"], t.id.as_str());
    assert_eq!(example["data"]["payment_id"], "pay-456");
    app.subscribe(
        &t,
        json!({"url": rx.url("/h"), "events": ["payment.received"]}),
    )
    .await;
    publish(&app, &t, "payment.received", example["data"].clone()).await;
    let got = rx.wait_for(1, WAIT).await;
    let body = got[0].json();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&body), keys(&example));
    assert_eq!(body["data"], example["data"]);
    // In the order a delivery sends them.
    let text = app
        .get(&t, "/v1/event-types/payment.received/example")
        .await
        .text()
        .await
        .unwrap();
    let order = |text: &str| {
        [
            "\"id\"",
            "\"timestamp\"",
            "\"event\"",
            "\"data\"",
            "\"tenant_id\"",
        ]
        .map(|k| text.find(k).unwrap())
    };
    let sent = String::from_utf8(got[0].body.to_vec()).unwrap();
    for positions in [order(&text), order(&sent)] {
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text} / {sent}");
    }
    // A type without an example.
    expect_json(
        app.post(&t, "/v1/event-types", json!({"name": "bare.type"}))
            .await,
        201,
    )
    .await;
    let none = expect_json(app.get(&t, "/v1/event-types/bare.type/example").await, 404).await;
    assert_eq!(none["code"], "no_example");
}

#[tokio::test]
async fn concurrent_defines_stop_at_the_limit_of_own_types() {
    // Each define used to count the tenant's types on its own: 32 at once
    // each found room, and a tenant held 1,021 of the 1,000 allowed.
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    // The organisation's types (the Svix-compatible API defines them),
    // which every tenant sees, are not the tenant's own: they used to
    // count against its 1,000.
    for i in 0..3 {
        let res = app
            .client
            .post(app.url("/api/v1/event-type"))
            .bearer_auth(hookline_tests::server::ADMIN_TOKEN)
            .json(&json!({"name": format!("org.t{i}"), "description": "shared"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    for i in 0..990 {
        let res = app
            .post(
                &t,
                "/v1/event-types",
                json!({"name": format!("lim.t{i:04}")}),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let attempts = (0..30).map(|i| {
        let app = &app;
        let t = &t;
        async move {
            app.post(
                t,
                "/v1/event-types",
                json!({"name": format!("lim.c{i:04}")}),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!((created, refused), (10, 20), "{statuses:?}");
}

#[tokio::test]
async fn a_bad_name_is_the_only_fault_named_when_no_group_is_given() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    for body in [json!({"name": "a..b"}), json!({})] {
        let err = expect_json(app.post(&t, "/v1/event-types", body).await, 400).await;
        let detail = err["detail"].as_str().unwrap();
        assert!(detail.starts_with("name"), "{detail}");
        assert!(!detail.contains("group"), "{detail}");
    }
}

#[tokio::test]
async fn patch_nulls_clear_what_can_be_cleared_and_leave_the_rest() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    expect_json(
        app.post(
            &t,
            "/v1/event-types",
            json!({"name": "order.packed", "group": "Orders", "description": "Packed."}),
        )
        .await,
        201,
    )
    .await;
    let path = "/v1/event-types/order.packed";
    let cleared = expect_json(app.patch(&t, path, json!({"description": null})).await, 200).await;
    assert_eq!(cleared["description"], "");
    let nothing = expect_json(app.patch(&t, path, json!({"group": null})).await, 400).await;
    assert_eq!(nothing["code"], "bad_request", "{nothing}");
    let kept = expect_json(
        app.patch(&t, path, json!({"group": null, "deprecated": true}))
            .await,
        200,
    )
    .await;
    assert_eq!(kept["group"], "Orders");
    assert_eq!(kept["deprecated"], true);
}
