//! Flow control end to end: a rate limit measured at the receiver with two
//! worker processes, a circuit opening on a dead receiver, probing and
//! closing (events in the history), a dead receiver's backlog costing no
//! attempts while the circuit is open, auto-disable, and deliveries skipped
//! while a subscription is disabled, then recovered.

use hookline_tests::process::ServerProcess;
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::webhooks::publish;
use hookline_tests::{eventually, expect_json, Tenant, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

async fn subscription(app: &TestApp, t: &Tenant, id: &str) -> Value {
    expect_json(
        app.get(t, &format!("/v1/subscriptions/{id}?include_inactive=true"))
            .await,
        200,
    )
    .await
}

async fn history_types(app: &TestApp, t: &Tenant, id: &str) -> Vec<String> {
    let h = expect_json(
        app.get(t, &format!("/v1/subscriptions/{id}/history")).await,
        200,
    )
    .await;
    h["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rate_limit_holds_across_two_worker_processes() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_ROLE".into(), "api".into());
    })
    .await;
    let mut env = app.env.clone();
    env.insert("HOOKLINE_DATABASE_URL".into(), app.db.url.clone());
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut w1 = ServerProcess::start(&["--role", "worker"], &env, dirs[0].path()).await;
    let mut w2 = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let limited = app
        .subscribe(
            &t,
            json!({"url": rx.url("/limited"), "events": ["load.*"], "rate_limit": 10}),
        )
        .await;
    assert_eq!(limited["rate_limit"], 10);
    app.subscribe(&t, json!({"url": rx.url("/free"), "events": ["load.*"]}))
        .await;
    let n = 60;
    for i in 0..n {
        publish(&app, &t, "load.tick", json!({"i": i})).await;
    }
    // While the limited ones wait, the subscription shows its backlog.
    let id = limited["id"].as_str().unwrap();
    let shown = subscription(&app, &t, id).await;
    assert!(shown["backlog"].as_u64().unwrap() > 0, "{shown}");
    let got = rx.wait_for(2 * n, Duration::from_secs(60)).await;
    let mut at: Vec<Instant> = got
        .iter()
        .filter(|r| r.path == "/limited")
        .map(|r| r.at)
        .collect();
    at.sort();
    assert_eq!(at.len(), n);
    // Never more than 10 in any second (one more for arrival jitter), and
    // 60 at 10/s take about 5.9 s end to end.
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(within <= 11, "{within} attempts within one second");
    }
    let span = at[n - 1].duration_since(at[0]);
    assert!(span >= Duration::from_millis(5300), "{span:?}");
    // And the limit is reached, not undercut: pacing never holds a
    // subscription back by more than its reservations.
    assert!(span < Duration::from_secs(8), "{span:?}");
    // None was dropped or counted as a failure; both workers took part.
    assert_eq!(count(&app, hookline_tests::FAILED_COUNT).await, 0);
    let workers = count(&app, hookline_tests::SUCCEEDING_WORKERS).await;
    assert_eq!(workers, 2);
    eventually("the backlog drains", WAIT, || async {
        (subscription(&app, &t, id).await["backlog"] == 0).then_some(())
    })
    .await;
    for w in [&mut w1, &mut w2] {
        w.signal("TERM");
        assert_eq!(w.wait(Duration::from_secs(30)).await, Some(0));
    }
}

