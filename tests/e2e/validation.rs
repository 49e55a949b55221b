//! Every validation rule of a subscription, each failure naming its field.

use hookline_tests::{expect_json, TestApp};
use serde_json::{json, Value};

async fn rejected(app: &TestApp, t: &hookline_tests::Tenant, body: Value, field: &str) -> String {
    let res = app.post(t, "/v1/subscriptions", body.clone()).await;
    let json = expect_json(res, 400).await;
    let detail = json["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(&format!("{field}:")),
        "{body} -> {detail} (expected field {field})"
    );
    assert!(json["request_id"].is_string());
    detail
}

fn sub(url: &str) -> Value {
    json!({"url": url, "events": ["invoice.created"]})
}

#[tokio::test]
async fn target_urls() {
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".into(),
            "127.0.0.0/8".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    rejected(&app, &t, sub("http://example.com/hook"), "url").await;
    rejected(&app, &t, sub("ftp://example.com/hook"), "url").await;
    rejected(&app, &t, sub("https://a"), "url").await;
    rejected(
        &app,
        &t,
        sub(&format!("https://example.com/{}", "x".repeat(2030))),
        "url",
    )
    .await;
    rejected(&app, &t, sub("https://user:pass@example.com/hook"), "url").await;
    rejected(&app, &t, sub("https://10.0.0.1/hook"), "url").await;
    rejected(
        &app,
        &t,
        sub("https://169.254.169.254/latest/meta-data"),
        "url",
    )
    .await;
    rejected(&app, &t, sub("https://[::1]/hook"), "url").await;
    rejected(&app, &t, sub("https://192.168.1.10/hook"), "url").await;
    rejected(&app, &t, sub("not a url"), "url").await;
    rejected(&app, &t, json!({"events": ["a.b"]}), "url").await;
    // 10 and 2048 characters are the bounds.
    app.subscribe(&t, sub("https://ab")).await;
    let long = format!(
        "https://example.com/{}",
        "y".repeat(2048 - "https://example.com/".len())
    );
    assert_eq!(long.len(), 2048);
    app.subscribe(&t, sub(&long)).await;
    // Allow-listed ranges may use http:// and private addresses.
    app.subscribe(&t, sub("http://127.0.0.1:9000/hook")).await;
    app.subscribe(&t, sub("http://localhost:9000/hook")).await;
    rejected(&app, &t, sub("http://[::1]:9000/hook"), "url").await; // ::1 is not in this allow-list
}

#[tokio::test]
async fn event_filters() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let url = "https://example.com/e";
    rejected(&app, &t, json!({"url": url, "events": []}), "events").await;
    rejected(&app, &t, json!({"url": url}), "events").await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["sales.órden"]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["a.b", "invoice"]}),
        "events[1]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["invoice created"]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["inv-oice.created"]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["*.created"]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["invoice.cre*"]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": [format!("a.{}", "b".repeat(99))]}),
        "events[0]",
    )
    .await;
    rejected(
        &app,
        &t,
        json!({"url": url, "events": ["a.b"], "event": "c.d"}),
        "events",
    )
    .await;
    let ok = app
        .subscribe(&t, json!({"url": url, "events": ["invoice.*", "sales_order.confirmed", "v2.item_1.x", format!("a.{}", "b".repeat(98))]}))
        .await;
    assert_eq!(ok["events"].as_array().unwrap().len(), 4);
    app.subscribe(&t, json!({"url": url, "events": ["*"]}))
        .await;
}

#[tokio::test]
async fn secrets_headers_description_scheme() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let base = |extra: Value| {
        let mut b = json!({"url": "https://example.com/s", "events": ["a.b"]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    rejected(&app, &t, base(json!({"secret": "1234567"})), "secret").await;
    rejected(&app, &t, base(json!({"secret": "x".repeat(501)})), "secret").await;
    rejected(
        &app,
        &t,
        base(json!({"secret": "whsec_not base64!"})),
        "secret",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"Content-Type": "text/plain"}})),
        "headers.Content-Type",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"webhook-signature": "v1,x"}})),
        "headers.webhook-signature",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"X-Signature": "sha256=00"}})),
        "headers.X-Signature",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"Connection": "close"}})),
        "headers.Connection",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"Bad Header": "x"}})),
        "headers.Bad Header",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"headers": {"X-Ok": "line\r\nInjected: 1"}})),
        "headers.X-Ok",
    )
    .await;
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    rejected(&app, &t, base(json!({"headers": many})), "headers").await;
    rejected(
        &app,
        &t,
        base(json!({"description": "d".repeat(501)})),
        "description",
    )
    .await;
    rejected(
        &app,
        &t,
        base(json!({"signature_scheme": "md5"})),
        "signature_scheme",
    )
    .await;

    // Several broken fields are reported together.
    let detail = rejected(
        &app,
        &t,
        json!({"url": "http://x.example", "events": [], "secret": "short"}),
        "url",
    )
    .await;
    assert!(
        detail.contains("events:") && detail.contains("secret:"),
        "{detail}"
    );

    // The bounds themselves are accepted.
    let twenty: serde_json::Map<String, Value> =
        (0..20).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    app.subscribe(
        &t,
        base(json!({"secret": "12345678", "headers": twenty, "description": "d".repeat(500)})),
    )
    .await;
    app.subscribe(
        &t,
        json!({"url": "https://example.com/t", "events": ["a.b"], "secret": "s".repeat(500)}),
    )
    .await;
}
