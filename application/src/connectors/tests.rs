//! Provisioning at Siigo decided against a fake Siigo: one subscription per
//! event, the record without credentials, `via_source`, undo on failure,
//! removal.

use super::*;
use crate::ports::{SiigoAccount, UpstreamFailure};
use crate::sources::{SourceService, SourceSettings};
use crate::testing::{tenant, FakeSiigo, LogSources, LogUpstream, MemoryRejections, World};
use cqrs_es::Aggregate;
use hookline_domain::source::Source;
use hookline_domain::upstream::{UpstreamStatus, UpstreamSubscription};
use std::collections::BTreeMap;
use std::sync::Arc;

fn account() -> SiigoAccount {
    SiigoAccount {
        base_url: "http://127.0.0.1:9".into(),
        username: "sandbox.user@example.com".into(),
        access_key: "sandbox-access-key".into(),
        client_id: "sandbox-client-id".into(),
        client_secret: "sandbox-client-secret".into(),
        partner_id: partner_id_for(None, "sandbox-client-id").unwrap(),
    }
}

fn service(world: &World, siigo: Arc<dyn crate::ports::SiigoApi>) -> SiigoService {
    let sources = Arc::new(SourceService::new(
        world.shared.clone(),
        world.store::<Source>(()),
        Arc::new(LogSources(world.log.clone())),
        Arc::new(MemoryRejections::default()),
        SourceSettings {
            public_url: "https://hooks.example".into(),
            rotation_overlap: chrono::Duration::hours(1),
        },
    ));
    SiigoService::new(
        world.shared.clone(),
        siigo,
        world.store::<UpstreamSubscription>(()),
        Arc::new(LogUpstream(world.log.clone())),
        sources,
    )
}

#[test]
fn topics_and_partner_ids() {
    assert_eq!(
        siigo_topic("products.create").unwrap(),
        "public.siigoapi.products.create"
    );
    assert_eq!(
        siigo_topic("public.siigoapi.products.stock.update").unwrap(),
        "public.siigoapi.products.stock.update"
    );
    assert!(siigo_topic("bad topic").is_err());
    assert!(siigo_topic("a..b").is_err());
    let events =
        SiigoEvents::parse_list(&["invoices.send, invoices.update,invoices.send".into()]).unwrap();
    assert_eq!(events.pairs().len(), 2);
    assert!(SiigoEvents::parse_list(&[" , ".into()]).is_err());
    assert_eq!(
        partner_id_for(None, "sandbox-client-id").unwrap(),
        DEFAULT_PARTNER_ID
    );
    assert_eq!(partner_id_for(None, "MyApp01").unwrap(), "MyApp01");
    assert!(partner_id_for(Some("my-app"), "x").is_err());
}

