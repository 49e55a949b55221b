//! Given/when/then tests for every subscription command, accepted and refused.

use super::*;
use crate::channel::Channels;
use crate::metadata::Metadata;
use crate::sealed::{Sealed, SecretHint};
use crate::uid::Uid;
use crate::EventType;
use crate::{AllowList, EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

type Fixture = TestFramework<Subscription>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}
fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(1))
}
fn other_tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(2))
}
fn sub_id() -> SubscriptionId {
    SubscriptionId::from_uuid(Uuid::from_u128(10))
}
fn sealed(tag: &str) -> Sealed {
    Sealed {
        alg: "test".into(),
        key_id: "k1".into(),
        nonce: tag.into(),
        ciphertext: tag.into(),
    }
}
fn url(s: &str) -> TargetUrl {
    TargetUrl::parse(s, &AllowList::default()).unwrap()
}
fn filter(items: &[&str]) -> EventFilter {
    EventFilter::parse(items).unwrap()
}

fn subscribe_cmd() -> Subscribe {
    Subscribe {
        subscription_id: sub_id(),
        tenant_id: tenant(),
        url: url("https://example.com/hooks"),
        events: filter(&["invoice.*"]),
        header_names: vec![],
        headers: None,
        description: Some(Description::parse("billing").unwrap()),
        signature_scheme: SignatureScheme::StandardWebhooks,
        secret: sealed("s1"),
        secret_hint: SecretHint::of("whsec_aaaaaaaaaaaaaaaaaaaaaaaa"),
        payload_format: PayloadFormat::Hookline,
        channels: None,
        uid: None,
        metadata: Metadata::default(),
        rate_limit: None,
        at: t0(),
    }
}

fn subscribed() -> SubscriptionEvent {
    let c = subscribe_cmd();
    SubscriptionEvent::Subscribed {
        subscription_id: c.subscription_id,
        tenant_id: c.tenant_id,
        url: c.url,
        events: c.events,
        header_names: c.header_names,
        headers: c.headers,
        description: c.description,
        signature_scheme: c.signature_scheme,
        secret: c.secret,
        secret_hint: c.secret_hint,
        rate_limit: c.rate_limit,
        subscribed_at: c.at,
        payload_format: None,
        channels: None,
        uid: None,
        metadata: None,
    }
}

fn unsubscribed() -> SubscriptionEvent {
    SubscriptionEvent::Unsubscribed {
        unsubscribed_at: t0() + Duration::minutes(5),
    }
}

fn update(url_: Option<&str>) -> UpdateSubscription {
    let mut cmd = UpdateSubscription::nothing(tenant(), t0() + Duration::minutes(1));
    cmd.url = url_.map(url);
    cmd
}

#[test]
fn subscribe_creates_a_subscription() {
    Fixture::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Subscribe(subscribe_cmd()))
        .then_expect_events(vec![subscribed()]);
}

#[test]
fn subscribe_twice_is_refused() {
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Subscribe(subscribe_cmd()))
        .then_expect_error(SubscriptionError::AlreadyExists);
    // Another tenant choosing the same id: taken.
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Subscribe(Subscribe {
            tenant_id: other_tenant(),
            ..subscribe_cmd()
        }))
        .then_expect_error(SubscriptionError::IdTaken);
}

#[test]
fn update_records_only_changed_fields() {
    let mut cmd = update(Some("https://example.org/new"));
    cmd.events = Some(filter(&["invoice.*"])); // unchanged
    cmd.description = Some(None); // cleared
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Update(cmd))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionUpdated {
            url: Some(url("https://example.org/new")),
            events: None,
            header_names: None,
            headers: None,
            description: Some(None),
            signature_scheme: None,
            rate_limit: None,
            updated_at: t0() + Duration::minutes(1),
            channels: None,
            uid: None,
            metadata: None,
        }]);
}

#[test]
fn update_without_changes_records_nothing() {
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Update(update(Some(
            "https://example.com/hooks",
        ))))
        .then_expect_events(vec![]);
}

