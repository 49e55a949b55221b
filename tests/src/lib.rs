//! Test support for Hookline's end-to-end tests: one private Postgres
//! cluster per test binary (a fresh database per test, copied from a
//! migrated template), the real server on port 0, and HTTP helpers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

pub mod cluster;
pub mod process;
pub mod receiver;
pub mod server;
pub mod webhooks;

pub use cluster::{cluster, fresh_database, TestDatabase};
pub use server::{events_of, expect_json, Tenant, TestApp};

/// Polls `check` until it returns `Some`, or panics after `timeout`.
/// Use instead of sleeps: it returns as soon as the condition holds.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(200));
    }
}

/// The string `field` of each object in the JSON array `list` (a test
/// fails if `list` is not an array of objects holding it).
pub fn strings(list: &serde_json::Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field} in {item}"))
                .to_string()
        })
        .collect()
}

/// Waits until every projection has applied every event in the log (lists
/// and traces are read models; single reads are folded from the log and can
/// be ahead of them by a few milliseconds).
pub async fn read_models_caught_up(pool: &sqlx::PgPool) {
    eventually("the read models catch up", std::time::Duration::from_secs(15), || async {
        let behind: bool = sqlx::query_scalar(
            "SELECT EXISTS (
                SELECT 1 FROM events e
                  JOIN projection_checkpoints c
                    ON c.name = CASE e.aggregate_type WHEN 'Subscription' THEN 'subscriptions' ELSE 'deliveries' END
                 WHERE e.aggregate_type IN ('Delivery', 'Message', 'Subscription')
                   AND (e.tx_id, e.global_position) > (c.last_tx_id, c.last_position))
             -- Rows the deliveries projection still holds back (ADR 0021).
             OR EXISTS (SELECT 1 FROM projection_checkpoints WHERE held_position IS NOT NULL)",
        )
        .fetch_one(pool)
        .await
        .ok()?;
        (!behind).then_some(())
    })
    .await;
}

/// Delivery events as readers of the log see them, as a table named
/// `events` with the columns `aggregate_id`, `sequence`, `event_type` and
/// `metadata`: the rows stored for deliveries, and the first outcomes
/// their messages' `DeliveriesAttempted` rows hold (ADR 0023).
#[macro_export]
macro_rules! delivery_events {
    () => {
        "(SELECT aggregate_id, sequence, event_type, metadata FROM events
           WHERE aggregate_type = 'Delivery'
          UNION ALL
          SELECT o->>'delivery_id', 2, o->>'event_type', m.metadata
            FROM events m, json_array_elements(m.payload->'outcomes') o
           WHERE m.aggregate_type = 'Message' AND m.event_type = 'DeliveriesAttempted') AS events"
    };
}

/// How many `DeliverySucceeded` the log holds (see [`delivery_events`]).
pub const SUCCEEDED_COUNT: &str = concat!(
    "SELECT count(*) FROM ",
    delivery_events!(),
    " WHERE event_type = 'DeliverySucceeded'"
);

/// How many `AttemptFailed` the log holds (see [`delivery_events`]).
pub const FAILED_COUNT: &str = concat!(
    "SELECT count(*) FROM ",
    delivery_events!(),
    " WHERE event_type = 'AttemptFailed'"
);

/// How many worker processes recorded a `DeliverySucceeded`.
pub const SUCCEEDING_WORKERS: &str = concat!(
    "SELECT count(DISTINCT metadata->>'worker_id') FROM ",
    delivery_events!(),
    " WHERE event_type = 'DeliverySucceeded'"
);

/// The query of [`ENQUEUED_IDS`] between `$before` and `$after`.
macro_rules! enqueued {
    ($before:literal, $after:literal) => {
        concat!(
            $before,
            "SELECT aggregate_id FROM events WHERE event_type = 'DeliveryEnqueued'
             UNION ALL
             SELECT x->>'id' FROM events m, json_array_elements(m.payload->'deliveries') x
              WHERE m.aggregate_type = 'Message' AND m.event_version = '1.2'",
            $after
        )
    };
}

/// The ids of every delivery the log begins: a `DeliveryEnqueued` of its
/// own, or listed in its message's event (ADR 0019).
pub const ENQUEUED_IDS: &str = enqueued!("", "");

/// How many deliveries the log begins (see [`ENQUEUED_IDS`]).
pub const ENQUEUED_COUNT: &str = enqueued!("SELECT count(*) FROM (", ") d");
