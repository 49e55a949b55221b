//! What each kind of answer does: 2xx, 5xx then 2xx, Retry-After, 4xx, 410,
//! redirects, timeouts, refused connections, exhausted retries, and the SSRF
//! guard.

use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::webhooks::{publish, wait_status, wait_subscription_status};
use hookline_tests::{expect_json, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Retries after 1 s (± 10 %) so tests stay fast.
async fn fast_app(extra: &[(&str, &str)]) -> TestApp {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    TestApp::spawn_with(move |env| {
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "3".into());
        for (k, v) in extra {
            env.insert(k, v);
        }
    })
    .await
}

fn first_delivery(accepted: &Value) -> String {
    accepted["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_5xx_is_retried_and_the_history_shows_every_attempt() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(500).body("database down")]);
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({"k": "v"})).await);

    let detail = wait_status(&app, &t, &id, "delivered", WAIT).await;
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("x-hookline-attempt"), Some("1"));
    assert_eq!(got[1].header("x-hookline-attempt"), Some("2"));
    // Same message id and byte-identical body on every attempt.
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(850), "retried after {gap:?}");

    assert_eq!(detail["attempts"], 2);
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["outcome"], "pending");
    assert_eq!(log[0]["error_kind"], "http_status");
    assert!(log[0]["error_message"].as_str().unwrap().contains("500"));
    assert_eq!(log[0]["response_excerpt"], "database down");
    assert!(log[0]["next_attempt_at"].is_string());
    assert!(log[0]["duration_ms"].is_number());
    assert_eq!(log[1]["attempt"], 2);
    assert_eq!(log[1]["status_code"], 200);
    assert_eq!(log[1]["outcome"], "delivered");

    let attempts = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/attempts")).await,
        200,
    )
    .await;
    assert_eq!(attempts["data"].as_array().unwrap().len(), 2);
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/history")).await,
        200,
    )
    .await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["DeliveryEnqueued", "AttemptFailed", "DeliverySucceeded"]
    );
    assert_eq!(history["data"][1]["metadata"]["actor"], "system:worker");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![Reply::status(429).header("retry-after", "3")]);
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let detail = wait_status(&app, &t, &id, "delivered", WAIT).await;
    let got = rx.received();
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(2900),
        "the receiver asked for 3 s, got {gap:?}"
    );
    let first = &detail["attempt_log"][0];
    let started: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first["started_at"].clone()).unwrap();
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(first["next_attempt_at"].clone()).unwrap();
    assert!(next - started >= chrono::Duration::seconds(3));
}

