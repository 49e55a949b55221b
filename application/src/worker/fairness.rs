//! Shares a worker's attempt slots fairly, so that one tenant's slow
//! receivers never make everyone else's deliveries wait: first across
//! tenants, then across destination hosts, then across subscriptions.
//!
//! A subscription whose receiver answers fast (a running average under
//! [`FAST_ATTEMPT`]) is not capped: its attempts free their slots within
//! milliseconds. Every other attempt is *risky* (the subscription is slow,
//! or not known to be fast yet) and must fit under three caps at once:
//!
//! | level | cap on risky attempts in flight |
//! |---|---|
//! | subscription | half the slots; a sixteenth once one of its attempts was slow |
//! | destination host | half; a sixteenth once an attempt to it was slow |
//! | tenant | half; a sixteenth once one of its attempts was slow |
//!
//! An attempt is slow when it takes [`SLOW_ATTEMPT`] or more; a level stays
//! slow for [`SLOW_MEMORY`] after its last slow attempt. So a tenant with
//! many slow subscriptions, or many tenants' subscriptions to one slow
//! host, hold at most a sixteenth of the slots between them, and the rest
//! stay free for everyone else. Deliveries over a cap go back to the queue
//! for a moment ([`Admission::defer_for`]) instead of taking a slot.

use hookline_domain::{SubscriptionId, TenantId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Below this running average, a subscription's attempts are not capped.
pub const FAST_ATTEMPT: Duration = Duration::from_millis(250);
/// An attempt this long marks its subscription, host and tenant slow.
pub const SLOW_ATTEMPT: Duration = Duration::from_secs(2);
/// How long a level stays slow after its last slow attempt.
pub const SLOW_MEMORY: Duration = Duration::from_secs(60);
/// How long a delivery over a cap waits before it is claimed again:
/// briefly when the level is merely busy; when it is slow, about as long
/// as its attempts take (a slot frees within that), from 1 to 5 s.
/// Waiting longer left a slow receiver's capped slots idle: at 2 s an
/// attempt and 5 s a wait, two fifths of them were used. Not under a
/// second: a tenant's or a host's average mixes in its fast attempts, and
/// every wait is a write of each deferred row.
const DEFER_BUSY: Duration = Duration::from_millis(100);
const DEFER_SLOW_AT_LEAST: Duration = Duration::from_secs(1);
const DEFER_SLOW: Duration = Duration::from_secs(5);

/// Who an attempt's slot counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tenant: TenantId,
    /// The destination (`host:port`), when known.
    pub host: Option<Arc<str>>,
    pub subscription: SubscriptionId,
}

#[derive(Debug, Default)]
struct Load {
    /// Risky attempts in flight (at the subscription level: all of them).
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

    fn finished(&mut self, took: Duration, now: Instant) {
        self.running = self.running.saturating_sub(1);
        let took_secs = took.as_secs_f64();
        self.average = Some(match self.average {
            Some(a) => 0.8 * a + 0.2 * took_secs,
            None => took_secs,
        });
        if took >= SLOW_ATTEMPT {
            self.slow_until = Some(now + SLOW_MEMORY);
        }
    }
}

/// Whether a claimed delivery may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Start; `risky` is what to pass back to [`Fairness::release`].
    Start { risky: bool },
    /// Over a cap: back to the queue for this long.
    Defer(Duration),
}

impl Admission {
    pub fn defer_for(self) -> Option<Duration> {
        match self {
            Self::Start { .. } => None,
            Self::Defer(d) => Some(d),
        }
    }
}

#[derive(Debug, Default)]
struct Loads {
    tenants: HashMap<TenantId, Load>,
    hosts: HashMap<Arc<str>, Load>,
    subscriptions: HashMap<SubscriptionId, Load>,
}

/// Attempts in flight per tenant, host and subscription, and which of them
/// are slow.
#[derive(Debug)]
pub struct Fairness {
    cap: usize,
    slow_cap: usize,
    loads: Mutex<Loads>,
}

/// The cap at one level, and the wait for a delivery over it.
fn limit(load: Option<&Load>, cap: usize, slow_cap: usize, now: Instant) -> (usize, Duration) {
    match load {
        Some(l) if l.slow(now) => {
            let wait = l
                .average
                .map_or(DEFER_SLOW, Duration::from_secs_f64)
                .clamp(DEFER_SLOW_AT_LEAST, DEFER_SLOW);
            (slow_cap, wait)
        }
        _ => (cap, DEFER_BUSY),
    }
}