#[tokio::test]
async fn a_dead_receiver_opens_the_circuit_which_probes_and_closes() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "3".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "2".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS".into(), "2".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "50".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let dead = TestReceiver::start().await;
    dead.default_reply(Reply::status(503));
    let healthy = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": dead.url("/dead"), "events": ["order.*"]}))
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    app.subscribe(
        &t,
        json!({"url": healthy.url("/ok"), "events": ["order.*"]}),
    )
    .await;
    for i in 0..3 {
        publish(&app, &t, "order.placed", json!({"i": i})).await;
    }
    let open = eventually("the circuit opens", WAIT, || async {
        let s = subscription(&app, &t, &id).await;
        (!s["circuit"].is_null()).then_some(s)
    })
    .await;
    assert_eq!(open["circuit"]["state"], "open");
    assert!(open["circuit"]["consecutive_failures"].as_u64().unwrap() >= 3);
    assert_eq!(open["circuit"]["cause"]["status_code"], 503);
    assert_eq!(open["status"], "active");
    // A backlog behind the open circuit: parked, not attempted.
    for i in 0..40 {
        publish(&app, &t, "order.placed", json!({"backlog": i})).await;
    }
    healthy.wait_for(43, WAIT).await;
    eventually("the backlog is parked", WAIT, || async {
        let parked = count(
            &app,
            "SELECT count(*) FROM delivery_queue WHERE lease_owner = 'circuit'",
        )
        .await;
        (parked >= 40).then_some(())
    })
    .await;
    let before = dead.count();
    let failed_before = count(&app, hookline_tests::FAILED_COUNT).await;
    // The released probe, once it failed, cannot be sent again at once by
    // a manual retry (each went straight to the dead receiver).
    eventually("a probe is sent", WAIT, || async {
        (dead.count() > before).then_some(())
    })
    .await;
    let probe = eventually("a probe is released", WAIT, || async {
        let probe: Option<String> = sqlx::query_scalar(
            "SELECT state->'circuit'->>'probe' FROM subscriptions_view WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        probe
    })
    .await;
    for _ in 0..3 {
        let refused = expect_json(
            app.post(&t, &format!("/v1/deliveries/{probe}/retry"), json!({}))
                .await,
            409,
        )
        .await;
        assert_eq!(refused["code"], "attempt_due", "{refused}");
    }
    tokio::time::sleep(Duration::from_secs(5)).await; // a window of probes (every 2 s)
    let probes = dead.count() - before;
    assert!(
        (1..=4).contains(&probes),
        "only probes reach a dead receiver while its circuit is open: {probes} requests in 5 s"
    );
    let failed_after = count(&app, hookline_tests::FAILED_COUNT).await;
    assert!(
        failed_after - failed_before <= 4,
        "{failed_before} → {failed_after}"
    );
    // The receiver comes back: the next probe closes the circuit and the
    // backlog drains.
    dead.default_reply(Reply::status(200));
    let closed = eventually("the circuit closes", WAIT, || async {
        let s = subscription(&app, &t, &id).await;
        s["circuit"].is_null().then_some(s)
    })
    .await;
    assert_eq!(closed["status"], "active");
    eventually("every delivery arrives", WAIT, || async {
        let pending = count(
            &app,
            "SELECT count(*) FROM deliveries_view WHERE status <> 'delivered'",
        )
        .await;
        (pending == 0).then_some(())
    })
    .await;
    let kinds = history_types(&app, &t, &id).await;
    let opened = kinds
        .iter()
        .position(|k| k == "EndpointCircuitOpened")
        .unwrap();
    let probed = kinds
        .iter()
        .position(|k| k == "EndpointCircuitProbeReleased")
        .unwrap();
    let closed_at = kinds
        .iter()
        .position(|k| k == "EndpointCircuitClosed")
        .unwrap();
    assert!(opened < probed && probed < closed_at, "{kinds:?}");
    let h = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{id}/history"))
            .await,
        200,
    )
    .await;
    let open_event = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "EndpointCircuitOpened")
        .unwrap()
        .clone();
    assert_eq!(open_event["metadata"]["actor"], "system:flow");
    assert_eq!(open_event["payload"]["cause"]["error_kind"], "http_status");
}

/// First attempts taken from the log behind an open circuit are parked on
/// the queue until the next probe; the probe that closes the circuit
/// releases them at once, not at the probe after it.
#[tokio::test]
async fn a_closing_circuit_releases_the_first_attempts_parked_behind_it() {
    const PROBE: Duration = Duration::from_secs(12);
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "3".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MIN_SECONDS".into(), "12".into());
        env.insert("HOOKLINE_CIRCUIT_PROBE_MAX_SECONDS".into(), "12".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "50".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(503));
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/flaky"), "events": ["order.*"]}))
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        publish(&app, &t, "order.placed", json!({"i": i})).await;
    }
    eventually("the circuit opens", WAIT, || async {
        let s = subscription(&app, &t, &id).await;
        (!s["circuit"].is_null()).then_some(())
    })
    .await;
    for i in 0..30 {
        publish(&app, &t, "order.placed", json!({"backlog": i})).await;
    }
    eventually("the new deliveries are parked", WAIT, || async {
        let parked = count(
            &app,
            "SELECT count(*) FROM delivery_queue WHERE lease_owner = 'circuit'",
        )
        .await;
        (parked >= 30).then_some(())
    })
    .await;
    // Nothing published behind the open circuit was attempted. (A retry
    // of the first three may still go out just before the circuit opens:
    // the controller decides once a second, as documented.)
    let behind = rx
        .received()
        .iter()
        .filter(|r| String::from_utf8_lossy(&r.body).contains("backlog"))
        .count();
    assert_eq!(behind, 0, "nothing behind the open circuit was attempted");
    rx.default_reply(Reply::status(204));
    eventually("the probe closes the circuit", WAIT, || async {
        let s = subscription(&app, &t, &id).await;
        s["circuit"].is_null().then_some(())
    })
    .await;
    let closed = Instant::now();
    eventually("every delivery arrives", WAIT, || async {
        let pending = count(
            &app,
            "SELECT count(*) FROM deliveries_view WHERE status <> 'delivered'",
        )
        .await;
        (pending == 0).then_some(())
    })
    .await;
    assert!(
        closed.elapsed() < PROBE / 2,
        "the parked deliveries waited {:?} after the circuit closed (the next probe was {PROBE:?} away)",
        closed.elapsed()
    );
}

