//! Processes killed mid-flight and several workers on one queue: every
//! accepted delivery still arrives. Publishing pushes back while first
//! attempts are too far behind.

use hookline_tests::process::ServerProcess;
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::server::wait_ready;
use hookline_tests::{eventually, expect_json, fresh_database};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

fn env(db_url: &str) -> HashMap<String, String> {
    HashMap::from([
        ("HOOKLINE_DATABASE_URL".to_string(), db_url.to_string()),
        (
            "HOOKLINE_ADMIN_TOKEN".to_string(),
            "crash-admin".to_string(),
        ),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".to_string(),
            "127.0.0.0/8".to_string(),
        ),
        (
            "HOOKLINE_SECRET_KEY".to_string(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
        ("HOOKLINE_WORKER_LEASE_SECONDS".to_string(), "3".to_string()),
        (
            "HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".to_string(),
            "2".to_string(),
        ),
        ("HOOKLINE_RETRY_SCHEDULE".to_string(), "1".to_string()),
    ])
}

async fn tenant_and_subscription(
    client: &reqwest::Client,
    server: &ServerProcess,
    rx: &TestReceiver,
) -> String {
    let t = client
        .post(server.url("/admin/tenants"))
        .bearer_auth("crash-admin")
        .json(&json!({"name": "crash"}))
        .send()
        .await
        .unwrap();
    let key = expect_json(t, 201).await["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let s = client
        .post(server.url("/v1/subscriptions"))
        .bearer_auth(&key)
        .json(&json!({"url": rx.url("/hook"), "events": ["load.*"]}))
        .send()
        .await
        .unwrap();
    expect_json(s, 201).await;
    key
}

/// Publishes `n` events with 16 concurrent clients; returns the accepted
/// delivery ids.
async fn publish_many(client: &reqwest::Client, url: &str, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let mut pending = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let url = url.to_string();
            let key = key.to_string();
            async move {
                let res = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"event_type": "load.tested", "data": {"i": i}}))
                    .send()
                    .await
                    .unwrap();
                let body: Value = expect_json(res, 202).await;
                body["deliveries"][0]["id"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(16);
    while let Some(id) = futures::StreamExt::next(&mut pending).await {
        ids.push(id);
    }
    ids
}

use futures::StreamExt as _;

async fn delivered_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries_view WHERE status = 'delivered'")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A server (every role) on `env`, once it is ready, with a tenant
/// subscribed to `rx`: the client, the server and the tenant's key.
async fn subscribed_server(
    env: &HashMap<String, String>,
    dir: &std::path::Path,
    rx: &TestReceiver,
) -> (reqwest::Client, ServerProcess, String) {
    let client = reqwest::Client::new();
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0"], env, dir).await;
    wait_ready(&client, &server.url("/readyz")).await;
    let key = tenant_and_subscription(&client, &server, rx).await;
    (client, server, key)
}

/// A process serving the API only (`--role api`), once it is ready.
async fn api_process(
    client: &reqwest::Client,
    env: &HashMap<String, String>,
    dir: &std::path::Path,
) -> ServerProcess {
    let api = ServerProcess::start(&["--listen", "127.0.0.1:0", "--role", "api"], env, dir).await;
    wait_ready(client, &api.url("/readyz")).await;
    api
}

#[tokio::test]
async fn a_server_killed_with_sigkill_mid_flight_loses_nothing() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(204).delay(Duration::from_millis(150)));
    let dir = tempfile::tempdir().unwrap();
    let mut env = env(&db.url);
    // Attempts held by the paused receiver must not time out while a slow
    // machine publishes (failures would open the subscription's circuit,
    // whose first probe waits 30 s): this test is about the kill.
    env.insert("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".into(), "20".into());
    env.insert("HOOKLINE_WORKER_LEASE_SECONDS".into(), "21".into());
    let (client, mut server, key) = subscribed_server(&env, dir.path(), &rx).await;

    // Hold deliveries while publishing, so that the kill finds most of them
    // queued or in flight however slow the machine is.
    rx.pause();
    let accepted = publish_many(&client, &server.url("/v1/events"), &key, 1000).await;
    assert_eq!(accepted.len(), 1000);
    rx.resume();
    rx.wait_for(150, Duration::from_secs(60)).await;

    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    let at_kill = rx.count();
    assert!(
        at_kill < 1000,
        "the kill came too late to test anything ({at_kill} delivered)"
    );

    let mut restarted = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    let expected: HashSet<String> = accepted.into_iter().collect();
    eventually(
        "every accepted delivery reached the receiver",
        Duration::from_secs(120),
        || async {
            let seen: HashSet<String> = rx
                .received()
                .iter()
                .filter_map(|r| r.header("webhook-id").map(str::to_string))
                .collect();
            expected.is_subset(&seen).then_some(())
        },
    )
    .await;
    eventually(
        "every delivery ends delivered",
        Duration::from_secs(60),
        || async { (delivered_count(&db.pool).await == 1000).then_some(()) },
    )
    .await;
    restarted.signal("TERM");
    assert_eq!(restarted.wait(Duration::from_secs(30)).await, Some(0));
}

