//! What handlers share.

use hookline_application::audit::AuditService;
use hookline_application::deliveries::{DeliveryService, PublishService};
use hookline_application::subscriptions::SubscriptionService;
use hookline_application::tenants::TenantService;
use hookline_infrastructure::config::Secret;
use hookline_infrastructure::postgres::projections::Projections;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState {
    pub subscriptions: Arc<SubscriptionService>,
    pub publish: Arc<PublishService>,
    pub deliveries: Arc<DeliveryService>,
    pub audit: Arc<AuditService>,
    pub tenants: Arc<TenantService>,
    pub admin_token: Option<Secret>,
    pub pool: PgPool,
    pub projections: Projections,
}
