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

/// The 32 bits at the end of an id that a message's listed deliveries
/// number (ADR 0019).
const LISTING_TAIL: u128 = 0xffff_ffff;

impl EventId {
    /// A message id that can list its deliveries: `id` with its last 32
    /// bits cleared (a UUIDv7 keeps its time and counter bits, so ids stay
    /// ordered and unique within a process).
    pub const fn listing(id: Uuid) -> Self {
        Self(Uuid::from_u128(id.as_u128() & !LISTING_TAIL))
    }

    /// Whether deliveries of this message may be listed in its event: a
    /// UUIDv7 with its last 32 bits clear.
    pub fn can_list(&self) -> bool {
        self.0.get_version_num() == 7 && self.0.as_u128() & LISTING_TAIL == 0
    }

    /// The id of the `index`-th delivery (from 0) a listing message lists:
    /// the message id as a UUIDv8 with `index + 1` in its last 32 bits.
    /// `None` when the message cannot list (see [`Self::can_list`]) or the
    /// index does not fit.
    pub fn listed_delivery(&self, index: usize) -> Option<DeliveryId> {
        if !self.can_list() {
            return None;
        }
        let n = u32::try_from(index).ok()?.checked_add(1)?;
        let mut bytes = (self.0.as_u128() | u128::from(n)).to_be_bytes();
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        Some(DeliveryId(Uuid::from_bytes(bytes)))
    }
}

impl DeliveryId {
    /// The message whose event may list this delivery (ADR 0019): for a
    /// UUIDv8 with a number in its last 32 bits, that message's id (the
    /// version nibble is 7 for every listing message). `None` for any
    /// other id. A candidate only: the message's event says whether it
    /// lists this exact id.
    pub fn listing_message(&self) -> Option<EventId> {
        if self.0.get_version_num() != 8 || self.0.as_u128() & LISTING_TAIL == 0 {
            return None;
        }
        let mut bytes = (self.0.as_u128() & !LISTING_TAIL).to_be_bytes();
        bytes[6] = (bytes[6] & 0x0f) | 0x70;
        Some(EventId(Uuid::from_bytes(bytes)))
    }
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn a_listed_delivery_names_its_message_and_keeps_its_time() {
        let message = EventId::listing(Uuid::now_v7());
        assert!(message.can_list());
        assert_eq!(message.as_uuid().get_version_num(), 7);
        let first = message.listed_delivery(0).unwrap();
        let second = message.listed_delivery(1).unwrap();
        assert_ne!(first, second);
        assert_eq!(first.as_uuid().get_version_num(), 8);
        assert_eq!(first.listing_message(), Some(message));
        assert_eq!(second.listing_message(), Some(message));
        // The time bits are the message's: ordering by id follows it.
        assert_eq!(
            first.as_uuid().as_bytes()[..6],
            message.as_uuid().as_bytes()[..6]
        );
        assert_eq!(
            first.as_uuid().to_string()[..14],
            message.as_uuid().to_string()[..14]
        );
    }

    #[test]
    fn only_ids_with_a_clear_tail_list_and_only_listed_ids_name_a_message() {
        let random = EventId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
        assert!(!random.can_list());
        assert_eq!(random.listed_delivery(0), None);
        let v7 = DeliveryId::from_uuid(Uuid::now_v7());
        assert_eq!(v7.listing_message(), None);
        let message = EventId::listing(Uuid::now_v7());
        assert_eq!(
            DeliveryId::from_uuid(*message.as_uuid()).listing_message(),
            None
        );
        assert!(message.listed_delivery(u32::MAX as usize).is_none());
        assert!(message.listed_delivery(u32::MAX as usize - 1).is_some());
    }
}
