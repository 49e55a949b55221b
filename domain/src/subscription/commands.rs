//! What clients (through the application) ask a subscription to do. Every
//! command carries the tenant it is issued for and the time it happens.

use super::values::Description;
use crate::sealed::{Sealed, SecretHint};
use crate::{EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionCommand {
    Subscribe(Subscribe),
    Update(UpdateSubscription),
    RotateSecret(RotateSecret),
    Disable(DisableSubscription),
    Enable(EnableSubscription),
    Unsubscribe(Unsubscribe),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    pub subscription_id: SubscriptionId,
    pub tenant_id: TenantId,
    pub url: TargetUrl,
    pub events: EventFilter,
    /// Names of the custom headers (in clear) and the sealed name→value map.
    pub header_names: Vec<String>,
    pub headers: Option<Sealed>,
    pub description: Option<Description>,
    pub signature_scheme: SignatureScheme,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    pub at: DateTime<Utc>,
}

/// `None` leaves a field as it is. `description: Some(None)` clears it;
/// `headers: Some((names, None))` removes every custom header.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateSubscription {
    pub tenant_id: TenantId,
    pub url: Option<TargetUrl>,
    pub events: Option<EventFilter>,
    pub headers: Option<(Vec<String>, Option<Sealed>)>,
    pub description: Option<Option<Description>>,
    pub signature_scheme: Option<SignatureScheme>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RotateSecret {
    pub tenant_id: TenantId,
    pub secret: Sealed,
    pub secret_hint: SecretHint,
    /// Until when the replaced secret still signs deliveries.
    pub previous_secret_expires_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DisableSubscription {
    pub tenant_id: TenantId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnableSubscription {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
}

impl SubscriptionCommand {
    /// The tenant the command is issued for.
    pub fn tenant_id(&self) -> TenantId {
        match self {
            Self::Subscribe(c) => c.tenant_id,
            Self::Update(c) => c.tenant_id,
            Self::RotateSecret(c) => c.tenant_id,
            Self::Disable(c) => c.tenant_id,
            Self::Enable(c) => c.tenant_id,
            Self::Unsubscribe(c) => c.tenant_id,
        }
    }
}
