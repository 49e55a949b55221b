//! The fan-out recorded in the message's event (ADR 0019): one row per
//! published message lists its deliveries, which every reader sees begin
//! with it; messages whose id is derived from a client's uid keep a
//! `DeliveryEnqueued` per delivery, and a log holding both verifies,
//! rebuilds and delivers as one.

use crate::svix_api::svix;
use hookline_tests::process::{replay, run_cli};
use hookline_tests::receiver::{Reply, TestReceiver};
use hookline_tests::webhooks::{publish, wait_status};
use hookline_tests::{eventually, expect_json, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_message_lists_its_deliveries_and_a_mixed_log_verifies_and_rebuilds() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    // The second subscription's receiver fails at first: its delivery's
    // first outcome is a failure, its success a stored later event.
    let failing = TestReceiver::start().await;
    failing.default_reply(Reply::status(500));
    let mut subs = Vec::new();
    for url in [rx.url("/a"), failing.url("/b"), rx.url("/off")] {
        let s = app
            .subscribe(&t, json!({"url": url, "events": ["a.*"]}))
            .await;
        subs.push(s["id"].as_str().unwrap().to_string());
    }
    expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{}/disable", subs[2]),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let published = publish(&app, &t, "a.b", json!({"n": 1})).await;
    let message = published["event_id"].as_str().unwrap().to_string();
    let ids = delivery_ids(&published);
    assert_eq!(ids.len(), 3);
    rx.wait_for(1, WAIT).await;
    failing.wait_for(1, WAIT).await;
    wait_status(&app, &t, &ids[0], "delivered", WAIT).await;
    wait_status(&app, &t, &ids[2], "skipped", WAIT).await;
    // The first outcomes are in the message's `DeliveriesAttempted` rows
    // (ADR 0023), not in rows of the deliveries'.
    let attempted = eventually("both first outcomes are recorded", WAIT, || async {
        let held: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT m.sequence, o->>'delivery_id', o->>'event_type'
               FROM events m, json_array_elements(m.payload->'outcomes') o
              WHERE m.aggregate_type = 'Message' AND m.aggregate_id = $1
                AND m.event_type = 'DeliveriesAttempted'
              ORDER BY 2",
        )
        .bind(&message)
        .fetch_all(&app.db.pool)
        .await
        .ok()?;
        (held.len() >= 2).then_some(held)
    })
    .await;
    assert!(
        attempted.iter().all(|(seq, _, _)| *seq >= 2),
        "{attempted:?}"
    );
    assert!(
        attempted
            .iter()
            .any(|(_, id, kind)| id == &ids[0] && kind == "DeliverySucceeded"),
        "{attempted:?}"
    );
    assert!(
        attempted
            .iter()
            .any(|(_, id, kind)| id == &ids[1] && kind == "AttemptFailed"),
        "{attempted:?}"
    );
    // The failed one, retried, succeeds: its later events are stored rows
    // that follow the link of the row holding its first outcome.
    failing.default_reply(Reply::status(200));
    let res = app
        .post(&t, &format!("/v1/deliveries/{}/retry", ids[1]), json!({}))
        .await;
    expect_json(res, 202).await;
    wait_status(&app, &t, &ids[1], "delivered", WAIT).await;
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{}/history", ids[1]))
            .await,
        200,
    )
    .await;
    let kinds: Vec<(i64, &str)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["sequence"].as_i64().unwrap(),
                e["event_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds[..2],
        [(1, "DeliveryEnqueued"), (2, "AttemptFailed")],
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(|k| k.1),
        Some("DeliverySucceeded"),
        "{kinds:?}"
    );

    // One row for the message and its three deliveries.
    let (version, listed): (String, Value) = sqlx::query_as(
        "SELECT event_version, (payload->'deliveries')::jsonb FROM events
          WHERE aggregate_type = 'Message' AND aggregate_id = $1 AND sequence = 1",
    )
    .bind(&message)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(version, "1.2");
    let listed_ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed_ids,
        ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let stored: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, event_type FROM events
          WHERE aggregate_type = 'Delivery' AND aggregate_id = ANY($1)
          ORDER BY aggregate_id, sequence",
    )
    .bind(&ids)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(
        stored
            .iter()
            .all(|(_, seq, kind)| *seq >= 2 && kind != "DeliveryEnqueued"),
        "{stored:?}"
    );
    assert!(stored.contains(&(ids[2].clone(), 2, "DeliverySkipped".to_string())));

    // Readers see each begin with its `DeliveryEnqueued`, at the message's
    // position.
    let history = expect_json(
        app.get(&t, &format!("/v1/deliveries/{}/history", ids[0]))
            .await,
        200,
    )
    .await;
    let first = &history["data"][0];
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["event_type"], "DeliveryEnqueued");
    assert_eq!(first["event_version"], "2.0");
    assert_eq!(first["payload"]["subscription_id"], subs[0].as_str());
    assert_eq!(history["data"][1]["event_type"], "DeliverySucceeded");
    // A command on a listed delivery (a manual retry of the skipped one,
    // its subscription enabled again) appends after its stored events.
    expect_json(
        app.post(
            &t,
            &format!("/v1/subscriptions/{}/enable", subs[2]),
            json!({}),
        )
        .await,
        200,
    )
    .await;
    let res = app
        .post(&t, &format!("/v1/deliveries/{}/retry", ids[2]), json!({}))
        .await;
    expect_json(res, 202).await;
    wait_status(&app, &t, &ids[2], "delivered", WAIT).await;
    let sent: HashMap<String, usize> = rx.received().iter().fold(HashMap::new(), |mut seen, r| {
        *seen.entry(r.path.clone()).or_default() += 1;
        seen
    });
    assert_eq!(sent.get("/off"), Some(&1), "{sent:?}");

    // A message published with the client's id keeps the earlier shape,
    // in the same log.
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app",
            Some(json!({"name": "Old", "uid": "old"})),
        )
        .await,
        201,
    )
    .await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/old/endpoint",
            Some(json!({"url": rx.url("/old")})),
        )
        .await,
        201,
    )
    .await;
    expect_json(
        svix(
            &app,
            Method::POST,
            "/api/v1/app/old/msg",
            Some(json!({"eventType": "a.b", "eventId": "evt-old", "payload": {"n": 2}})),
        )
        .await,
        202,
    )
    .await;
    rx.wait_for(3, WAIT).await;
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT m.event_version FROM events m
          WHERE m.aggregate_type = 'Message' AND m.payload->>'uid' = 'evt-old'
         UNION ALL
         SELECT e.event_version FROM events e
          WHERE e.event_type = 'DeliveryEnqueued'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(old, ["1.1", "2.0"]);
    hookline_tests::read_models_caught_up(&app.db.pool).await;

    // The whole log verifies, and its read models rebuild to what they are.
    let url = app.db.url.clone();
    let env = HashMap::new();
    let verify = run_cli(&["audit", "verify", "--database-url", &url], &env).await;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    let verify = run_cli(
        &["audit", "verify", "--tenant", &t.id, "--database-url", &url],
        &env,
    )
    .await;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    let check = run_cli(&["replay", "--check", "--database-url", &url], &env).await;
    assert_eq!(check.code, Some(0), "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("matches the log"), "{}", check.stdout);
    // The verifier auditing.md gives auditors agrees, from an export.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("log.jsonl");
    let out = run_cli(
        &[
            "audit",
            "export",
            "--output",
            export.to_str().unwrap(),
            "--database-url",
            &url,
        ],
        &env,
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/auditing.md"),
    )
    .unwrap();
    let script = guide
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("auditing.md has a Python verifier");
    let verifier = dir.path().join("verify.py");
    std::fs::write(&verifier, script).unwrap();
    let run = std::process::Command::new("python3")
        .arg(&verifier)
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        run.status.success() && String::from_utf8_lossy(&run.stdout).trim() == "ok",
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // A trace of the publish shows the message and each beginning.
    let request: String =
        sqlx::query_scalar("SELECT metadata->>'request_id' FROM events WHERE aggregate_id = $1")
            .bind(&message)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let trace = expect_json(app.get(&t, &format!("/v1/requests/{request}")).await, 200).await;
    assert_eq!(trace["summary"]["deliveries"], 3, "{trace}");
}

