//! Delivery use cases: publishing (fan-out), the read APIs, manual retry and
//! recovery.

pub mod fold;
mod publish;
mod service;
mod view;

#[cfg(test)]
pub(crate) use publish::Envelope;
pub use publish::{
    IdempotencyKey, Planned, PublishEvent, PublishService, PublishSettings, Published,
    PublishedDelivery, ResourceField, MAX_IDEMPOTENCY_KEY_LEN, MAX_RESOURCE_LEN, TEST_EVENT,
};
pub use service::{DeliveryService, ListAttempts, ListDeliveries, Recovered};
pub use view::DeliveryDetail;

#[cfg(test)]
mod tests;
