//! Who asks, on behalf of which tenant, under which request id: the context
//! every command carries into its events' metadata.

use crate::metadata::EventMetadata;
use chrono::{DateTime, Utc};
use hookline_domain::{TenantId, ValidationError};
use std::fmt;
use uuid::Uuid;

pub const MAX_REQUEST_ID_LEN: usize = 128;
/// Request ids of Hookline's own components (`system:<component>:<id>`).
const SYSTEM_PREFIX: &str = "system:";

/// The id that follows one API request through its commands, events,
/// deliveries and attempts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// A client's `X-Request-Id` when it is a sane token: 1–128 characters
    /// from letters, digits and `-_.:/+=@`, and not in Hookline's own
    /// `system:` namespace (ids of its components' decisions: a client's
    /// id there would pass for one in traces).
    pub fn from_client(value: &str) -> Option<Self> {
        Self::recorded(value).filter(|id| !id.is_system())
    }

    /// An id Hookline could have recorded, its own `system:…` ones
    /// included: a sane token as [`RequestId::from_client`] says.
    pub fn recorded(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b));
        ok.then(|| Self(value.to_string()))
    }

    /// Whether it is in Hookline's `system:` namespace (any case).
    pub fn is_system(&self) -> bool {
        self.0
            .get(..SYSTEM_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SYSTEM_PREFIX))
    }

    /// A request id a client looks up (`/v1/requests/{id}`, `?request_id=`):
    /// anything Hookline could have recorded, that is a sane token (as
    /// [`RequestId::recorded`]); otherwise a validation error naming
    /// `field`.
    ///
    /// # Errors
    /// When `value` could not be a request id.
    pub fn lookup(field: &str, value: &str) -> Result<Self, ValidationError> {
        Self::recorded(value).ok_or_else(|| {
            ValidationError::new(
                field,
                "must be 1–128 characters from letters, digits and -_.:/+=@",
            )
        })
    }

    /// The id of a request that brought none of its own (a UUIDv7 from the
    /// id source, so ids sort by time).
    pub fn generated(id: Uuid) -> Self {
        Self(id.to_string())
    }

    /// An id for work no API request caused (`system:<component>:<id>`).
    pub fn system(component: &str, id: impl fmt::Display) -> Self {
        Self(format!("{SYSTEM_PREFIX}{component}:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who issued a command: an API key, or a component of Hookline itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    ApiKey(Uuid),
    Admin,
    /// An operator API key (acting for the organisation).
    OperatorKey(Uuid),
    /// A console session opened with a portal link (its id).
    Portal(Uuid),
    System(&'static str),
    /// An inbound webhook, authenticated by its source's secret.
    Source(hookline_domain::SourceId),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ApiKey(id) => write!(f, "api_key:{id}"),
            Self::Admin => f.write_str("admin"),
            Self::OperatorKey(id) => write!(f, "operator_key:{id}"),
            Self::Portal(id) => write!(f, "portal:{id}"),
            Self::System(component) => write!(f, "system:{component}"),
            Self::Source(id) => write!(f, "source:{id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CommandContext {
    pub request_id: RequestId,
    pub tenant_id: TenantId,
    pub actor: Actor,
}

impl CommandContext {
    /// The metadata stored with every event the command causes.
    pub fn metadata(&self, occurred_at: DateTime<Utc>) -> EventMetadata {
        EventMetadata {
            request_id: self.request_id.to_string(),
            tenant_id: self.tenant_id,
            actor: self.actor.to_string(),
            occurred_at,
            worker_id: None,
            triggered_by: None,
            chain: None,
        }
    }

    /// The same request acting for another tenant (operators acting on a
    /// tenant's behalf).
    #[must_use]
    pub fn for_tenant(&self, tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_sane_client_ids() {
        assert!(RequestId::from_client("abc-123_X.y:z").is_some());
        assert!(RequestId::from_client("").is_none());
        assert!(RequestId::from_client(&"a".repeat(129)).is_none());
        assert!(RequestId::from_client(&"a".repeat(128)).is_some());
        assert!(RequestId::from_client("has space").is_none());
        assert!(RequestId::from_client("new\nline").is_none());
        assert!(RequestId::from_client("<script>").is_none());
        // Hookline's own namespace is not a client's, in any case; it is
        // still looked up.
        for own in ["system:flow:01a2", "SYSTEM:flow:x", "System:x"] {
            assert!(RequestId::from_client(own).is_none(), "{own}");
            assert!(RequestId::lookup("id", own).is_ok(), "{own}");
        }
        assert!(RequestId::from_client("systems:x").is_some());
        assert!(RequestId::system("flow", 7).is_system());
    }

    #[test]
    fn metadata_names_request_tenant_actor_time() {
        let ctx = CommandContext {
            request_id: RequestId::from_client("req-1").unwrap(),
            tenant_id: TenantId::from_uuid(Uuid::nil()),
            actor: Actor::System("worker"),
        };
        let m = ctx.metadata(chrono::DateTime::UNIX_EPOCH).to_map();
        assert_eq!(m["request_id"], "req-1");
        assert_eq!(m["actor"], "system:worker");
        assert_eq!(m["occurred_at"], "1970-01-01T00:00:00.000000Z");
    }
}
