//! Wiring: open the database (embedded or `DATABASE_URL`), migrate, build
//! the adapters and the application services over them, start projections
//! and workers, bind the listener, serve until a shutdown signal, then stop
//! everything in order. This is the only place `api` touches
//! infrastructure.

mod services;

pub use services::{Runs, Services};

use crate::middleware::RequestLimits;
use crate::routes;
use crate::serve::ConnectionLimits;
use anyhow::Context;
use hookline_infrastructure::config::Settings;
use hookline_infrastructure::postgres::local::LocalPostgres;
use hookline_infrastructure::postgres::pool::parse_url;
use hookline_infrastructure::postgres::{
    connect, holds_hookline, migrate, pending_migrations, Database,
};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The database a command works on, and the embedded cluster behind it if
/// there is one.
#[derive(Debug)]
pub struct OpenDatabase {
    pub db: Database,
    pub local: Option<LocalPostgres>,
}

impl OpenDatabase {
    /// A command that may not set a database up (it only reads, or writes
    /// to an existing one) refuses one that is not Hookline's, or one at an
    /// older schema, rather than migrating it.
    async fn check_schema(db: &Database) -> anyhow::Result<()> {
        let pool = &db.pool;
        if !holds_hookline(pool)
            .await
            .context("reading the database's tables")?
        {
            anyhow::bail!(
                "the database the database URL (--database-url or DATABASE_URL) names holds no Hookline data (no Hookline migrations and log): check the URL's database name, or set it up with `hookline migrate` (or `serve`)"
            );
        }
        let pending = pending_migrations(pool)
            .await
            .context("reading the database's migrations")?;
        if pending > 0 {
            anyhow::bail!(
                "the database the database URL (--database-url or DATABASE_URL) names is at an older Hookline schema ({pending} migrations to apply): run `hookline migrate` (or start `serve`) first; this command does not change it"
            );
        }
        Ok(())
    }

    /// Connects to `DATABASE_URL`, or starts/reuses the embedded cluster,
    /// and applies migrations.
    ///
    /// # Errors
    /// Unreachable database, missing Postgres binaries, failed migration.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        Self::open_for(settings, true).await
    }

    /// As [`OpenDatabase::open`]; without `may_initialise`, a data
    /// directory with no embedded cluster is refused instead of getting a
    /// new, empty one (a command that reads would report on nothing).
    ///
    /// # Errors
    /// As [`OpenDatabase::open`], and a data directory without a cluster.
    pub async fn open_for(settings: &Settings, may_initialise: bool) -> anyhow::Result<Self> {
        let (options, local) = match &settings.database_url {
            Some(url) => (parse_url(url.expose()).map_err(anyhow::Error::msg)?, None),
            None if !may_initialise && !LocalPostgres::exists(settings.data_dir()) => {
                anyhow::bail!(
                    "{} holds no Hookline database (no embedded cluster under it): give the data directory `serve` uses (--data-dir, HOOKLINE_DATA_DIR) or --database-url",
                    settings.data_dir().display()
                );
            }
            None => {
                let local = LocalPostgres::ensure_running(settings.data_dir())
                    .await
                    .context("starting the embedded Postgres")?;
                (
                    local.options(hookline_infrastructure::postgres::local::DATABASE),
                    Some(local),
                )
            }
        };
        let db = match connect(options, settings.db_max_connections).await {
            Ok(db) => db,
            Err(e) => {
                if let Some(local) = local {
                    drop(local.release(false).await);
                }
                return Err(anyhow::Error::new(e).context("connecting to the database"));
            }
        };
        if !may_initialise && local.is_none() {
            if let Err(e) = Self::check_schema(&db).await {
                db.pool.close().await;
                return Err(e);
            }
        }
        migrate(&db.pool)
            .await
            .context("applying database migrations")?;
        Ok(Self { db, local })
    }

    /// Closes the pool and, if this process may, stops the embedded cluster.
    ///
    /// # Errors
    /// When the embedded cluster could not be stopped (it is logged too):
    /// the process should not report a clean exit.
    pub async fn close(self, server: bool) -> anyhow::Result<()> {
        // A database that does not answer (its processes hung) keeps
        // connections busy forever: stop waiting for them, and stop the
        // embedded cluster under them (fast, then immediate).
        let closing = async {
            self.db.pool.close().await;
            self.db.background.close().await;
        };
        if tokio::time::timeout(POOL_CLOSE_WAIT, closing)
            .await
            .is_err()
        {
            tracing::warn!(
                seconds = POOL_CLOSE_WAIT.as_secs(),
                "database connections were still busy; closing without them"
            );
        }
        if let Some(local) = self.local {
            if let Err(e) = local.release(server).await {
                tracing::error!(error = %e, "stopping the embedded Postgres failed");
                return Err(anyhow::Error::new(e).context("stopping the embedded Postgres"));
            }
        }
        Ok(())
    }
}

