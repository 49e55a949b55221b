//! Flow control of one subscription: its rate limit and its circuit
//! breaker. The circuit opens after consecutive failed attempts, lets one
//! probe through per interval (growing from a minimum to a maximum), and
//! closes after a success; while it is open the subscription's deliveries
//! wait, without attempts and without using up their retries.

use crate::outcome::ErrorKind;
use crate::{DeliveryId, ValidationError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Most attempts per second a rate limit may allow.
pub const MAX_RATE_LIMIT: u32 = 10_000;

/// Attempts per second to one subscription, across every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RateLimit(u32);

impl RateLimit {
    /// # Errors
    /// Unless 1–10 000.
    pub fn parse(per_second: i64) -> Result<Self, ValidationError> {
        u32::try_from(per_second)
            .ok()
            .filter(|n| (1..=MAX_RATE_LIMIT).contains(n))
            .map(Self)
            .ok_or_else(|| {
                ValidationError::new(
                    "rate_limit",
                    format!("must be a whole number of attempts per second, 1–{MAX_RATE_LIMIT}, or null for none"),
                )
            })
    }

    pub fn per_second(self) -> u32 {
        self.0
    }

    /// The time between two attempts.
    pub fn spacing(self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / f64::from(self.0))
    }
}

/// The failed attempt that opened a circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCause {
    pub delivery_id: DeliveryId,
    pub error_kind: ErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub message: String,
    pub failed_at: DateTime<Utc>,
}

/// An open circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Circuit {
    pub opened_at: DateTime<Utc>,
    pub cause: FailureCause,
    /// Consecutive failed attempts when it opened.
    pub consecutive_failures: u32,
    /// Probes sent so far.
    pub probes: u32,
    /// The delivery let through as the current probe, if one is out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<DeliveryId>,
    /// When the next probe may go.
    pub next_probe_at: DateTime<Utc>,
}

/// How long after the `probes`-th probe the next may go: `min`, doubling
/// with each probe, at most `max`.
pub fn probe_interval(probes: u32, min: Duration, max: Duration) -> Duration {
    let factor = 1i32.checked_shl(probes.min(20)).unwrap_or(i32::MAX);
    min.checked_mul(factor)
        .map_or(max, |d| d.min(max))
        .max(min.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_bounded() {
        assert!(RateLimit::parse(0).is_err());
        assert!(RateLimit::parse(-1).is_err());
        assert!(RateLimit::parse(10_001).is_err());
        assert_eq!(RateLimit::parse(5).unwrap().per_second(), 5);
        assert_eq!(
            RateLimit::parse(4).unwrap().spacing(),
            std::time::Duration::from_millis(250)
        );
    }

    #[test]
    fn probe_intervals_grow_to_the_maximum() {
        let (min, max) = (Duration::seconds(30), Duration::minutes(10));
        let got: Vec<i64> = (0..7)
            .map(|p| probe_interval(p, min, max).num_seconds())
            .collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(probe_interval(u32::MAX, min, max), max);
    }
}
