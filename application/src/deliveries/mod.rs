//! Delivery use cases: publishing (fan-out), the read APIs, manual retry and
//! recovery.

pub mod fold;
mod publish;
mod service;
mod view;

pub use publish::{
    PublishInput, PublishService, PublishSettings, Published, PublishedDelivery, SeedPublishInput,
};
pub use service::{
    DeliveryService, GetDeliveryParams, ListDeliveriesParams, RecoverInput, Recovered,
};
pub use view::{AttemptView, DeliveryDetail, DeliveryView};

use hookline_domain::delivery::DeliveryEvent;

/// Serialises a domain event for the log (`payload` column).
///
/// # Errors
/// Never for these types; mapped to an internal error for completeness.
pub(crate) fn payload_of(event: &DeliveryEvent) -> Result<serde_json::Value, crate::AppError> {
    serde_json::to_value(event)
        .map_err(|e| crate::AppError::Internal(format!("event did not serialise: {e}")))
}
