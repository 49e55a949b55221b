//! Manual retry, recovery, the read APIs with their filters, the attempts
//! trace by request id, and tenant isolation of every read.

use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::webhooks::{invoice, publish, wait_status};
use hookline_tests::{expect_json, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn ids(page: &Value) -> Vec<String> {
    hookline_tests::strings(&page["data"], "id")
}

#[tokio::test]
async fn manual_retry_makes_a_new_attempt_and_keeps_the_history() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(400)]);
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let accepted = publish(&app, &t, "a.b", json!({"v": 1})).await;
    let id = accepted["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&app, &t, &id, "failed", WAIT).await;

    let res = app
        .client
        .post(app.url(&format!("/v1/deliveries/{id}/retry")))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "support-retry-7")
        .send()
        .await
        .unwrap();
    let retried = expect_json(res, 202).await;
    assert_eq!(retried["status"], "pending");
    let d = wait_status(&app, &t, &id, "delivered", WAIT).await;
    let log = d["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[1]["outcome"], "delivered");
    assert_eq!(log[1]["triggered_by"], "support-retry-7");
    let got = rx.received();
    assert_eq!(got[1].header("x-hookline-attempt"), Some("2"));
    assert_eq!(got[0].body, got[1].body);

    // A retry right after the publish finds the delivery (the read model
    // may not have it yet): never a 404.
    for n in 0..10 {
        let fresh = publish(&app, &t, "a.b", json!({"n": n})).await;
        let fresh = fresh["deliveries"][0]["id"].as_str().unwrap().to_string();
        let res = app
            .post(&t, &format!("/v1/deliveries/{fresh}/retry"), json!({}))
            .await;
        assert!(
            [202, 409].contains(&res.status().as_u16()),
            "{}",
            res.text().await.unwrap()
        );
    }

    // Retrying a delivered delivery conflicts.
    let again = expect_json(
        app.post(&t, &format!("/v1/deliveries/{id}/retry"), json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(again["code"], "already_delivered");
    expect_json(
        app.post(
            &t,
            "/v1/deliveries/0190b2a4-0000-7000-8000-000000000000/retry",
            json!({}),
        )
        .await,
        404,
    )
    .await;

    // Support's trace: the publish request and the retry request. Traces
    // are read models; the delivery above was folded from the log.
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let trace = expect_json(
        app.get(&t, "/v1/attempts?request_id=support-retry-7").await,
        200,
    )
    .await;
    assert_eq!(trace["data"].as_array().unwrap().len(), 1);
    // The same attempt reads the same from the log as from the trace's
    // table, to the microsecond.
    let from_log = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/attempts")).await,
        200,
    )
    .await;
    let traced = &trace["data"][0];
    let same = from_log["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == traced["id"])
        .unwrap();
    assert_eq!(same["started_at"], traced["started_at"], "{same} {traced}");
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/history")).await,
        200,
    )
    .await;
    let retry_event = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "RetryRequested")
        .unwrap()
        .clone();
    assert_eq!(retry_event["metadata"]["request_id"], "support-retry-7");
}

#[tokio::test]
async fn recover_requeues_failed_and_abandoned_deliveries_since_a_time() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    rx.script(vec![Reply::status(400)]);
    let old = publish(&app, &t, "a.b", json!({"n": 0})).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&app, &t, &old, "failed", WAIT).await;
    let since = chrono::Utc::now();
    rx.script(vec![Reply::status(422), Reply::status(400)]);
    let mut recent = Vec::new();
    for n in 1..=2 {
        let id = publish(&app, &t, "a.b", json!({"n": n})).await["deliveries"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        wait_status(&app, &t, &id, "failed", WAIT).await;
        recent.push(id);
    }
    let delivered = publish(&app, &t, "a.b", json!({"n": 3})).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&app, &t, &delivered, "delivered", WAIT).await;

    let body = json!({"since": since.to_rfc3339()});
    // Three recovers at once: each delivery is queued again exactly once,
    // and every caller gets a 202.
    let path = format!("/v1/subscriptions/{sub_id}/recover");
    let answers =
        futures::future::join_all((0..3).map(|_| app.post(&t, &path, body.clone()))).await;
    let mut recovered = 0;
    for res in answers {
        recovered += expect_json(res, 202).await["recovered"].as_i64().unwrap();
    }
    assert_eq!(recovered, 2);
    for id in &recent {
        wait_status(&app, &t, id, "delivered", WAIT).await;
    }
    let d = expect_json(app.get(&t, &format!("/v1/deliveries/{old}")).await, 200).await;
    assert_eq!(d["status"], "failed", "older than `since`: left alone");

    let b = expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{sub_id}/recover"),
            json!({}),
        )
        .await,
        400,
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("since"));
    let b = expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{sub_id}/recover"),
            json!({"since": "yesterday"}),
        )
        .await,
        400,
    )
    .await;
    assert!(b["detail"].as_str().unwrap().contains("since"));
    let other = app.tenant("other").await;
    expect_json(
        app.post(&other, &format!("/v1/subscriptions/{sub_id}/recover"), body)
            .await,
        404,
    )
    .await;
}

