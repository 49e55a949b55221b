//! The UidClaim aggregate: who holds a client-chosen `uid` within its
//! scope (the tenants, or one tenant's subscriptions). A uid is claimed in
//! the same append as the change that gives it to its holder, so two
//! writers racing for one uid collide on the claim's sequence and only one
//! wins. A claim whose holder no longer has the uid (it was changed or the
//! holder deleted) may be taken over: uids are never released explicitly.

use crate::uid::Uid;
use crate::TenantId;
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub const UID_CLAIMED: &str = "UidClaimed";

/// Where a uid must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UidScope {
    /// Among tenants (Svix applications).
    Tenants,
    /// Among one tenant's subscriptions (Svix endpoints).
    Subscriptions(TenantId),
}

impl UidScope {
    pub fn as_string(&self) -> String {
        match self {
            Self::Tenants => "tenants".to_string(),
            Self::Subscriptions(tenant) => format!("subscriptions:{tenant}"),
        }
    }

    /// The id of the claim aggregate for `uid` in this scope.
    pub fn claim_id(&self, uid: &Uid) -> String {
        format!("{}:{}", self.as_string(), uid.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimUid {
    pub scope: UidScope,
    pub uid: Uid,
    /// The aggregate id of the claimant (a tenant or subscription id).
    pub owner: String,
    /// Whether the current holder (if another) still has this uid and is
    /// not deleted; the application looks it up.
    pub holder_still_holds: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UidClaimEvent {
    UidClaimed {
        scope: String,
        uid: Uid,
        owner: String,
        claimed_at: DateTime<Utc>,
    },
}

impl DomainEvent for UidClaimEvent {
    fn event_type(&self) -> String {
        UID_CLAIMED.to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidClaimError {
    /// Another live holder has the uid.
    #[error("the uid is taken by {0}")]
    Taken(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UidClaimState {
    pub scope: String,
    pub uid: Uid,
    pub owner: String,
    pub claimed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UidClaim {
    state: Option<UidClaimState>,
}

impl UidClaim {
    pub fn state(&self) -> Option<&UidClaimState> {
        self.state.as_ref()
    }

    /// The current holder, if any.
    pub fn holder(&self) -> Option<&str> {
        self.state.as_ref().map(|s| s.owner.as_str())
    }

    /// # Errors
    /// [`UidClaimError::Taken`] while another holder still has the uid.
    pub fn decide(&self, cmd: ClaimUid) -> Result<Vec<UidClaimEvent>, UidClaimError> {
        if let Some(state) = &self.state {
            if state.owner == cmd.owner {
                return Ok(vec![]);
            }
            if cmd.holder_still_holds {
                return Err(UidClaimError::Taken(state.owner.clone()));
            }
        }
        Ok(vec![UidClaimEvent::UidClaimed {
            scope: cmd.scope.as_string(),
            uid: cmd.uid,
            owner: cmd.owner,
            claimed_at: cmd.at,
        }])
    }

    pub fn apply_event(&mut self, event: UidClaimEvent) {
        let UidClaimEvent::UidClaimed {
            scope,
            uid,
            owner,
            claimed_at,
        } = event;
        self.state = Some(UidClaimState {
            scope,
            uid,
            owner,
            claimed_at,
        });
    }
}

impl Aggregate for UidClaim {
    const TYPE: &'static str = "UidClaim";
    type Command = ClaimUid;
    type Event = UidClaimEvent;
    type Error = UidClaimError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(owner: &str, still: bool) -> ClaimUid {
        ClaimUid {
            scope: UidScope::Tenants,
            uid: Uid::parse("acme", "uid").unwrap(),
            owner: owner.to_string(),
            holder_still_holds: still,
            at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_uid_is_held_until_its_holder_lets_go() {
        let mut c = UidClaim::default();
        let events = c.decide(claim("a", false)).unwrap();
        assert_eq!(events.len(), 1);
        c.apply_event(events[0].clone());
        assert_eq!(c.holder(), Some("a"));
        assert!(c.decide(claim("a", true)).unwrap().is_empty());
        assert_eq!(
            c.decide(claim("b", true)).unwrap_err(),
            UidClaimError::Taken("a".into())
        );
        let taken = c.decide(claim("b", false)).unwrap();
        c.apply_event(taken[0].clone());
        assert_eq!(c.holder(), Some("b"));
    }

    #[test]
    fn scopes_name_their_claims() {
        let uid = Uid::parse("u1", "uid").unwrap();
        assert_eq!(UidScope::Tenants.claim_id(&uid), "tenants:u1");
        let t = TenantId::from_uuid(uuid::Uuid::nil());
        assert_eq!(
            UidScope::Subscriptions(t).claim_id(&uid),
            format!("subscriptions:{t}:u1")
        );
    }
}
