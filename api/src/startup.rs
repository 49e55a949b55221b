//! Wiring: open the database (embedded or `DATABASE_URL`), migrate, build
//! the adapters and the application services over them, start projections
//! and workers, bind the listener, serve until a shutdown signal, then stop
//! everything in order. This is the only place `api` touches
//! infrastructure.

use crate::middleware::RequestLimits;
use crate::routes;
use crate::serve::ConnectionLimits;
use crate::state::AppState;
use anyhow::Context;
use cqrs_es::Aggregate;
use hookline_application::audit::AuditService;
use hookline_application::deliveries::{DeliveryService, PublishService, PublishSettings};
use hookline_application::health::HealthService;
use hookline_application::ports::SecretCipher;
use hookline_application::replay::ReplayService;
use hookline_application::subscriptions::{SubscriptionService, SubscriptionSettings};
use hookline_application::tenants::{Authenticator, TenantService};
use hookline_application::worker::{OutcomeRecorder, Worker, WorkerSettings};
use hookline_application::Shared;
use hookline_domain::delivery::Delivery;
use hookline_domain::subscription::Subscription;
use hookline_domain::tenant::Tenant;
use hookline_infrastructure::cipher::{NoKey, XChaChaCipher};
use hookline_infrastructure::clock::{SystemClock, SystemEntropy};
use hookline_infrastructure::config::Settings;
use hookline_infrastructure::postgres::audit::{PgAuditLog, PgLogArchive};
use hookline_infrastructure::postgres::deliveries::{PgDeliveryReadModel, PgDueQueue};
use hookline_infrastructure::postgres::directory::CachedSubscriptions;
use hookline_infrastructure::postgres::health::PgReadiness;
use hookline_infrastructure::postgres::local::LocalPostgres;
use hookline_infrastructure::postgres::log_reader::PgEventLog;
use hookline_infrastructure::postgres::pool::parse_url;
use hookline_infrastructure::postgres::projections::queue::DUE_CHANNEL;
use hookline_infrastructure::postgres::projections::subscriptions::{
    PgSubscriptionReadModel, SubscriptionsProjection,
};
use hookline_infrastructure::postgres::projections::{
    deliveries_projection, Projection, ProjectionRunner, Projections,
};
use hookline_infrastructure::postgres::replay::PgRebuilder;
use hookline_infrastructure::postgres::store::{GroupCommit, PgAggregateStore, PgLog};
use hookline_infrastructure::postgres::tenants::{PgTenantReadModel, TenantsProjection};
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

/// Which projections a process runs: a server runs them all; a one-shot
/// command only the tenants one (so a key it issues works at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    Everything,
    TenantsOnly,
}

