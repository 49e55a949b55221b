//! Svix's prefixed ids over Hookline's UUIDs (`app_` + the tenant id's 32
//! hex digits, `ep_`, `msg_`, `atmpt_`, `qtask_`), and path segments that
//! name an object by id or by its uid (`eventId` for messages).

use super::error::{Invalid, SvixError, SvixResult};
use hookline_domain::signature::{svix_message_id, SVIX_MESSAGE_PREFIX};
use hookline_domain::uid::Uid;
use hookline_domain::{EventId, SubscriptionId, TenantId};
use uuid::Uuid;

pub const APP: &str = "app_";
pub const ENDPOINT: &str = "ep_";
pub const ATTEMPT: &str = "atmpt_";
pub const TASK: &str = "qtask_";

fn prefixed(prefix: &str, id: &Uuid) -> String {
    format!("{prefix}{}", id.simple())
}

pub fn app(id: &TenantId) -> String {
    prefixed(APP, id.as_uuid())
}

pub fn endpoint(id: &SubscriptionId) -> String {
    prefixed(ENDPOINT, id.as_uuid())
}

pub fn message(id: &EventId) -> String {
    svix_message_id(id)
}

pub fn attempt(id: &Uuid) -> String {
    prefixed(ATTEMPT, id)
}

pub fn task(id: &Uuid) -> String {
    prefixed(TASK, id)
}

/// The UUID after `prefix` (with or without hyphens).
fn strip(s: &str, prefix: &str) -> Option<Uuid> {
    s.strip_prefix(prefix)
        .and_then(|rest| Uuid::parse_str(rest).ok())
}

/// An object named by its id or by its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref<T> {
    Id(T),
    Uid(Uid),
}

impl<T> Ref<T> {
    /// The id, when named by id.
    pub fn id(self) -> Option<T> {
        match self {
            Self::Id(id) => Some(id),
            Self::Uid(_) => None,
        }
    }
}

/// A path segment naming something by `prefix`ed id or uid; a value that
/// is neither names nothing (404).
fn reference<T>(s: &str, prefix: &str, what: &str, wrap: fn(Uuid) -> T) -> SvixResult<Ref<T>> {
    if s.starts_with(prefix) {
        return strip(s, prefix)
            .map(|u| Ref::Id(wrap(u)))
            .ok_or_else(|| SvixError::not_found(format!("{what} not found")));
    }
    Uid::parse(s, "uid")
        .map(Ref::Uid)
        .map_err(|_| SvixError::not_found(format!("{what} not found")))
}

pub fn app_ref(s: &str) -> SvixResult<Ref<TenantId>> {
    reference(s, APP, "Application", TenantId::from_uuid)
}

pub fn endpoint_ref(s: &str) -> SvixResult<Ref<SubscriptionId>> {
    reference(s, ENDPOINT, "Endpoint", SubscriptionId::from_uuid)
}

pub fn message_ref(s: &str) -> SvixResult<Ref<EventId>> {
    reference(s, SVIX_MESSAGE_PREFIX, "Message", EventId::from_uuid)
}

/// An attempt id (only ever by id).
pub fn attempt_id(s: &str) -> SvixResult<Uuid> {
    strip(s, ATTEMPT).ok_or_else(|| SvixError::not_found("Attempt not found"))
}

/// A uid a client chooses: Hookline's uid rules, and not starting with the
/// id prefix (it would read as an id).
pub fn new_uid(s: &str, field: &str, prefix: &str) -> SvixResult<Uid> {
    if s.starts_with(prefix) {
        return Err(SvixError::invalid(Invalid::body(
            field,
            format!("Uids are not allowed to have the same prefix as the ID ('{prefix}'). Prefix with _?"),
        )));
    }
    Uid::parse(s, field).map_err(SvixError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_uids_are_told_apart() {
        let t = TenantId::from_uuid(Uuid::from_u128(0x1234));
        let id = app(&t);
        assert_eq!(id, "app_00000000000000000000000000001234");
        assert_eq!(app_ref(&id).unwrap(), Ref::Id(t));
        assert_eq!(
            app_ref("app_00000000-0000-0000-0000-000000001234").unwrap(),
            Ref::Id(t)
        );
        assert!(matches!(app_ref("my-app").unwrap(), Ref::Uid(_)));
        assert!(app_ref("app_nope").is_err());
        assert!(app_ref("bad uid").is_err());
        let e = EventId::from_uuid(Uuid::from_u128(5));
        assert_eq!(message_ref(&message(&e)).unwrap(), Ref::Id(e));
        assert!(new_uid("app_x", "uid", APP).is_err());
        assert!(new_uid("x-1", "uid", APP).is_ok());
    }
}
