//! The replay scenario: a log of N events (deliveries enqueued and
//! delivered), then `hookline replay --projection all`, timed.

use crate::report::Report;
use crate::Cluster;
use std::path::Path;
use std::time::Instant;

/// The history the replay scenario writes: `events / 2` deliveries,
/// rounded down to whole messages of `fanout`, in `shape` (see the bench's
/// `--replay-shape`).
pub struct Log<'a> {
    pub events: u64,
    pub shape: &'a str,
    pub fanout: u64,
}

impl Log<'_> {
    fn messages(&self) -> u64 {
        self.events / 2 / self.fanout
    }

    fn deliveries(&self) -> u64 {
        self.messages() * self.fanout
    }

    /// Whether a message's first outcomes are one `DeliveriesAttempted`
    /// row (as `hookline_application::listing::gathers_outcomes` decides).
    fn gathered(&self) -> bool {
        self.shape == "listed"
            && hookline_application::listing::gathers_outcomes(
                usize::try_from(self.fanout).unwrap_or(usize::MAX),
            )
    }
}

pub async fn run(cluster: &Cluster, log: &Log<'_>, with: Option<&Path>) -> Report {
    let mut report = Report::new("replay");
    report.verdicts = (
        "rebuilt read models match the log",
        "**FAILED: replay failed or the rebuilt read models are wrong**",
    );
    let url = cluster.database("bench_replay").await;
    let exe = match with {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe().expect("bench executable"),
    };
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
    let (deliveries, messages) = (log.deliveries(), log.messages());
    eprintln!(
        "  generating {deliveries} deliveries ({} to a message), enqueued then delivered, in the {} shape…",
        log.fanout, log.shape
    );
    let generated = Instant::now();
    let chunk = (50_000 / log.fanout).max(1);
    let mut from = 0u64;
    while from < messages {
        let to = (from + chunk).min(messages);
        sqlx::raw_sql(&seed_sql(log, from, to))
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
        let listed = if log.shape == "inline" { 0 } else { messages };
        let problems = check_rebuilt(&url, deliveries, listed).await;
        if !problems.is_empty() {
            report.outcome = crate::report::Outcome::Failed;
            report.notes.extend(problems);
        }
    }
    report.metric("log events", total as f64, "", None);
    report.metric("deliveries", deliveries as f64, "", None);
    report.metric("deliveries per message", log.fanout as f64, "", None);
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

/// SQL inserting messages `from..to` and their deliveries into the log in
/// `log`'s shape, each message's and delivery's events close together as a
/// live log has them.
fn seed_sql(log: &Log<'_>, from: u64, to: u64) -> String {
    let fanout = log.fanout;
    let series = format!("generate_series({from}, {to} - 1) g");
    let metadata = |actor: &str, worker: &str| {
        format!(
            "json_build_object('request_id', 'bench-' || g, 'tenant_id', {TENANT}, 'actor', '{actor}'{worker}, 'occurred_at', now())"
        )
    };
    // Delivery `k` (1..=fanout) of message `g`, numbered `n` across the log.
    let n = format!("(g * {fanout} + k - 1)");
    let subscription = "('00000000-0000-7000-8000-' || lpad(to_hex(1 + k), 12, '0'))::uuid";
    let delivery = if log.shape == "listed" {
        // A listing message's deliveries' ids are its own with version 8
        // and their number in the last 32 bits (ADR 0019).
        listing_uuid("g / 3", "'m' || g", '8', "lpad(to_hex(k), 8, '0')")
    } else {
        uuid_v7("g / 3", &format!("'d' || {n}"))
    };
    let message = if log.shape == "listed" {
        listing_uuid("g / 3", "'m' || g", '7', "'00000000'")
    } else {
        uuid_v7("g / 3", "'m' || g")
    };
    let body = "json_build_object('id', m, 'event', 'bench.tick', 'data', json_build_object('seq', g))::text";
    let succeeded = format!(
        "json_build_object('type', 'DeliverySucceeded', 'attempt', 1, 'attempt_id', {attempt},
             'url', 'https://example.com/hook', 'started_at', now(), 'duration_ms', 12, 'status_code', 204)",
        attempt = uuid_v7("g / 3 + 15", &format!("'a' || {n}")),
    );
    let worker_meta = metadata("system:worker", ", 'worker_id', 'bench'");
    let publish_meta = metadata("system:bench", "");
    let outcomes = if log.gathered() {
        format!(
            "SELECT g, {last} AS k, 'Message' AS t, m::text AS i, 2 AS s, 'DeliveriesAttempted' AS et, '1.0' AS v,
                    json_build_object('outcomes', outcomes) AS p, {worker_meta} AS md
               FROM messages JOIN lists USING (g)",
            last = fanout + 1,
        )
    } else {
        format!(
            "SELECT g, {fanout} + k, 'Delivery', d::text, 2, 'DeliverySucceeded', '1.0', {succeeded}, {worker_meta}
               FROM deliveries"
        )
    };
    // (g, order in its message, aggregate type, id, sequence, event type, version, payload, metadata)
    let rows = match log.shape {
        "listed" => format!(
            "SELECT g, 0 AS k, 'Message' AS t, m::text AS i, 1 AS s, 'MessagePublished' AS et, '1.2' AS v,
                    json_build_object('type', 'MessagePublished', 'event_id', m, 'tenant_id', {TENANT},
                        'event_type', 'bench.tick', 'body', {body}, 'published_at', now(),
                        'deliveries', listed) AS p,
                    {publish_meta} AS md
               FROM messages JOIN lists USING (g)
             UNION ALL {outcomes}",
        ),
        "enqueued" => format!(
            "SELECT g, 0 AS k, 'Message' AS t, m::text AS i, 1 AS s, 'MessagePublished' AS et, '1.0' AS v,
                    json_build_object('type', 'MessagePublished', 'event_id', m, 'tenant_id', {TENANT},
                        'event_type', 'bench.tick', 'body', {body}, 'published_at', now()) AS p,
                    {publish_meta} AS md
               FROM messages
             UNION ALL
             SELECT g, k, 'Delivery', d::text, 1, 'DeliveryEnqueued', '2.0',
                    json_build_object('type', 'DeliveryEnqueued', 'delivery_id', d, 'tenant_id', {TENANT},
                        'subscription_id', subscription_id, 'event_id', m, 'event_type', 'bench.tick',
                        'url', 'https://example.com/hook', 'enqueued_at', now(), 'next_attempt_at', now()),
                    {publish_meta}
               FROM deliveries
             UNION ALL {outcomes}",
        ),
        _ => format!(
            "SELECT g, k, 'Delivery' AS t, d::text AS i, 1 AS s, 'DeliveryEnqueued' AS et, '1.0' AS v,
                    json_build_object('type', 'DeliveryEnqueued', 'delivery_id', d, 'tenant_id', {TENANT},
                        'subscription_id', subscription_id, 'event_id', m, 'event_type', 'bench.tick',
                        'url', 'https://example.com/hook', 'body', {body},
                        'enqueued_at', now(), 'next_attempt_at', now()) AS p,
                    {publish_meta} AS md
               FROM deliveries
             UNION ALL {outcomes}",
        ),
    };
    format!(
        "WITH messages AS MATERIALIZED (SELECT g, {message} AS m FROM {series}),
              deliveries AS MATERIALIZED (
                SELECT g, m, k, {delivery} AS d, {subscription} AS subscription_id
                  FROM messages, generate_series(1, {fanout}) k),
              lists AS MATERIALIZED (
                SELECT g,
                       json_agg(json_build_object('id', d, 'subscription_id', subscription_id,
                           'url', 'https://example.com/hook') ORDER BY k) AS listed,
                       json_agg(json_build_object('delivery_id', d, 'event_type', 'DeliverySucceeded',
                           'event_version', '1.0', 'payload', {succeeded}) ORDER BY k) AS outcomes
                  FROM deliveries GROUP BY g)
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, et, v, p, md FROM ({rows}) x ORDER BY g, k"
    )
}