#[test]
fn update_made_from_an_older_version_is_refused() {
    // Made from the subscription as subscribed (updated at `t0`), after an
    // update at `t0 + 1 min`.
    let first = update(Some("https://example.org/first"));
    let earlier = SubscriptionEvent::SubscriptionUpdated {
        url: Some(url("https://example.org/first")),
        events: None,
        header_names: None,
        headers: None,
        description: None,
        signature_scheme: None,
        rate_limit: None,
        updated_at: first.at,
        channels: None,
        uid: None,
        metadata: None,
    };
    let mut stale = update(Some("https://example.org/second"));
    stale.unchanged_since = Some(subscribe_cmd().at);
    Fixture::with(())
        .given(vec![subscribed(), earlier])
        .when(SubscriptionCommand::Update(stale))
        .then_expect_error(SubscriptionError::ChangedMeanwhile);

    let mut current = update(Some("https://example.org/second"));
    current.unchanged_since = Some(subscribe_cmd().at);
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Update(current))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionUpdated {
            url: Some(url("https://example.org/second")),
            events: None,
            header_names: None,
            headers: None,
            description: None,
            signature_scheme: None,
            rate_limit: None,
            updated_at: t0() + Duration::minutes(1),
            channels: None,
            uid: None,
            metadata: None,
        }]);
}

#[test]
fn update_of_a_deleted_subscription_is_refused() {
    Fixture::with(())
        .given(vec![subscribed(), unsubscribed()])
        .when(SubscriptionCommand::Update(update(Some(
            "https://example.org/x",
        ))))
        .then_expect_error(SubscriptionError::Deleted);
}

#[test]
fn update_of_a_missing_subscription_is_refused() {
    Fixture::with(())
        .given_no_previous_events()
        .when(SubscriptionCommand::Update(update(None)))
        .then_expect_error(SubscriptionError::NotFound);
}

#[test]
fn another_tenant_cannot_touch_a_subscription() {
    let mut cmd = update(Some("https://example.org/x"));
    cmd.tenant_id = other_tenant();
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Update(cmd))
        .then_expect_error(SubscriptionError::NotFound);
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Unsubscribe(Unsubscribe {
            tenant_id: other_tenant(),
            at: t0(),
        }))
        .then_expect_error(SubscriptionError::NotFound);
}

#[test]
fn rotate_secret_keeps_the_old_one_for_the_overlap() {
    let at = t0() + Duration::hours(1);
    let expires = at + Duration::hours(24);
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::RotateSecret(RotateSecret {
            tenant_id: tenant(),
            secret: sealed("s2"),
            secret_hint: SecretHint::of("whsec_bbbbbbbbbbbbbbbbbbbbbbbb"),
            previous_secret_expires_at: expires,
            at,
        }))
        .then_expect_events(vec![SubscriptionEvent::SecretRotated {
            secret: sealed("s2"),
            secret_hint: SecretHint::of("whsec_bbbbbbbbbbbbbbbbbbbbbbbb"),
            previous_secret_hint: SecretHint::of("whsec_aaaaaaaaaaaaaaaaaaaaaaaa"),
            previous_secret_expires_at: expires,
            rotated_at: at,
        }]);

    let mut agg = Subscription::default();
    agg.apply_event(subscribed());
    agg.apply_event(SubscriptionEvent::SecretRotated {
        secret: sealed("s2"),
        secret_hint: SecretHint::of("x"),
        previous_secret_hint: SecretHint::of("y"),
        previous_secret_expires_at: expires,
        rotated_at: at,
    });
    let state = agg.state().unwrap();
    assert_eq!(state.secret, sealed("s2"));
    assert_eq!(state.previous_secrets.len(), 1);
    assert_eq!(state.previous_secrets[0].secret, sealed("s1"));
}

