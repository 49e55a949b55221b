//! Publishing and manual retries decided against in-memory ports: which
//! subscriptions an event reaches, idempotent repeats and reuse, and when a
//! retry is refused.

use super::*;
use crate::subscriptions::{CreateSubscription, SubscriptionService, SubscriptionSettings};
use crate::testing::{tenant, World};
use crate::AppError;
use cqrs_es::Aggregate;
use hookline_domain::delivery::{Delivery, DeliveryEvent};
use hookline_domain::retry::RetryPolicy;
use hookline_domain::{AllowList, EventFilter, EventType, SubscriptionId};
use hookline_domain::{TargetUrl, TenantId};
use serde_json::value::RawValue;
use std::sync::Arc;

struct Setup {
    world: World,
    subscriptions: SubscriptionService,
    publish: PublishService,
    deliveries: DeliveryService,
    store: Arc<crate::testing::MemoryStore<Delivery>>,
}

fn setup() -> Setup {
    let world = World::default();
    let subscriptions = SubscriptionService::new(
        world.shared.clone(),
        world.store(()),
        world.subscriptions(),
        world.uids(),
        SubscriptionSettings {
            allow_list: AllowList::default(),
            rotation_overlap: chrono::Duration::hours(1),
            max_per_tenant: 1000,
        },
    );
    let store = world.store::<Delivery>(RetryPolicy::default());
    let publish = PublishService::new(
        world.shared.clone(),
        world.catalogue(),
        world.subscriptions(),
        store.clone(),
        world.log.clone(),
        PublishSettings {
            idempotency_ttl: std::time::Duration::from_secs(3600),
        },
    );
    let deliveries = DeliveryService::new(
        world.shared.clone(),
        store.clone(),
        world.deliveries(),
        world.subscriptions(),
    );
    Setup {
        world,
        subscriptions,
        publish,
        deliveries,
        store,
    }
}

impl Setup {
    async fn subscribe(&self, owner: TenantId, url: &str, events: &[&str]) -> SubscriptionId {
        let created = self
            .subscriptions
            .create(
                &self.world.ctx(owner),
                CreateSubscription::new(
                    TargetUrl::parse(url, &AllowList::default()).unwrap(),
                    EventFilter::parse(events).unwrap(),
                ),
            )
            .await
            .unwrap();
        created.value.id
    }

    async fn publish(
        &self,
        owner: TenantId,
        event: &str,
        data: &str,
        key: Option<&str>,
    ) -> Result<Published, AppError> {
        self.publish
            .publish(
                &self.world.ctx(owner),
                PublishEvent {
                    idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
                    ..PublishEvent::new(
                        EventType::parse(event, "event_type").unwrap(),
                        RawValue::from_string(data.to_string()).unwrap(),
                    )
                },
            )
            .await
            .map(|w| w.value)
    }

    fn enqueued(&self) -> Vec<DeliveryEvent> {
        self.world
            .log
            .of(Delivery::TYPE)
            .iter()
            .map(|e| crate::fold::parse::<Delivery>(e).unwrap())
            .filter(|e| matches!(e, DeliveryEvent::DeliveryEnqueued { .. }))
            .collect()
    }
}

#[tokio::test]
async fn an_event_reaches_the_tenants_matching_subscriptions_and_is_skipped_for_disabled_ones() {
    let s = setup();
    let (me, other) = (tenant(1), tenant(2));
    let wildcard = s.subscribe(me, "https://a.example/h", &["invoice.*"]).await;
    let exact = s
        .subscribe(me, "https://b.example/h", &["invoice.paid"])
        .await;
    let everything = s.subscribe(me, "https://c.example/h", &["*"]).await;
    s.subscribe(me, "https://d.example/h", &["payment.*"]).await;
    let disabled = s.subscribe(me, "https://e.example/h", &["*"]).await;
    s.subscriptions
        .disable(&s.world.ctx(me), disabled, "paused".into())
        .await
        .unwrap();
    s.subscribe(other, "https://f.example/h", &["*"]).await;

    let published = s
        .publish(me, "invoice.paid", r#"{"number": "F-1"}"#, None)
        .await
        .unwrap();
    let mut reached: Vec<SubscriptionId> = published
        .deliveries
        .iter()
        .filter(|d| !d.skipped)
        .map(|d| d.subscription_id)
        .collect();
    reached.sort();
    let mut expected = vec![wildcard, exact, everything];
    expected.sort();
    assert_eq!(reached, expected);
    // The disabled one's delivery is recorded, skipped.
    let skipped: Vec<SubscriptionId> = published
        .deliveries
        .iter()
        .filter(|d| d.skipped)
        .map(|d| d.subscription_id)
        .collect();
    assert_eq!(skipped, vec![disabled]);
    assert!(s
        .world
        .log
        .of(Delivery::TYPE)
        .iter()
        .any(|e| e.event_type == "DeliverySkipped"));
    // One body for all, stored once in the message the deliveries name.
    let enqueued = s.enqueued();
    assert_eq!(enqueued.len(), 4);
    assert!(enqueued.iter().all(|e| matches!(
        e,
        DeliveryEvent::DeliveryEnqueued { body: None, event_id, .. } if *event_id == published.event_id
    )));
    let messages = s.world.log.of(hookline_domain::message::Message::TYPE);
    assert_eq!(messages.len(), 1);
    let hookline_domain::message::MessageEvent::MessagePublished { body, .. } =
        crate::fold::parse::<hookline_domain::message::Message>(&messages[0]).unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["event"], "invoice.paid");
    assert_eq!(body["data"]["number"], "F-1");
    assert_eq!(body["id"], published.event_id.to_string());
    // Every event records the request.
    for e in s
        .world
        .log
        .all()
        .into_iter()
        .filter(|e| e.aggregate_type != "Subscription")
    {
        let meta = e.meta().unwrap();
        assert_eq!((meta.request_id.as_str(), meta.tenant_id), ("req-1", me));
    }
}

