//! What clients (through the application) ask a subscription to do. Every
//! command carries the tenant it is issued for and the time it happens.

use super::flow::{FailureCause, RateLimit};
use super::values::{Description, PayloadFormat};
use crate::channel::Channels;
use crate::metadata::Metadata;
use crate::sealed::{Sealed, SecretHint};
use crate::uid::Uid;
use crate::{DeliveryId, EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionCommand {
    Subscribe(Subscribe),
    Update(UpdateSubscription),
    RotateSecret(RotateSecret),
    Disable(DisableSubscription),
    Enable(EnableSubscription),
    Unsubscribe(Unsubscribe),
    RevealSecret(RevealSecret),
    OpenCircuit(OpenCircuit),
    ReleaseProbe(ReleaseProbe),
    CloseCircuit(CloseCircuit),
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
    pub payload_format: PayloadFormat,
    /// `None`: every channel.
    pub channels: Option<Channels>,
    pub uid: Option<Uid>,
    pub metadata: Metadata,
    pub rate_limit: Option<RateLimit>,
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
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<RateLimit>>,
    /// `Some(None)` listens on every channel again.
    pub channels: Option<Option<Channels>>,
    /// `Some(None)` removes the uid.
    pub uid: Option<Option<Uid>>,
    pub metadata: Option<Metadata>,
    /// Refuse the update (`ChangedMeanwhile`) unless the subscription last
    /// changed at this time (to the microsecond): it was made from that
    /// version.
    pub unchanged_since: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

impl UpdateSubscription {
    /// An update that changes nothing yet (fields are then set one by one).
    pub fn nothing(tenant_id: TenantId, at: DateTime<Utc>) -> Self {
        Self {
            tenant_id,
            url: None,
            events: None,
            headers: None,
            description: None,
            signature_scheme: None,
            rate_limit: None,
            channels: None,
            uid: None,
            metadata: None,
            unchanged_since: None,
            at,
        }
    }
}

/// Records that the plaintext secret was read.
#[derive(Debug, Clone, PartialEq)]
pub struct RevealSecret {
    pub tenant_id: TenantId,
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

/// Opens the circuit of an active subscription (nothing when it is open).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCircuit {
    pub tenant_id: TenantId,
    pub consecutive_failures: u32,
    pub cause: FailureCause,
    pub at: DateTime<Utc>,
    pub next_probe_at: DateTime<Utc>,
}

/// Lets `delivery_id` through as a probe, once the open circuit's next
/// probe is due (nothing otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseProbe {
    pub tenant_id: TenantId,
    pub delivery_id: DeliveryId,
    pub at: DateTime<Utc>,
    pub next_probe_at: DateTime<Utc>,
}

/// Closes an open circuit after a successful attempt (nothing when closed).
#[derive(Debug, Clone, PartialEq)]
pub struct CloseCircuit {
    pub tenant_id: TenantId,
    pub delivery_id: Option<DeliveryId>,
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
            Self::RevealSecret(c) => c.tenant_id,
            Self::OpenCircuit(c) => c.tenant_id,
            Self::ReleaseProbe(c) => c.tenant_id,
            Self::CloseCircuit(c) => c.tenant_id,
        }
    }
}