#[test]
fn a_rotation_under_a_single_signature_scheme_has_no_overlap_nor_limit() {
    let mut hex = subscribed();
    if let SubscriptionEvent::Subscribed {
        signature_scheme, ..
    } = &mut hex
    {
        *signature_scheme = SignatureScheme::HmacSha256Hex;
    }
    let at = t0() + Duration::hours(1);
    let rotate = |n: u32| {
        SubscriptionCommand::RotateSecret(RotateSecret {
            tenant_id: tenant(),
            secret: sealed(&format!("s{n}")),
            secret_hint: SecretHint::of("hex-secret-new"),
            previous_secret_expires_at: at + Duration::hours(24),
            at,
        })
    };
    Fixture::with(())
        .given(vec![hex.clone()])
        .when(rotate(2))
        .then_expect_events(vec![SubscriptionEvent::SecretRotated {
            secret: sealed("s2"),
            secret_hint: SecretHint::of("hex-secret-new"),
            previous_secret_hint: SecretHint::of("whsec_aaaaaaaaaaaaaaaaaaaaaaaa"),
            previous_secret_expires_at: at,
            rotated_at: at,
        }]);
    // However often: nothing keeps signing, so no cap is reached.
    let mut given = vec![hex];
    for n in 2..8 {
        given.push(SubscriptionEvent::SecretRotated {
            secret: sealed(&format!("s{n}")),
            secret_hint: SecretHint::of("x"),
            previous_secret_hint: SecretHint::of("y"),
            previous_secret_expires_at: at,
            rotated_at: at,
        });
    }
    let mut agg = Subscription::default();
    for e in given.clone() {
        agg.apply_event(e);
    }
    assert_eq!(agg.state().unwrap().previous_secrets_at(at).count(), 0);
    Fixture::with(())
        .given(given)
        .when(rotate(9))
        .then_expect_events(vec![SubscriptionEvent::SecretRotated {
            secret: sealed("s9"),
            secret_hint: SecretHint::of("hex-secret-new"),
            previous_secret_hint: SecretHint::of("x"),
            previous_secret_expires_at: at,
            rotated_at: at,
        }]);
}

fn rotated(n: i64, overlap: Duration) -> SubscriptionEvent {
    let at = t0() + Duration::minutes(n);
    SubscriptionEvent::SecretRotated {
        secret: sealed(&format!("s{}", n + 1)),
        secret_hint: SecretHint::of("x"),
        previous_secret_hint: SecretHint::of("y"),
        previous_secret_expires_at: at + overlap,
        rotated_at: at,
    }
}

#[test]
fn every_overlap_promised_keeps_running_up_to_the_cap() {
    // Rotated twice a minute apart with a day's overlap: both replaced
    // secrets still sign.
    let mut agg = Subscription::default();
    for e in [
        subscribed(),
        rotated(1, Duration::days(1)),
        rotated(2, Duration::days(1)),
    ] {
        agg.apply_event(e);
    }
    let state = agg.state().unwrap();
    let signing: Vec<&Sealed> = state
        .previous_secrets_at(t0() + Duration::minutes(3))
        .map(|p| &p.secret)
        .collect();
    assert_eq!(signing, [&sealed("s1"), &sealed("s2")]);
    // A short overlap that ended is dropped at the next rotation.
    let mut agg = Subscription::default();
    for e in [
        subscribed(),
        rotated(1, Duration::seconds(5)),
        rotated(2, Duration::days(1)),
    ] {
        agg.apply_event(e);
    }
    assert_eq!(agg.state().unwrap().previous_secrets.len(), 1);
    // At the cap, another rotation is refused instead of cutting one short.
    let mut history = vec![subscribed()];
    history.extend((1..MAX_SIGNING_SECRETS as i64).map(|n| rotated(n, Duration::days(1))));
    let rotate = RotateSecret {
        tenant_id: tenant(),
        secret: sealed("next"),
        secret_hint: SecretHint::of("x"),
        previous_secret_expires_at: t0() + Duration::days(1),
        at: t0() + Duration::hours(1),
    };
    Fixture::with(())
        .given(history.clone())
        .when(SubscriptionCommand::RotateSecret(rotate.clone()))
        .then_expect_error(SubscriptionError::TooManySecrets(MAX_SIGNING_SECRETS));
    // Once the overlaps have ended, rotating works again.
    let mut later = rotate;
    later.at = t0() + Duration::days(2);
    later.previous_secret_expires_at = later.at + Duration::hours(1);
    let events = Fixture::with(())
        .given(history)
        .when(SubscriptionCommand::RotateSecret(later));
    events.then_expect_events(vec![SubscriptionEvent::SecretRotated {
        secret: sealed("next"),
        secret_hint: SecretHint::of("x"),
        previous_secret_hint: SecretHint::of("x"),
        previous_secret_expires_at: t0() + Duration::days(2) + Duration::hours(1),
        rotated_at: t0() + Duration::days(2),
    }]);
}

#[test]
fn a_state_stored_with_one_previous_secret_still_reads() {
    let mut agg = Subscription::default();
    agg.apply_event(subscribed());
    agg.apply_event(rotated(1, Duration::days(1)));
    let mut json = serde_json::to_value(agg.state().unwrap()).unwrap();
    let list = json["previous_secrets"].take();
    json["previous_secret"] = list[0].clone();
    json.as_object_mut().unwrap().remove("previous_secrets");
    let read: SubscriptionState = serde_json::from_value(json).unwrap();
    assert_eq!(&read, agg.state().unwrap());
}