#[tokio::test]
async fn two_worker_processes_share_one_queue() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(200).delay(Duration::from_millis(20)));
    let env = env(&db.url);
    let client = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut api = api_process(&client, &env, dirs[0].path()).await;
    let mut w1 = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;
    let mut w2 = ServerProcess::start(&["--role", "worker"], &env, dirs[2].path()).await;
    let key = tenant_and_subscription(&client, &api, &rx).await;

    let accepted = publish_many(&client, &api.url("/v1/events"), &key, 300).await;
    eventually("all delivered", Duration::from_secs(60), || async {
        (delivered_count(&db.pool).await == 300).then_some(())
    })
    .await;
    let workers: Vec<String> = sqlx::query_scalar(concat!(
        "SELECT DISTINCT metadata->>'worker_id' FROM ",
        hookline_tests::delivery_events!(),
        " WHERE event_type = 'DeliverySucceeded'"
    ))
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(workers.len(), 2, "both workers made attempts: {workers:?}");
    // The API process itself runs no worker.
    let succeeded: i64 = sqlx::query_scalar(hookline_tests::SUCCEEDED_COUNT)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(succeeded, 300);
    let ids: HashSet<String> = rx
        .received()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    assert_eq!(ids.len(), accepted.len());
    for p in [&mut api, &mut w1, &mut w2] {
        p.signal("TERM");
        assert_eq!(p.wait(Duration::from_secs(30)).await, Some(0));
    }
}

#[tokio::test]
async fn publishers_that_disconnect_mid_request_lose_nothing_the_server_committed() {
    let app = hookline_tests::TestApp::spawn().await;
    let t = app.tenant("impatient").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/d"), "events": ["load.*"]}))
        .await;

    // 600 publishes under load, each from a client that gives up after
    // 2–120 ms: many are cut off before, during or after their commit.
    let url = app.url("/v1/events");
    let results = futures::stream::iter(0..600u64)
        .map(|i| {
            let url = url.clone();
            let key = t.api_key.clone();
            async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_millis(2 + (i * 37) % 119))
                    .build()
                    .unwrap();
                let res = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"event_type": "load.cancelled", "data": {"i": i}}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 202 => match r.json::<Value>().await {
                        Ok(v) => Some(v["deliveries"][0]["id"].as_str().unwrap().to_string()),
                        Err(_) => None,
                    },
                    _ => None,
                }
            }
        })
        .buffer_unordered(48)
        .collect::<Vec<_>>()
        .await;
    let acknowledged: HashSet<String> = results.iter().flatten().cloned().collect();
    let cut_off = results.iter().filter(|r| r.is_none()).count();
    assert!(
        cut_off > 0,
        "no request was cut off; the test proves nothing"
    );
    assert!(
        !acknowledged.is_empty(),
        "no request got through; the test proves nothing"
    );

    // Whatever the server committed — acknowledged or not — is delivered.
    let committed = eventually(
        "in-flight requests have finished",
        Duration::from_secs(30),
        || async {
            let n1: i64 = sqlx::query_scalar(hookline_tests::ENQUEUED_COUNT)
                .fetch_one(&app.db.pool)
                .await
                .ok()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let ids: Vec<String> = sqlx::query_scalar(hookline_tests::ENQUEUED_IDS)
                .fetch_all(&app.db.pool)
                .await
                .ok()?;
            (ids.len() as i64 == n1).then_some(ids.into_iter().collect::<HashSet<String>>())
        },
    )
    .await;
    assert!(
        acknowledged.is_subset(&committed),
        "an acknowledged publish was not committed"
    );
    eventually(
        "every committed delivery reached the receiver",
        Duration::from_secs(60),
        || async {
            let seen: HashSet<String> = rx
                .received()
                .iter()
                .filter_map(|r| r.header("webhook-id").map(str::to_string))
                .collect();
            committed.is_subset(&seen).then_some(())
        },
    )
    .await;
    eprintln!(
        "{} publishes: {} acknowledged, {} cut off, {} committed and delivered",
        results.len(),
        acknowledged.len(),
        cut_off,
        committed.len()
    );
}