#[tokio::test]
async fn a_retry_after_of_zero_or_in_the_past_does_not_bring_retries_forward() {
    // It used to replace the schedule with a second: every retry spent
    // within seconds, and the delivery abandoned.
    let app = fast_app(&[("HOOKLINE_RETRY_SCHEDULE", "3")]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![
        Reply::status(429).header("retry-after", "0"),
        Reply::status(503).header("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ]);
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    wait_status(&app, &t, &id, "delivered", WAIT).await;
    let got = rx.received();
    assert_eq!(got.len(), 3);
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // The schedule's 3 s, less its 10 % jitter.
        assert!(gap >= Duration::from_millis(2650), "{gap:?}");
    }
}

#[tokio::test]
async fn a_4xx_or_a_redirect_fails_without_retry() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.script(vec![
        Reply::status(400).body("{\"error\": \"bad invoice\"}"),
        Reply::status(302).header("location", "/elsewhere"),
    ]);
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let bad = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let d = wait_status(&app, &t, &bad, "failed", WAIT).await;
    assert_eq!(d["attempts"], 1);
    assert!(d["next_attempt_at"].is_null());
    assert_eq!(d["last_status_code"], 400);
    assert_eq!(
        d["attempt_log"][0]["response_excerpt"],
        "{\"error\": \"bad invoice\"}"
    );

    let redirected = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let d = wait_status(&app, &t, &redirected, "failed", WAIT).await;
    assert_eq!(d["last_status_code"], 302);
    // Nothing was queued for a retry, and the redirect was not followed.
    // (The queue is a read model: let it catch up with the log first.)
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_queue")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.path == "/r"));
}

/// A receiver's answer is outside text: NUL characters in it (which
/// Postgres text cannot hold) must neither fail the outcome nor stall the
/// read models every tenant shares.
#[tokio::test]
async fn an_answer_full_of_nul_bytes_is_recorded_and_stalls_nothing() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let hostile = TestReceiver::start().await;
    hostile.default_reply(Reply::status(400).body("bad\0bytes\0"));
    let fine = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": hostile.url("/r"), "events": ["a.b"]}))
        .await;
    app.subscribe(&t, json!({"url": fine.url("/r"), "events": ["c.d"]}))
        .await;

    let bad = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let d = wait_status(&app, &t, &bad, "failed", WAIT).await;
    assert_eq!(
        d["attempt_log"][0]["response_excerpt"],
        "bad\u{FFFD}bytes\u{FFFD}"
    );

    let good = first_delivery(&publish(&app, &t, "c.d", json!({})).await);
    wait_status(&app, &t, &good, "delivered", WAIT).await;
    // The lists (read models) include both: the projection went past the
    // hostile answer.
    let listed = hookline_tests::eventually("both deliveries listed", WAIT, || async {
        let page: Value = app.get(&t, "/v1/deliveries").await.json().await.ok()?;
        let statuses: Vec<(String, String)> = page["data"]
            .as_array()?
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap_or_default().to_string(),
                    d["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        (statuses.len() == 2 && statuses.iter().all(|(_, s)| s != "pending")).then_some(statuses)
    })
    .await;
    assert!(
        listed.contains(&(bad.clone(), "failed".to_string())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(good, "delivered".to_string())),
        "{listed:?}"
    );
    let attempts: Value = app
        .get(&t, &format!("/v1/deliveries/{bad}/attempts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        attempts["data"][0]["response_excerpt"],
        "bad\u{FFFD}bytes\u{FFFD}"
    );
}

#[tokio::test]
async fn a_410_fails_the_delivery_and_disables_the_subscription() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(410));
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/gone"), "events": ["a.b"]}))
        .await;
    let sub_id = sub["id"].as_str().unwrap();
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    wait_status(&app, &t, &id, "failed", WAIT).await;
    let disabled = wait_subscription_status(&app, &t, sub_id, "disabled").await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{disabled}"
    );
    let history = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{sub_id}/history"))
            .await,
        200,
    )
    .await;
    let last = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "SubscriptionDisabled");
    assert_eq!(last["metadata"]["actor"], "system:worker");
    // A disabled subscription receives nothing: the event is recorded for
    // it as a skipped delivery.
    let skipped = app
        .post(&t, "/v1/events", json!({"event_type": "a.b", "data": {}}))
        .await;
    assert_eq!(
        expect_json(skipped, 202).await["deliveries"][0]["status"],
        "skipped"
    );
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retried() {
    let app = fast_app(&[("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS", "1")]).await;
    let t = app.tenant("acme").await;
    let slow = TestReceiver::start().await;
    slow.script(vec![Reply::status(200).delay(Duration::from_secs(3))]);
    app.subscribe(&t, json!({"url": slow.url("/slow"), "events": ["slow.x"]}))
        .await;
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    app.subscribe(
        &t,
        json!({"url": format!("http://127.0.0.1:{closed}/x"), "events": ["refused.x"]}),
    )
    .await;

    let timed_out = first_delivery(&publish(&app, &t, "slow.x", json!({})).await);
    let refused = first_delivery(&publish(&app, &t, "refused.x", json!({})).await);

    let d = wait_status(&app, &t, &timed_out, "delivered", WAIT).await;
    let first = &d["attempt_log"][0];
    assert_eq!(first["error_kind"], "timeout");
    assert_eq!(first["outcome"], "pending");
    assert!(first["status_code"].is_null());
    let ms = first["duration_ms"].as_i64().unwrap();
    assert!((900..2500).contains(&ms), "timeout after {ms} ms");

    let d = hookline_tests::eventually("refused attempts", WAIT, || async {
        let v: Value = app
            .get(&t, &format!("/v1/deliveries/{refused}"))
            .await
            .json()
            .await
            .ok()?;
        (v["attempts"].as_i64()? >= 2).then_some(v)
    })
    .await;
    assert_eq!(d["attempt_log"][0]["error_kind"], "connect");
    assert_eq!(d["status"], "pending");
}

