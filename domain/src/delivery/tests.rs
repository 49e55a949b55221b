//! Given/when/then tests for every delivery command, accepted and refused.

use super::*;
use crate::outcome::ErrorKind;
use crate::retry::RetryPolicy;
use crate::{DeliveryId, EventId, EventType, SubscriptionId, TenantId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

fn fixture() -> TestFramework<Delivery> {
    TestFramework::with(RetryPolicy::default())
}
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
}
fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(1))
}
const URL: &str = "https://example.com/hook";

fn attempt_id(n: u32) -> Uuid {
    Uuid::from_u128(1000 + u128::from(n))
}

fn enqueue_cmd() -> EnqueueDelivery {
    EnqueueDelivery {
        delivery_id: DeliveryId::from_uuid(Uuid::from_u128(5)),
        tenant_id: tenant(),
        subscription_id: SubscriptionId::from_uuid(Uuid::from_u128(6)),
        event_id: EventId::from_uuid(Uuid::from_u128(7)),
        event_type: EventType::parse("invoice.created", "e").unwrap(),
        url: URL.into(),
        at: t0(),
    }
}

fn enqueued() -> DeliveryEvent {
    Delivery::enqueue_new(enqueue_cmd())
}

/// Attempt 1 answered 400: failed, no retry scheduled.
fn failed_400() -> DeliveryEvent {
    failed_event(
        1,
        Some(400),
        ErrorKind::HttpStatus,
        DeliveryStatus::Failed,
        None,
        false,
    )
}

/// A manual retry of the failed delivery at `at`, as recorded.
fn retried_at(at: DateTime<Utc>) -> DeliveryEvent {
    DeliveryEvent::RetryRequested {
        previous_status: DeliveryStatus::Failed,
        attempt: 2,
        requested_at: at,
        next_attempt_at: at,
    }
}

/// The retry command at `at`.
fn retry_at(at: DateTime<Utc>) -> DeliveryCommand {
    DeliveryCommand::Retry(RetryDelivery {
        tenant_id: tenant(),
        at,
    })
}

fn failure(attempt: u32, status: Option<u16>, kind: ErrorKind) -> AttemptFailure {
    AttemptFailure {
        tenant_id: tenant(),
        attempt_id: attempt_id(attempt),
        attempt,
        url: URL.into(),
        started_at: t0(),
        duration_ms: 1000,
        status_code: status,
        error_kind: kind,
        error_message: "boom".into(),
        response_excerpt: Some("nope".into()),
        retry_after_secs: None,
        jitter: 0.0,
    }
}

fn success(attempt: u32) -> AttemptSuccess {
    AttemptSuccess {
        tenant_id: tenant(),
        attempt_id: attempt_id(attempt),
        attempt,
        url: URL.into(),
        started_at: t0(),
        duration_ms: 20,
        status_code: 200,
        response_excerpt: None,
    }
}

fn succeeded(attempt: u32) -> DeliveryEvent {
    DeliveryEvent::DeliverySucceeded {
        attempt,
        attempt_id: attempt_id(attempt),
        url: URL.into(),
        started_at: t0(),
        duration_ms: 20,
        status_code: 200,
        response_excerpt: None,
    }
}

fn failed_event(
    attempt: u32,
    status: Option<u16>,
    kind: ErrorKind,
    st: DeliveryStatus,
    next: Option<DateTime<Utc>>,
    gone: bool,
) -> DeliveryEvent {
    DeliveryEvent::AttemptFailed {
        attempt,
        attempt_id: attempt_id(attempt),
        url: URL.into(),
        started_at: t0(),
        duration_ms: 1000,
        status_code: status,
        error_kind: kind,
        error_message: "boom".into(),
        response_excerpt: Some("nope".into()),
        status: st,
        next_attempt_at: next,
        endpoint_gone: gone,
    }
}

fn events_of(given: Vec<DeliveryEvent>, cmd: DeliveryCommand) -> Vec<DeliveryEvent> {
    fixture().given(given).when(cmd).inspect_result().unwrap()
}