/// How many times the receiver got each delivery (by `webhook-id`).
fn arrivals(rx: &TestReceiver) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in rx.received() {
        if let Some(id) = r.header("webhook-id") {
            *seen.entry(id.to_string()).or_default() += 1;
        }
    }
    seen
}

/// First attempts come straight from the log, a leased span at a time
/// (ADR 0017). A worker killed while its spans are in flight loses
/// nothing: once the lease expires another worker takes the spans over and
/// attempts exactly the deliveries that have no outcome yet. A delivery
/// whose outcome was recorded before the kill is never sent again; one
/// in flight at the kill may arrive twice (at least once, same
/// `webhook-id`), never more.
#[tokio::test]
async fn a_worker_killed_during_first_attempts_from_the_log_loses_nothing() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    // Fast enough for the worker's fairness to leave the subscription
    // uncapped (a slow one's deliveries would wait on the queue instead).
    rx.default_reply(Reply::status(204).delay(Duration::from_millis(150)));
    let mut env = env(&db.url);
    // Few attempts at once, so the kill finds spans in flight however
    // fast the machine is.
    env.insert("HOOKLINE_WORKER_CONCURRENCY".into(), "8".into());
    let client = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut api = api_process(&client, &env, dirs[0].path()).await;
    let key = tenant_and_subscription(&client, &api, &rx).await;
    let mut w1 = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;

    let n = 200;
    let accepted = publish_many(&client, &api.url("/v1/events"), &key, n).await;
    assert_eq!(accepted.len(), n);
    eventually(
        "the worker took spans of the log",
        Duration::from_secs(30),
        || async {
            let spans: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_feed_spans")
                .fetch_one(&db.pool)
                .await
                .ok()?;
            (spans > 0).then_some(())
        },
    )
    .await;
    eventually(
        "some outcomes are recorded",
        Duration::from_secs(30),
        || async {
            let done: i64 = sqlx::query_scalar(hookline_tests::SUCCEEDED_COUNT)
                .fetch_one(&db.pool)
                .await
                .ok()?;
            (done >= 10).then_some(())
        },
    )
    .await;

    w1.signal("KILL");
    w1.wait(Duration::from_secs(10)).await;
    let recorded: HashSet<String> = sqlx::query_scalar(concat!(
        "SELECT aggregate_id FROM ",
        hookline_tests::delivery_events!(),
        " WHERE sequence > 1"
    ))
    .fetch_all(&db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert!(
        recorded.len() < n,
        "the kill came too late to test anything ({} recorded)",
        recorded.len()
    );
    let unfinished: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_feed_spans")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_queue")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    eprintln!(
        "at the kill: {} recorded, {unfinished} spans unfinished, {queued} queued, {} received",
        recorded.len(),
        rx.count()
    );
    assert!(
        unfinished > 0,
        "the killed worker left no span to take over"
    );

    let mut w2 = ServerProcess::start(&["--role", "worker"], &env, dirs[2].path()).await;
    let expected: HashSet<String> = accepted.into_iter().collect();
    eventually(
        "every accepted delivery reached the receiver",
        Duration::from_secs(60),
        || async {
            let seen: HashSet<String> = arrivals(&rx).into_keys().collect();
            expected.is_subset(&seen).then_some(())
        },
    )
    .await;
    eventually(
        "every delivery ends delivered and every span is finished",
        Duration::from_secs(60),
        || async {
            let spans: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_feed_spans")
                .fetch_one(&db.pool)
                .await
                .ok()?;
            (delivered_count(&db.pool).await == n as i64 && spans == 0).then_some(())
        },
    )
    .await;
    let seen = arrivals(&rx);
    for (id, times) in &seen {
        assert!(expected.contains(id), "unknown delivery {id} arrived");
        assert!(*times <= 2, "{id} arrived {times} times");
        if recorded.contains(id) {
            assert_eq!(
                *times, 1,
                "{id} was sent again after its outcome was recorded"
            );
        }
    }
    let succeeded: i64 = sqlx::query_scalar(hookline_tests::SUCCEEDED_COUNT)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(succeeded, n as i64, "one outcome per delivery");
    let workers: i64 = sqlx::query_scalar(hookline_tests::SUCCEEDING_WORKERS)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(workers, 2, "the second worker took over the spans");
    let twice = seen.values().filter(|t| **t == 2).count();
    eprintln!(
        "{n} deliveries: {} recorded before the kill, {twice} sent twice (in flight at the kill)",
        recorded.len()
    );
    for p in [&mut api, &mut w2] {
        p.signal("TERM");
        assert_eq!(p.wait(Duration::from_secs(30)).await, Some(0));
    }
}

