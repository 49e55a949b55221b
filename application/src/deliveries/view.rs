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
    /// The request body exactly as sent (embedded as JSON; a body that
    /// is not JSON, from before publishing checked it, as a string).
    pub payload: Box<serde_json::value::RawValue>,
    pub attempt_log: Vec<AttemptView>,
}
