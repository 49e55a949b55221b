//! Operational webhooks end to end: each `hookline.…` event reaches a
//! subscriber that asks for it, signed (verified with the official Standard
//! Webhooks library); `*` does not ask for them; tenants cannot publish
//! them; and failing operational subscriptions cause no feedback loop.

use hookline_tests::receiver::{Received, Reply, TestReceiver};
use hookline_tests::webhooks::{official_verify, publish};
use hookline_tests::{eventually, expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The first request at `rx` carrying `event`, once it arrives.
async fn arrival(rx: &TestReceiver, event: &str) -> Received {
    eventually(event, WAIT, || async {
        rx.received()
            .into_iter()
            .find(|r| r.json()["event"] == event)
    })
    .await
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn action(app: &TestApp, t: &Tenant, id: &str, what: &str) -> Value {
    expect_json(
        app.post(t, &format!("/v1/subscriptions/{id}/{what}"), json!({}))
            .await,
        200,
    )
    .await
}

#[tokio::test]
async fn each_operational_event_reaches_a_subscriber_that_asks_signed() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "3".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "1".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS".into(), "1".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "2".into());
        // A rotation's notice is due an hour before its overlap ends.
        env.insert(
            "HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS".into(),
            "3602".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let ops = TestReceiver::start().await;
    let ops_sub = app
        .subscribe(
            &t,
            json!({"url": ops.url("/ops"), "events": ["hookline.*"], "description": "on call"}),
        )
        .await;
    let secret = ops_sub["secret"].as_str().unwrap().to_string();
    let everything = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": everything.url("/all"), "events": ["*"]}))
        .await;
    let dead = TestReceiver::start().await;
    dead.default_reply(Reply::status(500));
    let d = app
        .subscribe(
            &t,
            json!({"url": dead.url("/dead"), "events": ["order.*"], "description": "ERP"}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_string();

    // Three failed attempts: the delivery is abandoned and the circuit opens.
    publish(&app, &t, "order.placed", json!({"n": 1})).await;
    let abandoned = arrival(&ops, "hookline.delivery.abandoned").await;
    let opened = arrival(&ops, "hookline.circuit.opened").await;
    // The receiver comes back: a probe (the next order, parked) succeeds
    // and the circuit closes.
    dead.default_reply(Reply::status(200));
    publish(&app, &t, "order.placed", json!({"n": 2})).await;
    let closed = arrival(&ops, "hookline.circuit.closed").await;
    // An API client disables it, enables it and rotates its secret.
    action(&app, &t, &id, "disable").await;
    let disabled = arrival(&ops, "hookline.subscription.disabled").await;
    action(&app, &t, &id, "enable").await;
    let enabled = arrival(&ops, "hookline.subscription.enabled").await;
    let rotated = action(&app, &t, &id, "rotate-secret").await;
    let ending = arrival(&ops, "hookline.secret.rotation_ending").await;

    for r in [&abandoned, &opened, &disabled, &enabled, &closed, &ending] {
        assert!(
            official_verify(&secret, &r.headers, &r.body),
            "signature of {}",
            r.json()["event"]
        );
        let body = r.json();
        assert_eq!(body["data"]["subscription_id"], id.as_str(), "{body}");
        assert_eq!(body["data"]["url"], dead.url("/dead"), "{body}");
        assert_eq!(body["tenant_id"], t.id.as_str(), "{body}");
    }
    let a = abandoned.json();
    assert_eq!(a["data"]["event_type"], "order.placed");
    assert_eq!(a["data"]["attempts"], 3);
    assert_eq!(a["data"]["last_status_code"], 500);
    let o = opened.json();
    assert_eq!(o["data"]["consecutive_failures"], 3);
    assert_eq!(o["data"]["cause"]["status_code"], 500);
    assert_eq!(o["data"]["description"], "ERP");
    let dis = disabled.json();
    assert_eq!(dis["data"]["automatic"], false);
    let e = ending.json();
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(
        at(&e["data"]["previous_secret_expires_at"]),
        at(&rotated["previous_secret_expires_at"]),
        "{e} {rotated}"
    );
    let hint = e["data"]["secret_hint"].as_str().unwrap();
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(
        new_secret.ends_with(hint.rsplit('…').next().unwrap()),
        "{hint} hints at {new_secret}"
    );

    // Each notice once; the subscription they are about is never told, and
    // `*` does not ask for operational events.
    eventually("every notice is published", WAIT, || async {
        (count(&app, "SELECT count(*) FROM operational_notices").await == 0).then_some(())
    })
    .await;
    let mut kinds: Vec<String> = ops
        .received()
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "hookline.circuit.closed",
            "hookline.circuit.opened",
            "hookline.delivery.abandoned",
            "hookline.secret.rotation_ending",
            "hookline.subscription.disabled",
            "hookline.subscription.enabled",
        ]
    );
    assert!(dead
        .received()
        .iter()
        .all(|r| r.json()["event"] == "order.placed"));
    let all: Vec<Value> = everything.received().iter().map(Received::json).collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|b| b["event"] == "order.placed"), "{all:?}");
    // They are listed like any delivery (lists are read models: wait for
    // them to catch up with the log), and their type is in the catalogue.
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let listed = expect_json(
        app.get(&t, "/v1/deliveries?event=hookline.*&status=delivered")
            .await,
        200,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 6, "{listed}");
    let types = expect_json(app.get(&t, "/v1/event-types?group=hookline").await, 200).await;
    let names: Vec<&str> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for k in &kinds {
        assert!(names.contains(&k.as_str()), "{k} in {names:?}");
    }
}

