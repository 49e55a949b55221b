//! The flow controller's decisions against in-memory ports: a failing
//! subscription's circuit opens and its queue is parked, a due probe is
//! released, a recovery closes the circuit, a long failure disables it.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::ports::{Failing, ProbeDue, Recovered as RecoveredSub};
use crate::testing::{t0, tenant, MemoryFlow, World};
use cqrs_es::Aggregate;
use hookline_domain::outcome::ErrorKind;
use hookline_domain::subscription::{FailureCause, Subscribe, SubscriptionStatus};
use hookline_domain::{
    AllowList, DeliveryId, EventFilter, Sealed, SecretHint, SignatureScheme, SubscriptionId,
    TargetUrl,
};
use uuid::Uuid;

fn sub() -> SubscriptionId {
    SubscriptionId::from_uuid(Uuid::from_u128(7))
}

fn delivery(n: u128) -> DeliveryId {
    DeliveryId::from_uuid(Uuid::from_u128(100 + n))
}

fn failing(n: u32) -> Failing {
    Failing {
        subscription_id: sub(),
        tenant_id: tenant(1),
        consecutive_failures: n,
        failing_since: t0(),
        last_failure: Some(FailureCause {
            delivery_id: delivery(1),
            error_kind: ErrorKind::HttpStatus,
            status_code: Some(503),
            message: "the receiver answered 503".into(),
            failed_at: t0(),
        }),
    }
}

async fn setup() -> (World, Arc<MemoryFlow>, FlowController) {
    let world = World::default();
    let store = world.store::<Subscription>(());
    store
        .execute(
            &sub().to_string(),
            SubscriptionCommand::Subscribe(Subscribe {
                subscription_id: sub(),
                tenant_id: tenant(1),
                url: TargetUrl::parse("https://a.example/h", &AllowList::default()).unwrap(),
                events: EventFilter::parse(&["*"]).unwrap(),
                header_names: vec![],
                headers: None,
                description: None,
                signature_scheme: SignatureScheme::default(),
                secret: Sealed {
                    alg: "plain".into(),
                    key_id: "k".into(),
                    nonce: String::new(),
                    ciphertext: "x".into(),
                },
                secret_hint: SecretHint::of("whsec_aaaaaaaaaaaaaaaaaaaaaaaa"),
                rate_limit: None,
                payload_format: Default::default(),
                channels: None,
                uid: None,
                metadata: Default::default(),
                at: t0(),
            }),
            &crate::testing::metadata(),
        )
        .await
        .unwrap();
    let flow = Arc::new(MemoryFlow::new(world.clock.clone()));
    let controller = FlowController::new(
        world.shared.clone(),
        store,
        flow.clone(),
        FlowSettings::default(),
    );
    (world, flow, controller)
}

fn state(world: &World) -> hookline_domain::subscription::SubscriptionState {
    let events = world.log.of(Subscription::TYPE);
    crate::fold::rebuild::<Subscription>(&events)
        .unwrap()
        .aggregate
        .state()
        .cloned()
        .unwrap()
}

fn kinds(world: &World) -> Vec<String> {
    world
        .log
        .of(Subscription::TYPE)
        .iter()
        .map(|e| e.event_type.clone())
        .collect()
}

