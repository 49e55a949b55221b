//! The retry policy: when a failed delivery is tried again, and when Hookline
//! gives up.

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// Default schedule: 5 s, 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE_SECS: [u64; 8] = [5, 60, 300, 1800, 7200, 18000, 36000, 36000];
/// Longest wait a `Retry-After` header can impose.
pub const DEFAULT_RETRY_AFTER_CAP_SECS: u64 = 3600;
/// ± share of each delay drawn at random, so retries of many deliveries
/// that failed together spread out.
pub const DEFAULT_JITTER: f64 = 0.1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Delay before retry n (1-based) is `schedule[n-1]`; retries past the
    /// end of the schedule reuse its last entry.
    pub schedule_secs: Vec<u64>,
    /// How many retries after the first attempt (so `max_retries + 1`
    /// attempts in all before a delivery is abandoned).
    pub max_retries: u32,
    /// Fraction of each delay used as ± jitter (0.1 = ±10 %).
    pub jitter: f64,
    /// Upper bound for a receiver's `Retry-After`.
    pub retry_after_cap_secs: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            schedule_secs: DEFAULT_SCHEDULE_SECS.to_vec(),
            max_retries: DEFAULT_SCHEDULE_SECS.len() as u32,
            jitter: DEFAULT_JITTER,
            retry_after_cap_secs: DEFAULT_RETRY_AFTER_CAP_SECS,
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt, after `failures` consecutive
    /// failed attempts (1 after the first failure), or `None` when the
    /// policy gives up. `jitter_draw` is a random number in `[-1, 1]`
    /// supplied by the caller; `retry_after_secs` is the receiver's hint.
    pub fn next_delay(
        &self,
        failures: u32,
        jitter_draw: f64,
        retry_after_secs: Option<u64>,
    ) -> Option<Duration> {
        if failures == 0 || failures > self.max_retries {
            return None;
        }
        let index = (failures as usize - 1).min(self.schedule_secs.len().saturating_sub(1));
        let base_ms = self
            .schedule_secs
            .get(index)
            .copied()
            .unwrap_or(60)
            .saturating_mul(1000) as f64;
        let draw = if jitter_draw.is_finite() {
            jitter_draw.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        let ms = (base_ms * (1.0 + self.jitter.clamp(0.0, 1.0) * draw))
            .round()
            .max(0.0);
        let scheduled = Duration::milliseconds(ms as i64);
        // A receiver's hint makes the wait longer, never shorter: a
        // `Retry-After: 0` (or a date already past, a clock behind) used to
        // spend every retry a second apart and abandon the delivery in
        // seconds instead of hours.
        Some(match retry_after_secs {
            Some(hint) => {
                let secs = hint.clamp(1, self.retry_after_cap_secs.max(1));
                scheduled.max(Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
            }
            None => scheduled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = RetryPolicy::default();
        let delays: Vec<i64> = (1..=8)
            .map(|n| p.next_delay(n, 0.0, None).unwrap().num_seconds())
            .collect();
        assert_eq!(delays, vec![5, 60, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(p.next_delay(9, 0.0, None), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(2, 1.0, None).unwrap().num_seconds(), 66);
        assert_eq!(p.next_delay(2, -1.0, None).unwrap().num_seconds(), 54);
        assert_eq!(p.next_delay(2, 7.0, None).unwrap().num_seconds(), 66);
    }

    #[test]
    fn max_retries_caps_and_extends_the_schedule() {
        let short = RetryPolicy {
            max_retries: 2,
            ..RetryPolicy::default()
        };
        assert!(short.next_delay(2, 0.0, None).is_some());
        assert!(short.next_delay(3, 0.0, None).is_none());
        let long = RetryPolicy {
            max_retries: 10,
            ..RetryPolicy::default()
        };
        assert_eq!(long.next_delay(10, 0.0, None).unwrap().num_seconds(), 36000);
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.next_delay(1, 0.0, Some(120)).unwrap().num_seconds(), 120);
        assert_eq!(
            p.next_delay(1, 0.0, Some(999_999)).unwrap().num_seconds(),
            3600
        );
        // A hint shorter than the schedule does not bring a retry forward.
        let scheduled = p.next_delay(1, 0.0, None).unwrap();
        assert_eq!(p.next_delay(1, 0.0, Some(0)).unwrap(), scheduled);
        assert_eq!(p.next_delay(1, 0.0, Some(1)).unwrap(), scheduled);
        let later = p.next_delay(8, 0.0, None).unwrap();
        assert!(later.num_seconds() > 3600);
        assert_eq!(p.next_delay(8, 0.0, Some(999_999)).unwrap(), later);
        assert_eq!(p.next_delay(9, 0.0, Some(1)), None);
    }
}