fn over(load: Option<&Load>, cap: usize, slow_cap: usize, now: Instant) -> Option<Duration> {
    let (cap, wait) = limit(load, cap, slow_cap, now);
    (load.map_or(0, |l| l.running) >= cap).then_some(wait)
}

fn finished<K: Eq + Hash>(map: &mut HashMap<K, Load>, key: &K, took: Duration, now: Instant) {
    if let Some(load) = map.get_mut(key) {
        load.finished(took, now);
    }
}

impl Fairness {
    /// For a worker with `concurrency` slots.
    pub fn new(concurrency: usize) -> Self {
        Self {
            cap: (concurrency / 2).max(1),
            slow_cap: (concurrency / 16).max(1),
            loads: Mutex::new(Loads::default()),
        }
    }

    /// Takes a slot for `share` when every level is under its cap.
    pub fn admit(&self, share: &Share, now: Instant) -> Admission {
        let Ok(mut loads) = self.loads.lock() else {
            return Admission::Start { risky: false };
        };
        let sub = loads.subscriptions.entry(share.subscription).or_default();
        if sub.fast() && !sub.slow(now) {
            sub.running += 1;
            return Admission::Start { risky: false };
        }
        let (cap, slow_cap) = (self.cap, self.slow_cap);
        let waits = [
            over(Some(sub), cap, slow_cap, now),
            over(loads.tenants.get(&share.tenant), cap, slow_cap, now),
            share
                .host
                .as_ref()
                .and_then(|h| over(loads.hosts.get(h), cap, slow_cap, now)),
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Admission::Defer(wait);
        }
        loads
            .subscriptions
            .entry(share.subscription)
            .or_default()
            .running += 1;
        loads.tenants.entry(share.tenant).or_default().running += 1;
        if let Some(host) = &share.host {
            loads.hosts.entry(host.clone()).or_default().running += 1;
        }
        Admission::Start { risky: true }
    }

