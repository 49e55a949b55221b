//! The system clock and entropy behind the application's `Clock` and
//! `Entropy` ports.

use chrono::{DateTime, SubsecRound, Utc};
use hookline_application::ports::{Clock, Entropy};
use rand::{Rng, RngCore};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// To the microsecond, as Postgres keeps time: a time read back from a
    /// read model is the one in the log and in the response that wrote it.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn the_clock_reads_to_the_microsecond_as_postgres_keeps_time() {
        for _ in 0..100 {
            assert_eq!(SystemClock.now().nanosecond() % 1_000, 0);
        }
    }
}
