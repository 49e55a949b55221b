//! Connecting and migrating.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgConnection, PgPool};
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A connected database: the pool plus the options used (so listeners and
/// CLI tools can open their own connections).
#[derive(Debug, Clone)]
pub struct Database {
    /// For API requests.
    pub pool: PgPool,
    /// For projections, workers and outcome recording: kept apart so request
    /// traffic never starves them of connections.
    pub background: PgPool,
    pub options: PgConnectOptions,
}

/// Parses a `postgres://` URL (a Unix socket directory may be given as
/// `?host=/path`).
///
/// # Errors
/// When the URL is malformed (the message does not repeat the URL, which
/// may hold a password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, String> {
    // sqlx reads any scheme (`garbage://`) as Postgres on the defaults.
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
        return Err(
            "the database URL (--database-url, HOOKLINE_DATABASE_URL or DATABASE_URL) is not a valid postgres:// URL (it must start with postgres:// or postgresql://)"
                .into(),
        );
    }
    PgConnectOptions::from_str(url).map_err(|e| {
        let msg = e.to_string();
        format!(
            "the database URL (--database-url, HOOKLINE_DATABASE_URL or DATABASE_URL) is not a valid postgres:// URL ({})",
            msg.split(':').next().unwrap_or("invalid")
        )
    })
}

/// # Errors
/// When the server cannot be reached within the acquire timeout.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<Database, sqlx::Error> {
    // One connection first: a refused or misnamed server is reported as
    // such, where the pool would only say that it timed out.
    if let Ok(first) = tokio::time::timeout(
        Duration::from_secs(10),
        PgConnection::connect_with(&options),
    )
    .await
    {
        drop(first?.close().await);
    }
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    let background = PgPoolOptions::new()
        .max_connections((max_connections / 2).clamp(4, 16))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await?;
    Ok(Database {
        pool,
        background,
        options,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Schema(#[from] sqlx::migrate::MigrateError),
    #[error("turning tenants stored as rows into events: {0}")]
    Tenants(hookline_application::AppError),
}

/// Whether the database has Hookline's schema: its migrations table with
/// Hookline's first migration applied, and the log. A command that only
/// reads must not set the schema up in a database named by mistake (nor
/// take another application's `events` table for the log).
///
/// # Errors
/// When the database cannot be read.
pub async fn holds_hookline(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let tables: bool = sqlx::query_scalar(
        "SELECT to_regclass('_sqlx_migrations') IS NOT NULL AND to_regclass('events') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if !tables {
        return Ok(false);
    }
    let first = MIGRATOR.iter().next().map_or(0, |m| m.version);
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1 AND success)",
    )
    .bind(first)
    .fetch_one(pool)
    .await
}

/// How many of Hookline's migrations the database has not applied (of a
/// database that [`holds_hookline`]).
///
/// # Errors
/// When the database cannot be read.
pub async fn pending_migrations(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count())
}

/// Applies pending migrations (concurrent callers are serialised by an
/// advisory lock inside sqlx), then turns tenants stored as plain rows by
/// earlier versions into events of the log.
///
/// # Errors
/// When a migration fails or the database is unreachable.
pub async fn migrate(pool: &PgPool) -> Result<(), MigrationError> {
    MIGRATOR.run(pool).await?;
    let store = super::store::PgAggregateStore::<hookline_domain::tenant::Tenant>::new(
        super::store::PgLog::new(pool.clone(), super::wakeup::LogWakeups::new(&[])),
        (),
    );
    super::tenants::adopt_legacy_rows(pool, &store)
        .await
        .map_err(MigrationError::Tenants)?;
    Ok(())
}

#[cfg(test)]
mod url_tests {
    use super::parse_url;

    #[test]
    fn only_postgres_urls_are_read() {
        assert!(parse_url("postgres://u@localhost/db").is_ok());
        assert!(parse_url("postgresql://u@localhost:5433/db").is_ok());
        for bad in ["garbage://", "mysql://u@localhost/db", "localhost/db", ""] {
            let refused = parse_url(bad);
            assert!(
                matches!(&refused, Err(e) if e.contains("postgres://")),
                "{bad}: {refused:?}"
            );
        }
    }
}