/// The application services over Postgres, and what a worker needs.
pub struct Services {
    pub subscriptions: Arc<SubscriptionService>,
    pub publish: Arc<PublishService>,
    pub deliveries: Arc<DeliveryService>,
    pub audit: Arc<AuditService>,
    pub tenants: Arc<TenantService>,
    pub auth: Arc<Authenticator>,
    pub health: Arc<HealthService>,
    pub replay: Arc<ReplayService>,
    shared: Shared,
    subscription_store: Arc<PgAggregateStore<Subscription>>,
    directory: Arc<CachedSubscriptions>,
    background_log: PgLog,
    due: Wakeup,
    runners: Vec<ProjectionRunner>,
    listeners: Vec<JoinHandle<()>>,
    batchers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

fn projections_for(runs: Runs, due: &Wakeup) -> Vec<Arc<dyn Projection>> {
    let mut list: Vec<Arc<dyn Projection>> = vec![Arc::new(TenantsProjection::default())];
    if runs == Runs::Everything {
        list.push(Arc::new(SubscriptionsProjection::default()));
        list.push(Arc::new(deliveries_projection("", due.clone())));
    }
    list
}

impl Services {
    /// Builds every adapter and service over `database`; projections are
    /// started with [`Services::start`].
    ///
    /// # Errors
    /// A missing or unreadable secret key.
    pub fn build(
        settings: &Settings,
        database: &OpenDatabase,
        runs: Runs,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let pool = database.db.pool.clone();
        let background = database.db.background.clone();
        let configured = settings.secret_key.as_ref().map(|k| k.expose());
        // A server creates the key on first start; one-shot commands seal
        // nothing and never leave a key file behind.
        let cipher: Arc<dyn SecretCipher> = match runs {
            Runs::Everything => Arc::new(
                XChaChaCipher::load_or_create(configured, settings.data_dir())
                    .context("loading the secret key")?,
            ),
            Runs::TenantsOnly => {
                match XChaChaCipher::load_existing(configured, settings.data_dir())
                    .context("loading the secret key")?
                {
                    Some(c) => Arc::new(c),
                    None => Arc::new(NoKey),
                }
            }
        };
        let wakeups = LogWakeups::new(&[Tenant::TYPE, Subscription::TYPE, Delivery::TYPE]);
        let due = Wakeup::new();
        let mut listeners = vec![wakeups.spawn_listener(&database.db, shutdown.clone())];
        if runs == Runs::Everything {
            listeners.push(due.spawn_listener(&database.db, DUE_CHANNEL, shutdown.clone()));
        }
        let (projections, runners) =
            Projections::new(projections_for(runs, &due), &background, &wakeups);
        let progress = |name: &str| {
            projections
                .progress(name)
                .with_context(|| format!("the {name} projection is missing"))
        };
        let shared = Shared {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(SystemEntropy),
            cipher,
            log: Arc::new(PgEventLog::new(pool.clone())),
            waiter: Arc::new(projections.clone()),
            consistency_timeout: settings.consistency_timeout,
        };
        let log = PgLog::new(pool.clone(), wakeups.clone());
        let tenant_store = Arc::new(PgAggregateStore::<Tenant>::new(log.clone(), ()));
        let subscription_store = Arc::new(PgAggregateStore::<Subscription>::new(log.clone(), ()));
        let delivery_store = Arc::new(PgAggregateStore::<Delivery>::new(
            log.clone(),
            settings.retry_policy.clone(),
        ));
        let (batched, batchers) = GroupCommit::start(delivery_store.clone(), 3);
        let directory = Arc::new(CachedSubscriptions::new(
            pool.clone(),
            match runs {
                Runs::Everything => progress("subscriptions")?,
                Runs::TenantsOnly => tokio::sync::watch::channel(Default::default()).1,
            },
        ));
        let subscription_read = Arc::new(PgSubscriptionReadModel::new(pool.clone()));
        let delivery_read = Arc::new(PgDeliveryReadModel::new(pool.clone()));
        let tenant_read = Arc::new(PgTenantReadModel::new(pool.clone(), progress("tenants")?));
        let subscriptions = Arc::new(SubscriptionService::new(
            shared.clone(),
            subscription_store.clone(),
            subscription_read.clone(),
            SubscriptionSettings {
                allow_list: settings.allow_private_targets.clone(),
                rotation_overlap: chrono::Duration::from_std(settings.secret_rotation_overlap)
                    .unwrap_or_else(|_| chrono::Duration::days(1)),
            },
        ));
        Ok(Self {
            publish: Arc::new(PublishService::new(
                shared.clone(),
                directory.clone(),
                Arc::new(batched),
                Arc::new(log.clone()),
                PublishSettings {
                    idempotency_ttl: settings.idempotency_ttl,
                },
            )),
            deliveries: Arc::new(DeliveryService::new(
                shared.clone(),
                delivery_store,
                delivery_read.clone(),
                subscription_read,
            )),
            audit: Arc::new(AuditService::new(
                Arc::new(PgAuditLog::new(pool.clone())),
                Arc::new(PgLogArchive::new(database.db.options.clone())),
                delivery_read,
                shared.waiter.clone(),
                settings.consistency_timeout,
            )),
            tenants: Arc::new(TenantService::new(
                shared.clone(),
                tenant_store,
                tenant_read.clone(),
                subscriptions.clone(),
            )),
            auth: Arc::new(Authenticator::new(
                tenant_read,
                shared.clock.clone(),
                shared.waiter.clone(),
                settings.consistency_timeout,
            )),
            health: Arc::new(HealthService::new(Arc::new(PgReadiness::new(
                pool.clone(),
                projections,
            )))),
            replay: Arc::new(ReplayService::new(Arc::new(PgRebuilder::new(pool)))),
            subscriptions,
            shared,
            subscription_store,
            directory,
            background_log: PgLog::new(background, wakeups),
            due,
            runners,
            listeners,
            batchers,
        })
    }