#[tokio::test]
async fn a_subscription_failing_past_the_setting_is_disabled() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_AUTO_DISABLE_AFTER".into(), "2s".into());
        env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "1000".into());
        env.insert("HOOKLINE_RETRY_SCHEDULE".into(), "1".into());
        env.insert("HOOKLINE_WEBHOOK_MAX_RETRIES".into(), "50".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(500));
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/x"), "events": ["a.*"]}))
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    publish(&app, &t, "a.b", json!({})).await;
    let disabled = eventually("auto-disabled", WAIT, || async {
        let s = subscription(&app, &t, &id).await;
        (s["status"] == "disabled").then_some(s)
    })
    .await;
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.starts_with("auto: failing since "), "{reason}");
    let h = expect_json(
        app.get(&t, &format!("/v1/subscriptions/{id}/history"))
            .await,
        200,
    )
    .await;
    let event = h["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_type"] == "SubscriptionDisabled")
        .unwrap()
        .clone();
    assert_eq!(event["metadata"]["actor"], "system:flow");
    // Enabled again: it gets a fresh start (not disabled again at once).
    expect_json(
        app.post(&t, &format!("/v1/subscriptions/{id}/enable"), json!({}))
            .await,
        200,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(subscription(&app, &t, &id).await["status"], "active");
}

