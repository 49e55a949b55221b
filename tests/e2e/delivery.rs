//! Publishing and what receivers get: bodies, headers, every signature
//! scheme verified independently, fan-out, idempotency.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hookline_tests::receiver::TestReceiver;
use hookline_tests::webhooks::{
    hmac_sha256, invoice, official_verify, publish, standard_signature, wait_status,
};
use hookline_tests::{expect_json, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_published_event_arrives_signed_with_every_header() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_WEBHOOK_USER_AGENT".into(), "Acme-Hooks/2".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/hook"), "events": ["invoice.*"], "headers": {"X-Team": "billing"}}))
        .await;
    let secret = sub["secret"].as_str().unwrap();
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "publish-req-1")
        .header("content-type", "application/json")
        .body(r#"{"event_type": "invoice.created", "data": {"invoice_id": "inv-123", "invoice_number": "001", "amount": "1500.00", "currency": "USD", "z": 1, "a": 2},
                  "resource_type": "invoice", "resource_id": "inv-123"}"#)
        .send()
        .await
        .unwrap();
    let accepted = expect_json(res, 202).await;
    let deliveries = accepted["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["subscription_id"], sub["id"]);
    let delivery_id = deliveries[0]["id"].as_str().unwrap();

    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.path, "/hook");
    let body = r.json();
    assert_eq!(body["id"], accepted["event_id"]);
    assert_eq!(body["event"], "invoice.created");
    assert_eq!(body["tenant_id"], t.id.as_str());
    assert_eq!(body["resource_type"], "invoice");
    assert_eq!(body["resource_id"], "inv-123");
    assert_eq!(body["data"]["amount"], "1500.00");
    chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    // The client's data is sent as given (key order kept).
    assert!(std::str::from_utf8(&r.body)
        .unwrap()
        .contains(r#""data":{"invoice_id": "inv-123", "invoice_number": "001", "amount": "1500.00", "currency": "USD", "z": 1, "a": 2}"#));

    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some("Acme-Hooks/2"));
    assert_eq!(r.header("x-event"), Some("invoice.created"));
    assert_eq!(r.header("x-request-id"), Some("publish-req-1"));
    assert_eq!(r.header("x-hookline-delivery"), Some(delivery_id));
    assert_eq!(r.header("x-hookline-attempt"), Some("1"));
    assert_eq!(r.header("x-team"), Some("billing"));
    assert_eq!(r.header("webhook-id"), Some(delivery_id));

    // Standard Webhooks: the official library and a from-scratch check agree.
    assert!(official_verify(secret, &r.headers, &r.body));
    let expected = standard_signature(
        secret,
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
        &r.body,
    );
    assert_eq!(r.header("webhook-signature"), Some(expected.as_str()));
    let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    // A wrong secret or a changed body fails.
    assert!(!official_verify(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        &r.headers,
        &r.body
    ));
    let mut tampered = r.body.to_vec();
    tampered[10] ^= 1;
    assert!(!official_verify(secret, &r.headers, &tampered));

    let detail = wait_status(&app, &t, delivery_id, "delivered", WAIT).await;
    assert_eq!(detail["attempts"], 1);
    assert_eq!(detail["request_id"], "publish-req-1");
    assert_eq!(detail["payload"]["resource_id"], "inv-123");
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status_code"], 200);
    assert_eq!(log[0]["outcome"], "delivered");
}

#[tokio::test]
async fn legacy_schemes_sign_the_body_with_the_raw_secret() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/hex"), "events": ["a.b"], "secret": "my-webhook-secret", "signature_scheme": "hmac-sha256-hex"}))
        .await;
    app.subscribe(&t, json!({"url": rx.url("/b64"), "events": ["a.b"], "secret": "inflow-secret-key", "signature_scheme": "hmac-sha256-base64"}))
        .await;
    publish(&app, &t, "a.b", json!({"salesOrderId": "so-1"})).await;
    let got = rx.wait_for(2, WAIT).await;
    let hex_req = got.iter().find(|r| r.path == "/hex").unwrap();
    let b64_req = got.iter().find(|r| r.path == "/b64").unwrap();

    let expected_hex = format!(
        "sha256={}",
        hex::encode(hmac_sha256(b"my-webhook-secret", &hex_req.body))
    );
    assert_eq!(hex_req.header("x-signature"), Some(expected_hex.as_str()));
    assert!(hex_req.header("webhook-signature").is_none());

    let expected_b64 = STANDARD.encode(hmac_sha256(b"inflow-secret-key", &b64_req.body));
    assert_eq!(
        b64_req.header("x-inflow-hmac-sha256"),
        Some(expected_b64.as_str())
    );
    // The InFlow receiver's own recipe: decode the header, compare digests.
    let decoded = STANDARD
        .decode(b64_req.header("x-inflow-hmac-sha256").unwrap())
        .unwrap();
    assert_eq!(decoded, hmac_sha256(b"inflow-secret-key", &b64_req.body));
    assert_ne!(decoded, hmac_sha256(b"wrong-secret", &b64_req.body));
}