    /// Starts the projections (and, with `settings` asking for them, the
    /// delivery workers) until `shutdown`; returns their tasks.
    ///
    /// # Errors
    /// When the HTTP client for attempts cannot be built.
    pub fn start(
        &mut self,
        settings: Option<&Settings>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let mut tasks: Vec<JoinHandle<()>> = self.listeners.drain(..).collect();
        tasks.append(&mut self.batchers);
        for runner in self.runners.drain(..) {
            tasks.push(tokio::spawn(runner.run(shutdown.clone())));
        }
        if let Some(settings) = settings.filter(|s| s.role.runs_workers()) {
            tasks.push(self.start_worker(settings, shutdown)?);
        }
        Ok(tasks)
    }

    fn start_worker(
        &self,
        settings: &Settings,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<JoinHandle<()>> {
        let worker_id = format!("worker-{}", uuid::Uuid::new_v4().simple());
        let sender = ReqwestSender::new(&SenderSettings {
            timeout: settings.webhook_timeout,
            allow: settings.allow_private_targets.clone(),
            pool_per_host: settings.worker_concurrency,
        })
        .context("building the HTTP client")?;
        let recorder = Arc::new(OutcomeRecorder::new(
            self.shared.clone(),
            Arc::new(PgAggregateStore::<Delivery>::new(
                self.background_log.clone(),
                settings.retry_policy.clone(),
            )),
            self.subscription_store.clone(),
            settings.retry_policy.clone(),
            worker_id.clone(),
        ));
        let worker = Arc::new(Worker::new(
            self.shared.clone(),
            Arc::new(PgDueQueue::new(self.background_log.pool().clone())),
            Arc::new(sender),
            self.directory.clone(),
            recorder,
            WorkerSettings {
                worker_id,
                concurrency: settings.worker_concurrency,
                lease: settings.worker_lease,
                claim_batch: 200,
                poll_interval: Duration::from_millis(250),
                user_agent: settings.webhook_user_agent.clone(),
            },
        ));
        Ok(tokio::spawn(
            worker.run(shutdown.clone(), self.due.subscribe()),
        ))
    }

    /// The state the HTTP handlers share.
    pub fn state(&self, settings: &Settings) -> AppState {
        AppState {
            subscriptions: self.subscriptions.clone(),
            publish: self.publish.clone(),
            deliveries: self.deliveries.clone(),
            audit: self.audit.clone(),
            tenants: self.tenants.clone(),
            auth: self.auth.clone(),
            health: self.health.clone(),
            admin_token: settings.admin_token.clone(),
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
        let shutdown = CancellationToken::new();
        let mut services = Services::build(&settings, &database, Runs::Everything, &shutdown)?;
        let tasks = services.start(Some(&settings), &shutdown)?;
        let router = routes::router(
            services.state(&settings),
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
        match listener {
            Some(listener) => {
                tracing::info!(address = %listener.local_addr()?, "Hookline is listening");
                crate::serve::serve(listener, router, connections, async move {
                    signal.await;
                    stop.cancel();
                })
                .await;
            }
            None => {
                // Nothing will serve the routes; let go of what they hold.
                drop(router);
                tracing::info!("Hookline worker running (no HTTP listener)");
                signal.await;
                stop.cancel();
            }
        }
        shutdown.cancel();
        tracing::info!("shutting down");
        for task in tasks {
            if tokio::time::timeout(drain, task).await.is_err() {
                tracing::warn!("a background task did not stop within the drain time");
            }
        }
        database.close(true).await;
        tracing::info!("stopped");
        Ok(())
    }
}
