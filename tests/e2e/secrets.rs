//! Secrets at rest: neither the log nor any table holds a subscription's
//! secret, its custom header values or an API key in plaintext.

use hookline_tests::{expect_json, TestApp};
use serde_json::json;

/// Every column of every table in the public schema, as text.
async fn dump_database(pool: &sqlx::PgPool) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = String::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(pool)
            .await
            .unwrap();
        out.push_str(&rows.join("\n"));
    }
    out
}

#[tokio::test]
async fn no_plaintext_secret_anywhere_in_the_database() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let generated = app
        .subscribe(&t, json!({"url": "https://example.com/a", "events": ["a.b"], "headers": {"Authorization": "Bearer header-credential-xyz"}}))
        .await;
    let generated_secret = generated["secret"].as_str().unwrap().to_string();
    let chosen = app
        .subscribe(&t, json!({"url": "https://example.com/b", "events": ["a.b"], "secret": "client-chosen-secret-987"}))
        .await;
    let path = format!("/v1/subscriptions/{}", chosen["id"].as_str().unwrap());
    let rotated = expect_json(
        app.post(&t, &format!("{path}/rotate-secret"), json!({}))
            .await,
        200,
    )
    .await;
    let rotated_secret = rotated["secret"].as_str().unwrap().to_string();
    let patched = expect_json(
        app.patch(
            &t,
            &path,
            json!({"headers": {"X-Api-Token": "patched-token-555"}}),
        )
        .await,
        200,
    )
    .await;

    let dump = dump_database(&app.db.pool).await;
    assert!(dump.contains("example.com"), "the dump covers the tables");
    for plaintext in [
        &generated_secret[6..],
        "client-chosen-secret-987",
        &rotated_secret[6..],
        "header-credential-xyz",
        "patched-token-555",
        &t.api_key,
        &t.api_key[4..],
    ] {
        assert!(
            !dump.contains(plaintext),
            "found plaintext {plaintext:?} in the database"
        );
    }
    // The custom header names stay readable for auditors; values are sealed.
    assert!(dump.contains("Authorization"));
    assert!(dump.contains("xchacha20poly1305"));

    // The response that set the header values shows them in full; reads
    // (plain, listed, as of a time) show them masked, like the secret.
    assert_eq!(patched["headers"]["X-Api-Token"], "patched-token-555");
    assert_eq!(
        generated["headers"]["Authorization"],
        "Bearer header-credential-xyz"
    );
    let read = expect_json(app.get(&t, &path).await, 200).await;
    assert_eq!(read["headers"]["X-Api-Token"], "…-555");
    let as_of = expect_json(
        app.get(
            &t,
            &format!(
                "{path}?as_of={}",
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(as_of["headers"]["X-Api-Token"], "…-555");
    let listed = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    let everywhere = listed.to_string();
    assert!(
        !everywhere.contains("patched-token-555") && !everywhere.contains("header-credential-xyz")
    );
}

#[tokio::test]
async fn a_server_with_another_key_cannot_read_sealed_values() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"], "headers": {"X-A": "1"}}),
        )
        .await;
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    let mut app = app;
    app.env.insert(
        "HOOKLINE_SECRET_KEY".into(),
        "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=".into(),
    );
    let app = app.restart().await;
    // The sealed headers cannot be opened: a 500 with the error shape, never
    // plaintext or garbage.
    let res = app.get(&t, &path).await;
    assert_eq!(res.status(), 500);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "internal_error");
}
