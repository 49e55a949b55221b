//! Sources and receiving decided against in-memory ports: what a verified
//! webhook records and publishes (in one append), retries, refusals and
//! the rotation overlap.

use super::*;
use crate::deliveries::{PublishService, PublishSettings};
use crate::ports::AggregateStore;
use crate::subscriptions::{CreateSubscription, SubscriptionService, SubscriptionSettings};
use crate::testing::{tenant, LogSources, MemoryRejections, MemoryStore, World};
use crate::{Actor, CommandContext, RequestId};
use cqrs_es::Aggregate;
use hookline_domain::delivery::Delivery;
use hookline_domain::inbound::Inbound;
use hookline_domain::message::Message;
use hookline_domain::retry::RetryPolicy;
use hookline_domain::signature::{SignatureScheme, SigningKey};
use hookline_domain::source::{EventTypeRule, Source, SourceKind, SourceName};
use hookline_domain::tenant::{CreateTenant, Tenant, TenantCommand, TenantName};
use hookline_domain::{AllowList, EventFilter, SigningSecret, SourceId, TargetUrl, TenantId};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Setup {
    world: World,
    subscriptions: SubscriptionService,
    sources: SourceService,
    inbound: InboundService,
    rejections: Arc<MemoryRejections>,
    inbound_store: Arc<MemoryStore<Inbound>>,
}

async fn setup() -> Setup {
    let world = World::default();
    let tenants = world.store::<Tenant>(());
    tenants
        .execute(
            &tenant(1).to_string(),
            TenantCommand::Create(CreateTenant {
                tenant_id: tenant(1),
                name: TenantName::parse("acme").unwrap(),
                first_key: None,
                uid: None,
                metadata: Default::default(),
                at: crate::testing::t0(),
            }),
            &crate::testing::metadata(),
        )
        .await
        .unwrap();
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
    let publish = Arc::new(PublishService::new(
        world.shared.clone(),
        world.catalogue(),
        world.subscriptions(),
        world.store::<Delivery>(RetryPolicy::default()),
        world.log.clone(),
        PublishSettings {
            idempotency_ttl: std::time::Duration::from_secs(3600),
        },
    ));
    let rejections = Arc::new(MemoryRejections::default());
    let source_store = world.store::<Source>(());
    let sources = SourceService::new(
        world.shared.clone(),
        source_store.clone(),
        Arc::new(LogSources(world.log.clone())),
        rejections.clone(),
        SourceSettings {
            public_url: "https://hooks.example".into(),
            rotation_overlap: chrono::Duration::hours(1),
        },
    );
    let inbound_store = world.store::<Inbound>(());
    let inbound = InboundService::new(
        world.shared.clone(),
        source_store,
        inbound_store.clone(),
        world.log.clone(),
        publish,
        world.tenants(),
        rejections.clone(),
    );
    Setup {
        world,
        subscriptions,
        sources,
        inbound,
        rejections,
        inbound_store,
    }
}

impl Setup {
    fn ctx(&self) -> CommandContext {
        self.world.ctx(tenant(1))
    }

    async fn subscribe(&self, owner: TenantId, url: &str, events: &[&str]) {
        self.subscriptions
            .create(
                &self.world.ctx(owner),
                CreateSubscription::new(
                    TargetUrl::parse(url, &AllowList::default()).unwrap(),
                    EventFilter::parse(events).unwrap(),
                ),
            )
            .await
            .unwrap();
    }

    async fn inflow_source(&self) -> SourceView {
        self.sources
            .create(
                &self.ctx(),
                NewSource {
                    name: SourceName::parse("InFlow").unwrap(),
                    kind: SourceKind::Inflow,
                    secret: None,
                    header_name: None,
                    event_type: None,
                    data: None,
                    idempotency: None,
                },
            )
            .await
            .unwrap()
            .value
    }

