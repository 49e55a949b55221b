//! Hookline's domain: the value objects every other layer speaks in, the
//! `Subscription`, `Delivery` and `Tenant` aggregates, signature schemes, the retry
//! policy and the classification of attempt outcomes.
//!
//! Everything here is pure: no IO, no clock, no randomness. Commands carry the
//! times, ids and random draws they need, so every decision is reproducible
//! from the command and the aggregate's past events.

pub mod catalogue;
pub mod channel;
pub mod delivery;
pub mod event_type;
pub mod ids;
pub mod inbound;
pub mod message;
pub mod metadata;
pub mod operator;
pub mod outcome;
pub mod payload;
pub mod percent;
pub mod pointer;
pub mod portal;
pub mod retry;
pub mod sealed;
pub mod serde_helpers;
pub mod signature;
pub mod source;
pub mod subscription;
pub mod target_url;
pub mod tenant;
pub mod uid;
pub mod uid_claim;
pub mod upstream;
pub mod validation;

pub use event_type::{EventFilter, EventPattern, EventType};
pub use ids::{DeliveryId, EventId, InboundId, SourceId, SubscriptionId, TenantId, UpstreamId};
pub use sealed::{Sealed, SecretHint, SigningSecret};
pub use signature::SignatureScheme;
pub use target_url::{AllowList, TargetUrl};
pub use validation::ValidationError;
