//! Wiring: open the database (embedded or `DATABASE_URL`), migrate, build
//! the services, start projections, bind the listener, serve until a shutdown
//! signal, then stop everything in order.

use crate::middleware::RequestLimits;
use crate::routes;
use crate::serve::ConnectionLimits;
use crate::state::AppState;
use anyhow::Context;
use hookline_application::audit::AuditService;
use hookline_application::deliveries::{DeliveryService, PublishService, PublishSettings};
use hookline_infrastructure::postgres::audit::PgAuditLog;

use hookline_application::subscriptions::{SubscriptionService, SubscriptionSettings};
use hookline_application::tenants::TenantService;
use hookline_application::worker::{OutcomeRecorder, Worker, WorkerSettings};
use hookline_domain::delivery::Delivery;
use hookline_domain::subscription::Subscription;
use hookline_infrastructure::cipher::XChaChaCipher;
use hookline_infrastructure::clock::SystemClock;
use hookline_infrastructure::config::Settings;
use hookline_infrastructure::postgres::appender::{BatchedAppender, PgEventAppender};
use hookline_infrastructure::postgres::deliveries::{PgDeliveryReadModel, PgDueQueue};
use hookline_infrastructure::postgres::directory::CachedSubscriptions;
use hookline_infrastructure::postgres::event_store::PgCommandStore;
use hookline_infrastructure::postgres::local::LocalPostgres;
use hookline_infrastructure::postgres::log_reader::PgEventLog;
use hookline_infrastructure::postgres::pool::parse_url;
use hookline_infrastructure::postgres::projections::deliveries_projection;
use hookline_infrastructure::postgres::projections::queue::DUE_CHANNEL;

use cqrs_es::Aggregate;
use hookline_infrastructure::postgres::projections::subscriptions::{
    PgSubscriptionReadModel, SubscriptionsProjection,
};
use hookline_infrastructure::postgres::projections::{Projection, Projections};
use hookline_infrastructure::postgres::tenants::PgTenantDirectory;
use hookline_infrastructure::postgres::wakeup::{LogWakeups, Wakeup};
use hookline_infrastructure::postgres::{connect, migrate, Database};
use hookline_infrastructure::sender::{ReqwestSender, SenderSettings};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
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
    /// Connects to `DATABASE_URL`, or starts/reuses the embedded cluster,
    /// and applies migrations.
    ///
    /// # Errors
    /// Unreachable database, missing Postgres binaries, failed migration.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (options, local) = match &settings.database_url {
            Some(url) => (parse_url(url.expose()).map_err(anyhow::Error::msg)?, None),
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
        migrate(&db.pool)
            .await
            .context("applying database migrations")?;
        Ok(Self { db, local })
    }

    /// Closes the pool and, if this process may, stops the embedded cluster.
    pub async fn close(self, server: bool) {
        self.db.pool.close().await;
        self.db.background.close().await;
        if let Some(local) = self.local {
            if let Err(e) = local.release(server).await {
                tracing::error!(error = %e, "stopping the embedded Postgres failed");
            }
        }
    }
}

pub struct Application {
    listener: Option<tokio::net::TcpListener>,
    router: axum::Router,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    database: OpenDatabase,
    /// How long shutdown waits for background tasks (attempts in flight).
    drain: Duration,
    connections: ConnectionLimits,
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
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let database = OpenDatabase::open(&settings).await?;
        let pool = database.db.pool.clone();
        let background = database.db.background.clone();
        let cipher = Arc::new(
            XChaChaCipher::load_or_create(
                settings.secret_key.as_ref().map(|k| k.expose()),
                settings.data_dir(),
            )
            .context("loading the secret key")?,
        );
        let clock = Arc::new(SystemClock);
        let wakeups = LogWakeups::new(&[Subscription::TYPE, Delivery::TYPE]);
        let due = Wakeup::new();
        let shutdown = CancellationToken::new();
        let mut tasks = vec![
            wakeups.spawn_listener(&database.db, shutdown.clone()),
            due.spawn_listener(&database.db, DUE_CHANNEL, shutdown.clone()),
        ];

        let projection_list: Vec<Arc<dyn Projection>> = vec![
            Arc::new(SubscriptionsProjection::default()),
            Arc::new(deliveries_projection("", due.clone())),
        ];
        let (projections, runners) = Projections::new(projection_list, &background, &wakeups);
        for runner in runners {
            tasks.push(tokio::spawn(runner.run(shutdown.clone())));
        }
        let waiter = Arc::new(projections.clone());
        let log = Arc::new(PgEventLog::new(pool.clone()));
        let subscription_store = Arc::new(PgCommandStore::<Subscription>::new(
            pool.clone(),
            (),
            wakeups.of(Subscription::TYPE),
        ));
        let delivery_store = Arc::new(PgCommandStore::<Delivery>::new(
            pool.clone(),
            settings.retry_policy.clone(),
            wakeups.of(Delivery::TYPE),
        ));
        let appender = Arc::new(PgEventAppender::new(background.clone(), wakeups.clone()));
        let (batched, batchers) = BatchedAppender::start(pool.clone(), wakeups.clone(), 3);
        tasks.extend(batchers);
        let directory = Arc::new(CachedSubscriptions::new(
            pool.clone(),
            projections
                .progress("subscriptions")
                .context("the subscriptions projection is missing")?,
        ));
        let subscription_read = Arc::new(PgSubscriptionReadModel::new(pool.clone()));