#[tokio::test]
async fn exhausted_retries_abandon_the_delivery() {
    let app = fast_app(&[("HOOKLINE_WEBHOOK_MAX_RETRIES", "1")]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(503));
    app.subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let d = wait_status(&app, &t, &id, "abandoned", WAIT).await;
    assert_eq!(d["attempts"], 2);
    assert_eq!(rx.count(), 2);
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/history")).await,
        200,
    )
    .await;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec![
            "DeliveryEnqueued",
            "AttemptFailed",
            "AttemptFailed",
            "DeliveryAbandoned"
        ]
    );
}

#[tokio::test]
async fn a_deleted_subscription_abandons_its_pending_deliveries() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(500));
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/r"), "events": ["a.b"]}))
        .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    rx.wait_for(1, WAIT).await;
    assert_eq!(
        app.delete(
            &t,
            &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap())
        )
        .await
        .status(),
        204
    );
    let d = wait_status(&app, &t, &id, "abandoned", WAIT).await;
    assert!(d["last_error"].as_str().is_some());
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{id}/history")).await,
        200,
    )
    .await;
    let last = history["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["event_type"], "DeliveryAbandoned");
    assert!(last["payload"]["reason"]
        .as_str()
        .unwrap()
        .contains("deleted"));
}

#[tokio::test]
async fn ssrf_targets_are_blocked_without_connecting() {
    // Subscriptions made while the private ranges were allowed…
    let v6 = TestReceiver::start_on("[::1]:0").await;
    let v4 = TestReceiver::start().await;
    let app = TestApp::spawn_with(|env| {
        env.insert(
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".into(),
            "10.0.0.0/8,169.254.0.0/16,127.0.0.0/8,::1/128".into(),
        );
    })
    .await;
    let t = app.tenant("acme").await;
    let targets = [
        "http://10.0.0.1/hook".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://[::1]:{}/hook", v6.address.port()),
        format!("http://localhost:{}/hook", v4.address.port()),
    ];
    for url in &targets {
        app.subscribe(&t, json!({"url": url, "events": ["a.b"]}))
            .await;
    }
    // …are refused at send time once they are not: the guard resolves and
    // checks every address, and never connects to a refused one.
    let mut app = app;
    app.env.insert(
        "HOOKLINE_ALLOW_PRIVATE_TARGETS".into(),
        "192.0.2.0/24".into(),
    );
    let app = app.restart().await;
    let accepted = publish(&app, &t, "a.b", json!({})).await;
    for d in accepted["deliveries"].as_array().unwrap() {
        let id = d["id"].as_str().unwrap();
        let detail = wait_status(&app, &t, id, "failed", WAIT).await;
        let attempt = &detail["attempt_log"][0];
        assert_eq!(attempt["error_kind"], "blocked_target", "{detail}");
        assert!(
            attempt["duration_ms"].as_i64().unwrap() < 1000,
            "no connection was tried: {attempt}"
        );
        assert_eq!(detail["attempts"], 1, "not retried");
    }
    assert_eq!(v6.count(), 0);
    assert_eq!(v4.count(), 0);
}

#[tokio::test]
async fn a_tls_failure_is_reported_as_such_and_retried() {
    let app = fast_app(&[]).await;
    let t = app.tenant("acme").await;
    // A plain-HTTP server behind an https:// URL: the handshake fails.
    let rx = TestReceiver::start().await;
    app.subscribe(
        &t,
        json!({"url": format!("https://127.0.0.1:{}/hook", rx.address.port()), "events": ["a.b"]}),
    )
    .await;
    let id = first_delivery(&publish(&app, &t, "a.b", json!({})).await);
    let d = hookline_tests::eventually("a failed TLS attempt", WAIT, || async {
        let v: Value = app
            .get(&t, &format!("/v1/deliveries/{id}"))
            .await
            .json()
            .await
            .ok()?;
        (v["attempts"].as_i64()? >= 1).then_some(v)
    })
    .await;
    let attempt = &d["attempt_log"][0];
    assert_eq!(attempt["error_kind"], "tls", "{attempt}");
    // The message names the cause, not the (already recorded) URL.
    let message = attempt["error_message"].as_str().unwrap();
    assert!(!message.contains("127.0.0.1"), "{message}");
    assert_eq!(attempt["outcome"], "pending");
}

