//! The Subscription aggregate: a tenant's wish to receive some events at one
//! URL, signed with one secret.

mod aggregate;
mod commands;
mod error;
mod events;
mod values;

#[cfg(test)]
mod tests;

pub use aggregate::{
    PreviousSecret, Subscription, SubscriptionState, SubscriptionStatus, MAX_SIGNING_SECRETS,
};
pub use commands::{
    DisableSubscription, EnableSubscription, RevealSecret, RotateSecret, Subscribe,
    SubscriptionCommand, Unsubscribe, UpdateSubscription,
};
pub use error::SubscriptionError;
pub use events::SubscriptionEvent;
pub use values::{CustomHeaders, Description, PayloadFormat, MAX_DESCRIPTION_CHARS, MAX_HEADERS};
