//! The position-tracked reader: events committed out of position order are
//! each seen exactly once, in commit order.

use hookline_application::ports::LogPosition;
use hookline_infrastructure::postgres::log_reader::read_after;
use hookline_tests::fresh_database;
use sqlx::{Acquire, Executor};

async fn insert_event(conn: &mut sqlx::PgConnection, id: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Test', $1, 1, 'Tested', '1.0', '{}', '{}') RETURNING global_position",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Reads until `n` events are visible: the horizon is cluster-wide, so
/// other tests' open transactions may hold it back for a moment.
async fn read_n(pool: &sqlx::PgPool, from: LogPosition, n: usize) -> Vec<(String, LogPosition)> {
    hookline_tests::eventually(
        "events become visible",
        std::time::Duration::from_secs(10),
        || async {
            let seen = read_all(pool, from).await;
            assert!(seen.len() <= n, "more events than written: {seen:?}");
            (seen.len() == n).then_some(seen)
        },
    )
    .await
}

async fn read_all(pool: &sqlx::PgPool, from: LogPosition) -> Vec<(String, LogPosition)> {
    let mut conn = pool.acquire().await.unwrap();
    read_after(&mut conn, from, Some("Test"), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.aggregate_id.clone(), e.log_position()))
        .collect()
}

#[tokio::test]
async fn a_slow_transaction_with_a_lower_position_is_not_skipped() {
    let db = fresh_database().await;
    let mut slow = db.pool.acquire().await.unwrap();
    let mut fast = db.pool.acquire().await.unwrap();

    // `slow` takes position p1 first but commits last.
    let mut slow_tx = slow.begin().await.unwrap();
    let p1 = insert_event(&mut slow_tx, "slow").await;
    let mut fast_tx = fast.begin().await.unwrap();
    let p2 = insert_event(&mut fast_tx, "fast").await;
    assert!(p1 < p2);
    fast_tx.commit().await.unwrap();

    // A naive `global_position > checkpoint` reader would see p2 now, move
    // its checkpoint past p1 and never see "slow". Ours waits.
    let seen_early = read_all(&db.pool, LogPosition::default()).await;
    assert!(
        seen_early.is_empty(),
        "read past a running transaction: {seen_early:?}"
    );

    slow_tx.commit().await.unwrap();
    let seen = read_n(&db.pool, LogPosition::default(), 2).await;
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, vec!["slow", "fast"]);

    // From the checkpoint after both, nothing is seen twice.
    let checkpoint = seen.last().unwrap().1;
    assert!(read_all(&db.pool, checkpoint).await.is_empty());
    // Resuming from between them yields exactly the second.
    let between = read_n(&db.pool, seen[0].1, 1).await;
    assert_eq!(between.len(), 1);
    assert_eq!(between[0].0, "fast");
}

#[tokio::test]
async fn commit_order_follows_transaction_ids_not_positions() {
    let db = fresh_database().await;
    let mut a = db.pool.acquire().await.unwrap();
    let mut b = db.pool.acquire().await.unwrap();
    a.execute("CREATE TEMP TABLE scratch (x int)")
        .await
        .unwrap();

    // Transaction A gets its transaction id first (by writing elsewhere)...
    let mut a_tx = a.begin().await.unwrap();
    sqlx::query("INSERT INTO scratch VALUES (1)")
        .execute(&mut *a_tx)
        .await
        .unwrap();
    // ...B then appends (lower position) and commits...
    let mut b_tx = b.begin().await.unwrap();
    let pb = insert_event(&mut b_tx, "b").await;
    b_tx.commit().await.unwrap();
    assert!(read_all(&db.pool, LogPosition::default()).await.is_empty());
    // ...and A appends later (higher position) and commits.
    let pa = insert_event(&mut a_tx, "a").await;
    a_tx.commit().await.unwrap();
    assert!(pb < pa);

    let seen = read_n(&db.pool, LogPosition::default(), 2).await;
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["a", "b"],
        "ordered by transaction, each exactly once"
    );
}

#[tokio::test]
async fn the_log_refuses_updates_and_deletes() {
    let db = fresh_database().await;
    let mut conn = db.pool.acquire().await.unwrap();
    insert_event(&mut conn, "x").await;
    let update = sqlx::query("UPDATE events SET payload = '{\"x\":1}'")
        .execute(&db.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM events").execute(&db.pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let truncate = sqlx::query("TRUNCATE events").execute(&db.pool).await;
    assert!(truncate.is_err());
}

/// Appends are announced on `hookline_events` after they commit, naming
/// their aggregate types and the announcing process (ADR 0020): a server's
/// tenant and publish, and a one-shot command's tenant from another
/// process, which announces what it appended before it exits. No trigger
/// notifies inside the appending transaction any more (its lock made
/// appends commit one at a time).
#[tokio::test]
async fn appends_are_announced_after_commit_with_their_types_and_origin() {
    use hookline_tests::TestApp;
    use std::collections::HashMap;
    use std::time::Duration;
    let app = TestApp::spawn().await;
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger
          WHERE tgrelid = 'events'::regclass AND NOT tgisinternal
            AND tgfoid::regproc::text LIKE '%notify%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(triggers, 0, "a trigger still notifies inside appends");
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.db.pool)
        .await
        .unwrap();
    listener.listen("hookline_events").await.unwrap();
    // The payloads heard until one names `wanted` (type, origin).
    let mut heard_until = async |wanted: &str| -> Vec<(String, String)> {
        let mut heard = Vec::new();
        loop {
            let n = tokio::time::timeout(Duration::from_secs(20), listener.recv())
                .await
                .unwrap_or_else(|_| panic!("no announcement of {wanted}: heard {heard:?}"))
                .unwrap();
            let (t, origin) = n.payload().split_once(' ').expect("type and origin");
            heard.push((t.to_string(), origin.to_string()));
            if t == wanted {
                return heard;
            }
        }
    };
    let tenant = app.tenant("Announced").await;
    let heard = heard_until("Tenant").await;
    // (The subscription is announced too, heard below with the rest.)
    let server = heard.last().unwrap().1.clone();
    assert_eq!(server.len(), 32, "{heard:?}");
    let receiver = hookline_tests::receiver::TestReceiver::start().await;
    app.subscribe(
        &tenant,
        serde_json::json!({"url": receiver.url("/in"), "events": ["announced.test"]}),
    )
    .await;
    let res = app
        .post(
            &tenant,
            "/v1/events",
            serde_json::json!({"event_type": "announced.test", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    let mut heard = heard_until("Message").await;
    if !heard.iter().any(|(t, _)| t == "Delivery") {
        heard.extend(heard_until("Delivery").await);
    }
    assert!(heard.iter().any(|(t, _)| t == "Subscription"), "{heard:?}");
    for (_, origin) in &heard {
        assert_eq!(origin, &server, "{heard:?}");
    }
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let out = hookline_tests::process::run_cli(
        &[
            "tenants",
            "create",
            "From the CLI",
            "--database-url",
            &app.db.url,
        ],
        &HashMap::new(),
    )
    .await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let heard = heard_until("Tenant").await;
    let cli = &heard.last().unwrap().1;
    assert_ne!(cli, &server, "{heard:?}");
}
