//! Identifier newtypes. All ids are UUIDs (the application mints UUIDv7, so
//! they sort by creation time); the newtypes keep a delivery id from being
//! passed where a subscription id is expected.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A name-based id: a UUIDv8 of the first 16 bytes of the SHA-256 of
/// `name`, the same every time (so a retried request finds what its first
/// try made). Callers prefix `name` with what it identifies
/// (`hookline-message:…`).
pub fn digest_uuid(name: &str) -> Uuid {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// Parses the textual form, naming what kind of id was expected
            /// on failure.
            ///
            /// # Errors
            /// When `s` is not a UUID.
            pub fn parse(s: &str) -> Result<Self, crate::ValidationError> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| {
                    crate::ValidationError::new(
                        $what,
                        format!("'{}' is not a valid {} (expected a UUID)", truncate_for_message(s), $what.replace('_', " ")),
                    )
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = crate::ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

/// Shortens user input quoted back in an error message.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        crate::validation::printable(s)
    } else {
        let mut out = crate::validation::printable(&s.chars().take(MAX).collect::<String>());
        out.push('…');
        out
    }
}

uuid_id!(
    /// A tenant: the owner of subscriptions, events and deliveries.
    TenantId,
    "tenant_id"
);
uuid_id!(
    /// A subscription (also the id of its aggregate).
    SubscriptionId,
    "subscription_id"
);
uuid_id!(
    /// A delivery: one event to one subscription (also the id of its aggregate).
    DeliveryId,
    "delivery_id"
);
uuid_id!(
    /// A published business event.
    EventId,
    "event_id"
);

impl TenantId {
    /// The organisation: the scope of what belongs to no single tenant
    /// (operator keys, event types every tenant inherits). No tenant has
    /// this id (tenants get UUIDv7s).
    pub const ORGANISATION: Self = Self(Uuid::nil());

    pub fn is_organisation(&self) -> bool {
        *self == Self::ORGANISATION
    }
}
uuid_id!(
    /// An inbound source: an endpoint (`POST /in/{id}`) where a provider
    /// delivers webhooks to Hookline (also the id of its aggregate).
    SourceId,
    "source_id"
);
uuid_id!(
    /// One verified inbound webhook (also the id of its aggregate).
    InboundId,
    "inbound_id"
);
uuid_id!(
    /// A subscription Hookline provisioned at a provider (Siigo), as
    /// Hookline records it (also the id of its aggregate).
    UpstreamId,
    "upstream_subscription_id"
);
