//! Tenant creation over HTTP for automation, behind HOOKLINE_ADMIN_TOKEN.

use hookline_tests::server::ADMIN_TOKEN;
use hookline_tests::{expect_json, TestApp};
use serde_json::json;

#[tokio::test]
async fn admin_creates_tenants_with_a_usable_key() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Acme Corp"}))
        .send()
        .await
        .unwrap();
    let body = expect_json(res, 201).await;
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["api_key", "tenant_id"]);
    let key = body["api_key"].as_str().unwrap();
    let ok = app
        .client
        .get(app.url("/v1/subscriptions"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // The key is stored hashed only.
    let stored: Vec<String> = sqlx::query_scalar("SELECT key_hash FROM tenant_keys")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], key);
    assert_eq!(stored[0].len(), 64);

    for (token, status) in [(None, 401), (Some("wrong"), 401)] {
        let mut req = app
            .client
            .post(app.url("/admin/tenants"))
            .json(&json!({"name": "x"}));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let b = expect_json(req.send().await.unwrap(), status).await;
        assert_eq!(b["code"], "unauthorized");
    }
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "a", "plan": "gold"}),
    ] {
        let res = app
            .client
            .post(app.url("/admin/tenants"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap();
        expect_json(res, 400).await;
    }
}

#[tokio::test]
async fn the_admin_api_is_off_without_a_token() {
    let app = TestApp::spawn_with(|env| {
        env.remove("HOOKLINE_ADMIN_TOKEN");
    })
    .await;
    let res = app
        .client
        .post(app.url("/admin/tenants"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let body = expect_json(res, 404).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("HOOKLINE_ADMIN_TOKEN"));
}

/// Wrong organisation tokens count against the client's address on
/// `/admin` and `/api/v1` alike: past 100 in ten minutes, even the right
/// token waits (429 with `Retry-After`), so the admin token cannot be
/// guessed through the APIs either. No token at all is not a guess.
#[tokio::test]
async fn wrong_admin_tokens_are_limited_per_address() {
    let app = TestApp::spawn().await;
    let t = app.tenant("other").await;
    for _ in 0..20 {
        let res = app
            .client
            .get(app.url("/admin/tenants"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    for i in 0..100 {
        let path = if i % 2 == 0 {
            "/admin/tenants"
        } else {
            "/api/v1/app"
        };
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(format!("guess-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "guess {i} on {path}");
    }
    for path in ["/admin/tenants", "/api/v1/app"] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 429, "{path}");
        assert!(res.headers().get("retry-after").is_some(), "{path}");
    }
    // Tenants' own API is not affected.
    let res = app
        .client
        .get(app.url("/v1/subscriptions"))
        .bearer_auth(&t.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
