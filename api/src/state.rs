//! What handlers share: the application services, nothing of storage.

use hookline_application::audit::AuditService;
use hookline_application::catalogue::CatalogueService;
use hookline_application::connectors::SiigoService;
use hookline_application::dashboard::DashboardService;
use hookline_application::deliveries::{DeliveryService, PublishService};
use hookline_application::health::HealthService;
use hookline_application::idempotency::IdempotencyService;
use hookline_application::messages::MessageService;
use hookline_application::metrics::MetricsService;
use hookline_application::operators::OperatorService;
use hookline_application::portal::PortalService;
use hookline_application::ports::Clock;
use hookline_application::sources::{InboundService, SourceService};
use hookline_application::subscriptions::SubscriptionService;
use hookline_application::tenants::{Authenticator, TenantService};
use hookline_infrastructure::config::Secret;
use std::sync::Arc;

/// Cloned for every extractor and middleware of every request: one
/// reference count, however many services it holds.
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    pub fn new(services: AppServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;

    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The services and settings behind [`AppState`].
pub struct AppServices {
    /// Work that must run to its end after its request is gone: a keyed
    /// request past its point of no return, a Siigo provisioning. Shutdown
    /// waits for it (up to twice the request timeout).
    pub finishing: tokio_util::task::TaskTracker,
    pub subscriptions: Arc<SubscriptionService>,
    pub publish: Arc<PublishService>,
    pub catalogue: Arc<CatalogueService>,
    pub deliveries: Arc<DeliveryService>,
    pub audit: Arc<AuditService>,
    pub tenants: Arc<TenantService>,
    pub auth: Arc<Authenticator>,
    pub health: Arc<HealthService>,
    pub messages: Arc<MessageService>,
    pub operators: Arc<OperatorService>,
    pub idempotency: Arc<IdempotencyService>,
    pub sources: Arc<SourceService>,
    pub inbound: Arc<InboundService>,
    pub siigo: Arc<SiigoService>,
    /// Private ranges URLs given over the API may use.
    pub allow_list: hookline_domain::AllowList,
    /// `HOOKLINE_SIIGO_URL`: where Siigo is unless a request names a
    /// sandbox.
    pub siigo_url: String,
    pub admin_token: Option<Secret>,
    /// The request body limit of the Svix-compatible API.
    pub svix_max_body_bytes: usize,
    /// `HOOKLINE_MAX_BODY_BYTES`: the request body limit elsewhere.
    pub max_body_bytes: usize,
    pub portal: Arc<PortalService>,
    pub dashboard: Arc<DashboardService>,
    pub clock: Arc<dyn Clock>,
    /// The console's sessions and settings.
    pub console: Arc<crate::console::Console>,
    pub metrics: Arc<MetricsService>,
    /// `GET /metrics` asks for it when set (else: loopback clients only).
    pub metrics_token: Option<Secret>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AppServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppServices").finish_non_exhaustive()
    }
}
