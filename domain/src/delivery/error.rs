//! Why a delivery refused a command.

use super::aggregate::DeliveryStatus;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the delivery already exists")]
    AlreadyExists,
    /// Also returned for another tenant's delivery.
    #[error("the delivery does not exist")]
    NotFound,
    #[error("the delivery was already delivered")]
    AlreadyDelivered,
    /// A manual retry while the next attempt is due or under way.
    #[error("the delivery's next attempt is already due or under way")]
    AttemptDue,
    #[error("the delivery is {0}, not pending")]
    NotPending(DeliveryStatus),
    /// An outcome for an attempt that is not the next one: reported twice,
    /// or by a worker whose lease had expired.
    #[error("attempt {got} is stale: the next attempt is {expected}")]
    StaleAttempt { expected: u32, got: u32 },
}