/// SQL for a listing message's id (`version` 7) or one of its deliveries'
/// (`version` 8, `tail` SQL for its number as 8 hex digits), `ms_offset` milliseconds after a
/// fixed instant, with its random part from `seed`.
fn listing_uuid(ms_offset: &str, seed: &str, version: char, tail: &str) -> String {
    format!(
        "(lpad(to_hex(1795000000000 + {ms_offset}), 12, '0') || '{version}' || substr(md5({seed}), 1, 3)
          || '8' || substr(md5({seed}), 4, 7) || {tail})::uuid"
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
async fn check_rebuilt(url: &str, deliveries: u64, messages: u64) -> Vec<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    // Builds from before the messages read model (`--replay-with`) have no
    // `messages_view`.
    let has_messages: bool = sqlx::query_scalar("SELECT to_regclass('messages_view') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .expect("look for messages_view");
    let listed_sql = if has_messages {
        "(SELECT count(*) FROM messages_view)"
    } else {
        "0::bigint"
    };
    let (views, delivered, attempts, queued, listed): (i64, i64, i64, i64, i64) =
        sqlx::query_as(&format!(
            "SELECT (SELECT count(*) FROM deliveries_view),
                (SELECT count(*) FROM deliveries_view WHERE status = 'delivered' AND attempts = 1),
                (SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'),
                (SELECT count(*) FROM delivery_queue),
                {listed_sql}"
        ))
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
    let expected_messages = i64::try_from(messages).unwrap_or(i64::MAX);
    if !has_messages && expected_messages > 0 {
        problems.push(format!(
            "messages_view: missing (a build from before it); expected {expected_messages} rows"
        ));
    } else if listed != expected_messages {
        problems.push(format!(
            "messages_view: {listed} rows; expected {expected_messages}"
        ));
    }
    problems
}
