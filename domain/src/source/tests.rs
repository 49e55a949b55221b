use super::*;
use crate::pointer::JsonPointer;
use crate::sealed::{Sealed, SecretHint};
use crate::{SourceId, TenantId};
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(1))
}

fn sealed(tag: &str) -> Sealed {
    Sealed {
        alg: "test".into(),
        key_id: "k".into(),
        nonce: tag.into(),
        ciphertext: tag.into(),
    }
}

fn create(kind: SourceKind, header: Option<&str>) -> CreateSource {
    CreateSource {
        source_id: SourceId::from_uuid(Uuid::from_u128(7)),
        tenant_id: tenant(),
        name: SourceName::parse("InFlow production").unwrap(),
        kind,
        header_name: header.map(|h| HeaderName::parse(h, "header_name").unwrap()),
        event_type: kind.default_event_type(),
        data: kind.default_data(),
        idempotency: Idempotency::new(kind.default_delivery_key(), None).unwrap(),
        secret: sealed("s1"),
        secret_hint: SecretHint::of("s1"),
        at: t0(),
    }
}

#[test]
fn header_names_fit_the_kind() {
    assert_eq!(
        Source::create_new(create(SourceKind::HeaderSecret, None)).unwrap_err(),
        SourceError::HeaderNameRequired
    );
    assert!(matches!(
        Source::create_new(create(SourceKind::Inflow, Some("x-a"))).unwrap_err(),
        SourceError::HeaderNameNotUsed(SourceKind::Inflow)
    ));
    let SourceEvent::SourceCreated { header_name, .. } =
        Source::create_new(create(SourceKind::Siigo, None)).unwrap()
    else {
        panic!("created")
    };
    assert_eq!(header_name.unwrap().as_str(), DEFAULT_SECRET_HEADER);
}

#[test]
fn recorded_headers_never_carry_a_secret() {
    let by_header = |h: &str| {
        Idempotency::new(
            DeliveryKey::Header(HeaderName::parse(h, "idempotency.header").unwrap()),
            None,
        )
        .unwrap()
    };
    assert_eq!(
        Source::create_new(create(SourceKind::HeaderSecret, Some("X-Request-Id"))).unwrap_err(),
        SourceError::SecretInRequestId
    );
    let same_as_secret = CreateSource {
        idempotency: by_header("X-Tok"),
        ..create(SourceKind::HeaderSecret, Some("x-tok"))
    };
    assert_eq!(
        Source::create_new(same_as_secret).unwrap_err(),
        SourceError::DeliveryIdIsSecret("x-tok".into())
    );
    for credential in [
        "Authorization",
        "cookie",
        "Proxy-Authorization",
        "X-Api-Key",
    ] {
        let cmd = CreateSource {
            idempotency: by_header(credential),
            ..create(SourceKind::Inflow, None)
        };
        assert!(
            matches!(
                Source::create_new(cmd),
                Err(SourceError::DeliveryIdIsCredential(_))
            ),
            "{credential}"
        );
    }
    // The request id may be the delivery id; a Siigo source's default
    // secret header is not the delivery id header.
    let request_id_as_delivery_id = CreateSource {
        idempotency: by_header("x-request-id"),
        ..create(SourceKind::Siigo, None)
    };
    assert!(Source::create_new(request_id_as_delivery_id).is_ok());

    // An update is checked against what it keeps: moving the secret to
    // the delivery id header is refused.
    let created = Source::create_new(CreateSource {
        idempotency: by_header("x-delivery"),
        ..create(SourceKind::HeaderSecret, Some("x-tok"))
    })
    .unwrap();
    let update = UpdateSource {
        tenant_id: tenant(),
        name: None,
        header_name: Some(HeaderName::parse("X-Delivery", "header_name").unwrap()),
        event_type: None,
        data: None,
        idempotency: None,
        at: t0(),
    };
    TestFramework::<Source>::with(())
        .given(vec![created])
        .when(SourceCommand::Update(update))
        .then_expect_error(SourceError::DeliveryIdIsSecret("x-delivery".into()));
}

#[test]
fn updates_record_only_changes_and_deleted_sources_refuse() {
    let created = Source::create_new(create(SourceKind::Inflow, None)).unwrap();
    let same = UpdateSource {
        tenant_id: tenant(),
        name: Some(SourceName::parse("InFlow production").unwrap()),
        header_name: None,
        event_type: None,
        data: Some(JsonPointer::parse("/data", "data").unwrap()),
        idempotency: None,
        at: t0(),
    };
    TestFramework::<Source>::with(())
        .given(vec![created.clone()])
        .when(SourceCommand::Update(same.clone()))
        .then_expect_events(vec![]);
    let renamed = UpdateSource {
        name: Some(SourceName::parse("InFlow").unwrap()),
        ..same.clone()
    };
    TestFramework::<Source>::with(())
        .given(vec![created.clone()])
        .when(SourceCommand::Update(renamed))
        .then_expect_events(vec![SourceEvent::SourceUpdated {
            name: Some(SourceName::parse("InFlow").unwrap()),
            header_name: None,
            event_type: None,
            data: None,
            idempotency: None,
            updated_at: t0(),
        }]);
    TestFramework::<Source>::with(())
        .given(vec![
            created,
            SourceEvent::SourceDeleted { deleted_at: t0() },
        ])
        .when(SourceCommand::Update(same))
        .then_expect_error(SourceError::Deleted);
}

#[test]
fn rotations_keep_overlaps_up_to_a_limit() {
    let mut source = Source::default();
    source.apply_event(Source::create_new(create(SourceKind::Inflow, None)).unwrap());
    let rotate = |n: i64| RotateSourceSecret {
        tenant_id: tenant(),
        secret: sealed(&format!("s{n}")),
        secret_hint: SecretHint::of("x"),
        previous_secret_expires_at: t0() + Duration::hours(24),
        at: t0() + Duration::minutes(n),
    };
    for n in 1..5 {
        let events = source
            .decide(SourceCommand::RotateSecret(rotate(n)))
            .unwrap();
        for e in events {
            source.apply_event(e);
        }
    }
    let state = source.state().unwrap();
    assert_eq!(
        state.previous_secrets_at(t0() + Duration::hours(1)).count(),
        4
    );
    assert_eq!(
        source
            .decide(SourceCommand::RotateSecret(rotate(9)))
            .unwrap_err(),
        SourceError::TooManySecrets(5)
    );
    let other = RotateSourceSecret {
        tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
        ..rotate(9)
    };
    assert_eq!(
        source
            .decide(SourceCommand::RotateSecret(other))
            .unwrap_err(),
        SourceError::NotFound
    );
}
