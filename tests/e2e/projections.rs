//! Projections resume from their checkpoints across restarts, and catch up
//! on events written while the server was down.

use hookline_tests::process::replay;
use hookline_tests::webhooks::publish;
use hookline_tests::{eventually, expect_json, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_restarted_server_resumes_each_projection_from_its_checkpoint() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let kept = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/kept", "events": ["a.b"]}),
        )
        .await;
    let dropped = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/dropped", "events": ["a.b"]}),
        )
        .await;
    let pool = app.db.pool.clone();
    let checkpoint: i64 = sqlx::query_scalar(
        "SELECT last_position FROM projection_checkpoints WHERE name = 'subscriptions'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(checkpoint > 0);

    let mut app = app;
    app.stop().await;
    // While the server is down: remove one read-model row. A projection
    // that replayed from the start would bring it back; one that resumes
    // from its checkpoint leaves it alone.
    sqlx::query("DELETE FROM subscriptions_view WHERE id = $1::uuid")
        .bind(dropped["id"].as_str().unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let app = app.restart().await;
    let t2 = t.clone();
    let added = app
        .subscribe(
            &t2,
            json!({"url": "https://example.com/after", "events": ["a.b"]}),
        )
        .await;
    let list = expect_json(app.get(&t, "/v1/subscriptions").await, 200).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![added["id"].as_str().unwrap(), kept["id"].as_str().unwrap()]
    );
    let after: i64 = sqlx::query_scalar(
        "SELECT last_position FROM projection_checkpoints WHERE name = 'subscriptions'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(after > checkpoint);
}

#[tokio::test]
async fn events_written_while_down_are_applied_on_start() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    let s = app
        .subscribe(
            &t,
            json!({"url": "https://example.com/a", "events": ["a.b"]}),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_string();
    let pool = app.db.pool.clone();
    // A second server on the same database writes while the first is down.
    let mut first = app;
    first.stop().await;
    let second = first.restart().await;
    expect_json(
        second
            .patch(
                &t,
                &format!("/v1/subscriptions/{id}"),
                json!({"description": "from the second"}),
            )
            .await,
        200,
    )
    .await;
    let mut second = second;
    second.stop().await;
    // Rewind the checkpoint as if the projection had stopped before the patch.
    sqlx::query("UPDATE projection_checkpoints SET last_tx_id = '0', last_position = 0 WHERE name = 'subscriptions'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE subscriptions_view SET state = jsonb_set(state, '{description}', '\"stale\"'), version = 1")
        .execute(&pool)
        .await
        .unwrap();
    let third = second.restart().await;
    eventually(
        "the projection applies the missed event",
        Duration::from_secs(10),
        || async {
            let read =
                expect_json(third.get(&t, &format!("/v1/subscriptions/{id}")).await, 200).await;
            (read["description"] == "from the second").then_some(())
        },
    )
    .await;
    // Every projection catches up, not only the one rewound.
    third.ready().await;
    let ready = expect_json(
        third.client.get(third.url("/readyz")).send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(ready["status"], "ready");
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let app = TestApp::spawn().await;
    app.ready().await;
    let admin = sqlx::PgPool::connect_with(hookline_tests::cluster().options("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
        app.db.name
    ))
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&app.db.name)
        .execute(&admin)
        .await
        .unwrap();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    let body = expect_json(res, 503).await;
    assert_eq!(body["code"], "not_ready");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "alive even when not ready");
    sqlx::query(&format!(
        "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
        app.db.name
    ))
    .execute(&admin)
    .await
    .unwrap();
    eventually("ready again", Duration::from_secs(15), || async {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        (res.status() == 200).then_some(())
    })
    .await;
}

