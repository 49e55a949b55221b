//! A response never contradicts what was stored: a publish whose events
//! are already being committed when the request timeout strikes gets its
//! real answer, or a plain "outcome unknown" that the trace then resolves,
//! never a "timed out" for work that was done.

use hookline_tests::receiver::TestReceiver;
use hookline_tests::{eventually, expect_json, TestApp};
use serde_json::json;
use sqlx::Connection;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Holds a lock that makes every insert into the log wait, until dropped.
async fn block_the_log(app: &TestApp) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// Waits until an insert into the log is waiting for the lock.
async fn insert_waiting(app: &TestApp) {
    eventually("the publish waits on the log", WAIT, || async {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO events%' AND datname = current_database())",
        )
        .fetch_one(&app.db.pool)
        .await
        .ok()?;
        waiting.then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_publish_committing_when_the_timeout_strikes_gets_its_real_answer() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/a"), "events": ["a.*"]}))
        .await;

    // The commit is held up past the timeout, then let go before twice it.
    let mut lock = block_the_log(&app).await;
    let publish = {
        let client = app.client.clone();
        let url = app.url("/v1/events");
        let key = t.api_key.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .header("x-request-id", "held-1")
                .json(&json!({"event_type": "a.b", "data": {"n": 1}}))
                .send()
                .await
                .unwrap()
        })
    };
    insert_waiting(&app).await;
    tokio::time::sleep(Duration::from_millis(1300)).await; // past the 1 s timeout
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let res = publish.await.unwrap();
    let body = expect_json(res, 202).await;
    assert_eq!(body["deliveries"].as_array().unwrap().len(), 1);
    rx.wait_for(1, WAIT).await;
    // Nothing to retry, nothing duplicated.
    let n: i64 = sqlx::query_scalar(hookline_tests::ENQUEUED_COUNT)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_commit_held_longer_answers_outcome_unknown_and_the_trace_shows_what_was_stored() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/a"), "events": ["a.*"]}))
        .await;
    let mut lock = block_the_log(&app).await;
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "held-2")
        .json(&json!({"event_type": "a.b", "data": {"n": 2}}))
        .send()
        .await
        .unwrap();
    let body = expect_json(res, 503).await;
    assert_eq!(body["code"], "outcome_unknown");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("/v1/requests/held-2"));
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // The trace says exactly what was stored: the one delivery.
    let trace = eventually("the trace shows the publish", WAIT, || async {
        let res = app.get(&t, "/v1/requests/held-2").await;
        (res.status() == 200).then_some(())?;
        res.json::<serde_json::Value>().await.ok()
    })
    .await;
    assert_eq!(trace["summary"]["deliveries"], 1);
    rx.wait_for(1, WAIT).await;

    // A publish cut off before its commit began answers 408, and then
    // nothing of it was stored: repeating it stores it once.
    let mut lock = block_the_log(&app).await;
    let publish = |n| {
        app.client
            .post(app.url("/v1/events"))
            .bearer_auth(&t.api_key)
            .header("idempotency-key", "held-3")
            .json(&json!({"event_type": "a.b", "data": {"n": n}}))
            .send()
    };
    let res = publish(3).await.unwrap();
    let body = expect_json(res, 408).await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("nothing was stored"));
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = 'held-3'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);
    expect_json(publish(3).await.unwrap(), 202).await;
    rx.wait_for(2, WAIT).await;
    let n: i64 = sqlx::query_scalar(hookline_tests::ENQUEUED_COUNT)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

/// How many of the tenant's sources are named `name`.
async fn sources_named(app: &TestApp, t: &hookline_tests::Tenant, name: &str) -> usize {
    let list = expect_json(app.get(t, "/v1/sources?limit=100").await, 200).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .count()
}

#[tokio::test]
async fn a_keyed_request_whose_commit_is_held_long_is_not_run_again_by_its_repeat() {
    // Claims not renewed for 3 × the 1 s timeout count as abandoned; the
    // request holding one renews it while its commit waits.
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_REQUEST_TIMEOUT_SECONDS".into(), "1".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let create = || {
        app.client
            .post(app.url("/v1/sources"))
            .bearer_auth(&t.api_key)
            .header("Idempotency-Key", "held-long")
            .json(&json!({"name": "held", "kind": "standard-webhooks"}))
            .send()
    };
    let mut lock = block_the_log(&app).await;
    let first = create().await.unwrap();
    assert_eq!(first.status(), 503, "{:?}", first.text().await);
    // Past the 3 s after which an unrenewed claim is taken over.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let repeat = create().await.unwrap();
    assert!(
        repeat.status().is_client_error(),
        "the repeat must not run while the first still commits: {}",
        repeat.status()
    );
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    let replayed = eventually("the first answer is kept", WAIT, || async {
        let res = create().await.ok()?;
        (res.status() == 201).then_some(res)
    })
    .await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(sources_named(&app, &t, "held").await, 1);
}

#[tokio::test]
async fn a_keyed_request_dropped_while_claiming_its_key_lets_it_go() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let create = {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/v1/sources"),
            t.api_key.clone(),
        );
        move || {
            client
                .post(url.clone())
                .bearer_auth(key.clone())
                .header("Idempotency-Key", "dropped-early")
                .json(&json!({"name": "dropped", "kind": "standard-webhooks"}))
                .send()
        }
    };
    // The claim waits on its table; the client goes away meanwhile.
    let mut lock = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE idempotent_requests IN SHARE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    let gone = tokio::spawn(create());
    eventually("the claim waits", WAIT, || async {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
              WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO idempotent_requests%'
                AND datname = current_database())",
        )
        .fetch_one(&app.db.pool)
        .await
        .ok()?;
        waiting.then_some(())
    })
    .await;
    gone.abort();
    assert!(gone.await.is_err());
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // Nothing was stored; the key is free again well before a stopped
    // request's claim would be taken over (3 × the 30 s timeout).
    let created = eventually("the repeat runs", Duration::from_secs(15), || async {
        let res = create().await.ok()?;
        (res.status() == 201).then_some(res)
    })
    .await;
    assert!(created.headers().get("idempotent-replayed").is_none());
    assert_eq!(sources_named(&app, &t, "dropped").await, 1);
}
