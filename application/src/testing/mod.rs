//! In-memory fakes of the ports, for unit tests of the services' decisions
//! without Postgres. The log is a vector; read models are folded from it on
//! demand (so they are never behind), and single commands run through
//! cqrs-es's `CqrsFramework` exactly as in production.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod doubles;
mod log;
mod read_models;
mod sources;

pub use doubles::*;
pub use log::*;
pub use read_models::*;
pub use sources::*;

use crate::metadata::EventMetadata;
use crate::shared::Shared;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::Aggregate;
use hookline_domain::TenantId;
use std::sync::Arc;
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

pub fn tenant(n: u128) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(n))
}

pub fn metadata() -> EventMetadata {
    EventMetadata {
        request_id: "req-test".into(),
        tenant_id: tenant(1),
        actor: "admin".into(),
        occurred_at: t0(),
        worker_id: None,
        triggered_by: None,
        chain: None,
    }
}

/// Everything a service needs, over one memory log.
pub struct World {
    pub clock: Arc<FixedClock>,
    pub log: Arc<MemoryLog>,
    pub shared: Shared,
}

impl Default for World {
    fn default() -> Self {
        let clock = Arc::new(FixedClock::default());
        let log = MemoryLog::with_clock(clock.clone());
        let shared = Shared {
            clock: clock.clone(),
            entropy: Arc::new(SeqEntropy::default()),
            cipher: Arc::new(PlainCipher),
            log: log.clone(),
            waiter: Arc::new(NoWait),
            consistency_timeout: std::time::Duration::from_millis(10),
        };
        Self { clock, log, shared }
    }
}

impl World {
    pub fn store<A: Aggregate>(&self, services: A::Services) -> Arc<MemoryStore<A>> {
        Arc::new(MemoryStore::new(self.log.clone(), services))
    }

    pub fn uids(&self) -> crate::uids::UidClaims {
        crate::uids::UidClaims::new(self.store(()))
    }

    pub fn subscriptions(&self) -> Arc<LogSubscriptions> {
        Arc::new(LogSubscriptions(self.log.clone()))
    }

    pub fn deliveries(&self) -> Arc<LogDeliveries> {
        Arc::new(LogDeliveries(self.log.clone()))
    }

    pub fn tenants(&self) -> Arc<LogTenants> {
        Arc::new(LogTenants(self.log.clone()))
    }

    pub fn catalogue(&self) -> Arc<crate::catalogue::CatalogueService> {
        Arc::new(crate::catalogue::CatalogueService::new(
            self.shared.clone(),
            self.store(()),
            Arc::new(LogCatalogue(self.log.clone())),
            self.tenants(),
            Arc::new(TinySchemas),
        ))
    }

    pub fn ctx(&self, tenant_id: TenantId) -> crate::CommandContext {
        crate::CommandContext {
            request_id: crate::RequestId::from_client("req-1").unwrap(),
            tenant_id,
            actor: crate::Actor::Admin,
        }
    }
}
