//! Rows the deliveries read model holds back for a new delivery's first
//! outcome (ADR 0021): a request that waits for the read model, and a
//! rebuild or its check, see them written.

use hookline_tests::process::run_cli;
use hookline_tests::receiver::TestReceiver;
use hookline_tests::{eventually, expect_json, TestApp};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

/// A server holding new rows for a minute (unless an outcome comes), with
/// attempts that wait for a paused receiver well past the test.
async fn holding_app() -> TestApp {
    TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_DELIVERY_ROW_HOLD_MS".into(), "60000".into());
        env.insert("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".into(), "60".into());
    })
    .await
}

/// Rows of `ids` in the deliveries read model.
pub async fn rows_of(pool: &sqlx::PgPool, ids: &[String], status: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM deliveries_view
          WHERE id::text = ANY($1) AND ($2::text IS NULL OR status = $2)",
    )
    .bind(ids)
    .bind(status)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until the rows of `ids` say delivered.
async fn all_delivered(pool: &sqlx::PgPool, ids: &[String]) {
    let n = i64::try_from(ids.len()).unwrap();
    eventually(
        "the rows say delivered",
        Duration::from_secs(30),
        || async { (rows_of(pool, ids, Some("delivered")).await == n).then_some(()) },
    )
    .await;
}

/// Waits until the deliveries projection has passed every message and
/// holds rows back, and checks that those of `ids` are not written.
pub async fn held_back(pool: &sqlx::PgPool, ids: &[String]) {
    eventually(
        "the deliveries projection holds new rows",
        Duration::from_secs(30),
        || async {
            let holding: bool = sqlx::query_scalar(
                "SELECT c.held_position IS NOT NULL
                        AND (c.last_tx_id, c.last_position) >=
                            (SELECT tx_id, global_position FROM events
                              WHERE aggregate_type = 'Message'
                              ORDER BY tx_id DESC, global_position DESC LIMIT 1)
                   FROM projection_checkpoints c WHERE c.name = 'deliveries'",
            )
            .fetch_one(pool)
            .await
            .ok()?;
            holding.then_some(())
        },
    )
    .await;
    assert_eq!(rows_of(pool, ids, None).await, 0, "held, not written");
}

/// Publishes `n` messages to a subscription of the paused `rx`, whose rows
/// are then held back; returns their delivery ids.
async fn publish_held(
    app: &TestApp,
    rx: &TestReceiver,
    n: usize,
) -> (hookline_tests::Tenant, Vec<String>) {
    let t = app.tenant("held").await;
    app.subscribe(&t, json!({"url": rx.url("/h"), "events": ["held.*"]}))
        .await;
    rx.pause();
    let mut ids = Vec::new();
    for i in 0..n {
        let res = app
            .client
            .post(app.url("/v1/events"))
            .bearer_auth(&t.api_key)
            .header("x-request-id", format!("held-{i}"))
            .json(&json!({"event_type": "held.tested", "data": {"i": i}}))
            .send()
            .await
            .unwrap();
        let body = expect_json(res, 202).await;
        ids.push(body["deliveries"][0]["id"].as_str().unwrap().to_string());
    }
    held_back(&app.db.pool, &ids).await;
    (t, ids)
}

#[tokio::test]
async fn a_trace_waits_for_the_rows_held_back_and_lists_them() {
    let app = holding_app().await;
    let rx = TestReceiver::start().await;
    let (t, ids) = publish_held(&app, &rx, 3).await;

    // The trace waits for the read model, which writes what it holds for
    // it (well before the minute, or the trace would time out without
    // them).
    let trace = expect_json(app.get(&t, "/v1/requests/held-1").await, 200).await;
    let traced: Vec<&str> = trace["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(traced, [ids[1].as_str()]);
    assert_eq!(trace["deliveries"][0]["status"], "pending");
    assert_eq!(rows_of(&app.db.pool, &ids, Some("pending")).await, 3);

    // The outcomes then update the written rows.
    rx.resume();
    all_delivered(&app.db.pool, &ids).await;
}

#[tokio::test]
async fn a_replay_check_writes_the_rows_held_back_and_finds_no_difference() {
    let app = holding_app().await;
    let rx = TestReceiver::start().await;
    let (_, ids) = publish_held(&app, &rx, 5).await;

    let check = run_cli(
        &[
            "replay",
            "--projection",
            "deliveries",
            "--check",
            "--database-url",
            &app.db.url,
        ],
        &HashMap::new(),
    )
    .await;
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    // It wrote them, as a process taking the projection over would, and
    // the checkpoint holds nothing any more.
    assert_eq!(rows_of(&app.db.pool, &ids, Some("pending")).await, 5);
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT held_position FROM projection_checkpoints WHERE name = 'deliveries'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(held, None);

    // The live projection forgot what it held and updates the written
    // rows with the outcomes (a second insert would fail the batch).
    rx.resume();
    all_delivered(&app.db.pool, &ids).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
}