#[tokio::test]
async fn events_published_while_disabled_are_skipped_then_recovered() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let sub = app
        .subscribe(&t, json!({"url": rx.url("/s"), "events": ["invoice.*"]}))
        .await;
    let id = sub["id"].as_str().unwrap().to_string();
    expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{id}/disable"),
            json!({"reason": "maintenance"}),
        )
        .await,
        200,
    )
    .await;
    let since = chrono::Utc::now();
    let res = app
        .client
        .post(app.url("/v1/events"))
        .bearer_auth(&t.api_key)
        .header("x-request-id", "while-disabled-1")
        .json(&json!({"event_type": "invoice.paid", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    let published = expect_json(res, 202).await;
    assert_eq!(published["deliveries"][0]["status"], "skipped");
    for n in 2..=3 {
        publish(&app, &t, "invoice.paid", json!({"n": n})).await;
    }
    let skipped = eventually("skipped deliveries listed", WAIT, || async {
        let page = expect_json(
            app.get(
                &t,
                &format!("/v1/deliveries?status=skipped&subscription_id={id}"),
            )
            .await,
            200,
        )
        .await;
        (page["data"].as_array().unwrap().len() == 3).then_some(page)
    })
    .await;
    assert!(skipped["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["last_error"] == "the subscription is disabled"));
    let trace = expect_json(app.get(&t, "/v1/requests/while-disabled-1").await, 200).await;
    assert_eq!(trace["deliveries"][0]["status"], "skipped", "{trace}");
    assert_eq!(rx.count(), 0);
    // Recover refuses a disabled subscription; after enable it sends them.
    expect_json(
        app.post(&t, &format!("/v1/subscriptions/{id}/enable"), json!({}))
            .await,
        200,
    )
    .await;
    let recovered = expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{id}/recover"),
            json!({"since": since.to_rfc3339()}),
        )
        .await,
        202,
    )
    .await;
    assert_eq!(recovered["recovered"], 3);
    let got = rx.wait_for(3, WAIT).await;
    let mut ns: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    ns.sort_unstable();
    assert_eq!(ns, [1, 2, 3]);
}

/// "No duplicate subscription" and the per-tenant limit hold across API
/// processes on one database: identical creates and PATCHes to the same
/// URL sent through two processes at once leave one active subscription
/// (each process had found no duplicate, and both wrote one).
#[tokio::test]
async fn no_duplicate_subscription_across_two_api_processes() {
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_ROLE".into(), "api".into());
    })
    .await;
    let mut env = app.env.clone();
    env.insert("HOOKLINE_DATABASE_URL".into(), app.db.url.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut other = ServerProcess::start(
        &["--listen", "127.0.0.1:0", "--role", "api"],
        &env,
        dir.path(),
    )
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let body = json!({"url": rx.url("/same"), "events": ["order.*"]});
    let creates = (0..12).map(|i| {
        let url = if i % 2 == 0 {
            app.url("/v1/subscriptions")
        } else {
            other.url("/v1/subscriptions")
        };
        app.client
            .post(url)
            .bearer_auth(&t.api_key)
            .json(&body)
            .send()
    });
    let statuses: Vec<u16> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "{statuses:?}"
    );

    // Two subscriptions PATCHed to one URL at once, through each process.
    let a = app
        .subscribe(&t, json!({"url": rx.url("/a"), "events": ["order.*"]}))
        .await;
    let b = app
        .subscribe(&t, json!({"url": rx.url("/b"), "events": ["order.*"]}))
        .await;
    let to = json!({"url": rx.url("/together")});
    let patches = [
        app.client
            .patch(app.url(&format!("/v1/subscriptions/{}", a["id"].as_str().unwrap())))
            .bearer_auth(&t.api_key)
            .json(&to)
            .send(),
        app.client
            .patch(other.url(&format!("/v1/subscriptions/{}", b["id"].as_str().unwrap())))
            .bearer_auth(&t.api_key)
            .json(&to)
            .send(),
    ];
    let statuses: Vec<u16> = futures::future::join_all(patches)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![200, 409], "{statuses:?}");
    other.signal("TERM");
    assert_eq!(other.wait(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test]
async fn a_rate_limited_backlog_does_not_pace_other_tenants() {
    // A paced attempt holds one of the worker's slots while it waits for
    // its own; slots used to be reserved however far ahead, so a backlog of
    // one subscription at 1/s came to hold every worker slot, and every
    // other tenant's deliveries went out at 1/s too.
    let app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_WORKER_CONCURRENCY".into(), "8".into());
    })
    .await;
    let slow = app.tenant("slow").await;
    let other = app.tenant("other").await;
    let rx = TestReceiver::start().await;
    app.subscribe(
        &slow,
        json!({"url": rx.url("/limited"), "events": ["load.*"], "rate_limit": 1}),
    )
    .await;
    app.subscribe(
        &other,
        json!({"url": rx.url("/free"), "events": ["load.*"]}),
    )
    .await;
    for i in 0..60 {
        publish(&app, &slow, "load.tick", json!({"i": i})).await;
    }
    // Let the worker take the backlog in.
    eventually("the limited backlog is on the queue", WAIT, || async {
        (count(&app, "SELECT count(*) FROM delivery_queue").await >= 50).then_some(())
    })
    .await;
    eventually("the limited subscription is under way", WAIT, || async {
        (rx.received()
            .iter()
            .filter(|r| r.path == "/limited")
            .count()
            >= 3)
            .then_some(())
    })
    .await;
    let started = Instant::now();
    for i in 0..10 {
        publish(&app, &other, "load.tick", json!({"i": i})).await;
    }
    eventually("the other tenant's deliveries arrive", WAIT, || async {
        (rx.received().iter().filter(|r| r.path == "/free").count() == 10).then_some(())
    })
    .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "10 deliveries of another tenant took {took:?}"
    );
    // The limited subscription still goes at 1/s.
    let mut at: Vec<Instant> = rx
        .received()
        .iter()
        .filter(|r| r.path == "/limited")
        .map(|r| r.at)
        .collect();
    at.sort();
    for (i, start) in at.iter().enumerate() {
        let within = at[i..]
            .iter()
            .take_while(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(within <= 2, "{within} limited attempts within one second");
    }
}

#[tokio::test]
async fn whole_numbers_written_with_a_fraction_of_zero_are_whole_numbers() {
    // JSON Schema's `integer` (and clients generated from the document)
    // allow 10.0; rate_limit refused it while expires_in took it.
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    let s = app
        .subscribe(
            &t,
            json!({"url": rx.url("/a"), "events": ["a.*"], "rate_limit": 10.0}),
        )
        .await;
    assert_eq!(s["rate_limit"], 10);
    let path = format!("/v1/subscriptions/{}", s["id"].as_str().unwrap());
    let set = |rate: Value, status: u16| {
        let (app, t, path) = (&app, &t, &path);
        async move {
            expect_json(
                app.patch(t, path, json!({"rate_limit": rate})).await,
                status,
            )
            .await
        }
    };
    assert_eq!(set(json!(5e0), 200).await["rate_limit"], 5);
    assert_eq!(set(json!(2.5), 400).await["code"], "invalid_body");
    assert!(set(Value::Null, 200).await["rate_limit"].is_null());
}