        let subscriptions = Arc::new(SubscriptionService::new(
            subscription_store.clone(),
            subscription_read.clone(),
            log.clone(),
            cipher.clone(),
            clock.clone(),
            waiter.clone(),
            SubscriptionSettings {
                allow_list: settings.allow_private_targets.clone(),
                rotation_overlap: chrono::Duration::from_std(settings.secret_rotation_overlap)
                    .unwrap_or_else(|_| chrono::Duration::days(1)),
                consistency_timeout: settings.consistency_timeout,
            },
        ));
        let publish = Arc::new(PublishService::new(
            directory.clone(),
            Arc::new(batched),
            clock.clone(),
            PublishSettings {
                idempotency_ttl: settings.idempotency_ttl,
            },
        ));
        let delivery_read = Arc::new(PgDeliveryReadModel::new(pool.clone()));
        let audit = Arc::new(AuditService::new(
            Arc::new(PgAuditLog::new(pool.clone())),
            delivery_read.clone(),
            waiter.clone(),
            settings.consistency_timeout,
        ));
        let deliveries = Arc::new(DeliveryService::new(
            delivery_store.clone(),
            delivery_read,
            subscription_read,
            log.clone(),
            clock.clone(),
            waiter,
            settings.consistency_timeout,
        ));
        if settings.role.runs_workers() {
            let worker_id = format!("worker-{}", uuid::Uuid::new_v4().simple());
            let sender = ReqwestSender::new(&SenderSettings {
                timeout: settings.webhook_timeout,
                allow: settings.allow_private_targets.clone(),
                pool_per_host: settings.worker_concurrency,
            })
            .context("building the HTTP client")?;
            let recorder = Arc::new(OutcomeRecorder::new(
                Arc::new(PgEventLog::new(background.clone())),
                appender,
                delivery_store,
                subscription_store,
                clock.clone(),
                settings.retry_policy.clone(),
                worker_id.clone(),
            ));
            let worker = Arc::new(Worker::new(
                Arc::new(PgDueQueue::new(background.clone())),
                Arc::new(sender),
                directory,
                cipher,
                recorder,
                clock.clone(),
                WorkerSettings {
                    worker_id,
                    concurrency: settings.worker_concurrency,
                    lease: settings.worker_lease,
                    claim_batch: 200,
                    poll_interval: Duration::from_millis(250),
                    user_agent: settings.webhook_user_agent.clone(),
                },
            ));
            tasks.push(tokio::spawn(worker.run(shutdown.clone(), due.subscribe())));
        }
        let tenants = Arc::new(TenantService::new(
            Arc::new(PgTenantDirectory::new(pool.clone())),
            clock,
        ));
        let state = AppState {
            subscriptions,
            publish,
            deliveries,
            audit,
            tenants,
            admin_token: settings.admin_token.clone(),
            pool,
            projections,
        };
        let router = routes::router(
            state,
            RequestLimits {
                max_body_bytes: settings.max_body_bytes,
                timeout: settings.request_timeout,
            },
        );
        let listener = if settings.role.serves_api() {
            Some(
                tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .with_context(|| format!("listening on {}", settings.listen))?,
            )
        } else {
            None
        };
        Ok(Self {
            listener,
            router,
            shutdown,
            tasks,
            database,
            drain: settings.webhook_timeout + Duration::from_secs(5),
            connections: ConnectionLimits {
                header_read_timeout: settings.request_timeout,
                max_connections: settings.max_connections,
                drain: settings.request_timeout,
            },
        })
    }

    /// The bound address (`None` for a worker-only process).
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
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
            shutdown,
            tasks,
            database,
            drain,
            connections,
        } = self;
        let stop = shutdown.clone();
        let served = match listener {
            Some(listener) => {
                tracing::info!(address = %listener.local_addr()?, "Hookline is listening");
                crate::serve::serve(listener, router, connections, async move {
                    signal.await;
                    stop.cancel();
                })
                .await;
                Ok(())
            }
            None => {
                // Nothing will serve the routes; let go of what they hold.
                drop(router);
                tracing::info!("Hookline worker running (no HTTP listener)");

                signal.await;
                stop.cancel();
                Ok(())
            }
        };
        shutdown.cancel();
        tracing::info!("shutting down");
        for task in tasks {
            if tokio::time::timeout(drain, task).await.is_err() {
                tracing::warn!("a background task did not stop within 10 s");
            }
        }
        database.close(true).await;
        tracing::info!("stopped");
        served
    }
}
