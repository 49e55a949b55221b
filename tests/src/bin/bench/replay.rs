//! The replay scenario: a log of N events (deliveries enqueued and
//! delivered), then `hookline replay --projection all`, timed.

use crate::report::Report;
use crate::Cluster;
use std::time::Instant;

pub async fn run(cluster: &Cluster, events: u64, shape: &str) -> Report {
    let mut report = Report::new("replay");
    report.verdicts = (
        "rebuilt read models match the log",
        "**FAILED: replay failed or the rebuilt read models are wrong**",
    );
    let url = cluster.database("bench_replay").await;
    let exe = std::env::current_exe().expect("bench executable");
    let migrate = tokio::process::Command::new(&exe)
        .args(["hookline", "migrate", "--database-url", &url])
        .output()
        .await
        .expect("migrate");
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let deliveries = events / 2;
    eprintln!(
        "  generating {deliveries} deliveries, enqueued then delivered, in the {shape} shape…"
    );
    let generated = Instant::now();
    let chunk = 50_000u64;
    let mut from = 0u64;
    while from < deliveries {
        let to = (from + chunk).min(deliveries);
        sqlx::raw_sql(&seed_sql(shape, from, to))
            .execute(&pool)
            .await
            .expect("generate events");
        from = to;
    }
    // The live projections are where a running server would have left them:
    // at the end of the log.
    sqlx::raw_sql(
        "INSERT INTO projection_checkpoints (name, last_tx_id, last_position)
         SELECT n, (SELECT max(tx_id) FROM events), (SELECT max(global_position) FROM events)
           FROM unnest(ARRAY['subscriptions', 'deliveries', 'delivery_queue', 'messages', 'first_attempts']) n
         ON CONFLICT (name) DO UPDATE SET last_tx_id = EXCLUDED.last_tx_id, last_position = EXCLUDED.last_position",
    )
    .execute(&pool)
    .await
    .expect("checkpoints");
    // A log that has been live for a while has been vacuumed (hint bits
    // set, visibility map current) by autovacuum; do it now rather than
    // have it compete with the timed replay.
    sqlx::raw_sql("VACUUM (ANALYZE) events")
        .execute(&pool)
        .await
        .expect("vacuum");
    // Its pages have also been written back to their files by checkpoints
    // long since: do that now too, or the timed replay shares the disk and
    // the CPU with the writeback of the log it just generated.
    sqlx::raw_sql("CHECKPOINT")
        .execute(&pool)
        .await
        .expect("checkpoint");
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    eprintln!(
        "  generated {total} events in {:.1} s; replaying…",
        generated.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let out = tokio::process::Command::new(&exe)
        .args([
            "hookline",
            "replay",
            "--projection",
            "all",
            "--database-url",
            &url,
        ])
        .output()
        .await
        .expect("replay");
    let secs = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        report.outcome = crate::report::Outcome::Failed;
        report.notes.push(format!(
            "replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if out.status.success() {
        let problems = check_rebuilt(&url, deliveries, shape != "inline").await;
        if !problems.is_empty() {
            report.outcome = crate::report::Outcome::Failed;
            report.notes.extend(problems);
        }
    }
    report.metric("log events", total as f64, "", None);
    report.metric("deliveries", deliveries as f64, "", None);
    report.metric("replay --projection all", secs, "s", None);
    // No target: the shapes differ in rows per delivery (compare
    // deliveries/s across shapes, and either within one).
    report.metric(
        "replay speed (log events / wall time)",
        total as f64 / secs,
        "/s",
        None,
    );
    report.metric(
        "replay speed (deliveries / wall time)",
        deliveries as f64 / secs,
        "/s",
        None,
    );
    for line in stdout.lines() {
        report.notes.push(line.trim().to_string());
    }
    report
}

const TENANT: &str = "'00000000-0000-7000-8000-000000000001'";
const SUBSCRIPTION: &str = "'00000000-0000-7000-8000-000000000002'";

/// SQL inserting deliveries `from..to` (and their messages) into the log in
/// `shape` (see the bench's `--replay-shape`), each delivery's events close
/// together as a live log has them.
fn seed_sql(shape: &str, from: u64, to: u64) -> String {
    let series = format!("generate_series({from}, {to} - 1) g");
    let metadata = |actor: &str, worker: &str| {
        format!(
            "json_build_object('request_id', 'bench-' || g, 'tenant_id', {TENANT}, 'actor', '{actor}'{worker}, 'occurred_at', now())"
        )
    };
    let body = "json_build_object('id', m, 'event', 'bench.tick', 'data', json_build_object('seq', g))::text";
    let succeeded = format!(
        "json_build_object('type', 'DeliverySucceeded', 'attempt', 1, 'attempt_id', {attempt},
             'url', 'https://example.com/hook', 'started_at', now(), 'duration_ms', 12, 'status_code', 204)",
        attempt = uuid_v7("g / 3 + 15", "'a' || g"),
    );
    let worker_meta = metadata("system:worker", ", 'worker_id', 'bench'");
    let publish_meta = metadata("system:bench", "");
    // (g, order in its delivery, aggregate type, id, sequence, event type, version, payload, metadata)
    let rows = match shape {
        "listed" => format!(
            "SELECT g, 1 AS k, 'Message' AS t, m::text AS i, 1 AS s, 'MessagePublished' AS et, '1.2' AS v,
                    json_build_object('type', 'MessagePublished', 'event_id', m, 'tenant_id', {TENANT},
                        'event_type', 'bench.tick', 'body', {body}, 'published_at', now(),
                        'deliveries', json_build_array(json_build_object('id', d, 'subscription_id', {SUBSCRIPTION},
                            'url', 'https://example.com/hook'))) AS p,
                    {publish_meta} AS md
               FROM ids
             UNION ALL
             SELECT g, 2, 'Delivery', d::text, 2, 'DeliverySucceeded', '1.0', {succeeded}, {worker_meta} FROM ids",
        ),
        "enqueued" => format!(
            "SELECT g, 1 AS k, 'Message' AS t, m::text AS i, 1 AS s, 'MessagePublished' AS et, '1.0' AS v,
                    json_build_object('type', 'MessagePublished', 'event_id', m, 'tenant_id', {TENANT},
                        'event_type', 'bench.tick', 'body', {body}, 'published_at', now()) AS p,
                    {publish_meta} AS md
               FROM ids
             UNION ALL
             SELECT g, 2, 'Delivery', d::text, 1, 'DeliveryEnqueued', '2.0',
                    json_build_object('type', 'DeliveryEnqueued', 'delivery_id', d, 'tenant_id', {TENANT},
                        'subscription_id', {SUBSCRIPTION}, 'event_id', m, 'event_type', 'bench.tick',
                        'url', 'https://example.com/hook', 'enqueued_at', now(), 'next_attempt_at', now()),
                    {publish_meta}
               FROM ids
             UNION ALL
             SELECT g, 3, 'Delivery', d::text, 2, 'DeliverySucceeded', '1.0', {succeeded}, {worker_meta} FROM ids",
        ),
        _ => format!(
            "SELECT g, 1 AS k, 'Delivery' AS t, d::text AS i, 1 AS s, 'DeliveryEnqueued' AS et, '1.0' AS v,
                    json_build_object('type', 'DeliveryEnqueued', 'delivery_id', d, 'tenant_id', {TENANT},
                        'subscription_id', {SUBSCRIPTION}, 'event_id', d, 'event_type', 'bench.tick',
                        'url', 'https://example.com/hook',
                        'body', json_build_object('id', d, 'event', 'bench.tick', 'data', json_build_object('seq', g))::text,
                        'enqueued_at', now(), 'next_attempt_at', now()) AS p,
                    {publish_meta} AS md
               FROM ids
             UNION ALL
             SELECT g, 2, 'Delivery', d::text, 2, 'DeliverySucceeded', '1.0', {succeeded}, {worker_meta} FROM ids",
        ),
    };
    // A listing message's id ends in 32 zero bits; its first delivery's id
    // is the same with version 8 and 1 in them (ADR 0019).
    let ids = if shape == "listed" {
        format!(
            "SELECT g, {m} AS m, {d} AS d FROM {series}",
            m = listing_uuid("g / 3", "'m' || g", '7', "00000000"),
            d = listing_uuid("g / 3", "'m' || g", '8', "00000001"),
        )
    } else {
        format!(
            "SELECT g, {m} AS m, {d} AS d FROM {series}",
            m = uuid_v7("g / 3", "'m' || g"),
            d = uuid_v7("g / 3", "'d' || g"),
        )
    };
    format!(
        "WITH ids AS MATERIALIZED ({ids})
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, et, v, p, md FROM ({rows}) x ORDER BY g, k"
    )
}

/// SQL for a listing message's id (`version` 7) or one of its deliveries'
/// (`version` 8, `tail` its number), `ms_offset` milliseconds after a
/// fixed instant, with its random part from `seed`.
fn listing_uuid(ms_offset: &str, seed: &str, version: char, tail: &str) -> String {
    format!(
        "(lpad(to_hex(1795000000000 + {ms_offset}), 12, '0') || '{version}' || substr(md5({seed}), 1, 3)
          || '8' || substr(md5({seed}), 4, 7) || '{tail}')::uuid"
    )
}