#[test]
fn rotate_secret_refuses_an_overlap_in_the_past_and_deleted_subscriptions() {
    let cmd = RotateSecret {
        tenant_id: tenant(),
        secret: sealed("s2"),
        secret_hint: SecretHint::of("x"),
        previous_secret_expires_at: t0(),
        at: t0() + Duration::seconds(1),
    };
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::RotateSecret(cmd.clone()))
        .then_expect_error(SubscriptionError::OverlapInThePast);
    Fixture::with(())
        .given(vec![subscribed(), unsubscribed()])
        .when(SubscriptionCommand::RotateSecret(cmd))
        .then_expect_error(SubscriptionError::Deleted);
}

#[test]
fn disable_then_enable() {
    let disabled = SubscriptionEvent::SubscriptionDisabled {
        reason: "endpoint answered 410 Gone".into(),
        disabled_at: t0(),
    };
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Disable(DisableSubscription {
            tenant_id: tenant(),
            reason: "endpoint answered 410 Gone".into(),
            at: t0(),
        }))
        .then_expect_events(vec![disabled.clone()]);
    // Disabling twice changes nothing (several deliveries may see 410).
    Fixture::with(())
        .given(vec![subscribed(), disabled.clone()])
        .when(SubscriptionCommand::Disable(DisableSubscription {
            tenant_id: tenant(),
            reason: "again".into(),
            at: t0(),
        }))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![subscribed(), disabled])
        .when(SubscriptionCommand::Enable(EnableSubscription {
            tenant_id: tenant(),
            at: t0(),
        }))
        .then_expect_events(vec![SubscriptionEvent::SubscriptionEnabled {
            enabled_at: t0(),
        }]);
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Enable(EnableSubscription {
            tenant_id: tenant(),
            at: t0(),
        }))
        .then_expect_events(vec![]);
}

#[test]
fn disable_needs_a_reason_and_a_live_subscription() {
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Disable(DisableSubscription {
            tenant_id: tenant(),
            reason: "  ".into(),
            at: t0(),
        }))
        .then_expect_error(SubscriptionError::EmptyReason);
    Fixture::with(())
        .given(vec![subscribed(), unsubscribed()])
        .when(SubscriptionCommand::Enable(EnableSubscription {
            tenant_id: tenant(),
            at: t0(),
        }))
        .then_expect_error(SubscriptionError::Deleted);
}

#[test]
fn unsubscribe_is_soft_and_only_once() {
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Unsubscribe(Unsubscribe {
            tenant_id: tenant(),
            at: t0() + Duration::minutes(5),
        }))
        .then_expect_events(vec![unsubscribed()]);
    Fixture::with(())
        .given(vec![subscribed(), unsubscribed()])
        .when(SubscriptionCommand::Unsubscribe(Unsubscribe {
            tenant_id: tenant(),
            at: t0(),
        }))
        .then_expect_error(SubscriptionError::Deleted);
    let mut agg = Subscription::default();
    agg.apply_event(subscribed());
    agg.apply_event(unsubscribed());
    assert_eq!(agg.state().unwrap().status, SubscriptionStatus::Deleted);
}

#[test]
fn events_serialize_with_a_type_tag_and_no_plaintext() {
    let json = serde_json::to_value(subscribed()).unwrap();
    assert_eq!(json["type"], "Subscribed");
    assert_eq!(json["secret_hint"], "whsec_…aaaa");
    let back: SubscriptionEvent = serde_json::from_value(json).unwrap();
    assert_eq!(back, subscribed());
    let upd = SubscriptionEvent::SubscriptionUpdated {
        url: None,
        events: None,
        header_names: None,
        headers: None,
        description: Some(None),
        signature_scheme: None,
        rate_limit: None,
        updated_at: t0(),
        channels: None,
        uid: None,
        metadata: None,
    };
    let json = serde_json::to_value(&upd).unwrap();
    assert!(json.get("url").is_none());
    assert!(json["description"].is_null());
    assert_eq!(
        serde_json::from_value::<SubscriptionEvent>(json).unwrap(),
        upd
    );
}

