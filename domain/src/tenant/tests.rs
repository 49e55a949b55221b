//! Given/when/then tests for every tenant command, accepted and refused.

use super::*;
use crate::metadata::Metadata;
use crate::uid::Uid;
use crate::TenantId;
use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::DomainEvent;
use uuid::Uuid;

type Fixture = TestFramework<Tenant>;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}
fn id() -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(1))
}
fn key(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}
fn name(s: &str) -> TenantName {
    TenantName::parse(s).unwrap()
}
fn created() -> TenantEvent {
    TenantEvent::TenantCreated {
        tenant_id: id(),
        name: name("Acme"),
        created_at: t0(),
        uid: None,
        metadata: None,
    }
}
fn issued(n: u128) -> TenantEvent {
    TenantEvent::ApiKeyIssued {
        key_id: key(n),
        key_hash: format!("hash{n}"),
        hint: format!("hlk_…{n}"),
        issued_at: t0(),
    }
}
fn issue(n: u128) -> TenantCommand {
    TenantCommand::IssueKey(IssueApiKey {
        key_id: key(n),
        key_hash: format!("hash{n}"),
        hint: format!("hlk_…{n}"),
        at: t0(),
    })
}
fn revoke(n: u128, effective_in: Duration) -> TenantCommand {
    TenantCommand::RevokeKey(RevokeApiKey {
        key_id: key(n),
        effective_at: t0() + Duration::minutes(1) + effective_in,
        at: t0() + Duration::minutes(1),
    })
}

#[test]
fn a_tenant_is_created_once() {
    let create = TenantCommand::Create(CreateTenant {
        tenant_id: id(),
        name: name("Acme"),
        first_key: None,
        uid: None,
        metadata: Metadata::default(),
        at: t0(),
    });
    Fixture::with(())
        .given_no_previous_events()
        .when(create.clone())
        .then_expect_events(vec![created()]);
    Fixture::with(())
        .given(vec![created()])
        .when(create)
        .then_expect_error(TenantError::AlreadyExists);
}

#[test]
fn a_tenant_is_created_with_its_first_key_in_one_step() {
    let IssueApiKey {
        key_id,
        key_hash,
        hint,
        at,
    } = match issue(1) {
        TenantCommand::IssueKey(k) => k,
        _ => unreachable!(),
    };
    Fixture::with(())
        .given_no_previous_events()
        .when(TenantCommand::Create(CreateTenant {
            tenant_id: id(),
            name: name("Acme"),
            first_key: Some(IssueApiKey {
                key_id,
                key_hash,
                hint,
                at,
            }),
            uid: None,
            metadata: Metadata::default(),
            at: t0(),
        }))
        .then_expect_events(vec![created(), issued(1)]);
}

#[test]
fn a_rotation_issues_and_revokes_together_or_not_at_all() {
    let new_key = match issue(2) {
        TenantCommand::IssueKey(k) => k,
        _ => unreachable!(),
    };
    let rotate = |old: u128| {
        TenantCommand::RotateKey(RotateApiKey {
            new_key: new_key.clone(),
            old_key_id: key(old),
            old_until: t0() + Duration::hours(1),
            at: t0(),
        })
    };
    Fixture::with(())
        .given(vec![created(), issued(1)])
        .when(rotate(1))
        .then_expect_events(vec![
            issued(2),
            TenantEvent::ApiKeyRevoked {
                key_id: key(1),
                revoked_at: t0(),
                effective_at: t0() + Duration::hours(1),
            },
        ]);
    Fixture::with(())
        .given(vec![created(), issued(1)])
        .when(rotate(9))
        .then_expect_error(TenantError::KeyNotFound);
    // A key an earlier rotation is retiring cannot rotate again.
    Fixture::with(())
        .given(vec![
            created(),
            issued(1),
            issued(3),
            TenantEvent::ApiKeyRevoked {
                key_id: key(1),
                revoked_at: t0(),
                effective_at: t0() + Duration::hours(1),
            },
        ])
        .when(rotate(1))
        .then_expect_error(TenantError::KeyRetiring);
}