#[tokio::test]
async fn nothing_matching_is_a_404_and_writes_nothing() {
    let s = setup();
    s.subscribe(tenant(1), "https://a.example/h", &["payment.*"])
        .await;
    let err = s
        .publish(tenant(1), "invoice.paid", "{}", None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::NothingFound {
            code: "no_subscriptions",
            ..
        }
    ));
    assert!(s.world.log.of(Delivery::TYPE).is_empty());
}

#[tokio::test]
async fn an_idempotency_key_answers_repeats_and_refuses_reuse() {
    let s = setup();
    s.subscribe(tenant(1), "https://a.example/h", &["*"]).await;
    let first = s
        .publish(tenant(1), "a.b", r#"{"x": 1}"#, Some("k1"))
        .await
        .unwrap();
    assert!(!first.replayed);
    // The same request again, formatted differently: the first answer.
    let again = s
        .publish(tenant(1), "a.b", r#"{ "x" : 1 }"#, Some("k1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.event_id, &again.deliveries),
        (first.event_id, &first.deliveries)
    );
    assert_eq!(s.enqueued().len(), 1, "nothing appended twice");
    // The key for another request: refused.
    let reused = s
        .publish(tenant(1), "a.b", r#"{"x": 2}"#, Some("k1"))
        .await
        .unwrap_err();
    assert!(matches!(
        reused,
        AppError::Conflict {
            code: "idempotency_key_reused",
            ..
        }
    ));
    // Keys are per tenant.
    s.subscribe(tenant(2), "https://b.example/h", &["*"]).await;
    assert!(
        !s.publish(tenant(2), "a.b", r#"{"x": 2}"#, Some("k1"))
            .await
            .unwrap()
            .replayed
    );
}

#[tokio::test]
async fn manual_retries_are_refused_when_they_could_send_twice_or_reach_nobody() {
    let s = setup();
    let me = tenant(1);
    let sub = s.subscribe(me, "https://a.example/h", &["*"]).await;
    let published = s.publish(me, "a.b", "{}", None).await.unwrap();
    let id = published.deliveries[0].id;
    let ctx = s.world.ctx(me);
    // Just enqueued: its first attempt is due.
    let due = s.deliveries.retry(&ctx, id).await.unwrap_err();
    assert!(
        matches!(
            due,
            AppError::Conflict {
                code: "attempt_due",
                ..
            }
        ),
        "{due:?}"
    );
    // Another tenant's delivery does not exist for us.
    let theirs = s.deliveries.retry(&s.world.ctx(tenant(2)), id).await;
    assert!(matches!(theirs, Err(AppError::NotFound { .. })));
    // Disabled subscription: refused, nothing appended.
    s.subscriptions
        .disable(&ctx, sub, "paused".into())
        .await
        .unwrap();
    let before = s.world.log.of(Delivery::TYPE).len();
    let inactive = s.deliveries.retry(&ctx, id).await.unwrap_err();
    assert!(matches!(
        inactive,
        AppError::Conflict {
            code: "subscription_inactive",
            ..
        }
    ));
    assert_eq!(s.world.log.of(Delivery::TYPE).len(), before);
    s.subscriptions.delete(&ctx, sub).await.unwrap();
    let deleted = s.deliveries.retry(&ctx, id).await.unwrap_err();
    assert!(matches!(
        deleted,
        AppError::Conflict {
            code: "subscription_deleted",
            ..
        }
    ));
    assert_eq!(s.store.appends(), 1, "only the publish appended");
}

/// Metrics that remember each publish.
#[derive(Default)]
struct CountedPublishes(std::sync::Mutex<Vec<(TenantId, usize, usize)>>);

impl crate::ports::Metrics for CountedPublishes {
    fn published(&self, tenant: TenantId, deliveries: usize, skipped: usize) {
        self.0.lock().unwrap().push((tenant, deliveries, skipped));
    }
}

#[tokio::test]
async fn each_publish_is_counted_once_with_its_deliveries_but_not_its_repeats() {
    let s = setup();
    let counted = Arc::new(CountedPublishes::default());
    let publish = PublishService::new(
        s.world.shared.clone(),
        s.world.catalogue(),
        s.world.subscriptions(),
        s.store.clone(),
        s.world.log.clone(),
        PublishSettings {
            idempotency_ttl: std::time::Duration::from_secs(3600),
        },
    )
    .with_metrics(counted.clone());
    let me = tenant(1);
    s.subscribe(me, "https://a.example/h", &["*"]).await;
    let disabled = s.subscribe(me, "https://b.example/h", &["*"]).await;
    s.subscriptions
        .disable(&s.world.ctx(me), disabled, "paused".into())
        .await
        .unwrap();
    let event = |key: Option<&str>| PublishEvent {
        idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
        ..PublishEvent::new(
            EventType::parse("invoice.paid", "event_type").unwrap(),
            RawValue::from_string("{}".into()).unwrap(),
        )
    };
    publish
        .publish(&s.world.ctx(me), event(Some("k1")))
        .await
        .unwrap();
    // The same key again answers the first result: nothing new counted.
    let again = publish
        .publish(&s.world.ctx(me), event(Some("k1")))
        .await
        .unwrap();
    assert!(again.value.replayed);
    // Nothing matches another tenant's event: refused, not counted.
    assert!(publish
        .publish(&s.world.ctx(tenant(2)), event(None))
        .await
        .is_err());
    assert_eq!(*counted.0.lock().unwrap(), vec![(me, 2, 1)]);
}