#[test]
fn enqueue_creates_a_pending_delivery_due_now() {
    fixture()
        .given_no_previous_events()
        .when(DeliveryCommand::Enqueue(enqueue_cmd()))
        .then_expect_events(vec![enqueued()]);
    let mut d = Delivery::default();
    d.apply_event(enqueued());
    let s = d.state().unwrap();
    assert_eq!(s.status, DeliveryStatus::Pending);
    assert_eq!(s.next_attempt_at, Some(t0()));
    assert_eq!(s.attempts, 0);
}

#[test]
fn enqueue_twice_is_refused() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::Enqueue(enqueue_cmd()))
        .then_expect_error(DeliveryError::AlreadyExists);
}

#[test]
fn a_2xx_delivers() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::Delivered(success(1)))
        .then_expect_events(vec![succeeded(1)]);
}

#[test]
fn deliver_twice_is_refused() {
    fixture()
        .given(vec![enqueued(), succeeded(1)])
        .when(DeliveryCommand::Delivered(success(2)))
        .then_expect_error(DeliveryError::AlreadyDelivered);
}

#[test]
fn a_stale_attempt_number_is_refused() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::Delivered(success(2)))
        .then_expect_error(DeliveryError::StaleAttempt {
            expected: 1,
            got: 2,
        });
    let failed1 = failed_event(
        1,
        Some(500),
        ErrorKind::HttpStatus,
        DeliveryStatus::Pending,
        Some(t0() + Duration::seconds(6)),
        false,
    );
    fixture()
        .given(vec![enqueued(), failed1])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(500),
            ErrorKind::HttpStatus,
        )))
        .then_expect_error(DeliveryError::StaleAttempt {
            expected: 2,
            got: 1,
        });
}

#[test]
fn a_5xx_schedules_a_retry_from_the_end_of_the_attempt() {
    // Attempt ends at t0 + 1 s; the first retry waits 5 s.
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(503),
            ErrorKind::HttpStatus,
        )))
        .then_expect_events(vec![failed_event(
            1,
            Some(503),
            ErrorKind::HttpStatus,
            DeliveryStatus::Pending,
            Some(t0() + Duration::seconds(6)),
            false,
        )]);
}

#[test]
fn the_second_failure_uses_the_second_delay_and_jitter() {
    let first = failed_event(
        1,
        Some(500),
        ErrorKind::HttpStatus,
        DeliveryStatus::Pending,
        Some(t0()),
        false,
    );
    let mut cmd = failure(2, None, ErrorKind::Timeout);
    cmd.jitter = 1.0;
    let evs = events_of(vec![enqueued(), first], DeliveryCommand::AttemptFailed(cmd));
    let DeliveryEvent::AttemptFailed {
        next_attempt_at,
        status,
        ..
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!(*status, DeliveryStatus::Pending);
    assert_eq!(*next_attempt_at, Some(t0() + Duration::seconds(1 + 66)));
}

#[test]
fn retry_after_is_honoured() {
    let mut cmd = failure(1, Some(429), ErrorKind::HttpStatus);
    cmd.retry_after_secs = Some(120);
    let evs = events_of(vec![enqueued()], DeliveryCommand::AttemptFailed(cmd));
    let DeliveryEvent::AttemptFailed {
        next_attempt_at, ..
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!(*next_attempt_at, Some(t0() + Duration::seconds(121)));
}

#[test]
fn a_4xx_fails_without_retry() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(400),
            ErrorKind::HttpStatus,
        )))
        .then_expect_events(vec![failed_event(
            1,
            Some(400),
            ErrorKind::HttpStatus,
            DeliveryStatus::Failed,
            None,
            false,
        )]);
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(302),
            ErrorKind::HttpStatus,
        )))
        .then_expect_events(vec![failed_event(
            1,
            Some(302),
            ErrorKind::HttpStatus,
            DeliveryStatus::Failed,
            None,
            false,
        )]);
}