#[test]
fn svix_fields_are_recorded_at_version_1_1_and_plain_ones_stay_1_0() {
    assert_eq!(subscribed().event_version(), "1.0");
    let mut cmd = subscribe_cmd();
    cmd.payload_format = PayloadFormat::Raw;
    cmd.channels = Some(Channels::parse(&["eu"], "channels").unwrap());
    cmd.uid = Some(Uid::parse("ep-1", "uid").unwrap());
    cmd.metadata = Metadata::parse(
        [("team".to_string(), "billing".to_string())].into(),
        "metadata",
    )
    .unwrap();
    let events = Subscription::default()
        .decide(SubscriptionCommand::Subscribe(cmd))
        .unwrap();
    assert_eq!(events[0].event_version(), "1.1");
    let json = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(json["payload_format"], "raw");
    assert_eq!(json["channels"], serde_json::json!(["eu"]));
    let mut agg = Subscription::default();
    agg.apply_event(events[0].clone());
    let state = agg.state().unwrap();
    assert_eq!(state.payload_format, PayloadFormat::Raw);
    assert_eq!(state.uid.as_ref().unwrap().as_str(), "ep-1");
    let event = EventType::parse("invoice.paid", "e").unwrap();
    let eu = Channels::parse(&["eu", "us"], "channels").unwrap();
    assert!(state.wants(&event, Some(&eu)));
    assert!(!state.wants(&event, None));
    // A plain subscription of the default format keeps version 1.0 and
    // stores no payload_format.
    let plain = serde_json::to_value(subscribed()).unwrap();
    assert!(plain.get("payload_format").is_none());
}

#[test]
fn channels_uid_and_metadata_change_and_clear() {
    let mut cmd = update(None);
    cmd.channels = Some(Some(Channels::parse(&["eu"], "channels").unwrap()));
    cmd.uid = Some(Some(Uid::parse("x", "uid").unwrap()));
    let events = agg_with(vec![subscribed()])
        .decide(SubscriptionCommand::Update(cmd))
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_version(), "1.1");
    let mut agg = agg_with(vec![subscribed(), events[0].clone()]);
    assert!(agg.state().unwrap().channels.is_some());
    let mut clear = update(None);
    clear.channels = Some(None);
    clear.uid = Some(None);
    let events = agg.decide(SubscriptionCommand::Update(clear)).unwrap();
    agg.apply_event(events[0].clone());
    assert!(agg.state().unwrap().channels.is_none());
    assert!(agg.state().unwrap().uid.is_none());
}

#[test]
fn revealing_the_secret_is_recorded_and_changes_nothing() {
    let agg = agg_with(vec![subscribed()]);
    let events = agg
        .decide(SubscriptionCommand::RevealSecret(RevealSecret {
            tenant_id: tenant(),
            at: t0() + Duration::minutes(3),
        }))
        .unwrap();
    assert!(matches!(
        events[0],
        SubscriptionEvent::SecretRevealed { .. }
    ));
    let mut after = agg.clone();
    after.apply_event(events[0].clone());
    assert_eq!(after.state(), agg.state());
    assert_eq!(
        agg_with(vec![subscribed(), unsubscribed()])
            .decide(SubscriptionCommand::RevealSecret(RevealSecret {
                tenant_id: tenant(),
                at: t0(),
            }))
            .unwrap_err(),
        SubscriptionError::Deleted
    );
}

fn agg_with(events: Vec<SubscriptionEvent>) -> Subscription {
    let mut agg = Subscription::default();
    for e in events {
        agg.apply_event(e);
    }
    agg
}

fn cause() -> FailureCause {
    FailureCause {
        delivery_id: crate::DeliveryId::from_uuid(uuid::Uuid::from_u128(9)),
        error_kind: crate::outcome::ErrorKind::HttpStatus,
        status_code: Some(503),
        message: "the receiver answered 503".into(),
        failed_at: t0(),
    }
}

fn opened() -> SubscriptionEvent {
    SubscriptionEvent::EndpointCircuitOpened {
        consecutive_failures: 10,
        cause: cause(),
        opened_at: t0(),
        next_probe_at: t0() + Duration::seconds(30),
    }
}

fn open_cmd() -> SubscriptionCommand {
    SubscriptionCommand::OpenCircuit(OpenCircuit {
        tenant_id: tenant(),
        consecutive_failures: 10,
        cause: cause(),
        at: t0(),
        next_probe_at: t0() + Duration::seconds(30),
    })
}

