//! Subscription decisions against in-memory ports: secrets shown once,
//! duplicates refused, rotations keeping the old secret for the overlap.

use super::*;
use crate::testing::{tenant, World};
use crate::AppError;
use hookline_domain::subscription::{CustomHeaders, SubscriptionStatus};
use hookline_domain::{AllowList, EventFilter, SignatureScheme, TargetUrl};
use std::collections::BTreeMap;

fn service(world: &World) -> SubscriptionService {
    SubscriptionService::new(
        world.shared.clone(),
        world.store(()),
        world.subscriptions(),
        world.uids(),
        SubscriptionSettings {
            allow_list: AllowList::default(),
            rotation_overlap: chrono::Duration::hours(24),
            max_per_tenant: 3,
        },
    )
}

fn create(url: &str, events: &[&str]) -> CreateSubscription {
    CreateSubscription {
        headers: CustomHeaders::parse(BTreeMap::from([(
            "Authorization".to_string(),
            "Bearer s3cr3t".to_string(),
        )]))
        .unwrap(),
        signature_scheme: SignatureScheme::default(),
        ..CreateSubscription::new(
            TargetUrl::parse(url, &AllowList::default()).unwrap(),
            EventFilter::parse(events).unwrap(),
        )
    }
}

#[tokio::test]
async fn the_secret_is_generated_shown_once_and_sealed_in_the_log() {
    let world = World::default();
    let s = service(&world);
    let ctx = world.ctx(tenant(1));
    let created = s
        .create(&ctx, create("https://a.example/h", &["a.*"]))
        .await
        .unwrap()
        .value;
    assert!(created.secret.starts_with("whsec_") && created.secret.len() > 30);
    let read = s
        .get(tenant(1), created.id, ReadSubscription::default())
        .await
        .unwrap();
    assert_ne!(read.secret, created.secret);
    assert!(read.secret.contains('…'), "masked: {}", read.secret);
    // The log carries neither the secret nor the header value in clear.
    let log = format!("{:?}", world.log.all());
    assert!(!log.contains(&created.secret[6..]));
    // Header values in full only where they were set; masked in reads.
    assert_eq!(created.headers["Authorization"], "Bearer s3cr3t");
    assert_eq!(read.headers["Authorization"], "…cr3t");
}

#[tokio::test]
async fn an_active_duplicate_is_refused_and_an_empty_patch_is_a_400() {
    let world = World::default();
    let s = service(&world);
    let ctx = world.ctx(tenant(1));
    let first = s
        .create(&ctx, create("https://a.example/h", &["a.*"]))
        .await
        .unwrap()
        .value;
    let dup = s
        .create(&ctx, create("https://a.example/h", &["a.*"]))
        .await
        .unwrap_err();
    assert!(matches!(
        dup,
        AppError::Conflict {
            code: "duplicate_subscription",
            ..
        }
    ));
    // Another tenant may subscribe the same URL.
    s.create(
        &world.ctx(tenant(2)),
        create("https://a.example/h", &["a.*"]),
    )
    .await
    .unwrap();
    let empty = s
        .update(&ctx, first.id, SubscriptionChanges::default())
        .await
        .unwrap_err();
    assert!(matches!(empty, AppError::BadRequest(_)));
    // Once deleted, the same subscription may be created again.
    s.delete(&ctx, first.id).await.unwrap();
    s.create(&ctx, create("https://a.example/h", &["a.*"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotation_keeps_the_old_secret_for_the_overlap() {
    let world = World::default();
    let s = service(&world);
    let ctx = world.ctx(tenant(1));
    let created = s
        .create(&ctx, create("https://a.example/h", &["a.*"]))
        .await
        .unwrap()
        .value;
    let rotated = s
        .rotate_secret(&ctx, created.id, None, None)
        .await
        .unwrap()
        .value;
    assert_ne!(rotated.secret, created.secret);
    assert_eq!(
        rotated.previous_secret_expires_at,
        Some(world.shared.clock.now() + chrono::Duration::hours(24))
    );
    let disabled = s
        .disable(&ctx, created.id, "maintenance".into())
        .await
        .unwrap()
        .value;
    assert_eq!(disabled.status, SubscriptionStatus::Disabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("maintenance"));
    // Another tenant's subscription does not exist for us.
    let theirs = s.enable(&world.ctx(tenant(2)), created.id).await;
    assert!(matches!(theirs, Err(AppError::NotFound { .. })));
}

#[tokio::test]
async fn a_tenant_holds_at_most_its_subscription_limit() {
    let world = World::default();
    let s = service(&world);
    let ctx = world.ctx(tenant(1));
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = s
            .create(&ctx, create(&format!("https://a.example/{n}"), &["a.*"]))
            .await
            .unwrap();
        ids.push(created.value.id);
    }
    let over = s
        .create(&ctx, create("https://a.example/x", &["a.*"]))
        .await
        .unwrap_err();
    assert!(matches!(
        over,
        AppError::Conflict {
            code: "subscription_limit_reached",
            ..
        }
    ));
    // Disabled ones count; deleted ones do not; other tenants are apart.
    s.disable(&ctx, ids[0], "paused".into()).await.unwrap();
    assert!(s
        .create(&ctx, create("https://a.example/y", &["a.*"]))
        .await
        .is_err());
    s.delete(&ctx, ids[1]).await.unwrap();
    s.create(&ctx, create("https://a.example/z", &["a.*"]))
        .await
        .unwrap();
    s.create(
        &world.ctx(tenant(2)),
        create("https://a.example/z", &["a.*"]),
    )
    .await
    .unwrap();
}
