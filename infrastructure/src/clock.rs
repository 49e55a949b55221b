//! The system clock and entropy behind the application's `Clock` and
//! `Entropy` ports.

use chrono::{DateTime, Utc};
use hookline_application::ports::{Clock, Entropy};
use rand::{Rng, RngCore};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// UUIDv7 ids, the operating system's random bytes, thread-local jitter.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }

    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }

    fn jitter(&self) -> f64 {
        rand::thread_rng().gen_range(-1.0..=1.0)
    }
}