#[test]
fn a_circuit_opens_once_probes_when_due_and_closes() {
    Fixture::with(())
        .given(vec![subscribed()])
        .when(open_cmd())
        .then_expect_events(vec![opened()]);
    Fixture::with(())
        .given(vec![subscribed(), opened()])
        .when(open_cmd())
        .then_expect_events(vec![]);
    let probe = |at: DateTime<Utc>| {
        SubscriptionCommand::ReleaseProbe(ReleaseProbe {
            tenant_id: tenant(),
            delivery_id: crate::DeliveryId::from_uuid(uuid::Uuid::from_u128(7)),
            at,
            next_probe_at: at + Duration::seconds(60),
        })
    };
    // Not before the probe is due.
    Fixture::with(())
        .given(vec![subscribed(), opened()])
        .when(probe(t0() + Duration::seconds(29)))
        .then_expect_events(vec![]);
    let released = SubscriptionEvent::EndpointCircuitProbeReleased {
        delivery_id: crate::DeliveryId::from_uuid(uuid::Uuid::from_u128(7)),
        released_at: t0() + Duration::seconds(30),
        next_probe_at: t0() + Duration::seconds(90),
    };
    Fixture::with(())
        .given(vec![subscribed(), opened()])
        .when(probe(t0() + Duration::seconds(30)))
        .then_expect_events(vec![released.clone()]);
    let closed = SubscriptionEvent::EndpointCircuitClosed {
        delivery_id: None,
        closed_at: t0() + Duration::seconds(31),
    };
    Fixture::with(())
        .given(vec![subscribed(), opened(), released.clone()])
        .when(SubscriptionCommand::CloseCircuit(CloseCircuit {
            tenant_id: tenant(),
            delivery_id: None,
            at: t0() + Duration::seconds(31),
        }))
        .then_expect_events(vec![closed.clone()]);
    let mut agg = Subscription::default();
    for e in [subscribed(), opened(), released] {
        agg.apply_event(e);
    }
    let c = agg.state().unwrap().circuit.clone().unwrap();
    assert_eq!(c.probes, 1);
    assert_eq!(c.next_probe_at, t0() + Duration::seconds(90));
    agg.apply_event(closed);
    assert!(agg.state().unwrap().circuit.is_none());
    assert_eq!(
        agg.state().unwrap().flow_reset_at,
        Some(t0() + Duration::seconds(31))
    );
}

#[test]
fn a_disabled_subscription_opens_no_circuit_and_enabling_resets_it() {
    let disabled = SubscriptionEvent::SubscriptionDisabled {
        reason: "x".into(),
        disabled_at: t0(),
    };
    Fixture::with(())
        .given(vec![subscribed(), disabled])
        .when(open_cmd())
        .then_expect_events(vec![]);
    let mut agg = Subscription::default();
    for e in [
        subscribed(),
        opened(),
        SubscriptionEvent::SubscriptionEnabled {
            enabled_at: t0() + Duration::hours(1),
        },
    ] {
        agg.apply_event(e);
    }
    assert!(agg.state().unwrap().circuit.is_none());
}

#[test]
fn rate_limits_are_set_changed_and_removed_with_version_1_1() {
    let limit = RateLimit::parse(5).unwrap();
    let mut cmd = update(None);
    cmd.rate_limit = Some(Some(limit));
    let set = SubscriptionEvent::SubscriptionUpdated {
        url: None,
        events: None,
        header_names: None,
        headers: None,
        description: None,
        signature_scheme: None,
        rate_limit: Some(Some(limit)),
        updated_at: t0() + Duration::minutes(1),
        channels: None,
        uid: None,
        metadata: None,
    };
    Fixture::with(())
        .given(vec![subscribed()])
        .when(SubscriptionCommand::Update(cmd.clone()))
        .then_expect_events(vec![set.clone()]);
    assert_eq!(cqrs_es::DomainEvent::event_version(&set), "1.1");
    assert_eq!(cqrs_es::DomainEvent::event_version(&subscribed()), "1.0");
    // Unchanged: nothing.
    Fixture::with(())
        .given(vec![subscribed(), set.clone()])
        .when(SubscriptionCommand::Update(cmd))
        .then_expect_events(vec![]);
    let json = serde_json::to_value(&set).unwrap();
    assert_eq!(json["rate_limit"], 5);
    let mut agg = Subscription::default();
    agg.apply_event(subscribed());
    agg.apply_event(set);
    assert_eq!(agg.state().unwrap().rate_limit, Some(limit));
}
