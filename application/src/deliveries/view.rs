//! One delivery as a single read shows it.

use crate::ports::{AttemptRecord, DeliveryRecord};

/// One delivery with its attempts and the exact body it sends.
#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRecord,
    /// The request body exactly as sent (JSON; a body that is not JSON,
    /// from before publishing checked it, as a JSON string).
    pub payload: Box<serde_json::value::RawValue>,
    pub attempt_log: Vec<AttemptRecord>,
}
