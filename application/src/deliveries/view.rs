//! How deliveries and attempts look in responses.

use crate::ports::{AttemptRecord, DeliveryRecord};
use serde::Serialize;

/// A delivery as responses show it (the read model's row).
pub type DeliveryView = DeliveryRecord;
/// An attempt as responses show it (the read model's row).
pub type AttemptView = AttemptRecord;

/// One delivery with its attempts and the exact body it sends.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The request body as sent (parsed for readability).
    pub payload: serde_json::Value,
    pub attempt_log: Vec<AttemptView>,
}
