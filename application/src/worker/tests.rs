//! Attempt outcomes decided against in-memory ports: which events each
//! outcome records (retry, final failure, abandonment, 410), and the
//! worker's whole round from claim to recorded outcome.

use super::*;
use crate::ports::{AggregateStore, Batch, Change, SendOutcome, SendResult};
use crate::testing::{t0, tenant, MemoryQueue, ScriptedSender, World};
use chrono::Duration;
use cqrs_es::Aggregate;
use hookline_domain::delivery::{Delivery, DeliveryEvent, DeliveryStatus, EnqueueDelivery};
use hookline_domain::outcome::ErrorKind;
use hookline_domain::retry::RetryPolicy;
use hookline_domain::subscription::{
    Subscribe, Subscription, SubscriptionCommand, SubscriptionEvent,
};
use hookline_domain::{
    AllowList, DeliveryId, EventFilter, EventId, EventType, SecretHint, SignatureScheme,
    SigningSecret, SubscriptionId, TargetUrl,
};
use std::sync::Arc;
use uuid::Uuid;

fn policy() -> RetryPolicy {
    RetryPolicy {
        schedule_secs: vec![5, 60],
        max_retries: 2,
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

struct Setup {
    world: World,
    deliveries: Arc<crate::testing::MemoryStore<Delivery>>,
    subscriptions: Arc<crate::testing::MemoryStore<Subscription>>,
    recorder: Arc<OutcomeRecorder>,
    sub: SubscriptionId,
}

async fn setup() -> Setup {
    let world = World::default();
    let deliveries = world.store::<Delivery>(policy());
    let subscriptions = world.store::<Subscription>(());
    let sub = SubscriptionId::from_uuid(Uuid::from_u128(7));
    let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let sealed = world
        .shared
        .cipher
        .seal(
            secret.expose().as_bytes(),
            &crate::subscriptions::sealing_context(
                crate::subscriptions::SEALING_CONTEXT_SECRET,
                sub,
            ),
        )
        .unwrap();
    subscriptions
        .execute(
            &sub.to_string(),
            SubscriptionCommand::Subscribe(Subscribe {
                subscription_id: sub,
                tenant_id: tenant(1),
                url: TargetUrl::parse("https://a.example/h", &AllowList::default()).unwrap(),
                events: EventFilter::parse(&["*"]).unwrap(),
                header_names: vec![],
                headers: None,
                description: None,
                signature_scheme: SignatureScheme::default(),
                secret: sealed,
                secret_hint: SecretHint::of(secret.expose()),
                payload_format: Default::default(),
                channels: None,
                uid: None,
                metadata: Default::default(),
                rate_limit: None,
                at: t0(),
            }),
            &crate::testing::metadata(),
        )
        .await
        .unwrap();
    let recorder = Arc::new(OutcomeRecorder::new(
        world.shared.clone(),
        deliveries.clone(),
        subscriptions.clone(),
        policy(),
        "w1".into(),
    ));
    Setup {
        world,
        deliveries,
        subscriptions,
        recorder,
        sub,
    }
}

impl Setup {
    async fn enqueue(&self, n: u128) -> DueDelivery {
        let id = DeliveryId::from_uuid(Uuid::from_u128(100 + n));
        let event = Delivery::enqueue_new(EnqueueDelivery {
            delivery_id: id,
            tenant_id: tenant(1),
            subscription_id: self.sub,
            event_id: EventId::from_uuid(Uuid::from_u128(n)),
            event_type: EventType::parse("a.b", "e").unwrap(),
            url: "https://a.example/h".into(),
            at: t0(),
        });
        self.deliveries
            .append(
                Batch::of(vec![Change::<Delivery> {
                    aggregate_id: id.to_string(),
                    version: 0,
                    events: vec![event],
                    metadata: crate::testing::metadata(),
                }])
                .unwrap(),
                None,
            )
            .await
            .unwrap();
        DueDelivery {
            delivery_id: id,
            tenant_id: tenant(1),
            subscription_id: self.sub,
            event_id: EventId::from_uuid(Uuid::from_u128(n)),
            event_type: "a.b".into(),
            attempt: 1,
            body: Some(Arc::from("{}")),
            request_id: Some("req-pub".into()),
            triggered_by: None,
            span: None,
        }
    }

    fn attempted(&self, due: &DueDelivery, outcome: SendOutcome) -> Outcome {
        Outcome::Attempted {
            due: due.clone(),
            attempt_id: Uuid::from_u128(900 + u128::from(due.attempt)),
            url: "https://a.example/h".into(),
            result: SendResult {
                started_at: t0(),
                duration_ms: 10,
                outcome,
            },
            hold_until: None,
        }
    }

    fn events_of(&self, due: &DueDelivery) -> Vec<DeliveryEvent> {
        self.world
            .log
            .of(Delivery::TYPE)
            .iter()
            .filter(|e| e.aggregate_id == due.delivery_id.to_string())
            .map(|e| crate::fold::parse::<Delivery>(e).unwrap())
            .skip(1)
            .collect()
    }
}

fn status(code: u16) -> SendOutcome {
    SendOutcome::Response {
        status: code,
        retry_after_secs: None,
        excerpt: None,
    }
}

#[tokio::test]
async fn a_2xx_delivers_and_the_metadata_names_the_worker_and_the_request() {
    let s = setup().await;
    let due = s.enqueue(1).await;
    s.recorder
        .record(vec![s.attempted(&due, status(204))])
        .await;
    let events = s.events_of(&due);
    assert!(matches!(
        events.as_slice(),
        [DeliveryEvent::DeliverySucceeded {
            attempt: 1,
            status_code: 204,
            ..
        }]
    ));
    let stored = s.world.log.of(Delivery::TYPE);
    let meta = stored.last().unwrap().meta().unwrap();
    assert_eq!(meta.request_id, "req-pub");
    assert_eq!(meta.worker_id.as_deref(), Some("w1"));
    assert_eq!(meta.actor, "system:worker");
}

#[tokio::test]
async fn failures_are_retried_on_schedule_then_abandoned() {
    let s = setup().await;
    let mut due = s.enqueue(1).await;
    s.recorder
        .record(vec![s.attempted(&due, status(503))])
        .await;
    match s.events_of(&due).as_slice() {
        [DeliveryEvent::AttemptFailed {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(next),
            error_kind: ErrorKind::HttpStatus,
            ..
        }] => assert_eq!(
            *next,
            t0() + Duration::milliseconds(10) + Duration::seconds(5)
        ),
        other => panic!("{other:?}"),
    }
    due.attempt = 2;
    let timeout = SendOutcome::Failed {
        kind: ErrorKind::Timeout,
        message: "no answer".into(),
    };
    s.recorder
        .record(vec![s.attempted(&due, timeout.clone())])
        .await;
    due.attempt = 3;
    s.recorder.record(vec![s.attempted(&due, timeout)]).await;
    let events = s.events_of(&due);
    assert!(
        matches!(
            events.as_slice(),
            [
                DeliveryEvent::AttemptFailed { .. },
                DeliveryEvent::AttemptFailed {
                    status: DeliveryStatus::Pending,
                    ..
                },
                DeliveryEvent::AttemptFailed {
                    status: DeliveryStatus::Abandoned,
                    next_attempt_at: None,
                    ..
                },
                DeliveryEvent::DeliveryAbandoned { .. },
            ]
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_4xx_fails_for_good_and_a_410_also_disables_the_subscription() {
    let s = setup().await;
    let rejected = s.enqueue(1).await;
    let gone = s.enqueue(2).await;
    s.recorder
        .record(vec![
            s.attempted(&rejected, status(400)),
            s.attempted(&gone, status(410)),
        ])
        .await;
    assert!(matches!(
        s.events_of(&rejected).as_slice(),
        [DeliveryEvent::AttemptFailed {
            status: DeliveryStatus::Failed,
            endpoint_gone: false,
            ..
        }]
    ));
    assert!(matches!(
        s.events_of(&gone).as_slice(),
        [DeliveryEvent::AttemptFailed {
            status: DeliveryStatus::Failed,
            endpoint_gone: true,
            ..
        }]
    ));
    let subscription: Vec<SubscriptionEvent> = s
        .world
        .log
        .of(Subscription::TYPE)
        .iter()
        .map(|e| crate::fold::parse::<Subscription>(e).unwrap())
        .collect();
    assert!(matches!(
        subscription.last(),
        Some(SubscriptionEvent::SubscriptionDisabled { reason, .. }) if reason.contains("410")
    ));
    assert_eq!(s.subscriptions.executions(), 2, "subscribe, then disable");
}

#[tokio::test]
async fn stale_outcomes_are_dropped_and_conflicts_fall_back_to_single_commands() {
    let s = setup().await;
    let due = s.enqueue(1).await;
    // Recorded once; the same attempt reported again changes nothing.
    s.recorder
        .record(vec![s.attempted(&due, status(200))])
        .await;
    s.recorder
        .record(vec![s.attempted(&due, status(200))])
        .await;
    assert_eq!(s.events_of(&due).len(), 1);
    // A batch append that conflicts is retried one command at a time.
    let other = s.enqueue(2).await;
    s.deliveries.conflict_next(1);
    s.recorder
        .record(vec![s.attempted(&other, status(200))])
        .await;
    assert!(matches!(
        s.events_of(&other).as_slice(),
        [DeliveryEvent::DeliverySucceeded { .. }]
    ));
    // The subscription went away: abandoned.
    let gone = s.enqueue(3).await;
    s.recorder
        .record(vec![Outcome::Abandoned {
            due: gone.clone(),
            reason: "the subscription was deleted".into(),
        }])
        .await;
    assert!(matches!(
        s.events_of(&gone).as_slice(),
        [DeliveryEvent::DeliveryAbandoned { .. }]
    ));
    // The subscription is disabled: skipped, kept for a recovery.
    let skipped = s.enqueue(4).await;
    s.recorder
        .record(vec![Outcome::Skipped {
            due: skipped.clone(),
            reason: "the subscription is disabled".into(),
        }])
        .await;
    assert!(matches!(
        s.events_of(&skipped).as_slice(),
        [DeliveryEvent::DeliverySkipped { .. }]
    ));
}

#[tokio::test]
async fn the_worker_claims_signs_sends_and_records() {
    let s = setup().await;
    let queue = Arc::new(MemoryQueue::default());
    for n in 1..=3 {
        let due = s.enqueue(n).await;
        queue.due.lock().unwrap().push_back(due);
    }
    let sender = Arc::new(ScriptedSender::default());
    sender.answer(status(500));
    let worker = Arc::new(Worker::new(
        s.world.shared.clone(),
        WorkerPorts {
            queue: queue.clone(),
            feed: Arc::new(crate::ports::NoFeed),
            bodies: s.world.log.clone(),
            sender: sender.clone(),
            directory: s.world.subscriptions(),
            recorder: s.recorder.clone(),
            flow: Arc::new(crate::testing::MemoryFlow::new(s.world.clock.clone())),
        },
        WorkerSettings {
            worker_id: "w1".into(),
            concurrency: 4,
            lease: std::time::Duration::from_secs(30),
            claim_batch: 10,
            poll_interval: std::time::Duration::from_millis(5),
            user_agent: "Hookline/test".into(),
        },
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_wake, rx) = tokio::sync::watch::channel(0);
    let running = tokio::spawn(worker.run(shutdown.clone(), rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.world.log.of(Delivery::TYPE).len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "outcomes not recorded"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
    let sent = sender.sent.lock().unwrap();
    assert_eq!(sent.len(), 3);
    for request in sent.iter() {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert!(header("webhook-signature").unwrap().starts_with("v1,"));
        assert_eq!(header("x-request-id").as_deref(), Some("req-pub"));
        assert_eq!(header("user-agent").as_deref(), Some("Hookline/test"));
    }
    let outcomes: Vec<DeliveryEvent> = s
        .world
        .log
        .of(Delivery::TYPE)
        .iter()
        .filter(|e| e.sequence == 2)
        .map(|e| crate::fold::parse::<Delivery>(e).unwrap())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|e| matches!(e, DeliveryEvent::DeliverySucceeded { .. }))
            .count(),
        2
    );
}

/// Metrics that remember what they were told.
#[derive(Default)]
struct Counted {
    attempts: std::sync::Mutex<Vec<crate::ports::AttemptMeasure>>,
    latencies: std::sync::Mutex<Vec<std::time::Duration>>,
}

impl crate::ports::Metrics for Counted {
    fn attempt(&self, _tenant: hookline_domain::TenantId, attempt: crate::ports::AttemptMeasure) {
        self.attempts.lock().unwrap().push(attempt);
    }
    fn delivered_after(&self, _tenant: hookline_domain::TenantId, latency: std::time::Duration) {
        self.latencies.lock().unwrap().push(latency);
    }
}

#[tokio::test]
async fn recorded_outcomes_are_counted_once_each_and_refused_ones_not_at_all() {
    use crate::ports::{AttemptMeasure, AttemptOutcome};
    let s = setup().await;
    let counted = Arc::new(Counted::default());
    let recorder = recorder_for(&s).with_metrics(counted.clone());
    let ok = s.enqueue(1).await;
    let mut bad = s.enqueue(2).await;
    recorder
        .record(vec![
            s.attempted(&ok, status(204)),
            s.attempted(&bad, status(503)),
        ])
        .await;
    // The same outcome again is refused (stale): not counted.
    recorder.record(vec![s.attempted(&ok, status(204))]).await;
    let timeout = SendOutcome::Failed {
        kind: ErrorKind::Timeout,
        message: "no answer".into(),
    };
    for attempt in [2, 3] {
        bad.attempt = attempt;
        recorder
            .record(vec![s.attempted(&bad, timeout.clone())])
            .await;
    }
    let ms = std::time::Duration::from_millis(10);
    assert_eq!(
        *counted.attempts.lock().unwrap(),
        vec![
            AttemptMeasure {
                outcome: AttemptOutcome::Delivered,
                error_kind: None,
                status: Some(204),
                duration: ms,
            },
            AttemptMeasure {
                outcome: AttemptOutcome::Retry,
                error_kind: Some(ErrorKind::HttpStatus),
                status: Some(503),
                duration: ms,
            },
            AttemptMeasure {
                outcome: AttemptOutcome::Retry,
                error_kind: Some(ErrorKind::Timeout),
                status: None,
                duration: ms,
            },
            AttemptMeasure {
                outcome: AttemptOutcome::Abandoned,
                error_kind: Some(ErrorKind::Timeout),
                status: None,
                duration: ms,
            },
        ]
    );
    // Enqueued at t0, the attempt started at t0 and took 10 ms.
    assert_eq!(*counted.latencies.lock().unwrap(), vec![ms]);
}

/// An attempt whose outcome the delivery refuses (delivered already) has
/// its queue row removed: no outcome event clears it, and its lease would
/// bring it back (and send it again) forever. A later round's row stays.
#[tokio::test]
async fn a_refused_outcome_takes_its_queue_row_with_it() {
    let s = setup().await;
    let queue = Arc::new(MemoryQueue::default());
    let recorder = recorder_for(&s).with_queue(queue.clone());
    let sent = s.enqueue(1).await;
    let later = s.enqueue(2).await;
    recorder.record(vec![s.attempted(&sent, status(204))]).await;
    // The same attempt sat on the queue as well (handed over as it went).
    let later_round = DueDelivery {
        attempt: 2,
        ..later.clone()
    };
    queue
        .due
        .lock()
        .unwrap()
        .extend([sent.clone(), later_round.clone()]);
    recorder.record(vec![s.attempted(&sent, status(204))]).await;
    let left: Vec<(DeliveryId, u32)> = queue
        .due
        .lock()
        .unwrap()
        .iter()
        .map(|d| (d.delivery_id, d.attempt))
        .collect();
    assert_eq!(left, vec![(later.delivery_id, 2)]);

    // A delivery claimed from the queue (a paced first attempt) and
    // finished: its row goes with it, so it is not sent again. One that
    // is retried keeps its row (the projection moves it on).
    let paced = s.enqueue(3).await;
    let retried = s.enqueue(4).await;
    queue
        .due
        .lock()
        .unwrap()
        .extend([paced.clone(), retried.clone()]);
    recorder
        .record(vec![
            s.attempted(&paced, status(204)),
            s.attempted(&retried, status(503)),
        ])
        .await;
    let left: Vec<DeliveryId> = queue
        .due
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.delivery_id)
        .collect();
    assert_eq!(left, vec![later.delivery_id, retried.delivery_id]);
}

/// A recorder over the setup's stores, as worker `w1`.
fn recorder_for(s: &Setup) -> OutcomeRecorder {
    OutcomeRecorder::new(
        s.world.shared.clone(),
        s.deliveries.clone(),
        s.subscriptions.clone(),
        policy(),
        "w1".into(),
    )
}

/// Runs a worker over `queue` until `done` holds for the log.
async fn run_worker_until(
    s: &Setup,
    queue: Arc<MemoryQueue>,
    sender: Arc<ScriptedSender>,
    flow: Arc<crate::testing::MemoryFlow>,
    done: impl Fn(&Setup) -> bool,
) {
    let worker = Arc::new(Worker::new(
        s.world.shared.clone(),
        WorkerPorts {
            queue,
            feed: Arc::new(crate::ports::NoFeed),
            bodies: s.world.log.clone(),
            sender,
            directory: s.world.subscriptions(),
            recorder: s.recorder.clone(),
            flow,
        },
        WorkerSettings {
            worker_id: "w1".into(),
            concurrency: 4,
            lease: std::time::Duration::from_secs(30),
            claim_batch: 10,
            poll_interval: std::time::Duration::from_millis(5),
            user_agent: "Hookline/test".into(),
        },
    ));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_wake, rx) = tokio::sync::watch::channel(0);
    let running = tokio::spawn(worker.run(shutdown.clone(), rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done(s) {
        assert!(std::time::Instant::now() < deadline, "not done in time");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_disabled_subscription_with_an_open_circuit_skips_rather_than_parks() {
    let s = setup().await;
    for command in [
        SubscriptionCommand::OpenCircuit(hookline_domain::subscription::OpenCircuit {
            tenant_id: tenant(1),
            consecutive_failures: 10,
            cause: hookline_domain::subscription::FailureCause {
                delivery_id: DeliveryId::from_uuid(Uuid::from_u128(1)),
                error_kind: ErrorKind::HttpStatus,
                status_code: Some(503),
                message: "503".into(),
                failed_at: t0(),
            },
            at: t0(),
            next_probe_at: t0() + Duration::hours(1),
        }),
        SubscriptionCommand::Disable(hookline_domain::subscription::DisableSubscription {
            tenant_id: tenant(1),
            reason: "auto: failing since then".into(),
            at: t0(),
        }),
    ] {
        s.subscriptions
            .execute(&s.sub.to_string(), command, &crate::testing::metadata())
            .await
            .unwrap();
    }
    let queue = Arc::new(MemoryQueue::default());
    let due = s.enqueue(1).await;
    queue.due.lock().unwrap().push_back(due.clone());
    let sender = Arc::new(ScriptedSender::default());
    let flow = Arc::new(crate::testing::MemoryFlow::new(s.world.clock.clone()));
    run_worker_until(&s, queue.clone(), sender.clone(), flow.clone(), |s| {
        s.events_of(&due)
            .iter()
            .any(|e| matches!(e, DeliveryEvent::DeliverySkipped { .. }))
    })
    .await;
    assert!(sender.sent.lock().unwrap().is_empty());
    assert!(
        flow.held.lock().unwrap().is_empty(),
        "a disabled subscription's delivery was parked"
    );
}

#[tokio::test]
async fn a_failed_probe_is_retried_no_earlier_than_the_next_probe() {
    let s = setup().await;
    let due = s.enqueue(1).await;
    let next_probe = t0() + Duration::minutes(10);
    let timeout = SendOutcome::Failed {
        kind: ErrorKind::Timeout,
        message: "no answer".into(),
    };
    let mut probe = s.attempted(&due, timeout);
    if let Outcome::Attempted { hold_until, .. } = &mut probe {
        *hold_until = Some(next_probe);
    }
    s.recorder.record(vec![probe]).await;
    match s.events_of(&due).as_slice() {
        [DeliveryEvent::AttemptFailed {
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(next),
            ..
        }] => assert!(*next >= next_probe, "{next} before {next_probe}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failed_probe_waits_for_the_next_probe_to_the_second_rounded_up() {
    // 1.99 s to the next probe: a retry a second later (rounded down)
    // would go as the same probe again before the controller releases the
    // next one.
    let s = setup().await;
    let due = s.enqueue(1).await;
    let next_probe = t0() + Duration::milliseconds(1_990);
    let timeout = SendOutcome::Failed {
        kind: ErrorKind::Timeout,
        message: "no answer".into(),
    };
    let mut probe = s.attempted(&due, timeout);
    if let Outcome::Attempted { hold_until, .. } = &mut probe {
        *hold_until = Some(next_probe);
    }
    s.recorder.record(vec![probe]).await;
    match s.events_of(&due).as_slice() {
        [DeliveryEvent::AttemptFailed {
            next_attempt_at: Some(next),
            ..
        }] => assert!(*next >= next_probe, "{next} before {next_probe}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_released_probe_claimed_again_after_its_probe_time_is_parked_not_sent() {
    let s = setup().await;
    let due = s.enqueue(1).await;
    let cause = hookline_domain::subscription::FailureCause {
        delivery_id: DeliveryId::from_uuid(Uuid::from_u128(1)),
        error_kind: ErrorKind::HttpStatus,
        status_code: Some(503),
        message: "503".into(),
        failed_at: t0(),
    };
    for command in [
        SubscriptionCommand::OpenCircuit(hookline_domain::subscription::OpenCircuit {
            tenant_id: tenant(1),
            consecutive_failures: 10,
            cause,
            at: t0() - Duration::seconds(4),
            next_probe_at: t0() - Duration::seconds(2),
        }),
        // Released as the probe 2 s ago; its probe time has come again.
        SubscriptionCommand::ReleaseProbe(hookline_domain::subscription::ReleaseProbe {
            tenant_id: tenant(1),
            delivery_id: due.delivery_id,
            at: t0() - Duration::seconds(2),
            next_probe_at: t0(),
        }),
    ] {
        s.subscriptions
            .execute(&s.sub.to_string(), command, &crate::testing::metadata())
            .await
            .unwrap();
    }
    let queue = Arc::new(MemoryQueue::default());
    queue.due.lock().unwrap().push_back(due.clone());
    let sender = Arc::new(ScriptedSender::default());
    let flow = Arc::new(crate::testing::MemoryFlow::new(s.world.clock.clone()));
    run_worker_until(&s, queue.clone(), sender.clone(), flow.clone(), |_| {
        !flow.held.lock().unwrap().is_empty()
    })
    .await;
    assert!(
        sender.sent.lock().unwrap().is_empty(),
        "the old probe went again"
    );
    assert_eq!(flow.held.lock().unwrap()[0].0, due.delivery_id);
}