/// Connections the database closed while they sat idle in the pools are
/// replaced before a request gets one (sqlx checks a connection when it is
/// taken; checking only those idle for over a second was tried and
/// dropped, see performance.md).
#[tokio::test]
async fn connections_the_database_closed_while_idle_are_replaced_before_use() {
    let app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    app.subscribe(
        &t,
        json!({"url": "https://example.com/hook", "events": ["a.b"]}),
    )
    .await;
    // Requests in parallel, so the pool holds several connections.
    let lists = (0..8).map(|_| app.get(&t, "/v1/subscriptions"));
    for res in futures::future::join_all(lists).await {
        assert_eq!(res.status(), 200);
    }
    let admin = sqlx::PgPool::connect_with(hookline_tests::cluster().options("postgres"))
        .await
        .unwrap();
    let closed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = $1",
    )
    .bind(&app.db.name)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert!(closed.len() >= 2, "the server's connections: {closed:?}");
    // Past the idle time after which a connection is checked before use
    // (one second): that is the condition under test.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for round in 0..3 {
        let lists = (0..8).map(|_| app.get(&t, "/v1/subscriptions"));
        for res in futures::future::join_all(lists).await {
            let status = res.status();
            let body = res.text().await.unwrap_or_default();
            assert_eq!(status, 200, "round {round}: {body}");
        }
    }
    publish(&app, &t, "a.b", json!({"n": 1})).await;
    admin.close().await;
}

