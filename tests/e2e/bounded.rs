//! Responses stay bounded however large what they describe: lists leave
//! webhook bodies out unless asked for, a page of bodies ends at a byte cap
//! and its cursor continues, and a request trace is a summary followed by
//! pages.

use hookline_tests::receiver::TestReceiver;
use hookline_tests::{events_of, eventually, expect_json, read_models_caught_up, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn audit_pages_leave_bodies_out_unless_asked_and_stop_at_the_byte_cap() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    for n in 0..3 {
        app.subscribe(
            &t,
            json!({"url": rx.url(&format!("/r{n}")), "events": ["big.*"]}),
        )
        .await;
    }
    // 25 events of 200 KB, each sent to three subscriptions: every body is
    // stored once, in its MessagePublished event.
    let blob = "x".repeat(200 * 1024);
    for n in 0..25 {
        let res = app
            .post(
                &t,
                "/v1/events",
                json!({"event_type": "big.one", "data": {"n": n, "blob": blob}}),
            )
            .await;
        expect_json(res, 202).await;
    }
    rx.wait_for(75, WAIT).await;
    read_models_caught_up(&app.db.pool).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%xxxxxxxxxxxxxxxxxxxx%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 25, "one body per event, not one per delivery");

    // Without asking: no bodies, their sizes instead, all in one page.
    let page = expect_json(app.get(&t, "/v1/audit/events?limit=1000").await, 200).await;
    let published = events_of(&page, "MessagePublished");
    assert_eq!(published.len(), 25);
    for e in &published {
        assert!(e["payload"].get("body").is_none(), "{e}");
        assert!(e["payload"]["body_bytes"].as_u64().unwrap() > 200 * 1024);
    }
    assert!(page.to_string().len() < 512 * 1024);

    // Asking for them: pages end at the cap (4 MiB) and continue.
    let mut after = 0;
    let mut bodies = 0;
    let mut pages = 0;
    loop {
        let res = app
            .get(
                &t,
                &format!("/v1/audit/events?aggregate_type=Message&limit=1000&include_payload=true&after={after}"),
            )
            .await;
        let text = res.text().await.unwrap();
        assert!(
            text.len() <= 4 * 1024 * 1024 + 300 * 1024,
            "{} bytes",
            text.len()
        );
        let page: Value = serde_json::from_str(&text).unwrap();
        let data = page["data"].as_array().unwrap();
        if data.is_empty() {
            break;
        }
        pages += 1;
        bodies += data
            .iter()
            .filter(|e| {
                e["payload"]["body"]
                    .as_str()
                    .is_some_and(|b| b.len() > 200 * 1024)
            })
            .count();
        after = page["next_after"].as_i64().unwrap();
    }
    assert_eq!(bodies, 25, "every body, across pages");
    assert!(pages >= 2, "the cap split the bodies over pages");
}

#[tokio::test]
async fn a_request_trace_is_a_summary_then_pages() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    for n in 0..5 {
        app.subscribe(
            &t,
            json!({"url": rx.url(&format!("/r{n}")), "events": ["a.*"]}),
        )
        .await;
    }
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "traced-1")
        .json(&json!({"event_type": "a.b", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    expect_json(res, 202).await;
    rx.wait_for(5, WAIT).await;
    let trace = eventually("every attempt is traced", WAIT, || async {
        let v = expect_json(app.get(&t, "/v1/requests/traced-1").await, 200).await;
        (v["summary"]["attempts"] == 5).then_some(v)
    })
    .await;
    assert_eq!(trace["summary"]["deliveries"], 5);
    assert_eq!(
        trace["summary"]["events"], 11,
        "the message, 5 enqueued, 5 delivered"
    );
    assert!(trace["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["payload"].get("body").is_none()));
    assert!(
        trace["next"].as_object().unwrap().is_empty(),
        "{}",
        trace["next"]
    );

    // Part by part, two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/requests/traced-1/deliveries?limit=2&cursor={c}"),
            None => "/v1/requests/traced-1/deliveries?limit=2".to_string(),
        };
        let page = expect_json(app.get(&t, &path).await, 200).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.dedup();
    assert_eq!(seen.len(), 5);
    let attempts = expect_json(
        app.get(&t, "/v1/requests/traced-1/attempts?limit=3").await,
        200,
    )
    .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 3);
    let rest = expect_json(
        app.get(
            &t,
            &format!(
                "/v1/requests/traced-1/attempts?limit=3&cursor={}",
                attempts["next_cursor"].as_str().unwrap()
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert!(rest.get("next_cursor").is_none());
    let events = expect_json(
        app.get(
            &t,
            "/v1/requests/traced-1/events?limit=4&include_payload=true",
        )
        .await,
        200,
    )
    .await;
    // The message's event lists its 5 deliveries (ADR 0019): each begins
    // with it, at its position, and a page never ends among them.
    let first: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        [
            "MessagePublished",
            "DeliveryEnqueued",
            "DeliveryEnqueued",
            "DeliveryEnqueued",
            "DeliveryEnqueued",
            "DeliveryEnqueued"
        ]
    );
    assert!(events["data"][0]["payload"]["body"].is_string());
    let rest = expect_json(
        app.get(
            &t,
            &format!(
                "/v1/requests/traced-1/events?limit=4&after={}",
                events["next_after"]
            ),
        )
        .await,
        200,
    )
    .await;
    // Their first outcomes are one row of the message's (ADR 0023): they
    // share its position, so the page holds all five.
    assert_eq!(rest["data"].as_array().unwrap().len(), 5);
    assert!(rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event_type"] == "DeliverySucceeded"));
    // The same attempts, through /v1/attempts, page too.
    let listed = expect_json(
        app.get(&t, "/v1/attempts?request_id=traced-1&limit=4")
            .await,
        200,
    )
    .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 4);
    assert!(listed["next_cursor"].is_string());
    expect_json(
        app.get(&t, "/v1/requests/traced-1/events?after=nope").await,
        400,
    )
    .await;
}