/// A worker that takes over an expired span takes no more of it than it
/// has free slots for; the rest stays an expired span for the next take.
/// Otherwise a worker with one slot holds a span of many deliveries past
/// its lease, a third worker takes the same span over, and deliveries that
/// were never in flight at the crash go out twice (or three times).
#[tokio::test]
async fn a_span_taken_over_by_a_worker_with_few_slots_is_not_sent_twice() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    // Held long enough for the first worker to be killed with one large
    // span in flight.
    rx.default_reply(Reply::status(204).delay(Duration::from_secs(1)));
    let mut env = env(&db.url);
    let client = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut api = api_process(&client, &env, dirs[0].path()).await;
    let key = tenant_and_subscription(&client, &api, &rx).await;
    let n = 120;
    let accepted = publish_many(&client, &api.url("/v1/events"), &key, n).await;
    assert_eq!(accepted.len(), n);

    // Started after the publishes: its first take is one span of as many
    // deliveries as it has slots.
    env.insert("HOOKLINE_WORKER_CONCURRENCY".into(), "64".into());
    let mut w1 = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;
    rx.wait_for(32, Duration::from_secs(30)).await;
    let spans: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, lease_owner FROM delivery_feed_spans ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    w1.signal("KILL");
    w1.wait(Duration::from_secs(10)).await;
    let (span, first_owner) = spans.first().cloned().expect("the worker took a span");
    // What reached the receiver from the killed worker (its requests in
    // flight may still be read after the kill).
    let mut at_kill = rx.count();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = rx.count();
        if now == at_kill {
            break;
        }
        at_kill = now;
    }
    let in_flight: HashSet<String> = arrivals(&rx).into_keys().collect();
    assert!(
        in_flight.len() >= 32 && in_flight.len() < n,
        "{} deliveries were in flight at the kill",
        in_flight.len()
    );
    rx.default_reply(Reply::status(204).delay(Duration::from_millis(150)));

    // One slot: the span's deliveries take it far longer than a lease.
    env.insert("HOOKLINE_WORKER_CONCURRENCY".into(), "1".into());
    let mut w2 = ServerProcess::start(&["--role", "worker"], &env, dirs[2].path()).await;
    eventually(
        "the one-slot worker took the killed worker's span over",
        Duration::from_secs(30),
        || async {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT lease_owner FROM delivery_feed_spans WHERE id = $1")
                    .bind(span)
                    .fetch_optional(&db.pool)
                    .await
                    .ok()?;
            // Gone: taken over and finished (or found settled) already.
            owner.is_none_or(|o| o != first_owner).then_some(())
        },
    )
    .await;
    env.insert("HOOKLINE_WORKER_CONCURRENCY".into(), "4".into());
    let mut w3 = ServerProcess::start(&["--role", "worker"], &env, dirs[3].path()).await;

    let expected: HashSet<String> = accepted.into_iter().collect();
    eventually(
        "every delivery ends delivered and every span is finished",
        Duration::from_secs(90),
        || async {
            let spans: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_feed_spans")
                .fetch_one(&db.pool)
                .await
                .ok()?;
            (delivered_count(&db.pool).await == n as i64 && spans == 0).then_some(())
        },
    )
    .await;
    let seen = arrivals(&rx);
    assert_eq!(
        seen.keys().cloned().collect::<HashSet<String>>(),
        expected,
        "every accepted delivery arrived, nothing else"
    );
    for (id, times) in &seen {
        if in_flight.contains(id) {
            assert!(
                *times <= 2,
                "{id} (in flight at the kill) arrived {times} times"
            );
        } else {
            assert_eq!(
                *times, 1,
                "{id} (not sent before the kill) arrived {times} times"
            );
        }
    }
    let again = seen.values().filter(|t| **t == 2).count();
    eprintln!(
        "{n} deliveries: {} in flight at the kill, {again} of them sent again",
        in_flight.len()
    );
    for p in [&mut api, &mut w2, &mut w3] {
        p.signal("TERM");
        assert_eq!(p.wait(Duration::from_secs(30)).await, Some(0));
    }
}

