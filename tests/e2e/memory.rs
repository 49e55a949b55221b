//! Memory stays bounded under large fan-outs and goes back after them:
//! one 250 KB event to 500 subscriptions, then four at once, then twenty
//! more, measured on the server process from `/proc`.

use hookline_tests::process::ServerProcess;
use hookline_tests::receiver::TestReceiver;
use hookline_tests::server::wait_ready;
use hookline_tests::{eventually, fresh_database};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const MB: u64 = 1024 * 1024;
/// The bound docs/operations.md promises for this load.
const PEAK_BOUND: u64 = 300 * MB;

#[tokio::test]
async fn a_large_fan_out_stays_within_its_memory_bound_and_gives_it_back() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let env = HashMap::from([
        ("HOOKLINE_DATABASE_URL".to_string(), db.url.clone()),
        ("HOOKLINE_ADMIN_TOKEN".to_string(), "mem-admin".to_string()),
        (
            "HOOKLINE_ALLOW_PRIVATE_TARGETS".to_string(),
            "127.0.0.0/8".to_string(),
        ),
        (
            "HOOKLINE_SECRET_KEY".to_string(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
        ),
    ]);
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0"], &env, dir.path()).await;
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url("/readyz")).await;
    let tenant: Value = client
        .post(server.url("/admin/tenants"))
        .bearer_auth("mem-admin")
        .json(&json!({"name": "big"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_string();
    let rx = TestReceiver::start().await;
    rx.forget_bodies();
    for n in 0..500 {
        let res = client
            .post(server.url("/v1/subscriptions"))
            .bearer_auth(&key)
            .json(&json!({"url": rx.url(&format!("/s{n}")), "events": ["*"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let (baseline, _) = server.memory();
    let data = json!({"blob": "x".repeat(250 * 1000)});
    let publish = || {
        client
            .post(server.url("/v1/events"))
            .bearer_auth(&key)
            .json(&json!({"event_type": "big.one", "data": data}))
            .send()
    };
    assert_eq!(publish().await.unwrap().status(), 202);
    let results = futures::future::join_all((0..4).map(|_| publish())).await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().status() == 202));
    rx.wait_for(2500, Duration::from_secs(120)).await;
    // Twenty more, five at a time.
    for _ in 0..4 {
        let results = futures::future::join_all((0..5).map(|_| publish())).await;
        assert!(results.iter().all(|r| r.as_ref().unwrap().status() == 202));
    }
    rx.wait_for(12_500, Duration::from_secs(300)).await;
    let (_, peak) = server.memory();
    assert!(
        peak <= PEAK_BOUND,
        "peak RSS {} MB over the {} MB bound (baseline {} MB)",
        peak / MB,
        PEAK_BOUND / MB,
        baseline / MB
    );
    // Once idle, the memory goes back close to where it was.
    let settled = eventually("memory goes back", Duration::from_secs(30), || async {
        let (now, _) = server.memory();
        (now <= baseline + 64 * MB).then_some(now)
    })
    .await;
    eprintln!(
        "memory: baseline {} MB, peak {} MB, after {} MB",
        baseline / MB,
        peak / MB,
        settled / MB
    );
}