    /// Gives back the slot of an attempt that took `took`.
    pub fn release(&self, share: &Share, risky: bool, took: Duration, now: Instant) {
        let Ok(mut loads) = self.loads.lock() else {
            return;
        };
        finished(&mut loads.subscriptions, &share.subscription, took, now);
        if risky {
            finished(&mut loads.tenants, &share.tenant, took, now);
            if let Some(host) = &share.host {
                finished(&mut loads.hosts, host, took, now);
            }
        } else if took >= SLOW_ATTEMPT {
            // A fast subscription turned slow: its tenant and host are
            // slow from now on too.
            loads.tenants.entry(share.tenant).or_default().slow_until = Some(now + SLOW_MEMORY);
            if let Some(host) = &share.host {
                loads.hosts.entry(host.clone()).or_default().slow_until = Some(now + SLOW_MEMORY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn share(tenant: u128, host: &str, sub: u128) -> Share {
        Share {
            tenant: TenantId::from_uuid(Uuid::from_u128(tenant)),
            host: Some(Arc::from(host)),
            subscription: SubscriptionId::from_uuid(Uuid::from_u128(sub)),
        }
    }

    fn started(a: Admission) -> bool {
        matches!(a, Admission::Start { .. })
    }

    #[test]
    fn an_unknown_subscription_gets_at_most_half_the_slots_a_fast_one_all() {
        let f = Fairness::new(8);
        let now = Instant::now();
        let one = share(1, "a:1", 1);
        for _ in 0..4 {
            assert_eq!(f.admit(&one, now), Admission::Start { risky: true });
        }
        assert_eq!(f.admit(&one, now), Admission::Defer(DEFER_BUSY));
        // Another tenant's subscription elsewhere is not affected.
        assert!(started(f.admit(&share(2, "b:1", 2), now)));
        // Answers in milliseconds: no cap but the worker's own.
        f.release(&one, true, Duration::from_millis(5), now);
        for _ in 0..6 {
            assert_eq!(f.admit(&one, now), Admission::Start { risky: false });
        }
    }

    #[test]
    fn a_slow_subscription_is_held_to_a_sixteenth_for_a_while() {
        let f = Fairness::new(32);
        let now = Instant::now();
        let s = share(1, "a:1", 1);
        assert!(started(f.admit(&s, now)));
        f.release(&s, true, Duration::from_secs(10), now);
        assert!(started(f.admit(&s, now)));
        assert!(started(f.admit(&s, now)));
        assert_eq!(f.admit(&s, now), Admission::Defer(DEFER_SLOW));
        f.release(&s, true, Duration::from_millis(5), now);
        f.release(&s, true, Duration::from_millis(5), now);
        // A while later, its average (still above 250 ms) keeps it at half.
        let later = now + SLOW_MEMORY + Duration::from_secs(1);
        for _ in 0..16 {
            assert!(started(f.admit(&s, later)));
        }
        assert_eq!(f.admit(&s, later), Admission::Defer(DEFER_BUSY));
    }

    #[test]
    fn over_a_slow_cap_a_delivery_waits_about_as_long_as_an_attempt_takes() {
        let f = Fairness::new(16);
        let now = Instant::now();
        let s = share(1, "a:1", 1);
        assert!(started(f.admit(&s, now)));
        f.release(&s, true, Duration::from_secs(2), now);
        // Slow, one slot: the next delivery over it comes back when the
        // attempt in flight should be done, not after a fixed 5 s.
        assert!(started(f.admit(&s, now)));
        assert_eq!(f.admit(&s, now), Admission::Defer(Duration::from_secs(2)));
        f.release(&s, true, Duration::from_secs(1), now);
        assert!(started(f.admit(&s, now)));
        assert_eq!(
            f.admit(&s, now),
            Admission::Defer(Duration::from_secs_f64(0.8 * 2.0 + 0.2 * 1.0))
        );
        // Never shorter than a second, however fast its other attempts.
        for _ in 0..20 {
            f.release(&s, true, Duration::from_millis(10), now);
            assert!(started(f.admit(&s, now)));
        }
        f.release(&s, true, Duration::from_millis(10), now);
        assert!(started(f.admit(&s, now)));
        assert_eq!(f.admit(&s, now), Admission::Defer(Duration::from_secs(1)));
        // Never longer than 5 s, however long its attempts take.
        f.release(&s, true, Duration::from_secs(30), now);
        assert!(started(f.admit(&s, now)));
        assert_eq!(f.admit(&s, now), Admission::Defer(DEFER_SLOW));
    }

    #[test]
    fn many_slow_subscriptions_of_one_tenant_or_one_host_share_a_sixteenth() {
        let f = Fairness::new(64);
        let now = Instant::now();
        // Tenant 1 has a subscription known to be fast…
        let fast = share(1, "fast:1", 900);
        assert!(started(f.admit(&fast, now)));
        f.release(&fast, true, Duration::from_millis(3), now);
        // …and its first attempt to host "slow" took 8 s.
        let first = share(1, "slow:1", 1);
        assert!(started(f.admit(&first, now)));
        f.release(&first, true, Duration::from_secs(8), now);
        // Its 200 other subscriptions there (unknown ones) get 4 slots.
        let admitted = (2..202)
            .filter(|n| started(f.admit(&share(1, "slow:1", *n), now)))
            .count();
        assert_eq!(admitted, 4);
        // Another tenant's subscriptions to the same host share the host's
        // sixteenth: nothing more for them there…
        assert_eq!(
            f.admit(&share(2, "slow:1", 500), now),
            Admission::Defer(DEFER_SLOW)
        );
        // …while tenant 2 elsewhere, and tenant 1's fast subscription, run.
        assert!(started(f.admit(&share(2, "fast:1", 501), now)));
        for _ in 0..40 {
            assert_eq!(f.admit(&fast, now), Admission::Start { risky: false });
        }
    }

    #[test]
    fn a_tenant_with_slow_subscriptions_on_many_hosts_gets_a_sixteenth() {
        let f = Fairness::new(64);
        let now = Instant::now();
        let first = share(1, "h0:1", 1);
        assert!(started(f.admit(&first, now)));
        f.release(&first, true, Duration::from_secs(5), now);
        let admitted = (2..100)
            .filter(|n| started(f.admit(&share(1, &format!("h{n}:1"), *n), now)))
            .count();
        assert_eq!(admitted, 4);
        assert!(started(f.admit(&share(2, "h1:1", 1000), now)));
    }

    #[test]
    fn a_single_slot_worker_still_admits_one() {
        let f = Fairness::new(1);
        let now = Instant::now();
        assert!(started(f.admit(&share(1, "a:1", 1), now)));
        assert!(started(f.admit(&share(2, "b:1", 2), now)));
        assert!(f.admit(&share(1, "a:1", 1), now).defer_for().is_some());
    }
}
