//! The replay scenario: a log of N events (deliveries enqueued and
//! delivered), then `hookline replay --projection all`, timed.

use crate::report::{Report, Target};
use crate::Cluster;
use std::time::Instant;

pub async fn run(cluster: &Cluster, events: u64) -> Report {
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
        "  generating {} events ({deliveries} deliveries, enqueued then delivered)…",
        deliveries * 2
    );
    let generated = Instant::now();
    let chunk = 50_000u64;
    let mut from = 0u64;
    while from < deliveries {
        let to = (from + chunk).min(deliveries);
        // Realistic order: each delivery's outcome follows its enqueue
        // closely in the log.
        sqlx::raw_sql(&format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'Delivery', id::text, seq, event_type, '1.0', payload, metadata FROM (
               SELECT g, 1 AS seq, id, 'DeliveryEnqueued' AS event_type,
                      json_build_object('type', 'DeliveryEnqueued', 'delivery_id', id, 'tenant_id', '00000000-0000-7000-8000-000000000001',
                          'subscription_id', '00000000-0000-7000-8000-000000000002', 'event_id', id, 'event_type', 'bench.tick',
                          'url', 'https://example.com/hook',
                          'body', json_build_object('id', id, 'event', 'bench.tick', 'data', json_build_object('seq', g))::text,
                          'enqueued_at', now(), 'next_attempt_at', now()) AS payload,
                      json_build_object('request_id', 'bench-' || g, 'tenant_id', '00000000-0000-7000-8000-000000000001',
                          'actor', 'system:bench', 'occurred_at', now()) AS metadata
                 FROM (SELECT g, {id} AS id FROM generate_series({from}, {to} - 1) g) s
               UNION ALL
               SELECT g, 2, id, 'DeliverySucceeded',
                      json_build_object('type', 'DeliverySucceeded', 'attempt', 1, 'attempt_id', {attempt_id},
                          'url', 'https://example.com/hook', 'started_at', now(), 'duration_ms', 12, 'status_code', 204),
                      json_build_object('request_id', 'bench-' || g, 'tenant_id', '00000000-0000-7000-8000-000000000001',
                          'actor', 'system:worker', 'worker_id', 'bench', 'occurred_at', now())
                 FROM (SELECT g, {id} AS id FROM generate_series({from}, {to} - 1) g) s
             ) x ORDER BY g, seq",
            id = uuid_v7("g / 3", "'d' || g"),
            attempt_id = uuid_v7("g / 3 + 15", "'a' || g"),
        ))
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
           FROM unnest(ARRAY['subscriptions', 'deliveries', 'delivery_queue']) n
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
        let problems = check_rebuilt(&url, deliveries).await;
        if !problems.is_empty() {
            report.outcome = crate::report::Outcome::Failed;
            report.notes.extend(problems);
        }
    }
    report.metric("log events", total as f64, "", None);
    report.metric("replay --projection all", secs, "s", None);
    report.metric(
        "replay speed (log events / wall time)",
        total as f64 / secs,
        "/s",
        Some(Target::AtLeast(100_000.0)),
    );
    for line in stdout.lines() {
        report.notes.push(line.trim().to_string());
    }
    report
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
/// delivered, with its one attempt, and nothing left on the queue.
async fn check_rebuilt(url: &str, deliveries: u64) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let (views, delivered, attempts, queued): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM deliveries_view),
                (SELECT count(*) FROM deliveries_view WHERE status = 'delivered' AND attempts = 1),
                (SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'),
                (SELECT count(*) FROM delivery_queue)",
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
    problems
}
