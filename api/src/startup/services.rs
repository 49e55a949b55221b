//! The application services over Postgres, built in three steps: the
//! projections and wake-ups, the adapters (stores and read models), and the
//! services over them.

use crate::state::{AppServices, AppState};
use anyhow::Context;
use cqrs_es::Aggregate;
use hookline_application::audit::AuditService;
use hookline_application::catalogue::CatalogueService;
use hookline_application::connectors::SiigoService;
use hookline_application::dashboard::DashboardService;
use hookline_application::deliveries::{DeliveryService, PublishService, PublishSettings};
use hookline_application::flow::FlowController;
use hookline_application::health::HealthService;
use hookline_application::idempotency::{IdempotencyService, IdempotencySettings};
use hookline_application::messages::MessageService;
use hookline_application::metrics::MetricsService;
use hookline_application::operational::Notifier;
use hookline_application::operators::OperatorService;
use hookline_application::portal::PortalService;
use hookline_application::ports::{LinkSigner, SecretCipher};
use hookline_application::replay::ReplayService;
use hookline_application::sources::{InboundService, SourceService, SourceSettings};
use hookline_application::subscriptions::{SubscriptionService, SubscriptionSettings};
use hookline_application::tenants::{Authenticator, TenantService};
use hookline_application::uids::UidClaims;
use hookline_application::worker::{OutcomeRecorder, Worker, WorkerPorts, WorkerSettings};
use hookline_application::Shared;
use hookline_domain::catalogue::CatalogueEntry;
use hookline_domain::delivery::Delivery;
use hookline_domain::inbound::Inbound;
use hookline_domain::message::Message;
use hookline_domain::operator::Operators;
use hookline_domain::portal::PortalLink;
use hookline_domain::source::Source;
use hookline_domain::subscription::Subscription;
use hookline_domain::tenant::Tenant;
use hookline_domain::uid_claim::UidClaim;
use hookline_domain::upstream::UpstreamSubscription;
use hookline_infrastructure::cipher::{NoKey, XChaChaCipher};
use hookline_infrastructure::clock::{SystemClock, SystemEntropy};
use hookline_infrastructure::config::Settings;
use hookline_infrastructure::metrics::{Exposition, Registry};
use hookline_infrastructure::postgres::audit::{PgAuditLog, PgLogArchive};
use hookline_infrastructure::postgres::backlog::PgBacklog;
use hookline_infrastructure::postgres::catalogue::{EventTypesProjection, PgCatalogueReadModel};
use hookline_infrastructure::postgres::dashboard::PgDeliveryStats;
use hookline_infrastructure::postgres::deliveries::{
    PgDeliveryReadModel, PgDueQueue, PgMessageBodies,
};
use hookline_infrastructure::postgres::directory::CachedSubscriptions;
use hookline_infrastructure::postgres::feed::PgDeliveryFeed;
use hookline_infrastructure::postgres::flow::PgFlowControl;
use hookline_infrastructure::postgres::health::PgReadiness;
use hookline_infrastructure::postgres::idempotency::PgIdempotentRequests;
use hookline_infrastructure::postgres::log_reader::PgEventLog;
use hookline_infrastructure::postgres::messages::{MessagesProjection, PgMessageReadModel};
use hookline_infrastructure::postgres::metrics::PgGauges;
use hookline_infrastructure::postgres::notices::PgNoticeOutbox;
use hookline_infrastructure::postgres::projections::queue::DUE_CHANNEL;
use hookline_infrastructure::postgres::projections::subscriptions::{
    PgSubscriptionReadModel, SubscriptionsProjection,
};
use hookline_infrastructure::postgres::projections::{
    deliveries_projection, Projection, ProjectionRunner, Projections,
};
use hookline_infrastructure::postgres::replay::PgRebuilder;
use hookline_infrastructure::postgres::sources::{
    sources_projection, upstream_projection, PgRejectionLog, PgSourceReadModel,
    PgUpstreamReadModel, SOURCES_TABLE, UPSTREAM_TABLE,
};
use hookline_infrastructure::postgres::store::{GroupCommit, PgAggregateStore, PgLog};
use hookline_infrastructure::postgres::tenants::{PgTenantReadModel, TenantsProjection};
use hookline_infrastructure::postgres::wakeup::{LogWakeups, Wakeup};
use hookline_infrastructure::postgres::write_locks::PgWriteLocks;
use hookline_infrastructure::schema::JsonSchemaCompiler;
use hookline_infrastructure::sender::{ReqwestSender, SenderSettings};
use hookline_infrastructure::siigo::{SiigoClient, SiigoSettings};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::OpenDatabase;