/// SQL for a UUIDv7 like the ones Hookline generates (time-ordered: 48 bits
/// of milliseconds, then random bits), `ms_offset` milliseconds after a
/// fixed instant, with its random part from `seed`.
fn uuid_v7(ms_offset: &str, seed: &str) -> String {
    format!(
        "(lpad(to_hex(1795000000000 + {ms_offset}), 12, '0') || '7' || substr(md5({seed}), 1, 3)
          || '8' || substr(md5({seed}), 4, 15))::uuid"
    )
}

/// What the rebuilt read models must hold: every generated delivery,
/// delivered, with its one attempt, nothing left on the queue, and (with
/// `messages`) every message.
async fn check_rebuilt(url: &str, deliveries: u64, messages: bool) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let (views, delivered, attempts, queued, listed): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM deliveries_view),
                (SELECT count(*) FROM deliveries_view WHERE status = 'delivered' AND attempts = 1),
                (SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'),
                (SELECT count(*) FROM delivery_queue),
                (SELECT count(*) FROM messages_view)",
    )
    .fetch_one(&pool)
    .await
    .expect("count the rebuilt read models");
    pool.close().await;
    let expected = i64::try_from(deliveries).unwrap_or(i64::MAX);
    let mut problems = Vec::new();
    if views != expected || delivered != expected {
        problems.push(format!(
            "deliveries_view: {views} rows, {delivered} delivered; expected {expected}"
        ));
    }
    if attempts != expected {
        problems.push(format!(
            "delivery_attempts: {attempts} delivered attempts; expected {expected}"
        ));
    }
    if queued != 0 {
        problems.push(format!("delivery_queue: {queued} rows; expected none"));
    }
    let expected_messages = if messages { expected } else { 0 };
    if listed != expected_messages {
        problems.push(format!(
            "messages_view: {listed} rows; expected {expected_messages}"
        ));
    }
    problems
}