/// One tenant's slow receiver must not hold every attempt slot: with 4
/// slots, a subscription gets at most 2, so another tenant's delivery goes
/// out at once instead of waiting behind the slow attempts.
#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_other_tenants() {
    let app = fast_app(&[("HOOKLINE_WORKER_CONCURRENCY", "4")]).await;
    let slow_tenant = app.tenant("slow").await;
    let other = app.tenant("other").await;
    let slow = TestReceiver::start().await;
    let hold = Duration::from_secs(4);
    slow.default_reply(Reply::status(204).delay(hold));
    let fast = TestReceiver::start().await;
    app.subscribe(
        &slow_tenant,
        json!({"url": slow.url("/slow"), "events": ["a.b"]}),
    )
    .await;
    app.subscribe(&other, json!({"url": fast.url("/fast"), "events": ["c.d"]}))
        .await;

    for n in 0..8 {
        publish(&app, &slow_tenant, "a.b", json!({"n": n})).await;
    }
    slow.wait_for(1, WAIT).await;
    let asked = std::time::Instant::now();
    publish(&app, &other, "c.d", json!({})).await;
    let got = fast.wait_for(1, WAIT).await;
    let waited = got[0].at.duration_since(asked);
    assert!(
        waited < Duration::from_secs(3),
        "the other tenant's delivery waited {waited:?} behind the slow receiver"
    );
    // The slow subscription never had more than its share in flight: no
    // more than 2 of its requests arrived within one hold period.
    let arrivals: Vec<std::time::Instant> = slow.received().iter().map(|r| r.at).collect();
    for (i, first) in arrivals.iter().enumerate() {
        let within = arrivals[i..]
            .iter()
            .filter(|at| at.duration_since(*first) < hold - Duration::from_millis(500))
            .count();
        assert!(
            within <= 2,
            "{within} slow attempts overlapped: {arrivals:?}"
        );
    }
}

/// The hostile sweep's case: tenant F has 200 subscriptions to one host
/// whose receiver takes 8 s (past the 5 s attempt timeout) and publishes
/// three times; tenant E's deliveries must still go out within a second,
/// because slots are shared across tenants and hosts, not only across
/// subscriptions.
#[tokio::test]
async fn many_slow_subscriptions_of_one_tenant_do_not_starve_another() {
    let app = fast_app(&[("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS", "5")]).await;
    let f = app.tenant("F").await;
    let e = app.tenant("E").await;
    let slow = TestReceiver::start().await;
    slow.default_reply(Reply::status(204).delay(Duration::from_secs(8)));
    let fast = TestReceiver::start().await;
    for n in 0..200 {
        app.subscribe(
            &f,
            json!({"url": slow.url(&format!("/s{n}")), "events": ["f.*"]}),
        )
        .await;
    }
    app.subscribe(&e, json!({"url": fast.url("/e"), "events": ["e.*"]}))
        .await;
    for n in 0..3 {
        publish(&app, &f, "f.x", json!({"n": n})).await;
    }
    slow.wait_for(1, WAIT).await;
    // For the next seconds F's 600 deliveries are in flight or waiting.
    let mut waits = Vec::new();
    for n in 0..20 {
        let asked = std::time::Instant::now();
        publish(&app, &e, "e.x", json!({"n": n})).await;
        let got = fast.wait_for(n + 1, WAIT).await;
        waits.push(got[n].at.duration_since(asked));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    waits.sort();
    let worst = *waits.last().unwrap();
    assert!(
        worst < Duration::from_secs(1),
        "E's deliveries waited up to {worst:?} behind F's slow host: {waits:?}"
    );
    assert!(slow.count() < 600, "F's deliveries were still in flight");
}