/// How long answers to requests with an `Idempotency-Key` are remembered
/// (`/v1` and the Svix-compatible API, as Svix does; publishing keeps its
/// own keys in the log for HOOKLINE_IDEMPOTENCY_TTL_SECONDS).
pub const REQUEST_IDEMPOTENCY_TTL: Duration = Duration::from_secs(12 * 3600);

/// Which projections a process runs: a server runs them all; a one-shot
/// command only the tenants one (so a key it issues works at once) and the
/// upstream subscriptions' (which `connectors siigo list` reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    Everything,
    OneShot,
    /// As `OneShot`, for a command that seals secrets (it uses the
    /// server's key file, creating it if the server never ran).
    OneShotSealing,
}

/// The application services over Postgres, and what a worker needs.
pub struct Services {
    /// Request work that finishes after its request is gone (see
    /// `AppState::finishing`); shutdown waits for it.
    pub finishing: tokio_util::task::TaskTracker,
    pub subscriptions: Arc<SubscriptionService>,
    pub publish: Arc<PublishService>,
    pub catalogue: Arc<CatalogueService>,
    pub deliveries: Arc<DeliveryService>,
    pub audit: Arc<AuditService>,
    pub tenants: Arc<TenantService>,
    pub auth: Arc<Authenticator>,
    pub health: Arc<HealthService>,
    pub replay: Arc<ReplayService>,
    pub messages: Arc<MessageService>,
    pub operators: Arc<OperatorService>,
    pub idempotency: Arc<IdempotencyService>,
    pub portal: Arc<PortalService>,
    pub dashboard: Arc<DashboardService>,
    pub metrics: Arc<MetricsService>,
    /// The in-process series the publish path, the worker and the HTTP
    /// layer count in.
    registry: Arc<Registry>,
    pub sources: Arc<SourceService>,
    pub inbound: Arc<InboundService>,
    pub siigo: Arc<SiigoService>,
    /// `HOOKLINE_ALLOW_PRIVATE_TARGETS`.
    pub allow_list: hookline_domain::AllowList,
    /// `HOOKLINE_SIIGO_URL`.
    pub siigo_url: String,
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

/// A server creates the key on first start; one-shot commands seal
/// nothing and never leave a key file behind. The signer (portal links)
/// uses a key derived from the same server key.
fn cipher(
    settings: &Settings,
    runs: Runs,
) -> anyhow::Result<(Arc<dyn SecretCipher>, Arc<dyn LinkSigner>)> {
    let configured = settings.secret_key.as_ref().map(|k| k.expose());
    let cipher = match runs {
        Runs::Everything | Runs::OneShotSealing => Some(
            XChaChaCipher::load_or_create(configured, settings.data_dir())
                .context("loading the secret key")?,
        ),
        Runs::OneShot => XChaChaCipher::load_existing(configured, settings.data_dir())
            .context("loading the secret key")?,
    };
    Ok(match cipher {
        Some(c) => {
            let signer = c.signer();
            (Arc::new(c), Arc::new(signer))
        }
        None => (Arc::new(NoKey), Arc::new(NoKey)),
    })
}

/// Projections, their runners and the wake-ups that drive them.
struct Consumers {
    projections: Projections,
    runners: Vec<ProjectionRunner>,
    listeners: Vec<JoinHandle<()>>,
    wakeups: LogWakeups,
    due: Wakeup,
}

impl Consumers {
    fn new(
        database: &OpenDatabase,
        runs: Runs,
        row_hold: std::time::Duration,
        shutdown: &CancellationToken,
    ) -> Self {
        let wakeups = LogWakeups::new(&[
            Tenant::TYPE,
            CatalogueEntry::TYPE,
            Subscription::TYPE,
            Delivery::TYPE,
            Message::TYPE,
            Source::TYPE,
            Inbound::TYPE,
            UpstreamSubscription::TYPE,
        ]);
        let due = Wakeup::new();
        let mut listeners = vec![
            wakeups.spawn_listener(&database.db, shutdown.clone()),
            wakeups.spawn_announcer(&database.db, shutdown.clone()),
        ];
        // One-shot commands run the tenants projection (a key they issue
        // works at once) and the upstream subscriptions' (`connectors siigo
        // list` reads it, and no server may be running).
        let mut list: Vec<Arc<dyn Projection>> = vec![
            Arc::new(TenantsProjection::default()),
            Arc::new(upstream_projection("")),
        ];
        if runs == Runs::Everything {
            listeners.push(due.spawn_listener(&database.db, DUE_CHANNEL, shutdown.clone()));
            list.push(Arc::new(EventTypesProjection::default()));
            list.push(Arc::new(SubscriptionsProjection::default()));
            list.push(Arc::new(
                deliveries_projection("", due.clone()).holding(row_hold),
            ));
            list.push(Arc::new(MessagesProjection::default()));
            list.push(Arc::new(sources_projection("")));
        }
        let (projections, runners) = Projections::new(list, &database.db.background, &wakeups);
        Self {
            projections,
            runners,
            listeners,
            wakeups,
            due,
        }
    }