#[tokio::test]
async fn a_tenant_that_fills_the_backlog_is_pushed_back_and_the_others_are_not() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    let mut env = env(&db.url);
    // A tenant's share is a tenth of the bound: 20 of its own events.
    env.insert("HOOKLINE_DELIVERY_BACKLOG_BOUND".into(), "200".into());
    let client = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // No worker yet: nothing moves the first-attempt cursor.
    let mut api = api_process(&client, &env, dirs[0].path()).await;
    let publish = |key: &str, i: usize| {
        client
            .post(api.url("/v1/events"))
            .bearer_auth(key)
            .json(&json!({"event_type": "load.tested", "data": {"i": i}}))
            .send()
    };
    // The noisy tenant fills the backlog until it is refused.
    let noisy = tenant_and_subscription(&client, &api, &rx).await;
    let mut accepted = 0;
    loop {
        assert!(
            accepted < 1000,
            "1000 publishes accepted over a bound of 200"
        );
        let res = publish(&noisy, accepted).await.unwrap();
        if res.status() == 503 {
            // Push-back says when to try again.
            assert_eq!(
                res.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"1"[..])
            );
            assert_eq!(expect_json(res, 503).await["code"], "backlog_full");
            break;
        }
        expect_json(res, 202).await;
        accepted += 1;
    }
    // Another tenant is admitted at once while its own share is small,
    // and pushed back in turn once it holds its share.
    let quiet = tenant_and_subscription(&client, &api, &rx).await;
    let mut quiet_accepted = 0;
    let refused = loop {
        assert!(
            quiet_accepted < 15,
            "a tenant passed its share of 20 events"
        );
        let res = publish(&quiet, quiet_accepted).await.unwrap();
        if res.status() == 503 {
            break expect_json(res, 503).await;
        }
        expect_json(res, 202).await;
        quiet_accepted += 1;
    };
    eprintln!("noisy tenant: {accepted} accepted; quiet tenant: {quiet_accepted}");
    assert!(
        quiet_accepted >= 5,
        "the quiet tenant was admitted {quiet_accepted} times"
    );
    assert_eq!(refused["code"], "backlog_full", "{refused}");
    // The noisy tenant is still pushed back, its inbound webhooks too (a
    // provider retries the 503).
    let res = publish(&noisy, accepted).await.unwrap();
    assert_eq!(expect_json(res, 503).await["code"], "backlog_full");
    let source = client
        .post(api.url("/v1/sources"))
        .bearer_auth(&noisy)
        .json(
            &json!({"name": "in", "kind": "header-secret", "header_name": "X-Tok",
                      "secret": "SuperSecretValue123", "event_type": "load.tested", "data": ""}),
        )
        .send()
        .await
        .unwrap();
    let source = expect_json(source, 201).await;
    let inbound = client
        .post(api.url(&format!("/in/{}", source["id"].as_str().unwrap())))
        .header("X-Tok", "SuperSecretValue123")
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert!(inbound.headers().contains_key("retry-after"));
    assert_eq!(expect_json(inbound, 503).await["code"], "backlog_full");
    // A tenant fanning out to 8 subscriptions (about 10 events of its own
    // behind), 10 publishes at once: each is weighed with its 9 events, one
    // after another, so two pass before its share of 20 is used up, not
    // all ten against one reading.
    let fanning = tenant_and_subscription(&client, &api, &rx).await;
    for i in 1..8 {
        let s = client
            .post(api.url("/v1/subscriptions"))
            .bearer_auth(&fanning)
            .json(&json!({"url": rx.url(&format!("/fan{i}")), "events": ["load.*"]}))
            .send()
            .await
            .unwrap();
        expect_json(s, 201).await;
    }
    let burst = futures::future::join_all((0..10).map(|i| publish(&fanning, i))).await;
    let fanned = burst
        .iter()
        .filter(|r| r.as_ref().unwrap().status() == 202)
        .count();
    eprintln!("fanning tenant: {fanned} of 10 accepted");
    assert!(
        (1..=2).contains(&fanned),
        "{fanned} fan-out publishes of 9 events passed a share of 20"
    );
    // Everything accepted is delivered once a worker runs.
    let mut worker = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;
    rx.wait_for(
        accepted + quiet_accepted + 8 * fanned,
        Duration::from_secs(30),
    )
    .await;
    for p in [&mut api, &mut worker] {
        p.signal("TERM");
        assert_eq!(p.wait(Duration::from_secs(30)).await, Some(0));
    }
}