#[tokio::test]
async fn one_subscription_per_event_recorded_without_credentials() {
    let world = World::default();
    let siigo = Arc::new(FakeSiigo::default());
    let s = service(&world, siigo.clone());
    let created = s
        .provision(
            &world.ctx(tenant(1)),
            SiigoProvision {
                target: SiigoTarget::Url("https://erp.example/siigo".into()),
                events: SiigoEvents::parse_list(&["invoices.send,invoices.update".into()]).unwrap(),
                account: account(),
                description: Some("FX-Option Siigo sandbox".into()),
                headers: BTreeMap::from([("x-custom-secret".into(), "shared-secret".into())]),
            },
        )
        .await
        .unwrap()
        .value;
    assert_eq!(created.topics.len(), 2);
    assert_eq!(created.topics[1].upstream_id, "siigo-2");
    let asked = siigo.created.lock().unwrap().clone();
    assert_eq!(asked[0].topic, "public.siigoapi.invoices.send");
    assert_eq!(asked[0].headers["x-custom-secret"], "shared-secret");
    assert_eq!(asked[0].name.as_deref(), Some("FX-Option Siigo sandbox"));
    let log = serde_json::to_string(
        &world
            .log
            .of(UpstreamSubscription::TYPE)
            .iter()
            .map(|e| e.payload.to_value())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for secret in [
        "sandbox-access-key",
        "sandbox-client-secret",
        "shared-secret",
        "sandbox.user@example.com",
    ] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
    assert!(log.contains("UpstreamSubscriptionProvisioned"));

    s.remove(&world.ctx(tenant(1)), created.id).await.unwrap();
    assert_eq!(*siigo.deleted.lock().unwrap(), vec!["siigo-1", "siigo-2"]);
    let listed = s.list(tenant(1), true, Default::default()).await.unwrap();
    assert_eq!(listed.data[0].status, UpstreamStatus::Removed);
    assert!(s.remove(&world.ctx(tenant(1)), created.id).await.is_err());
    assert!(s.get(tenant(2), created.id).await.is_err());
}

#[tokio::test]
async fn via_source_creates_the_source_in_the_same_append_and_sends_its_secret() {
    let world = World::default();
    let siigo = Arc::new(FakeSiigo::default());
    let s = service(&world, siigo.clone());
    let created = s
        .provision(
            &world.ctx(tenant(1)),
            SiigoProvision {
                target: SiigoTarget::ViaSource,
                events: SiigoEvents::parse_list(&["products.create".into()]).unwrap(),
                account: account(),
                description: None,
                headers: BTreeMap::new(),
            },
        )
        .await
        .unwrap()
        .value;
    let source = created.source.clone().unwrap();
    assert_eq!(created.source_id, Some(source.id));
    assert_eq!(created.url, source.ingest_url);
    let asked = siigo.created.lock().unwrap().clone();
    assert_eq!(asked[0].url, source.ingest_url);
    assert_eq!(
        asked[0].headers[hookline_domain::source::DEFAULT_SECRET_HEADER],
        source.secret
    );
    assert_eq!(source.event_type, "/topic");
    assert_eq!(world.log.of(Source::TYPE).len(), 1);
}

#[tokio::test]
async fn a_failure_undoes_what_was_made_and_records_nothing() {
    let world = World::default();
    let siigo = Arc::new(FakeSiigo::default());
    let s = service(&world, siigo.clone());
    let input = SiigoProvision {
        target: SiigoTarget::ViaSource,
        events: SiigoEvents::parse_list(&["products.create,products.update".into()]).unwrap(),
        account: account(),
        description: None,
        headers: BTreeMap::new(),
    };
    // The second subscription fails.
    let s2 = {
        struct SecondFails(Arc<FakeSiigo>, std::sync::atomic::AtomicUsize);
        #[async_trait::async_trait]
        impl crate::ports::SiigoApi for SecondFails {
            async fn create_webhook(
                &self,
                a: &SiigoAccount,
                r: &crate::ports::SiigoWebhookRequest,
            ) -> Result<crate::ports::SiigoWebhook, UpstreamFailure> {
                if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    return Err(UpstreamFailure::Refused {
                        status: 400,
                        detail: "invalid_reference".into(),
                    });
                }
                self.0.create_webhook(a, r).await
            }
            async fn delete_webhook(
                &self,
                a: &SiigoAccount,
                id: &str,
            ) -> Result<(), UpstreamFailure> {
                self.0.delete_webhook(a, id).await
            }
        }
        let _ = s;
        service(
            &world,
            Arc::new(SecondFails(siigo.clone(), Default::default())),
        )
    };
    let err = s2
        .provision(&world.ctx(tenant(1)), input)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            crate::AppError::Upstream {
                unavailable: false,
                code: "upstream_refused",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(*siigo.deleted.lock().unwrap(), vec!["siigo-1"]);
    assert!(world.log.all().is_empty(), "nothing recorded");
}

#[tokio::test]
async fn what_a_failed_provisioning_could_not_undo_is_named_in_the_answer() {
    struct Stubborn(Arc<FakeSiigo>);
    #[async_trait::async_trait]
    impl crate::ports::SiigoApi for Stubborn {
        async fn create_webhook(
            &self,
            a: &SiigoAccount,
            r: &crate::ports::SiigoWebhookRequest,
        ) -> Result<crate::ports::SiigoWebhook, UpstreamFailure> {
            if r.topic.ends_with("update") {
                return Err(UpstreamFailure::Refused {
                    status: 400,
                    detail: "invalid_reference".into(),
                });
            }
            self.0.create_webhook(a, r).await
        }
        async fn delete_webhook(&self, _: &SiigoAccount, _: &str) -> Result<(), UpstreamFailure> {
            Err(UpstreamFailure::Unavailable("connection reset".into()))
        }
    }
    let world = World::default();
    let siigo = Arc::new(FakeSiigo::default());
    let s = service(&world, Arc::new(Stubborn(siigo.clone())));
    let input = SiigoProvision {
        target: SiigoTarget::Url("https://erp.example/siigo".into()),
        events: SiigoEvents::parse_list(&["products.create,products.update".into()]).unwrap(),
        account: account(),
        description: None,
        headers: BTreeMap::new(),
    };
    let err = s.provision(&world.ctx(tenant(1)), input).await.unwrap_err();
    let crate::AppError::Upstream { code, detail, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*code, "upstream_refused");
    assert!(detail.contains("invalid_reference"), "{detail}");
    assert!(
        detail.contains("1 subscription(s) made at Siigo before the failure could not be removed")
            && detail.contains("siigo-1"),
        "{detail}"
    );
    assert!(world.log.all().is_empty(), "nothing recorded");
}
