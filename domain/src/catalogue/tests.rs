//! Given/when/then tests of the catalogue's commands.

use super::*;
use chrono::TimeZone;
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

type Fixture = TestFramework<CatalogueEntry>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}
fn tenant() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(1))
}
fn name(s: &str) -> EventType {
    EventType::parse(s, "name").unwrap()
}
fn spec(group: &str) -> EventTypeSpec {
    EventTypeSpec {
        group: group.into(),
        description: "d".into(),
        schema: Some(json!({"type": "object"})),
        example: Some(json!({"a": 1})),
    }
}
fn defined_custom() -> CatalogueEvent {
    defined(tenant(), name("order.shipped"), spec("Orders"), false, t0())
}
fn update(base: Option<EventTypeSpec>) -> UpdateEventType {
    UpdateEventType {
        tenant_id: tenant(),
        name: name("invoice.created"),
        group: Some("Billing".into()),
        description: None,
        schema: Some(None),
        example: None,
        deprecated: Some(true),
        base,
        at: t0(),
    }
}

#[test]
fn a_type_is_defined_once_and_again_only_after_archiving() {
    let define = CatalogueCommand::Define(DefineEventType {
        tenant_id: tenant(),
        name: name("order.shipped"),
        spec: spec("Orders"),
        base: None,
        at: t0(),
    });
    Fixture::with(())
        .given_no_previous_events()
        .when(define.clone())
        .then_expect_events(vec![defined_custom()]);
    // A built-in the tenant never archived is already there.
    let mut over_builtin = define.clone();
    if let CatalogueCommand::Define(d) = &mut over_builtin {
        d.base = Some(spec("Invoices"));
    }
    Fixture::with(())
        .given_no_previous_events()
        .when(over_builtin)
        .then_expect_error(CatalogueError::AlreadyExists);
    Fixture::with(())
        .given(vec![defined_custom()])
        .when(define.clone())
        .then_expect_error(CatalogueError::AlreadyExists);
    Fixture::with(())
        .given(vec![
            defined_custom(),
            CatalogueEvent::EventTypeArchived { archived_at: t0() },
        ])
        .when(define)
        .then_expect_events(vec![defined_custom()]);
}

#[test]
fn changing_a_builtin_records_it_first() {
    let base = spec("Invoices");
    Fixture::with(())
        .given_no_previous_events()
        .when(CatalogueCommand::Update(update(Some(base.clone()))))
        .then_expect_events(vec![
            defined(tenant(), name("invoice.created"), base, true, t0()),
            CatalogueEvent::EventTypeUpdated {
                group: Some("Billing".into()),
                description: None,
                schema: Some(None),
                example: None,
                updated_at: t0(),
            },
            CatalogueEvent::EventTypeDeprecated {
                deprecated: true,
                changed_at: t0(),
            },
        ]);
    // Not a built-in and never defined: not found.
    Fixture::with(())
        .given_no_previous_events()
        .when(CatalogueCommand::Update(update(None)))
        .then_expect_error(CatalogueError::NotFound);
}

#[test]
fn archived_types_accept_no_changes_and_archiving_twice_records_nothing() {
    let archived = CatalogueEvent::EventTypeArchived { archived_at: t0() };
    let mut cmd = update(None);
    cmd.name = name("order.shipped");
    Fixture::with(())
        .given(vec![defined_custom(), archived.clone()])
        .when(CatalogueCommand::Update(cmd))
        .then_expect_error(CatalogueError::Archived);
    Fixture::with(())
        .given(vec![defined_custom(), archived])
        .when(CatalogueCommand::Archive(ArchiveEventType {
            tenant_id: tenant(),
            name: name("order.shipped"),
            base: None,
            at: t0(),
        }))
        .then_expect_events(vec![]);
}

#[test]
fn an_unchanged_update_records_nothing() {
    let mut cmd = update(None);
    cmd.name = name("order.shipped");
    cmd.group = Some("Orders".into());
    cmd.schema = Some(Some(json!({"type": "object"})));
    cmd.deprecated = Some(false);
    Fixture::with(())
        .given(vec![defined_custom()])
        .when(CatalogueCommand::Update(cmd))
        .then_expect_events(vec![]);
}

#[test]
fn schemas_and_examples_with_nul_characters_are_refused() {
    let mut with_nul_key = spec("G");
    with_nul_key.example = Some(serde_json::json!({"a\u{0}": 1}));
    assert_eq!(with_nul_key.check().unwrap_err().field, "example");
    let mut with_nul_string = spec("G");
    with_nul_string.schema = Some(serde_json::json!({"description": ["x\u{0}"]}));
    assert_eq!(with_nul_string.check().unwrap_err().field, "schema");
    let mut fine = spec("G");
    fine.example = Some(serde_json::json!({"a": "\u{1}"}));
    fine.schema = Some(serde_json::json!({"type": "object"}));
    assert!(fine.check().is_ok());
}

/// Schemas and examples nest no deeper than an event's data: a type is
/// read back inside its state, and JSON readers stop at 128 levels.
#[test]
fn schemas_and_examples_nest_no_deeper_than_event_data() {
    let nested = |levels: usize| {
        let text = format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let mut deep = spec("G");
    deep.example = Some(nested(crate::payload::MAX_DEPTH + 1));
    let err = deep.check().unwrap_err();
    assert_eq!(err.field, "example");
    assert!(err.reason.contains("deeper than 64"), "{}", err.reason);
    let mut deep_schema = spec("G");
    deep_schema.schema = Some(nested(100));
    assert_eq!(deep_schema.check().unwrap_err().field, "schema");
    let mut fine = spec("G");
    fine.example = Some(nested(crate::payload::MAX_DEPTH));
    assert!(fine.check().is_ok());
}

/// Postgres keeps a number in a stored event as its exact decimal digits
/// (`-1.7976931348623157e308` comes back as 309 digits); reading them
/// must give the same number again, not "number out of range".
#[test]
fn numbers_read_back_from_their_exact_decimal_digits() {
    let digits = format!("-17976931348623157{}", "0".repeat(292));
    let back: serde_json::Value = serde_json::from_str(&digits).unwrap();
    assert_eq!(back.as_f64(), Some(f64::MIN));
    let spec: EventTypeSpec = serde_json::from_str(&format!(
        r#"{{"group":"G","description":"d","example":{{"n":{digits}}}}}"#
    ))
    .unwrap();
    assert_eq!(spec.example.unwrap()["n"].as_f64(), Some(f64::MIN));
}

#[test]
fn a_type_defined_again_keeps_when_it_was_first_created() {
    let later = t0() + chrono::Duration::days(3);
    let mut entry = CatalogueEntry::default();
    for event in [
        defined_custom(),
        CatalogueEvent::EventTypeArchived { archived_at: t0() },
        defined(
            tenant(),
            name("order.shipped"),
            spec("Shipping"),
            false,
            later,
        ),
    ] {
        cqrs_es::Aggregate::apply(&mut entry, event);
    }
    let state = entry.state().unwrap();
    assert_eq!(state.created_at, t0());
    assert_eq!(state.updated_at, later);
    assert!(!state.archived);
    assert_eq!(state.spec.group, "Shipping");
}
