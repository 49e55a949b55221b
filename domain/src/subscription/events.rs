//! What happened to a subscription. These are stored forever: fields are
//! only ever added (with a new `event_version` and an upcaster), never
//! renamed. Secrets and header values are sealed.

use super::flow::{FailureCause, RateLimit};
use super::values::{Description, PayloadFormat};
use crate::channel::Channels;
use crate::metadata::Metadata;
use crate::sealed::{Sealed, SecretHint};
use crate::serde_helpers::double_option;
use crate::uid::Uid;
use crate::{DeliveryId, EventFilter, SignatureScheme, SubscriptionId, TargetUrl, TenantId};
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

pub const SUBSCRIBED: &str = "Subscribed";
pub const SUBSCRIPTION_UPDATED: &str = "SubscriptionUpdated";
pub const SECRET_ROTATED: &str = "SecretRotated";
pub const SUBSCRIPTION_DISABLED: &str = "SubscriptionDisabled";
pub const SUBSCRIPTION_ENABLED: &str = "SubscriptionEnabled";
pub const UNSUBSCRIBED: &str = "Unsubscribed";
pub const SECRET_REVEALED: &str = "SecretRevealed";
pub const ENDPOINT_CIRCUIT_OPENED: &str = "EndpointCircuitOpened";
pub const ENDPOINT_CIRCUIT_PROBE_RELEASED: &str = "EndpointCircuitProbeReleased";
pub const ENDPOINT_CIRCUIT_CLOSED: &str = "EndpointCircuitClosed";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SubscriptionEvent {
    Subscribed {
        subscription_id: SubscriptionId,
        tenant_id: TenantId,
        url: TargetUrl,
        events: EventFilter,
        header_names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        headers: Option<Sealed>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<Description>,
        signature_scheme: SignatureScheme,
        secret: Sealed,
        secret_hint: SecretHint,
        /// Attempts per second (version 1.1; absent: no limit).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_limit: Option<RateLimit>,
        subscribed_at: DateTime<Utc>,
        /// 1.1: absent means `hookline`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload_format: Option<PayloadFormat>,
        /// 1.1: absent means every channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channels: Option<Channels>,
        /// 1.1: the client's own name for the subscription.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<Uid>,
        /// 1.1: absent means none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    /// Only the fields that changed are present.
    SubscriptionUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<TargetUrl>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        events: Option<EventFilter>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header_names: Option<Vec<String>>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        headers: Option<Option<Sealed>>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        description: Option<Option<Description>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature_scheme: Option<SignatureScheme>,
        /// Version 1.1: `null` removes the limit.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        rate_limit: Option<Option<RateLimit>>,
        updated_at: DateTime<Utc>,
        /// 1.1; `null` listens on every channel again.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        channels: Option<Option<Channels>>,
        /// 1.1; `null` removes the uid.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "double_option"
        )]
        uid: Option<Option<Uid>>,
        /// 1.1: the whole new metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Metadata>,
    },
    SecretRotated {
        secret: Sealed,
        secret_hint: SecretHint,
        previous_secret_hint: SecretHint,
        previous_secret_expires_at: DateTime<Utc>,
        rotated_at: DateTime<Utc>,
    },
    SubscriptionDisabled {
        reason: String,
        disabled_at: DateTime<Utc>,
    },
    SubscriptionEnabled {
        enabled_at: DateTime<Utc>,
    },
    Unsubscribed {
        unsubscribed_at: DateTime<Utc>,
    },
    /// Someone read the plaintext secret (the Svix-compatible API's
    /// `GET …/secret`); the metadata names who.
    SecretRevealed {
        revealed_at: DateTime<Utc>,
    },
    /// Consecutive failed attempts reached the threshold: attempts stop but
    /// for one probe per interval, from `next_probe_at`.
    EndpointCircuitOpened {
        consecutive_failures: u32,
        /// The last failed attempt.
        cause: FailureCause,
        opened_at: DateTime<Utc>,
        next_probe_at: DateTime<Utc>,
    },
    /// One waiting delivery let through to test the receiver; if it fails,
    /// the next probe goes at `next_probe_at`.
    EndpointCircuitProbeReleased {
        delivery_id: DeliveryId,
        released_at: DateTime<Utc>,
        next_probe_at: DateTime<Utc>,
    },
    /// An attempt succeeded: deliveries flow again.
    EndpointCircuitClosed {
        /// The delivery whose attempt succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_id: Option<DeliveryId>,
        closed_at: DateTime<Utc>,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Subscribed { .. } => SUBSCRIBED,
            Self::SubscriptionUpdated { .. } => SUBSCRIPTION_UPDATED,
            Self::SecretRotated { .. } => SECRET_ROTATED,
            Self::SubscriptionDisabled { .. } => SUBSCRIPTION_DISABLED,
            Self::SubscriptionEnabled { .. } => SUBSCRIPTION_ENABLED,
            Self::Unsubscribed { .. } => UNSUBSCRIBED,
            Self::SecretRevealed { .. } => SECRET_REVEALED,
            Self::EndpointCircuitOpened { .. } => ENDPOINT_CIRCUIT_OPENED,
            Self::EndpointCircuitProbeReleased { .. } => ENDPOINT_CIRCUIT_PROBE_RELEASED,
            Self::EndpointCircuitClosed { .. } => ENDPOINT_CIRCUIT_CLOSED,
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        // Versioned by content: 1.1 is any of the optional fields added
        // after 1.0 (a rate limit; the payload format, channels, uid and
        // metadata). A 1.0 reader-side default fills each when absent.
        let extended = match self {
            Self::Subscribed {
                rate_limit,
                payload_format,
                channels,
                uid,
                metadata,
                ..
            } => {
                rate_limit.is_some()
                    || payload_format.is_some()
                    || channels.is_some()
                    || uid.is_some()
                    || metadata.is_some()
            }
            Self::SubscriptionUpdated {
                rate_limit,
                channels,
                uid,
                metadata,
                ..
            } => rate_limit.is_some() || channels.is_some() || uid.is_some() || metadata.is_some(),
            _ => false,
        };
        if extended { "1.1" } else { "1.0" }.to_string()
    }
}

impl SubscriptionEvent {
    /// When the change happened (the time the command carried).
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            Self::Subscribed { subscribed_at, .. } => *subscribed_at,
            Self::SubscriptionUpdated { updated_at, .. } => *updated_at,
            Self::SecretRotated { rotated_at, .. } => *rotated_at,
            Self::SubscriptionDisabled { disabled_at, .. } => *disabled_at,
            Self::SubscriptionEnabled { enabled_at } => *enabled_at,
            Self::Unsubscribed { unsubscribed_at } => *unsubscribed_at,
            Self::SecretRevealed { revealed_at } => *revealed_at,
            Self::EndpointCircuitOpened { opened_at, .. } => *opened_at,
            Self::EndpointCircuitProbeReleased { released_at, .. } => *released_at,
            Self::EndpointCircuitClosed { closed_at, .. } => *closed_at,
        }
    }
}