#[tokio::test]
async fn publishing_pushes_back_while_first_attempts_are_behind_and_resumes_when_they_catch_up() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    let mut env = env(&db.url);
    env.insert("HOOKLINE_DELIVERY_BACKLOG_BOUND".into(), "40".into());
    let client = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // No worker yet: each publish moves the log's head (its message and its
    // delivery), nothing moves the first-attempt cursor.
    let mut api = api_process(&client, &env, dirs[0].path()).await;
    let key = tenant_and_subscription(&client, &api, &rx).await;
    let publish = |i: usize| {
        client
            .post(api.url("/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"event_type": "load.tested", "data": {"i": i}}))
            .send()
    };
    let mut accepted = 0;
    let refused = loop {
        // The bound is checked against a reading at most 50 ms old, so a
        // burst may pass it by what is published in that time; not by this.
        assert!(
            accepted < 1000,
            "1000 publishes were accepted over a bound of 40 positions"
        );
        let res = publish(accepted).await.unwrap();
        if res.status() == 503 {
            break expect_json(res, 503).await;
        }
        expect_json(res, 202).await;
        accepted += 1;
    };
    assert_eq!(refused["code"], "backlog_full", "{refused}");
    assert!(refused["request_id"].is_string(), "{refused}");
    // The refused publish wrote nothing.
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'MessagePublished'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(messages, i64::try_from(accepted).unwrap());
    // /readyz says so, and stays ready: this is load, not a fault.
    let ready = expect_json(client.get(api.url("/readyz")).send().await.unwrap(), 200).await;
    let backlog = &ready["delivery_backlog"];
    assert_eq!(backlog["bound"], 40, "{ready}");
    assert_eq!(backlog["full"], true, "{ready}");
    assert!(backlog["behind"].as_i64().unwrap() > 40, "{ready}");

    // A worker takes the backlog: everything accepted arrives, the backlog
    // empties and publishing is accepted again.
    let mut worker = ServerProcess::start(&["--role", "worker"], &env, dirs[1].path()).await;
    rx.wait_for(accepted, Duration::from_secs(30)).await;
    eventually("the backlog emptied", Duration::from_secs(30), || async {
        let ready: Value = client
            .get(api.url("/readyz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (ready["delivery_backlog"]["full"] == false).then_some(())
    })
    .await;
    expect_json(publish(accepted).await.unwrap(), 202).await;
    rx.wait_for(accepted + 1, Duration::from_secs(30)).await;
    for p in [&mut api, &mut worker] {
        p.signal("TERM");
        assert_eq!(p.wait(Duration::from_secs(30)).await, Some(0));
    }
}

/// A server killed while it deleted a tenant (the tenant deleted, its
/// subscription not yet) sends none of that subscription's retries after
/// its restart: the deletion is finished before the first attempt.
#[tokio::test]
async fn retries_of_a_tenant_whose_deletion_a_kill_interrupted_do_not_go_out() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    rx.default_reply(Reply::status(500));
    let dir = tempfile::tempdir().unwrap();
    let mut env = env(&db.url);
    // Retries every 2 s that never run out, with the circuit kept closed:
    // some are due whenever the server restarts.
    env.insert("HOOKLINE_RETRY_SCHEDULE".into(), vec!["2"; 100].join(","));
    env.insert("HOOKLINE_CIRCUIT_FAILURE_THRESHOLD".into(), "100000".into());
    let client = reqwest::Client::new();
    let mut server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    wait_ready(&client, &server.url("/readyz")).await;
    let key = tenant_and_subscription(&client, &server, &rx).await;
    publish_many(&client, &server.url("/v1/events"), &key, 20).await;
    rx.wait_for(20, Duration::from_secs(30)).await;
    let (tenant, subscription): (String, String) = sqlx::query_as(
        "SELECT tenant_id::text, id::text FROM subscriptions_view WHERE status <> 'deleted'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();

    // The subscription's next event is held by a row this transaction
    // inserted and has not committed: the cascade waits there, after the
    // tenant's deletion committed.
    let mut hold = db.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Subscription', $1, max(sequence) + 1, 'Held', '1.0', '{}', '{}'
           FROM events WHERE aggregate_type = 'Subscription' AND aggregate_id = $1",
    )
    .bind(&subscription)
    .execute(&mut *hold)
    .await
    .unwrap();
    let delete = tokio::spawn({
        let request = client
            .delete(server.url(&format!("/admin/tenants/{tenant}")))
            .bearer_auth("crash-admin");
        async move { request.send().await }
    });
    eventually(
        "the tenant's deletion committed and its cascade waits",
        Duration::from_secs(30),
        || async {
            let deleted: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'Tenant'
                                   AND aggregate_id = $1 AND event_type = 'TenantDeleted')",
            )
            .bind(&tenant)
            .fetch_one(&db.pool)
            .await
            .unwrap();
            let waiting: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                 WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO events%')",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            (deleted && waiting).then_some(())
        },
    )
    .await;
    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    hold.rollback().await.unwrap();
    drop(delete);
    let before = rx.count();

    let mut restarted = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    wait_ready(&client, &restarted.url("/readyz")).await;
    eventually(
        "every delivery of the deleted tenant's subscription is abandoned",
        Duration::from_secs(60),
        || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM deliveries_view WHERE status <> 'abandoned'",
            )
            .fetch_one(&db.pool)
            .await
            .unwrap();
            (open == 0).then_some(())
        },
    )
    .await;
    assert_eq!(
        rx.count(),
        before,
        "retries of the deleted tenant went out after the restart"
    );
    let logs = restarted.logs();
    assert!(
        logs.contains("its deletion was interrupted"),
        "the restart did not finish the deletion: {logs}"
    );
    restarted.signal("TERM");
    assert_eq!(restarted.wait(Duration::from_secs(30)).await, Some(0));
}

