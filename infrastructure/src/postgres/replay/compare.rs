//! `replay --check`: how a live table differs from its rebuilt copy.

use crate::postgres::projections::deliveries::HEALTH_TABLE;
use crate::postgres::projections::queue::TABLE as QUEUE_TABLE;
use sqlx::PgConnection;

/// Columns that are not derived from the log (worker leases).
pub(super) fn not_compared(table: &str) -> &'static [&'static str] {
    if table == QUEUE_TABLE {
        &["lease_owner", "lease_until", "waiting"]
    } else {
        &[]
    }
}

/// Tables a check leaves out: each subscription's run of failures follows
/// commit order live and is recomputed from the attempts by a rebuild
/// (whose lanes apply deliveries in parallel); the two agree except for
/// attempts committed out of start order, so comparing them would report
/// differences that are not tampering. The attempts themselves are
/// compared.
pub(super) fn compared(table: &str) -> bool {
    table != HEALTH_TABLE
}
async fn columns(
    conn: &mut PgConnection,
    table: &str,
    skip: &[&str],
) -> Result<Vec<String>, sqlx::Error> {
    let all: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(all
        .into_iter()
        .filter(|c| !skip.contains(&c.as_str()))
        .collect())
}

/// Rows present in `a` but not in `b` (up to a few, as JSON).
async fn only_in(
    conn: &mut PgConnection,
    a: &str,
    b: &str,
    cols: &str,
) -> Result<(i64, Vec<String>), sqlx::Error> {
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) d"
    ))
    .fetch_one(&mut *conn)
    .await?;
    let samples: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT row_to_json(d)::text FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) d LIMIT 3"
    ))
    .fetch_all(&mut *conn)
    .await?;
    Ok((count, samples))
}

/// How the live `table` differs from the `rebuilt` one (dropped after),
/// among the rows `only` selects.
pub(super) async fn compare(
    conn: &mut PgConnection,
    table: &str,
    rebuilt: &str,
    only: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let cols = columns(&mut *conn, table, not_compared(table))
        .await?
        .join(", ");
    let mut differences = Vec::new();
    let live = format!("(SELECT * FROM {table} WHERE {only}) live");
    let rebuilt_rows = format!("(SELECT * FROM {rebuilt} WHERE {only}) rebuilt");
    let (missing, samples) = only_in(&mut *conn, &live, &rebuilt_rows, &cols).await?;
    if missing > 0 {
        differences.push(format!(
            "{table}: {missing} live rows are not what the log says: {}",
            samples.join(" ")
        ));
    }
    let (extra, samples) = only_in(&mut *conn, &rebuilt_rows, &live, &cols).await?;
    if extra > 0 {
        differences.push(format!(
            "{table}: {extra} rows the log implies are missing or different: {}",
            samples.join(" ")
        ));
    }
    Ok(differences)
}
