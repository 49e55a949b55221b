//! Support's workflow: one request id → everything it caused, the delivery
//! timeline on the command line, and JSON logs that name the request.

use hookline_tests::process::{run_cli, ServerProcess};
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::server::wait_ready;
use hookline_tests::webhooks::wait_status;
use hookline_tests::{eventually, expect_json, fresh_database, TestApp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_request_id_traces_everything_it_caused() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(500), Reply::status(400)]);
    app.subscribe(&t, json!({"url": rx.url("/a"), "events": ["order.*"]}))
        .await;
    app.subscribe(
        &t,
        json!({"url": rx.url("/b"), "events": ["order.created"]}),
    )
    .await;
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "ticket-1234")
        .json(&json!({"event_type": "order.created", "data": {"id": 7}}))
        .send()
        .await
        .unwrap();
    let accepted = expect_json(res, 202).await;
    let ids = hookline_tests::strings(&accepted["deliveries"], "id");
    let settled = eventually("both deliveries settle", WAIT, || async {
        let mut statuses = Vec::new();
        for id in &ids {
            let v: Value = app
                .get(&t, &format!("/v1/deliveries/{id}"))
                .await
                .json()
                .await
                .ok()?;
            statuses.push(v["status"].as_str()?.to_string());
        }
        statuses
            .iter()
            .all(|s| s == "delivered" || s == "failed")
            .then_some(statuses)
    })
    .await;
    let failed = ids[settled.iter().position(|s| s == "failed").unwrap()].clone();
    hookline_tests::read_models_caught_up(&app.db.pool).await;

    let trace = expect_json(app.get(&t, "/v1/requests/ticket-1234").await, 200).await;
    assert_eq!(trace["request_id"], "ticket-1234");
    let types: Vec<&str> = trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "DeliveryEnqueued").count(),
        2
    );
    assert!(
        types.contains(&"AttemptFailed") && types.contains(&"DeliverySucceeded"),
        "{types:?}"
    );
    assert!(trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["position"].as_i64().unwrap() > 0));
    let mut traced = hookline_tests::strings(&trace["deliveries"], "id");
    traced.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(traced, expected);
    let attempts = trace["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), rx.count());
    for a in attempts {
        for key in ["id", "started_at", "duration_ms", "outcome", "url"] {
            assert!(!a[key].is_null(), "{key} in {a}");
        }
    }

    // A manual retry is traced under its own request id.
    let res = app
        .client
        .post(app.url(&format!("/v1/deliveries/{failed}/retry")))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "ticket-1235")
        .send()
        .await
        .unwrap();
    expect_json(res, 202).await;
    wait_status(&app, &t, &failed, "delivered", WAIT).await;
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let retry = expect_json(app.get(&t, "/v1/requests/ticket-1235").await, 200).await;
    let types: Vec<&str> = retry["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["RetryRequested", "DeliverySucceeded"]);
    assert_eq!(retry["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(retry["attempts"][0]["triggered_by"], "ticket-1235");

    expect_json(app.get(&t, "/v1/requests/never-seen").await, 404).await;
    // What could not be a request id is a clear 400, on every lookup.
    let long = "a".repeat(129);
    for path in [
        "/v1/requests/a%00b".to_string(),
        "/v1/requests/two%20words".to_string(),
        format!("/v1/requests/{long}"),
        "/v1/attempts?request_id=a%00b".to_string(),
        "/v1/attempts?request_id=".to_string(),
        "/v1/attempts".to_string(),
        "/v1/deliveries?request_id=a%00b".to_string(),
    ] {
        let body = expect_json(app.get(&t, &path).await, 400).await;
        assert_eq!(body["code"], "validation_error", "{path}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with("request_id"),
            "{path}: {body}"
        );
    }
    let other = app.tenant("other").await;
    expect_json(app.get(&other, "/v1/requests/ticket-1234").await, 404).await;

    // The timeline on the command line.
    let out = run_cli(
        &["deliveries", "show", &failed, "--database-url", &app.db.url],
        &HashMap::new(),
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = out.stdout;
    assert!(text.contains("published by request ticket-1234"), "{text}");
    assert!(text.contains("enqueued for"), "{text}");
    assert!(text.contains("attempt 1 failed"), "{text}");
    assert!(
        text.contains("manual retry requested by request ticket-1235"),
        "{text}"
    );
    assert!(text.contains("attempt 2 delivered (200)"), "{text}");
    assert!(
        text.contains("final state: delivered after 2 attempts"),
        "{text}"
    );
    let missing = run_cli(
        &[
            "deliveries",
            "show",
            "0190b2a4-0000-7000-8000-000000000000",
            "--database-url",
            &app.db.url,
        ],
        &HashMap::new(),
    )
    .await;
    assert_eq!(missing.code, Some(1));
}

#[tokio::test]
async fn json_logs_name_request_tenant_delivery_and_attempt() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(503)]);
    let env = HashMap::from([
        ("HOOKLINE_DATABASE_URL".to_string(), db.url.clone()),
        ("HOOKLINE_LOG_FORMAT".to_string(), "json".to_string()),
        ("RUST_LOG".to_string(), "info".to_string()),
        ("HOOKLINE_ADMIN_TOKEN".to_string(), "json-admin".to_string()),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".to_string(),
            "127.0.0.0/8".to_string(),
        ),
        (
            "HOOKLINE_SECRET_KEY".to_string(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
        ("HOOKLINE_RETRY_SCHEDULE".to_string(), "1".to_string()),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url("/readyz")).await;
    let t = client
        .post(server.url("/admin/tenants"))
        .bearer_auth("json-admin")
        .json(&json!({"name": "j"}))
        .send()
        .await
        .unwrap();
    let key = expect_json(t, 201).await["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let s = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(&key)
        .json(&json!({"url": rx.url("/j"), "events": ["j.*"]}))
        .send()
        .await
        .unwrap();
    expect_json(s, 201).await;
    let res = client
        .post(server.url("/v1/events"))
        .bearer_auth(&key)
        .header("x-request-id", "json-req-9")
        .json(&json!({"event_type": "j.x", "data": {}}))
        .send()
        .await
        .unwrap();
    let delivery = expect_json(res, 202).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    rx.wait_for(2, WAIT).await;
    server.signal("TERM");
    assert_eq!(server.wait(WAIT).await, Some(0));

    let logs = server.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["timestamp"].is_string() && l["level"].is_string() && l["message"].is_string()));
    let request_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| l["request_id"] == "json-req-9")
        .collect();
    assert!(
        request_lines
            .iter()
            .any(|l| l["message"] == "request finished" && l["tenant_id"].is_string()),
        "{logs}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| l["message"] == "event published"),
        "{logs}"
    );
    let attempt = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("attempt failed"))
        })
        .unwrap_or_else(|| panic!("no attempt line: {logs}"));
    assert_eq!(attempt["delivery_id"], delivery.as_str());
    assert_eq!(attempt["attempt"], 1);
    assert_eq!(attempt["request_id"], "json-req-9");
    assert!(attempt["tenant_id"].is_string());
}
