//! Bearer authentication on every /v1 route, and tenant isolation.

use hookline_tests::{expect_json, TestApp};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn v1_needs_a_valid_api_key() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    for (method, path) in [
        (Method::GET, "/v1/subscriptions"),
        (Method::POST, "/v1/subscriptions"),
        (
            Method::GET,
            "/v1/subscriptions/0190b2a4-0000-7000-8000-000000000000",
        ),
        (
            Method::DELETE,
            "/v1/subscriptions/0190b2a4-0000-7000-8000-000000000000",
        ),
        (
            Method::GET,
            "/v1/subscriptions/0190b2a4-0000-7000-8000-000000000000/history",
        ),
    ] {
        let none = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let body = expect_json(none, 401).await;
        assert_eq!(body["code"], "unauthorized");
        let wrong = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth("hlk_wrong")
            .send()
            .await
            .unwrap();
        expect_json(wrong, 401).await;
        let basic = app
            .client
            .request(method.clone(), app.url(path))
            .header("authorization", format!("Basic {}", t.api_key))
            .send()
            .await
            .unwrap();
        expect_json(basic, 401).await;
    }
    expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
}

#[tokio::test]
async fn another_tenants_subscription_does_not_exist() {
    let app = TestApp::spawn().await;
    let owner = app.tenant("owner").await;
    let intruder = app.tenant("intruder").await;
    let s = app
        .subscribe(
            &owner,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());

    expect_json(app.get(&intruder, &path).await, 404).await;
    expect_json(
        app.get(&intruder, &format!("{path}?include_inactive=true"))
            .await,
        404,
    )
    .await;
    expect_json(app.get(&intruder, &format!("{path}/history")).await, 404).await;
    expect_json(
        app.patch(&intruder, &path, json!({"description": "mine"}))
            .await,
        404,
    )
    .await;
    expect_json(app.delete(&intruder, &path).await, 404).await;
    expect_json(
        app.post(&intruder, &format!("{path}/rotate-secret"), json!({}))
            .await,
        404,
    )
    .await;
    expect_json(
        app.post(&intruder, &format!("{path}/disable"), json!({}))
            .await,
        404,
    )
    .await;
    expect_json(
        app.post(&intruder, &format!("{path}/enable"), json!({}))
            .await,
        404,
    )
    .await;
    let list = expect_json(
        app.get(&intruder, "/v1/subscriptions?include_inactive=true")
            .await,
        200,
    )
    .await;
    assert!(list["data"].as_array().unwrap().is_empty());

    // Nothing the intruder did changed the subscription.
    let history = expect_json(app.get(&owner, &format!("{path}/history")).await, 200).await;
    assert_eq!(history["data"].as_array().unwrap().len(), 1);
    let read = expect_json(app.get(&owner, &path).await, 200).await;
    assert_eq!(read["status"], "active");
}