#[test]
fn renaming_to_the_same_name_records_nothing() {
    let rename = |n: &str| {
        TenantCommand::Rename(RenameTenant {
            name: name(n),
            at: t0(),
        })
    };
    Fixture::with(())
        .given(vec![created()])
        .when(rename("Acme"))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![created()])
        .when(rename("Acme Corp"))
        .then_expect_events(vec![TenantEvent::TenantRenamed {
            name: name("Acme Corp"),
            renamed_at: t0(),
        }]);
}

#[test]
fn keys_are_issued_up_to_the_cap_and_ids_are_unique() {
    Fixture::with(())
        .given(vec![created()])
        .when(issue(1))
        .then_expect_events(vec![issued(1)]);
    Fixture::with(())
        .given(vec![created(), issued(1)])
        .when(issue(1))
        .then_expect_error(TenantError::KeyExists);
    let mut history = vec![created()];
    history.extend((0..MAX_ACTIVE_KEYS as u128).map(issued));
    Fixture::with(())
        .given(history)
        .when(issue(99))
        .then_expect_error(TenantError::TooManyKeys(MAX_ACTIVE_KEYS));
}

#[test]
fn a_revocation_takes_effect_then_and_can_only_be_brought_forward() {
    let later = TenantEvent::ApiKeyRevoked {
        key_id: key(1),
        revoked_at: t0() + Duration::minutes(1),
        effective_at: t0() + Duration::minutes(61),
    };
    Fixture::with(())
        .given(vec![created(), issued(1)])
        .when(revoke(1, Duration::hours(1)))
        .then_expect_events(vec![later.clone()]);
    // Revoking again, later still, changes nothing.
    Fixture::with(())
        .given(vec![created(), issued(1), later.clone()])
        .when(revoke(1, Duration::hours(2)))
        .then_expect_events(vec![]);
    // Revoking now brings it forward.
    Fixture::with(())
        .given(vec![created(), issued(1), later])
        .when(revoke(1, Duration::zero()))
        .then_expect_events(vec![TenantEvent::ApiKeyRevoked {
            key_id: key(1),
            revoked_at: t0() + Duration::minutes(1),
            effective_at: t0() + Duration::minutes(1),
        }]);
    Fixture::with(())
        .given(vec![created()])
        .when(revoke(7, Duration::zero()))
        .then_expect_error(TenantError::KeyNotFound);
}

#[test]
fn a_deleted_tenant_accepts_nothing_more() {
    let deleted = TenantEvent::TenantDeleted { deleted_at: t0() };
    Fixture::with(())
        .given(vec![created()])
        .when(TenantCommand::Delete(DeleteTenant { at: t0() }))
        .then_expect_events(vec![deleted.clone()]);
    Fixture::with(())
        .given(vec![created(), deleted.clone()])
        .when(issue(1))
        .then_expect_error(TenantError::Deleted);
    Fixture::with(())
        .given(vec![created(), deleted])
        .when(TenantCommand::Delete(DeleteTenant { at: t0() }))
        .then_expect_error(TenantError::Deleted);
}

#[test]
fn keys_work_until_their_revocation_takes_effect() {
    let mut t = Tenant::default();
    for e in [
        created(),
        issued(1),
        TenantEvent::ApiKeyRevoked {
            key_id: key(1),
            revoked_at: t0(),
            effective_at: t0() + Duration::hours(1),
        },
    ] {
        t.apply_event(e);
    }
    let k = t.state().unwrap().key(key(1)).unwrap();
    assert!(k.works_at(t0() + Duration::minutes(59)));
    assert!(!k.works_at(t0() + Duration::hours(1)));
}