/// The statements projections run many times a second are prepared, and
/// Postgres switches prepared statements to a generic plan after a few
/// runs. Those plans must still be short index range scans on a big log,
/// entered at the cursor: a scan of the log (or of one type) per probe once
/// cost a full CPU core under load.
/// The first line of an `EXPLAIN (ANALYZE, BUFFERS)` plan that contains
/// `marker`, and the pages its node read (its first `Buffers:` line).
fn scan_of<'a>(plan: &'a [String], marker: &str, what: &str) -> (&'a str, u64) {
    let scan = plan
        .iter()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("{what}: no {marker} in {plan:#?}"));
    let pages = plan[scan..]
        .iter()
        .find(|l| l.contains("Buffers:"))
        .map(|l| {
            l.split([' ', '='])
                .filter_map(|w| w.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    (plan[scan].as_str(), pages)
}

/// The backlog's reading of one tenant's work behind the first-attempt
/// cursor (taken every 50 ms for each tenant publishing over the bound)
/// starts at the cursor through a commit-order index, custom plan or
/// generic, for a tenant that wrote most of the log: it scanned the log
/// from its start.
#[tokio::test]
async fn a_tenants_backlog_is_read_from_the_cursor_not_from_the_start_of_the_log() {
    use hookline_infrastructure::postgres::backlog::TENANT_BEHIND;
    let db = hookline_tests::cluster::fresh_database().await;
    sqlx::raw_sql(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT CASE WHEN g % 2 = 0 THEN 'Message' ELSE 'Delivery' END, g::text, 1, 'X', '1.2',
                '{\"deliveries\": [{\"id\": \"a\"}, {\"id\": \"b\"}]}',
                json_build_object('tenant_id', CASE WHEN g % 50 = 0 THEN 'other' ELSE 'busy' END)
           FROM generate_series(1, 200000) g;
         ANALYZE events;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // The cursor 2,000 events before the head.
    sqlx::query(
        "UPDATE projection_checkpoints c SET last_tx_id = e.tx_id, last_position = e.global_position
           FROM (SELECT tx_id, global_position FROM events
                  ORDER BY global_position DESC LIMIT 1 OFFSET 2000) e
          WHERE c.name = 'first_attempts'",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::raw_sql(&format!(
        "PREPARE tenant_behind (text, text, bigint) AS {TENANT_BEHIND}"
    ))
    .execute(&mut *conn)
    .await
    .unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::raw_sql(&format!("SET plan_cache_mode = {mode}"))
            .execute(&mut *conn)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query_scalar(
            "EXPLAIN (ANALYZE, BUFFERS) EXECUTE tenant_behind('first_attempts', 'busy', 100)",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        let (scan, pages) = scan_of(&plan, "on events", mode);
        assert!(scan.contains("commit_order"), "{mode}: {plan:#?}");
        assert!(pages < 200, "{mode}: read {pages} pages: {plan:#?}");
        let behind: i64 = sqlx::query_scalar(TENANT_BEHIND)
            .bind("first_attempts")
            .bind("busy")
            .bind(100_i64)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        // The tenant's first 100 events after the cursor (one
        // transaction: commit order is position order), each message
        // listing two deliveries.
        let expected: i64 = sqlx::query_scalar(
            "SELECT (count(*) + 2 * count(*) FILTER (WHERE aggregate_type = 'Message'))::bigint
               FROM (SELECT aggregate_type FROM events
                      WHERE metadata ->> 'tenant_id' = 'busy'
                        AND global_position > (SELECT last_position FROM projection_checkpoints
                                                WHERE name = 'first_attempts')
                      ORDER BY global_position LIMIT 100) e",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(behind, expected, "{mode}");
        assert!((150..=300).contains(&behind), "{mode}: {behind}");
    }
}

/// A tenant's backlog is read as few rows as should reach its share, as
/// rows weighed lately (a fan-out's message weighs its deliveries too);
/// when those rows were not enough, as many as there can be, so the
/// answer is the same as reading them all from the start.
#[tokio::test]
async fn a_tenants_backlog_reads_more_rows_when_the_first_read_falls_short() {
    use hookline_domain::TenantId;
    use hookline_infrastructure::postgres::backlog::PgBacklog;
    let db = hookline_tests::cluster::fresh_database().await;
    let fan_out: Vec<TenantId> = (0..30)
        .map(|_| TenantId::from_uuid(uuid::Uuid::now_v7()))
        .collect();
    let plain = TenantId::from_uuid(uuid::Uuid::now_v7());
    // Thirty tenants of 200 messages listing five deliveries each, then
    // one of 300 rows that count one each.
    for tenant in &fan_out {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Message', $1 || g, 1, 'MessagePublished', '1.2',
                    '{\"deliveries\": [{}, {}, {}, {}, {}]}', json_build_object('tenant_id', $1)
               FROM generate_series(1, 200) g",
        )
        .bind(tenant.to_string())
        .execute(&db.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Delivery', $1 || g, 2, 'DeliverySucceeded', '1.0', '{}', json_build_object('tenant_id', $1)
           FROM generate_series(1, 300) g",
    )
    .bind(plain.to_string())
    .execute(&db.pool)
    .await
    .unwrap();
    // A bound of 1,000: a tenant's share is 100.
    let backlog = PgBacklog::new(db.pool.clone(), 1_000);
    for tenant in &fan_out {
        // 100 at least: the first 17 messages weigh 102.
        let behind = backlog.tenant_behind(*tenant).await.unwrap();
        assert!(behind >= 100, "{behind}");
    }
    // Learned from the fan-out, the first read of the plain tenant asks
    // for about 30 rows: 30 < 100, so it reads on.
    assert_eq!(backlog.tenant_behind(plain).await.unwrap(), 100);
}

#[tokio::test]
async fn hot_log_queries_stay_short_index_scans_under_generic_plans() {
    use hookline_infrastructure::postgres::log_reader::{
        read_after_sql, ANYTHING_AFTER, COMMITTED_HEAD,
    };
    let db = hookline_tests::cluster::fresh_database().await;
    sqlx::raw_sql(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Delivery', g::text, 1, 'DeliveryEnqueued', '1.0', '{}', '{}'
           FROM generate_series(1, 200000) g;
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Subscription', 's', 1, 'Subscribed', '1.0', '{}', '{}');
         ANALYZE events;",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let (tx, last): (String, i64) = sqlx::query_as(
        "SELECT tx_id::text, global_position FROM events WHERE aggregate_type = 'Delivery'
          ORDER BY global_position DESC LIMIT 1 OFFSET 10",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::raw_sql("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let typed_read = read_after_sql(true);
    let statements = [
        ("anything_after", ANYTHING_AFTER, "(text, text, bigint)"),
        ("committed_head", COMMITTED_HEAD, "(text)"),
        (
            "read_after",
            typed_read.as_str(),
            "(text, bigint, bigint, text)",
        ),
    ];
    for (name, sql, types) in statements {
        sqlx::raw_sql(&format!("PREPARE {name} {types} AS {sql}"))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    // Near the end of the big type, and a rare type after the big one.
    let runs = [
        format!("anything_after('Delivery', '{tx}', {last})"),
        "anything_after('Subscription', '0', 0)".to_string(),
        "committed_head('Delivery')".to_string(),
        "committed_head('Subscription')".to_string(),
        format!("read_after('{tx}', {last}, 100, 'Delivery')"),
        "read_after('0', 0, 100, 'Subscription')".to_string(),
    ];
    for run in runs {
        let plan: Vec<String> =
            sqlx::query_scalar(&format!("EXPLAIN (ANALYZE, BUFFERS) EXECUTE {run}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        let (scan, pages) = scan_of(&plan, "Scan", &run);
        assert!(
            scan.contains("events_type_commit_order"),
            "{run}: {plan:#?}"
        );
        assert!(pages < 30, "{run} read {pages} pages: {plan:#?}");
    }
}

/// A stopped server's database with one delivery its read models list,
/// then a message event of `version` with no fields but its type
/// (appending is all the log allows), with the live `projection` moved
/// past it (a rebuild goes as far as the live checkpoint).
async fn stopped_with_an_unreadable_message(
    version: &str,
    projection: &str,
) -> (TestApp, sqlx::PgPool) {
    let mut app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    app.subscribe(
        &t,
        json!({"url": "https://example.com/hook", "events": ["a.b"]}),
    )
    .await;
    publish(&app, &t, "a.b", json!({"n": 1})).await;
    let pool = app.db.pool.clone();
    eventually("the delivery listed", Duration::from_secs(15), || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries_view")
                .fetch_one(&pool)
                .await
                .ok()?;
            (n == 1).then_some(())
        }
    })
    .await;
    app.stop().await;
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Message', '00000000-0000-7000-8000-0000000000fe', 1, 'MessagePublished', $1,
                 '{\"type\": \"MessagePublished\"}', '{}')",
    )
    .bind(version)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE projection_checkpoints
            SET (last_tx_id, last_position) = (SELECT tx_id, global_position FROM events
                                                ORDER BY global_position DESC LIMIT 1)
          WHERE name = $1",
    )
    .bind(projection)
    .execute(&pool)
    .await
    .unwrap();
    (app, pool)
}

/// A message event whose list of deliveries cannot be read stops the
/// deliveries' rebuild where the batches are decoded (not in an apply
/// lane): the command fails and says which event, the live read model is
/// left as it was, and a rebuild can run again at once.
#[tokio::test]
async fn a_rebuild_stops_at_a_listing_it_cannot_read_and_leaves_the_live_model() {
    // A message event that says it lists deliveries (version 1.2) without
    // a list.
    let (app, pool) = stopped_with_an_unreadable_message("1.2", "deliveries").await;
    let url = app.db.url.clone();
    for attempt in 0..2 {
        let out = replay(&url, &["--projection", "deliveries"]).await;
        assert_ne!(out.code, Some(0), "{attempt}: {out:?}");
        assert!(
            out.stderr.contains("deliveries")
                && out.stderr.contains("(MessagePublished) cannot be read")
                && !out.stderr.contains("panicked"),
            "{attempt}: {out:?}"
        );
        assert!(
            !out.stderr.contains("another replay"),
            "the first run's lanes had ended: {out:?}"
        );
    }
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries_view")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(listed, 1, "the live read model is left as it was");
}

/// Rebuilt together, the deliveries and messages read models read the log
/// once, up to the nearer of their live checkpoints; the one whose
/// checkpoint is further goes on alone. Each comes out as its own
/// checkpoint says, and the server then catches up from there.
#[tokio::test]
async fn read_models_rebuilt_together_each_reach_their_own_checkpoint() {
    let mut app = TestApp::spawn().await;
    let t = app.tenant("acme").await;
    app.subscribe(
        &t,
        json!({"url": "https://example.com/hook", "events": ["a.b"]}),
    )
    .await;
    for n in 0..6 {
        publish(&app, &t, "a.b", json!({"n": n})).await;
    }
    let pool = app.db.pool.clone();
    hookline_tests::read_models_caught_up(&pool).await;
    app.stop().await;
    // The deliveries' checkpoint back to the third message's event.
    let (tx, position): (String, i64) = sqlx::query_as(
        "SELECT tx_id::text, global_position FROM events WHERE aggregate_type = 'Message'
          ORDER BY tx_id, global_position OFFSET 2 LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE projection_checkpoints SET last_tx_id = $1::text::xid8, last_position = $2
          WHERE name = 'deliveries'",
    )
    .bind(&tx)
    .bind(position)
    .execute(&pool)
    .await
    .unwrap();
    let url = app.db.url.clone();
    let out = replay(&url, &["--projection", "all"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("deliveries_view").await, 3, "{out:?}");
    assert_eq!(count("messages_view").await, 6, "{out:?}");
    let mut app = app.restart().await;
    hookline_tests::read_models_caught_up(&app.db.pool).await;
    assert_eq!(count("deliveries_view").await, 6);
    app.stop().await;
    // And what it caught up to is what the log says.
    let check = replay(&url, &["--projection", "all", "--check"]).await;
    assert_eq!(check.code, Some(0), "{check:?}");
}

/// An event the messages read model cannot read fails its rebuild only.
/// The deliveries read model, rebuilt with it from one read of the log,
/// is rebuilt alone when that read fails (its checkpoint past the event),
/// or goes on alone before it fails (its checkpoint before the event).
#[tokio::test]
async fn replay_of_all_rebuilds_the_others_when_one_cannot_be_rebuilt() {
    for deliveries_past_it in [false, true] {
        // A message event the messages read model cannot read; the
        // deliveries read model never reads it.
        let (app, pool) = stopped_with_an_unreadable_message("1.0", "messages").await;
        if deliveries_past_it {
            sqlx::query(
                "UPDATE projection_checkpoints
                    SET (last_tx_id, last_position) = (SELECT last_tx_id, last_position
                                                         FROM projection_checkpoints WHERE name = 'messages')
                  WHERE name = 'deliveries'",
            )
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("DELETE FROM deliveries_view")
            .execute(&pool)
            .await
            .unwrap();
        let url = app.db.url.clone();
        let out = replay(&url, &["--projection", "all"]).await;
        assert_ne!(out.code, Some(0), "{deliveries_past_it}: {out:?}");
        assert!(
            out.stderr.contains("messages:")
                && out.stderr.contains("cannot be read")
                && !out.stderr.contains("deliveries:")
                && !out.stderr.contains("panicked"),
            "{deliveries_past_it}: {out:?}"
        );
        // Every other read model was rebuilt and swapped in, in order, the
        // ones after the failed one included.
        let rebuilt: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.contains("rebuilt from position 0"))
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(
            rebuilt,
            vec![
                "tenants",
                "event_types",
                "subscriptions",
                "deliveries",
                "sources",
                "upstream_subscriptions"
            ],
            "{deliveries_past_it}: {out:?}"
        );
        assert!(
            !deliveries_past_it
                || out
                    .stdout
                    .lines()
                    .any(|l| l.starts_with("deliveries: rebuilt from position 0, 2 events")),
            "the delivery's beginning and its outcome, all the log has: {out:?}"
        );
        let views: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries_view")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(views, 1, "{deliveries_past_it}");
    }
}