    /// A projection's position in this process (a still one when this
    /// process does not run it).
    fn progress(
        &self,
        name: &str,
    ) -> tokio::sync::watch::Receiver<hookline_application::ports::LogPosition> {
        self.projections
            .progress(name)
            .unwrap_or_else(|| tokio::sync::watch::channel(Default::default()).1)
    }
}

/// The Postgres adapters the services use.
struct Adapters {
    log: PgLog,
    tenants: Arc<PgAggregateStore<Tenant>>,
    catalogue: Arc<PgAggregateStore<CatalogueEntry>>,
    subscriptions: Arc<PgAggregateStore<Subscription>>,
    deliveries: Arc<PgAggregateStore<Delivery>>,
    sources: Arc<PgAggregateStore<Source>>,
    inbound: Arc<PgAggregateStore<Inbound>>,
    upstream: Arc<PgAggregateStore<UpstreamSubscription>>,
    subscription_read: Arc<PgSubscriptionReadModel>,
    delivery_read: Arc<PgDeliveryReadModel>,
    message_read: Arc<PgMessageReadModel>,
    tenant_read: Arc<PgTenantReadModel>,
    uids: UidClaims,
    operators: Arc<PgAggregateStore<Operators>>,
    catalogue_read: Arc<PgCatalogueReadModel>,
    directory: Arc<CachedSubscriptions>,
}

impl Adapters {
    fn new(settings: &Settings, database: &OpenDatabase, consumers: &Consumers) -> Self {
        let pool = &database.db.pool;
        let log = PgLog::new(pool.clone(), consumers.wakeups.clone());
        Self {
            tenants: Arc::new(PgAggregateStore::new(log.clone(), ())),
            catalogue: Arc::new(PgAggregateStore::new(log.clone(), ())),
            subscriptions: Arc::new(PgAggregateStore::new(log.clone(), ())),
            deliveries: Arc::new(PgAggregateStore::new(
                log.clone(),
                settings.retry_policy.clone(),
            )),
            uids: UidClaims::new(Arc::new(PgAggregateStore::<UidClaim>::new(log.clone(), ()))),
            operators: Arc::new(PgAggregateStore::new(log.clone(), ())),
            sources: Arc::new(PgAggregateStore::new(log.clone(), ())),
            inbound: Arc::new(PgAggregateStore::new(log.clone(), ())),
            upstream: Arc::new(PgAggregateStore::new(log.clone(), ())),
            log,
            subscription_read: Arc::new(PgSubscriptionReadModel::new(pool.clone())),
            delivery_read: Arc::new(PgDeliveryReadModel::new(pool.clone())),
            message_read: Arc::new(PgMessageReadModel::new(pool.clone())),
            tenant_read: Arc::new(PgTenantReadModel::new(
                pool.clone(),
                consumers.progress("tenants"),
            )),
            catalogue_read: Arc::new(PgCatalogueReadModel::new(
                pool.clone(),
                consumers.progress("event_types"),
            )),
            directory: Arc::new(CachedSubscriptions::new(
                pool.clone(),
                consumers.progress("subscriptions"),
            )),
        }
    }
}

/// Sources, receiving on them, and the Siigo connector.
fn connectors(
    settings: &Settings,
    shared: &Shared,
    a: &Adapters,
    publish: Arc<PublishService>,
    database: &OpenDatabase,
    runs: Runs,
) -> anyhow::Result<(Arc<SourceService>, Arc<InboundService>, Arc<SiigoService>)> {
    let pool = &database.db.pool;
    let rejections = Arc::new(PgRejectionLog::new(pool.clone()));
    let sources = Arc::new(
        SourceService::new(
            shared.clone(),
            a.sources.clone(),
            Arc::new(PgSourceReadModel::new(pool.clone(), SOURCES_TABLE)),
            rejections.clone(),
            SourceSettings {
                public_url: settings
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", settings.listen)),
                rotation_overlap: chrono::Duration::from_std(settings.secret_rotation_overlap)
                    .unwrap_or_else(|_| chrono::Duration::days(1)),
            },
        )
        .with_locks(Arc::new(PgWriteLocks::new(pool.clone()))),
    );
    let inbound = Arc::new(InboundService::new(
        shared.clone(),
        a.sources.clone(),
        a.inbound.clone(),
        Arc::new(a.log.clone()),
        publish,
        a.tenant_read.clone(),
        rejections,
    ));
    // The operator's command line may reach a sandbox on this machine, and
    // so may the server when the operator points HOOKLINE_SIIGO_URL at one.
    let mut allow = settings.allow_private_targets.clone();
    let local_siigo = url::Url::parse(&settings.siigo_url)
        .map(|u| u.scheme() == "http")
        .unwrap_or(false);
    if runs != Runs::Everything || local_siigo {
        let listed = allow
            .nets()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        allow =
            hookline_domain::AllowList::parse(&format!("{},127.0.0.0/8,::1/128", listed.join(",")))
                .unwrap_or(allow);
    }
    let client = SiigoClient::new(
        SiigoSettings {
            allow,
            ..SiigoSettings::default()
        },
        Some((pool.clone(), shared.cipher.clone())),
    )
    .context("building the Siigo client")?;
    let siigo = Arc::new(SiigoService::new(
        shared.clone(),
        Arc::new(client),
        a.upstream.clone(),
        Arc::new(PgUpstreamReadModel::new(pool.clone(), UPSTREAM_TABLE)),
        sources.clone(),
    ));
    Ok((sources, inbound, siigo))
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
        let consumers = Consumers::new(database, runs, settings.delivery_row_hold, shutdown);
        let (cipher, signer) = cipher(settings, runs)?;
        let shared = Shared {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(SystemEntropy),
            cipher,
            log: Arc::new(PgEventLog::new(database.db.pool.clone())),
            waiter: Arc::new(consumers.projections.clone()),
            consistency_timeout: settings.consistency_timeout,
        };
        let a = Adapters::new(settings, database, &consumers);
        let registry = Arc::new(Registry::new(settings.metrics_per_tenant));
        let metrics = MetricsService::new(
            registry.clone(),
            Arc::new(Exposition::new(
                registry.clone(),
                PgGauges::new(database.db.pool.clone(), consumers.projections.kinds()),
                vec![
                    ("api", database.db.pool.clone()),
                    ("background", database.db.background.clone()),
                ],
            )),
        );
        let (batched, batchers) = GroupCommit::start(a.deliveries.clone(), 3);
        let locks = Arc::new(PgWriteLocks::new(database.db.pool.clone()));
        let subscriptions = Arc::new(
            SubscriptionService::new(
                shared.clone(),
                a.subscriptions.clone(),
                a.subscription_read.clone(),
                a.uids.clone(),
                SubscriptionSettings {
                    allow_list: settings.allow_private_targets.clone(),
                    rotation_overlap: chrono::Duration::from_std(settings.secret_rotation_overlap)
                        .unwrap_or_else(|_| chrono::Duration::days(1)),
                    max_per_tenant: settings.max_subscriptions_per_tenant,
                },
            )
            .with_flow(Arc::new(PgFlowControl::new(database.db.pool.clone())))
            .with_locks(locks.clone()),
        );
        let catalogue = Arc::new(
            CatalogueService::new(
                shared.clone(),
                a.catalogue.clone(),
                a.catalogue_read.clone(),
                a.tenant_read.clone(),
                Arc::new(JsonSchemaCompiler),
            )
            .with_locks(locks),
        );
        let pool = database.db.pool.clone();
        let operators = Arc::new(OperatorService::new(shared.clone(), a.operators.clone()));
        let portal = Arc::new(PortalService::new(
            shared.clone(),
            Arc::new(PgAggregateStore::<PortalLink>::new(a.log.clone(), ())),
            signer,
            a.subscription_read.clone(),
            a.tenant_read.clone(),
            operators.clone(),
            settings.admin_token.as_ref().map(|t| t.expose()),
        ));
        let publish = Arc::new(
            PublishService::new(
                shared.clone(),
                catalogue.clone(),
                a.directory.clone(),
                Arc::new(batched),
                Arc::new(a.log.clone()),
                PublishSettings {
                    idempotency_ttl: settings.idempotency_ttl,
                },
            )
            .with_metrics(registry.clone())
            .with_backlog(Arc::new(PgBacklog::new(
                database.db.pool.clone(),
                settings.delivery_backlog_bound,
            ))),
        );
        let (sources, inbound, siigo) =
            connectors(settings, &shared, &a, publish.clone(), database, runs)?;
        let metrics = Arc::new(metrics.with_inbound(inbound.clone()));
        Ok(Self {
            finishing: tokio_util::task::TaskTracker::new(),
            portal,
            dashboard: Arc::new(DashboardService::new(Arc::new(PgDeliveryStats::new(
                pool.clone(),
            )))),
            allow_list: settings.allow_private_targets.clone(),
            siigo_url: settings.siigo_url.clone(),
            publish,
            sources,
            inbound,
            siigo,
            deliveries: Arc::new(DeliveryService::new(
                shared.clone(),
                a.deliveries,
                a.delivery_read.clone(),
                a.subscription_read,
            )),
            audit: Arc::new(AuditService::new(
                Arc::new(PgAuditLog::new(pool.clone())),
                Arc::new(PgLogArchive::new(database.db.options.clone())),
                a.delivery_read,
                shared.waiter.clone(),
                settings.consistency_timeout,
            )),
            tenants: Arc::new(TenantService::new(
                shared.clone(),
                a.tenants,
                a.tenant_read.clone(),
                subscriptions.clone(),
                a.uids.clone(),
            )),
            messages: Arc::new(MessageService::new(
                shared.clone(),
                a.message_read,
                Arc::new(PgMessageBodies::new(pool.clone())),
            )),
            operators,
            idempotency: Arc::new(IdempotencyService::new(
                Arc::new(PgIdempotentRequests::new(pool.clone())),
                shared.cipher.clone(),
                IdempotencySettings {
                    ttl: REQUEST_IDEMPOTENCY_TTL,
                    // A request is answered within the request timeout
                    // (twice that while it commits): a claim older than
                    // that was abandoned.
                    stale: settings.request_timeout * 3,
                    // Within the repeat's own timeout, so that it answers
                    // `409 request_in_progress`, not `408`.
                    wait: Duration::from_secs(5).min(settings.request_timeout / 2),
                },
            )),
            auth: Arc::new(Authenticator::new(
                a.tenant_read,
                shared.clock.clone(),
                shared.waiter.clone(),
                settings.consistency_timeout,
            )),
            health: Arc::new(HealthService::new(Arc::new(PgReadiness::new(
                pool.clone(),
                consumers.projections,
            )))),
            replay: Arc::new(ReplayService::new(Arc::new(PgRebuilder::new(pool)))),
            catalogue,
            subscriptions,
            metrics,
            registry,
            shared,
            subscription_store: a.subscriptions,
            directory: a.directory,
            background_log: PgLog::new(database.db.background.clone(), consumers.wakeups),
            due: consumers.due,
            runners: consumers.runners,
            listeners: consumers.listeners,
            batchers,
        })
    }

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
        // `serve` finishes the tenant deletions a killed process left
        // half-done; a worker does so before its first attempt.
        let Some(settings) = settings else {
            return Ok(tasks);
        };
        if settings.role.runs_workers() {
            tasks.push(self.start_worker(settings, shutdown)?);
            let controller = Arc::new(FlowController::new(
                self.shared.clone(),
                self.subscription_store.clone(),
                Arc::new(PgFlowControl::new(self.background_log.pool().clone())),
                settings.flow.clone(),
            ));
            tasks.push(tokio::spawn(controller.run(shutdown.clone())));
            let notifier = Arc::new(Notifier::new(
                self.shared.clone(),
                Arc::new(PgNoticeOutbox::new(self.background_log.pool().clone())),
                self.directory.clone(),
                self.publish.clone(),
                settings.flow.tick,
            ));
            tasks.push(tokio::spawn(notifier.run(shutdown.clone())));
        } else {
            let tenants = self.tenants.clone();
            tasks.push(tokio::spawn(
                async move { finish_deletions(&tenants).await },
            ));
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
        let queue: Arc<PgDueQueue> = Arc::new(PgDueQueue::new(self.background_log.pool().clone()));
        let recorder = Arc::new(
            OutcomeRecorder::new(
                self.shared.clone(),
                Arc::new(PgAggregateStore::<Delivery>::new(
                    self.background_log.clone(),
                    settings.retry_policy.clone(),
                )),
                self.subscription_store.clone(),
                settings.retry_policy.clone(),
                worker_id.clone(),
            )
            .with_metrics(self.registry.clone())
            .with_queue(queue.clone()),
        );
        let worker = Arc::new(Worker::new(
            self.shared.clone(),
            WorkerPorts {
                queue,
                feed: Arc::new(
                    PgDeliveryFeed::new(self.background_log.pool().clone())
                        .sharing_beginnings_with(self.background_log.clone()),
                ),
                bodies: Arc::new(PgMessageBodies::new(self.background_log.pool().clone())),
                sender: Arc::new(sender),
                directory: self.directory.clone(),
                recorder,
                flow: Arc::new(PgFlowControl::new(self.background_log.pool().clone())),
            },
            WorkerSettings {
                worker_id,
                concurrency: settings.worker_concurrency,
                lease: settings.worker_lease,
                claim_batch: 200,
                poll_interval: Duration::from_millis(250),
                user_agent: settings.webhook_user_agent.clone(),
            },
        ));
        // New deliveries are taken straight from the log: a commit of a
        // published message (here, or through LISTEN elsewhere) wakes the
        // worker as a due retry does. Every publish writes its message and
        // its deliveries together; outcomes write no message, so the
        // worker's own commits do not wake it.
        let mut deliveries = self.background_log.wakeups().of(Message::TYPE).subscribe();
        let due = self.due.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    changed = deliveries.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        due.bump();
                    }
                }
            }
        });
        // A tenant deletion a killed process left half-done is finished
        // before the first attempt: its subscriptions would otherwise
        // still deliver their retries until the cascade ends.
        let tenants = self.tenants.clone();
        let due = self.due.subscribe();
        let stop = shutdown.clone();
        Ok(tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => return,
                () = finish_deletions(&tenants) => {}
            }
            worker.run(stop, due).await;
        }))
    }

    /// The state the HTTP handlers share.
    pub fn state(&self, settings: &Settings) -> AppState {
        AppState::new(AppServices {
            finishing: self.finishing.clone(),
            subscriptions: self.subscriptions.clone(),
            publish: self.publish.clone(),
            catalogue: self.catalogue.clone(),
            deliveries: self.deliveries.clone(),
            audit: self.audit.clone(),
            tenants: self.tenants.clone(),
            auth: self.auth.clone(),
            health: self.health.clone(),
            messages: self.messages.clone(),
            operators: self.operators.clone(),
            idempotency: self.idempotency.clone(),
            sources: self.sources.clone(),
            inbound: self.inbound.clone(),
            siigo: self.siigo.clone(),
            allow_list: settings.allow_private_targets.clone(),
            siigo_url: settings.siigo_url.clone(),
            admin_token: settings.admin_token.clone(),
            svix_max_body_bytes: settings.svix_max_body_bytes,
            max_body_bytes: settings.max_body_bytes,
            portal: self.portal.clone(),
            dashboard: self.dashboard.clone(),
            clock: self.shared.clock.clone(),
            console: Arc::new(crate::console::Console::new(
                &crate::console::ConsoleSettings {
                    public_url: settings.public_url.clone(),
                    idle_timeout: settings.console_idle_timeout,
                    lifetime: settings.console_session_lifetime,
                },
            )),
            metrics: self.metrics.clone(),
            metrics_token: settings.metrics_token.clone(),
        })
    }
}

/// Finishes the tenant deletions a killed process left half-done; a
/// failure is logged (the next start tries again).
async fn finish_deletions(tenants: &TenantService) {
    if let Err(e) = tenants.finish_deletions().await {
        tracing::warn!(error = %e, "could not finish interrupted tenant deletions");
    }
}
