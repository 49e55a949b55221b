//! Keeps one subscription from holding every attempt slot of a worker: a
//! receiver that answers slowly (or never, until the timeout) would
//! otherwise make every other tenant's deliveries wait behind it.
//!
//! A subscription whose receiver answers fast (a running average under
//! [`FAST_ATTEMPT`]) may use every slot: its attempts free them within
//! milliseconds. One not known to be fast yet, or slower, may have at most
//! half the slots in flight; once one of its attempts has been slow (took
//! [`SLOW_ATTEMPT`] or more), at most a sixteenth, until [`SLOW_MEMORY`] has
//! passed without another. Deliveries over the cap go back to the queue for
//! a moment ([`Admission::defer_for`]) instead of taking a slot.

use hookline_domain::SubscriptionId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Below this running average, a subscription's attempts are not capped.
pub const FAST_ATTEMPT: Duration = Duration::from_millis(250);
/// An attempt this long marks its subscription slow.
pub const SLOW_ATTEMPT: Duration = Duration::from_secs(2);
/// How long a subscription stays slow after its last slow attempt.
pub const SLOW_MEMORY: Duration = Duration::from_secs(60);
/// How long a delivery over its subscription's cap waits before it is
/// claimed again: briefly for a busy but fast receiver, longer for a slow
/// one (whose attempts in flight take seconds to finish).
const DEFER_BUSY: Duration = Duration::from_millis(100);
const DEFER_SLOW: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Load {
    running: usize,
    slow_until: Option<Instant>,
    /// Running average of attempt durations, seconds.
    average: Option<f64>,
}

impl Load {
    fn slow(&self, now: Instant) -> bool {
        self.slow_until.is_some_and(|t| t > now)
    }

    fn fast(&self) -> bool {
        self.average.is_some_and(|a| a < FAST_ATTEMPT.as_secs_f64())
    }
}

/// Whether a claimed delivery may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Start,
    /// Over its subscription's cap: back to the queue for this long.
    Defer(Duration),
}

impl Admission {
    pub fn defer_for(self) -> Option<Duration> {
        match self {
            Self::Start => None,
            Self::Defer(d) => Some(d),
        }
    }
}

/// Attempts in flight per subscription, and which subscriptions are slow.
#[derive(Debug)]
pub struct Fairness {
    all: usize,
    cap: usize,
    slow_cap: usize,
    loads: Mutex<HashMap<SubscriptionId, Load>>,
}

impl Fairness {
    /// For a worker with `concurrency` slots.
    pub fn new(concurrency: usize) -> Self {
        Self {
            all: concurrency.max(1),
            cap: (concurrency / 2).max(1),
            slow_cap: (concurrency / 16).max(1),
            loads: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a slot for `sub` when it is under its cap.
    pub fn admit(&self, sub: SubscriptionId, now: Instant) -> Admission {
        let Ok(mut loads) = self.loads.lock() else {
            return Admission::Start;
        };
        let load = loads.entry(sub).or_default();
        let slow = load.slow(now);
        let cap = if slow {
            self.slow_cap
        } else if load.fast() {
            self.all
        } else {
            self.cap
        };
        if load.running >= cap {
            return Admission::Defer(if slow { DEFER_SLOW } else { DEFER_BUSY });
        }
        load.running += 1;
        Admission::Start
    }

    /// Gives back the slot of an attempt that took `took`.
    pub fn release(&self, sub: SubscriptionId, took: Duration, now: Instant) {
        let Ok(mut loads) = self.loads.lock() else {
            return;
        };
        let Some(load) = loads.get_mut(&sub) else {
            return;
        };
        load.running = load.running.saturating_sub(1);
        let took_secs = took.as_secs_f64();
        load.average = Some(match load.average {
            Some(a) => 0.8 * a + 0.2 * took_secs,
            None => took_secs,
        });
        if took >= SLOW_ATTEMPT {
            load.slow_until = Some(now + SLOW_MEMORY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn sub(n: u128) -> SubscriptionId {
        SubscriptionId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn an_unknown_subscription_gets_at_most_half_the_slots_a_fast_one_all() {
        let f = Fairness::new(8);
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(f.admit(sub(1), now), Admission::Start);
        }
        assert_eq!(f.admit(sub(1), now), Admission::Defer(DEFER_BUSY));
        // Another subscription is not affected.
        assert_eq!(f.admit(sub(2), now), Admission::Start);
        // Answers in milliseconds: no cap but the worker's own.
        f.release(sub(1), Duration::from_millis(5), now);
        for _ in 0..5 {
            assert_eq!(f.admit(sub(1), now), Admission::Start);
        }
    }

    #[test]
    fn a_middling_subscription_stays_at_half() {
        let f = Fairness::new(8);
        let now = Instant::now();
        assert_eq!(f.admit(sub(1), now), Admission::Start);
        f.release(sub(1), Duration::from_millis(800), now);
        for _ in 0..4 {
            assert_eq!(f.admit(sub(1), now), Admission::Start);
        }
        assert_eq!(f.admit(sub(1), now), Admission::Defer(DEFER_BUSY));
    }

    #[test]
    fn a_slow_subscription_is_held_to_a_sixteenth_for_a_while() {
        let f = Fairness::new(32);
        let now = Instant::now();
        assert_eq!(f.admit(sub(1), now), Admission::Start);
        f.release(sub(1), Duration::from_secs(10), now);
        assert_eq!(f.admit(sub(1), now), Admission::Start);
        assert_eq!(f.admit(sub(1), now), Admission::Start);
        assert_eq!(f.admit(sub(1), now), Admission::Defer(DEFER_SLOW));
        f.release(sub(1), Duration::from_millis(5), now);
        f.release(sub(1), Duration::from_millis(5), now);
        // A while later, its average (still above 250 ms) keeps it at half.
        let later = now + SLOW_MEMORY + Duration::from_secs(1);
        for _ in 0..16 {
            assert_eq!(f.admit(sub(1), later), Admission::Start);
        }
        assert_eq!(f.admit(sub(1), later), Admission::Defer(DEFER_BUSY));
    }

    #[test]
    fn a_single_slot_worker_still_admits_one() {
        let f = Fairness::new(1);
        let now = Instant::now();
        assert_eq!(f.admit(sub(1), now), Admission::Start);
        assert_eq!(f.admit(sub(2), now), Admission::Start);
        assert!(f.admit(sub(1), now).defer_for().is_some());
    }
}
