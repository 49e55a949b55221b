//! The Delivery aggregate: one event on its way to one subscription, with
//! every attempt it took.

mod aggregate;
mod commands;
mod error;
mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{Delivery, DeliveryState, DeliveryStatus};
pub use commands::{
    AbandonDelivery, AttemptFailure, AttemptSuccess, DeliveryCommand, EnqueueDelivery,
    RetryDelivery, SkipDelivery,
};
pub use error::DeliveryError;
pub use events::DeliveryEvent;
