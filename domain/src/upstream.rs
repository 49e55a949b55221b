//! The UpstreamSubscription aggregate: webhook subscriptions Hookline
//! provisioned *at* a provider (Siigo) for a tenant. The provider's ids
//! and what was asked are in the clear (`UpstreamSubscriptionProvisioned`);
//! the credentials used, and the custom header values, which may carry a
//! verification secret, are sealed in an event of their own that follows
//! it (`UpstreamCredentialsStored`).

use crate::sealed::Sealed;
use crate::{SourceId, TenantId, UpstreamId};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

pub const UPSTREAM_CREDENTIALS_STORED: &str = "UpstreamCredentialsStored";
pub const UPSTREAM_SUBSCRIPTION_PROVISIONED: &str = "UpstreamSubscriptionProvisioned";
pub const UPSTREAM_SUBSCRIPTION_REMOVED: &str = "UpstreamSubscriptionRemoved";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Siigo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Siigo => "siigo",
        }
    }
}

/// One subscription at the provider: the event asked for, the provider's
/// topic it became, and the provider's id for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTopic {
    pub event: String,
    pub topic: String,
    pub upstream_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionUpstream {
    pub id: UpstreamId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub base_url: String,
    /// Where the provider delivers.
    pub url: String,
    pub topics: Vec<UpstreamTopic>,
    pub description: Option<String>,
    pub header_names: Vec<String>,
    /// The source created to receive the provider's webhooks, if any.
    pub source_id: Option<SourceId>,
    /// The credentials and custom header values, sealed.
    pub credentials: Sealed,
    /// The username, masked (for lists).
    pub account_hint: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamCommand {
    Remove(RemoveUpstream),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemoveUpstream {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UpstreamEvent {
    UpstreamCredentialsStored {
        subscription_id: UpstreamId,
        tenant_id: TenantId,
        provider: Provider,
        credentials: Sealed,
        account_hint: String,
        stored_at: DateTime<Utc>,
    },
    UpstreamSubscriptionProvisioned {
        subscription_id: UpstreamId,
        tenant_id: TenantId,
        provider: Provider,
        base_url: String,
        url: String,
        topics: Vec<UpstreamTopic>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        header_names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_id: Option<SourceId>,
        provisioned_at: DateTime<Utc>,
    },
    UpstreamSubscriptionRemoved {
        removed_at: DateTime<Utc>,
    },
}

impl DomainEvent for UpstreamEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UpstreamCredentialsStored { .. } => UPSTREAM_CREDENTIALS_STORED,
            Self::UpstreamSubscriptionProvisioned { .. } => UPSTREAM_SUBSCRIPTION_PROVISIONED,
            Self::UpstreamSubscriptionRemoved { .. } => UPSTREAM_SUBSCRIPTION_REMOVED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the upstream subscription does not exist")]
    NotFound,
    #[error("the upstream subscription was already removed")]
    Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamStatus {
    Active,
    Removed,
}

impl UpstreamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Removed => "removed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpstreamState {
    pub id: UpstreamId,
    pub tenant_id: TenantId,
    pub provider: Provider,
    pub base_url: String,
    pub url: String,
    pub topics: Vec<UpstreamTopic>,
    pub description: Option<String>,
    pub header_names: Vec<String>,
    pub source_id: Option<SourceId>,
    /// `None` only between the two events of a provisioning.
    pub credentials: Option<Sealed>,
    pub account_hint: String,
    pub status: UpstreamStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamSubscription {
    state: Option<UpstreamState>,
}

impl From<UpstreamState> for UpstreamSubscription {
    fn from(state: UpstreamState) -> Self {
        Self { state: Some(state) }
    }
}

impl UpstreamSubscription {
    pub fn state(&self) -> Option<&UpstreamState> {
        self.state.as_ref()
    }

    /// The provisioning, decided as a plain function: what was
    /// provisioned, then the sealed credentials.
    pub fn provision_new(cmd: ProvisionUpstream) -> Vec<UpstreamEvent> {
        vec![
            UpstreamEvent::UpstreamSubscriptionProvisioned {
                subscription_id: cmd.id,
                tenant_id: cmd.tenant_id,
                provider: cmd.provider,
                base_url: cmd.base_url,
                url: cmd.url,
                topics: cmd.topics,
                description: cmd.description,
                header_names: cmd.header_names,
                source_id: cmd.source_id,
                provisioned_at: cmd.at,
            },
            UpstreamEvent::UpstreamCredentialsStored {
                subscription_id: cmd.id,
                tenant_id: cmd.tenant_id,
                provider: cmd.provider,
                credentials: cmd.credentials,
                account_hint: cmd.account_hint,
                stored_at: cmd.at,
            },
        ]
    }

    /// # Errors
    /// Another tenant's or a removed subscription.
    pub fn decide(&self, command: UpstreamCommand) -> Result<Vec<UpstreamEvent>, UpstreamError> {
        match command {
            UpstreamCommand::Remove(cmd) => {
                let state = self
                    .state
                    .as_ref()
                    .filter(|s| s.tenant_id == cmd.tenant_id)
                    .ok_or(UpstreamError::NotFound)?;
                if state.status == UpstreamStatus::Removed {
                    return Err(UpstreamError::Removed);
                }
                Ok(vec![UpstreamEvent::UpstreamSubscriptionRemoved {
                    removed_at: cmd.at,
                }])
            }
        }
    }

    pub fn apply_event(&mut self, event: UpstreamEvent) {
        match event {
            UpstreamEvent::UpstreamSubscriptionProvisioned {
                subscription_id,
                tenant_id,
                provider,
                base_url,
                url,
                topics,
                description,
                header_names,
                source_id,
                provisioned_at,
            } => {
                self.state = Some(UpstreamState {
                    id: subscription_id,
                    tenant_id,
                    provider,
                    base_url,
                    url,
                    topics,
                    description,
                    header_names,
                    source_id,
                    credentials: None,
                    account_hint: String::new(),
                    status: UpstreamStatus::Active,
                    created_at: provisioned_at,
                    updated_at: provisioned_at,
                });
            }
            UpstreamEvent::UpstreamCredentialsStored {
                credentials,
                account_hint,
                stored_at,
                ..
            } => {
                if let Some(state) = self.state.as_mut() {
                    state.credentials = Some(credentials);
                    state.account_hint = account_hint;
                    state.updated_at = stored_at;
                }
            }
            UpstreamEvent::UpstreamSubscriptionRemoved { removed_at } => {
                if let Some(state) = self.state.as_mut() {
                    state.status = UpstreamStatus::Removed;
                    state.updated_at = removed_at;
                }
            }
        }
    }
}

impl Aggregate for UpstreamSubscription {
    const TYPE: &'static str = "UpstreamSubscription";
    type Command = UpstreamCommand;
    type Event = UpstreamEvent;
    type Error = UpstreamError;
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
    use uuid::Uuid;

    #[test]
    fn provisioned_then_removed_once() {
        let sealed = Sealed {
            alg: "t".into(),
            key_id: "k".into(),
            nonce: "n".into(),
            ciphertext: "c".into(),
        };
        let tenant = TenantId::from_uuid(Uuid::from_u128(1));
        let at = DateTime::UNIX_EPOCH;
        let mut agg = UpstreamSubscription::default();
        for e in UpstreamSubscription::provision_new(ProvisionUpstream {
            id: UpstreamId::from_uuid(Uuid::from_u128(2)),
            tenant_id: tenant,
            provider: Provider::Siigo,
            base_url: "https://api.siigo.com".into(),
            url: "https://x.example/in/1".into(),
            topics: vec![UpstreamTopic {
                event: "products.create".into(),
                topic: "public.siigoapi.products.create".into(),
                upstream_id: "u1".into(),
            }],
            description: None,
            header_names: vec![],
            source_id: None,
            credentials: sealed,
            account_hint: "a…".into(),
            at,
        }) {
            agg.apply_event(e);
        }
        assert_eq!(agg.state().unwrap().status, UpstreamStatus::Active);
        let remove = || {
            UpstreamCommand::Remove(RemoveUpstream {
                tenant_id: tenant,
                at,
            })
        };
        for e in agg.decide(remove()).unwrap() {
            agg.apply_event(e);
        }
        assert_eq!(agg.decide(remove()).unwrap_err(), UpstreamError::Removed);
        let other = UpstreamCommand::Remove(RemoveUpstream {
            tenant_id: TenantId::from_uuid(Uuid::from_u128(9)),
            at,
        });
        assert_eq!(agg.decide(other).unwrap_err(), UpstreamError::NotFound);
    }
}
