//! Request ids: taken from the client or generated, echoed, in error bodies,
//! and in the metadata of every event the request causes.

use hookline_tests::{expect_json, TestApp};
use serde_json::json;

#[tokio::test]
async fn a_client_request_id_follows_the_request_into_its_events() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let res = app
        .client
        .post(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "support-ticket-4711")
        .json(&json!({"url": "https://example.com/a", "events": ["a.b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "support-ticket-4711");
    let s = expect_json(res, 201).await;
    let id = s["id"].as_str().unwrap();
    let res = app
        .client
        .patch(app.url(&format!("/v1/subscriptions/{id}")))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "second-request")
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    expect_json(res, 200).await;

    let metadata: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT metadata::jsonb FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(metadata[0]["request_id"], "support-ticket-4711");
    assert_eq!(metadata[1]["request_id"], "second-request");
    // And it can be looked up by request id (indexed).
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE metadata->>'request_id' = 'support-ticket-4711'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn ids_are_generated_when_absent_or_not_sane_and_appear_in_errors() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let uuid = uuid::Uuid::parse_str(&generated).unwrap();
    assert_eq!(uuid.get_version_num(), 7);

    for insane in [
        "has space".to_string(),
        "a".repeat(129),
        "<script>".to_string(),
        // Hookline's own components' namespace.
        "system:flow:01a240e7-74cc-7182-b1f1-30aa48b72c93".to_string(),
        "SYSTEM:operational:1".to_string(),
    ] {
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", &insane)
            .send()
            .await
            .unwrap();
        let echoed = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, insane);
        assert!(uuid::Uuid::parse_str(echoed).is_ok());
    }
    let ok = "a".repeat(128);
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &ok)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], ok.as_str());

    let res = app
        .client
        .get(app.url("/v1/subscriptions"))
        .header("x-request-id", "err-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "err-1");
    let body = expect_json(res, 401).await;
    assert_eq!(body["request_id"], "err-1");
}