/// The deliveries read model holds a new delivery's row back for its first
/// outcome (ADR 0021). A server killed meanwhile wrote neither; the next
/// one writes the rows from the log, and the outcomes update them.
#[tokio::test]
async fn rows_held_back_by_a_killed_server_are_written_by_the_next() {
    let db = fresh_database().await;
    let rx = TestReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = env(&db.url);
    // Held for a minute unless an outcome comes, and none comes before
    // the kill: attempts wait for the paused receiver.
    env.insert("HOOKLINE_DELIVERY_ROW_HOLD_MS".into(), "60000".into());
    env.insert("HOOKLINE_WEBHOOK_TIMEOUT_SECONDS".into(), "20".into());
    env.insert("HOOKLINE_WORKER_LEASE_SECONDS".into(), "21".into());
    let (client, mut server, key) = subscribed_server(&env, dir.path(), &rx).await;
    rx.pause();
    let accepted = publish_many(&client, &server.url("/v1/events"), &key, 20).await;
    crate::held::held_back(&db.pool, &accepted).await;

    server.signal("KILL");
    server.wait(Duration::from_secs(10)).await;
    // The next server holds for the default second: it takes over once the
    // checkpoint is older than that and 2 s (a holder that is alive
    // writes it more often).
    env.remove("HOOKLINE_DELIVERY_ROW_HOLD_MS");
    let mut restarted = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    eventually(
        "the next server wrote the rows held back",
        Duration::from_secs(30),
        || async {
            let pending = crate::held::rows_of(&db.pool, &accepted, Some("pending")).await;
            (pending == 20).then_some(())
        },
    )
    .await;

    rx.resume();
    eventually(
        "every delivery ends delivered",
        Duration::from_secs(90),
        || async { (delivered_count(&db.pool).await == 20).then_some(()) },
    )
    .await;
    restarted.signal("TERM");
    assert_eq!(restarted.wait(Duration::from_secs(30)).await, Some(0));
}