    async fn send(
        &self,
        source: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<InboundAccepted, InboundError> {
        self.inbound
            .receive(InboundRequest {
                source_id: source.to_string(),
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
                body: body.as_bytes().to_vec(),
                remote_addr: Some("127.0.0.1:5000".into()),
                request_id: RequestId::from_client("req-in").unwrap(),
            })
            .await
    }
}

fn inflow_sign(secret: &str, body: &str) -> String {
    SigningKey::new(
        SignatureScheme::HmacSha256Base64,
        &SigningSecret::parse(secret).unwrap(),
    )
    .sign("", 0, body.as_bytes())
}

const BODY: &str = r#"{"event":"salesOrder.updated","data":{"salesOrderId":"so-1"},"timestamp":"2025-10-28T12:00:00Z"}"#;

fn refused(result: Result<InboundAccepted, InboundError>) -> InboundRefusal {
    match result {
        Err(InboundError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_verified_webhook_is_recorded_and_published_in_one_append() {
    let s = setup().await;
    s.subscribe(tenant(1), "https://a.example/h", &["salesOrder.*"])
        .await;
    s.subscribe(tenant(1), "https://b.example/h", &["*"]).await;
    s.subscribe(tenant(2), "https://c.example/h", &["*"]).await;
    let source = s.inflow_source().await;
    assert!(source.ingest_url.starts_with("https://hooks.example/in/"));
    assert_eq!(source.event_type, "/event");
    assert_eq!(source.data, "/data");

    let appends = s.inbound_store.appends();
    let sig = inflow_sign(&source.secret, BODY);
    let accepted = s
        .send(
            &source.id.to_string(),
            &[
                ("x-inflow-hmac-sha256", &sig),
                ("content-type", "application/json"),
            ],
            BODY,
        )
        .await
        .unwrap();
    assert_eq!(accepted.deliveries, 2);
    assert!(!accepted.duplicate);
    assert_eq!(s.inbound_store.appends(), appends + 1, "one transaction");

    let inbound = s.world.log.of(Inbound::TYPE);
    assert_eq!(inbound.len(), 1);
    let payload = inbound[0].payload.to_value();
    assert_eq!(payload["body"], BODY, "the raw body, exactly");
    assert_eq!(payload["event_type"], "salesOrder.updated");
    assert_eq!(payload["headers"]["content-type"], "application/json");
    assert!(payload["headers"].get("x-inflow-hmac-sha256").is_none());
    assert_eq!(
        payload["event_id"].as_str().unwrap(),
        accepted.event_id.unwrap().to_string()
    );
    let meta = inbound[0].meta().unwrap();
    assert_eq!(meta.actor, format!("source:{}", source.id));
    assert_eq!(meta.request_id, "req-in");
    let message = &s.world.log.of(Message::TYPE)[0];
    let body: serde_json::Value =
        serde_json::from_str(&message.payload.str_field("body").unwrap()).unwrap();
    assert_eq!(body["event"], "salesOrder.updated");
    assert_eq!(body["data"], serde_json::json!({"salesOrderId": "so-1"}));
    assert_eq!(s.world.log.of(Delivery::TYPE).len(), 2);
    assert_eq!(message.meta().unwrap().request_id, "req-in");

    // The provider's retry: the same answer, nothing new.
    let again = s
        .send(
            &source.id.to_string(),
            &[("x-inflow-hmac-sha256", &sig)],
            BODY,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.inbound_id, accepted.inbound_id);
    assert_eq!(s.world.log.of(Inbound::TYPE).len(), 1);
    assert_eq!(s.world.log.of(Delivery::TYPE).len(), 2);
    assert_eq!(s.inbound.stats().duplicates, 1);
    assert_eq!(s.inbound.stats().accepted, 1);
}

#[tokio::test]
async fn refusals_are_recorded_and_never_events() {
    let s = setup().await;
    s.subscribe(tenant(1), "https://a.example/h", &["*"]).await;
    let source = s.inflow_source().await;
    let id = source.id.to_string();
    let before = s.world.log.all().len();

    let bad = refused(
        s.send(
            &id,
            &[("x-inflow-hmac-sha256", &inflow_sign("another-secret", BODY))],
            BODY,
        )
        .await,
    );
    assert_eq!(
        (bad.status, bad.code),
        (RefusalStatus::Unauthorized, "signature_invalid")
    );
    let missing = refused(s.send(&id, &[], BODY).await);
    assert_eq!(missing.code, "signature_missing");
    let garbled = refused(s.send(&id, &[("x-inflow-hmac-sha256", "%%%")], BODY).await);
    assert_eq!(garbled.code, "signature_malformed");

    let not_json = "not json";
    let sig = inflow_sign(&source.secret, not_json);
    let r = refused(
        s.send(&id, &[("x-inflow-hmac-sha256", &sig)], not_json)
            .await,
    );
    assert_eq!(
        (r.status, r.code),
        (RefusalStatus::BadRequest, "invalid_body")
    );

    // A compressed body is refused for what it is, even when signed.
    let sig = inflow_sign(&source.secret, BODY);
    let gzip = refused(
        s.send(
            &id,
            &[("x-inflow-hmac-sha256", &sig), ("content-encoding", "gzip")],
            BODY,
        )
        .await,
    );
    assert_eq!(
        (gzip.status, gzip.code),
        (
            RefusalStatus::UnsupportedMediaType,
            "unsupported_media_type"
        )
    );
    assert!(gzip.detail.contains("gzip"), "{}", gzip.detail);

    let flat = r#"{"eventType":"SalesOrderUpdatedV1","salesOrderId":"1"}"#;
    let sig = inflow_sign(&source.secret, flat);
    let r = refused(s.send(&id, &[("x-inflow-hmac-sha256", &sig)], flat).await);
    assert_eq!(
        (r.status, r.code),
        (RefusalStatus::Unprocessable, "event_type_unresolved")
    );

    let unknown = refused(
        s.send(
            &SourceId::from_uuid(uuid::Uuid::nil()).to_string(),
            &[],
            BODY,
        )
        .await,
    );
    assert_eq!(unknown.status, RefusalStatus::NotFound);
    let garbage = refused(s.send("../../etc", &[], BODY).await);
    assert_eq!(garbage.status, RefusalStatus::NotFound);

    assert_eq!(s.world.log.all().len(), before, "no event for a refusal");
    let recorded = s.rejections.0.lock().unwrap().clone();
    let reasons: Vec<&str> = recorded.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "signature_invalid",
            "signature_missing",
            "signature_malformed",
            "invalid_body",
            "unsupported_media_type",
            "event_type_unresolved"
        ]
    );
    assert!(recorded
        .iter()
        .all(|r| r.body_bytes > 0 && r.body_sha256.len() == 64));
    assert_eq!(recorded[0].remote_addr.as_deref(), Some("127.0.0.1:5000"));
    let page = s
        .sources
        .rejections(tenant(1), source.id, 2, None)
        .await
        .unwrap();
    assert_eq!(page.data[0].reason, "event_type_unresolved");
    assert!(page.next_cursor.is_some());
    assert_eq!(s.inbound.stats().refused["signature_invalid"], 1);
}

#[tokio::test]
async fn unmatched_events_are_recorded_without_a_publish_and_deleted_sources_are_gone() {
    let s = setup().await;
    let source = s
        .sources
        .create(
            &s.ctx(),
            NewSource {
                name: SourceName::parse("hooks").unwrap(),
                kind: SourceKind::HeaderSecret,
                secret: Some(SigningSecret::parse("a-shared-secret").unwrap()),
                header_name: Some(
                    hookline_domain::source::HeaderName::parse("X-Secret", "h").unwrap(),
                ),
                event_type: Some(EventTypeRule::parse("stock.changed").unwrap()),
                data: None,
                idempotency: None,
            },
        )
        .await
        .unwrap()
        .value;
    let id = source.id.to_string();
    let ok = s
        .send(&id, &[("x-secret", "a-shared-secret")], r#"{"sku": "A"}"#)
        .await
        .unwrap();
    assert_eq!((ok.event_id, ok.deliveries), (None, 0));
    let recorded = s.world.log.of(Inbound::TYPE);
    assert_eq!(
        recorded[0].payload.to_value()["event_type"],
        "stock.changed"
    );
    assert!(s.world.log.of(Message::TYPE).is_empty());

    s.sources.delete(&s.ctx(), source.id).await.unwrap();
    let gone = refused(
        s.send(&id, &[("x-secret", "a-shared-secret")], r#"{"sku": "B"}"#)
            .await,
    );
    assert_eq!(
        (gone.status, gone.code),
        (RefusalStatus::Gone, "source_deleted")
    );
}

#[tokio::test]
async fn a_rotated_out_secret_works_until_its_overlap_ends() {
    let s = setup().await;
    s.subscribe(tenant(1), "https://a.example/h", &["*"]).await;
    let source = s.inflow_source().await;
    let id = source.id.to_string();
    let old = source.secret.clone();
    let rotated = s
        .sources
        .rotate_secret(&s.ctx(), source.id, None)
        .await
        .unwrap()
        .value;
    assert_ne!(rotated.secret, old);
    assert!(rotated.previous_secret_expires_at.is_some());
    let body = |n: u32| format!(r#"{{"event":"a.b","data":{{"n":{n}}}}}"#);
    s.send(
        &id,
        &[("x-inflow-hmac-sha256", &inflow_sign(&old, &body(1)))],
        &body(1),
    )
    .await
    .unwrap();
    s.send(
        &id,
        &[(
            "x-inflow-hmac-sha256",
            &inflow_sign(&rotated.secret, &body(2)),
        )],
        &body(2),
    )
    .await
    .unwrap();
    s.world.clock.advance(chrono::Duration::hours(2));
    let r = refused(
        s.send(
            &id,
            &[("x-inflow-hmac-sha256", &inflow_sign(&old, &body(3)))],
            &body(3),
        )
        .await,
    );
    assert_eq!(r.code, "signature_invalid");
    // Another tenant's source does not exist for it.
    let other = CommandContext {
        tenant_id: tenant(2),
        actor: Actor::Admin,
        request_id: RequestId::from_client("r").unwrap(),
    };
    assert!(s
        .sources
        .rotate_secret(&other, source.id, None)
        .await
        .is_err());
    assert!(s.sources.get(tenant(2), source.id, true).await.is_err());
}