#[tokio::test]
async fn during_a_rotation_overlap_both_secrets_verify() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let old = sub["secret"].as_str().unwrap().to_string();
    let rotated = expect_json(
        app.post(
            &t,
            &format!(
                "/v1/subscriptions/{}/rotate-secret",
                sub["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap().to_string();
    publish(&app, &t, "a.b", json!({"x": 1})).await;
    let got = rx.wait_for(1, WAIT).await;
    let r = &got[0];
    let signatures: Vec<&str> = r.header("webhook-signature").unwrap().split(' ').collect();
    assert_eq!(signatures.len(), 2, "two signatures during the overlap");
    let (id, ts) = (
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
    );
    assert_eq!(signatures[0], standard_signature(&new, id, ts, &r.body));
    assert_eq!(signatures[1], standard_signature(&old, id, ts, &r.body));
    assert!(official_verify(&new, &r.headers, &r.body));
    assert!(official_verify(&old, &r.headers, &r.body));
}

#[tokio::test]
async fn an_event_fans_out_to_every_matching_active_subscription() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let mut expect = Vec::new();
    for (path, events) in [
        ("/wild", json!(["invoice.*"])),
        ("/exact", json!(["invoice.created"])),
        ("/all", json!(["*"])),
        ("/other", json!(["payment.*"])),
        ("/sibling", json!(["invoice.sent"])),
    ] {
        let s = app
            .subscribe(&t, json!({"url": rx.url(path), "events": events}))
            .await;
        if ["/wild", "/exact", "/all"].contains(&path) {
            expect.push(s["id"].as_str().unwrap().to_string());
        }
    }
    let disabled = app
        .subscribe(&t, json!({"url": rx.url("/disabled"), "events": ["*"]}))
        .await;
    expect_json(
        app.post(
            &t,
            &format!(
                "/v1/subscriptions/{}/disable",
                disabled["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let deleted = app
        .subscribe(&t, json!({"url": rx.url("/deleted"), "events": ["*"]}))
        .await;
    assert_eq!(
        app.delete(
            &t,
            &format!("/v1/subscriptions/{}", deleted["id"].as_str().unwrap())
        )
        .await
        .status(),
        204
    );
    // Another tenant's subscription never receives this tenant's events.
    let other = app.tenant("other").await;
    app.subscribe(&other, json!({"url": rx.url("/foreign"), "events": ["*"]}))
        .await;

    let accepted = publish(&app, &t, "invoice.created", invoice()).await;
    let mut got: Vec<String> = accepted["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "pending")
        .map(|d| d["subscription_id"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    expect.sort();
    assert_eq!(got, expect);
    // The disabled one's is recorded as skipped (sent by a recovery once
    // enabled); the deleted one gets nothing.
    let skipped: Vec<&Value> = accepted["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["subscription_id"], disabled["id"]);
    let received = rx.wait_for(3, WAIT).await;
    let mut paths: Vec<String> = received.iter().map(|r| r.path.clone()).collect();
    paths.sort();
    assert_eq!(paths, vec!["/all", "/exact", "/wild"]);
    // One body for the event, byte-identical for every subscription.
    assert!(received.windows(2).all(|w| w[0].body == w[1].body));

    let lonely = app.tenant("no-subscriptions").await;
    let none = app
        .post(
            &lonely,
            "/v1/events",
            json!({"event_type": "stock.low", "data": {}}),
        )
        .await;

    let b = expect_json(none, 404).await;
    assert_eq!(b["code"], "no_subscriptions");
}

#[tokio::test]
async fn publishing_right_after_subscribing_matches() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    for i in 0..5 {
        let event = format!("burst.e{i}");
        app.subscribe(&t, json!({"url": rx.url("/b"), "events": [event.clone()]}))
            .await;
        let accepted = publish(&app, &t, &event, json!({"i": i})).await;
        assert_eq!(accepted["deliveries"].as_array().unwrap().len(), 1);
    }
    rx.wait_for(5, WAIT).await;
}

#[tokio::test]
async fn publish_input_is_validated() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_MAX_BODY_BYTES".into(), "2048".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/v"), "events": ["*"]}))
        .await;
    for (body, field) in [
        (json!({"data": {}}), "event_type"),
        (json!({"event_type": "Bad Name", "data": {}}), "event_type"),
        (json!({"event_type": "a.b"}), "data"),
        (json!({"event_type": "a.b", "data": [1, 2]}), "data"),
        (json!({"event_type": "a.b", "data": "text"}), "data"),
        (json!({"event_type": "a.b", "data": null}), "data"),
        (
            json!({"event_type": "a.b", "data": {}, "resource_id": "r".repeat(201)}),
            "resource_id",
        ),
        (
            json!({"event_type": "a.b", "data": {}, "idempotency_key": "has space"}),
            "idempotency_key",
        ),
    ] {
        let b = expect_json(app.post(&t, "/v1/events", body.clone()).await, 400).await;
        assert!(
            b["detail"].as_str().unwrap().contains(field),
            "{body} -> {b}"
        );
    }
    let b = expect_json(
        app.post(
            &t,
            "/v1/events",
            json!({"event_type": "a.b", "data": {}, "colour": 1}),
        )
        .await,
        400,
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("colour"));
    let big = json!({"event_type": "a.b", "data": {"x": "y".repeat(4000)}});
    let b = expect_json(app.post(&t, "/v1/events", big).await, 413).await;
    assert_eq!(b["code"], "payload_too_large");
    assert_eq!(rx.count(), 0, "nothing was delivered");
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_answer_and_creates_nothing_new() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(
        &t,
        json!({"url": rx.url("/i"), "events": ["order.created"]}),
    )
    .await;
    let send = |key: &'static str, body: Value| {
        let app = &app;
        let t = &t;
        async move {
            app.client
                .post(app.url("/v1/events"))
                .bearer_auth(&t.api_key)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = send(
        "order-42",
        json!({"event_type": "order.created", "data": {"n": 1}}),
    )
    .await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, 202).await;
    // The same request again (however its JSON is formatted): the first answer.
    let second = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("idempotency-key", "order-42")
        .header("content-type", "application/json")
        .body(r#"{ "data": { "n" : 1 },  "event_type": "order.created" }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second = expect_json(second, 202).await;
    assert_eq!(first, second);
    // The key in the body works the same way.
    let third = expect_json(
        app.post(
            &t,
            "/v1/events",
            json!({"event_type": "order.created", "data": {"n": 1}, "idempotency_key": "order-42"}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(first, third);
    // The key reused for a different event is refused, not silently dropped.
    for other in [
        json!({"event_type": "order.created", "data": {"n": 2}}),
        json!({"event_type": "order.updated", "data": {"n": 1}}),
        json!({"event_type": "order.created", "data": {"n": 1}, "resource_id": "o-1"}),
    ] {
        let refused = expect_json(send("order-42", other).await, 409).await;
        assert_eq!(refused["code"], "idempotency_key_reused", "{refused}");
    }
    // Concurrent requests with a fresh key: one event, one answer.
    let racers = (0..6).map(|_| send("race-1", json!({"event_type": "order.created", "data": {}})));
    let answers: Vec<Value> =
        futures::future::join_all(racers.map(|f| async { expect_json(f.await, 202).await })).await;
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    rx.wait_for(2, WAIT).await;
    let deliveries: i64 = sqlx::query_scalar(hookline_tests::ENQUEUED_COUNT)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(deliveries, 2, "one per distinct key");
    let conflicting = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("idempotency-key", "a")
        .json(&json!({"event_type": "order.created", "data": {}, "idempotency_key": "b"}))
        .send()
        .await
        .unwrap();
    expect_json(conflicting, 400).await;
}

#[tokio::test]
async fn the_seed_form_and_test_sends() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(
            &t,
            json!({"url": rx.url("/seed"), "events": ["invoice.created"]}),
        )
        .await;
    let res = app
        .post(
            &t,
            "/v1/deliveries",
            json!({"event": "invoice.created", "payload": {"invoice_id": "inv-1", "invoice_number": "001", "amount": "9.50", "currency": "USD"}}),
        )
        .await;
    let body = expect_json(res, 202).await;
    assert_eq!(body["count"], 1);
    let none = app
        .post(
            &t,
            "/v1/deliveries",
            json!({"event": "payment.failed", "payload": {"payment_id": "p-1", "reason": "card_declined"}}),
        )
        .await;
    assert_eq!(expect_json(none, 404).await["code"], "no_subscriptions");

    // The "Probar" button: webhook.test to this subscription only, whatever its filter.
    let test = expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{}/test", sub["id"].as_str().unwrap()),
            json!({}),
        )
        .await,
        202,
    )
    .await;
    let delivery_id = test["delivery_id"].as_str().unwrap();
    let got = rx.wait_for(2, WAIT).await;
    let test_req = got
        .iter()
        .find(|r| r.header("x-event") == Some("webhook.test"))
        .unwrap();
    assert_eq!(test_req.header("x-hookline-delivery"), Some(delivery_id));
    assert_eq!(test_req.json()["data"]["subscription_id"], sub["id"]);
    wait_status(&app, &t, delivery_id, "delivered", WAIT).await;
    let seed_req = got
        .iter()
        .find(|r| r.header("x-event") == Some("invoice.created"))
        .unwrap();
    assert_eq!(seed_req.json()["data"]["invoice_id"], "inv-1");

    let disabled = app
        .subscribe(&t, json!({"url": rx.url("/d"), "events": ["x.y"]}))
        .await;
    let path = format!("/v1/subscriptions/{}", disabled["id"].as_str().unwrap());
    expect_json(
        app.post(&t, &format!("{path}/disable"), json!({})).await,
        200,
    )
    .await;
    let b = expect_json(app.post(&t, &format!("{path}/test"), json!({})).await, 409).await;
    assert_eq!(b["code"], "subscription_inactive");
    let other = app.tenant("other").await;
    expect_json(
        app.post(
            &other,
            &format!("/v1/subscriptions/{}/test", sub["id"].as_str().unwrap()),
            json!({}),
        )
        .await,
        404,
    )
    .await;
}

/// `data` is sent byte for byte, so what JSON libraries could read
/// differently is refused when published; what is accepted is shown exactly
/// as sent (big numbers stay digits).
#[tokio::test]
async fn data_is_checked_for_portability_and_shown_exactly_as_sent() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/hook"), "events": ["a.b"]}))
        .await;
    let raw = |path: &str, body: String| {
        app.client
            .post(app.url(path))
            .bearer_auth(&t.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for (data, says) in [
        (r#"{"a": 1, "a": 2}"#.to_string(), "duplicate key \"a\""),
        (r#"{"n": 1e999}"#.to_string(), "number out of range"),
        (r#"{"s": "\ud800"}"#.to_string(), "not portable JSON"),
        (format!(r#"{{"d": {deep}}}"#), "deeper than 64"),
        ("[1]".to_string(), "must be a JSON object"),
    ] {
        let res = raw(
            "/v1/events",
            format!(r#"{{"event_type": "a.b", "data": {data}}}"#),
        )
        .await
        .unwrap();
        let body = expect_json(res, 400).await;
        assert_eq!(body["code"], "validation_error");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("data: ") && detail.contains(says),
            "{detail}"
        );
        // The seeds' form names its own field.
        let res = raw(
            "/v1/deliveries",
            format!(r#"{{"event": "a.b", "payload": {data}}}"#),
        )
        .await
        .unwrap();
        let body = expect_json(res, 400).await;
        assert!(
            body["detail"].as_str().unwrap().starts_with("payload: "),
            "{body}"
        );
    }
    let res = raw("/v1/deliveries", r#"{"payload": {}}"#.into())
        .await
        .unwrap();
    assert!(expect_json(res, 400).await["detail"]
        .as_str()
        .unwrap()
        .starts_with("event: "));

    let data = r#"{"big": 12345678901234567890123, "exact": 1.10, "nested": {"k": [1, 2]}}"#;
    let res = raw(
        "/v1/events",
        format!(r#"{{"event_type": "a.b", "data": {data}}}"#),
    )
    .await
    .unwrap();
    let id = expect_json(res, 202).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let got = rx.wait_for(1, WAIT).await;
    let sent = std::str::from_utf8(&got[0].body).unwrap().to_string();
    assert!(sent.contains(data), "{sent}");
    let detail = app
        .get(&t, &format!("/v1/deliveries/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(detail.contains(&format!(r#""payload":{sent}"#)), "{detail}");
}