#[test]
fn a_410_fails_and_marks_the_endpoint_gone() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(410),
            ErrorKind::HttpStatus,
        )))
        .then_expect_events(vec![failed_event(
            1,
            Some(410),
            ErrorKind::HttpStatus,
            DeliveryStatus::Failed,
            None,
            true,
        )]);
}

#[test]
fn a_blocked_target_fails_without_retry() {
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            None,
            ErrorKind::BlockedTarget,
        )))
        .then_expect_events(vec![failed_event(
            1,
            None,
            ErrorKind::BlockedTarget,
            DeliveryStatus::Failed,
            None,
            false,
        )]);
}

#[test]
fn exhausting_the_policy_abandons() {
    let policy = RetryPolicy {
        max_retries: 1,
        ..RetryPolicy::default()
    };
    let first = failed_event(
        1,
        Some(500),
        ErrorKind::HttpStatus,
        DeliveryStatus::Pending,
        Some(t0()),
        false,
    );
    let evs = TestFramework::<Delivery>::with(policy)
        .given(vec![enqueued(), first])
        .when(DeliveryCommand::AttemptFailed(failure(
            2,
            Some(500),
            ErrorKind::HttpStatus,
        )))
        .inspect_result()
        .unwrap();
    assert_eq!(evs.len(), 2);
    let DeliveryEvent::AttemptFailed {
        status,
        next_attempt_at,
        ..
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!(*status, DeliveryStatus::Abandoned);
    assert_eq!(*next_attempt_at, None);
    assert!(
        matches!(&evs[1], DeliveryEvent::DeliveryAbandoned { reason, .. } if reason.contains("2 failed attempts"))
    );
}

#[test]
fn failing_an_abandoned_or_failed_delivery_is_refused() {
    let abandoned = DeliveryEvent::DeliveryAbandoned {
        reason: "x".into(),
        abandoned_at: t0(),
    };
    fixture()
        .given(vec![enqueued(), abandoned])
        .when(DeliveryCommand::AttemptFailed(failure(
            1,
            Some(500),
            ErrorKind::HttpStatus,
        )))
        .then_expect_error(DeliveryError::NotPending(DeliveryStatus::Abandoned));
    let failed = failed_400();
    fixture()
        .given(vec![enqueued(), failed])
        .when(DeliveryCommand::Delivered(success(2)))
        .then_expect_error(DeliveryError::NotPending(DeliveryStatus::Failed));
}

#[test]
fn retry_of_a_delivered_delivery_is_refused() {
    fixture()
        .given(vec![enqueued(), succeeded(1)])
        .when(retry_at(t0()))
        .then_expect_error(DeliveryError::AlreadyDelivered);
}

#[test]
fn retry_of_a_failed_delivery_starts_a_new_round() {
    let failed = failed_400();
    let at = t0() + Duration::hours(1);
    let retried = retried_at(at);
    fixture()
        .given(vec![enqueued(), failed.clone()])
        .when(retry_at(at))
        .then_expect_events(vec![retried.clone()]);
    // The next failure is attempt 2 but uses the first delay again.
    let evs = events_of(
        vec![enqueued(), failed, retried],
        DeliveryCommand::AttemptFailed(failure(2, Some(500), ErrorKind::HttpStatus)),
    );
    let DeliveryEvent::AttemptFailed {
        attempt,
        next_attempt_at,
        ..
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!(*attempt, 2);
    assert_eq!(*next_attempt_at, Some(t0() + Duration::seconds(6)));
}

#[test]
fn abandon_only_pending_deliveries() {
    let cmd = AbandonDelivery {
        tenant_id: tenant(),
        reason: "subscription deleted".into(),
        at: t0(),
    };
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::Abandon(cmd.clone()))
        .then_expect_events(vec![DeliveryEvent::DeliveryAbandoned {
            reason: "subscription deleted".into(),
            abandoned_at: t0(),
        }]);
    fixture()
        .given(vec![enqueued(), succeeded(1)])
        .when(DeliveryCommand::Abandon(cmd))
        .then_expect_error(DeliveryError::AlreadyDelivered);
}

#[test]
fn another_tenant_sees_no_delivery() {
    let mut cmd = success(1);
    cmd.tenant_id = TenantId::from_uuid(Uuid::from_u128(99));
    fixture()
        .given(vec![enqueued()])
        .when(DeliveryCommand::Delivered(cmd))
        .then_expect_error(DeliveryError::NotFound);
    fixture()
        .given_no_previous_events()
        .when(retry_at(t0()))
        .then_expect_error(DeliveryError::NotFound);
}

#[test]
fn long_messages_and_excerpts_are_bounded() {
    let mut cmd = failure(1, Some(500), ErrorKind::HttpStatus);
    cmd.error_message = "e".repeat(2000);
    cmd.response_excerpt = Some("r".repeat(10_000));
    let evs = events_of(vec![enqueued()], DeliveryCommand::AttemptFailed(cmd));
    let DeliveryEvent::AttemptFailed {
        error_message,
        response_excerpt,
        ..
    } = &evs[0]
    else {
        panic!()
    };
    assert_eq!(error_message.chars().count(), 500);
    assert_eq!(response_excerpt.as_ref().unwrap().len(), 4096);
}

#[test]
fn retry_while_the_next_attempt_is_due_is_refused() {
    // Just enqueued: attempt 1 is due (perhaps being sent right now).
    fixture()
        .given(vec![enqueued()])
        .when(retry_at(t0()))
        .then_expect_error(DeliveryError::AttemptDue);
    // Retried a moment ago: attempt 2 is due; a second retry must not
    // request attempt 2 again.
    let failed = failed_400();
    let at = t0() + Duration::hours(1);
    let retried = retried_at(at);
    fixture()
        .given(vec![enqueued(), failed, retried.clone()])
        .when(retry_at(at + Duration::milliseconds(5)))
        .then_expect_error(DeliveryError::AttemptDue);
    // Even when the second request's clock reading is older than the first
    // retry (it was taken before the first one committed).
    let failed = failed_400();
    fixture()
        .given(vec![enqueued(), failed, retried])
        .when(retry_at(at - Duration::milliseconds(5)))
        .then_expect_error(DeliveryError::AttemptDue);
    // A backoff about to end is not brought forward either (it may be
    // claimed meanwhile).
    let evs = events_of(
        vec![enqueued()],
        DeliveryCommand::AttemptFailed(failure(1, Some(500), ErrorKind::HttpStatus)),
    );
    fixture()
        .given(vec![enqueued(), evs[0].clone()])
        .when(retry_at(t0() + Duration::milliseconds(5500)))
        .then_expect_error(DeliveryError::AttemptDue);
}

#[test]
fn retry_brings_a_backed_off_attempt_forward() {
    // A 5xx scheduled attempt 2 for t0 + 6 s; a retry at t0 + 2 s makes it
    // due then.
    let evs = events_of(
        vec![enqueued()],
        DeliveryCommand::AttemptFailed(failure(1, Some(500), ErrorKind::HttpStatus)),
    );
    let at = t0() + Duration::seconds(2);
    fixture()
        .given(vec![enqueued(), evs[0].clone()])
        .when(retry_at(at))
        .then_expect_events(vec![DeliveryEvent::RetryRequested {
            previous_status: DeliveryStatus::Pending,
            attempt: 2,
            requested_at: at,
            next_attempt_at: at,
        }]);
}

#[test]
fn enqueued_events_leave_the_body_to_the_message_from_version_2() {
    let e = enqueued();
    assert_eq!(e.event_version(), "2.0");
    let json = serde_json::to_value(&e).unwrap();
    assert!(json.get("body").is_none());
    // A 1.0 event, with its body inline, still reads.
    let mut old = json;
    old["body"] = serde_json::json!("{\"id\":\"x\"}");
    let read: DeliveryEvent = serde_json::from_value(old).unwrap();
    assert_eq!(read.event_version(), "1.0");
    let mut d = Delivery::default();
    d.apply_event(read);
    assert_eq!(d.state().unwrap().attempts, 0);
}
