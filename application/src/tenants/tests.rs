//! Tenant and key decisions against in-memory ports: keys authenticate
//! until revoked, a rotation's overlap, a deleted tenant's keys and
//! subscriptions.

use super::*;
use crate::subscriptions::{CreateSubscription, SubscriptionService, SubscriptionSettings};
use crate::testing::{NoWait, World};
use crate::AppError;
use hookline_domain::subscription::SubscriptionStatus;
use hookline_domain::tenant::TenantName;
use hookline_domain::{AllowList, EventFilter, TargetUrl, TenantId};
use std::sync::Arc;

struct Setup {
    world: World,
    tenants: TenantService,
    subscriptions: Arc<SubscriptionService>,
    auth: Authenticator,
}

fn setup() -> Setup {
    let world = World::default();
    let subscriptions = Arc::new(SubscriptionService::new(
        world.shared.clone(),
        world.store(()),
        world.subscriptions(),
        world.uids(),
        SubscriptionSettings {
            allow_list: AllowList::default(),
            rotation_overlap: chrono::Duration::hours(1),
            max_per_tenant: 1000,
        },
    ));
    let tenants = TenantService::new(
        world.shared.clone(),
        world.store(()),
        world.tenants(),
        subscriptions.clone(),
        world.uids(),
    );
    let auth = Authenticator::new(
        world.tenants(),
        world.clock.clone(),
        Arc::new(NoWait),
        std::time::Duration::ZERO,
    );
    Setup {
        world,
        tenants,
        subscriptions,
        auth,
    }
}

impl Setup {
    async fn tenant(&self) -> (TenantId, String) {
        let created = self
            .tenants
            .create(
                &self.world.ctx(TenantId::from_uuid(uuid::Uuid::nil())),
                TenantName::parse("Acme").unwrap(),
            )
            .await
            .unwrap()
            .value;
        (created.tenant.id, created.key.api_key)
    }

    async fn who(&self, key: &str) -> Option<TenantId> {
        self.auth
            .authenticate(key)
            .await
            .unwrap()
            .map(|p| p.tenant_id)
    }
}

#[tokio::test]
async fn a_key_works_until_it_is_revoked_and_only_its_digest_is_kept() {
    let s = setup();
    let (id, key) = s.tenant().await;
    assert_eq!(s.who(&key).await, Some(id));
    assert_eq!(s.who("hlk_unknown").await, None);
    assert_eq!(s.who("not-even-a-key").await, None);
    assert!(!format!("{:?}", s.world.log.all()).contains(&key));
    let second = s
        .tenants
        .issue_key(&s.world.ctx(id), id)
        .await
        .unwrap()
        .value;
    assert_eq!(s.who(&second.api_key).await, Some(id));
    let keys = s.tenants.keys(id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.active && k.hint.starts_with("hlk_…")));
    s.tenants
        .revoke_key(&s.world.ctx(id), id, second.id)
        .await
        .unwrap();
    assert_eq!(s.who(&second.api_key).await, None);
    assert_eq!(s.who(&key).await, Some(id), "the other key still works");
    let unknown = s
        .tenants
        .revoke_key(&s.world.ctx(id), id, uuid::Uuid::nil())
        .await;
    assert!(matches!(unknown, Err(AppError::NothingFound { .. })));
}

#[tokio::test]
async fn a_rotated_key_works_through_its_overlap_only() {
    let s = setup();
    let (id, key) = s.tenant().await;
    let caller = s.auth.authenticate(&key).await.unwrap().unwrap();
    let (new, until) = s
        .tenants
        .rotate_own_key(&s.world.ctx(id), caller, chrono::Duration::minutes(10))
        .await
        .unwrap()
        .value;
    assert_eq!(
        until,
        s.world.shared.clock.now() + chrono::Duration::minutes(10)
    );
    assert_eq!(s.who(&key).await, Some(id), "within the overlap");
    assert_eq!(s.who(&new.api_key).await, Some(id));
    s.world.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(s.who(&key).await, None, "after the overlap");
    assert_eq!(s.who(&new.api_key).await, Some(id));
    let too_long = s
        .tenants
        .rotate_own_key(&s.world.ctx(id), caller, chrono::Duration::days(8))
        .await;
    assert!(matches!(too_long, Err(AppError::Validation(_))));
}