#[tokio::test]
async fn tenants_cannot_publish_operational_events() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/x"), "events": ["hookline.*"]}))
        .await;
    let res = app
        .post(
            &t,
            "/v1/events",
            json!({"event_type": "hookline.circuit.opened", "data": {}}),
        )
        .await;
    let body = expect_json(res, 400).await;
    assert_eq!(body["code"], "validation_error");
    assert!(
        body["detail"].as_str().unwrap().contains("event_type"),
        "{body}"
    );
}

#[tokio::test]
async fn failing_operational_subscriptions_cause_no_feedback_loop() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "2".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "1".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS".into(), "1".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let dead = TestReceiver::start().await;
    dead.default_reply(Reply::status(503));
    let mut ops_ids = Vec::new();
    for path in ["/ops1", "/ops2"] {
        let s = app
            .subscribe(&t, json!({"url": dead.url(path), "events": ["hookline.*"]}))
            .await;
        ops_ids.push(s["id"].as_str().unwrap().to_string());
    }
    app.subscribe(
        &t,
        json!({"url": dead.url("/orders"), "events": ["order.*"]}),
    )
    .await;
    publish(&app, &t, "order.placed", json!({})).await;
    // Every subscription fails: each circuit opens. The operational ones
    // hear about the orders subscription and about each other, never about
    // themselves, and abandoned operational deliveries make no notices.
    eventually("every circuit opens", WAIT, || async {
        let open = count(
            &app,
            "SELECT count(*) FROM subscriptions_view WHERE state -> 'circuit' <> 'null'::jsonb",
        )
        .await;
        (open == 3).then_some(())
    })
    .await;
    let published = "SELECT count(*) FROM events WHERE event_type = 'MessagePublished'";
    let settled = eventually("the notices settle", WAIT, || async {
        let before = count(&app, published).await;
        // Probes go out every second; a loop would publish more meanwhile.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let pending = count(&app, "SELECT count(*) FROM operational_notices").await;
        (count(&app, published).await == before && pending == 0).then_some(before)
    })
    .await;
    // order.placed, its abandonment, three circuits opening.
    assert_eq!(settled, 5);
    for id in &ops_ids {
        let about_itself = count(
            &app,
            &format!(
                "SELECT count(*) FROM deliveries_view d
                   JOIN events e ON e.aggregate_type = 'Message' AND e.aggregate_id = d.event_id::text
                  WHERE d.subscription_id = '{id}'
                    AND ((e.payload::jsonb ->> 'body')::jsonb -> 'data' ->> 'subscription_id') = '{id}'"
            ),
        )
        .await;
        assert_eq!(about_itself, 0, "{id} was told about itself");
    }
    let abandoned_ops = count(
        &app,
        "SELECT count(*) FROM deliveries_view WHERE event_type = 'hookline.delivery.abandoned'",
    )
    .await;
    // Only the order's abandonment was announced (to both).
    assert_eq!(abandoned_ops, 2);
}

#[tokio::test]
async fn a_filter_naming_the_operational_namespace_in_another_case_is_refused() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    for events in [
        json!(["HOOKLINE.*"]),
        json!(["invoice.*", "Hookline.circuit.opened"]),
    ] {
        let res = expect_json(
            app.post(
                &t,
                "/v1/subscriptions",
                json!({"url": "https://example.com/ops", "events": events}),
            )
            .await,
            400,
        )
        .await;
        let detail = res["detail"].as_str().unwrap();
        assert!(detail.contains("lowercase"), "{detail}");
    }
    expect_json(
        app.post(
            &t,
            "/v1/subscriptions",
            json!({"url": "https://example.com/ops", "events": ["hookline.*"]}),
        )
        .await,
        201,
    )
    .await;
}

/// The legacy schemes sign with the current secret only: a rotation of
/// such a subscription keeps no previous secret signing, so it shows no
/// overlap and no `hookline.secret.rotation_ending` announces one, while
/// a Standard Webhooks subscription's rotation is announced.
#[tokio::test]
async fn a_rotation_under_a_single_signature_scheme_announces_no_overlap() {
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_SECRET_ROTATION_OVERLAP_SECONDS".into(),
            "3602".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let ops = TestReceiver::start().await;
    app.subscribe(
        &t,
        json!({"url": ops.url("/ops"), "events": ["hookline.*"]}),
    )
    .await;
    let rx = TestReceiver::start().await;
    let mut ids = vec![];
    for scheme in ["hmac-sha256-hex", "hmac-sha256-base64", "standard-webhooks"] {
        let s = app
            .subscribe(
                &t,
                json!({"url": rx.url(&format!("/{scheme}")), "events": ["order.*"], "signature_scheme": scheme}),
            )
            .await;
        ids.push(s["id"].as_str().unwrap().to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        let rotated = action(&app, &t, id, "rotate-secret").await;
        let read = expect_json(app.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
        if i < 2 {
            assert_eq!(
                rotated["previous_secret_expires_at"],
                Value::Null,
                "{rotated}"
            );
            assert_eq!(read["previous_secret_expires_at"], Value::Null, "{read}");
        } else {
            assert!(
                rotated["previous_secret_expires_at"].is_string(),
                "{rotated}"
            );
            assert!(read["previous_secret_expires_at"].is_string(), "{read}");
        }
    }
    let ending = arrival(&ops, "hookline.secret.rotation_ending").await;
    assert_eq!(ending.json()["data"]["subscription_id"], ids[2].as_str());
    eventually("every notice is handled", WAIT, || async {
        (count(&app, "SELECT count(*) FROM operational_notices").await == 0).then_some(())
    })
    .await;
    let endings = ops
        .received()
        .iter()
        .filter(|r| r.json()["event"] == "hookline.secret.rotation_ending")
        .count();
    assert_eq!(endings, 1);
}