#[tokio::test]
async fn a_failing_subscription_opens_probes_and_closes() {
    let (world, flow, controller) = setup().await;
    flow.failing.lock().unwrap().push(failing(10));
    let tick = controller.tick().await.unwrap();
    assert_eq!(tick.opened, 1);
    let circuit = state(&world).circuit.unwrap();
    assert_eq!(circuit.consecutive_failures, 10);
    assert_eq!(circuit.cause.status_code, Some(503));
    assert_eq!(circuit.next_probe_at, t0() + chrono::Duration::seconds(30));
    assert_eq!(
        *flow.parked.lock().unwrap(),
        vec![(sub(), t0() + chrono::Duration::seconds(30))]
    );
    let last = world.log.all().pop().unwrap();
    assert_eq!(last.meta().unwrap().actor, "system:flow");

    world.clock.advance(chrono::Duration::seconds(30));
    flow.probes.lock().unwrap().push(ProbeDue {
        subscription_id: sub(),
        tenant_id: tenant(1),
        probes: 0,
        delivery_id: delivery(2),
        due_at: t0(),
    });
    assert_eq!(controller.tick().await.unwrap().probed, 1);
    let circuit = state(&world).circuit.unwrap();
    assert_eq!(circuit.probe, Some(delivery(2)));
    // The second probe waits twice as long.
    let next = t0() + chrono::Duration::seconds(30 + 60);
    assert_eq!(circuit.next_probe_at, next);
    assert_eq!(
        *flow.released.lock().unwrap(),
        vec![(sub(), delivery(2), next)]
    );

    flow.recovered.lock().unwrap().push(RecoveredSub {
        subscription_id: sub(),
        tenant_id: tenant(1),
        delivery_id: Some(delivery(2)),
    });
    flow.still_open.lock().unwrap().push(sub());
    assert_eq!(controller.tick().await.unwrap().closed, 1);
    assert!(state(&world).circuit.is_none());
    assert_eq!(*flow.unparked.lock().unwrap(), vec![sub()]);
    // Until the read model shows the circuit closed, a worker may park its
    // deliveries again: the controller looks at every tick and releases
    // them once it does, then stops looking.
    assert!(flow.unparked_closed.lock().unwrap().is_empty());
    controller.tick().await.unwrap();
    assert_eq!(*flow.unparked_closed.lock().unwrap(), vec![(sub(), false)]);
    flow.still_open.lock().unwrap().clear();
    controller.tick().await.unwrap();
    controller.tick().await.unwrap();
    assert_eq!(
        *flow.unparked_closed.lock().unwrap(),
        vec![(sub(), false), (sub(), true)]
    );
    assert_eq!(
        kinds(&world),
        [
            "Subscribed",
            "EndpointCircuitOpened",
            "EndpointCircuitProbeReleased",
            "EndpointCircuitClosed"
        ]
    );
}

#[tokio::test]
async fn a_subscription_failing_too_long_is_disabled_with_the_reason() {
    let (world, flow, controller) = setup().await;
    flow.failing_since.lock().unwrap().push(failing(3));
    assert_eq!(controller.tick().await.unwrap().disabled, 1);
    let s = state(&world);
    assert_eq!(s.status, SubscriptionStatus::Disabled);
    assert_eq!(
        s.disabled_reason.as_deref(),
        Some("auto: failing since 2026-01-02T03:04:05Z")
    );
}

#[tokio::test]
async fn a_disabled_subscription_shows_no_open_circuit() {
    let (world, flow, controller) = setup().await;
    flow.failing.lock().unwrap().push(failing(10));
    assert_eq!(controller.tick().await.unwrap().opened, 1);
    world
        .store::<Subscription>(())
        .execute(
            &sub().to_string(),
            SubscriptionCommand::Disable(hookline_domain::subscription::DisableSubscription {
                tenant_id: tenant(1),
                reason: "auto: failing since …".into(),
                at: t0(),
            }),
            &crate::testing::metadata(),
        )
        .await
        .unwrap();
    let s = state(&world);
    assert_eq!(s.status, SubscriptionStatus::Disabled);
    assert!(s.circuit.is_some(), "the log keeps it until enabled");
    let view =
        crate::subscriptions::SubscriptionView::render(&s, world.shared.cipher.as_ref(), t0())
            .unwrap();
    assert!(view.circuit.is_none(), "no probe is due: not shown as open");
}

#[tokio::test]
async fn a_probe_held_back_by_retry_after_schedules_the_next_from_when_it_goes_out() {
    let (world, flow, controller) = setup().await;
    flow.failing.lock().unwrap().push(failing(10));
    assert_eq!(controller.tick().await.unwrap().opened, 1);
    world.clock.advance(chrono::Duration::seconds(30));
    // The oldest waiting delivery's receiver asked it to wait 20 s more.
    let held_until = t0() + chrono::Duration::seconds(50);
    flow.probes.lock().unwrap().push(ProbeDue {
        subscription_id: sub(),
        tenant_id: tenant(1),
        probes: 0,
        delivery_id: delivery(2),
        due_at: held_until,
    });
    assert_eq!(controller.tick().await.unwrap().probed, 1);
    let next = held_until + chrono::Duration::seconds(60);
    assert_eq!(state(&world).circuit.unwrap().next_probe_at, next);
    assert_eq!(
        *flow.released.lock().unwrap(),
        vec![(sub(), delivery(2), next)]
    );
}
