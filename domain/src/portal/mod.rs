//! The PortalLink aggregate: a signed, short-lived link a tenant hands to
//! one of its own customers, opening the console scoped to that tenant
//! (optionally read-only, optionally to some of its subscriptions). Each
//! opening is an event, and so is its revocation. The link's token is never
//! stored: it is a signature over the link id with a server key, so the log
//! holds nothing that would let its reader open a link.

use crate::{SubscriptionId, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const PORTAL_LINK_ISSUED: &str = "PortalLinkIssued";
pub const PORTAL_LINK_OPENED: &str = "PortalLinkOpened";
pub const PORTAL_LINK_REVOKED: &str = "PortalLinkRevoked";

/// Shortest and longest life of a link.
pub const MIN_LINK_SECONDS: i64 = 1;
pub const MAX_LINK_SECONDS: i64 = 7 * 24 * 3600;
/// Default life: one hour.
pub const DEFAULT_LINK_SECONDS: i64 = 3600;
/// Most subscriptions one link may be scoped to.
pub const MAX_FILTER_IDS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub enum PortalLinkCommand {
    Issue(IssuePortalLink),
    Open {
        at: DateTime<Utc>,
    },
    Revoke {
        tenant_id: TenantId,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssuePortalLink {
    pub link_id: Uuid,
    pub tenant_id: TenantId,
    pub read_only: bool,
    /// Only these subscriptions are visible (and no new ones can be made);
    /// `None`: the whole tenant.
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub expires_at: DateTime<Utc>,
    /// The API key the link was made with: it opens nothing once that key
    /// no longer works (`None`: made by an operator).
    pub issued_with_key: Option<Uuid>,
    /// The operator key the link was made with (the Svix-compatible API's
    /// app portal access): it opens nothing once that key is revoked.
    pub issued_with_operator_key: Option<Uuid>,
    /// For a link made with the admin token: a seal of that token (a tag
    /// under the server key, never the token), so the link opens nothing
    /// once the server's admin token is another.
    pub issued_with_admin_token: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum PortalLinkEvent {
    PortalLinkIssued {
        link_id: Uuid,
        tenant_id: TenantId,
        read_only: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscription_filter: Option<Vec<SubscriptionId>>,
        expires_at: DateTime<Utc>,
        issued_at: DateTime<Utc>,
        /// Since 1.1: the API key the link was made with (its id, not the
        /// key); absent for links made by an operator and before 1.1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_with_key: Option<Uuid>,
        /// Since 1.2: the operator key the link was made with (its id),
        /// for links made through the Svix-compatible API with one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_with_operator_key: Option<Uuid>,
        /// Since 1.3: for a link made with the admin token, a seal of that
        /// token (hex of a tag under the server key; neither the token nor
        /// a plain hash of it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_with_admin_token: Option<String>,
    },
    /// Someone opened the link (a console session began with it).
    PortalLinkOpened {
        opened_at: DateTime<Utc>,
    },
    PortalLinkRevoked {
        revoked_at: DateTime<Utc>,
    },
}

impl DomainEvent for PortalLinkEvent {
    fn event_type(&self) -> String {
        match self {
            Self::PortalLinkIssued { .. } => PORTAL_LINK_ISSUED,
            Self::PortalLinkOpened { .. } => PORTAL_LINK_OPENED,
            Self::PortalLinkRevoked { .. } => PORTAL_LINK_REVOKED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            Self::PortalLinkIssued {
                issued_with_admin_token: Some(_),
                ..
            } => "1.3",
            Self::PortalLinkIssued {
                issued_with_operator_key: Some(_),
                ..
            } => "1.2",
            Self::PortalLinkIssued {
                issued_with_key: Some(_),
                ..
            } => "1.1",
            _ => "1.0",
        }
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortalLinkError {
    #[error("the portal link already exists")]
    AlreadyExists,
    #[error("there is no such portal link")]
    NotFound,
    #[error("the portal link has expired")]
    Expired,
    #[error("the portal link has been revoked")]
    Revoked,
    #[error("the portal link has been opened {MAX_OPENS} times, its limit")]
    UsedUp,
}

/// Most times one portal link opens. A link is for one customer to open a
/// few times; each opening is an event of the link, and every request of
/// its sessions reads them all.
pub const MAX_OPENS: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortalLinkState {
    pub link_id: Uuid,
    pub tenant_id: TenantId,
    pub read_only: bool,
    pub subscription_filter: Option<Vec<SubscriptionId>>,
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    #[serde(default)]
    pub issued_with_key: Option<Uuid>,
    #[serde(default)]
    pub issued_with_operator_key: Option<Uuid>,
    #[serde(default)]
    pub issued_with_admin_token: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub opened: u64,
    pub last_opened_at: Option<DateTime<Utc>>,
}

impl PortalLinkState {
    /// Whether the link (and the sessions opened with it) may be used at
    /// `now`.
    ///
    /// # Errors
    /// Why not: revoked or expired.
    pub fn usable_at(&self, now: DateTime<Utc>) -> Result<(), PortalLinkError> {
        if self.revoked_at.is_some() {
            return Err(PortalLinkError::Revoked);
        }
        if now >= self.expires_at {
            return Err(PortalLinkError::Expired);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PortalLink {
    state: Option<PortalLinkState>,
}

impl PortalLink {
    pub fn state(&self) -> Option<&PortalLinkState> {
        self.state.as_ref()
    }

    /// Decides which events `command` causes.
    ///
    /// # Errors
    /// A [`PortalLinkError`] when the command is not allowed in this state.
    pub fn decide(
        &self,
        command: PortalLinkCommand,
    ) -> Result<Vec<PortalLinkEvent>, PortalLinkError> {
        match command {
            PortalLinkCommand::Issue(cmd) => {
                if self.state.is_some() {
                    return Err(PortalLinkError::AlreadyExists);
                }
                Ok(vec![PortalLinkEvent::PortalLinkIssued {
                    link_id: cmd.link_id,
                    tenant_id: cmd.tenant_id,
                    read_only: cmd.read_only,
                    subscription_filter: cmd.subscription_filter,
                    expires_at: cmd.expires_at,
                    issued_at: cmd.at,
                    issued_with_key: cmd.issued_with_key,
                    issued_with_operator_key: cmd.issued_with_operator_key,
                    issued_with_admin_token: cmd.issued_with_admin_token,
                }])
            }
            PortalLinkCommand::Open { at } => {
                let state = self.state.as_ref().ok_or(PortalLinkError::NotFound)?;
                state.usable_at(at)?;
                if state.opened >= MAX_OPENS {
                    return Err(PortalLinkError::UsedUp);
                }
                Ok(vec![PortalLinkEvent::PortalLinkOpened { opened_at: at }])
            }
            PortalLinkCommand::Revoke { tenant_id, at } => {
                let state = self
                    .state
                    .as_ref()
                    .filter(|s| s.tenant_id == tenant_id)
                    .ok_or(PortalLinkError::NotFound)?;
                if state.revoked_at.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![PortalLinkEvent::PortalLinkRevoked { revoked_at: at }])
            }
        }
    }

    pub fn apply_event(&mut self, event: PortalLinkEvent) {
        match event {
            PortalLinkEvent::PortalLinkIssued {
                link_id,
                tenant_id,
                read_only,
                subscription_filter,
                expires_at,
                issued_at,
                issued_with_key,
                issued_with_operator_key,
                issued_with_admin_token,
            } => {
                self.state = Some(PortalLinkState {
                    link_id,
                    tenant_id,
                    read_only,
                    subscription_filter,
                    expires_at,
                    issued_at,
                    issued_with_key,
                    issued_with_operator_key,
                    issued_with_admin_token,
                    revoked_at: None,
                    opened: 0,
                    last_opened_at: None,
                });
            }
            PortalLinkEvent::PortalLinkOpened { opened_at } => {
                if let Some(s) = self.state.as_mut() {
                    s.opened += 1;
                    s.last_opened_at = Some(opened_at);
                }
            }
            PortalLinkEvent::PortalLinkRevoked { revoked_at } => {
                if let Some(s) = self.state.as_mut() {
                    s.revoked_at = Some(revoked_at);
                }
            }
        }
    }
}

impl Aggregate for PortalLink {
    const TYPE: &'static str = "PortalLink";
    type Command = PortalLinkCommand;
    type Event = PortalLinkEvent;
    type Error = PortalLinkError;
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
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .unwrap_or_default()
    }

    fn issued(read_only: bool) -> PortalLink {
        let mut link = PortalLink::default();
        for e in link
            .decide(PortalLinkCommand::Issue(IssuePortalLink {
                link_id: Uuid::nil(),
                tenant_id: TenantId::from_uuid(Uuid::nil()),
                read_only,
                subscription_filter: None,
                expires_at: t(3600),
                issued_with_key: None,
                issued_with_operator_key: None,
                issued_with_admin_token: None,
                at: t(0),
            }))
            .unwrap()
        {
            link.apply_event(e);
        }
        link
    }

    #[test]
    fn a_link_opens_at_most_max_opens_times() {
        let mut link = issued(false);
        for _ in 0..MAX_OPENS {
            for e in link.decide(PortalLinkCommand::Open { at: t(1) }).unwrap() {
                link.apply_event(e);
            }
        }
        assert_eq!(
            link.decide(PortalLinkCommand::Open { at: t(1) }),
            Err(PortalLinkError::UsedUp)
        );
        assert!(
            link.state().unwrap().usable_at(t(1)).is_ok(),
            "its sessions go on"
        );
    }

    #[test]
    fn a_link_opens_until_it_expires() {
        let mut link = issued(true);
        let events = link.decide(PortalLinkCommand::Open { at: t(10) }).unwrap();
        assert_eq!(
            events,
            vec![PortalLinkEvent::PortalLinkOpened { opened_at: t(10) }]
        );
        link.apply_event(events[0].clone());
        assert_eq!(link.state().unwrap().opened, 1);
        assert_eq!(
            link.decide(PortalLinkCommand::Open { at: t(3600) }),
            Err(PortalLinkError::Expired)
        );
    }

    #[test]
    fn a_revoked_link_no_longer_opens_and_revoking_twice_records_once() {
        let mut link = issued(false);
        let tenant = TenantId::from_uuid(Uuid::nil());
        let other = TenantId::from_uuid(Uuid::max());
        assert_eq!(
            link.decide(PortalLinkCommand::Revoke {
                tenant_id: other,
                at: t(1)
            }),
            Err(PortalLinkError::NotFound)
        );
        let events = link
            .decide(PortalLinkCommand::Revoke {
                tenant_id: tenant,
                at: t(1),
            })
            .unwrap();
        link.apply_event(events[0].clone());
        assert_eq!(
            link.decide(PortalLinkCommand::Open { at: t(2) }),
            Err(PortalLinkError::Revoked)
        );
        assert!(link
            .decide(PortalLinkCommand::Revoke {
                tenant_id: tenant,
                at: t(3)
            })
            .unwrap()
            .is_empty());
    }

    #[test]
    fn events_keep_their_shape() {
        let e = PortalLinkEvent::PortalLinkOpened { opened_at: t(0) };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "PortalLinkOpened");
        assert_eq!(e.event_version(), "1.0");
        // Issued: 1.0 by the admin token before 1.3, 1.1 with a tenant's
        // key, 1.2 with an operator key, 1.3 with the admin token (its
        // seal); earlier versions read back without the later fields.
        let sealed = |key: Option<Uuid>, operator: Option<Uuid>, seal: Option<&str>| {
            PortalLinkEvent::PortalLinkIssued {
                link_id: Uuid::nil(),
                tenant_id: TenantId::from_uuid(Uuid::nil()),
                read_only: false,
                subscription_filter: None,
                expires_at: t(60),
                issued_at: t(0),
                issued_with_key: key,
                issued_with_operator_key: operator,
                issued_with_admin_token: seal.map(str::to_string),
            }
        };
        let issued = |key, operator| sealed(key, operator, None);
        assert_eq!(sealed(None, None, Some("ab12")).event_version(), "1.3");
        let v = serde_json::to_value(sealed(None, None, Some("ab12"))).unwrap();
        assert_eq!(v["issued_with_admin_token"], "ab12");
        assert!(serde_json::to_value(issued(None, None))
            .unwrap()
            .get("issued_with_admin_token")
            .is_none());
        let key = Uuid::from_u128(7);
        let k = Some(key);
        assert_eq!(issued(None, None).event_version(), "1.0");
        assert_eq!(issued(k, None).event_version(), "1.1");
        assert_eq!(issued(None, k).event_version(), "1.2");
        let v = serde_json::to_value(issued(None, k)).unwrap();
        assert_eq!(v["issued_with_operator_key"], key.to_string());
        assert!(v.get("issued_with_key").is_none());
        let old: PortalLinkEvent = serde_json::from_value(serde_json::json!({
            "type": "PortalLinkIssued", "link_id": Uuid::nil(), "tenant_id": Uuid::nil(),
            "read_only": true, "expires_at": t(60), "issued_at": t(0)
        }))
        .unwrap();
        let PortalLinkEvent::PortalLinkIssued {
            read_only,
            issued_with_key,
            issued_with_operator_key,
            issued_with_admin_token,
            ..
        } = old
        else {
            panic!("{old:?}")
        };
        assert!(read_only && issued_with_key.is_none() && issued_with_operator_key.is_none());
        assert!(issued_with_admin_token.is_none());
    }
}