#[tokio::test]
async fn delivery_lists_filter_paginate_and_stay_within_the_tenant() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let other = app.tenant("other").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(400)]);
    let s1 = app
        .subscribe(&t, json!({"url": rx.url("/1"), "events": ["invoice.*"]}))
        .await;
    let s2 = app
        .subscribe(
            &t,
            json!({"url": rx.url("/2"), "events": ["payment.received"]}),
        )
        .await;
    app.subscribe(&other, json!({"url": rx.url("/o"), "events": ["*"]}))
        .await;

    let first = publish(&app, &t, "invoice.created", invoice()).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&app, &t, &first, "failed", WAIT).await;
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "req-pay")
        .json(&json!({"event_type": "payment.received", "data": {"payment_id": "p-1", "amount": "5.00"}}))
        .send()
        .await
        .unwrap();
    let pay = expect_json(res, 202).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sent = publish(
        &app,
        &t,
        "invoice.sent",
        json!({"invoice_id": "inv-1", "sent_at": "2026-01-01T00:00:00"}),
    )
    .await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let foreign = publish(&app, &other, "invoice.created", invoice()).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for id in [&pay, &sent] {
        wait_status(&app, &t, id, "delivered", WAIT).await;
    }
    hookline_tests::read_models_caught_up(&app.db.pool).await;

    let all = expect_json(app.get(&t, "/v1/deliveries").await, 200).await;
    assert_eq!(ids(&all), vec![sent.clone(), pay.clone(), first.clone()]);
    let q = |query: &str| format!("/v1/deliveries?{query}");
    assert_eq!(
        ids(&expect_json(app.get(&t, &q("status=failed")).await, 200).await),
        vec![first.clone()]
    );
    assert_eq!(
        ids(&expect_json(app.get(&t, &q("status=delivered")).await, 200).await),
        vec![sent.clone(), pay.clone()]
    );
    assert_eq!(
        ids(&expect_json(app.get(&t, &q("event=invoice.created")).await, 200).await),
        vec![first.clone()]
    );
    assert_eq!(
        ids(&expect_json(app.get(&t, &q("event=invoice.*")).await, 200).await),
        vec![sent.clone(), first.clone()]
    );
    let by_sub = format!("subscription_id={}", s2["id"].as_str().unwrap());
    assert_eq!(
        ids(&expect_json(app.get(&t, &q(&by_sub)).await, 200).await),
        vec![pay.clone()]
    );
    assert_eq!(
        ids(&expect_json(app.get(&t, &q("request_id=req-pay")).await, 200).await),
        vec![pay.clone()]
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339()
        .replace('+', "%2B");
    assert!(
        ids(&expect_json(app.get(&t, &q(&format!("since={future}"))).await, 200).await).is_empty()
    );
    assert_eq!(
        ids(&expect_json(app.get(&t, &q(&format!("until={future}"))).await, 200).await).len(),
        3
    );

    let page1 = expect_json(app.get(&t, &q("limit=2")).await, 200).await;
    assert_eq!(ids(&page1), vec![sent.clone(), pay.clone()]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = expect_json(
        app.get(&t, &q(&format!("limit=2&cursor={cursor}"))).await,
        200,
    )
    .await;
    assert_eq!(ids(&page2), vec![first.clone()]);
    assert!(page2.get("next_cursor").is_none());

    for bad in [
        "status=lost",
        "since=yesterday",
        "subscription_id=nope",
        "limit=500",
        "event=Bad",
        "colour=red",
    ] {
        expect_json(app.get(&t, &q(bad)).await, 400).await;
    }

    // Tenant isolation of every read.
    assert!(
        !ids(&expect_json(app.get(&other, "/v1/deliveries").await, 200).await).contains(&first)
    );
    for path in [
        format!("/v1/deliveries/{first}"),
        format!("/v1/deliveries/{first}/attempts"),
        format!("/v1/deliveries/{first}/history"),
    ] {
        expect_json(app.get(&other, &path).await, 404).await;
    }
    expect_json(
        app.post(&other, &format!("/v1/deliveries/{first}/retry"), json!({}))
            .await,
        404,
    )
    .await;
    let trace = expect_json(
        app.get(&other, "/v1/attempts?request_id=req-pay").await,
        200,
    )
    .await;
    assert!(trace["data"].as_array().unwrap().is_empty());
    expect_json(app.get(&t, &format!("/v1/deliveries/{foreign}")).await, 404).await;
    let _ = s1;
    expect_json(app.get(&t, "/v1/attempts").await, 400).await;
    let trace = expect_json(app.get(&t, "/v1/attempts?request_id=req-pay").await, 200).await;
    assert_eq!(trace["data"][0]["delivery_id"].as_str().unwrap(), pay);
}

/// A retry while the next attempt is due or under way would send that
/// attempt twice, only one of which the log could record: refused. A
/// delivery of a subscription that no longer receives events is not queued
/// again either.
#[tokio::test]
async fn retries_never_send_an_attempt_twice_nor_revive_an_inactive_subscription() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(400));
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let id = publish(&app, &t, "a.b", json!({})).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_status(&app, &t, &id, "failed", WAIT).await;

    // The second attempt is slow: it is under way while more retries come.
    rx.script(vec![Reply::status(400).delay(Duration::from_millis(800))]);
    let retry = format!("/v1/deliveries/{id}/retry");
    expect_json(app.post(&t, &retry, json!({})).await, 202).await;
    let burst = futures::future::join_all((0..10).map(|_| app.post(&t, &retry, json!({})))).await;
    for res in burst {
        let body = expect_json(res, 409).await;
        assert_eq!(body["code"], "attempt_due", "{body}");
    }
    let d = wait_status(&app, &t, &id, "failed", WAIT).await;
    let attempts: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts, vec![1, 2]);
    // Every request the receiver got is in the log, and none twice.
    let sent: Vec<String> = rx
        .received()
        .iter()
        .map(|r| r.header("x-hookline-attempt").unwrap().to_string())
        .collect();
    assert_eq!(sent, vec!["1", "2"]);

    // Disabled: neither a retry nor a recovery queues anything.
    expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{sub_id}/disable"),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let refused = expect_json(app.post(&t, &retry, json!({})).await, 409).await;
    assert_eq!(refused["code"], "subscription_inactive", "{refused}");
    let recover = format!("/v1/subscriptions/{sub_id}/recover");
    let refused = expect_json(
        app.post(&t, &recover, json!({"since": "2020-01-01T00:00:00Z"}))
            .await,
        409,
    )
    .await;
    assert_eq!(refused["code"], "subscription_inactive", "{refused}");

    // Deleted: the same, and a test send says so too.
    assert_eq!(
        app.delete(&t, &format!("/v1/subscriptions/{sub_id}"))
            .await
            .status(),
        204
    );
    let refused = expect_json(app.post(&t, &retry, json!({})).await, 409).await;
    assert_eq!(refused["code"], "subscription_deleted", "{refused}");
    let refused = expect_json(
        app.post(&t, &format!("/v1/subscriptions/{sub_id}/test"), json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(refused["code"], "subscription_deleted", "{refused}");
    assert_eq!(rx.count(), 2);
}

/// A delivery waiting out a backoff after a failure is sent at once by a
/// recover (the receiver is back), not after its backoff: what Svix's
/// recover does for a message with a failed attempt and no success.
#[tokio::test]
async fn recover_sends_now_a_delivery_waiting_out_a_backoff() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "600".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    rx.script(vec![Reply::status(503)]);
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let id = publish(&app, &t, "a.b", json!({"n": 1})).await["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    rx.wait_for(1, WAIT).await;
    // Its first attempt failed; the next is ten minutes away.
    hookline_tests::eventually("the failure recorded, and listed", WAIT, || async {
        let d = expect_json(app.get(&t, &format!("/v1/deliveries/{id}")).await, 200).await;
        let listed = expect_json(
            app.get(&t, &format!("/v1/deliveries?subscription_id={sub_id}"))
                .await,
            200,
        )
        .await;
        (d["status"] == "pending" && d["attempts"] == 1 && listed["data"][0]["attempts"] == 1)
            .then_some(())
    })
    .await;
    let res = app
        .post(
            &t,
            &format!("/v1/subscriptions/{sub_id}/recover"),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    let recovered = expect_json(res, 202).await;
    assert_eq!(recovered["delivery_ids"], json!([id]), "{recovered}");
    wait_status(&app, &t, &id, "delivered", WAIT).await;
    assert_eq!(rx.count(), 2);
    // Nothing left to recover.
    let again = expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{sub_id}/recover"),
            json!({"since": since.to_rfc3339()}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(again["recovered"], 0);
}