pub struct Application {
    listener: Option<tokio::net::TcpListener>,
    router: axum::Router,
    /// `HOOKLINE_METRICS_LISTEN`: a listener serving only `/metrics`.
    metrics: Option<(tokio::net::TcpListener, axum::Router)>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    database: OpenDatabase,
    /// How long shutdown waits for background tasks (attempts in flight).
    drain: Duration,
    connections: ConnectionLimits,
    /// Request work that runs to its end after its request is gone, and
    /// how long shutdown waits for it.
    finishing: (tokio_util::task::TaskTracker, Duration),
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free port).
    ///
    /// # Errors
    /// Database, key or bind failures, with what was being done.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        // Bound before the database opens: a port in use is refused
        // without starting (and leaving behind) the embedded cluster.
        let listener = if settings.role.serves_api() {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            // Port 0 is only known once bound: sources' ingest URLs fall
            // back to the address really listened on.
            settings.listen = listener.local_addr()?;
            Some(listener)
        } else {
            None
        };
        let metrics_listener = match settings.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("listening for /metrics on {address}"))?,
            ),
            None => None,
        };
        if settings
            .admin_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < MIN_ADMIN_TOKEN)
        {
            tracing::warn!(
                "HOOKLINE_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN} characters: whoever guesses it administers every tenant (use e.g. `openssl rand -hex 32`)"
            );
        }
        let database = OpenDatabase::open(&settings).await?;
        let shutdown = CancellationToken::new();
        let wired = Self::wire(&settings, &database, &shutdown);
        let (tasks, router, metrics_router, finishing) = match wired {
            Ok(wired) => wired,
            Err(e) => {
                // Whatever started stops, and so does a cluster this
                // process started.
                shutdown.cancel();
                // A failure to stop is logged; the startup error is the
                // one to report.
                drop(database.close(true).await);
                return Err(e);
            }
        };
        let metrics = metrics_listener.map(|l| (l, metrics_router));
        Ok(Self {
            listener,
            router,
            metrics,
            shutdown,
            tasks,
            database,
            drain: settings.webhook_timeout + Duration::from_secs(5),
            finishing: (finishing, settings.request_timeout * 2),
            connections: ConnectionLimits {
                header_read_timeout: settings.request_timeout,
                max_connections: settings.max_connections,
                drain: settings.request_timeout,
            },
        })
    }

    /// The services, their background tasks and the routers over them.
    fn wire(
        settings: &Settings,
        database: &OpenDatabase,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<(
        Vec<JoinHandle<()>>,
        axum::Router,
        axum::Router,
        tokio_util::task::TaskTracker,
    )> {
        let mut services = Services::build(settings, database, Runs::Everything, shutdown)?;
        let mut tasks = services.start(Some(settings), shutdown)?;
        if let Some(local) = &database.local {
            tasks.push(tokio::spawn(keep_running(local.keeper(), shutdown.clone())));
        }
        let limits = RequestLimits {
            max_body_bytes: settings.max_body_bytes,
            svix_max_body_bytes: settings.svix_max_body_bytes,
            timeout: settings.request_timeout,
        };
        let router = routes::router(services.state(settings), limits)
            .context("serialising the OpenAPI document")?;
        let metrics = routes::metrics_router(services.state(settings), limits);
        Ok((tasks, router, metrics, services.finishing.clone()))
    }

    /// The bound address (`None` for a worker-only process).
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the metrics-only listener, when there is one.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Serves until `signal` completes, then shuts down gracefully:
    /// in-flight requests finish, background tasks stop, the pool closes
    /// and the embedded cluster is stopped.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            metrics,
            shutdown,
            tasks,
            database,
            drain,
            connections,
            finishing: (finishing, finish_within),
        } = self;
        let metrics_server = metrics.map(|(listener, router)| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!(%address, "serving /metrics");
            }
            let stopped = shutdown.clone();
            tokio::spawn(crate::serve::serve(
                listener,
                router,
                connections,
                async move { stopped.cancelled().await },
            ))
        });
        match listener {
            Some(listener) => {
                tracing::info!(address = %listener.local_addr()?, "Hookline is listening");
                // The services keep running until the requests and their
                // finishing work are done (below).
                crate::serve::serve(listener, router, connections, signal).await;
            }
            None => {
                // Nothing will serve the routes; let go of what they hold.
                drop(router);
                tracing::info!("Hookline worker running (no HTTP listener)");
                signal.await;
            }
        }
        // Requests gone past their point of no return finish (and keep
        // their answers) while the services still run.
        finishing.close();
        if tokio::time::timeout(finish_within, finishing.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "work of requests already answered did not finish within twice the request timeout"
            );
        }
        shutdown.cancel();
        tracing::info!("shutting down");
        if let Some(server) = metrics_server {
            drop(server.await);
        }
        // One drain time for all of them; those still running after it
        // (held up by a database that does not answer) are stopped, so
        // that the connections they hold are let go.
        let deadline = tokio::time::Instant::now() + drain;
        let mut stopped = 0;
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
                stopped += 1;
            }
        }
        if stopped > 0 {
            tracing::warn!(
                tasks = stopped,
                "background tasks did not stop within the drain time; stopped them"
            );
        }
        database.close(true).await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long closing waits for the database connections to be given back.
const POOL_CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Below this, an admin token is warned about at start.
const MIN_ADMIN_TOKEN: usize = 16;

/// How often a server looks whether its embedded cluster still runs.
const KEEP_RUNNING_EVERY: Duration = Duration::from_secs(2);

/// Starts the embedded cluster again when its postmaster died, until
/// `shutdown`: the pool reconnects on its own once it is back.
async fn keep_running(
    keeper: hookline_infrastructure::postgres::local::Keeper,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(KEEP_RUNNING_EVERY) => {}
        }
        match keeper.restart_if_stopped().await {
            Ok(true) => tracing::info!("the embedded Postgres is running again"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "the embedded Postgres could not be started again; trying again");
            }
        }
    }
}
