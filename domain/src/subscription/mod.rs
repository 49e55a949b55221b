//! The Subscription aggregate: a tenant's wish to receive some events at one
//! URL, signed with one secret.

mod aggregate;
mod commands;
mod error;
mod events;
mod flow;
mod values;

#[cfg(test)]
mod tests;

pub use aggregate::{
    PreviousSecret, Subscription, SubscriptionState, SubscriptionStatus, MAX_SIGNING_SECRETS,
};
pub use commands::{
    CloseCircuit, DisableSubscription, EnableSubscription, OpenCircuit, ReleaseProbe, RevealSecret,
    RotateSecret, Subscribe, SubscriptionCommand, Unsubscribe, UpdateSubscription,
};
pub use error::SubscriptionError;
pub use events::SubscriptionEvent;
pub use flow::{probe_interval, Circuit, FailureCause, RateLimit, MAX_RATE_LIMIT};
pub use values::{CustomHeaders, Description, PayloadFormat, MAX_DESCRIPTION_CHARS, MAX_HEADERS};