#[tokio::test]
async fn a_deleted_tenant_loses_its_keys_and_its_subscriptions() {
    let s = setup();
    let (id, key) = s.tenant().await;
    let sub = s
        .subscriptions
        .create(
            &s.world.ctx(id),
            CreateSubscription::new(
                TargetUrl::parse("https://a.example/h", &AllowList::default()).unwrap(),
                EventFilter::parse(&["*"]).unwrap(),
            ),
        )
        .await
        .unwrap()
        .value;
    s.tenants.delete(&s.world.ctx(id), id).await.unwrap();
    assert_eq!(s.who(&key).await, None);
    let deleted = s
        .subscriptions
        .get(
            id,
            sub.id,
            crate::subscriptions::ReadSubscription {
                include_inactive: true,
                as_of: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(deleted.status, SubscriptionStatus::Deleted);
    assert_eq!(s.tenants.get(id).await.unwrap().status.as_str(), "deleted");
    // Deleting again is harmless; renaming is refused.
    s.tenants.delete(&s.world.ctx(id), id).await.unwrap();
    let rename = s
        .tenants
        .rename(&s.world.ctx(id), id, TenantName::parse("X").unwrap())
        .await;
    assert!(matches!(
        rename,
        Err(AppError::Conflict {
            code: "tenant_deleted",
            ..
        })
    ));
}

/// A tenants read model that misses a key the first time it is asked
/// (still applying it), and a waiter that times out.
struct Lagging {
    inner: Arc<dyn crate::ports::TenantReadModel>,
    missed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl crate::ports::TenantReadModel for Lagging {
    async fn get(
        &self,
        id: TenantId,
    ) -> Result<Option<hookline_domain::tenant::TenantState>, AppError> {
        self.inner.get(id).await
    }
    async fn list(
        &self,
        query: &crate::ports::TenantListQuery,
    ) -> Result<Vec<hookline_domain::tenant::TenantState>, AppError> {
        self.inner.list(query).await
    }
    async fn find_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<crate::ports::ApiKeyRecord>, AppError> {
        if !self.missed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(None);
        }
        self.inner.find_key(key_hash).await
    }
    fn version(&self) -> u64 {
        u64::from(self.missed.load(std::sync::atomic::Ordering::SeqCst))
    }
}

struct TimesOut;

#[async_trait::async_trait]
impl crate::ports::ProjectionWaiter for TimesOut {
    async fn wait_for(
        &self,
        _: &str,
        _: crate::ports::LogPosition,
        _: std::time::Duration,
    ) -> bool {
        false
    }
    async fn wait_caught_up(&self, _: &str, _: std::time::Duration) -> bool {
        false
    }
}

#[tokio::test]
async fn a_key_the_read_model_applies_while_the_wait_times_out_is_known() {
    let s = setup();
    let (tenant, key) = s.tenant().await;
    let auth = Authenticator::new(
        Arc::new(Lagging {
            inner: s.world.tenants(),
            missed: std::sync::atomic::AtomicBool::new(false),
        }),
        s.world.clock.clone(),
        Arc::new(TimesOut),
        std::time::Duration::ZERO,
    );
    let caller = auth.authenticate(&key).await.unwrap();
    assert_eq!(caller.map(|p| p.tenant_id), Some(tenant));
}

/// A process killed between a tenant's `TenantDeleted` and the deletion of
/// its subscriptions left them active; `serve` finishes it at its start.
#[tokio::test]
async fn a_deletion_left_half_done_is_finished() {
    use crate::ports::Clock as _;
    use hookline_domain::tenant::{DeleteTenant, Tenant, TenantCommand};
    let s = setup();
    let (id, _) = s.tenant().await;
    let (other, _) = s.tenant().await;
    let create = |tenant: TenantId| {
        let s = &s;
        async move {
            s.subscriptions
                .create(
                    &s.world.ctx(tenant),
                    CreateSubscription::new(
                        TargetUrl::parse("https://a.example/h", &AllowList::default()).unwrap(),
                        EventFilter::parse(&["*"]).unwrap(),
                    ),
                )
                .await
                .unwrap()
                .value
        }
    };
    let sub = create(id).await;
    let kept = create(other).await;
    // The tenant's deletion is recorded; its cascade never ran.
    let store = s.world.store::<Tenant>(());
    let at = s.world.clock.now();
    crate::commands::execute_with_retry(
        store.as_ref(),
        &id.to_string(),
        || TenantCommand::Delete(DeleteTenant { at }),
        &s.world.ctx(id).metadata(at),
    )
    .await
    .unwrap();
    let status = |tenant: TenantId, sub: hookline_domain::SubscriptionId| {
        let s = &s;
        async move {
            s.subscriptions
                .get(
                    tenant,
                    sub,
                    crate::subscriptions::ReadSubscription {
                        include_inactive: true,
                        as_of: None,
                    },
                )
                .await
                .unwrap()
                .status
        }
    };
    assert_eq!(status(id, sub.id).await, SubscriptionStatus::Active);
    assert_eq!(s.tenants.finish_deletions().await.unwrap(), 1);
    assert_eq!(status(id, sub.id).await, SubscriptionStatus::Deleted);
    assert_eq!(
        status(other, kept.id).await,
        SubscriptionStatus::Active,
        "another tenant's stays"
    );
    assert_eq!(
        s.tenants.finish_deletions().await.unwrap(),
        0,
        "nothing left"
    );
}