#[test]
fn names_are_trimmed_and_checked() {
    assert_eq!(TenantName::parse("  Acme ").unwrap().as_str(), "Acme");
    assert!(TenantName::parse("").is_err());
    assert!(TenantName::parse("a\u{7}b").is_err());
    assert!(TenantName::parse(&"x".repeat(201)).is_err());
}

#[test]
fn settings_change_only_when_they_differ() {
    let strict = |on| {
        TenantCommand::ChangeSettings(ChangeSettings {
            changes: SettingsChanges {
                strict_event_types: Some(on),
            },
            at: t0(),
        })
    };
    let changed = TenantEvent::TenantSettingsChanged {
        strict_event_types: Some(true),
        changed_at: t0(),
    };
    Fixture::with(())
        .given(vec![created()])
        .when(strict(true))
        .then_expect_events(vec![changed.clone()]);
    Fixture::with(())
        .given(vec![created()])
        .when(strict(false))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![created(), changed.clone()])
        .when(strict(true))
        .then_expect_events(vec![]);
    Fixture::with(())
        .given(vec![
            created(),
            TenantEvent::TenantDeleted { deleted_at: t0() },
        ])
        .when(strict(true))
        .then_expect_error(TenantError::Deleted);
    let mut tenant = Tenant::default();
    for e in [created(), changed] {
        tenant.apply_event(e);
    }
    assert!(tenant.state().unwrap().settings.strict_event_types);
}

#[test]
fn states_stored_before_settings_read_with_the_defaults() {
    let mut tenant = Tenant::default();
    tenant.apply_event(created());
    let mut json = serde_json::to_value(tenant.state().unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("settings");
    let state: TenantState = serde_json::from_value(json).unwrap();
    assert!(!state.settings.strict_event_types);
}

#[test]
fn uid_and_metadata_are_kept_and_changed() {
    let uid = Uid::parse("acme", "uid").unwrap();
    let events = Tenant::default()
        .decide(TenantCommand::Create(CreateTenant {
            tenant_id: id(),
            name: name("Acme"),
            first_key: None,
            uid: Some(uid.clone()),
            metadata: Metadata::default(),
            at: t0(),
        }))
        .unwrap();
    assert_eq!(events[0].event_version(), "1.1");
    assert_eq!(created().event_version(), "1.0");
    let mut tenant = Tenant::default();
    tenant.apply_event(events[0].clone());
    assert_eq!(tenant.state().unwrap().uid.as_ref(), Some(&uid));
    let labels = Metadata::parse([("k".to_string(), "v".to_string())].into(), "metadata").unwrap();
    let unchanged = tenant
        .decide(TenantCommand::ChangeDetails(ChangeDetails {
            uid: Some(Some(uid)),
            metadata: None,
            at: t0(),
        }))
        .unwrap();
    assert!(unchanged.is_empty());
    let changed = tenant
        .decide(TenantCommand::ChangeDetails(ChangeDetails {
            uid: Some(None),
            metadata: Some(labels.clone()),
            at: t0(),
        }))
        .unwrap();
    tenant.apply_event(changed[0].clone());
    assert_eq!(tenant.state().unwrap().uid, None);
    assert_eq!(tenant.state().unwrap().metadata, labels);
    let json = serde_json::to_value(&changed[0]).unwrap();
    assert_eq!(json["type"], "TenantDetailsChanged");
    assert!(json["uid"].is_null());
}

#[test]
fn updated_at_never_goes_before_created_at() {
    // A key issued with its tenant may carry a time read a moment earlier.
    let mut tenant = Tenant::default();
    tenant.apply_event(created());
    tenant.apply_event(TenantEvent::ApiKeyIssued {
        key_id: key(1),
        key_hash: "hash1".into(),
        hint: "hlk_…1".into(),
        issued_at: t0() - Duration::microseconds(20),
    });
    let state = tenant.state().unwrap();
    assert_eq!(state.created_at, t0());
    assert_eq!(state.updated_at, t0());
    assert_eq!(state.keys.len(), 1);
}