/// Messages whose bodies are large, one stored compressed (far smaller
/// than it is) and one over 8 KB as stored, list their deliveries to every
/// reader: the live read model and the worker, a rebuild of the
/// deliveries alone, and a check of every read model against the log.
#[tokio::test]
async fn messages_with_large_bodies_list_their_deliveries_to_every_reader() {
    let mut app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    app.subscribe(&t, json!({"url": rx.url("/big"), "events": ["a.*"]}))
        .await;
    let repetitive = "y".repeat(100_000);
    let varied: String = (0u64..700)
        .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
        .collect();
    let mut ids = Vec::new();
    for data in [json!({"r": repetitive}), json!({"v": varied})] {
        let published = publish(&app, &t, "a.b", data).await;
        ids.push(
            published["deliveries"][0]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        wait_status(&app, &t, id, "delivered", WAIT).await;
    }
    let got = rx.wait_for(2, WAIT).await;
    assert!(
        got.iter().any(|r| r.body.len() > 100_000),
        "the whole body was sent"
    );
    let stored: Vec<(i32, Option<String>)> = sqlx::query_as(
        "SELECT pg_column_size(payload), pg_column_compression(payload) FROM events
          WHERE aggregate_type = 'Message' ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(stored[0].0 < 8192 && stored[0].1.is_some(), "{stored:?}");
    assert!(stored[1].0 > 8192, "{stored:?}");
    app.stop().await;
    let url = app.db.url.clone();
    for args in [
        &["--projection", "deliveries"][..],
        &["--projection", "all", "--check"][..],
    ] {
        let out = replay(&url, args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
    }
    let listed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries_view WHERE id::text = ANY($1) AND status = 'delivered'",
    )
    .bind(&ids)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(listed, 2);
}

/// ADR 0023: a listed delivery's first outcome is written once, whether
/// the recorder's batch or a command writes it, one after the other or
/// racing: the message's row of first outcomes is guarded by the message's
/// primary key and by a look for the delivery in the message's rows.
#[tokio::test]
async fn a_listed_deliverys_first_outcome_is_written_once_by_racing_writers() {
    use hookline_application::ports::{AggregateStore, AppendError, Batch, Change};
    use hookline_application::EventMetadata;
    use hookline_domain::delivery::{AttemptSuccess, Delivery, DeliveryCommand, SkipDelivery};
    use hookline_domain::retry::RetryPolicy;
    use hookline_infrastructure::postgres::store::{PgAggregateStore, PgLog};
    use hookline_infrastructure::postgres::wakeup::LogWakeups;

    // No worker: nothing records an outcome but this test.
    let mut app = TestApp::spawn_with(|env| {
        env.insert("HOOKLINE_ROLE".into(), "api".into());
    })
    .await;
    let t = app.tenant("acme").await;
    let rx = TestReceiver::start().await;
    for path in ["/a", "/b", "/c", "/d", "/e"] {
        app.subscribe(&t, json!({"url": rx.url(path), "events": ["a.*"]}))
            .await;
    }
    let published = publish(&app, &t, "a.b", json!({"n": 1})).await;
    let ids = delivery_ids(&published);
    assert_eq!(ids.len(), 5);
    let tenant_id = t.id.parse().unwrap();
    let url = app.db.url.clone();
    let pool = app.db.pool.clone();
    app.stop().await;
    let store = || {
        PgAggregateStore::<Delivery>::new(
            PgLog::new(pool.clone(), LogWakeups::new(&["Delivery", "Message"])),
            RetryPolicy::default(),
        )
    };
    let (recorder, commands) = (store(), store());
    let metadata = EventMetadata {
        request_id: "raced".into(),
        tenant_id,
        actor: "system:worker".into(),
        occurred_at: chrono::Utc::now(),
        worker_id: Some("w".into()),
        triggered_by: None,
        chain: None,
    };
    let skip = || {
        DeliveryCommand::Skip(SkipDelivery {
            tenant_id,
            reason: "raced".into(),
            at: chrono::Utc::now(),
        })
    };
    let delivered = || {
        DeliveryCommand::Delivered(AttemptSuccess {
            tenant_id,
            attempt_id: uuid::Uuid::now_v7(),
            attempt: 1,
            url: rx.url("/a"),
            started_at: chrono::Utc::now(),
            duration_ms: 3,
            status_code: 200,
            response_excerpt: None,
        })
    };
    // The recorder's decisions on what it loaded, as one batch.
    let batch_for = |loaded: &std::collections::HashMap<
        String,
        hookline_application::ports::Loaded<Delivery>,
    >,
                     ids: &[String]| {
        let changes: Vec<Change<Delivery>> = ids
            .iter()
            .map(|id| Change {
                aggregate_id: id.clone(),
                version: loaded[id].version,
                events: loaded[id]
                    .aggregate
                    .decide(delivered(), &RetryPolicy::default())
                    .unwrap(),
                metadata: metadata.clone(),
            })
            .collect();
        Batch::of(changes).unwrap()
    };

    // One after the other: a command writes the first delivery's outcome
    // after the recorder loaded it; the recorder's batch then conflicts.
    let loaded = recorder.load(&ids[..1]).await.unwrap();
    assert_eq!(loaded[&ids[0]].version, 1);
    commands.execute(&ids[0], skip(), &metadata).await.unwrap();
    assert!(matches!(
        recorder.append(batch_for(&loaded, &ids[..1]), None).await,
        Err(AppendError::Conflict)
    ));
    // Loaded again, it stands at its outcome, read from its message's row.
    let again = recorder.load(&ids[..1]).await.unwrap();
    assert_eq!(again[&ids[0]].version, 2);

    // Racing: the batch of the other four against a command on one of
    // them; whichever comes second is refused.
    let loaded = recorder.load(&ids[1..]).await.unwrap();
    let (batch, command) = tokio::join!(
        recorder.append(batch_for(&loaded, &ids[1..]), None),
        commands.execute(&ids[2], skip(), &metadata)
    );
    assert!(
        batch.is_ok() != command.is_ok(),
        "one writer only: batch {batch:?}, command {:?}",
        command.map(|_| ())
    );
    // The batch again, on what it loaded: every one of its deliveries is
    // written now, by the batch or the command.
    assert!(matches!(
        recorder.append(batch_for(&loaded, &ids[1..]), None).await,
        Err(AppendError::Conflict)
    ));

    // If the command won, the recorder decides again on what it loads
    // now: the batch's other deliveries are written after the command's
    // row, in a row of their own.
    if batch.is_err() {
        let rest: Vec<String> = [&ids[1], &ids[3], &ids[4]].map(String::clone).to_vec();
        let loaded = recorder.load(&rest).await.unwrap();
        assert!(
            loaded.values().all(|l| l.version == 1),
            "the losing batch wrote nothing"
        );
        recorder
            .append(batch_for(&loaded, &rest), None)
            .await
            .unwrap();
    }

    // Each delivery has exactly one sequence 2, and the log verifies.
    let seconds: Vec<(String, i64)> = sqlx::query_as(concat!(
        "SELECT aggregate_id, count(*) FROM ",
        hookline_tests::delivery_events!(),
        " WHERE sequence = 2 GROUP BY aggregate_id ORDER BY aggregate_id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, i64)> = ids.iter().map(|id| (id.clone(), 1)).collect();
    assert_eq!(seconds, expected);
    let verify = run_cli(
        &["audit", "verify", "--database-url", &url],
        &HashMap::new(),
    )
    .await;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);

    // Tampering with a row of first outcomes, or forging a delivery's own
    // sequence 2 beside it (linked as a forger would: after that row's
    // link), is found (each undone before the next).
    let message = format!("{}7{}00000000", &ids[3][..14], &ids[3][15..28]);
    let row_link: String = sqlx::query_scalar(
        "SELECT metadata->>'chain' FROM events
          WHERE aggregate_type = 'Message' AND aggregate_id = $1 AND sequence > 1
            AND payload::text LIKE '%' || $2 || '%'",
    )
    .bind(&message)
    .bind(&ids[3])
    .fetch_one(&pool)
    .await
    .unwrap();
    let forged_link = hookline_application::audit::chain::link(
        &row_link,
        hookline_application::audit::chain::Linked {
            aggregate_type: "Delivery",
            aggregate_id: &ids[3],
            sequence: 2,
            event_type: "DeliverySucceeded",
            event_version: "1.0",
            payload: &json!({}),
            metadata: &json!({}),
        },
    );
    let tampered = [
        (
            format!(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 VALUES ('Delivery', '{}', 2, 'DeliverySucceeded', '1.0', '{{}}', '{{\"chain\": \"{forged_link}\"}}')",
                ids[3]
            ),
            format!("DELETE FROM events WHERE aggregate_type = 'Delivery' AND aggregate_id = '{}'", ids[3]),
            ids[3].clone(),
        ),
        (
            format!(
                "UPDATE events SET payload = replace(payload::text, '\"status_code\":200', '\"status_code\":201')::json
                  WHERE aggregate_type = 'Message' AND aggregate_id = '{message}' AND sequence > 1"
            ),
            format!(
                "UPDATE events SET payload = replace(payload::text, '\"status_code\":201', '\"status_code\":200')::json
                  WHERE aggregate_type = 'Message' AND aggregate_id = '{message}' AND sequence > 1"
            ),
            message.clone(),
        ),
    ];
    // Someone with the database's rights switches the append-only guard
    // off.
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_immutable")
        .execute(&pool)
        .await
        .unwrap();
    for (tamper, undo, broken) in &tampered {
        sqlx::query(tamper).execute(&pool).await.unwrap();
        let out = run_cli(
            &["audit", "verify", "--database-url", &url],
            &HashMap::new(),
        )
        .await;
        assert_eq!(
            out.code,
            Some(2),
            "not detected: {tamper}\n{}{}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.contains(broken.as_str()),
            "{tamper}: {}",
            out.stdout
        );
        sqlx::query(undo).execute(&pool).await.unwrap();
    }
    let verify = run_cli(
        &["audit", "verify", "--database-url", &url],
        &HashMap::new(),
    )
    .await;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
}

/// The ids of the deliveries a publish answered with.
fn delivery_ids(published: &Value) -> Vec<String> {
    hookline_tests::strings(&published["deliveries"], "id")
}
