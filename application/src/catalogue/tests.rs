//! Catalogue decisions against in-memory ports: built-ins merged with a
//! tenant's own types, schema checks on define and publish, strict mode,
//! filter warnings and point-in-time reads.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::history::HistoryRequest;
use crate::ports::Clock;
use crate::testing::{tenant, World};
use hookline_domain::catalogue::{EventTypeSpec, BUILTINS};
use hookline_domain::{EventPattern, EventType};
use serde_json::json;
use serde_json::value::RawValue;

fn name(s: &str) -> EventType {
    EventType::parse(s, "name").unwrap()
}

fn raw(v: serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&v).unwrap()
}

fn shipped(schema: Option<serde_json::Value>) -> NewEventType {
    NewEventType {
        name: name("order.shipped"),
        spec: EventTypeSpec {
            group: "Orders".into(),
            description: "An order left the warehouse.".into(),
            schema,
            example: Some(json!({"order_id": "o-1"})),
        },
    }
}

fn all(page: &CataloguePage) -> Vec<&str> {
    page.data.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn a_tenant_starts_with_the_builtins_grouped_and_pages_by_group_then_name() {
    let world = World::default();
    let cat = world.catalogue();
    let t = tenant(1);
    let first = cat
        .list(
            t,
            ListEventTypes::parse(false, None, Some(5), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(first.data.len(), 5);
    let mut names: Vec<String> = all(&first).iter().map(ToString::to_string).collect();
    let mut cursor = first.next_cursor.clone();
    while let Some(c) = cursor {
        let page = cat
            .list(
                t,
                ListEventTypes::parse(false, None, Some(5), Some(&c)).unwrap(),
            )
            .await
            .unwrap();
        names.extend(all(&page).iter().map(ToString::to_string));
        cursor = page.next_cursor;
    }
    assert_eq!(names.len(), BUILTINS.len());
    let groups: Vec<&str> = first.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups[0], "Customers", "groups in order: {groups:?}");
    assert!(first.data.iter().all(|t| t.builtin && t.schema.is_some()));
    let only = cat
        .list(
            t,
            ListEventTypes::parse(false, Some("Payments".into()), None, None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(all(&only), vec!["payment.failed", "payment.received"]);
    assert!(ListEventTypes::parse(false, None, None, Some("nope")).is_err());
}

#[tokio::test]
async fn defining_checks_the_schema_and_the_example_against_it() {
    let world = World::default();
    let cat = world.catalogue();
    let ctx = world.ctx(tenant(1));
    let bad = cat
        .define(&ctx, shipped(Some(json!({"type": 5}))))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("/schema/type"), "{bad}");
    let mut wrong_example = shipped(Some(json!({"type": "object", "required": ["id"]})));
    wrong_example.spec.example = Some(json!({"order_id": "o-1"}));
    let err = cat.define(&ctx, wrong_example).await.unwrap_err();
    assert!(err.to_string().contains("/example"), "{err}");
    let created = cat
        .define(&ctx, shipped(Some(json!({"type": "object"}))))
        .await
        .unwrap();
    assert!(!created.value.builtin);
    let again = cat.define(&ctx, shipped(None)).await.unwrap_err();
    assert!(matches!(
        again,
        AppError::Conflict {
            code: "event_type_exists",
            ..
        }
    ));
    // A built-in is already there.
    let mut over = shipped(None);
    over.name = name("invoice.created");
    let err = cat.define(&ctx, over).await.unwrap_err();
    assert!(matches!(
        err,
        AppError::Conflict {
            code: "event_type_exists",
            ..
        }
    ));
}

#[tokio::test]
async fn publishing_is_checked_against_the_schema_with_pointers() {
    let world = World::default();
    let cat = world.catalogue();
    let t = tenant(1);
    let err = cat
        .admit(t, &name("invoice.created"), &raw(json!({"amount": 12})))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/data: \"invoice_id\" is a required property"),
        "{text}"
    );
    assert!(text.contains("/data/amount"), "{text}");
    let ok = cat
        .admit(
            t,
            &name("invoice.created"),
            &raw(json!({"invoice_id": "i", "invoice_number": "1", "amount": "1.00", "currency": "USD"})),
        )
        .await
        .unwrap();
    assert_eq!(ok.deprecated_since, None);
    // Unknown types pass when strict mode is off.
    cat.admit(t, &name("anything.goes"), &raw(json!({"x": 1})))
        .await
        .unwrap();
    // Clearing a built-in's schema lets anything through.
    let ctx = world.ctx(t);
    cat.update(
        &ctx,
        &name("invoice.created"),
        EventTypeChanges {
            schema: Some(None),
            deprecated: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let admitted = cat
        .admit(t, &name("invoice.created"), &raw(json!({"amount": 12})))
        .await
        .unwrap();
    assert_eq!(admitted.deprecated_since, Some(world.clock.now()));
    // Another tenant still has the built-in as it was.
    assert!(cat
        .admit(tenant(2), &name("invoice.created"), &raw(json!({})))
        .await
        .is_err());
}

#[tokio::test]
async fn archiving_hides_a_type_and_warnings_name_filter_entries_not_in_the_catalogue() {
    let world = World::default();
    let cat = world.catalogue();
    let t = tenant(1);
    let ctx = world.ctx(t);
    cat.archive(&ctx, &name("inventory.low")).await.unwrap();
    let page = cat
        .list(t, ListEventTypes::parse(false, None, None, None).unwrap())
        .await
        .unwrap();
    assert!(!all(&page).contains(&"inventory.low"));
    let with = cat
        .list(t, ListEventTypes::parse(true, None, None, None).unwrap())
        .await
        .unwrap();
    assert!(with
        .data
        .iter()
        .any(|t| t.name == "inventory.low" && t.archived));
    let patterns: Vec<EventPattern> = [
        "invoice.created",
        "invoice.creatd",
        "inventory.low",
        "nothing.*",
        "invoice.*",
        "*",
    ]
    .iter()
    .map(|p| EventPattern::parse(p, "events").unwrap())
    .collect();
    let warnings = cat.filter_warnings(t, &patterns).await;
    assert_eq!(
        warnings,
        vec![
            "events[1]: 'invoice.creatd' is not in the catalogue",
            "events[2]: 'inventory.low' is archived in the catalogue",
            "events[3]: 'nothing.*' matches no event type in the catalogue",
        ]
    );
    // Changing an archived type is refused; defining it again revives it.
    let err = cat
        .update(
            &ctx,
            &name("inventory.low"),
            EventTypeChanges {
                description: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AppError::Conflict {
            code: "event_type_archived",
            ..
        }
    ));
}

#[tokio::test]
async fn as_of_reads_and_histories_follow_the_log() {
    let world = World::default();
    let cat = world.catalogue();
    let t = tenant(1);
    let ctx = world.ctx(t);
    let before = world.clock.now();
    world.clock.advance(chrono::Duration::minutes(1));
    cat.update(
        &ctx,
        &name("payment.failed"),
        EventTypeChanges {
            description: Some("A card payment failed.".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let then = cat
        .get(t, &name("payment.failed"), Some(before))
        .await
        .unwrap();
    assert_eq!(then.description, "A payment failed.");
    let now = cat.get(t, &name("payment.failed"), None).await.unwrap();
    assert_eq!(now.description, "A card payment failed.");
    let all = HistoryRequest::default();
    let history = cat.history(t, &name("payment.failed"), all).await.unwrap();
    let kinds: Vec<&str> = history.data.iter().map(|h| h.event_type.as_str()).collect();
    assert_eq!(kinds, vec!["EventTypeDefined", "EventTypeUpdated"]);
    assert_eq!(history.next_cursor, None);
    // A page at a time: the cursor continues after the page's last event.
    let first = cat
        .history(
            t,
            &name("payment.failed"),
            HistoryRequest::parse(Some(1), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(first.data.len(), 1);
    assert_eq!(first.data[0].event_type, "EventTypeDefined");
    let next = HistoryRequest::parse(Some(1), first.next_cursor.as_deref()).unwrap();
    let second = cat.history(t, &name("payment.failed"), next).await.unwrap();
    assert_eq!(second.data.len(), 1);
    assert_eq!(second.data[0].event_type, "EventTypeUpdated");
    assert_eq!(second.next_cursor, None);
    assert!(cat
        .history(t, &name("payment.received"), all)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(cat.history(t, &name("no.such"), all).await.is_err());
    assert!(cat.get(t, &name("no.such"), Some(before)).await.is_err());
    let example =
        serde_json::to_value(cat.example(t, &name("payment.failed")).await.unwrap()).unwrap();
    assert_eq!(example["event"], "payment.failed");
    assert_eq!(example["data"]["payment_id"], "pay-457");
    assert_eq!(example["tenant_id"], t.to_string());
}

#[tokio::test]
async fn operational_types_are_hooklines_to_describe() {
    let world = World::default();
    let cat = world.catalogue();
    let t = tenant(1);
    let ctx = world.ctx(t);
    let opened = name("hookline.circuit.opened");
    let refused = |e: AppError| match e {
        AppError::Conflict { code, detail } => {
            assert_eq!(code, "event_type_reserved");
            assert!(detail.contains("operational"), "{detail}");
        }
        other => panic!("not a conflict: {other:?}"),
    };
    refused(cat.archive(&ctx, &opened).await.unwrap_err());
    refused(
        cat.update(
            &ctx,
            &opened,
            EventTypeChanges {
                description: Some("mine now".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    let mut own = shipped(None);
    own.name = name("hookline.mine.made");
    refused(cat.define(&ctx, own).await.unwrap_err());
    // The built-in is untouched and still listed.
    let got = cat.get(t, &opened, None).await.unwrap();
    assert!(got.builtin && !got.archived);
}

/// Counts compilations, compiling as the in-memory double does.
#[derive(Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl crate::ports::SchemaCompiler for Counting {
    fn compile(
        &self,
        schema: &serde_json::Value,
    ) -> Result<std::sync::Arc<dyn crate::ports::DataSchema>, Vec<crate::ports::SchemaViolation>>
    {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        crate::testing::TinySchemas.compile(schema)
    }
}

#[tokio::test]
async fn a_reload_compiles_only_the_schemas_that_changed() {
    use std::sync::atomic::Ordering;
    let world = World::default();
    let counting = std::sync::Arc::new(Counting::default());
    let cat = CatalogueService::new(
        world.shared.clone(),
        world.store(()),
        std::sync::Arc::new(crate::testing::LogCatalogue(world.log.clone())),
        world.tenants(),
        counting.clone(),
    );
    let compiles = || counting.0.load(Ordering::SeqCst);
    let (a, b) = (tenant(1), tenant(2));
    let object = Some(json!({"type": "object", "required": ["order_id"]}));
    cat.define(&world.ctx(a), shipped(object.clone()))
        .await
        .unwrap();
    let first = compiles();
    let admit = |t| {
        let cat = &cat;
        async move {
            cat.admit(t, &name("order.shipped"), &raw(json!({"order_id": "o-1"})))
                .await
        }
    };
    admit(a).await.unwrap();
    assert_eq!(compiles(), first + 1, "the first load compiles the type");
    assert!(
        admit(a).await.is_ok() && compiles() == first + 1,
        "then it is cached"
    );
    // Another tenant's change moves every read model: the schema that did
    // not change is not compiled again.
    cat.define(&world.ctx(b), shipped(object.clone()))
        .await
        .unwrap();
    let after_b = compiles();
    assert!(admit(a).await.is_ok());
    assert_eq!(compiles(), after_b, "nothing recompiled for tenant 1");
    // Its own new type: only that one is compiled.
    let mut other = shipped(object);
    other.name = name("order.packed");
    cat.define(&world.ctx(a), other).await.unwrap();
    let after_own = compiles();
    assert!(admit(a).await.is_ok());
    assert_eq!(compiles(), after_own + 1, "only the new type compiled");
    // And the check still holds.
    assert!(cat
        .admit(a, &name("order.shipped"), &raw(json!({"x": 1})))
        .await
        .is_err());
}
